"""The drain decision: a pure function of (state, what ECS and Auto Scaling report, now).

Nothing here calls AWS. The drain flow gathers an Observation, asks `decide` what to do, and
carries out the returned Plan. That keeps every rule testable without AWS, and lets a dry run
report exactly what a real run would do.

Times come from AWS's records, never from an event: `state.started_at` is when the instance
entered the hook's wait as Auto Scaling records it (or when we first saw it), and the deadline is
derived from it and the settings on every round. A plan whose destructive step rests on a time
(the deadline, the standalone grace, a lost agent) says so in `rests_on`, and the flow checks that
time against AWS before carrying it out.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from drain_hook import history
from drain_hook.models.observations import (
    ContainerInstanceView,
    ServiceView,
    TaskView,
    short_services,
)
from drain_hook.models.state import Action, DrainState, HeartbeatPlan, RetryPolicy, TaskCounts
from drain_hook.settings import ERROR_RETRY_SECONDS, Settings, lifecycle_global_timeout

DRAINABLE_STATUSES = frozenset({"ACTIVE", "DRAINING"})
# ECS can't move these to DRAINING (UpdateContainerInstancesState API reference).
NOT_DRAINABLE_STATUSES = frozenset(
    {"REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED", "INACTIVE"}
)
# Finish this long before the hook's global timeout would end the hold for us.
GLOBAL_TIMEOUT_MARGIN_SECONDS = 60
# Lambda's longest timeout (15 minutes): no poll lasts longer, whatever the function's setting.
LONGEST_LAMBDA_RUN_SECONDS = 900

# How a round ends the drain, for the metrics: "forced" the first time the deadline policy acts
# (stopping tasks, or completing with tasks left); "after_deadline" when the instance empties
# after the deadline policy stopped its tasks (already counted as forced).
Finish = Literal["completed", "forced", "after_deadline", "agent_lost", "none"]
RestsOn = Literal["hold_start", "agent_lost_since", "daemon_kinds", "release_services"]


@dataclass(frozen=True)
class Observation:
    """What AWS reported this round.

    held: whether our hook still holds the instance (None: no lifecycle action to watch).
    instance: the container instance, None when none is registered for the EC2 instance.
    tasks: the unstopped tasks, listed after the instance was set to DRAINING.
    """

    held: bool | None
    instance: ContainerInstanceView | None
    tasks: tuple[TaskView, ...] = ()
    drain_failure: str | None = None
    last_stopped_at: datetime | None = None  # latest stoppedAt of a task on the instance
    # Services DescribeServices reported this round (counts, latest event), by name.
    services: Mapping[str, ServiceView] = field(default_factory=dict)
    # Services of the instance's STOPPED tasks ECS still lists.
    stopped_services: frozenset[str] = frozenset()


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
    finish: Finish = "none"
    # When the instance's ECS agent was first seen disconnected, to record on the instance;
    # "clear" when it is connected again and a time was recorded.
    record_agent_lost: datetime | Literal["clear"] | None = None
    rests_on: tuple[RestsOn, ...] = ()
    writes: list[str] = field(default_factory=list)
    last_stopped_at: datetime | None = None
    # The failure this plan releases on (`failure_kind`), set once its rests_on is checked.
    failure: str = ""


def deadline_for(
    started_at: datetime,
    max_drain_seconds: int,
    heartbeat_timeout_seconds: int | None,
    deadline_grace_seconds: int,
) -> datetime:
    """The drain deadline: MAX_DRAIN_SECONDS after the hold began, brought forward when the
    hook's global timeout (which heartbeats never extend) would end the hold first."""
    limit = max_drain_seconds
    if heartbeat_timeout_seconds:
        hard = (
            lifecycle_global_timeout(heartbeat_timeout_seconds)
            - GLOBAL_TIMEOUT_MARGIN_SECONDS
            - deadline_grace_seconds
        )
        limit = min(limit, max(0, hard))
    return started_at + timedelta(seconds=limit)


