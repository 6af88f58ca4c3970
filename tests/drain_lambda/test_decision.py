"""The drain decision as a pure function: no AWS, property-based where it matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drain_hook import history
from drain_hook.logic.decision import (
    Observation,
    backoff_seconds,
    deadline_for,
    decide,
    first_wait_spread,
    history_through_poll,
)
from drain_hook.models.observations import ContainerInstanceView, DrainRecord, TaskView
from drain_hook.models.state import DrainState, HeartbeatPlan, RetryPolicy
from drain_hook.settings import ERROR_RELEASE_SECONDS_MAX, Settings, lifecycle_global_timeout

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:loop"
HEARTBEAT = 300  # the hook's heartbeat timeout: heartbeats at most 150 s apart

TASK_STATUSES = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
]


def make_settings(**overrides) -> Settings:
    return Settings(state_machine_arn=ARN, **overrides)


def make_state(**overrides) -> DrainState:
    values = {
        "action": "draining",
        "instance_id": "i-0123456789abcdef0",
        "cluster": "c",
        "container_instance_arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/c/x",
        "asg_name": "web-asg",
        "hook_name": "drain",
        "lifecycle_action_token": "11111111-2222-3333-4444-555555555555",
        "lifecycle_state": "Terminating:Wait",
        "started_at": T0,
        "deadline_at": T0 + timedelta(hours=2),
        "max_drain_seconds": 7200,
        "heartbeat_timeout_seconds": HEARTBEAT,
        "last_heartbeat_at": T0,
        "execution_name": "i-0123456789abcdef0-token",
        "polls": 3,
        "polls_in_execution": 3,
        # Three rounds at their worst after ExecutionStarted.
        "history_events": history.EXECUTION_STARTED_EVENTS + 3 * history.ROUND_EVENTS_MAX,
    }
    values.update(overrides)
    return DrainState(**values)


def instance(status: str = "DRAINING", **overrides) -> ContainerInstanceView:
    values = {
        "arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/c/x",
        "ec2_instance_id": "i-0123456789abcdef0",
        "status": status,
        "drain_record": DrainRecord(started_at=T0, loop="i-0123456789abcdef0-token"),
    }
    values.update(overrides)
    return ContainerInstanceView(**values)


def seen(tasks=(), status: str = "DRAINING", held: bool | None = True, **kw) -> Observation:
    return Observation(held=held, instance=instance(status, **kw), tasks=tuple(tasks))


tasks_strategy = st.lists(
    st.builds(
        TaskView,
        arn=st.uuids().map(lambda u: f"arn:aws:ecs:us-east-1:123456789012:task/c/{u.hex}"),
        kind=st.sampled_from(["service", "daemon", "standalone"]),
        last_status=st.sampled_from(TASK_STATUSES[:-1]),
        desired_status=st.sampled_from(["RUNNING", "STOPPED"]),
    ),
    max_size=30,
)
settings_strategy = st.builds(
    make_settings,
    standalone_tasks=st.sampled_from(["wait", "stop"]),
    standalone_grace_seconds=st.integers(0, 7200),
    daemon_tasks_hold_instance=st.booleans(),
    at_deadline=st.sampled_from(["stop_tasks", "continue"]),
    agent_disconnected_grace_seconds=st.integers(60, 7200),
)


@settings(max_examples=300, deadline=None)
@given(
    tasks=tasks_strategy,
    policy=settings_strategy,
    elapsed=st.integers(0, 2 * 3600 - 1),
    status=st.sampled_from(["ACTIVE", "DRAINING"]),
    first=st.booleans(),
)
def test_never_completes_while_a_task_holds_the_instance_before_the_deadline(
    tasks, policy, elapsed, status, first
):
    now = T0 + timedelta(seconds=elapsed)
    # The first round records its heartbeat just before deciding (the flow does it).
    state = make_state(execution_name=None, last_heartbeat_at=now) if first else make_state()
    if not first:
        state = state.model_copy(update={"last_heartbeat_at": max(T0, now - timedelta(seconds=60))})
    plan = decide(state, seen(tasks, status), now, policy)
    holding = [t for t in tasks if policy.daemon_tasks_hold_instance or t.kind != "daemon"]
    if holding:
        assert not plan.complete_lifecycle
        assert not plan.state.done
        assert plan.state.wait_seconds >= 1
        deadline = T0 + timedelta(seconds=policy.max_drain_seconds)
        wait = plan.state.wait_seconds
        # never sleeps past the deadline
        assert now + timedelta(seconds=wait) <= deadline
        # heartbeats never more than half the heartbeat timeout apart: the next one is the
        # poll's, or the state machine's within a longer wait (every `every` seconds from now)
        every = HEARTBEAT // 2
        beats = plan.state.heartbeat_plan
        assert beats is not None and beats.count * beats.every + beats.then == wait
        assert beats.every == every and 1 <= beats.then <= every
        last = plan.state.last_heartbeat_at or state.started_at
        assert now + timedelta(seconds=min(wait, every)) <= last + timedelta(seconds=every)
        # a stop before the deadline is only the standalone policy, and it rests on the start
        if plan.stop_tasks:
            assert policy.standalone_tasks == "stop" and plan.rests_on == ("hold_start",)
    else:
        assert plan.complete_lifecycle and plan.state.done
    assert plan.state.tasks_remaining == len(tasks)


@settings(max_examples=200, deadline=None)
@given(tasks=tasks_strategy, policy=settings_strategy, late=st.integers(0, 10_000))
def test_past_the_deadline_the_instance_is_always_released(tasks, policy, late):
    """At the deadline: complete, or stop and complete once the grace is over. Never hang."""
    state = make_state()
    deadline = T0 + timedelta(seconds=policy.max_drain_seconds)
    now = deadline + timedelta(seconds=late)
    plan = decide(state, seen(tasks), now, policy)
    if plan.state.done:
        assert plan.complete_lifecycle
        return
    assert policy.at_deadline == "stop_tasks" and plan.state.action == "stopping"
    after_grace = now + timedelta(seconds=plan.state.wait_seconds)
    final = decide(plan.state, seen(tasks), after_grace, policy)
    assert final.state.done and final.complete_lifecycle
    assert final.state.action == "deadline"
    assert plan.finish == "forced" and final.finish == "after_deadline"
    assert final.rests_on == ("hold_start",)


@settings(max_examples=200, deadline=None)
@given(
    offset=st.integers(-365 * 86400, 365 * 86400),
    elapsed=st.integers(0, 7199),
    tasks=tasks_strategy.filter(bool),
)
def test_only_the_recorded_start_of_the_hold_sets_the_deadline(offset, elapsed, tasks):
    """The state's started_at (AWS's record) decides; nothing else carries a time in."""
    policy = make_settings(daemon_tasks_hold_instance=True)
    started = T0 + timedelta(seconds=offset)
    state = make_state(started_at=started, deadline_at=T0, last_heartbeat_at=None)
    now = started + timedelta(seconds=elapsed)
    plan = decide(state, seen(tasks), now, policy)
    assert not plan.state.done and not plan.complete_lifecycle
    assert plan.state.deadline_at == started + timedelta(seconds=7200)
    if policy.standalone_tasks == "wait":
        assert plan.stop_tasks == ()


def test_deadline_is_brought_forward_by_the_hooks_global_timeout():
    # 100 x 120 s = 12000 s global timeout; a 10 h drain would outlive it.
    deadline = deadline_for(T0, 36000, 120, 45)
    assert deadline == T0 + timedelta(seconds=lifecycle_global_timeout(120) - 60 - 45)
    assert deadline_for(T0, 3600, 120, 45) == T0 + timedelta(seconds=3600)


@given(st.integers(0, 10_000), st.integers(1, 600), st.integers(1, 3600))
def test_backoff_grows_from_first_to_longest(polls, first, longest):
    if first > longest:
        first, longest = longest, first
    policy = make_settings(poll_interval_first_seconds=first, poll_interval_max_seconds=longest)
    assert first <= backoff_seconds(polls, policy) <= longest
    assert backoff_seconds(polls, policy) <= backoff_seconds(polls + 1, policy)


@given(st.from_regex(r"i-[0-9a-f]{17}", fullmatch=True), st.integers(1, 600))
def test_the_first_wait_is_spread_per_instance_within_a_quarter(instance_id, first):
    policy = make_settings(poll_interval_first_seconds=first, poll_interval_max_seconds=3600)
    spread = first_wait_spread(instance_id, policy)
    assert 0 <= spread <= first // 4
    assert spread == first_wait_spread(instance_id, policy)  # the same on every delivery


def test_a_burst_of_first_waits_is_spread_over_the_quarter():
    """200 instances scaled in together don't poll in the same second."""
    policy = make_settings(poll_interval_first_seconds=120)
    spreads = {first_wait_spread(f"i-{n:017x}", policy) for n in range(200)}
    assert len(spreads) >= 25 and min(spreads) <= 3 and max(spreads) >= 27


