"""The decision's part in Spot interruptions and failure releases: pure, no AWS.

A Spot interruption recorded on the container instance brings the deadline forward so that the
deadline policy's stop grace ends at the interruption; a plan that completes with tasks still
holding the instance names its failure (what ON_DRAIN_FAILURE=retain may retain)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from drain_hook.logic.decision import (
    Observation,
    decide,
    failure_kind,
    interrupted,
    round_deadline,
    settings_deadline,
)
from drain_hook.models.observations import (
    ATTRIBUTE_VALUE_MAX,
    NO_LOOP,
    ContainerInstanceView,
    DrainRecord,
    TaskView,
)
from tests.drain_lambda.test_decision import T0, make_settings, make_state

ARN = "arn:aws:ecs:us-east-1:123456789012:container-instance/c/x"


def instance(record: DrainRecord | None = None, *, connected: bool = True) -> ContainerInstanceView:
    return ContainerInstanceView(
        arn=ARN,
        ec2_instance_id="i-0123456789abcdef0",
        status="DRAINING",
        agent_connected=connected,
        running_tasks=1,
        drain_record=record,
    )


def task(kind: str = "service", desired: str = "RUNNING") -> TaskView:
    return TaskView(
        arn=f"arn:aws:ecs:us-east-1:123456789012:task/c/{kind}",
        kind=kind,  # type: ignore[arg-type]
        last_status="RUNNING",
        desired_status=desired,
    )


def record(interruption: datetime | None, **fields) -> DrainRecord:
    return DrainRecord(
        started_at=T0, loop="i-0123456789abcdef0-token", interruption_at=interruption, **fields
    )


# --- the drain record --------------------------------------------------------------------------


def test_the_record_keeps_an_interruption_and_reads_values_written_before_it() -> None:
    spot = T0 + timedelta(seconds=300)
    full = record(spot, agent_lost_since=T0 + timedelta(seconds=60), agent_lost_version=7)
    assert full.encode().endswith(f" spot@{int(spot.timestamp())}")
    assert DrainRecord.decode(full.encode()) == full
    # A value of the earlier format (no spot part) still reads, with no interruption.
    old = f"{int(T0.timestamp())} i-0123456789abcdef0-token {int(T0.timestamp()) + 60}:7"
    assert DrainRecord.decode(old) == replace(full, interruption_at=None)
    # A Spot notice before any lifecycle action: no loop yet.
    notice = DrainRecord(started_at=T0, loop=NO_LOOP, interruption_at=spot)
    assert DrainRecord.decode(notice.encode()) == notice and not notice.has_loop


@given(
    loop=st.text("abcdef0123456789-", min_size=1, max_size=80),
    version=st.integers(min_value=0, max_value=10**19 - 1),
)
def test_the_record_always_fits_ecs_attribute_value_rules(loop: str, version: int) -> None:
    """PutAttributes takes 1..128 characters from a fixed set: the agent's version (a hint) gives
    way rather than the interruption when the longest loop name meets the longest version."""
    value = record(
        T0 + timedelta(days=3),
        agent_lost_since=T0 + timedelta(days=1),
        agent_lost_version=version,
    )
    value = replace(value, loop=loop)
    text = value.encode()
    assert 1 <= len(text) <= ATTRIBUTE_VALUE_MAX
    assert set(text) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_ :@")
    decoded = DrainRecord.decode(text)
    assert decoded is not None
    assert decoded.interruption_at == value.interruption_at
    assert decoded.agent_lost_version in (version, None)


# --- the deadline --------------------------------------------------------------------------


@given(
    offset=st.integers(min_value=-3600, max_value=4 * 3600),
    grace=st.integers(min_value=0, max_value=600),
    at_deadline=st.sampled_from(["stop_tasks", "continue"]),
)
def test_the_round_deadline_is_the_earlier_of_the_settings_and_the_interruption(
    offset: int, grace: int, at_deadline: str
) -> None:
    settings = make_settings(deadline_stop_grace_seconds=grace, at_deadline=at_deadline)
    state = make_state()
    spot = T0 + timedelta(seconds=offset)
    observation = Observation(held=True, instance=instance(record(spot)), tasks=(task(),))
    deadline = round_deadline(state, observation, settings)
    by_settings = settings_deadline(state, settings)
    assert deadline <= by_settings
    # The stop grace (when there is one) ends by the interruption: never after it.
    assert deadline + timedelta(seconds=settings.deadline_grace_seconds) <= max(
        spot, by_settings + timedelta(seconds=settings.deadline_grace_seconds)
    )
    assert interrupted(state, observation, settings) == (deadline < by_settings)
    plain = Observation(held=True, instance=instance(record(None)), tasks=(task(),))
    assert round_deadline(state, plain, settings) == by_settings


def test_a_round_before_the_interruption_wakes_in_time_to_stop_and_complete_by_it() -> None:
    settings = make_settings(deadline_stop_grace_seconds=45, at_deadline="stop_tasks")
    spot = T0 + timedelta(seconds=600)
    observation = Observation(held=True, instance=instance(record(spot)), tasks=(task(),))
    now = T0 + timedelta(seconds=500)
    plan = decide(make_state(), observation, now, settings)
    assert plan.state.action == "draining"
    assert plan.state.deadline_at == spot - timedelta(seconds=45)
    assert now + timedelta(seconds=plan.state.wait_seconds) <= spot - timedelta(seconds=45)

    at_deadline = spot - timedelta(seconds=45)
    plan = decide(make_state(), observation, at_deadline, settings)
    assert plan.state.action == "stopping" and plan.stop_tasks == (task().arn,)
    # The grace ends at the interruption itself.
    assert at_deadline + timedelta(seconds=plan.state.wait_seconds) == spot


# --- failures ------------------------------------------------------------------------------


def test_failure_kinds() -> None:
    settings = make_settings(at_deadline="continue", agent_disconnected_grace_seconds=600)
    state = make_state()
    past = T0 + timedelta(hours=3)
    holding = Observation(held=True, instance=instance(record(None)), tasks=(task(),))

    plan = decide(state, holding, past, settings)
    assert plan.state.action == "deadline" and failure_kind(plan, state, holding, settings) == (
        "deadline"
    )
    spot = Observation(
        held=True, instance=instance(record(T0 + timedelta(seconds=60))), tasks=(task(),)
    )
    plan = decide(state, spot, T0 + timedelta(seconds=120), settings)
    assert plan.state.action == "deadline"
    assert failure_kind(plan, state, spot, settings) == "interruption"

    lost_record = record(None, agent_lost_since=T0, agent_lost_version=3)
    away = Observation(held=True, instance=instance(lost_record, connected=False), tasks=(task(),))
    plan = decide(state, away, T0 + timedelta(seconds=700), settings)
    assert plan.state.action == "agent_lost"
    assert failure_kind(plan, state, away, settings) == "agent_lost"

    empty = Observation(held=True, instance=instance(record(None)), tasks=())
    plan = decide(state, empty, past, settings)
    assert plan.state.action == "completed" and failure_kind(plan, state, empty, settings) == ""


def test_a_deadline_left_with_daemon_tasks_only_is_no_failure_when_they_do_not_hold() -> None:
    settings = make_settings(at_deadline="continue", daemon_tasks_hold_instance=False)
    state = make_state(action="stopping")
    daemons = Observation(held=True, instance=instance(record(None)), tasks=(task("daemon"),))
    plan = decide(state, daemons, T0 + timedelta(hours=3), settings)
    assert plan.complete_lifecycle
    assert failure_kind(plan, state, daemons, settings) == ""


def test_interruption_deadline_with_the_default_grace_and_no_record_is_the_settings() -> None:
    settings = make_settings()
    state = make_state()
    none = Observation(held=True, instance=None)
    assert round_deadline(state, none, settings) == settings_deadline(state, settings)
    assert not interrupted(state, none, settings)
    assert T0.tzinfo is UTC
