"""A first deploy that can't trip: no retained resource with a fixed name, ordering where
CloudFormation needs it, and a Powertools layer in every partition and Region."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import assertions

from ecs_drain_hook import EcsDrainHook, SettingsError
from ecs_drain_hook.powertools import CONTEXT_KEY, PUBLISHED_REGIONS, parameter_name
from tests.infra.conftest import Synth
from tests.infra.small_stacks import imported, new_stack

# Properties that give a resource its physical name, by resource type.
NAME_PROPERTIES = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::Policy": "PolicyName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Events::Rule": "Name",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::ECS::CapacityProvider": "Name",
    "AWS::ECS::Service": "ServiceName",
    "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName",
    "AWS::EC2::LaunchTemplate": "LaunchTemplateName",
    "AWS::AutoScaling::LifecycleHook": "LifecycleHookName",
}
# Named on purpose, never retained: the rule and the Lambda match the hook by its name, and a
# hook is deleted with the stack. IAM policy names are per role (inline), never global.
FIXED_NAMES_BY_DESIGN = {"AWS::AutoScaling::LifecycleHook", "AWS::IAM::Policy"}


def _carries_stack_id(value: Any) -> bool:
    return '"AWS::StackId"' in json.dumps(value)


def test_every_named_resource_is_new_per_stack_or_named_by_design(synth: Synth) -> None:
    """A fixed physical name on a retained (or slowly deleted) resource blocks the next deploy."""
    for logical_id, resource in synth.template["Resources"].items():
        prop = NAME_PROPERTIES.get(resource["Type"])
        name = resource.get("Properties", {}).get(prop) if prop else None
        if name is None or resource["Type"] in FIXED_NAMES_BY_DESIGN:
            continue
        # LaunchTemplateName comes from aws-cdk-lib (uniqueImdsv2TemplateName): not retained.
        if resource["Type"] == "AWS::EC2::LaunchTemplate":
            assert resource.get("DeletionPolicy", "Delete") == "Delete"
            continue
        assert _carries_stack_id(name), (logical_id, name)


def test_no_retained_resource_has_a_fixed_name(synth: Synth) -> None:
    for logical_id, resource in synth.template["Resources"].items():
        if resource.get("DeletionPolicy") not in ("Retain", "RetainExceptOnCreate", "Snapshot"):
            continue
        prop = NAME_PROPERTIES.get(resource["Type"])
        name = resource.get("Properties", {}).get(prop) if prop else None
        assert name is None or _carries_stack_id(name), (logical_id, name)


def test_retained_log_groups_in_attach_mode(attach: Synth) -> None:
    """Attach mode keeps logs for audits; both log groups are named per stack or not at all."""
    groups = {k: v for k, v in attach.resources("AWS::Logs::LogGroup").items()}
    assert {v["DeletionPolicy"] for v in groups.values()} == {"Retain"}
    lambda_group = next(v for k, v in groups.items() if k.startswith("DrainHookDrainLogGroup"))
    assert "LogGroupName" not in lambda_group["Properties"]
    loop_group = next(v for k, v in groups.items() if k.startswith("DrainHookLoopLogGroup"))
    assert _carries_stack_id(loop_group["Properties"]["LogGroupName"])


def test_sample_cluster_service_depends_on_the_capacity_provider_association(
    sample_cluster: Synth,
) -> None:
    (association_id, _) = sample_cluster.one("AWS::ECS::ClusterCapacityProviderAssociations")
    (_, service) = sample_cluster.one("AWS::ECS::Service")
    assert association_id in service["DependsOn"]


# --- Powertools layer in every partition and Region -------------------------------------------


def _layers(stack) -> list[Any]:
    template = assertions.Template.from_stack(stack).to_json()
    (fn,) = [
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("DrainHookDrainFunction")
    ]
    return fn["Properties"]["Layers"], template.get("Rules", {})


@pytest.mark.synth
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-7"])
def test_a_region_with_the_parameter_resolves_it_at_deploy(region: str) -> None:
    _, stack = new_stack(region)
    cluster, groups = imported(stack, "a")
    EcsDrainHook(stack, "DrainHook", cluster=cluster, auto_scaling_groups=groups)
    layers, rules = _layers(stack)
    assert layers == [f"{{{{resolve:ssm:{parameter_name()}}}}}"]
    assert not [k for k in rules if k.startswith("PowertoolsLayer")]  # known Region: no Rule


@pytest.mark.parametrize(
    "region", ["cn-north-1", "cn-northwest-1", "us-gov-west-1", "eu-isoe-west-1"]
)
def test_a_region_without_the_parameter_fails_synth_naming_the_key(region: str) -> None:
    assert region not in PUBLISHED_REGIONS
    _, stack = new_stack(region)
    cluster, groups = imported(stack, "a")
    with pytest.raises(SettingsError) as error:
        EcsDrainHook(stack, "DrainHook", cluster=cluster, auto_scaling_groups=groups)
    assert CONTEXT_KEY in str(error.value) and region in str(error.value)


@pytest.mark.synth
def test_a_given_layer_arn_is_used_anywhere() -> None:
    arn = (
        "arn:aws-cn:lambda:cn-north-1:123456789012:layer:"
        "AWSLambdaPowertoolsPythonV3-python313-arm64:4"
    )
    _, stack = new_stack("cn-north-1")
    cluster, groups = imported(stack, "a")
    EcsDrainHook(
        stack, "DrainHook", cluster=cluster, auto_scaling_groups=groups, powertools_layer_arn=arn
    )
    layers, rules = _layers(stack)
    assert layers == [arn]
    assert not [k for k in rules if k.startswith("PowertoolsLayer")]


def test_a_malformed_layer_arn_is_refused() -> None:
    _, stack = new_stack()
    cluster, groups = imported(stack, "a")
    with pytest.raises(SettingsError, match=CONTEXT_KEY):
        EcsDrainHook(
            stack,
            "DrainHook",
            cluster=cluster,
            auto_scaling_groups=groups,
            powertools_layer_arn="AWSLambdaPowertoolsPythonV3",
        )


@pytest.mark.synth
def test_environment_agnostic_stacks_get_a_region_rule() -> None:
    _, stack = new_stack()
    cluster, groups = imported(stack, "a")
    EcsDrainHook(stack, "DrainHook", cluster=cluster, auto_scaling_groups=groups)
    layers, rules = _layers(stack)
    assert layers == [f"{{{{resolve:ssm:{parameter_name()}}}}}"]
    ((_, rule),) = [(k, r) for k, r in rules.items() if k.startswith("PowertoolsLayer")]
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"]["Fn::Contains"][1] == {"Ref": "AWS::Region"}
    assert set(assertion["Assert"]["Fn::Contains"][0]) == set(PUBLISHED_REGIONS)
    assert CONTEXT_KEY in assertion["AssertDescription"]


def test_published_regions_list_is_the_powertools_list() -> None:
    assert len(PUBLISHED_REGIONS) == len(set(PUBLISHED_REGIONS)) == 30
    assert not any(r.startswith(("cn-", "us-gov-", "us-iso", "eu-iso")) for r in PUBLISHED_REGIONS)
