"""Requests AWS refuses on its service model are refused in the sandbox too.

local_aws.service_model checks every request against botocore's service model.

botocore checks types, required members and `min` on the client; AWS checks the rest of the
model (enums, maximum lengths and values, patterns) and moto almost none of it. Each test names
the botocore shape (service-2.json) whose constraint it relies on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import ServiceModel
from botocore.stub import Stubber

from local_aws import service_model
from local_aws.sandbox import Sandbox
from local_aws.service_model import SKIPPED_PATTERNS, check_request, compiled_pattern
from local_aws.stepfunctions import sdk_error_name

ROLE = "arn:aws:iam::123456789012:role/sfn"
# The services this project calls (the Lambda, the state machine, the sandbox, the tests).
PROJECT_SERVICES = ("ecs", "autoscaling", "stepfunctions", "events", "lambda", "sqs", "ec2", "iam")
ALL_BUT_INACTIVE = "[ACTIVE, DRAINING, REGISTERING, DEREGISTERING, REGISTRATION_FAILED]"


def _refusal(error: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = error.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def _sends(client: Any) -> list[str]:
    """Every HTTP attempt the client makes from now on (a refused request makes none)."""
    sent: list[str] = []
    client.meta.events.register("before-send", lambda **kw: sent.append(kw["event_name"]))
    return sent


def _group(asg: Any, name: str = "g") -> None:
    asg.create_launch_configuration(
        LaunchConfigurationName="lc", ImageId="ami-12c6146b", InstanceType="t3.micro"
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName="lc",
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        AvailabilityZones=["us-east-1a"],
    )


# --- moto's mock_aws clients ----------------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_list_container_instances_status_inactive_is_invalid_parameter() -> None:
    """ecs ListContainerInstancesRequest.status: shape ContainerInstanceStatus, an enum without
    INACTIVE (API reference: no status lists every status but INACTIVE)."""
    ecs = boto3.client("ecs", region_name="us-east-1", config=Config(retries={"mode": "standard"}))
    ecs.create_cluster(clusterName="c")
    sent = _sends(ecs)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as error:
        ecs.list_container_instances(cluster="c", status="INACTIVE")
    assert _refusal(error) == (
        400,
        "InvalidParameterException",
        "1 validation error detected: Value 'INACTIVE' at 'status' failed to satisfy "
        f"constraint: Member must satisfy enum value set: {ALL_BUT_INACTIVE}",
    )
    # Refused before anything was sent: moto never saw it, and botocore did not retry it.
    assert sent == []
    assert error.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    # The same call with a status the enum has passes (and reaches moto).
    assert (
        ecs.list_container_instances(cluster="c", status="DRAINING")["containerInstanceArns"] == []
    )
    assert sent == ["before-send.ecs.ListContainerInstances"]


@pytest.mark.usefixtures("aws")
def test_lifecycle_hook_name_over_255_characters_is_validation_error() -> None:
    """autoscaling PutLifecycleHookType.LifecycleHookName: shape AsciiStringMaxLen255 (max 255)."""
    asg = boto3.client("autoscaling", region_name="us-east-1")
    _group(asg)
    arguments = {
        "AutoScalingGroupName": "g",
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
    }
    with pytest.raises(ClientError) as error:
        asg.put_lifecycle_hook(LifecycleHookName="h" * 256, **arguments)
    status, code, message = _refusal(error)
    assert (status, code) == (400, "ValidationError")
    assert error.value.response["Error"]["Type"] == "Sender"  # the query API's error shape
    assert f"Value '{'h' * 200}... (256 characters)' at 'LifecycleHookName'" in message
    assert message.endswith("Member must have length less than or equal to 255")
    asg.put_lifecycle_hook(LifecycleHookName="h" * 255, **arguments)  # at the limit: accepted
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName="g")["LifecycleHooks"]
    assert [hook["LifecycleHookName"] for hook in hooks] == ["h" * 255]


@pytest.mark.usefixtures("aws")
def test_a_list_over_its_max_is_validation_error() -> None:
    """autoscaling DescribeLifecycleHooksType.LifecycleHookNames: shape LifecycleHookNames
    (list, max 50)."""
    asg = boto3.client("autoscaling", region_name="us-east-1")
    _group(asg)
    names = [f"h{n}" for n in range(51)]
    with pytest.raises(ClientError) as error:
        asg.describe_lifecycle_hooks(AutoScalingGroupName="g", LifecycleHookNames=names)
    status, code, message = _refusal(error)
    assert (status, code) == (400, "ValidationError")
    assert "at 'LifecycleHookNames' failed to satisfy constraint" in message
    assert message.endswith("Member must have length less than or equal to 50")
    found = asg.describe_lifecycle_hooks(AutoScalingGroupName="g", LifecycleHookNames=names[:50])
    assert found["LifecycleHooks"] == []


@pytest.mark.usefixtures("aws")
def test_a_pattern_violation_is_validation_exception() -> None:
    """lambda CreateFunctionRequest.Role: shape RoleArn, pattern
    ``arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+``. A role name where the
    ARN belongs is what Lambda answers ValidationException for (aarondfrancis/sidecar#147)."""
    lam = boto3.client("lambda", region_name="us-east-1")
    arguments = {
        "FunctionName": "f",
        "Runtime": "python3.13",
        "Handler": "index.handler",
        "Code": {"ZipFile": b"PK"},
    }
    with pytest.raises(ClientError) as error:
        lam.create_function(Role="lambdarole", **arguments)
    status, code, message = _refusal(error)
    assert (status, code) == (400, "ValidationException")
    assert message.startswith(
        "1 validation error detected: Value 'lambdarole' at 'Role' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: arn:"
    )
    assert lam.list_functions()["Functions"] == []


@pytest.mark.usefixtures("aws")
def test_a_number_over_its_max_and_a_long_execution_name_are_validation_exception() -> None:
    """stepfunctions ListExecutionsInput.maxResults: shape PageSize (0..1000);
    StartExecutionInput.name: shape Name (max 80)."""
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    definition = json.dumps({"StartAt": "D", "States": {"D": {"Type": "Succeed"}}})
    arn = sfn.create_state_machine(name="m", definition=definition, roleArn=ROLE)["stateMachineArn"]
    with pytest.raises(ClientError) as error:
        sfn.list_executions(stateMachineArn=arn, maxResults=1001)
    assert _refusal(error) == (
        400,
        "ValidationException",
        "1 validation error detected: Value '1001' at 'maxResults' failed to satisfy "
        "constraint: Member must have value less than or equal to 1000",
    )
    assert sfn.list_executions(stateMachineArn=arn, maxResults=1000)["executions"] == []

    with pytest.raises(ClientError) as error:
        sfn.start_execution(stateMachineArn=arn, name="x" * 81)
    status, code, message = _refusal(error)
    assert (status, code) == (400, "ValidationException")
    assert message.endswith(
        "at 'name' failed to satisfy constraint: Member must have length less than or equal to 80"
    )
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


@pytest.mark.usefixtures("aws")
def test_every_violation_is_named_in_one_answer() -> None:
    """ecs PutAttributesRequest.attributes[].targetType: shape TargetType (enum
    container-instance); ListTasksRequest.desiredStatus: shape DesiredStatus (enum)."""
    ecs = boto3.client("ecs", region_name="us-east-1")
    operation = ecs.meta.service_model.operation_model("PutAttributes")
    attributes = [
        {"name": "a", "targetId": "x", "targetType": "container-instance"},
        {"name": "b", "targetId": "y", "targetType": "task"},
        {"name": "c", "targetId": "z", "targetType": "service"},
    ]
    violations = check_request(operation, {"cluster": "c", "attributes": attributes})
    assert [(v.path, v.value) for v in violations] == [
        ("attributes[1].targetType", "task"),
        ("attributes[2].targetType", "service"),
    ]
    with pytest.raises(ecs.exceptions.InvalidParameterException) as error:
        ecs.list_tasks(cluster="c", desiredStatus="DONE", launchType="SPOT")
    message = _refusal(error)[2]
    assert message.startswith("2 validation errors detected: Value 'DONE' at 'desiredStatus'")
    assert "; Value 'SPOT' at 'launchType' failed to satisfy constraint" in message


@pytest.mark.usefixtures("aws")
def test_a_stubber_wrapped_client_is_refused_before_its_stubbed_answer() -> None:
    """ecs ListContainerInstancesRequest.status (shape ContainerInstanceStatus): AWS refuses the
    request before anything a Stubber would answer."""
    ecs = boto3.client("ecs", region_name="us-east-1")
    with Stubber(ecs) as stubber:
        stubber.add_response("list_container_instances", {"containerInstanceArns": ["arn:x"]})
        with pytest.raises(ecs.exceptions.InvalidParameterException):
            ecs.list_container_instances(cluster="c", status="INACTIVE")
        # The stubbed answer is still queued: the refused call never reached the Stubber.
        listed = ecs.list_container_instances(cluster="c", status="ACTIVE")
        assert listed["containerInstanceArns"] == ["arn:x"]
        stubber.assert_no_pending_responses()


@pytest.mark.usefixtures("aws")
def test_a_client_without_parameter_validation_gets_botocore_checks_from_aws() -> None:
    """autoscaling CompleteLifecycleActionType: LifecycleActionResult is required, and
    LifecycleActionToken is shape LifecycleActionToken (min 36, max 36). With botocore's own
    validation off (as moto's Step Functions interpreter builds its clients), AWS still checks
    required members and `min`."""
    asg = boto3.client("autoscaling", region_name="us-east-1")
    loose = boto3.client(
        "autoscaling", region_name="us-east-1", config=Config(parameter_validation=False)
    )
    arguments = {"AutoScalingGroupName": "g", "LifecycleHookName": "h", "InstanceId": "i-1"}
    with pytest.raises(ClientError) as error:
        loose.complete_lifecycle_action(LifecycleActionToken="short", **arguments)
    message = _refusal(error)[2]
    assert message.startswith("2 validation errors detected: ")
    assert (
        "Value null at 'LifecycleActionResult' failed to satisfy constraint: Member must "
        "not be null" in message
    )
    assert (
        "Value 'short' at 'LifecycleActionToken' failed to satisfy constraint: Member must "
        "have length greater than or equal to 36" in message
    )
    # With validation on, botocore refuses the same request itself, before AWS could.
    with pytest.raises(ParamValidationError):
        asg.complete_lifecycle_action(LifecycleActionToken="short", **arguments)


@pytest.mark.usefixtures("aws")
def test_a_bare_botocore_session_is_checked_too() -> None:
    """ecs ListContainerInstancesRequest.status: shape ContainerInstanceStatus. Every botocore
    session made after local_aws was imported registers the checks (BUILTIN_HANDLERS)."""
    ecs = botocore.session.Session().create_client("ecs", region_name="us-east-1")
    with pytest.raises(ClientError) as error:
        ecs.list_container_instances(status="INACTIVE")
    assert _refusal(error)[:2] == (400, "InvalidParameterException")


# --- the sandbox: its clients, a Lambda run, a Step Functions aws-sdk task ------------------


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=3) as box:
        yield box