def settings_deadline(state: DrainState, settings: Settings) -> datetime:
    return deadline_for(
        state.started_at,
        settings.max_drain_seconds,
        state.heartbeat_timeout_seconds,
        settings.deadline_grace_seconds,
    )


def backoff_seconds(polls: int, settings: Settings) -> int:
    """Wait before the next poll: the first interval, doubled each poll, up to the longest.

    With RELEASE_WHEN=services_steady, never longer than the first interval: an instance that
    empties while its services are short is released by a poll only (a task-stopped event finds
    it empty and leaves it), and nothing wakes the loop when those services catch up."""
    exponent = min(polls, 20)
    longest = settings.poll_interval_max_seconds
    if settings.release_when == "services_steady":
        longest = settings.poll_interval_first_seconds
    return min(settings.poll_interval_first_seconds * 2**exponent, longest)


def first_wait_spread(instance_id: str, settings: Settings) -> int:
    """Seconds added to the first wait, fixed per instance, up to a quarter of the interval.

    A scale-in's lifecycle events arrive together: without a spread, every loop of the burst
    would poll in the same second, again and again, against the same API rate limits. Each
    later wait counts from its own poll, so one spread keeps them apart for the whole drain.
    """
    share = zlib.crc32(instance_id.encode()) / 2**32
    return int(settings.poll_interval_first_seconds // 4 * share)


def heartbeat_every(state: DrainState) -> int | None:
    """Heartbeats stay at most half the hook's heartbeat timeout apart."""
    if not state.completes_lifecycle or not state.heartbeat_timeout_seconds:
        return None
    return max(1, state.heartbeat_timeout_seconds // 2)


def retry_policy(state: DrainState, settings: Settings) -> RetryPolicy:
    every = heartbeat_every(state)
    wait = min(ERROR_RETRY_SECONDS, every) if every else ERROR_RETRY_SECONDS
    return RetryPolicy(wait_seconds=wait, release_after_seconds=settings.error_release_seconds)


def failing_for_seconds(state: DrainState, now: datetime) -> float | None:
    """How long polls have been failing, by the clock: from the first failed poll's time the
    state machine recorded, to now. None when unknown, when that time is not between the hold's
    start and now, or when the last failure it noted (failed_at) is not the one just before this
    poll: at most one retry wait and one Lambda run ago. A state edited or passed back by hand
    (an old response) doesn't get to shorten the hold; the state machine's own count applies."""
    retry = state.retry
    if retry is None or not retry.failing_since or not retry.failed_at:
        return None
    since, last = _aware_time(retry.failing_since), _aware_time(retry.failed_at)
    if since is None or last is None or not state.started_at <= since <= last <= now:
        return None
    if (now - last).total_seconds() > retry.wait_seconds + LONGEST_LAMBDA_RUN_SECONDS:
        return None
    return (now - since).total_seconds()


def _aware_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def history_through_poll(state: DrainState) -> int | None:
    """At most how many history events the execution has written by the end of this poll's round:
    what the state passed back says, plus the round's heartbeats between polls, its failed polls
    and this poll, each at its worst. None when the state passed back does not say."""
    if state.history_events is None:
        return None
    return state.history_events + history.round_events(
        _heartbeats_planned(state), _failed_polls(state)
    )


def _heartbeats_planned(state: DrainState) -> int:
    plan = state.heartbeat_plan
    if plan is None:
        return 0
    # The state machine counts the plan down as it records the heartbeats: what it set out with
    # follows from the wait the plan cut (see _keep_waiting). A heartbeat the action refused ends
    # the plan early, so this is an upper bound.
    return max(plan.count, (state.wait_seconds - 1) // plan.every)


def _failed_polls(state: DrainState) -> int:
    # The state machine adds one retry wait to failed_seconds for each failed poll.
    retry = state.retry
    if retry is None or retry.failed_seconds <= 0:
        return 0
    return -(-retry.failed_seconds // retry.wait_seconds)


def next_round_fits(history_events: int | None, heartbeats: int, retry: RetryPolicy | None) -> bool:
    """Whether the next round, at its worst, still fits in this execution's history: its planned
    heartbeats, polls failing until the error release ends the loop (or half an execution's
    worth), the poll that ends the round, and the longest way from there to the execution's end.
    """
    if history_events is None:
        return False
    failing = 0
    if retry is not None:
        failing = min(
            retry.release_after_seconds // retry.wait_seconds, history.FAILED_POLLS_COUNTED_MAX
        )
    worst = history.round_events(heartbeats, failing) + history.CLOSING_EVENTS_MAX
    return history_events + worst <= history.HISTORY_BUDGET


def holding_tasks(tasks: tuple[TaskView, ...], settings: Settings) -> tuple[TaskView, ...]:
    """The tasks that hold the instance: all unstopped ones, daemon tasks only if they hold."""
    return tuple(
        task for task in tasks if settings.daemon_tasks_hold_instance or task.kind != "daemon"
    )


def past_half_deadline(state: DrainState, deadline: datetime, now: datetime) -> bool:
    """Whether the drain has used half the time its deadline gives it (the stuck-drain log)."""
    return now >= state.started_at + (deadline - state.started_at) / 2


def _services_text(services: tuple[ServiceView, ...]) -> str:
    return ", ".join(
        f"{s.name} (not read)" if s.status == "UNREAD" else f"{s.name} {s.running}/{s.desired}"
        for s in services
    )


def count_tasks(tasks: tuple[TaskView, ...]) -> TaskCounts:
    counts = {"service": 0, "daemon": 0, "standalone": 0}
    for task in tasks:
        counts[task.kind] += 1
    return TaskCounts(**counts)


def is_first_round(state: DrainState) -> bool:
    """The round run for the lifecycle event itself: the wait loop has not been started yet."""
    return state.execution_name is None


def decide(state: DrainState, observation: Observation, now: datetime, settings: Settings) -> Plan:
    """Decide one round of the drain: the first (no wait loop yet) or a poll of the loop."""
    first_round = is_first_round(state)
    deadline = round_deadline(state, observation, settings)
    base = state.model_copy(
        update={
            "polls": state.polls if first_round else state.polls + 1,
            "polls_in_execution": state.polls_in_execution
            if first_round
            else state.polls_in_execution + 1,
            "history_events": history.EXECUTION_STARTED_EVENTS
            if first_round
            else history_through_poll(state),
            "tasks_remaining": len(observation.tasks),
            "tasks": count_tasks(observation.tasks),
            "deadline_at": deadline,
            "max_drain_seconds": settings.max_drain_seconds,
            "retry": retry_policy(state, settings),
        }
    )

    def done(action: Action, reason: str, *, complete: bool, finish: Finish = "none") -> Plan:
        done_state = base.model_copy(
            update={"done": True, "action": action, "reason": reason, "wait_seconds": 0}
        )
        complete = complete and state.completes_lifecycle
        writes = ["complete lifecycle action CONTINUE"] if complete else []
        return Plan(
            state=done_state,
            complete_lifecycle=complete,
            finish=finish,
            writes=writes,
            last_stopped_at=observation.last_stopped_at,
        )

    if state.completes_lifecycle and observation.held is False:
        return done(
            "lifecycle_ended",
            "our hook no longer holds the instance: completed, timed out, terminated or gone",
            complete=False,
        )
    instance = observation.instance
    if instance is None:
        pooled = (state.lifecycle_state or "").startswith("Warmed:")
        return done(
            "not_registered",
            f"no container instance for {state.instance_id} in cluster {state.cluster}"
            + (" (a warm-pool instance never registers with ECS)" if pooled else ""),
            complete=True,
        )
    if instance.status in NOT_DRAINABLE_STATUSES:
        return done(
            "not_drainable",
            f"container instance is {instance.status}: ECS can't drain it",
            complete=True,
        )

    holding = holding_tasks(observation.tasks, settings)
    pre_writes = ["set container instance DRAINING"] if instance.status == "ACTIVE" else []

    if not holding and state.action == "stopping":
        return done(
            "deadline",
            "tasks stopped at the drain deadline",
            complete=True,
            finish="after_deadline",
        )
    steady_wait = settings.release_when == "services_steady"
    short = short_services(state.release_services, observation.services) if steady_wait else ()
    if not holding and short and now < deadline:
        return _wait_for_services(base, short, pre_writes, now, deadline, settings)
    if not holding:
        drained = "completed" if state.completes_lifecycle else "drained"
        reason = "no unstopped task left on the instance"
        if observation.tasks:
            reason = "only daemon-service tasks left, and they do not hold the instance"
        if short:
            reason += f"; the deadline came before {_services_text(short)} ran their desired count"
        plan = done(drained, reason, complete=True, finish="completed")
        rests_on: tuple[RestsOn, ...] = ("daemon_kinds",) if observation.tasks else ()
        if steady_wait and now < deadline:
            # Which services had tasks here comes from AWS too, never from the state alone.
            rests_on += ("release_services",)
        return replace(plan, writes=pre_writes + plan.writes, rests_on=rests_on)

    # The ECS agent: tasks on an instance whose agent is gone never reach STOPPED.
    record = instance.drain_record
    lost_since = _agent_lost_since(state, instance, now)
    recorded = record.agent_lost_since if record is not None else None
    record_lost: datetime | Literal["clear"] | None = None
    if lost_since is not None and lost_since != recorded:
        record_lost = lost_since  # first seen away, or away again after a change: (re)start
    elif instance.agent_connected and recorded is not None:
        record_lost = "clear"
    base = base.model_copy(update={"agent_disconnected_since": lost_since})
    if lost_since is not None:
        grace_end = lost_since + timedelta(seconds=settings.agent_disconnected_grace_seconds)
        if now >= grace_end and now < deadline:
            plan = done(
                "agent_lost",
                f"the ECS agent has been disconnected since {lost_since:%Y-%m-%dT%H:%M:%SZ} "
                f"(more than AGENT_DISCONNECTED_GRACE_SECONDS="
                f"{settings.agent_disconnected_grace_seconds}): its {len(holding)} task(s) "
                "can't stop, releasing the instance",
                complete=True,
                finish="agent_lost",
            )
            return replace(plan, rests_on=("agent_lost_since",))

    # Past the deadline: stop what remains (once), give it the grace, then complete.
    if now >= deadline:
        grace_end = deadline + timedelta(seconds=settings.deadline_grace_seconds)
        if settings.at_deadline == "stop_tasks" and now < grace_end:
            to_stop = tuple(t.arn for t in holding if t.desired_status != "STOPPED")
            stopping = base.model_copy(
                update={
                    "action": "stopping",
                    "reason": f"drain deadline passed with {len(holding)} task(s) left: "
                    f"stopping them, completing at {grace_end:%Y-%m-%dT%H:%M:%SZ}",
                    "wait_seconds": max(1, _seconds_until(grace_end, now)),
                }
            )
            writes = [*pre_writes]
            if to_stop:
                writes.append(f"stop {len(to_stop)} task(s) at the deadline")
            plan = Plan(
                state=stopping,
                stop_tasks=to_stop,
                stop_reason="ecs-drain-hook: drain deadline reached",
                finish="forced" if state.action != "stopping" else "none",
                record_agent_lost=record_lost,
                rests_on=("hold_start",) if to_stop else (),
                writes=writes,
            )
            return _keep_waiting(plan, now, settings, fixed_wait=True)
        plan = done(
            "deadline",
            f"drain deadline passed with {len(holding)} task(s) left: completing anyway",
            complete=True,
            finish="after_deadline" if state.action == "stopping" else "forced",
        )
        return replace(plan, rests_on=("hold_start",))

    stop: tuple[str, ...] = ()
    stop_reason = ""
    standalone_end = state.started_at + timedelta(seconds=settings.standalone_grace_seconds)
    if settings.standalone_tasks == "stop" and now >= standalone_end:
        stop = tuple(
            t.arn for t in holding if t.kind == "standalone" and t.desired_status != "STOPPED"
        )
        stop_reason = "ecs-drain-hook: instance draining, standalone grace period over"

    draining = base.model_copy(
        update={
            "action": "draining",
            "reason": f"{len(holding)} unstopped task(s) hold the instance",
            "wait_seconds": backoff_seconds(base.polls, settings)
            + (first_wait_spread(state.instance_id, settings) if first_round else 0),
        }
    )
    writes = list(pre_writes)
    if stop:
        writes.append(f"stop {len(stop)} standalone task(s)")
    plan = Plan(
        state=draining,
        stop_tasks=stop,
        stop_reason=stop_reason,
        record_agent_lost=record_lost,
        rests_on=("hold_start",) if stop else (),
        writes=writes,
    )
    # Wake at the deadline, the end of the standalone grace and of the agent grace, not after.
    wake = [deadline]
    if settings.standalone_tasks == "stop" and now < standalone_end:
        wake.append(standalone_end)
    if lost_since is not None:
        wake.append(lost_since + timedelta(seconds=settings.agent_disconnected_grace_seconds))
    return _keep_waiting(plan, now, settings, wake_by=min(wake))


def _wait_for_services(
    base: DrainState,
    short: tuple[ServiceView, ...],
    pre_writes: list[str],
    now: datetime,
    deadline: datetime,
    settings: Settings,
) -> Plan:
    """RELEASE_WHEN=services_steady: the instance is empty, but services that had tasks on it
    run fewer than their desired count: keep the hold (until the deadline) so the next
    instance of a refresh is not taken while they are short."""
    waiting = base.model_copy(
        update={
            "action": "draining",
            "reason": f"no task holds the instance; waiting for {len(short)} service(s) to run "
            f"their desired count (RELEASE_WHEN=services_steady): {_services_text(short)}",
            "wait_seconds": backoff_seconds(base.polls, settings),
        }
    )
    plan = Plan(state=waiting, writes=list(pre_writes))
    return _keep_waiting(plan, now, settings, wake_by=deadline)


def _agent_lost_since(
    state: DrainState, instance: ContainerInstanceView, now: datetime
) -> datetime | None:
    """Since when the agent has been continuously disconnected, as far as AWS shows it.

    ECS's record of our drain comes first. Polls can miss a reconnect and a new disconnect in
    between: the container instance's version then rose by two or more since the disconnection
    was recorded (one more is allowed for our own write of the record), and the count starts
    again from now. A state passed in never makes it earlier than that.
    """
    if instance.agent_connected is not False:
        return None
    record = instance.drain_record
    if record is not None and record.agent_lost_since is not None:
        then, current = record.agent_lost_version, instance.version
        if then is not None and current is not None and current > then + 1:
            return now
        return record.agent_lost_since
    if record is not None:
        return now  # the record has no disconnection yet: this poll is the first to see one
    return state.agent_disconnected_since or now


def _seconds_until(when: datetime, now: datetime) -> int:
    return int((when - now).total_seconds() + 0.999)


def _keep_waiting(
    plan: Plan,
    now: datetime,
    settings: Settings,
    *,
    fixed_wait: bool = False,
    wake_by: datetime | None = None,
) -> Plan:
    """What every round that keeps waiting needs: heartbeat, wait caps, loop bookkeeping."""
    state = plan.state
    wait = state.wait_seconds
    if not fixed_wait and wake_by is not None:
        wait = min(wait, max(1, _seconds_until(wake_by, now)))
    wait = max(1, wait)
    update: dict[str, object] = {}
    heartbeat = False
    heartbeats_between_polls = 0
    every = heartbeat_every(state)
    first_round = is_first_round(state)
    if every:
        # Heartbeats stay at most `every` (half the hook's timeout) apart. A wait longer than
        # that is cut by the state machine, which records a heartbeat every `every` seconds
        # from now; so heartbeat now if the next one (a poll's or the state machine's) would
        # come later than `every` after the last. The first round records its heartbeat
        # before deciding (the flow does it).
        last = state.last_heartbeat_at or state.started_at
        next_beat = now + timedelta(seconds=min(wait, every))
        heartbeat = not first_round and next_beat > last + timedelta(seconds=every)
        if heartbeat:
            update["last_heartbeat_at"] = now
        count = (wait - 1) // every
        heartbeats_between_polls = count
        update["heartbeat_plan"] = HeartbeatPlan(
            every=every, count=count, then=wait - count * every
        )
    else:
        # Always a plan, so the state machine's paths exist: no heartbeats, one wait.
        update["heartbeat_plan"] = HeartbeatPlan(every=wait, count=0, then=wait)
    update["wait_seconds"] = wait
    if state.retry is not None:
        # The state machine counts failures from when the next poll is due (`wait` from now),
        # adding each retry's wait before it is spent: the deadline has passed once the count
        # exceeds the time from then to the deadline by one retry wait.
        until_deadline = max(0, _seconds_until(state.deadline_at, now) - wait)
        update["deadline_after_failed_seconds"] = until_deadline + state.retry.wait_seconds

    # Carry on in a fresh execution (the history quota, see drain_hook.history) when the cap of
    # polls is reached or the next round, planned just above, could pass the history budget.
    carry_on = not first_round and (
        state.polls_in_execution >= settings.polls_per_execution
        or not next_round_fits(state.history_events, heartbeats_between_polls, state.retry)
    )
    if carry_on:
        update.update(
            {
                "polls_in_execution": 0,
                "execution_generation": state.execution_generation + 1,
                "history_events": history.EXECUTION_STARTED_EVENTS,
            }
        )
    writes = list(plan.writes)
    if plan.record_agent_lost == "clear":
        writes.append("clear the agent-lost time on the instance")
    elif plan.record_agent_lost is not None:
        writes.append("record the agent-lost time on the instance")
    if heartbeat:
        writes.append("record lifecycle heartbeat")
    if first_round:
        writes.append("start the wait loop")
    if carry_on:
        writes.append("carry on in a fresh execution")
    return replace(
        plan,
        state=state.model_copy(update=update),
        record_heartbeat=heartbeat,
        start_loop=first_round,
        continue_in_new_execution=carry_on,
        writes=writes,
    )


# --- Spot interruptions and failure releases ----------------------------------------------

FailureKind = Literal["", "deadline", "agent_lost", "interruption"]


def interruption_deadline(observation: Observation, settings: Settings) -> datetime | None:
    """When the deadline policy must act for a Spot instance EC2 is about to interrupt: early
    enough that its stop grace ends at the interruption (the drain record's time). None when
    no interruption is recorded."""
    record = observation.instance.drain_record if observation.instance else None
    if record is None or record.interruption_at is None:
        return None
    return record.interruption_at - timedelta(seconds=settings.deadline_grace_seconds)


def round_deadline(state: DrainState, observation: Observation, settings: Settings) -> datetime:
    """min(the settings' deadline, the Spot interruption's): the round never waits past EC2."""
    deadline = settings_deadline(state, settings)
    interruption = interruption_deadline(observation, settings)
    return deadline if interruption is None else min(deadline, interruption)


def interrupted(state: DrainState, observation: Observation, settings: Settings) -> bool:
    """Whether this round's deadline is the Spot interruption's (not the settings')."""
    interruption = interruption_deadline(observation, settings)
    return interruption is not None and interruption < settings_deadline(state, settings)


def failure_kind(
    plan: Plan, state: DrainState, observation: Observation, settings: Settings
) -> FailureKind:
    """Which failure a plan that completes the lifecycle action releases on, if any: the
    deadline (or the Spot interruption standing for it) with tasks still holding the instance,
    or a lost agent. Those are the releases ON_DRAIN_FAILURE=retain may end with ABANDON,
    except the interruption (EC2 takes the instance whatever the result)."""
    if not plan.complete_lifecycle:
        return ""
    if plan.finish == "agent_lost":
        return "agent_lost"
    holding = [
        t for t in observation.tasks if settings.daemon_tasks_hold_instance or t.kind != "daemon"
    ]
    if plan.state.action != "deadline" or not holding:
        return ""
    return "interruption" if interrupted(state, observation, settings) else "deadline"
