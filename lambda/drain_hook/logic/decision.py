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

from drain_hook import contract, history
from drain_hook.models.answer import Action
from drain_hook.models.observations import (
    NOT_DRAINABLE_STATUSES,
    WARMED_PREFIX,
    ContainerInstanceView,
    ServiceView,
    TaskView,
    holding_tasks,
    short_services,
)
from drain_hook.models.state import DrainState, HeartbeatPlan, RetryPolicy, TaskCounts
from drain_hook.settings import ERROR_RETRY_SECONDS, Settings, lifecycle_global_timeout

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


StopCause = Literal["deadline", "standalone"]
# The reason ECS records on each task a round stops (StopTask's reason).
STOP_REASONS: dict[StopCause, str] = {
    "deadline": f"{contract.SERVICE_NAME}: drain deadline reached",
    "standalone": f"{contract.SERVICE_NAME}: instance draining, standalone grace period over",
}
# The writes a round can make, in the order they are made. "record_drain" is the flow's own: the
# drain recorded on the container instance before the loop that owns it starts.
Write = Literal[
    "set_draining",
    "stop_tasks",
    "complete_lifecycle",
    "record_agent_lost",
    "clear_agent_lost",
    "record_heartbeat",
    "record_drain",
    "start_loop",
    "continue_in_new_execution",
]
_WRITE_WORDS: dict[Write, str] = {
    "set_draining": "set container instance DRAINING",
    "complete_lifecycle": "complete lifecycle action CONTINUE",
    "record_agent_lost": "record the agent-lost time on the instance",
    "clear_agent_lost": "clear the agent-lost time on the instance",
    "record_heartbeat": "record lifecycle heartbeat",
    "record_drain": "record the drain on the container instance",
    "start_loop": "start the wait loop",
    "continue_in_new_execution": "carry on in a fresh execution",
}


@dataclass(frozen=True)
class Plan:
    """What to do this round, and the state to return."""

    state: DrainState
    # The instance was ACTIVE: the round sets it DRAINING (the flow does, before it counts).
    set_draining: bool = False
    complete_lifecycle: bool = False
    record_heartbeat: bool = False
    stop_tasks: tuple[str, ...] = ()
    stop_cause: StopCause | None = None
    start_loop: bool = False
    continue_in_new_execution: bool = False
    finish: Finish = "none"
    # When the instance's ECS agent was first seen disconnected, to record on the instance;
    # "clear" when it is connected again and a time was recorded.
    record_agent_lost: datetime | Literal["clear"] | None = None
    rests_on: tuple[RestsOn, ...] = ()
    last_stopped_at: datetime | None = None
    # The failure this plan releases on (`failure_kind`), set once its rests_on is checked.
    failure: str = ""

    @property
    def stop_reason(self) -> str:
        return STOP_REASONS[self.stop_cause] if self.stop_cause else ""

    @property
    def write_steps(self) -> tuple[Write, ...]:
        """The writes this plan makes, in order, read from its fields."""
        steps: list[Write] = []
        if self.set_draining:
            steps.append("set_draining")
        if self.stop_tasks:
            steps.append("stop_tasks")
        if self.complete_lifecycle:
            steps.append("complete_lifecycle")
        if self.record_agent_lost == "clear":
            steps.append("clear_agent_lost")
        elif self.record_agent_lost is not None:
            steps.append("record_agent_lost")
        if self.record_heartbeat:
            steps.append("record_heartbeat")
        if self.start_loop:
            steps.append("start_loop")
        if self.continue_in_new_execution:
            steps.append("continue_in_new_execution")
        return tuple(steps)

    @property
    def writes(self) -> list[str]:
        """The writes in words, as a dry run reports them."""
        return [self.describe(step) for step in self.write_steps]

    def describe(self, step: Write) -> str:
        """One write in words."""
        if step == "stop_tasks":
            count = len(self.stop_tasks)
            if self.stop_cause == "deadline":
                return f"stop {count} task(s) at the deadline"
            return f"stop {count} standalone task(s)"
        return _WRITE_WORDS[step]


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
    """Decide one round of the drain: the first (no wait loop yet) or a poll of the loop.

    One concern after the other, the first that ends the round wins: nothing to drain (the
    action is over, no container instance, one ECS can't drain), an empty instance, a lost
    agent, the deadline; else the drain keeps waiting."""
    this_round = _Round(state, _counted(state, observation, settings), observation, now, settings)
    ended = _nothing_to_drain(this_round)
    if ended is not None:
        return ended
    holding = holding_tasks(observation.tasks, settings.daemon_tasks_hold_instance)
    if not holding:
        return _empty(this_round)
    assert observation.instance is not None  # _nothing_to_drain answers for no instance
    agent = _agent(state, observation.instance, now)
    this_round = this_round.noting(agent_disconnected_since=agent.lost_since)
    lost = _agent_lost(this_round, agent, holding)
    if lost is not None:
        return lost
    if now >= this_round.deadline:
        return _past_deadline(this_round, holding, agent)
    return _draining(this_round, holding, agent)


