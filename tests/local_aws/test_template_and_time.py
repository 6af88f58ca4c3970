"""Where the sandbox takes the rule pattern and ASL from, and Step Functions on virtual time."""

from __future__ import annotations

import json

from local_aws import template
from local_aws.sandbox import Sandbox


def test_asl_file_definition_matches_only_its_groups() -> None:
    d = template.from_asl_file(["g1"], ["hook"])
    asl = json.loads(d.definition_for("arn:fn"))
    assert asl["States"]["PollDrain"]["Parameters"]["FunctionName"] == "arn:fn"
    # Every substitution is made: the partition is the sandbox's.
    assert "${" not in d.definition_for("arn:fn")
    assert asl["States"]["PollDrain"]["Resource"] == "arn:aws:states:::lambda:invoke"
    from local_aws.events import Rule

    rule = Rule("r", d.rule_pattern, "fn")
    event = {
        "source": "aws.autoscaling",
        "detail-type": "EC2 Instance-terminate Lifecycle Action",
        "detail": {"AutoScalingGroupName": "g1", "LifecycleHookName": "hook"},
    }
    assert rule.matches(event)
    event["detail"]["AutoScalingGroupName"] = "g2"
    assert not rule.matches(event)


def test_from_template_resolves_intrinsics() -> None:
    tpl = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Environment": {"Variables": {"MAX_DRAIN_SECONDS": "900"}}},
            },
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": {
                        "source": ["aws.autoscaling"],
                        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
                        "detail": {"AutoScalingGroupName": [{"Ref": "Asg"}]},
                    },
                    "Targets": [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}, "Id": "t"}],
                },
            },
            "Sm": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": {"Fn::Join": ["", ['{"x": "', "${F}", '"}']]},
                    "DefinitionSubstitutions": {"F": {"Fn::GetAtt": ["Fn", "Arn"]}},
                },
            },
        }
    }
    d = template.from_template(tpl, {"Asg": "my-asg"})
    assert d.rule_pattern["detail"]["AutoScalingGroupName"] == ["my-asg"]
    assert json.loads(d.definition_for("arn:real")) == {"x": "arn:real"}
    assert d.lambda_environment == {"MAX_DRAIN_SECONDS": "900"}


def test_synthesized_template_gives_the_asl_pattern_and_environment() -> None:
    d = template.load(["g"], ["h"])
    assert d.source == "template"
    asl = json.loads(d.definition_for("arn:aws:lambda:us-east-1:123456789012:function:f"))
    file_asl = json.loads(template.ASL_FILE.read_text())
    assert asl["States"].keys() == file_asl["States"].keys()
    assert asl["TimeoutSeconds"] > 7200  # added by the CDK app: just above the drain deadline
    assert asl["States"]["PollDrain"]["Parameters"]["FunctionName"].endswith(":function:f")
    assert d.rule_pattern["detail-type"] == ["EC2 Instance-terminate Lifecycle Action"]
    assert d.rule_pattern["detail"]["AutoScalingGroupName"] == ["g"]
    assert d.rule_pattern["detail"]["LifecycleHookName"] == ["h"]
    assert "MAX_DRAIN_SECONDS" in d.lambda_environment
    assert "CLUSTER_NAME" not in d.lambda_environment  # the sandbox names its own cluster


def test_two_hour_wait_runs_on_virtual_time() -> None:
    asl = {
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 7200, "Next": "D"}, "D": {"Type": "Succeed"}},
    }
    with Sandbox() as sb:
        sfn = sb.client("stepfunctions")
        arn = sfn.create_state_machine(
            name="w", definition=json.dumps(asl), roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        sb.run(settle=False)
        assert sb.clock.elapsed() == 7200
        assert sfn.describe_execution(executionArn=ex)["status"] == "SUCCEEDED"
