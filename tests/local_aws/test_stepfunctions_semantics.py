"""Step Functions in the sandbox against the docs: StartExecution idempotency, TimeoutSeconds,
StopExecution, status-change events, and the error names Task states see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.sandbox import Sandbox
from local_aws.stepfunctions import sdk_error_name
from tests.local_aws import lambda_handlers

ROLE = "arn:aws:iam::123456789012:role/sfn"
RECORD = "tests.local_aws.lambda_handlers.record"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    lambda_handlers.RECEIVED.clear()
    with Sandbox(seed=1) as box:
        yield box


def _machine(sb: Sandbox, name: str, states: dict[str, Any], **top: Any) -> str:
    asl = {"StartAt": next(iter(states)), "States": states, **top}
    return str(
        sb.client("stepfunctions").create_state_machine(
            name=name, definition=json.dumps(asl), roleArn=ROLE
        )["stateMachineArn"]
    )


def _wait_then_succeed(seconds: int) -> dict[str, Any]:
    return {
        "W": {"Type": "Wait", "Seconds": seconds, "Next": "D"},
        "D": {"Type": "Succeed"},
    }


def _describe(sb: Sandbox, arn: str) -> dict[str, Any]:
    return dict(sb.client("stepfunctions").describe_execution(executionArn=arn))


# --- StartExecution (API reference) ---------------------------------------------------------


def test_same_name_and_input_while_running_returns_the_same_execution(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", _wait_then_succeed(600))
    first = sfn.start_execution(stateMachineArn=arn, name="x", input='{"a": 1}')
    sb.clock.advance(5)
    again = sfn.start_execution(stateMachineArn=arn, name="x", input='{"a": 1}')
    assert again["executionArn"] == first["executionArn"]
    assert again["startDate"] == first["startDate"]
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_same_name_with_another_input_is_execution_already_exists(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", _wait_then_succeed(600))
    sfn.start_execution(stateMachineArn=arn, name="x", input='{"a": 1}')
    with pytest.raises(ClientError) as error:
        sfn.start_execution(stateMachineArn=arn, name="x", input='{"a": 2}')
    assert error.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_closed_executions_name_is_execution_already_exists(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", _wait_then_succeed(10))
    sfn.start_execution(stateMachineArn=arn, name="x", input="{}")
    sb.run(settle=False)
    with pytest.raises(ClientError) as error:
        sfn.start_execution(stateMachineArn=arn, name="x", input="{}")  # same input, but closed
    assert error.value.response["Error"]["Code"] == "ExecutionAlreadyExists"


def test_a_name_is_generated_when_none_is_given_and_bad_names_are_refused(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", _wait_then_succeed(10))
    one = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    two = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert one != two and not one.endswith(":None")
    with pytest.raises(ClientError) as error:
        sfn.start_execution(stateMachineArn=arn, name="has space")
    assert error.value.response["Error"]["Code"] == "InvalidName"


# --- TimeoutSeconds (ASL top-level field) and StopExecution ---------------------------------


def test_execution_timeout_ends_it_timed_out_on_virtual_time(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", _wait_then_succeed(500), TimeoutSeconds=100)
    ex = sfn.start_execution(stateMachineArn=arn, name="x")
    sb.run(settle=False)
    assert sb.clock.elapsed() == 100  # the 500 s Wait was cut short
    described = _describe(sb, ex["executionArn"])
    assert described["status"] == "TIMED_OUT"
    assert described["stopDate"] - described["startDate"] == timedelta(seconds=100)
    [listed] = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert listed["status"] == "TIMED_OUT" and listed["stopDate"] == described["stopDate"]
    history = sfn.get_execution_history(executionArn=ex["executionArn"])["events"]
    assert history[-1]["type"] == "ExecutionTimedOut"


def test_execution_timeout_cuts_a_retry_interval_short(sb: Sandbox) -> None:
    fn = sb.create_function("f", "tests.local_aws.lambda_handlers.fail")
    states = {
        "T": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": fn, "Payload.$": "$"},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60, "MaxAttempts": 5}],
            "End": True,
        }
    }
    arn = _machine(sb, "m", states, TimeoutSeconds=90)
    ex = sb.client("stepfunctions").start_execution(stateMachineArn=arn)
    sb.run(settle=False)
    assert _describe(sb, ex["executionArn"])["status"] == "TIMED_OUT"
    assert sb.clock.elapsed() == 90
    assert len(lambda_handlers.RECEIVED["fail"]) == 2  # at 0 s and at 60 s, none at 120 s


def test_within_its_timeout_an_execution_succeeds(sb: Sandbox) -> None:
    arn = _machine(sb, "m", _wait_then_succeed(50), TimeoutSeconds=100)
    ex = sb.client("stepfunctions").start_execution(stateMachineArn=arn)
    sb.run(settle=False)
    assert _describe(sb, ex["executionArn"])["status"] == "SUCCEEDED"
    assert sb.clock.elapsed() == 50


def test_stop_execution_aborts_at_once_even_inside_a_wait(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", _wait_then_succeed(3600))
    ex = sfn.start_execution(stateMachineArn=arn, name="x")["executionArn"]
    sb.run(until=lambda: sb.keeper.parked == 1, settle=False)
    sb.clock.advance(30)
    stopped = sfn.stop_execution(executionArn=ex)
    described = _describe(sb, ex)
    assert described["status"] == "ABORTED"
    assert stopped["stopDate"] == described["stopDate"]
    assert described["stopDate"] - described["startDate"] == timedelta(seconds=30)
    sb.run(settle=False)
    assert sb.clock.elapsed() == 30  # the Wait did not run on
    assert sb.keeper.running == 0
    with pytest.raises(ClientError):
        sfn.start_execution(stateMachineArn=arn, name="x")  # closed: the name is taken


# --- "Step Functions Execution Status Change" events ----------------------------------------


def test_status_change_events_carry_the_documented_detail(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", _wait_then_succeed(10))
    ex = sfn.start_execution(stateMachineArn=arn, name="x", input='{"a": 1}')["executionArn"]
    sb.run(settle=False)
    running, succeeded = sb.status_events
    for event in (running, succeeded):
        assert event["source"] == "aws.states"
        assert event["detail-type"] == "Step Functions Execution Status Change"
        assert event["resources"] == [ex]
        assert event["detail"]["executionArn"] == ex
        assert event["detail"]["stateMachineArn"] == arn
        assert event["detail"]["name"] == "x"
        assert event["detail"]["input"] == '{"a": 1}'
        assert event["detail"]["inputDetails"] == {"included": True}
    start_ms = int(sb.clock.now().timestamp() * 1000) - 10_000
    assert running["detail"]["status"] == "RUNNING"
    assert running["detail"]["startDate"] == start_ms
    assert running["detail"]["stopDate"] is None and running["detail"]["output"] is None
    assert succeeded["detail"]["status"] == "SUCCEEDED"
    assert succeeded["detail"]["stopDate"] == start_ms + 10_000
    assert json.loads(succeeded["detail"]["output"]) == {"a": 1}
    assert succeeded["detail"]["outputDetails"] == {"included": True}


def test_failed_timed_out_and_aborted_executions_emit_their_status(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    failing = _machine(sb, "fails", {"F": {"Type": "Fail", "Error": "Oops", "Cause": "why"}})
    slow = _machine(sb, "slow", _wait_then_succeed(500), TimeoutSeconds=60)
    sfn.start_execution(stateMachineArn=failing, name="f")
    sfn.start_execution(stateMachineArn=slow, name="t")
    stopped = sfn.start_execution(stateMachineArn=slow, name="a")["executionArn"]
    sfn.stop_execution(executionArn=stopped)
    sb.run(settle=False)
    closed = {e["detail"]["name"]: e["detail"] for e in sb.status_events}
    assert closed["f"]["status"] == "FAILED"
    assert (closed["f"]["error"], closed["f"]["cause"]) == ("Oops", "why")
    assert closed["t"]["status"] == "TIMED_OUT"
    assert closed["t"]["stopDate"] - closed["t"]["startDate"] == 60_000
    assert closed["a"]["status"] == "ABORTED"
    assert [e["detail"]["status"] for e in sb.status_events].count("RUNNING") == 3


def test_input_and_output_over_248_kb_are_left_out(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", {"P": {"Type": "Pass", "End": True}})
    # Escaped, 60,000 quotes take 120 KB: input alone fits, input + output does not.
    payload = json.dumps({"x": '"' * 60_000})
    sfn.start_execution(stateMachineArn=arn, name="x", input=payload)
    sb.run(settle=False)
    running, succeeded = (e["detail"] for e in sb.status_events)
    assert running["inputDetails"] == {"included": True} and running["input"] == payload
    assert succeeded["inputDetails"] == {"included": False} and succeeded["input"] is None
    assert succeeded["outputDetails"] == {"included": True}
    assert json.loads(succeeded["output"]) == json.loads(payload)


def test_status_events_reach_a_rule_and_its_lambda(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", {"F": {"Type": "Fail", "Error": "Oops"}})
    fn = sb.create_function("watch", RECORD)
    events = sb.client("events")
    pattern = {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [arn]},
    }
    events.put_rule(Name="failures", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="failures", Targets=[{"Id": "t", "Arn": fn}])
    sfn.start_execution(stateMachineArn=arn, name="x")
    sb.run(settle=False)
    [received] = lambda_handlers.RECEIVED["record"]
    assert received["detail"]["status"] == "FAILED"
    assert received["detail"]["name"] == "x"


def test_status_events_are_best_effort(sb: Sandbox) -> None:
    sfn = sb.client("stepfunctions")
    arn = _machine(sb, "m", {"P": {"Type": "Pass", "End": True}})
    sb.lose_events({"source": ["aws.states"]}, probability=1.0)
    sfn.start_execution(stateMachineArn=arn)
    sb.run(settle=False)
    assert len(sb.status_events) == 2  # emitted...
    assert len(sb.bus.lost) == 2  # ...and lost on the way
    assert (
        sfn.describe_execution(executionArn=sb.status_events[0]["detail"]["executionArn"])["status"]
        == "SUCCEEDED"
    )


# --- errors as Task states see them ---------------------------------------------------------


def _catching_task(resource: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "T": {
            "Type": "Task",
            "Resource": resource,
            "Parameters": parameters,
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "D"}],
            "Next": "D",
        },
        "D": {"Type": "Succeed"},
    }


def _caught_error(sb: Sandbox, arn: str) -> dict[str, Any]:
    ex = sb.client("stepfunctions").start_execution(stateMachineArn=arn)["executionArn"]
    sb.run(settle=False, max_virtual_seconds=600)
    described = _describe(sb, ex)
    assert described["status"] == "SUCCEEDED"
    return dict(json.loads(described["output"])["error"])


@pytest.mark.parametrize(
    ("kind", "extra", "error_name"),
    [
        ("lambda_throttle", {}, "Lambda.TooManyRequestsException"),
        ("lambda_service_error", {}, "Lambda.ServiceException"),
        ("function_error", {"error": "DrainError"}, "DrainError"),
        ("task_error", {"error": "Lambda.SdkClientException"}, "Lambda.SdkClientException"),
        ("task_error", {"error": "Lambda.AWSLambdaException"}, "Lambda.AWSLambdaException"),
    ],
)
def test_lambda_task_fails_with_the_documented_error_names(
    sb: Sandbox, kind: str, extra: dict[str, str], error_name: str
) -> None:
    fn = sb.create_function("f", RECORD)
    arn = _machine(
        sb,
        "m",
        _catching_task("arn:aws:states:::lambda:invoke", {"FunctionName": fn, "Payload": {}}),
    )
    operation = "states:lambda:Invoke" if kind == "task_error" else "lambda:f"
    sb.add_fault(operation, kind, **extra)  # type: ignore[arg-type]
    assert _caught_error(sb, arn)["Error"] == error_name


def test_reserved_concurrency_zero_throttles_the_task(sb: Sandbox) -> None:
    fn = sb.create_function("f", RECORD, reserved_concurrency=0)
    arn = _machine(
        sb,
        "m",
        _catching_task("arn:aws:states:::lambda:invoke", {"FunctionName": fn, "Payload": {}}),
    )
    assert _caught_error(sb, arn)["Error"] == "Lambda.TooManyRequestsException"
    assert "record" not in lambda_handlers.RECEIVED


def test_retry_runs_on_lambda_errors_and_task_failed_matches_function_errors(sb: Sandbox) -> None:
    fn = sb.create_function("f", RECORD)
    states = {
        "T": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": fn, "Payload": {}},
            "Retry": [
                {"ErrorEquals": ["Lambda.TooManyRequestsException"], "MaxAttempts": 3},
                {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 5, "MaxAttempts": 2},
            ],
            "End": True,
        }
    }
    arn = _machine(sb, "m", states)
    sb.add_fault("lambda:f", "lambda_throttle", max_count=3)
    sb.add_fault("lambda:f", "function_error", max_count=2)
    ex = sb.client("stepfunctions").start_execution(stateMachineArn=arn)["executionArn"]
    sb.run(settle=False)
    assert _describe(sb, ex)["status"] == "SUCCEEDED"
    assert len(sb.runtime.rejections) == 3
    assert [i.error is not None for i in sb.runtime.invocations] == [True, True, False]


def test_aws_sdk_task_errors_are_named_service_dot_error_exception(sb: Sandbox) -> None:
    arn = _machine(
        sb,
        "m",
        _catching_task(
            "arn:aws:states:::aws-sdk:autoscaling:recordLifecycleActionHeartbeat",
            {"AutoScalingGroupName": "none", "LifecycleHookName": "h", "InstanceId": "i-1"},
        ),
    )
    # Auto Scaling answers ValidationError, which its API model does not declare.
    caught = _caught_error(sb, arn)
    assert caught["Error"] == "AutoScaling.AutoScalingException"
    assert "Service: AutoScaling" in caught["Cause"]
    assert sb.instrument.states_calls["states:autoscaling:RecordLifecycleActionHeartbeat"] == 1
    assert sdk_error_name("autoscaling", "ResourceContention") == (
        "AutoScaling.ResourceContentionException"
    )
    assert sdk_error_name("ecs", "ClusterNotFoundException") == "Ecs.ClusterNotFoundException"


def test_faults_on_the_state_machines_sdk_calls(sb: Sandbox) -> None:
    arn = _machine(
        sb,
        "m",
        _catching_task(
            "arn:aws:states:::aws-sdk:autoscaling:describeAutoScalingGroups",
            {"AutoScalingGroupNames": ["g"]},
        ),
    )
    sb.add_fault("states:autoscaling:DescribeAutoScalingGroups", "throttle", max_count=1)
    assert _caught_error(sb, arn)["Error"] == "AutoScaling.AutoScalingException"
    sb.add_fault(
        "states:autoscaling:DescribeAutoScalingGroups", "task_error", error="States.TaskFailed"
    )
    assert _caught_error(sb, arn)["Error"] == "States.TaskFailed"
    # The Lambda's own counters are untouched: these were the state machine's calls.
    assert sb.instrument.calls == {}
    assert sb.instrument.states_attempts["states:autoscaling:DescribeAutoScalingGroups"] == 1
