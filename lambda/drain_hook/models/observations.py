"""What the adapters report from AWS, in the shapes the decision reads. No AWS calls here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

TaskKind = Literal["service", "daemon", "standalone"]

# Lifecycle states in which our termination hook holds an instance (botocore LifecycleState).
# Warmed:Terminating:Wait: an instance terminated while in a warm pool. Warmed:Pending:Wait: an
# instance going back to the pool on scale-in (ReuseOnScaleIn, which ECS does not support).
TERMINATING_WAIT = "Terminating:Wait"
WARMED_TERMINATING_WAIT = "Warmed:Terminating:Wait"
WARMED_PENDING_WAIT = "Warmed:Pending:Wait"
HOOK_WAIT_STATES = frozenset({TERMINATING_WAIT, WARMED_TERMINATING_WAIT, WARMED_PENDING_WAIT})
TERMINATING_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"


@dataclass(frozen=True)
class TaskView:
    """One task on the instance whose lastStatus is not STOPPED yet."""

    arn: str
    kind: TaskKind
    last_status: str
    desired_status: str


@dataclass(frozen=True)
class DrainRecord:
    """Our drain as ECS records it on the container instance (attribute contract.DRAIN_ATTRIBUTE).

    Written by this function only, stored by ECS: a state passed back to us is checked against it.
    `loop` is the name of the Step Functions execution that owns the drain; `agent_lost_since`
    is when we first saw the ECS agent disconnected (cleared when it reconnects), and
    `agent_lost_version` the container instance's `version` then: ECS raises it on every change
    that emits an event, a reconnect among them, so a higher one shows the disconnection may not
    have been continuous.
    """

    started_at: datetime
    loop: str
    agent_lost_since: datetime | None = None
    agent_lost_version: int | None = None

    def encode(self) -> str:
        # Attribute values allow letters, digits, - _ . @ / \ : and space (PutAttributes).
        parts = [str(int(self.started_at.timestamp())), self.loop]
        if self.agent_lost_since is not None:
            lost = str(int(self.agent_lost_since.timestamp()))
            if self.agent_lost_version is not None:
                lost += f":{self.agent_lost_version}"
            parts.append(lost)
        return " ".join(parts)

    @classmethod
    def decode(cls, value: str | None) -> DrainRecord | None:
        """The record, or None when the value is absent or not ours."""
        if not value:
            return None
        match = re.fullmatch(
            r"(\d{1,12}) ([A-Za-z0-9_-]{1,80})(?: (\d{1,12})(?::(\d{1,19}))?)?", value
        )
        if match is None:
            return None
        lost, version = match.group(3), match.group(4)
        return cls(
            started_at=_epoch(match.group(1)),
            loop=match.group(2),
            agent_lost_since=_epoch(lost) if lost else None,
            agent_lost_version=int(version) if version else None,
        )


@dataclass(frozen=True)
class ActionRecord:
    """The lifecycle action a drain completes (contract.ACTION_ATTRIBUTE): hook and group."""

    hook_name: str
    asg_name: str

    def encode(self) -> str | None:
        """The attribute value, or None when the names don't fit ECS's attribute value rules."""
        value = f"{self.hook_name} {self.asg_name}"
        fits = re.fullmatch(r"[A-Za-z0-9_./\\@: -]{1,128}", value) and value == value.strip()
        return value if fits and " " not in self.hook_name else None

    @classmethod
    def decode(cls, value: str | None) -> ActionRecord | None:
        if not value or " " not in value:
            return None
        hook, group = value.split(" ", 1)
        return cls(hook_name=hook, asg_name=group) if hook and group else None


@dataclass(frozen=True)
class ContainerInstanceView:
    """A container instance as DescribeContainerInstances reports it."""

    arn: str
    ec2_instance_id: str
    status: str
    agent_connected: bool = True
    version: int | None = None  # raised by ECS on every change that emits an event
    running_tasks: int = 0  # tasks whose desiredStatus is RUNNING
    pending_tasks: int = 0  # tasks whose lastStatus is PENDING
    drain_record: DrainRecord | None = None
    action_record: ActionRecord | None = None


@dataclass(frozen=True)
class LifecycleView:
    """Where Auto Scaling has the instance: its group and lifecycle state."""

    asg_name: str
    lifecycle_state: str

    @property
    def held_by_hook(self) -> bool:
        return self.lifecycle_state in HOOK_WAIT_STATES


@dataclass(frozen=True)
class HookView:
    """A lifecycle hook of a group (DescribeLifecycleHooks)."""

    name: str
    transition: str
    heartbeat_timeout_seconds: int
    global_timeout_seconds: int
    default_result: str

    @property
    def terminating(self) -> bool:
        return self.transition == TERMINATING_TRANSITION


def _epoch(text: str) -> datetime:
    return datetime.fromtimestamp(int(text), tz=UTC)