def test_lifecycle_ended_elsewhere_finishes_without_completion():
    plan = decide(make_state(), Observation(held=False, instance=None), T0, make_settings())
    assert (plan.state.done, plan.state.action, plan.complete_lifecycle) == (
        True,
        "lifecycle_ended",
        False,
    )


@pytest.mark.parametrize(
    "status", ["REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED", "INACTIVE"]
)
def test_not_drainable_statuses_complete(status):
    plan = decide(make_state(), seen(status=status), T0, make_settings())
    assert (plan.state.action, plan.complete_lifecycle) == ("not_drainable", True)


def test_pooled_instance_without_container_instance_completes_at_once():
    state = make_state(lifecycle_state="Warmed:Terminating:Wait", execution_name=None)
    plan = decide(state, Observation(held=True, instance=None), T0, make_settings())
    assert (plan.state.action, plan.complete_lifecycle) == ("not_registered", True)
    assert "warm-pool" in plan.state.reason


def test_manual_drain_without_hook_never_completes_a_lifecycle_action():
    state = make_state(asg_name=None, hook_name=None, lifecycle_action_token=None)
    plan = decide(state, seen(held=None), T0, make_settings())
    assert (plan.state.done, plan.state.action, plan.complete_lifecycle) == (True, "drained", False)


