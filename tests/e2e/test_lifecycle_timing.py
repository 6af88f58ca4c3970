"""Lifecycle timing and recovery, end to end on the sandbox: the hold is kept exactly as
long as AWS's own clocks allow, never on a time someone else wrote, and every way a loop can end
badly releases the instance."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from typing import Any

from drain_hook import contract
from ecs_drain_hook.timing import LAMBDA_TIMEOUT_SECONDS
from local_aws import autoscaling
from local_aws.sandbox import Sandbox
from tests.e2e.conftest import SandboxFactory

LIFECYCLE = {"detail-type": [contract.LIFECYCLE_DETAIL_TYPE]}
ISO = "%Y-%m-%dT%H:%M:%SZ"
METRICS_ON = {"POWERTOOLS_METRICS_DISABLED": "false"}  # EMF lines on stdout, to read them


def _world(
    sb: Sandbox,
    *,
    heartbeat: int = 600,
    batch_seconds: float | None = 1200,
    web: int = 4,
) -> tuple[str, str, str | None]:
    """Two instances, a web service and (optionally) a standalone batch task on the victim."""
    asg = sb.add_cluster("c1", instances=2, heartbeat_timeout=heartbeat)
    for family in ("web", "batch"):
        sb.register_task_definition(family)
    sb.create_service("c1", "web", "web", web, minimum_healthy_percent=50, maximum_percent=200)
    [victim] = sb.scale_in_candidates(asg, 1)
    batch = None
    if batch_seconds != 0:
        batch = sb.run_standalone("c1", "batch", victim, exits_after=batch_seconds)
    sb.settle()
    sb.deploy()
    return asg, victim, batch


def _action(instance_id: str) -> autoscaling.LifecycleAction:
    [action] = [a for a in autoscaling.lifecycle_actions(instance_id) if a.hook_name]
    return action


def _results(sb: Sandbox) -> list[dict[str, Any]]:
    return [i.result for i in sb.runtime.invocations if isinstance(i.result, dict)]


def _stop_calls(sb: Sandbox) -> int:
    return sb.instrument.calls.get("ecs:StopTask", 0)


def _held_for(action: autoscaling.LifecycleAction) -> float:
    assert action.ended_at is not None
    return (action.ended_at - action.started_at).total_seconds()


# --- 1. the start of the hold comes from Auto Scaling's record --------------------------------


def _replay(sb: Sandbox, asg: str, time: str) -> None:
    """Scale in with the event's first delivery lost, then replay it carrying `time`."""
    original_time = sb.clock.now().strftime(ISO)
    sb.lose_events({**LIFECYCLE, "time": [original_time]}, 1.0)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: len(sb.bus.lost) >= 1, settle=False)
    [lost] = sb.bus.lost
    sb.clock.advance(30)  # someone notices and replays by hand
    replay = copy.deepcopy(lost)
    replay["time"] = time
    assert sb.put_event(replay) >= 1


def test_a_replayed_event_with_an_old_time_drains_like_a_fresh_one(sandbox: SandboxFactory):
    sb = sandbox(seed=4, lambda_env={"MAX_DRAIN_SECONDS": "1800"})
    asg, victim, _batch = _world(sb, batch_seconds=1200)
    _replay(sb, asg, "2026-01-15T10:00:00Z")  # our own sample event's time: ten months old
    report = sb.run()
    action = _action(victim)
    assert action.ended_by == "complete" and report.lost_tasks == []
    assert _stop_calls(sb) == 0  # nothing stopped: the batch task finished by itself
    assert _held_for(action) >= 1200  # held until the task ended, not released at once
    first = next(r for r in _results(sb) if r.get("started_at"))
    assert first["hold_start_source"] == "scaling_activity"
    assert datetime.fromisoformat(first["started_at"]) == action.started_at


def test_a_replayed_event_with_a_future_time_drains_like_a_fresh_one(sandbox: SandboxFactory):
    sb = sandbox(seed=4, lambda_env={"MAX_DRAIN_SECONDS": "1800"})
    asg, victim, _batch = _world(sb, batch_seconds=1200)
    _replay(sb, asg, "2031-06-01T00:00:00Z")
    report = sb.run()
    action = _action(victim)
    assert action.ended_by == "complete" and report.lost_tasks == []
    assert _stop_calls(sb) == 0 and 1200 <= _held_for(action) < 1800


