"""The drain decision as a pure function: no AWS, property-based where it matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drain_hook.config import Settings
from drain_hook.logic.decision import Observation, TaskView, backoff_seconds, decide
from drain_hook.models.state import DrainState

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:loop"

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
        "started_at": T0,
        "deadline_at": T0 + timedelta(hours=2),
        "heartbeat_every_seconds": 150,
        "execution_name": "i-0123456789abcdef0-token",
        "polls": 3,
        "polls_in_execution": 3,
    }
    values.update(overrides)
    return DrainState(**values)


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
    # The first round runs when the drain starts; later rounds at any time before the deadline.
    state = make_state(execution_name=None, started_at=now) if first else make_state()
    plan = decide(state, Observation(True, status, tuple(tasks)), now, policy)
    holding = [t for t in tasks if policy.daemon_tasks_hold_instance or t.kind != "daemon"]
    if holding:
        assert not plan.complete_lifecycle
        assert not plan.state.done
        assert plan.state.wait_seconds >= 1
        # never sleeps past the deadline, nor longer than a heartbeat interval since the last
        assert now + timedelta(seconds=plan.state.wait_seconds) <= state.deadline_at
        last = plan.state.last_heartbeat_at or state.started_at
        wake = now + timedelta(seconds=plan.state.wait_seconds)
        assert wake <= last + timedelta(seconds=150)
    else:
        assert plan.complete_lifecycle and plan.state.done
    assert plan.state.tasks_remaining == len(tasks)


@settings(max_examples=200, deadline=None)
@given(tasks=tasks_strategy, policy=settings_strategy, late=st.integers(0, 10_000))
def test_past_the_deadline_the_instance_is_always_released(tasks, policy, late):
    """At the deadline: complete, or stop and complete once the grace is over. Never hang."""
    state = make_state()
    now = state.deadline_at + timedelta(seconds=late)
    plan = decide(state, Observation(True, "DRAINING", tuple(tasks)), now, policy)
    if plan.state.done:
        assert plan.complete_lifecycle
        return
    assert policy.at_deadline == "stop_tasks" and plan.state.action == "stopping"
    after_grace = now + timedelta(seconds=plan.state.wait_seconds)
    final = decide(plan.state, Observation(True, "DRAINING", tuple(tasks)), after_grace, policy)
    assert final.state.done and final.complete_lifecycle
    assert final.state.action == "deadline" and final.forced


@given(st.integers(0, 10_000), st.integers(1, 600), st.integers(1, 3600))
def test_backoff_grows_from_first_to_longest(polls, first, longest):
    if first > longest:
        first, longest = longest, first
    policy = make_settings(poll_interval_first_seconds=first, poll_interval_max_seconds=longest)
    assert first <= backoff_seconds(polls, policy) <= longest
    assert backoff_seconds(polls, policy) <= backoff_seconds(polls + 1, policy)


def test_lifecycle_ended_elsewhere_finishes_without_completion():
    plan = decide(make_state(), Observation(False, None), T0, make_settings())
    assert (plan.state.done, plan.state.action, plan.complete_lifecycle) == (
        True,
        "lifecycle_ended",
        False,
    )


@pytest.mark.parametrize(
    "status", ["REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED", "INACTIVE"]
)
def test_not_drainable_statuses_complete(status):
    plan = decide(make_state(), Observation(True, status), T0, make_settings())
    assert (plan.state.action, plan.complete_lifecycle) == ("not_drainable", True)


def test_manual_drain_without_hook_never_completes_a_lifecycle_action():
    state = make_state(asg_name=None, hook_name=None, lifecycle_action_token=None)
    plan = decide(state, Observation(None, "DRAINING"), T0, make_settings())
    assert (plan.state.done, plan.state.action, plan.complete_lifecycle) == (True, "drained", False)


def test_first_round_on_active_instance_plans_drain_and_loop():
    task = TaskView("arn:t", "service", "RUNNING", "RUNNING")
    plan = decide(
        make_state(execution_name=None, polls=0),
        Observation(True, "ACTIVE", (task,)),
        T0,
        make_settings(),
    )
    assert plan.start_loop and not plan.record_heartbeat
    assert plan.writes == ["set container instance DRAINING", "start the wait loop"]


def test_heartbeat_recorded_when_the_next_poll_would_come_too_late():
    task = TaskView("arn:t", "service", "RUNNING", "RUNNING")
    policy = make_settings(poll_interval_first_seconds=10, poll_interval_max_seconds=40)
    state = make_state(last_heartbeat_at=T0, polls=10)  # waits are at the longest: 40 s
    early = decide(
        state, Observation(True, "DRAINING", (task,)), T0 + timedelta(seconds=100), policy
    )
    late = decide(
        state, Observation(True, "DRAINING", (task,)), T0 + timedelta(seconds=120), policy
    )
    assert not early.record_heartbeat and early.state.wait_seconds == 40  # wakes at 140 <= 150
    assert late.record_heartbeat and late.state.last_heartbeat_at == T0 + timedelta(seconds=120)
    assert late.writes == ["record lifecycle heartbeat"]


def test_a_48_hour_drain_fits_the_step_functions_history_limit():
    """Walk a drain for the whole lifecycle global timeout; count history events per execution.

    Wait + Task (scheduled, started, succeeded) + Choice spend about 8 events a round; the
    history limit is 25,000 events an execution.
    """
    # The worst case: poll every second for 48 hours.
    policy = make_settings(
        poll_interval_first_seconds=1, poll_interval_max_seconds=1, max_drain_seconds=48 * 3600
    )
    task = TaskView("arn:t", "standalone", "RUNNING", "RUNNING")
    state = make_state(deadline_at=T0 + timedelta(hours=48), polls=0, polls_in_execution=0)
    now, rounds_in_execution, executions, most = T0, 0, 1, 0
    events_per_round = 8
    while not state.done:
        plan = decide(state, Observation(True, "DRAINING", (task,)), now, policy)
        rounds_in_execution += 1
        if plan.continue_in_new_execution:
            executions += 1
            most = max(most, rounds_in_execution)
            rounds_in_execution = 0
        state = plan.state
        now += timedelta(seconds=state.wait_seconds)
    most = max(most, rounds_in_execution)
    assert state.action == "deadline"
    assert most * events_per_round < 25_000
    assert executions > 1