def test_first_round_on_active_instance_plans_drain_and_loop():
    task = TaskView("arn:t", "service", "RUNNING", "RUNNING")
    plan = decide(
        make_state(execution_name=None, polls=0),
        seen([task], "ACTIVE"),
        T0,
        make_settings(),
    )
    assert plan.start_loop and not plan.record_heartbeat
    assert plan.writes == ["set container instance DRAINING", "start the wait loop"]
    assert plan.state.retry is not None and plan.state.retry.failed_seconds == 0
    assert plan.state.retry.wait_seconds <= HEARTBEAT // 2


def test_heartbeat_recorded_when_the_next_poll_would_come_too_late():
    task = TaskView("arn:t", "service", "RUNNING", "RUNNING")
    policy = make_settings(poll_interval_first_seconds=10, poll_interval_max_seconds=40)
    state = make_state(last_heartbeat_at=T0, polls=10)  # waits are at the longest: 40 s
    early = decide(state, seen([task]), T0 + timedelta(seconds=100), policy)
    late = decide(state, seen([task]), T0 + timedelta(seconds=120), policy)
    assert not early.record_heartbeat and early.state.wait_seconds == 40  # wakes at 140 <= 150
    assert late.record_heartbeat and late.state.last_heartbeat_at == T0 + timedelta(seconds=120)
    assert late.writes == ["record lifecycle heartbeat"]


def test_a_wait_longer_than_the_heartbeat_interval_is_cut_by_the_state_machine():
    task = TaskView("arn:t", "service", "RUNNING", "RUNNING")
    policy = make_settings(poll_interval_first_seconds=3600, poll_interval_max_seconds=3600)
    now = T0 + timedelta(seconds=100)
    plan = decide(make_state(last_heartbeat_at=T0), seen([task]), now, policy)
    assert plan.state.wait_seconds == 3600 and plan.record_heartbeat
    beats = plan.state.heartbeat_plan
    assert beats is not None and (beats.every, beats.count, beats.then) == (150, 23, 150)