def test_the_deadline_counts_from_the_entry_into_the_wait(sandbox: SandboxFactory):
    """A delivery 300 s late does not push the deadline 300 s out: it is 600 s after the entry."""
    sb = sandbox(seed=5, lambda_env={"MAX_DRAIN_SECONDS": "600", "AT_DEADLINE": "stop_tasks"})
    asg, victim, _batch = _world(sb, batch_seconds=None)  # the batch task never ends
    sb.delay_events(LIFECYCLE, 300)
    sb.scale_in(asg, 1)
    report = sb.run()
    action = _action(victim)
    assert action.ended_by == "complete" and report.lost_tasks == []
    stops = [
        e.at for e in sb.sim.events if e.kind == "task_stopping" and "deadline" in str(e.details)
    ]
    assert stops, "the deadline policy stopped the batch task"
    assert (stops[0] - action.started_at).total_seconds() == pytest_approx(600, 2)


def test_without_an_activity_record_the_drain_counts_from_now(sandbox: SandboxFactory):
    sb = sandbox(seed=6, lambda_env={"MAX_DRAIN_SECONDS": "600"})
    asg, victim, _batch = _world(sb, batch_seconds=None)
    sb.configure_autoscaling(record_activities=False)
    sb.delay_events(LIFECYCLE, 120)
    sb.scale_in(asg, 1)
    report = sb.run()
    first = next(r for r in _results(sb) if r.get("started_at"))
    assert first["hold_start_source"] == "first_seen"
    action = _action(victim)
    assert action.ended_by == "complete" and report.lost_tasks == []
    # Counted from the (late) first delivery: never earlier than the configured deadline.
    assert _held_for(action) >= 600 + 120


# --- 2. the hook's heartbeat timer -----------------------------------------------------------


def test_a_delivery_late_by_90_percent_of_the_heartbeat_still_drains(sandbox: SandboxFactory):
    """The event's own first round restarts the heartbeat timer, however late it comes. (The
    sweep would send the action's message first: its rule is disabled here, as an operator
    could; tests/e2e/test_lost_events.py has the sweep on.)"""
    sb = sandbox(seed=7)
    asg, victim, _batch = _world(sb, heartbeat=900, batch_seconds=1500)
    sb.disable_sweep()
    beats: list[datetime] = []
    sb.listeners.append(
        lambda kind, _payload: beats.append(sb.clock.now()) if kind == "heartbeat" else None
    )
    sb.delay_events(LIFECYCLE, 0.9 * 900)
    sb.scale_in(asg, 1)
    report = sb.run()
    action = _action(victim)
    assert action.ended_by == "complete", action.ended_by  # not heartbeat_timeout
    assert report.lost_tasks == [] and _held_for(action) >= 1500
    # The first round recorded a heartbeat as soon as it ran, 810 s into the 900 s timer.
    assert beats and 810 <= (beats[0] - action.started_at).total_seconds() < 900


# --- 3. recovery after a loop ended ------------------------------------------------------------


