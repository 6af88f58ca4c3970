"""Context parsing (attach / sample cluster / errors), derived timings, what each mode builds."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from typing import Any

import pytest

from ecs_drain_hook import RESERVED_CONCURRENCY_WARNING_ID, HookTiming, SettingsError, Tunables
from ecs_drain_hook.timing import (
    INTAKE_MAX_RECEIVE_COUNT,
    INTAKE_VISIBILITY_TIMEOUT_SECONDS,
    LAMBDA_TIMEOUT_SECONDS,
    LIFECYCLE_DELIVERY,
    first_heartbeat_bound_seconds,
)
from infra.config import AppConfig, ContextError
from tests.infra.cfn_eval import evaluate, pseudo
from tests.infra.conftest import Synth, cdk_json_context


def config(**context: Any) -> AppConfig:
    return AppConfig.from_context(context.get)


# --- context ----------------------------------------------------------------------------------


def test_attach_mode_from_context() -> None:
    cfg = config(cluster_name="prod", asg_names=" a, b ,", max_drain_seconds="3600")
    assert (cfg.sample_cluster, cfg.cluster_name, cfg.asg_names) == (False, "prod", ("a", "b"))
    assert cfg.stack_name == "EcsDrainHook"
    assert cfg.tunables.max_drain_seconds == 3600
    assert cfg.managed_draining is None
    assert cfg.powertools_layer_arn is None


def test_sample_cluster_mode_from_context() -> None:
    cfg = config(sample_cluster="true")
    assert cfg.sample_cluster and cfg.stack_name == "EcsDrainHookSample"
    assert cfg.tunables == Tunables()


@pytest.mark.parametrize(
    ("context", "keys"),
    [
        ({}, ["-c cluster_name", "-c asg_names", "-c sample_cluster=true"]),
        ({"cluster_name": "prod"}, ["-c asg_names"]),
        ({"asg_names": "a"}, ["-c cluster_name"]),
        ({"sample_cluster": "true", "cluster_name": "prod"}, ["cluster_name", "sample_cluster"]),
        ({"sample_cluster": "true", "asg_names": "a"}, ["asg_names", "sample_cluster"]),
        ({"sample_cluster": "maybe"}, ["-c sample_cluster"]),
        ({"sample_cluster": "true", "managed_draining": "enabled"}, ["managed_draining"]),
        ({"cluster_name": "p", "asg_names": "a,a"}, ["asg_names"]),
        ({"cluster_name": "p", "asg_names": "a", "managed_draining": "on"}, ["managed_draining"]),
        (
            {"cluster_name": "p", "asg_names": "a", "max_drain_seconds": "ten"},
            ["max_drain_seconds"],
        ),
        ({"cluster_name": "p", "asg_names": "a", "max_drain_seconds": "30"}, ["max_drain_seconds"]),
        ({"cluster_name": "p", "asg_names": "a", "at_deadline": "explode"}, ["at_deadline"]),
        ({"cluster_name": "p", "asg_names": "a", "tracing_enabled": "yes"}, ["tracing_enabled"]),
        (
            {"cluster_name": "p", "asg_names": "a", "log_retention_days": "2"},
            ["log_retention_days"],
        ),
        ({"cluster_name": "p", "asg_names": "a", "alarm_topic_arn": "x"}, ["alarm_topic_arn"]),
        (
            {"cluster_name": "p", "asg_names": "a", "reserved_concurrency": "0"},
            ["reserved_concurrency"],
        ),
        (
            {"cluster_name": "p", "asg_names": "a", "intake_concurrency": "1"},
            ["intake_concurrency", "2..1000"],
        ),
        (
            {"cluster_name": "p", "asg_names": "a", "heartbeat_timeout_seconds": "60"},
            ["heartbeat_timeout_seconds"],
        ),
        (
            {"cluster_name": "p", "asg_names": "a", "poll_interval_first_seconds": "2400"},
            ["poll_interval_first_seconds"],
        ),
        (
            {"cluster_name": "p", "asg_names": "a", "max_drain_seconds": str(48 * 3600)},
            ["max_drain_seconds", "48 h"],
        ),
    ],
)
def test_bad_context_names_the_keys(context: dict[str, Any], keys: list[str]) -> None:
    with pytest.raises(ContextError) as error:
        config(**context)
    for key in keys:
        assert key in str(error.value)


def test_every_tunable_is_settable_by_context() -> None:
    """Each Tunables field is a context key of the same name; values arrive as -c strings."""
    values = {
        "poll_interval_first_seconds": "10",
        "poll_interval_max_seconds": "60",
        "max_drain_seconds": "1800",
        "standalone_tasks": "stop",
        "standalone_grace_seconds": "120",
        "daemon_tasks_hold_instance": "false",
        "release_when": "services_steady",
        "at_deadline": "continue",
        "deadline_stop_grace_seconds": "30",
        "on_drain_failure": "retain",
        "agent_disconnected_grace_seconds": "300",
        "error_release_seconds": "1200",
        "polls_per_execution": "500",
        "retry_mode": "standard",
        "retry_max_attempts": "5",
        "tracing_enabled": "true",
        "log_level": "DEBUG",
    }
    assert set(values) == {f.name for f in fields(Tunables)}
    cfg = config(cluster_name="p", asg_names="a", heartbeat_timeout_seconds="900", **values)
    env = cfg.tunables.environ()
    assert env["STANDALONE_TASKS"] == "stop"
    assert env["DAEMON_TASKS_HOLD_INSTANCE"] == "false"
    assert env["TRACING_ENABLED"] == "true"
    assert env["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert env["AGENT_DISCONNECTED_GRACE_SECONDS"] == "300"
    assert env["RELEASE_WHEN"] == "services_steady"
    assert env["ON_DRAIN_FAILURE"] == "retain"
    assert cfg.timing.heartbeat_timeout_seconds == 900


def test_typed_context_from_cdk_json_is_accepted() -> None:
    """cdk.json context carries JSON types, -c carries strings: both work."""
    cfg = config(cluster_name="p", asg_names="a", max_drain_seconds=3600, tracing_enabled=True)
    assert cfg.tunables.max_drain_seconds == 3600 and cfg.tunables.tracing_enabled is True


def test_powertools_layer_arn_from_context() -> None:
    arn = "arn:aws-cn:lambda:cn-north-1:123456789012:layer:AWSLambdaPowertoolsPythonV3:7"
    assert (
        config(cluster_name="p", asg_names="a", powertools_layer_arn=arn).powertools_layer_arn
        == arn
    )


# --- derived timings --------------------------------------------------------------------------


@pytest.mark.parametrize("max_drain", [60, 3600, 7200, 86400, 160000])
def test_heartbeat_and_execution_timeout_fit(max_drain: int) -> None:
    timing = HookTiming.derive(Tunables(max_drain_seconds=max_drain))
    heartbeat = timing.heartbeat_timeout_seconds
    assert 30 <= heartbeat <= 7200
    assert min(48 * 3600, 100 * heartbeat) >= timing.hold_seconds
    assert timing.execution_timeout_seconds > max_drain
    assert heartbeat > first_heartbeat_bound_seconds()


def test_default_heartbeat() -> None:
    # max(600, 4 x the longest poll interval (300 s), the delivery bound, hold / 100)
    assert HookTiming.derive(Tunables()).heartbeat_timeout_seconds == 1200


def test_drain_longer_than_the_global_timeout_is_rejected() -> None:
    with pytest.raises(SettingsError, match="48 h"):
        HookTiming.derive(Tunables(max_drain_seconds=48 * 3600))


def test_explicit_heartbeat_must_cover_the_drain() -> None:
    # 100 x 1000 s = 27.7 h < a 30 h drain.
    with pytest.raises(SettingsError, match="heartbeat_timeout_seconds"):
        HookTiming.derive(Tunables(max_drain_seconds=30 * 3600), 1000)
    assert HookTiming.derive(Tunables(max_drain_seconds=30 * 3600), 1200)


def test_explicit_heartbeat_shorter_than_the_delivery_delay_is_refused() -> None:
    """No heartbeat comes before the Lambda's first run: the longest delivery must fit."""
    receives = INTAKE_MAX_RECEIVE_COUNT - 1
    bound = LIFECYCLE_DELIVERY.max_event_age_seconds
    bound += receives * INTAKE_VISIBILITY_TIMEOUT_SECONDS + LAMBDA_TIMEOUT_SECONDS
    assert first_heartbeat_bound_seconds() == bound == 300 + 3 * 150 + 120
    for too_short in (30, 300, bound):
        with pytest.raises(SettingsError) as error:
            HookTiming.derive(Tunables(), too_short)
        message = str(error.value)
        assert "heartbeat_timeout_seconds" in message
        for figure in (
            "300 s",
            f"{INTAKE_VISIBILITY_TIMEOUT_SECONDS} s",
            f"{LAMBDA_TIMEOUT_SECONDS} s",
            f"{bound} s",
        ):
            assert figure in message
    assert HookTiming.derive(Tunables(), bound + 1).heartbeat_timeout_seconds == bound + 1