def test_only_daemon_tasks_left_release_rests_on_their_kind():
    task = TaskView("arn:t", "daemon", "RUNNING", "RUNNING")
    plan = decide(make_state(), seen([task]), T0, make_settings(daemon_tasks_hold_instance=False))
    assert plan.complete_lifecycle and plan.rests_on == ("daemon_kinds",)


class TestAgentDisconnected:
    task = TaskView("arn:t", "service", "RUNNING", "RUNNING")
    policy = make_settings(agent_disconnected_grace_seconds=600)

    def test_first_seen_disconnected_records_the_time_and_waits_out_the_grace(self):
        now = T0 + timedelta(seconds=100)
        plan = decide(make_state(), seen([self.task], agent_connected=False), now, self.policy)
        assert not plan.state.done and plan.record_agent_lost == now
        assert plan.state.agent_disconnected_since == now
        assert now + timedelta(seconds=plan.state.wait_seconds) <= now + timedelta(seconds=600)

    def test_released_after_the_grace_of_continuous_disconnection(self):
        since = T0 + timedelta(seconds=100)
        record = DrainRecord(started_at=T0, loop="x", agent_lost_since=since)
        observed = seen([self.task], agent_connected=False, drain_record=record)
        before = decide(make_state(), observed, since + timedelta(seconds=599), self.policy)
        after = decide(make_state(), observed, since + timedelta(seconds=600), self.policy)
        assert not before.state.done
        assert after.state.action == "agent_lost" and after.complete_lifecycle
        assert after.finish == "agent_lost" and after.rests_on == ("agent_lost_since",)

    def test_a_reconnect_within_the_grace_changes_nothing_but_clears_the_record(self):
        since = T0 + timedelta(seconds=100)
        record = DrainRecord(started_at=T0, loop="x", agent_lost_since=since)
        observed = seen([self.task], agent_connected=True, drain_record=record)
        plan = decide(make_state(), observed, since + timedelta(seconds=300), self.policy)
        assert not plan.state.done and plan.record_agent_lost == "clear"
        assert plan.state.agent_disconnected_since is None

    def test_a_reconnect_missed_between_polls_starts_the_count_again(self):
        """Away, back and away again between two polls: ECS raised the instance's version
        twice since the disconnection was recorded, so it was not continuous."""
        since = T0 + timedelta(seconds=100)
        record = DrainRecord(started_at=T0, loop="x", agent_lost_since=since, agent_lost_version=7)
        later = since + timedelta(seconds=900)  # past the grace if it had been continuous
        own_write = seen([self.task], agent_connected=False, drain_record=record, version=8)
        flapped = seen([self.task], agent_connected=False, drain_record=record, version=9)
        assert decide(make_state(), own_write, later, self.policy).state.action == "agent_lost"
        plan = decide(make_state(), flapped, later, self.policy)
        assert not plan.state.done and plan.record_agent_lost == later
        assert plan.state.agent_disconnected_since == later

    def test_the_records_time_wins_over_the_states(self):
        """A state claiming an older disconnection can't release the instance early."""
        recorded = T0 + timedelta(seconds=500)
        record = DrainRecord(started_at=T0, loop="x", agent_lost_since=recorded)
        observed = seen([self.task], agent_connected=False, drain_record=record)
        state = make_state(agent_disconnected_since=T0)
        plan = decide(state, observed, recorded + timedelta(seconds=100), self.policy)
        assert not plan.state.done


