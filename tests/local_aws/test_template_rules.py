"""template.py reads every rule that targets the drain function, whatever its pattern, with the
function's invoke config, reserved concurrency and the state machine's timeout; Sandbox.deploy
creates them all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ecs_drain_hook.timing import (
    INTAKE_MAX_CONCURRENCY,
    INTAKE_MAX_RECEIVE_COUNT,
    INTAKE_VISIBILITY_TIMEOUT_SECONDS,
)
from local_aws import template
from local_aws.sandbox import FUNCTION_NAME, HOOK_NAME, Sandbox
from tests.local_aws import lambda_handlers

RECORD = "tests.local_aws.lambda_handlers.record"
SM_NAME = "EcsDrainHook-22DF8D76"


def _arn_join(*tail: Any) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, *tail],
        ]
    }


def _target(**extra: Any) -> dict[str, Any]:
    return {"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}, "Id": "Target0", **extra}


DLQ = {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}}
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "drain_hook.handler.lambda_handler",
                "Timeout": 90,
                "MemorySize": 512,
                "ReservedConcurrentExecutions": 5,
                "Environment": {"Variables": {"MAX_DRAIN_SECONDS": "7200"}},
            },
        },
        "Other": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "x.y"}},
        "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Unused": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "InvokeConfig": {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {
                "FunctionName": {"Ref": "Fn"},
                "MaximumRetryAttempts": 1,
                "MaximumEventAgeInSeconds": 900,
                "Qualifier": "$LATEST",
                "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["Dlq", "Arn"]}}},
            },
        },
        "Sm": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": SM_NAME,
                "DefinitionString": json.dumps(
                    {
                        "StartAt": "Poll",
                        "TimeoutSeconds": 7500,
                        "States": {
                            "Poll": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::lambda:invoke",
                                "Parameters": {"FunctionName": "${F}", "Payload.$": "$"},
                                "Next": "Fail",
                            },
                            "Fail": {"Type": "Fail", "Error": "Oops"},
                        },
                    }
                ),
                "DefinitionSubstitutions": {"F": {"Fn::GetAtt": ["Fn", "Arn"]}},
            },
        },
        "LifecycleRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {
                    "source": ["aws.autoscaling"],
                    "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
                    "detail": {
                        "AutoScalingGroupName": [{"Ref": "Asg"}],
                        "LifecycleHookName": ["ecs-drain-hook"],
                    },
                },
                "Targets": [
                    _target(
                        RetryPolicy={"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 600},
                        DeadLetterConfig=DLQ,
                    )
                ],
            },
        },
        "InstanceRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {
                    "source": ["aws.ecs"],
                    "detail-type": ["ECS Container Instance State Change"],
                    "detail": {
                        "clusterArn": [
                            _arn_join(
                                ":ecs:",
                                {"Ref": "AWS::Region"},
                                ":",
                                {"Ref": "AWS::AccountId"},
                                ":cluster/sandbox-cluster",
                            )
                        ],
                        "attributes": {"name": ["ecs-drain-hook.draining"]},
                    },
                },
                "Targets": [_target(DeadLetterConfig=DLQ)],
            },
        },
        "ExecutionRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": "drain-loop-ended-badly",
                "EventPattern": {
                    "source": ["aws.states"],
                    "detail-type": ["Step Functions Execution Status Change"],
                    "detail": {
                        "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                        "stateMachineArn": [
                            _arn_join(
                                ":states:",
                                {"Ref": "AWS::Region"},
                                ":",
                                {"Ref": "AWS::AccountId"},
                                f":stateMachine:{SM_NAME}",
                            )
                        ],
                    },
                },
                "Targets": [
                    _target(
                        RetryPolicy={"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 300}
                    )
                ],
            },
        },
        "ExecutionRuleByRef": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "State": "DISABLED",
                "EventPattern": {"source": ["aws.states"], "resources": [{"Ref": "Sm"}]},
                "Targets": [_target()],
            },
        },
        "RuleOfAnotherFunction": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {"source": ["aws.ec2"]},
                "Targets": [{"Arn": {"Fn::GetAtt": ["Other", "Arn"]}, "Id": "t"}],
            },
        },
        "Schedule": {
            "Type": "AWS::Events::Rule",
            "Properties": {"ScheduleExpression": "rate(5 minutes)", "Targets": [_target()]},
        },
    }
}


def _rules(d: template.DrainDefinition) -> dict[str, template.RuleSpec]:
    return {rule.name: rule for rule in d.rules}


def test_every_rule_targeting_the_drain_function_is_read() -> None:
    d = template.from_template(TEMPLATE, {"Asg": "my-asg"})
    rules = _rules(d)
    assert set(rules) == {
        "LifecycleRule",
        "InstanceRule",
        "drain-loop-ended-badly",
        "ExecutionRuleByRef",
        "Schedule",
    }
    # A scheduled rule is read with its expression and no pattern (the sandbox's bus runs it).
    assert rules["Schedule"].schedule == "rate(5 minutes)" and rules["Schedule"].pattern == {}
    lifecycle = rules["LifecycleRule"]
    assert lifecycle.is_lifecycle and d.rule_pattern == lifecycle.pattern
    assert lifecycle.pattern["detail"]["AutoScalingGroupName"] == ["my-asg"]
    assert lifecycle.retry_policy == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 600}
    assert lifecycle.dead_letter_arn == "arn:aws:sqs:us-east-1:123456789012:Dlq"
    instance = rules["InstanceRule"]
    assert instance.pattern["detail"]["attributes"] == {"name": ["ecs-drain-hook.draining"]}
    assert instance.pattern["detail"]["clusterArn"] == [
        "arn:aws:ecs:us-east-1:123456789012:cluster/sandbox-cluster"
    ]
    assert instance.retry_policy is None
    execution = rules["drain-loop-ended-badly"]
    assert execution.pattern["detail"]["stateMachineArn"] == [
        template.STATE_MACHINE_ARN_PLACEHOLDER
    ]
    assert rules["ExecutionRuleByRef"].pattern["resources"] == [
        template.STATE_MACHINE_ARN_PLACEHOLDER
    ]
    assert not rules["ExecutionRuleByRef"].enabled


def test_the_functions_invoke_config_concurrency_and_the_machines_timeout_are_read() -> None:
    d = template.from_template(TEMPLATE)
    assert d.event_invoke_config is not None
    assert d.event_invoke_config.as_api() == {
        "MaximumRetryAttempts": 1,
        "MaximumEventAgeInSeconds": 900,
        "DestinationConfig": {
            "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:Dlq"}
        },
    }
    assert d.reserved_concurrency == 5
    assert (d.function_timeout, d.memory_size) == (90, 512)
    assert d.timeout_seconds == 7500
    assert d.queues == ["Dlq"]
    assert d.lambda_environment == {"MAX_DRAIN_SECONDS": "7200"}


def test_rules_for_fills_in_the_sandboxs_arns_and_clusters() -> None:
    d = template.from_template(TEMPLATE).with_clusters(["c1", "c2"], "sandbox-cluster")
    sm_arn = "arn:aws:states:us-east-1:123456789012:stateMachine:mine"
    rules = {r.name: r for r in d.rules_for("arn:fn", sm_arn)}
    assert rules["drain-loop-ended-badly"].pattern["detail"]["stateMachineArn"] == [sm_arn]
    assert rules["InstanceRule"].pattern["detail"]["clusterArn"] == [
        "arn:aws:ecs:us-east-1:123456789012:cluster/c1",
        "arn:aws:ecs:us-east-1:123456789012:cluster/c2",
    ]


@pytest.fixture
def deployed() -> Iterator[Sandbox]:
    lambda_handlers.RECEIVED.clear()
    definition = template.from_template(TEMPLATE)
    with Sandbox(definition=definition, handler=RECORD) as sb:
        sb.add_cluster("c1", instances=1)
        sb.deploy()
        yield sb


def test_deploy_creates_every_rule_with_its_retry_policy_and_dlq(deployed: Sandbox) -> None:
    events = deployed.client("events")
    names = {r["Name"]: r for r in events.list_rules()["Rules"]}
    assert set(names) == {
        "LifecycleRule",
        "InstanceRule",
        "drain-loop-ended-badly",
        "ExecutionRuleByRef",
        "Schedule",
    }
    assert names["Schedule"]["ScheduleExpression"] == "rate(5 minutes)"
    assert names["ExecutionRuleByRef"]["State"] == "DISABLED"
    [target] = events.list_targets_by_rule(Rule="LifecycleRule")["Targets"]
    assert target["Arn"] == deployed.function_arn
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 600}
    dlq = "arn:aws:sqs:us-east-1:123456789012:Dlq"
    assert target["DeadLetterConfig"] == {"Arn": dlq}
    lifecycle = json.loads(names["LifecycleRule"]["EventPattern"])
    assert lifecycle["detail"]["AutoScalingGroupName"] == ["c1-asg"]
    assert lifecycle["detail"]["LifecycleHookName"] == [HOOK_NAME]
    lam = deployed.client("lambda")
    config = lam.get_function_event_invoke_config(FunctionName=FUNCTION_NAME)
    assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (1, 900)
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == dlq
    concurrency = lam.get_function_concurrency(FunctionName=FUNCTION_NAME)
    assert concurrency["ReservedConcurrentExecutions"] == 5
    assert lam.get_function_configuration(FunctionName=FUNCTION_NAME)["Timeout"] == 90
    assert deployed.client("sqs").get_queue_url(QueueName="Dlq")["QueueUrl"]


def test_deployed_rules_route_their_events_to_the_drain_function(deployed: Sandbox) -> None:
    cluster_arn = "arn:aws:ecs:us-east-1:123456789012:cluster/c1"
    instance_event = {
        "source": "aws.ecs",
        "detail-type": "ECS Container Instance State Change",
        "detail": {
            "clusterArn": cluster_arn,
            "attributes": [{"name": "ecs.os-type"}, {"name": "ecs-drain-hook.draining"}],
        },
    }
    assert deployed.put_event(instance_event) == 1
    sfn = deployed.client("stepfunctions")
    sfn.start_execution(stateMachineArn=deployed.state_machine_arn, name="x")  # ends FAILED
    deployed.run(settle=False)
    received = lambda_handlers.RECEIVED["record"]
    kinds = [e.get("detail-type", "poll") for e in received]
    assert sorted(kinds) == [
        "ECS Container Instance State Change",
        "Step Functions Execution Status Change",
        "poll",  # the state machine's own lambda:invoke
    ]
    [failed] = [e for e in received if e.get("source") == "aws.states"]
    assert failed["detail"]["status"] == "FAILED"
    assert failed["detail"]["stateMachineArn"] == deployed.state_machine_arn


def test_the_synthesized_stack_gives_its_retry_policies_invoke_config_and_timeout() -> None:
    d = template.load(["g"], ["h"])
    [lifecycle] = [r for r in d.rules if r.is_lifecycle]
    assert lifecycle.retry_policy is not None and lifecycle.dead_letter_arn in (
        f"arn:aws:sqs:us-east-1:123456789012:{q}" for q in d.queues
    )
    assert d.event_invoke_config is not None
    assert d.event_invoke_config.maximum_retry_attempts is not None
    assert d.event_invoke_config.on_failure is not None
    assert d.timeout_seconds is not None and d.timeout_seconds > 7200
    with Sandbox() as sb:
        sb.add_cluster("c1", instances=1)
        sb.deploy()
        [target] = sb.client("events").list_targets_by_rule(Rule=lifecycle.name)["Targets"]
        assert target["RetryPolicy"] == lifecycle.retry_policy
        assert target["DeadLetterConfig"] == {"Arn": lifecycle.dead_letter_arn}


def test_the_synthesized_stack_sends_lifecycle_events_through_its_intake_queue() -> None:
    """The lifecycle rule targets the queue the drain function reads (its event source
    mapping); the sandbox delivers there, and the mapping's settings come from the template."""
    d = template.load(["g"], ["h"])
    assert d.intake is not None
    assert (d.intake.batch_size, d.intake.max_concurrency) == (1, INTAKE_MAX_CONCURRENCY)
    assert d.intake.visibility_timeout_seconds == INTAKE_VISIBILITY_TIMEOUT_SECONDS
    assert d.intake.max_receive_count == INTAKE_MAX_RECEIVE_COUNT
    assert d.intake.dead_letter_queue in d.queues
    [lifecycle] = [r for r in d.rules if r.is_lifecycle]
    assert lifecycle.target_queue == d.intake.queue
    assert all(r.target_queue is None for r in d.rules if not r.is_lifecycle)
    with Sandbox() as sb:
        sb.add_cluster("c1", instances=1)
        sb.deploy()
        assert sb.intake is not None
        [target] = sb.client("events").list_targets_by_rule(Rule=lifecycle.name)["Targets"]
        assert target["Arn"] == sb.intake.queue_arn
