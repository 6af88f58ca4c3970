"""The drain state: what a drain round returns, and what the wait loop passes back unchanged.

A state passed back is input like any other: its types are strict (a number is a JSON number, a
boolean is true/false) and the drain checks the values that matter (when the hold began, which
container instance and lifecycle action) against AWS's own record before acting on them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

from drain_hook.models.answer import Action
from drain_hook.models.observations import INSTANCE_ID_PATTERN

STATE_VERSION = 2

HoldStartSource = Literal["scaling_activity", "drain_record", "first_seen"]


def _iso_text(value: Any) -> Any:
    """A time in a state is an ISO 8601 string with its offset; no epoch numbers or other types."""
    if isinstance(value, datetime | str):
        return value
    raise ValueError(f"expected an ISO 8601 time string, got {type(value).__name__}")


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class TaskCounts(BaseModel):
    """Unstopped tasks on the instance by kind."""

    model_config = ConfigDict(extra="forbid")

    service: StrictInt = Field(default=0, ge=0)
    daemon: StrictInt = Field(default=0, ge=0)
    standalone: StrictInt = Field(default=0, ge=0)


class RetryPolicy(BaseModel):
    """What the state machine reads when a poll fails (it never decides anything else).

    failed_seconds, last_error, failed_at and failing_since (when the first of the failing polls
    failed, `$$.State.EnteredTime`) are written by the state machine while polls fail; a poll
    that succeeds starts again from zero.
    """

    model_config = ConfigDict(extra="forbid")

    wait_seconds: StrictInt = Field(ge=1, le=3600)
    release_after_seconds: StrictInt = Field(ge=60)
    failed_seconds: StrictInt = Field(default=0, ge=0)
    last_error: dict[str, Any] | None = None
    failed_at: StrictStr | None = None
    failing_since: StrictStr | None = None


class HeartbeatPlan(BaseModel):
    """How the state machine cuts a long wait: `count` heartbeats `every` seconds, then `then`
    seconds more before the next poll (the state machine counts `count` down as it goes)."""

    model_config = ConfigDict(extra="forbid")

    every: StrictInt = Field(ge=1)
    count: StrictInt = Field(ge=0)
    then: StrictInt = Field(ge=0)


class DrainState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state_version: Literal[2] = STATE_VERSION
    done: StrictBool = False
    action: Action
    instance_id: StrictStr = Field(pattern=INSTANCE_ID_PATTERN)
    tasks_remaining: StrictInt = Field(default=0, ge=0)
    tasks: TaskCounts = Field(default_factory=TaskCounts)
    wait_seconds: StrictInt = Field(default=0, ge=0)
    reason: StrictStr = ""

    cluster: StrictStr = Field(min_length=1)
    container_instance_arn: StrictStr | None = None
    asg_name: StrictStr | None = None
    hook_name: StrictStr | None = None
    lifecycle_action_token: StrictStr | None = None
    lifecycle_state: StrictStr | None = None
    dry_run: StrictBool = False
    planned: list[StrictStr] = Field(default_factory=list)  # dry run: the writes it would make

    # When the hold began (AWS's record, see hold_start_source) and the deadline derived from it.
    started_at: IsoTime
    hold_start_source: HoldStartSource = "first_seen"
    deadline_at: IsoTime
    max_drain_seconds: StrictInt = Field(ge=1)  # the setting the deadline was derived with
    heartbeat_timeout_seconds: StrictInt | None = Field(default=None, ge=1)
    last_heartbeat_at: IsoTime | None = None
    agent_disconnected_since: IsoTime | None = None

    polls: StrictInt = Field(default=0, ge=0)
    polls_in_execution: StrictInt = Field(default=0, ge=0)
    # At most how many history events the execution this state runs in (or starts) has written,
    # counted at each state's worst (drain_hook.history). None: unknown (a state from before the
    # count), and the next poll carries on in a fresh execution.
    history_events: StrictInt | None = Field(default=None, ge=1)
    execution_name: StrictStr | None = None
    # Which first round started the loop: two deliveries of one event never build the same
    # input, so StartExecution's "same name and input" idempotency can't hide a duplicate.
    round_id: StrictStr | None = None
    execution_generation: StrictInt = Field(default=0, ge=0)
    service_strategies: dict[str, Literal["REPLICA", "DAEMON"]] = Field(default_factory=dict)
    # The services that had tasks on the instance when the drain began (RELEASE_WHEN=
    # services_steady waits for them). Input like the rest: a release never rests on this list
    # alone (the flow adds what AWS records, so a shortened list can only be widened).
    release_services: list[StrictStr] = Field(default_factory=list)
    retry: RetryPolicy | None = None
    # The retry count (retry.failed_seconds) at which the deadline has passed, written by each
    # poll that keeps waiting: the state machine compares numbers, not timestamps, whose formats
    # AWS and local interpreters read differently. Kept out of `retry`, which the state
    # machine rebuilds as polls fail.
    deadline_after_failed_seconds: StrictInt | None = Field(default=None, ge=0)
    heartbeat_plan: HeartbeatPlan | None = None

    @property
    def completes_lifecycle(self) -> bool:
        """True when there is a lifecycle action to complete (not a report-only manual drain)."""
        return self.asg_name is not None and self.hook_name is not None

    def finished(
        self, action: Action, reason: str | None = None, *, wait_seconds: int = 0
    ) -> DrainState:
        """This state as a terminal answer: done with `action` (and `reason`, when given)."""
        update: dict[str, Any] = {"done": True, "action": action, "wait_seconds": wait_seconds}
        if reason is not None:
            update["reason"] = reason
        return self.model_copy(update=update)

    def elapsed_seconds(self, now: datetime) -> float:
        return (now - self.started_at).total_seconds()
