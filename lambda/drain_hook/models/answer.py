"""What an invocation returns, whatever the event: one `Answer`.

A round of the drain (a lifecycle event, a manual invoke, a poll of the wait loop) answers with
its drain state, which the wait loop passes back unchanged. Every other event (a task that
stopped, a loop's end, the sweep, a Spot warning, an event that needs nothing) answers with a
terminal answer built by `Answer.terminal`: done, with what it did and why.

Standard library only: the busiest events answer without loading pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from drain_hook.models.state import DrainState

# The short word that says what a drain round did (documented with the event shapes).
Action = Literal[
    "ignored",  # a test notification or an event that needs nothing: no AWS write
    "not_registered",  # no container instance for this EC2 instance: completed at once
    "not_drainable",  # REGISTERING, DEREGISTERING, REGISTRATION_FAILED or INACTIVE: completed
    "draining",  # tasks remain: the wait loop polls again after wait_seconds
    "duplicate",  # a loop for this lifecycle action is already running: nothing changed
    "stopping",  # the deadline passed: remaining tasks were told to stop, completing after grace
    "completed",  # drained: lifecycle action completed with CONTINUE
    "drained",  # drained, and no lifecycle action to complete (manual invoke without a hook)
    "deadline",  # the deadline passed with tasks remaining: completed with CONTINUE
    "agent_lost",  # the ECS agent stayed disconnected past the grace: completed with CONTINUE
    "released",  # a loop ended badly while the action waited: completed with CONTINUE
    "lifecycle_ended",  # the instance is no longer held by our hook: nothing more to do
    "continued",  # the loop carries on in a fresh execution (history limit)
    "dry_run",  # reported what it would do; wrote nothing
    "group_deleting",  # the group is being deleted: completed at once, no drain
]
# What the events outside the drain rounds answer besides: the sweep's run, a Spot warning acted on.
AnswerAction = Literal[Action, "swept", "spot_draining"]


@dataclass(frozen=True)
class Answer:
    """One invocation's answer: a drain round's state, or a terminal answer."""

    action: AnswerAction
    reason: str = ""
    instance_id: str | None = None
    tasks_remaining: int | None = None
    # What a terminal answer adds for the operator (the sweep's counts and the instances it sent).
    details: Mapping[str, Any] = field(default_factory=dict)
    state: DrainState | None = None  # a drain round's state, returned whole

    @classmethod
    def terminal(
        cls,
        action: AnswerAction,
        reason: str,
        *,
        instance_id: str | None = None,
        tasks_remaining: int | None = None,
        **details: Any,
    ) -> Answer:
        """The answer of an event that is over once it returns: nothing waits on it."""
        return cls(action, reason, instance_id, tasks_remaining, details)

    @classmethod
    def of_state(cls, state: DrainState) -> Answer:
        """A drain round's answer: its state, which the wait loop passes back."""
        return cls(state.action, state.reason, state.instance_id, state.tasks_remaining, {}, state)

    def to_json(self) -> dict[str, Any]:
        if self.state is not None:
            return self.state.model_dump(mode="json")
        return {
            "done": True,
            "instance_id": self.instance_id,
            "tasks_remaining": self.tasks_remaining,
            "action": self.action,
            "wait_seconds": 0,
            "reason": self.reason,
            **self.details,
        }
