"""What the CLI read from AWS about a drain, in plain dataclasses (no AWS, no formatting)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Target:
    """Where the deployment is: its drain function, wait-loop state machine and cluster(s)."""

    region: str
    function_name: str | None = None
    state_machine_arn: str | None = None
    clusters: tuple[str, ...] = ()
    stack_name: str | None = None  # the stack whose outputs named them, if one did
    # The Lambda's settings as its environment holds them (None: not readable).
    settings: dict[str, str] | None = None

    def setting(self, env: str) -> str | None:
        return (self.settings or {}).get(env)


@dataclass(frozen=True)
class TaskLeft:
    """A task on the instance whose lastStatus is not STOPPED yet."""

    arn: str
    kind: str  # service / daemon / standalone
    service: str | None
    last_status: str
    desired_status: str


@dataclass(frozen=True)
class ServiceHold:
    """A service of the drained instance: its tasks left there, its counts, its latest event."""

    name: str
    tasks_on_instance: int
    running: int | None
    desired: int | None
    pending: int | None = None
    strategy: str | None = None
    status: str | None = None
    latest_event: str | None = None
    latest_event_at: datetime | None = None
    # RELEASE_WHEN=services_steady and the instance is empty: the drain waits for this one.
    waited_for: bool = False


@dataclass(frozen=True)
class Round:
    """One decision of the wait loop, from its execution's history."""

    at: datetime
    action: str
    tasks_remaining: int | None
    reason: str
    wait_seconds: int | None = None
    tasks: dict[str, int] | None = None


@dataclass
class DrainView:
    """One drain under way, as AWS records it."""

    instance_id: str
    cluster: str
    container_instance_arn: str
    container_instance_status: str
    started_at: datetime | None  # the hold start, from the drain record on the instance
    loop: str | None  # the wait loop's execution name, from the drain record
    drain_record: str | None = None  # the attribute's value as ECS keeps it
    action_hook: str | None = None  # the action record: the lifecycle hook and its group
    action_group: str | None = None
    group: str | None = None  # Auto Scaling's word: the instance's group and lifecycle state
    lifecycle_state: str | None = None
    hold_start_source: str | None = None
    deadline_at: datetime | None = None
    at_deadline: str | None = None  # what happens at the deadline, in words
    release_when: str | None = None
    release_services: list[str] = field(default_factory=list)
    agent_connected: bool = True
    agent_lost_since: datetime | None = None
    tasks: list[TaskLeft] = field(default_factory=list)
    services: list[ServiceHold] = field(default_factory=list)
    execution_arn: str | None = None
    execution_status: str | None = None
    console_url: str | None = None
    rounds: list[Round] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"service": 0, "daemon": 0, "standalone": 0}
        for task in self.tasks:
            counts[task.kind] = counts.get(task.kind, 0) + 1
        return counts

    @property
    def held(self) -> bool:
        """Our hook holds it: a drain record and an action record of ours, and Auto Scaling
        shows it waiting in that group."""
        from ecs_drain_hook.runtime.drain_hook.models.observations import HOOK_WAIT_STATES

        return (
            self.loop is not None
            and self.action_group is not None
            and self.group == self.action_group
            and self.lifecycle_state in HOOK_WAIT_STATES
        )


def to_json(value: Any) -> Any:
    """Dataclasses, lists and datetimes as JSON values (times in ISO 8601 with their offset)."""
    if isinstance(value, DrainView):
        data = {k: to_json(v) for k, v in asdict(value).items()}
        data["counts"] = value.counts
        data["held"] = value.held
        return data
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_json(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