@dataclass(frozen=True)
class _Round:
    """What each concern of `decide` reads: the state passed in, the state counted for this
    round (`base`: polls, tasks, deadline, retry policy), what AWS reported, now, the settings."""

    state: DrainState
    base: DrainState
    observation: Observation
    now: datetime
    settings: Settings

    @property
    def deadline(self) -> datetime:
        return self.base.deadline_at

    @property
    def sets_draining(self) -> bool:
        """The instance is ACTIVE: the round sets it DRAINING (the flow, before it counts)."""
        return (
            self.observation.instance is not None and self.observation.instance.status == "ACTIVE"
        )

    def noting(self, **update: object) -> _Round:
        """The round with `update` noted in its state."""
        return replace(self, base=self.base.model_copy(update=update))

    def done(
        self,
        action: Action,
        reason: str,
        *,
        complete: bool,
        finish: Finish = "none",
        rests_on: tuple[RestsOn, ...] = (),
        set_draining: bool = False,
    ) -> Plan:
        """A round that ends the drain (completing the lifecycle action where there is one)."""
        return Plan(
            state=self.base.finished(action, reason),
            set_draining=set_draining,
            complete_lifecycle=complete and self.state.completes_lifecycle,
            finish=finish,
            rests_on=rests_on,
            last_stopped_at=self.observation.last_stopped_at,
        )


@dataclass(frozen=True)
class _Agent:
    """The ECS agent as this round sees it: continuously disconnected since when (None:
    connected), and what to record of it on the container instance ("clear": the time)."""

    lost_since: datetime | None
    record: datetime | Literal["clear"] | None


def _counted(state: DrainState, observation: Observation, settings: Settings) -> DrainState:
    """The state with this round's counts: polls, history, tasks, deadline, retry policy."""
    first_round = is_first_round(state)
    return state.model_copy(
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
            "deadline_at": round_deadline(state, observation, settings),
            "max_drain_seconds": settings.max_drain_seconds,
            "retry": retry_policy(state, settings),
        }
    )


def _nothing_to_drain(this_round: _Round) -> Plan | None:
    """The action is over, or there is no container instance ECS could drain."""
    state, instance = this_round.state, this_round.observation.instance
    if state.completes_lifecycle and this_round.observation.held is False:
        return this_round.done(
            "lifecycle_ended",
            "our hook no longer holds the instance: completed, timed out, terminated or gone",
            complete=False,
        )
    if instance is None:
        pooled = (state.lifecycle_state or "").startswith(WARMED_PREFIX)
        return this_round.done(
            "not_registered",
            f"no container instance for {state.instance_id} in cluster {state.cluster}"
            + (" (a warm-pool instance never registers with ECS)" if pooled else ""),
            complete=True,
        )
    if instance.status in NOT_DRAINABLE_STATUSES:
        return this_round.done(
            "not_drainable",
            f"container instance is {instance.status}: ECS can't drain it",
            complete=True,
        )
    return None


def _empty(this_round: _Round) -> Plan:
    """No task holds the instance: release it, or (RELEASE_WHEN=services_steady) wait for the
    services that had tasks on it."""
    state, observation, settings = this_round.state, this_round.observation, this_round.settings
    now, deadline = this_round.now, this_round.deadline
    if state.action == "stopping":
        return this_round.done(
            "deadline",
            "tasks stopped at the drain deadline",
            complete=True,
            finish="after_deadline",
        )
    steady_wait = settings.release_when == "services_steady"
    short = short_services(state.release_services, observation.services) if steady_wait else ()
    if short and now < deadline:
        return _wait_for_services(this_round, short)
    drained = "completed" if state.completes_lifecycle else "drained"
    reason = "no unstopped task left on the instance"
    if observation.tasks:
        reason = "only daemon-service tasks left, and they do not hold the instance"
    if short:
        reason += f"; the deadline came before {_services_text(short)} ran their desired count"
    rests_on: tuple[RestsOn, ...] = ("daemon_kinds",) if observation.tasks else ()
    if steady_wait and now < deadline:
        # Which services had tasks here comes from AWS too, never from the state alone.
        rests_on += ("release_services",)
    return this_round.done(
        drained,
        reason,
        complete=True,
        finish="completed",
        rests_on=rests_on,
        set_draining=this_round.sets_draining,
    )


def _wait_for_services(this_round: _Round, short: tuple[ServiceView, ...]) -> Plan:
    """RELEASE_WHEN=services_steady: the instance is empty, but services that had tasks on it
    run fewer than their desired count: keep the hold (until the deadline) so the next
    instance of a refresh is not taken while they are short."""
    waiting = this_round.base.model_copy(
        update={
            "action": "draining",
            "reason": f"no task holds the instance; waiting for {len(short)} service(s) to run "
            f"their desired count (RELEASE_WHEN=services_steady): {_services_text(short)}",
            "wait_seconds": backoff_seconds(this_round.base.polls, this_round.settings),
        }
    )
    plan = Plan(state=waiting, set_draining=this_round.sets_draining)
    return _keep_waiting(plan, this_round.now, this_round.settings, wake_by=this_round.deadline)