def test_a_replay_after_the_loop_ended_resumes_the_drain(sandbox: SandboxFactory):
    """The loop was stopped and its status event lost (best effort): the action still waits.
    A replayed event starts a fresh loop under the next name instead of calling it a
    duplicate, and the drain finishes with nothing lost."""
    sb = sandbox(seed=8)
    asg, victim, _batch = _world(sb, batch_seconds=1200)
    sb.lose_events({"source": [contract.STATES_SOURCE]}, 1.0)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    sfn = sb.client("stepfunctions")
    [execution] = sfn.list_executions(stateMachineArn=sb.state_machine_arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"], cause="operator")
    sb.clock.advance(60)
    assert _action(victim).active
    sb.put_event(copy.deepcopy(sb.bus.deliveries[0].event))  # e.g. a dead-letter redrive
    report = sb.run()
    action = _action(victim)
    assert action.ended_by == "complete" and report.lost_tasks == []
    names = {
        e["name"]: e["status"]
        for e in sfn.list_executions(stateMachineArn=sb.state_machine_arn)["executions"]
    }
    assert names == {execution["name"]: "ABORTED", f"{execution['name']}-r1": "SUCCEEDED"}
    assert "duplicate" not in [r["action"] for r in _results(sb)]


# --- 4. every bad end of a loop releases the instance -------------------------------------------


def _released_within_a_minute(sb: Sandbox, victim: str, ended_at: datetime) -> None:
    action = _action(victim)
    assert action.ended_by == "complete"
    assert action.ended_at is not None
    assert timedelta(0) <= action.ended_at - ended_at <= timedelta(minutes=1)
    released = [r for r in _results(sb) if r.get("action") == "released"]
    assert len(released) == 1 and released[0]["instance_id"] == victim


def _stop_date(sb: Sandbox, status: str) -> datetime:
    sfn = sb.client("stepfunctions")
    [ended] = [
        e
        for e in sfn.list_executions(stateMachineArn=sb.state_machine_arn)["executions"]
        if e["status"] == status
    ]
    return ended["stopDate"]


def test_an_aborted_loop_is_released_within_a_minute(sandbox: SandboxFactory):
    sb = sandbox(seed=9)
    asg, victim, _batch = _world(sb, batch_seconds=None)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    sb.clock.advance(200)
    sfn = sb.client("stepfunctions")
    [execution] = sfn.list_executions(stateMachineArn=sb.state_machine_arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"], cause="operator")
    sb.run()
    _released_within_a_minute(sb, victim, _stop_date(sb, "ABORTED"))


def test_a_timed_out_loop_is_released_within_a_minute(sandbox: SandboxFactory):
    from local_aws import template

    definition = template.load(["c1-asg"], ["ecs-drain-hook"])
    asl = json.loads(definition.asl)
    asl["TimeoutSeconds"] = 900  # far below the deadline: the loop times out first
    definition.asl = json.dumps(asl)
    sb = sandbox(seed=10, definition=definition)
    asg, victim, _batch = _world(sb, batch_seconds=None)
    sb.scale_in(asg, 1)
    sb.run()
    _released_within_a_minute(sb, victim, _stop_date(sb, "TIMED_OUT"))


def test_a_permanent_error_fails_the_loop_and_releases(sandbox: SandboxFactory):
    sb = sandbox(seed=11)
    asg, victim, _batch = _world(sb, batch_seconds=None)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    # The Lambda's role loses ecs:ListTasks (AccessDenied: retrying can't fix it).
    sb.add_fault("ecs:ListTasks", "client_error", error="AccessDeniedException")
    sb.run()
    _released_within_a_minute(sb, victim, _stop_date(sb, "FAILED"))
    errors = [i.error for i in sb.runtime.invocations if i.error]
    assert errors and all("PermanentAwsError" in e for e in errors)


def test_polls_failing_past_the_deadline_end_the_loop_then(sandbox: SandboxFactory):
    """ECS answers 5xx to every call from 10 min into a 15 min drain, and ERROR_RELEASE_SECONDS
    is an hour: the loop ends DeadlinePassedWhileFailing once the deadline has passed (never
    before), and the loop-end release completes the action within a minute of that."""
    sb = sandbox(
        seed=16,
        lambda_env={"MAX_DRAIN_SECONDS": "900", "ERROR_RELEASE_SECONDS": "3600"},
    )
    asg, victim, _batch = _world(sb, heartbeat=900, batch_seconds=None)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    start = _action(victim).started_at
    sb.run(until=lambda: sb.clock.now() >= start + timedelta(minutes=10), settle=False)
    sb.add_fault("ecs:*", "server_error")
    sb.run()
    sfn = sb.client("stepfunctions")
    [failed] = [
        e
        for e in sfn.list_executions(stateMachineArn=sb.state_machine_arn)["executions"]
        if e["status"] == "FAILED"
    ]
    described = sfn.describe_execution(executionArn=failed["executionArn"])
    assert described["error"] == "DeadlinePassedWhileFailing"
    deadline = start + timedelta(seconds=900)
    assert failed["stopDate"] >= deadline
    # At most one retry wait (60 s) and one failing poll past it: botocore's back-off spends
    # virtual time, and the function's Timeout cuts a poll.
    assert failed["stopDate"] - deadline <= timedelta(seconds=60 + LAMBDA_TIMEOUT_SECONDS)
    _released_within_a_minute(sb, victim, failed["stopDate"])


# --- 5. an ECS agent that is gone ----------------------------------------------------------------


def test_an_agent_gone_for_the_grace_releases_the_instance(sandbox: SandboxFactory):
    sb = sandbox(seed=12, lambda_env={"AGENT_DISCONNECTED_GRACE_SECONDS": "600"})
    asg, victim, _batch = _world(sb, batch_seconds=None)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    sb.disconnect_agent(victim)
    gone_at = sb.clock.now()
    sb.run()
    action = _action(victim)
    assert action.ended_by == "complete"
    held = (action.ended_at - gone_at).total_seconds()
    assert 600 <= held <= 600 + 300  # at the grace, not before; within one wait of it
    assert [r["action"] for r in _results(sb)][-1] in ("agent_lost", "ignored")
    assert any(r.get("action") == "agent_lost" for r in _results(sb))


def test_an_agent_that_reconnects_within_the_grace_changes_nothing(sandbox: SandboxFactory):
    sb = sandbox(seed=13, lambda_env={"AGENT_DISCONNECTED_GRACE_SECONDS": "600"})
    asg, victim, _batch = _world(sb, batch_seconds=1500)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    sb.disconnect_agent(victim)
    gone_at = sb.clock.now()
    sb.run(until=lambda: sb.clock.now() >= gone_at + timedelta(seconds=400), settle=False)
    sb.reconnect_agent(victim)
    report = sb.run()
    action = _action(victim)
    assert action.ended_by == "complete" and report.lost_tasks == []
    assert not any(r.get("action") == "agent_lost" for r in _results(sb))
    assert _held_for(action) >= 1500


def test_an_agent_that_flaps_between_polls_is_counted_from_its_last_disconnection(
    sandbox: SandboxFactory,
):
    """Away, back and away again with no poll in between: the grace counts from the last
    disconnection (ECS raised the instance's version on the reconnect), not the first."""
    sb = sandbox(seed=15, lambda_env={"AGENT_DISCONNECTED_GRACE_SECONDS": "600"})
    asg, victim, _batch = _world(sb, batch_seconds=None)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    sb.disconnect_agent(victim)
    first_gone = sb.clock.now()
    sb.run(until=lambda: sb.clock.now() >= first_gone + timedelta(seconds=400), settle=False)
    sb.reconnect_agent(victim)
    sb.disconnect_agent(victim)
    gone_again = sb.clock.now()
    sb.run()
    action = _action(victim)
    assert action.ended_by == "complete"
    assert (action.ended_at - gone_again).total_seconds() >= 600
    assert any(r.get("action") == "agent_lost" for r in _results(sb))


# --- 6. a transient failure never cuts a drain short ------------------------------------------


def test_ten_minutes_of_throttling_do_not_cut_the_drain_short(sandbox: SandboxFactory):
    """Every ECS call throttled past botocore's retries for ten minutes (less than
    ERROR_RELEASE_SECONDS): the loop keeps the hold alive with its own heartbeats (the hook's
    timeout is 300 s) and the drain finishes when the tasks do, with nothing lost."""
    sb = sandbox(seed=14)
    asg, victim, _batch = _world(sb, heartbeat=300, batch_seconds=1500)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    sb.add_fault("ecs:*", "throttle")
    start = sb.clock.now()
    sb.run(until=lambda: sb.clock.now() >= start + timedelta(minutes=10), settle=False)
    sb.instrument.clear_faults()
    report = sb.run()
    action = _action(victim)
    assert action.ended_by == "complete" and report.lost_tasks == []
    assert _held_for(action) >= 1500
    heartbeats = sb.instrument.states_calls.get("states:autoscaling:RecordLifecycleActionHeartbeat")
    assert heartbeats and heartbeats >= 2  # the state machine kept the hold while polls failed
    assert not any(r.get("action") == "released" for r in _results(sb))


def test_failures_outlasting_the_release_time_release_the_instance(sandbox: SandboxFactory):
    sb = sandbox(seed=15, lambda_env={"ERROR_RELEASE_SECONDS": "900"})
    asg, victim, _batch = _world(sb, heartbeat=300, batch_seconds=None)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    failing_from = sb.clock.now()
    sb.add_fault("ecs:DescribeTasks", "throttle")
    sb.run()
    action = _action(victim)
    assert action.ended_by == "complete"
    held = (action.ended_at - failing_from).total_seconds()
    # The first failing poll, the release time counted from its failure by the clock, one
    # retry wait and the poll failing past it (each poll up to the function's timeout:
    # botocore's back-off runs in it), then the loop-end release (a minute).
    assert 900 <= held <= 900 + 2 * LAMBDA_TIMEOUT_SECONDS + 60 + 60
    _released_within_a_minute(sb, victim, _stop_date(sb, "FAILED"))


def pytest_approx(value: float, tolerance: float) -> Any:
    import pytest

    return pytest.approx(value, abs=tolerance)


def test_an_event_later_than_the_heartbeat_timeout_is_counted_and_alarmed(
    sandbox: SandboxFactory, capsys
):
    """The hook's timeout let the instance go before the event's first round: nothing can be
    drained any more, and the round says so in a metric with an alarm (not only a log line).
    A duplicate of a drain that finished is not counted."""
    sb = sandbox(seed=9, lambda_env=METRICS_ON)
    asg, victim, _batch = _world(sb, heartbeat=60, batch_seconds=0)
    sb.delay_events(LIFECYCLE, 200)
    capsys.readouterr()
    sb.scale_in(asg, 1)
    sb.run()
    action = _action(victim)
    assert action.ended_by == "heartbeat_timeout"
    # (The tasks lost with the instance raise task-stopped events: ignored, nobody drains it.)
    # (The sweep ran after the timeout: nothing waited any more.)
    assert [r["action"] for r in _results(sb) if r["action"] not in ("ignored", "swept")] == [
        "lifecycle_ended"
    ]
    emitted = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert [
        m[contract.METRIC_TIMED_OUT_BEFORE_DRAIN]
        for m in emitted
        if contract.METRIC_TIMED_OUT_BEFORE_DRAIN in m
    ] == [[1.0]]
    assert contract.METRIC_TIMED_OUT_BEFORE_DRAIN in contract.ALARMED_METRICS


def test_a_duplicate_of_a_finished_drain_is_not_counted_as_timed_out(
    sandbox: SandboxFactory, capsys
):
    sb = sandbox(seed=10, lambda_env=METRICS_ON)
    asg, victim, _batch = _world(sb, heartbeat=60, batch_seconds=300)
    sb.scale_in(asg, 1)
    sb.run()
    assert _action(victim).ended_by == "complete"
    sb.clock.advance(600)  # the hook's timeout has long passed since the hold began
    capsys.readouterr()
    sb.put_event(copy.deepcopy(sb.bus.deliveries[0].event))
    sb.run()
    assert _results(sb)[-1]["action"] == "lifecycle_ended"
    assert contract.METRIC_TIMED_OUT_BEFORE_DRAIN not in capsys.readouterr().out


def test_a_token_refused_just_after_the_action_began_is_tried_again(sandbox: SandboxFactory):
    """Auto Scaling has answered "No active Lifecycle Action" for a token whose action had just
    begun (a public report; sandbox knob). The first round doesn't answer it over: the intake
    queue takes the event again and the drain goes ahead, nothing lost."""
    sb = sandbox(seed=11)
    asg, victim, _batch = _world(sb, heartbeat=1200, batch_seconds=600)
    sb.configure_autoscaling(token_ready_after_seconds=30)
    sb.scale_in(asg, 1)
    report = sb.run()
    action = _action(victim)
    assert action.ended_by == "complete" and report.lost_tasks == []
    receives = [r.receive_counts for r in sb.intake.receives]
    assert receives[:2] == [[1], [2]]  # refused once, then taken again and drained