def list_inactive(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A Lambda handler (`Sandbox.create_function`) making its call with the drain Lambda's own
    client factory."""
    from drain_hook.adapters.clients import client

    client("ecs").list_container_instances(cluster=event["cluster"], status="INACTIVE")
    return {"listed": True}


def test_a_lambda_run_in_the_sandbox_is_refused_and_recorded(sb: Sandbox) -> None:
    """ecs ListContainerInstancesRequest.status: shape ContainerInstanceStatus."""
    sb.client("ecs").create_cluster(clusterName="c")
    calls = sb.record_calls()
    fn = sb.create_function("lister", f"{__name__}.list_inactive")
    answer = sb.client("lambda").invoke(FunctionName=fn, Payload=json.dumps({"cluster": "c"}))
    assert answer["FunctionError"] == "Unhandled"
    payload = json.loads(answer["Payload"].read())
    assert payload["errorType"] == "InvalidParameterException"
    assert "Value 'INACTIVE' at 'status' failed to satisfy constraint" in payload["errorMessage"]
    [record] = [c for c in calls if c.operation == "ecs:ListContainerInstances"]
    assert (record.scope, record.ok, record.error) == ("lambda", False, "InvalidParameterException")
    assert record.params == {"cluster": "c", "status": "INACTIVE"}
    assert sb.instrument.attempts["ecs:ListContainerInstances"] == 0  # never sent


def test_the_sandboxs_own_clients_are_checked(sb: Sandbox) -> None:
    """autoscaling PutLifecycleHookType.LifecycleHookName: shape AsciiStringMaxLen255, pattern
    ``[A-Za-z0-9\\-_\\/]+`` (search semantics: no character of it at all fails)."""
    for asg in (sb.client("autoscaling"), sb.account_client("autoscaling")):
        with pytest.raises(ClientError) as error:
            asg.put_lifecycle_hook(
                LifecycleHookName="!!!",
                AutoScalingGroupName="g",
                LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            )
        status, code, message = _refusal(error)
        assert (status, code) == (400, "ValidationError")
        assert message.endswith(
            "Member must satisfy regular expression pattern: [A-Za-z0-9\\-_\\/]+"
        )


def _sdk_task_error(sb: Sandbox, resource: str, parameters: dict[str, Any]) -> dict[str, Any]:
    asl = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": resource,
                "Parameters": parameters,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "D"}],
                "Next": "D",
            },
            "D": {"Type": "Succeed"},
        },
    }
    sfn = sb.client("stepfunctions")
    arn = sfn.create_state_machine(name="m", definition=json.dumps(asl), roleArn=ROLE)[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    sb.run(settle=False, max_virtual_seconds=600)
    described = sfn.describe_execution(executionArn=execution)
    assert described["status"] == "SUCCEEDED"
    return dict(json.loads(described["output"])["error"])


def test_a_step_functions_aws_sdk_task_is_refused_with_the_sdk_error_name(sb: Sandbox) -> None:
    """ecs ListContainerInstancesRequest.status: shape ContainerInstanceStatus. moto's
    interpreter builds the task's client with parameter_validation=False: still checked."""
    sb.client("ecs").create_cluster(clusterName="c")
    calls = sb.record_calls()
    caught = _sdk_task_error(
        sb,
        "arn:aws:states:::aws-sdk:ecs:listContainerInstances",
        # botocore's member names: moto's interpreter can't map the PascalCase ones for ECS.
        {"cluster": "c", "status": "INACTIVE"},
    )
    assert caught["Error"] == sdk_error_name("ecs", "InvalidParameterException")
    assert caught["Error"] == "Ecs.InvalidParameterException"
    assert "Value 'INACTIVE' at 'status' failed to satisfy constraint" in caught["Cause"]
    assert "Status Code: 400" in caught["Cause"]
    [record] = [c for c in calls if c.operation == "ecs:ListContainerInstances"]
    assert (record.scope, record.ok, record.error) == ("states", False, "InvalidParameterException")
    assert sb.instrument.states_attempts["states:ecs:ListContainerInstances"] == 0


def test_an_aws_sdk_task_missing_a_required_member_is_refused(sb: Sandbox) -> None:
    """autoscaling CompleteLifecycleActionType: LifecycleActionResult required (botocore's own
    check, off in the interpreter's clients); Auto Scaling's ValidationError is not a modeled
    error, so Step Functions names it AutoScaling.AutoScalingException (sdk_error_name)."""
    caught = _sdk_task_error(
        sb,
        "arn:aws:states:::aws-sdk:autoscaling:completeLifecycleAction",
        {"AutoScalingGroupName": "g", "LifecycleHookName": "h", "InstanceId": "i-1"},
    )
    assert caught["Error"] == sdk_error_name("autoscaling", "ValidationError")
    assert caught["Error"] == "AutoScaling.AutoScalingException"
    assert "Value null at 'LifecycleActionResult'" in caught["Cause"]
    assert sb.instrument.states_attempts["states:autoscaling:CompleteLifecycleAction"] == 0


# --- Java patterns in Python ----------------------------------------------------------------


def test_surrogate_pair_ranges_read_as_the_code_points_java_reads() -> None:
    """autoscaling XmlStringMaxLen255's pattern: U+10000..U+10FFFF written as surrogate pairs."""
    regex = compiled_pattern(
        "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*"
    )
    assert regex is not None
    assert regex.fullmatch("my-asg \U0001f680") is not None
    assert regex.fullmatch("bad \x01") is None


def test_unicode_categories_and_java_defaults() -> None:
    """ecs TagKey's pattern ``([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)``; Java's \\w is ASCII-only and
    a "-" after a class escape is a literal."""
    tag = compiled_pattern("^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$")
    assert tag is not None
    assert tag.search("Équipe 42: ops") is not None
    assert tag.search("a,b") is None
    word = compiled_pattern("^[\\w-_]*$")
    assert word is not None
    assert word.search("a-b_c") is not None
    assert word.search("é") is None  # \w is [a-zA-Z_0-9] in Java
    unanchored = compiled_pattern("[A-Za-z0-9\\-_\\/]+")
    assert unanchored is not None
    assert unanchored.search("has spaces") is not None  # not anchored: search semantics
    assert unanchored.search("!!!") is None


def test_a_pattern_python_cannot_read_is_skipped_and_listed_and_the_rest_still_holds() -> None:
    """A made-up shape whose pattern uses a Java binary property Python's re lacks."""
    model = ServiceModel(
        {
            "metadata": {
                "protocol": "json",
                "serviceId": "Made Up",
                "endpointPrefix": "madeup",
                "apiVersion": "2020-01-01",
                "jsonVersion": "1.1",
                "targetPrefix": "MadeUp",
            },
            "operations": {
                "Put": {
                    "name": "Put",
                    "http": {"method": "POST", "requestUri": "/"},
                    "input": {"shape": "PutInput"},
                }
            },
            "shapes": {
                "PutInput": {"type": "structure", "members": {"Name": {"shape": "Name"}}},
                "Name": {"type": "string", "max": 3, "pattern": "^\\p{IsAlphabetic}+$"},
            },
        },
        service_name="madeup",
    )
    violations = check_request(model.operation_model("Put"), {"Name": "12345"})
    assert [v.constraint for v in violations] == ["Member must have length less than or equal to 3"]
    assert "^\\p{IsAlphabetic}+$" in SKIPPED_PATTERNS


def test_every_pattern_of_the_services_used_here_is_applied() -> None:
    assert service_model.untranslatable_patterns(PROJECT_SERVICES) == {}


def test_every_service_used_here_has_its_error_code_from_the_table() -> None:
    for service in PROJECT_SERVICES:
        code, source = service_model.SERVICE_ERRORS[service]
        assert service_model.error_code(service) == code and source
    assert service_model.error_code("made-up", "query") == "ValidationError"
    assert service_model.error_code("made-up", "json") == "ValidationException"
