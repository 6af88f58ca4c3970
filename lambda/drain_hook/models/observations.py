"""What the adapters report from AWS, in the shapes the decision reads. No AWS calls here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

TaskKind = Literal["service", "daemon", "standalone"]
# An EC2 instance id: "i-" and 8 or 17 hex digits (checked without pydantic on busy paths too).
INSTANCE_ID_PATTERN = r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$"

# Lifecycle states in which our termination hook holds an instance (botocore LifecycleState).
# Warmed:Terminating:Wait: an instance terminated while in a warm pool. Warmed:Pending:Wait: an
# instance going back to the pool on scale-in (ReuseOnScaleIn, which ECS does not support).
TERMINATING_WAIT = "Terminating:Wait"
WARMED_TERMINATING_WAIT = "Warmed:Terminating:Wait"
WARMED_PENDING_WAIT = "Warmed:Pending:Wait"
HOOK_WAIT_STATES = frozenset({TERMINATING_WAIT, WARMED_TERMINATING_WAIT, WARMED_PENDING_WAIT})
TERMINATING_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"
# A warm pool's lifecycle states begin so; an instance in the pool never registers with ECS.
WARMED_PREFIX = "Warmed:"

# Container instance statuses ECS drains; it can't move the others to DRAINING
# (UpdateContainerInstancesState API reference).
DRAINABLE_STATUSES = frozenset({"ACTIVE", "DRAINING"})
NOT_DRAINABLE_STATUSES = frozenset(
    {"REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED", "INACTIVE"}
)


@dataclass(frozen=True)
class TaskView:
    """One task on the instance whose lastStatus is not STOPPED yet."""

    arn: str
    kind: TaskKind
    last_status: str
    desired_status: str
    service: str | None = None  # the service that started it (its group "service:<name>")


def holding_tasks(
    tasks: Iterable[TaskView], daemon_tasks_hold_instance: bool
) -> tuple[TaskView, ...]:
    """The tasks that hold the instance: all unstopped ones, daemon tasks only if they hold."""
    return tuple(task for task in tasks if daemon_tasks_hold_instance or task.kind != "daemon")


@dataclass(frozen=True)
class DrainRecord:
    """Our drain as ECS records it on the container instance (attribute contract.DRAIN_ATTRIBUTE).

    Written by this function only, stored by ECS: a state passed back to us is checked against it.
    `loop` is the name of the Step Functions execution that owns the drain; `agent_lost_since`
    is when we first saw the ECS agent disconnected (cleared when it reconnects), and
    `agent_lost_version` the container instance's `version` then: ECS raises it on every change
    that emits an event, a reconnect among them, so a higher one shows the disconnection may not
    have been continuous. `interruption_at` is when EC2 interrupts a Spot instance (its notice's
    time as EC2 records it, plus the two minutes): the drain's deadline comes no later. A Spot
    notice can come before any lifecycle action: its record has no loop yet (`NO_LOOP`).
    """

    started_at: datetime
    loop: str
    agent_lost_since: datetime | None = None
    agent_lost_version: int | None = None
    interruption_at: datetime | None = None

    @property
    def has_loop(self) -> bool:
        return self.loop != NO_LOOP

    def encode(self) -> str:
        # Attribute values allow letters, digits, - _ . @ / \ : and space, 128 at most
        # (PutAttributes). An interruption is a last "spot@<epoch>" part, which values written
        # before it never have; the agent's version, a hint only, gives way if the whole would
        # not fit.
        for keep_version in (True, False):
            parts = [str(int(self.started_at.timestamp())), self.loop]
            if self.agent_lost_since is not None:
                lost = str(int(self.agent_lost_since.timestamp()))
                if self.agent_lost_version is not None and keep_version:
                    lost += f":{self.agent_lost_version}"
                parts.append(lost)
            if self.interruption_at is not None:
                parts.append(f"{SPOT_MARK}{int(self.interruption_at.timestamp())}")
            value = " ".join(parts)
            if len(value) <= ATTRIBUTE_VALUE_MAX:
                break
        return value

    @classmethod
    def decode(cls, value: str | None) -> DrainRecord | None:
        """The record, or None when the value is absent or not ours."""
        if not value:
            return None
        match = re.fullmatch(
            r"(\d{1,12}) ([A-Za-z0-9_-]{1,80})(?: (\d{1,12})(?::(\d{1,19}))?)?"
            rf"(?: {SPOT_MARK}(\d{{1,12}}))?",
            value,
        )
        if match is None:
            return None
        lost, version, interruption = match.group(3), match.group(4), match.group(5)
        return cls(
            started_at=_epoch(match.group(1)),
            loop=match.group(2),
            agent_lost_since=_epoch(lost) if lost else None,
            agent_lost_version=int(version) if version else None,
            interruption_at=_epoch(interruption) if interruption else None,
        )


# The loop of a drain record a Spot notice wrote before any lifecycle action began.
NO_LOOP = "-"
SPOT_MARK = "spot@"
ATTRIBUTE_VALUE_MAX = 128  # PutAttributes: an attribute value is 1 to 128 characters


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
class ServiceView:
    """A service as DescribeServices reports it: its counts and the scheduler's latest word.

    `event` is the message of the service's newest event (DescribeServices lists them newest
    first): the scheduler's own sentence, e.g. why a replacement can't be placed. A service ECS
    does not know any more (a `failures` entry MISSING) has status "MISSING".
    """

    name: str
    status: str  # ACTIVE; DRAINING or INACTIVE while or once it is deleted; MISSING
    strategy: str = "REPLICA"  # REPLICA / DAEMON
    running: int = 0
    desired: int = 0
    pending: int = 0
    event: str | None = None
    event_at: datetime | None = None

    @property
    def short(self) -> bool:
        """Below its desired count while it can still reach it: an ACTIVE replica service.
        A daemon service's tasks are never replaced elsewhere, and a service being deleted will
        not come back: waiting on either would only hold the instance to the deadline."""
        return self.status == "ACTIVE" and self.strategy != "DAEMON" and self.running < self.desired


def short_services(
    names: Iterable[str], views: Mapping[str, ServiceView]
) -> tuple[ServiceView, ...]:
    """The services among `names` that run fewer tasks than desired (RELEASE_WHEN=
    services_steady waits for them). A name with no view counts as short: it was not read."""
    short = []
    for name in sorted(set(names)):
        view = views.get(name)
        if view is None:
            short.append(ServiceView(name=name, status="UNREAD"))
        elif view.short:
            short.append(view)
    return tuple(short)


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
    metadata: str | None = None  # NotificationMetadata (ours: {"cluster": "<name>"})

    @property
    def terminating(self) -> bool:
        return self.transition == TERMINATING_TRANSITION


# Termination waits the sweep looks for: our hook holds an instance being terminated, from the
# group or from its warm pool. (Warmed:Pending:Wait is left out: a launch into the pool waits
# there too, held by launch hooks, and ECS does not support instances going back to the pool.)
SWEPT_WAIT_STATES = frozenset({TERMINATING_WAIT, WARMED_TERMINATING_WAIT})
# In a group whose warm pool takes scaled-in instances back (ReuseOnScaleIn), a termination hook
# holds them in Warmed:Pending:Wait, the state launch hooks hold new pooled instances in too.
SWEPT_REUSE_WAIT_STATES = SWEPT_WAIT_STATES | {WARMED_PENDING_WAIT}
RETAIN = "retain"  # RetentionTriggers.TerminateHookAbandon (botocore RetentionAction)


@dataclass(frozen=True)
class GroupView:
    """An Auto Scaling group as DescribeAutoScalingGroups reports it.

    `status` is set only while the group is being deleted (AutoScalingGroup.Status: "Delete in
    progress" in AWS's examples; the model gives no list, so any value counts). `retains` is
    whether its instance lifecycle policy retains an instance whose termination hook ends with
    ABANDON (InstanceLifecyclePolicy.RetentionTriggers.TerminateHookAbandon "retain"). `waiting`
    holds its instances (and its warm pool's, when asked for) in a termination wait, by id.
    `reuse_on_scale_in`: its warm pool takes scaled-in instances back (InstanceReusePolicy).
    """

    name: str
    status: str | None = None
    retains: bool = False
    warm_pool: bool = False
    reuse_on_scale_in: bool = False
    waiting: tuple[tuple[str, str], ...] = ()

    @property
    def deleting(self) -> bool:
        return bool(self.status)


def _epoch(text: str) -> datetime:
    return datetime.fromtimestamp(int(text), tz=UTC)