def _agent(state: DrainState, instance: ContainerInstanceView, now: datetime) -> _Agent:
    """The ECS agent: tasks on an instance whose agent is gone never reach STOPPED."""
    lost_since = _agent_lost_since(state, instance, now)
    record = instance.drain_record
    recorded = record.agent_lost_since if record is not None else None
    if lost_since is not None and lost_since != recorded:
        return _Agent(lost_since, lost_since)  # first seen away, or away again after a change
    if instance.agent_connected and recorded is not None:
        return _Agent(lost_since, "clear")
    return _Agent(lost_since, None)


def _agent_lost(this_round: _Round, agent: _Agent, holding: tuple[TaskView, ...]) -> Plan | None:
    """Release the instance once its agent has stayed away past the grace (before the deadline)."""
    lost_since = agent.lost_since
    grace = this_round.settings.agent_disconnected_grace_seconds
    if lost_since is None or not (
        lost_since + timedelta(seconds=grace) <= this_round.now < this_round.deadline
    ):
        return None
    return this_round.done(
        "agent_lost",
        f"the ECS agent has been disconnected since {lost_since:%Y-%m-%dT%H:%M:%SZ} "
        f"(more than AGENT_DISCONNECTED_GRACE_SECONDS={grace}): its {len(holding)} task(s) "
        "can't stop, releasing the instance",
        complete=True,
        finish="agent_lost",
        rests_on=("agent_lost_since",),
    )


def _past_deadline(this_round: _Round, holding: tuple[TaskView, ...], agent: _Agent) -> Plan:
    """Past the deadline: stop what remains (once), give it the grace, then complete."""
    state, settings, now = this_round.state, this_round.settings, this_round.now
    grace_end = this_round.deadline + timedelta(seconds=settings.deadline_grace_seconds)
    if settings.at_deadline == "stop_tasks" and now < grace_end:
        to_stop = tuple(t.arn for t in holding if t.desired_status != "STOPPED")
        stopping = this_round.base.model_copy(
            update={
                "action": "stopping",
                "reason": f"drain deadline passed with {len(holding)} task(s) left: "
                f"stopping them, completing at {grace_end:%Y-%m-%dT%H:%M:%SZ}",
                "wait_seconds": max(1, _seconds_until(grace_end, now)),
            }
        )
        plan = Plan(
            state=stopping,
            set_draining=this_round.sets_draining,
            stop_tasks=to_stop,
            stop_cause="deadline",
            finish="forced" if state.action != "stopping" else "none",
            record_agent_lost=agent.record,
            rests_on=("hold_start",) if to_stop else (),
        )
        return _keep_waiting(plan, now, settings, fixed_wait=True)
    return this_round.done(
        "deadline",
        f"drain deadline passed with {len(holding)} task(s) left: completing anyway",
        complete=True,
        finish="after_deadline" if state.action == "stopping" else "forced",
        rests_on=("hold_start",),
    )


def _draining(this_round: _Round, holding: tuple[TaskView, ...], agent: _Agent) -> Plan:
    """Tasks hold the instance before the deadline: wait (stopping standalone tasks once their
    grace is over, with STANDALONE_TASKS=stop)."""
    state, settings, now = this_round.state, this_round.settings, this_round.now
    stop: tuple[str, ...] = ()
    standalone_end = state.started_at + timedelta(seconds=settings.standalone_grace_seconds)
    standalone_over = settings.standalone_tasks == "stop" and now >= standalone_end
    if standalone_over:
        stop = tuple(
            t.arn for t in holding if t.kind == "standalone" and t.desired_status != "STOPPED"
        )
    first_spread = first_wait_spread(state.instance_id, settings) if is_first_round(state) else 0
    draining = this_round.base.model_copy(
        update={
            "action": "draining",
            "reason": f"{len(holding)} unstopped task(s) hold the instance",
            "wait_seconds": backoff_seconds(this_round.base.polls, settings) + first_spread,
        }
    )
    plan = Plan(
        state=draining,
        set_draining=this_round.sets_draining,
        stop_tasks=stop,
        stop_cause="standalone" if standalone_over else None,
        record_agent_lost=agent.record,
        rests_on=("hold_start",) if stop else (),
    )
    # Wake at the deadline, the end of the standalone grace and of the agent grace, not after.
    wake = [this_round.deadline]
    if settings.standalone_tasks == "stop" and now < standalone_end:
        wake.append(standalone_end)
    if agent.lost_since is not None:
        grace = timedelta(seconds=settings.agent_disconnected_grace_seconds)
        wake.append(agent.lost_since + grace)
    return _keep_waiting(plan, now, settings, wake_by=min(wake))


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
    return replace(
        plan,
        state=state.model_copy(update=update),
        record_heartbeat=heartbeat,
        start_loop=first_round,
        continue_in_new_execution=carry_on,
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
    holding = holding_tasks(observation.tasks, settings.daemon_tasks_hold_instance)
    if plan.state.action != "deadline" or not holding:
        return ""
    return "interruption" if interrupted(state, observation, settings) else "deadline"
