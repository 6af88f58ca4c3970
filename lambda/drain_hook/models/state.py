"""The drain state: what each invocation returns, and what the wait loop passes back unchanged."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

STATE_VERSION = 1

# The short word that says what this invocation did (documented in the README).
Action = Literal[
    "ignored",  # a test notification: nothing to do
    "not_registered",  # no container instance for this EC2 instance: completed at once
    "not_drainable",  # REGISTERING, DEREGISTERING, REGISTRATION_FAILED or INACTIVE: completed
    "draining",  # tasks remain: the wait loop polls again after wait_seconds
    "duplicate",  # a loop for this lifecycle action already runs: this event changes nothing
    "stopping",  # the deadline passed: remaining tasks were told to stop, completing after grace
    "completed",  # drained: lifecycle action completed with CONTINUE
    "drained",  # drained, and no lifecycle action to complete (manual invoke without a hook)
    "deadline",  # the deadline passed with tasks remaining: completed with CONTINUE
    "lifecycle_ended",  # the instance left Terminating:Wait elsewhere: nothing more to do
    "continued",  # the loop carries on in a fresh execution (history limit)
    "dry_run",  # reported what it would do; wrote nothing
]


class TaskCounts(BaseModel):
    """Unstopped tasks on the instance by kind."""

    model_config = ConfigDict(extra="forbid")

    service: int = 0
    daemon: int = 0
    standalone: int = 0


class DrainState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state_version: Literal[1] = STATE_VERSION
    done: bool = False
    action: Action
    instance_id: str = Field(pattern=r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
    tasks_remaining: int = Field(default=0, ge=0)
    tasks: TaskCounts = Field(default_factory=TaskCounts)
    wait_seconds: int = Field(default=0, ge=0)
    reason: str = ""

    cluster: str = Field(min_length=1)
    container_instance_arn: str | None = None
    asg_name: str | None = None
    hook_name: str | None = None
    lifecycle_action_token: str | None = None
    dry_run: bool = False
    planned: list[str] = Field(default_factory=list)  # dry run: the writes it would make

    started_at: AwareDatetime
    deadline_at: AwareDatetime
    heartbeat_every_seconds: int | None = None
    last_heartbeat_at: AwareDatetime | None = None
    deadline_stop_at: AwareDatetime | None = None

    polls: int = Field(default=0, ge=0)
    polls_in_execution: int = Field(default=0, ge=0)
    execution_name: str | None = None
    execution_generation: int = Field(default=0, ge=0)
    service_strategies: dict[str, Literal["REPLICA", "DAEMON"]] = Field(default_factory=dict)

    @property
    def completes_lifecycle(self) -> bool:
        """True when there is a lifecycle action to complete (not a report-only manual drain)."""
        return self.asg_name is not None and self.hook_name is not None

    def elapsed_seconds(self, now: datetime) -> float:
        return (now - self.started_at).total_seconds()
