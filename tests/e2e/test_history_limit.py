"""Step Functions' 25,000-event history quota, end to end: the sandbox fails an execution that
reaches it (States.Runtime, as AWS does), so a drain longer than one execution can hold must carry
on in fresh executions before then, and the Lambda's count of each execution's events must never
fall short of what the interpreter wrote.

A drain that heartbeats between every two polls can't fill an execution by itself: heartbeats
stay at least half the hook's heartbeat timeout apart and the hook's global timeout is at most 100
heartbeat timeouts, so a hold has room for some 200 such rounds (about 4,400 events). What fills
an execution is polls that fail and are tried again every minute; here the Lambda's invocations
fail on Step Functions' side for 100 minutes at a time (each attempt retried in place, then the
failed-poll path with its own heartbeat), with normal service in between, where waits grow from
10 s to 30 minutes cut by a heartbeat, and Auto Scaling answers some heartbeats with its
ResourceContention fault (retried in place).
"""

from __future__ import annotations

import json
from typing import Any

from drain_hook import history
from local_aws import stepfunctions
from local_aws.sandbox import Sandbox
from tests.e2e.conftest import SandboxFactory

OUTAGE_EVERY = 140 * 60
OUTAGE_SECONDS = 100 * 60
HEARTBEAT_TASKS = ("HeartbeatBetweenPolls", "HeartbeatWhileFailing")


def _drain(
    sandbox: SandboxFactory,
    *,
    seed: int,
    hours: float,
    context: dict[str, str],
    heartbeat_timeout: int,
    outages: bool,
    throttled: float = 0.0,
) -> tuple[Sandbox, Any]:
    """One instance with a standalone task that runs `hours`, scaled in; faults as the module
    docstring says (outages of the poll's invocation, or with `throttled` that share of its
    attempts throttled). Returns the sandbox and its run report."""
    sb = sandbox(seed=seed, context={"standalone_tasks": "wait", **context})
    asg = sb.add_cluster("c1", instances=2, heartbeat_timeout=heartbeat_timeout)
    sb.register_task_definition("batch")
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim, exits_after=hours * 3600)
    sb.settle()
    sb.deploy()
    if outages:
        for start in range(1200, int(hours * 3600), OUTAGE_EVERY):
            sb.add_fault_window(
                "states:lambda:Invoke",
                "task_error",
                start=start,
                end=start + OUTAGE_SECONDS,
                error="Lambda.ServiceException",
            )
    if throttled:
        sb.add_fault(
            "states:lambda:Invoke",
            "task_error",
            error="Lambda.TooManyRequestsException",
            probability=throttled,
        )
    sb.add_fault(
        "states:autoscaling:RecordLifecycleActionHeartbeat",
        "client_error",
        error="ResourceContention",
        probability=0.3,
    )
    sb.scale_in(asg, 1)
    return sb, sb.run()


def _histories(sb: Sandbox) -> dict[str, list[dict[str, Any]]]:
    sfn = sb.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=sb.state_machine_arn)["executions"]
    return {ex["name"]: stepfunctions.execution_history(ex["executionArn"]) for ex in listed}


def _states_entered(events: list[dict[str, Any]], name: str) -> int:
    return sum(
        1
        for e in events
        if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == name
    )


def _task_attempts(events: list[dict[str, Any]], name: str) -> tuple[int, int]:
    """(times the Task state was entered, attempts it made)."""
    entered, attempts, current = 0, 0, None
    for event in events:
        if event["type"] == "TaskStateEntered":
            current = event["stateEnteredEventDetails"]["name"]
            entered += current == name
        elif event["type"] == "TaskScheduled" and current == name:
            attempts += 1
    return entered, attempts


def _assert_counts_bound_every_round(events: list[dict[str, Any]]) -> int:
    """Each poll that keeps the loop going returns a count of at least the events written by the
    end of its round (its TaskStateExited, then IsDrainDone's two). Returns the polls checked."""
    checked = 0
    for event in events:
        details = event.get("taskSucceededEventDetails")
        if event["type"] != "TaskSucceeded" or details["resourceType"] != "lambda":
            continue
        state = json.loads(details["output"])["Payload"]
        if state["done"]:
            continue
        written = event["id"] + 3
        assert state["history_events"] >= written, (state["history_events"], written)
        checked += 1
    return checked


def test_a_drain_one_execution_could_not_hold_carries_on_and_completes(
    sandbox: SandboxFactory,
) -> None:
    sb, report = _drain(
        sandbox,
        seed=21,
        hours=24,
        context={
            "poll_interval_first_seconds": "10",
            "poll_interval_max_seconds": "1800",
            "error_release_seconds": "7200",
            "max_drain_seconds": str(36 * 3600),
            "polls_per_execution": str(history.POLLS_PER_EXECUTION_MAX),
        },
        heartbeat_timeout=1800,
        outages=True,
    )
    histories = _histories(sb)
    sizes = {name: len(events) for name, events in histories.items()}
    # One execution would have passed the quota; each of these stayed under the Lambda's budget.
    assert sum(sizes.values()) > history.HISTORY_EVENTS_MAX, sizes
    assert len(sizes) >= 2 and max(sizes.values()) <= history.HISTORY_BUDGET, sizes
    assert report.failed_executions == []
    assert {e["detail"]["status"] for e in sb.status_events} == {"RUNNING", "SUCCEEDED"}
    for events in histories.values():
        assert events[-1]["type"] == "ExecutionSucceeded"
        assert _assert_counts_bound_every_round(events) > 0
    # The drain completed the action (not a loop-end release, not a timeout).
    [action] = report.lifecycle_actions
    assert action.ended_by == "complete" and report.lost_tasks == []
    assert (action.ended_at - action.started_at).total_seconds() > 23 * 3600  # the whole day
    actions = [i.result["action"] for i in sb.runtime.invocations if isinstance(i.result, dict)]
    assert actions.count("continued") == len(sizes) - 1
    assert "completed" in actions and "released" not in actions
    assert report.calls["autoscaling:CompleteLifecycleAction"] == 1
    # The scenario did what it claims: heartbeats between polls, polls failing and retried.
    every = [e for events in histories.values() for e in events]
    assert _states_entered(every, "HeartbeatBetweenPolls") > 0
    assert _states_entered(every, "WaitAfterFailure") > 500
    entered, attempts = _task_attempts(every, "PollDrain")
    assert attempts > entered


def test_the_lambdas_count_bounds_every_round_of_heartbeats_and_retries(
    sandbox: SandboxFactory,
) -> None:
    """Ten-minute waits cut by nine heartbeats each, some heartbeats retried on ResourceContention
    and some polls throttled and retried: every poll's count covers what its execution wrote."""
    sb, report = _drain(
        sandbox,
        seed=22,
        hours=3,
        context={
            "poll_interval_first_seconds": "600",
            "poll_interval_max_seconds": "600",
            "max_drain_seconds": str(3 * 3600 + 600),
        },
        heartbeat_timeout=120,
        outages=False,
        throttled=0.3,
    )
    histories = _histories(sb)
    assert report.all_completed and report.failed_executions == []
    [events] = histories.values()
    assert _assert_counts_bound_every_round(events) >= 15
    entered, attempts = _task_attempts(events, "HeartbeatBetweenPolls")
    assert entered >= 9 * 15 and attempts > entered  # ResourceContention retried in place
    entered, attempts = _task_attempts(events, "PollDrain")
    assert attempts > entered  # throttled invocations retried in place
    assert len(events) <= history.HISTORY_BUDGET
