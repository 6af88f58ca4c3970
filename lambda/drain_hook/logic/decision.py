"""The drain decision: a pure function of (state, what ECS and Auto Scaling report, now).

Nothing here calls AWS. The drain flow gathers an Observation, asks `decide` what to do, and
carries out the returned Plan. That keeps every rule testable without AWS, and lets a dry run
report exactly what a real run would do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from drain_hook.config import Settings
from drain_hook.models.state import Action, DrainState, TaskCounts

TaskKind = Literal["service", "daemon", "standalone"]

DRAINABLE_STATUSES = frozenset({"ACTIVE", "DRAINING"})
# ECS can't move these to DRAINING (UpdateContainerInstancesState API reference).
NOT_DRAINABLE_STATUSES = frozenset(
    {"REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED", "INACTIVE"}
)
LIFECYCLE_WAIT_STATE = "Terminating:Wait"


@dataclass(frozen=True)
class TaskView:
    """One task on the instance that is not STOPPED yet."""

    arn: str
    kind: TaskKind
    last_status: str
    desired_status: str


@dataclass(frozen=True)
class Observation:
    """What AWS reported this round.

    lifecycle_waiting: None when there is no lifecycle action to watch.
    instance_status: None when no container instance exists for the EC2 instance.
    tasks: the unstopped tasks, listed after the instance was set to DRAINING.
    """

    lifecycle_waiting: bool | None
    instance_status: str | None
    tasks: tuple[TaskView, ...] = ()
    drain_failure: str | None = None


@dataclass(frozen=True)
class Plan:
    """What to do this round, and the state to return."""

    state: DrainState
    complete_lifecycle: bool = False
    record_heartbeat: bool = False
    stop_tasks: tuple[str, ...] = ()
    stop_reason: str = ""
    start_loop: bool = False
    continue_in_new_execution: bool = False
    forced: bool = False
    writes: list[str] = field(default_factory=list)


def backoff_seconds(polls: int, settings: Settings) -> int:
    """Wait before the next poll: the first interval, doubled each poll, up to the longest."""
    exponent = min(polls, 20)
    return min(
        settings.poll_interval_first_seconds * 2**exponent, settings.poll_interval_max_seconds
    )


def count_tasks(tasks: tuple[TaskView, ...]) -> TaskCounts:
    counts = {"service": 0, "daemon": 0, "standalone": 0}
    for task in tasks:
        counts[task.kind] += 1
    return TaskCounts(**counts)


def is_first_round(state: DrainState) -> bool:
    """The round run for the lifecycle event itself: the wait loop has not been started yet."""
    return state.execution_name is None


def instance_needs_draining(observation: Observation) -> bool:
    return observation.instance_status == "ACTIVE"


def decide(state: DrainState, observation: Observation, now: datetime, settings: Settings) -> Plan:
    """Decide one round of the drain: the first (no wait loop yet) or a poll of the loop."""
    first_round = is_first_round(state)
    base = state.model_copy(
        update={
            "polls": state.polls if first_round else state.polls + 1,
            "polls_in_execution": state.polls_in_execution
            if first_round
            else state.polls_in_execution + 1,
            "tasks_remaining": len(observation.tasks),
            "tasks": count_tasks(observation.tasks),
        }
    )

    def finish(action: Action, reason: str, complete: bool, forced: bool = False) -> Plan:
        done_state = base.model_copy(
            update={"done": True, "action": action, "reason": reason, "wait_seconds": 0}
        )
        complete = complete and state.completes_lifecycle
        writes = ["complete lifecycle action CONTINUE"] if complete else []
        return Plan(state=done_state, complete_lifecycle=complete, forced=forced, writes=writes)

    if state.completes_lifecycle and observation.lifecycle_waiting is False:
        return finish(
            "lifecycle_ended",
            f"instance is no longer in {LIFECYCLE_WAIT_STATE}: completed, terminated or gone",
            complete=False,
        )
    if observation.instance_status is None:
        return finish(
            "not_registered",
            f"no container instance for {state.instance_id} in cluster {state.cluster}",
            complete=True,
        )
    if observation.instance_status in NOT_DRAINABLE_STATUSES:
        return finish(
            "not_drainable",
            f"container instance is {observation.instance_status}: ECS can't drain it",
            complete=True,
        )

    holding = tuple(
        task
        for task in observation.tasks
        if settings.daemon_tasks_hold_instance or task.kind != "daemon"
    )
    pre_writes = ["set container instance DRAINING"] if instance_needs_draining(observation) else []

    if not holding and state.deadline_stop_at is not None:
        return finish("deadline", "tasks stopped at the drain deadline", complete=True, forced=True)
    if not holding:
        drained = "completed" if state.completes_lifecycle else "drained"
        reason = "no unstopped task left on the instance"
        if observation.tasks:
            reason = "only daemon-service tasks left, and they do not hold the instance"
        plan = finish(drained, reason, complete=True)
        return replace(plan, writes=pre_writes + plan.writes)

    # Tasks remain. Past the deadline: stop them (once), give them the grace, then complete.
    if now >= state.deadline_at:
        if settings.at_deadline == "stop_tasks":
            if state.deadline_stop_at is None:
                to_stop = tuple(t.arn for t in holding if t.desired_status != "STOPPED")
                stopping = base.model_copy(
                    update={
                        "action": "stopping",
                        "deadline_stop_at": now,
                        "reason": f"drain deadline passed with {len(holding)} task(s) left",
                        "wait_seconds": max(1, settings.deadline_stop_grace_seconds),
                    }
                )
                return _continue(
                    stopping,
                    now,
                    settings,
                    Plan(
                        state=stopping,
                        stop_tasks=to_stop,
                        stop_reason="ecs-drain-hook: drain deadline reached",
                        writes=[*pre_writes, f"stop {len(to_stop)} task(s) at the deadline"],
                    ),
                    fixed_wait=True,
                )
            grace_end = state.deadline_stop_at + timedelta(
                seconds=settings.deadline_stop_grace_seconds
            )
            if now < grace_end:
                waiting = base.model_copy(
                    update={
                        "action": "stopping",
                        "wait_seconds": max(1, int((grace_end - now).total_seconds())),
                    }
                )
                return _continue(waiting, now, settings, Plan(state=waiting), fixed_wait=True)
        return finish(
            "deadline",
            f"drain deadline passed with {len(holding)} task(s) left: completing anyway",
            complete=True,
            forced=True,
        )

    stop: tuple[str, ...] = ()
    stop_reason = ""
    if settings.standalone_tasks == "stop":
        grace_end = state.started_at + timedelta(seconds=settings.standalone_grace_seconds)
        if now >= grace_end:
            stop = tuple(
                t.arn for t in holding if t.kind == "standalone" and t.desired_status != "STOPPED"
            )
            stop_reason = "ecs-drain-hook: instance draining, standalone grace period over"

    draining = base.model_copy(
        update={
            "action": "draining",
            "reason": f"{len(holding)} unstopped task(s) hold the instance",
            "wait_seconds": backoff_seconds(base.polls, settings),
        }
    )
    writes = list(pre_writes)
    if stop:
        writes.append(f"stop {len(stop)} standalone task(s)")
    plan = Plan(state=draining, stop_tasks=stop, stop_reason=stop_reason, writes=writes)
    return _continue(draining, now, settings, plan)


def _continue(
    state: DrainState, now: datetime, settings: Settings, plan: Plan, fixed_wait: bool = False
) -> Plan:
    """Add what every round that keeps waiting needs: heartbeat, wait caps, loop bookkeeping."""
    wait = state.wait_seconds
    update: dict[str, object] = {}
    if not fixed_wait:
        # Wake up at the deadline and at the end of the standalone grace, not after them.
        wait = min(wait, max(1, int((state.deadline_at - now).total_seconds())))
        if settings.standalone_tasks == "stop":
            grace_end = state.started_at + timedelta(seconds=settings.standalone_grace_seconds)
            if now < grace_end:
                wait = min(wait, max(1, int((grace_end - now).total_seconds())))
    heartbeat = False
    every = state.heartbeat_every_seconds
    if state.completes_lifecycle and every:
        # Heartbeat now if the next poll would come later than `every` after the last heartbeat:
        # heartbeats are then never more than `every` (half the hook's timeout) apart.
        wait = min(wait, every)
        last = state.last_heartbeat_at or state.started_at
        heartbeat = not is_first_round(state) and now + timedelta(seconds=wait) > last + timedelta(
            seconds=every
        )
        if heartbeat:
            update["last_heartbeat_at"] = now
    update["wait_seconds"] = wait

    first_round = is_first_round(state)
    start_loop = first_round
    carry_on = not first_round and state.polls_in_execution >= settings.polls_per_execution
    if carry_on:
        update.update(
            {
                "polls_in_execution": 0,
                "execution_generation": state.execution_generation + 1,
            }
        )
    new_state = state.model_copy(update=update)
    writes = list(plan.writes)
    if heartbeat:
        writes.append("record lifecycle heartbeat")
    if start_loop:
        writes.append("start the wait loop")
    if carry_on:
        writes.append("carry on in a fresh execution")
    return Plan(
        state=new_state,
        record_heartbeat=heartbeat,
        stop_tasks=plan.stop_tasks,
        stop_reason=plan.stop_reason,
        start_loop=start_loop,
        continue_in_new_execution=carry_on,
        writes=writes,
    )
