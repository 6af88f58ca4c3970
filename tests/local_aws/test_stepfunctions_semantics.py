"""Step Functions in the sandbox against the docs: StartExecution idempotency, TimeoutSeconds,
StopExecution, status-change events, the error names Task states see, the history events each
state writes and the 25,000-event quota, and the drain loop's heartbeat tasks on Auto Scaling's
errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecs_drain_hook import contract
from ecs_drain_hook.package_files import asl_path
from local_aws import stepfunctions
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


# --- history events per state, and the 25,000-event quota (module docstring) ------------------


def _run_to_end(sb: Sandbox, arn: str, execution_input: str = "{}") -> str:
    sfn = sb.client("stepfunctions")
    ex = sfn.start_execution(stateMachineArn=arn, input=execution_input)["executionArn"]
    sb.run(settle=False, until=lambda: _describe(sb, ex)["status"] != "RUNNING")
    return str(ex)


def _types(sb: Sandbox, ex: str) -> list[str]:
    return [
        e["type"]
        for e in sb.client("stepfunctions").get_execution_history(executionArn=ex)["events"]
    ]


def test_each_state_writes_the_events_aws_records(sb: Sandbox) -> None:
    """Task (lambda:invoke, aws-sdk): 5, and 3 per retry; Wait, Choice, Pass, Succeed: 2; the
    execution: ExecutionStarted and its closing event."""
    fn = sb.create_function("f", RECORD)
    failing = sb.create_function("g", "tests.local_aws.lambda_handlers.fail")
    states = {
        "C": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.go", "IsPresent": True, "Next": "W"}],
            "Default": "W",
        },
        "W": {"Type": "Wait", "Seconds": 5, "Next": "P"},
        "P": {"Type": "Pass", "Next": "L"},
        "L": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": fn, "Payload": {}},
            "ResultPath": None,
            "Next": "S",
        },
        "S": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:autoscaling:describeAutoScalingGroups",
            "Parameters": {},
            "ResultPath": None,
            "Next": "R",
        },
        "R": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": failing, "Payload": {}},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "D"}],
            "Next": "D",
        },
        "D": {"Type": "Succeed"},
    }
    ex = _run_to_end(sb, _machine(sb, "m", states))
    task = ["TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited"]
    attempt = ["TaskScheduled", "TaskStarted", "TaskFailed"]
    assert _types(sb, ex) == [
        "ExecutionStarted",
        "ChoiceStateEntered",
        "ChoiceStateExited",
        "WaitStateEntered",
        "WaitStateExited",
        "PassStateEntered",
        "PassStateExited",
        *task,
        *task,
        "TaskStateEntered",
        *attempt * 3,  # the first attempt and two retries
        "TaskStateExited",
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]


def test_a_failure_that_ends_the_execution_writes_no_state_exit(sb: Sandbox) -> None:
    failing = sb.create_function("g", "tests.local_aws.lambda_handlers.fail")
    task = {
        "T": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": failing, "Payload": {}},
            "End": True,
        }
    }
    ex = _run_to_end(sb, _machine(sb, "t", task))
    assert _types(sb, ex) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskFailed",
        "ExecutionFailed",
    ]
    ex = _run_to_end(sb, _machine(sb, "f", {"F": {"Type": "Fail", "Error": "Oops"}}))
    assert _types(sb, ex) == ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]


def test_an_execution_that_never_ends_fails_at_exactly_25000_events(sb: Sandbox) -> None:
    """Counted to 6,249 in a Pass and a Choice (4 events a turn after ExecutionStarted), then a
    Task whose TaskStarted would be event 25,000: the execution fails there instead, States.Runtime,
    and neither the Task's Retry nor its Catch (both States.ALL) sees it; nothing is called."""
    states = {
        "Count": {
            "Type": "Pass",
            "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
            "Next": "Again",
        },
        "Again": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericLessThan": 6249, "Next": "Count"}],
            "Default": "T",
        },
        "T": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:autoscaling:describeAutoScalingGroups",
            "Parameters": {},
            "ResultPath": None,
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "Caught"}],
            "Next": "Count",
        },
        "Caught": {"Type": "Succeed"},
    }
    ex = _run_to_end(sb, _machine(sb, "m", states), '{"n": 0}')
    described = _describe(sb, ex)
    assert described["status"] == "FAILED"
    assert (described["error"], described["cause"]) == (
        "States.Runtime",
        "The execution reached the maximum number of history events (25000).",
    )
    events = stepfunctions.execution_history(ex)
    assert len(events) == 25_000
    assert [(e["id"], e["type"]) for e in events[-3:]] == [
        (24_998, "TaskStateEntered"),
        (24_999, "TaskScheduled"),
        (25_000, "ExecutionFailed"),
    ]
    assert events[-1]["executionFailedEventDetails"] == {
        "error": described["error"],
        "cause": described["cause"],
    }
    assert sb.instrument.states_calls == {}  # the Task's call was never made
    running, failed = (e["detail"] for e in sb.status_events)
    assert (running["status"], failed["status"]) == ("RUNNING", "FAILED")
    assert (failed["error"], failed["cause"]) == (described["error"], described["cause"])