def test_explicit_heartbeat_refused_at_context_time_too() -> None:
    with pytest.raises(ContextError, match="heartbeat_timeout_seconds=600 is too short"):
        config(cluster_name="p", asg_names="a", heartbeat_timeout_seconds="600")


# --- the sample cluster ---------------------------------------------------------------------------


def test_sample_cluster_builds_vpc_cluster_group_and_service(sample_cluster: Synth) -> None:
    for type_ in (
        "AWS::EC2::VPC",
        "AWS::ECS::Cluster",
        "AWS::AutoScaling::AutoScalingGroup",
        "AWS::EC2::LaunchTemplate",
        "AWS::ECS::Service",
        "AWS::ECS::CapacityProvider",
    ):
        sample_cluster.one(type_)
    assert sample_cluster.resources("AWS::AutoScaling::LaunchConfiguration") == {}
    (_, group) = sample_cluster.one("AWS::AutoScaling::AutoScalingGroup")
    assert group["Properties"]["DesiredCapacity"] == "2"
    (_, service) = sample_cluster.one("AWS::ECS::Service")
    assert service["Properties"]["DesiredCount"] == 4


def test_sample_cluster_has_only_our_drain_hook(sample_cluster: Synth) -> None:
    """aws-cdk-lib's legacy drain hook (second hook, Lambda, SNS topic) must be gone."""
    assert len(sample_cluster.resources("AWS::AutoScaling::LifecycleHook")) == 1
    assert sample_cluster.resources("AWS::SNS::Topic") == {}
    sample_cluster.drain_function()