def _walk_drain(policy: Settings, state: DrainState, *, failing_every: int = 0):
    """Run the decision poll after poll as the loop would, a task holding the instance to the
    deadline, and count each execution's history by the rounds the state machine runs: the
    heartbeats of each plan, the failed polls, each round at its worst (the counts the ASL tests
    derive from the definition). With `failing_every`, every so many polls the next poll fails
    until just before the error release, then succeeds. Returns the last state and each
    execution's count to its end."""
    task = TaskView("arn:t", "standalone", "RUNNING", "RUNNING")
    now, written, counts, polls = T0, history.EXECUTION_STARTED_EVENTS, [], 0
    leading = (0, 0)  # heartbeats and failed polls of the round that leads to the next poll
    while not state.done:
        written += history.round_events(*leading)
        plan = decide(state, seen([task]), now, policy)
        polls += 1
        if plan.continue_in_new_execution or plan.state.done:
            counts.append(written + history.CLOSING_EVENTS_MAX)
            written = history.EXECUTION_STARTED_EVENTS
        else:
            assert plan.state.history_events is not None
            assert plan.state.history_events >= written  # the Lambda's count is an upper bound
        state = plan.state
        if state.action == "continued":
            state = state.model_copy(update={"done": False, "action": "draining"})
        plan_sent, retry = state.heartbeat_plan, state.retry
        assert plan_sent is not None and retry is not None
        failed = 0
        if failing_every and polls % failing_every == 0:
            failed = retry.release_after_seconds // retry.wait_seconds
        leading = (plan_sent.count, failed)
        # As the state machine passes the state back: the plan counted down, failures noted.
        state = state.model_copy(
            update={
                "heartbeat_plan": plan_sent.model_copy(update={"count": 0}),
                "retry": retry.model_copy(update={"failed_seconds": failed * retry.wait_seconds}),
            }
        )
        now += timedelta(seconds=state.wait_seconds + failed * retry.wait_seconds)
    return state, counts


def test_a_48_hour_drain_fits_the_step_functions_history_limit():
    """Poll every second for the whole lifecycle global timeout: each execution's history, counted
    at the real per-state figures (20 events a round at worst, not the 8 once assumed), stays
    under the 25,000-event quota, the loop carrying on in fresh executions."""
    policy = make_settings(
        poll_interval_first_seconds=1,
        poll_interval_max_seconds=1,
        max_drain_seconds=48 * 3600,
        polls_per_execution=history.POLLS_PER_EXECUTION_MAX,
    )
    state = make_state(
        polls=0, polls_in_execution=0, heartbeat_timeout_seconds=1800, max_drain_seconds=48 * 3600
    )
    state, counts = _walk_drain(policy, state)
    assert state.action == "deadline"
    assert len(counts) > 100
    assert max(counts) <= history.HISTORY_BUDGET < 25_000


def test_heartbeats_between_polls_and_runs_of_failures_still_fit():
    """Long waits cut into many heartbeats, and now and then a run of failed polls lasting to
    just before the error release: still no execution passes the budget."""
    policy = make_settings(
        poll_interval_first_seconds=3600,
        poll_interval_max_seconds=3600,
        max_drain_seconds=48 * 3600,
        error_release_seconds=7200,
    )
    state = make_state(
        polls=0, polls_in_execution=0, heartbeat_timeout_seconds=1800, max_drain_seconds=48 * 3600
    )
    state, counts = _walk_drain(policy, state, failing_every=2)
    assert state.action == "deadline" and len(counts) > 1
    assert max(counts) <= history.HISTORY_BUDGET


