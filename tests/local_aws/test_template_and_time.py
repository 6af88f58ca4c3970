"""Where the sandbox takes the rule pattern and ASL from, and Step Functions on virtual time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from local_aws import template
from local_aws.sandbox import Sandbox

CDK_OUT = template.ROOT / "cdk.out"


def test_asl_file_definition_matches_only_its_groups() -> None:
    d = template.from_asl_file(["g1"], ["hook"])
    assert (
        json.loads(d.definition_for("arn:fn"))["States"]["PollDrain"]["Parameters"]["FunctionName"]
        == "arn:fn"
    )
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


@pytest.mark.skipif(not CDK_OUT.is_dir(), reason="no synthesized template (make synth)")
def test_synthesized_template_gives_the_asl_and_pattern() -> None:
    d = template.load(["g"], ["h"], cdk_out=CDK_OUT)
    asl = json.loads(d.definition_for("arn:aws:lambda:us-east-1:123456789012:function:f"))
    assert (asl["StartAt"] and "PollDrain" in json.dumps(asl)) or asl["States"]
    assert d.rule_pattern["detail-type"] == ["EC2 Instance-terminate Lifecycle Action"]


def test_load_falls_back_to_the_asl_file(tmp_path: Path) -> None:
    assert template.load(["g"], ["h"], cdk_out=tmp_path).source.startswith("file:")


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
        wall = time.monotonic()
        ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        sb.run(settle=False)
        assert time.monotonic() - wall < 30  # a real Wait would take two hours
        assert sb.clock.elapsed() == 7200
        assert sfn.describe_execution(executionArn=ex)["status"] == "SUCCEEDED"