def test_the_history_read_in_process_is_what_the_api_lists(sb: Sandbox) -> None:
    ex = _run_to_end(sb, _machine(sb, "m", _wait_then_succeed(10)))
    listed = sb.client("stepfunctions").get_execution_history(executionArn=ex)["events"]
    assert [(e["id"], e["type"]) for e in stepfunctions.execution_history(ex)] == [
        (e["id"], e["type"]) for e in listed
    ]


# --- the drain loop's heartbeat tasks against Auto Scaling's errors ---------------------------


def _heartbeat_machine(sb: Sandbox, state_name: str) -> str:
    """The drain loop's heartbeat Task as the ASL file has it (Retry and Catch unchanged), on
    its own: caught, it goes to Caught; done, to Done."""
    asl = json.loads(asl_path().read_text())
    task = dict(asl["States"][state_name])
    task["Resource"] = contract.integration_arn(
        "aws", "aws-sdk:autoscaling:recordLifecycleActionHeartbeat"
    )
    task["Catch"] = [{**c, "ResultPath": "$.error", "Next": "Caught"} for c in task["Catch"]]
    task["Next"] = "Done"
    states = {
        state_name: task,
        "Caught": {"Type": "Succeed"},
        "Done": {"Type": "Pass", "Result": "recorded", "ResultPath": "$.heartbeat", "End": True},
    }
    return _machine(sb, state_name, states)


def _heartbeat_input(asg: str, instance_id: str) -> str:
    from local_aws.sandbox import HOOK_NAME

    return json.dumps({"asg_name": asg, "hook_name": HOOK_NAME, "instance_id": instance_id})


HEARTBEAT_OPERATION = "states:autoscaling:RecordLifecycleActionHeartbeat"


@pytest.mark.parametrize("state_name", ["HeartbeatBetweenPolls", "HeartbeatWhileFailing"])
def test_a_heartbeat_for_an_action_that_is_over_is_not_retried(
    sb: Sandbox, state_name: str
) -> None:
    asg = sb.add_cluster("c1", instances=1)
    [instance_id] = sb.group_instances(asg)  # in service: no lifecycle action
    ex = _run_to_end(sb, _heartbeat_machine(sb, state_name), _heartbeat_input(asg, instance_id))
    output = json.loads(_describe(sb, ex)["output"])
    assert output["error"]["Error"] == "AutoScaling.AutoScalingException"
    assert "No active Lifecycle Action" in output["error"]["Cause"]
    assert sb.instrument.states_attempts[HEARTBEAT_OPERATION] == 1


@pytest.mark.parametrize("state_name", ["HeartbeatBetweenPolls", "HeartbeatWhileFailing"])
def test_a_throttled_heartbeat_is_not_retried_either(sb: Sandbox, state_name: str) -> None:
    """Throttling has the same name as an action that is over: the Lambda retries it."""
    asg = sb.add_cluster("c1", instances=2)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.scale_in(asg, 1)  # the action waits: nothing is deployed to complete it
    sb.add_fault(HEARTBEAT_OPERATION, "throttle", max_count=1)
    ex = _run_to_end(sb, _heartbeat_machine(sb, state_name), _heartbeat_input(asg, victim))
    output = json.loads(_describe(sb, ex)["output"])
    assert output["error"]["Error"] == "AutoScaling.AutoScalingException"
    assert sb.instrument.states_attempts[HEARTBEAT_OPERATION] == 1


@pytest.mark.parametrize("state_name", ["HeartbeatBetweenPolls", "HeartbeatWhileFailing"])
def test_resource_contention_on_a_heartbeat_is_retried(sb: Sandbox, state_name: str) -> None:
    from local_aws import autoscaling

    asg = sb.add_cluster("c1", instances=2)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.scale_in(asg, 1)
    sb.add_fault(HEARTBEAT_OPERATION, "client_error", error="ResourceContention", max_count=2)
    ex = _run_to_end(sb, _heartbeat_machine(sb, state_name), _heartbeat_input(asg, victim))
    assert json.loads(_describe(sb, ex)["output"])["heartbeat"] == "recorded"
    assert sb.instrument.states_attempts[HEARTBEAT_OPERATION] == 3  # two retried, then recorded
    [action] = [a for a in autoscaling.lifecycle_actions(victim) if a.hook_name]
    assert action.heartbeats == 1
    types = _types(sb, ex)
    assert types.count("TaskScheduled") == 3 and types.count("TaskFailed") == 2


def test_auto_scaling_names_only_resource_contention_apart() -> None:
    """Throttling and an action that is over (ValidationError) are one name; the one error
    Auto Scaling models for the heartbeat call has its own, which the drain loop retries."""
    generic = "AutoScaling.AutoScalingException"
    assert sdk_error_name("autoscaling", "Throttling") == generic
    assert sdk_error_name("autoscaling", "ValidationError") == generic
    contention = sdk_error_name("autoscaling", "ResourceContention")
    assert contention == "AutoScaling.ResourceContentionException"
    asl = json.loads(asl_path().read_text())
    for name in ("HeartbeatBetweenPolls", "HeartbeatWhileFailing"):
        [retrier] = asl["States"][name]["Retry"]
        assert contention in retrier["ErrorEquals"] and generic not in retrier["ErrorEquals"]