def test_sample_cluster_capacity_provider_has_managed_draining_off(sample_cluster: Synth) -> None:
    (_, provider) = sample_cluster.one("AWS::ECS::CapacityProvider")
    asg_provider = provider["Properties"]["AutoScalingGroupProvider"]
    assert asg_provider["ManagedDraining"] == "DISABLED"
    assert asg_provider["ManagedTerminationProtection"] == "DISABLED"


# CreateCapacityProvider's name (ECS API reference; botocore's ecs model says the same): up to
# 255 letters, digits, "_" and "-", not prefixed with "aws", "ecs" or "fargate" (ECS refuses
# "Ecs..." too, so the prefix check ignores case).
ECS_CAPACITY_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
ECS_RESERVED_PREFIXES = ("aws", "ecs", "fargate")
# CloudFormation's generated names: stack name, logical id, a random suffix; a stack name has
# at most 128 characters.
STACK_NAME_MAX = 128


def ecs_refuses(name: str) -> str | None:
    """Why ECS would refuse this capacity provider name, or None."""
    if not ECS_CAPACITY_PROVIDER_NAME.match(name):
        return f"{name!r}: 1 to 255 letters, digits, '_' or '-'"
    if name.lower().startswith(ECS_RESERVED_PREFIXES):
        return f"{name!r} begins with one of {ECS_RESERVED_PREFIXES}"
    return None


def test_the_name_rule_is_the_one_ecs_applies() -> None:
    # CloudFormation's generated name begins with the stack's (upstream: aws/aws-cdk#29151).
    assert ecs_refuses("EcsDrainHookSample-CapacityProvider-x1") is not None
    assert ecs_refuses("FARGATE_SPOT") is not None
    assert ecs_refuses("drain:hook") is not None
    assert ecs_refuses("a" * 256) is not None
    assert ecs_refuses("drain-hook_sample-1") is None