class TestHistoryCount:
    """What each round adds to the count the state carries, and when the loop carries on."""

    task = TaskView("arn:t", "service", "RUNNING", "RUNNING")
    policy = make_settings(poll_interval_first_seconds=600, poll_interval_max_seconds=600)

    def test_the_first_round_counts_the_execution_it_starts(self):
        plan = decide(make_state(execution_name=None, polls=0), seen([self.task]), T0, self.policy)
        assert plan.start_loop and plan.state.history_events == history.EXECUTION_STARTED_EVENTS

    def test_a_poll_adds_its_round_at_worst(self):
        plan = decide(make_state(history_events=100), seen([self.task]), T0, self.policy)
        assert plan.state.history_events == 100 + history.ROUND_EVENTS_MAX == 120

    def test_heartbeats_the_state_machine_recorded_are_counted_from_the_wait_they_cut(self):
        """The plan comes back counted down to 0: what it set out with follows from the wait."""
        state = make_state(
            history_events=100,
            wait_seconds=600,
            heartbeat_plan=HeartbeatPlan(every=150, count=0, then=150),
        )
        assert history_through_poll(state) == 100 + history.round_events(3, 0) == 180

    def test_failed_polls_are_counted_from_the_retry_waits(self):
        retry = RetryPolicy(wait_seconds=60, release_after_seconds=900, failed_seconds=180)
        state = make_state(history_events=100, retry=retry)
        assert history_through_poll(state) == 100 + history.round_events(0, 3) == 252

    def test_a_state_without_a_count_carries_on_at_its_next_poll(self):
        """A state from before the count (a drain in flight across an upgrade) can't tell how
        much of its execution's history is spent: a fresh execution starts counting from 1."""
        plan = decide(make_state(history_events=None), seen([self.task]), T0, self.policy)
        assert plan.continue_in_new_execution
        assert plan.state.history_events == history.EXECUTION_STARTED_EVENTS

    def _near_the_budget(self, room: int, **settings) -> tuple:
        """A poll after which the execution has `room` events left under the budget."""
        policy = make_settings(**{"poll_interval_first_seconds": 60, **settings})
        state = make_state(history_events=history.HISTORY_BUDGET - room - history.ROUND_EVENTS_MAX)
        return decide(state, seen([self.task]), T0, policy), policy

    def test_carries_on_when_the_next_round_at_its_worst_could_pass_the_budget(self):
        """Next round: 60 s wait, no heartbeat; failures for 900 s at 60 s (15 tried again),
        then the poll and the longest way to the execution's end."""
        worst = history.round_events(0, 15) + history.CLOSING_EVENTS_MAX
        fits, _ = self._near_the_budget(worst, poll_interval_max_seconds=60)
        assert not fits.continue_in_new_execution
        assert fits.state.history_events == history.HISTORY_BUDGET - worst
        over, _ = self._near_the_budget(worst - 1, poll_interval_max_seconds=60)
        assert over.continue_in_new_execution
        assert over.writes == ["carry on in a fresh execution"]
        assert (over.state.history_events, over.state.polls_in_execution) == (1, 0)
        assert over.state.execution_generation == 1
        assert (over.state.done, over.state.action) == (False, "draining")

    def test_the_heartbeats_planned_for_the_next_wait_count(self):
        """Room for a round without heartbeats is not room for one with them."""
        room = history.round_events(0, 15) + history.CLOSING_EVENTS_MAX
        short, _ = self._near_the_budget(room, poll_interval_max_seconds=60)
        long, _ = self._near_the_budget(room, poll_interval_max_seconds=600)
        assert long.state.heartbeat_plan is not None and long.state.heartbeat_plan.count == 3
        assert not short.continue_in_new_execution and long.continue_in_new_execution

    def test_a_longer_error_release_needs_more_room(self):
        room = history.round_events(0, 15) + history.CLOSING_EVENTS_MAX
        default, _ = self._near_the_budget(room, poll_interval_max_seconds=60)
        longer, _ = self._near_the_budget(
            room, poll_interval_max_seconds=60, error_release_seconds=1800
        )
        assert not default.continue_in_new_execution and longer.continue_in_new_execution

    def test_polls_per_execution_still_caps_the_polls(self):
        policy = make_settings(polls_per_execution=10)
        plan = decide(make_state(polls_in_execution=9), seen([self.task]), T0, policy)
        assert plan.continue_in_new_execution and plan.state.history_events == 1

    def test_the_longest_error_release_does_not_carry_on_at_every_poll(self):
        """ERROR_RELEASE_SECONDS is bounded by the failures half an execution holds, so even at
        its bound a fresh execution still holds hundreds of polls before carrying on."""
        policy = make_settings(
            poll_interval_first_seconds=1,
            poll_interval_max_seconds=1,
            max_drain_seconds=48 * 3600,
            error_release_seconds=ERROR_RELEASE_SECONDS_MAX,
            polls_per_execution=history.POLLS_PER_EXECUTION_MAX,
        )
        state = make_state(
            polls=0, polls_in_execution=0, history_events=1, max_drain_seconds=48 * 3600
        )
        now, polls, carried = T0, [], 0
        while len(polls) < 3:
            plan = decide(state, seen([self.task]), now, policy)
            carried += 1
            if plan.continue_in_new_execution:
                polls.append(carried)
                carried = 0
            state = plan.state.model_copy(update={"done": False, "action": "draining"})
            now += timedelta(seconds=state.wait_seconds)
        assert min(polls[1:]) >= history.HISTORY_BUDGET // 2 // history.ROUND_EVENTS_MAX - 1