@pytest.mark.parametrize("stack_name", ["own", "Ecs" + "x" * (STACK_NAME_MAX - 3)])
def test_every_capacity_provider_has_a_name_ecs_accepts(
    sample_cluster: Synth, stack_name: str
) -> None:
    """Without a Name, CloudFormation makes one from the stack name (EcsDrainHookSample...),
    which ECS refuses. The name is evaluated with the group's generated name for this stack
    and for the longest stack name, one that begins with a reserved word (the stack's id is in
    it too: test_first_deploy)."""
    providers = sample_cluster.resources("AWS::ECS::CapacityProvider")
    assert providers
    stack = sample_cluster.stack_name if stack_name == "own" else stack_name
    groups = {
        logical_id: f"{stack}-{logical_id}-{'R' * 13}"
        for logical_id in sample_cluster.resources("AWS::AutoScaling::AutoScalingGroup")
    }
    for logical_id, provider in providers.items():
        assert "Name" in provider["Properties"], logical_id
        name = evaluate(provider["Properties"]["Name"], {**pseudo(stack), **groups})
        assert ecs_refuses(name) is None, ecs_refuses(name)
        # Another group (a replacement, or another stack's) gives another name.
        other = {k: v.replace("R" * 13, "S" * 13) for k, v in groups.items()}
        assert evaluate(provider["Properties"]["Name"], {**pseudo(stack), **other}) != name


def test_sample_cluster_launch_template_is_hardened(sample_cluster: Synth) -> None:
    (_, template) = sample_cluster.one("AWS::EC2::LaunchTemplate")
    data = template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    (device,) = data["BlockDeviceMappings"]
    assert device["Ebs"]["Encrypted"] is True
    assert data["InstanceType"] == "t4g.small"


def test_feature_flag_for_launch_templates_is_set() -> None:
    flags = cdk_json_context()
    assert flags["@aws-cdk/aws-autoscaling:generateLaunchTemplateInsteadOfLaunchConfig"] is True


def test_sample_cluster_service_waits_for_the_capacity_provider_association(
    sample_cluster: Synth,
) -> None:
    """CloudFormation sees no reference from the service to the association: say it."""
    (association_id, association) = sample_cluster.one(
        "AWS::ECS::ClusterCapacityProviderAssociations"
    )
    (_, service) = sample_cluster.one("AWS::ECS::Service")
    assert association_id in service["DependsOn"]
    (provider_id, _) = sample_cluster.one("AWS::ECS::CapacityProvider")
    assert association["Properties"]["CapacityProviders"] == [{"Ref": provider_id}]
    strategy = service["Properties"]["CapacityProviderStrategy"]
    assert strategy == [{"CapacityProvider": {"Ref": provider_id}, "Weight": 1}]


def test_sample_cluster_outputs_the_scale_in_command(sample_cluster: Synth) -> None:
    assert {"SampleGroupName", "SampleClusterName", "SampleScaleInCommand"} <= set(
        sample_cluster.template["Outputs"]
    )


# --- warnings ---------------------------------------------------------------------------------


def warnings(synth: Synth) -> list[str]:
    return [
        json.dumps(entry["data"])
        for entries in synth.metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:warning"
    ]


def test_no_warnings_otherwise(attach: Synth, sample_cluster: Synth) -> None:
    """Attach mode declares nothing but the reserved concurrency its fixture asks for; the sample
    cluster turns both other hooks off itself."""
    assert [w for w in warnings(attach) if RESERVED_CONCURRENCY_WARNING_ID not in w] == []
    assert warnings(sample_cluster) == []


def test_intake_concurrency_sets_the_mapping_and_is_checked() -> None:
    """How many first rounds run at once: a context key and a construct prop, 2..1000 (an SQS
    event source mapping's maximum concurrency); the default is INTAKE_MAX_CONCURRENCY."""
    from aws_cdk import assertions

    from ecs_drain_hook import EcsDrainHook
    from ecs_drain_hook.timing import INTAKE_MAX_CONCURRENCY
    from tests.infra.small_stacks import imported, new_stack

    assert config(cluster_name="p", asg_names="a").intake_concurrency == INTAKE_MAX_CONCURRENCY
    assert config(cluster_name="p", asg_names="a", intake_concurrency="25").intake_concurrency == 25
    _, stack = new_stack()
    cluster, groups = imported(stack, "a")
    EcsDrainHook(
        stack, "DrainHook", cluster=cluster, auto_scaling_groups=groups, intake_concurrency=25
    )
    assertions.Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"ScalingConfig": {"MaximumConcurrency": 25}}
    )
    for bad in (1, 1001, True, "10"):
        _, stack = new_stack()
        cluster, groups = imported(stack, "a")
        with pytest.raises(ValueError, match="intake_concurrency"):
            EcsDrainHook(
                stack,
                "DrainHook",
                cluster=cluster,
                auto_scaling_groups=groups,
                intake_concurrency=bad,  # type: ignore[arg-type]
            )