# --- RELEASE_WHEN=services_steady: an empty instance waits for the services it had ----------

from drain_hook.models.observations import ServiceView  # noqa: E402

service_views = st.builds(
    ServiceView,
    name=st.sampled_from(["web", "api", "worker"]),
    status=st.sampled_from(["ACTIVE", "ACTIVE", "ACTIVE", "DRAINING", "MISSING"]),
    strategy=st.sampled_from(["REPLICA", "REPLICA", "DAEMON"]),
    running=st.integers(0, 6),
    desired=st.integers(0, 6),
)


def _steady(**overrides) -> Settings:
    return make_settings(release_when="services_steady", **overrides)


@settings(max_examples=300, deadline=None)
@given(
    views=st.lists(service_views, max_size=3, unique_by=lambda v: v.name),
    started=st.lists(st.sampled_from(["web", "api", "worker"]), max_size=3, unique=True),
    elapsed=st.integers(0, 2 * 3600 - 1),
    first=st.booleans(),
)
def test_services_steady_never_releases_while_a_service_it_had_is_short(
    views, started, elapsed, first
):
    now = T0 + timedelta(seconds=elapsed)
    state = make_state(release_services=started, last_heartbeat_at=max(T0, now))
    if first:
        state = state.model_copy(update={"execution_name": None})
    observed = Observation(
        held=True, instance=instance(), tasks=(), services={v.name: v for v in views}
    )
    plan = decide(state, observed, now, _steady())
    by_name = {v.name: v for v in views}
    short = [
        name
        for name in started
        if name not in by_name or by_name[name].short  # a service not read counts as short
    ]
    if short:
        assert not plan.complete_lifecycle and not plan.state.done
        assert plan.state.action == "draining"
        assert "services_steady" in plan.state.reason
        assert plan.state.wait_seconds <= _steady().poll_interval_first_seconds
    else:
        assert plan.state.action == "completed" and plan.complete_lifecycle
        # Which services had tasks here is checked against AWS before the release.
        assert "release_services" in plan.rests_on


def test_services_steady_releases_at_the_deadline_whatever_the_services() -> None:
    deadline = T0 + timedelta(hours=2)
    state = make_state(release_services=["web"])
    short = {"web": ServiceView(name="web", status="ACTIVE", running=1, desired=4)}
    observed = Observation(held=True, instance=instance(), services=short)
    plan = decide(state, observed, deadline, _steady())
    assert plan.complete_lifecycle and plan.state.action == "completed"
    assert "deadline came before web 1/4" in plan.state.reason
    assert "release_services" not in plan.rests_on


def test_drained_releases_an_empty_instance_whatever_the_services() -> None:
    state = make_state(release_services=["web"])
    short = {"web": ServiceView(name="web", status="ACTIVE", running=1, desired=4)}
    observed = Observation(held=True, instance=instance(), services=short)
    plan = decide(state, observed, T0 + timedelta(minutes=5), make_settings())
    assert plan.complete_lifecycle and plan.rests_on == ()


def test_services_steady_still_waits_for_tasks_first() -> None:
    task = TaskView(arn="t", kind="service", last_status="RUNNING", desired_status="RUNNING")
    steady = {"web": ServiceView(name="web", status="ACTIVE", running=4, desired=4)}
    observed = Observation(held=True, instance=instance(), tasks=(task,), services=steady)
    plan = decide(make_state(release_services=["web"]), observed, T0, _steady())
    assert not plan.complete_lifecycle and "1 unstopped task(s)" in plan.state.reason


@given(polls=st.integers(0, 40))
def test_services_steady_waits_at_most_the_first_interval(polls) -> None:
    assert backoff_seconds(polls, _steady()) <= _steady().poll_interval_first_seconds
    assert backoff_seconds(polls, make_settings()) <= make_settings().poll_interval_max_seconds
