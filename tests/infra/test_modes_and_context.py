"""Context parsing (attach / demo / errors), derived timeouts, and what each mode builds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import AppConfig, ContextError
from infra.settings import DrainSettings, SettingsError
from tests.infra.conftest import Synth, cdk_json_context, synthesize


def config(**context: Any) -> AppConfig:
    return AppConfig.from_context(context.get)


# --- context ----------------------------------------------------------------------------------


def test_attach_mode_from_context() -> None:
    cfg = config(cluster_name="prod", asg_names=" a, b ,", max_drain_seconds="3600")
    assert (cfg.demo, cfg.cluster_name, cfg.asg_names) == (False, "prod", ("a", "b"))
    assert cfg.stack_name == "EcsDrainHook"
    assert cfg.settings.max_drain_seconds == 3600
    assert cfg.managed_draining is None


def test_demo_mode_from_context() -> None:
    cfg = config(demo="true")
    assert cfg.demo and cfg.stack_name == "EcsDrainHookDemo"


@pytest.mark.parametrize(
    ("context", "keys"),
    [
        ({}, ["-c cluster_name", "-c asg_names", "-c demo=true"]),
        ({"cluster_name": "prod"}, ["-c asg_names"]),
        ({"asg_names": "a"}, ["-c cluster_name"]),
        ({"demo": "true", "cluster_name": "prod"}, ["cluster_name", "demo"]),
        ({"demo": "true", "asg_names": "a"}, ["asg_names", "demo"]),
        ({"demo": "maybe"}, ["-c demo"]),
        ({"demo": "true", "managed_draining": "enabled"}, ["managed_draining"]),
        ({"cluster_name": "p", "asg_names": "a,a"}, ["asg_names"]),
        ({"cluster_name": "p", "asg_names": "a", "managed_draining": "on"}, ["managed_draining"]),
        (
            {"cluster_name": "p", "asg_names": "a", "max_drain_seconds": "ten"},
            ["max_drain_seconds"],
        ),
        ({"cluster_name": "p", "asg_names": "a", "max_drain_seconds": "30"}, ["max_drain_seconds"]),
        ({"cluster_name": "p", "asg_names": "a", "at_deadline": "explode"}, ["at_deadline"]),
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
            {"cluster_name": "p", "asg_names": "a", "heartbeat_timeout_seconds": "60"},
            ["heartbeat_timeout_seconds"],
        ),
        (
            {"cluster_name": "p", "asg_names": "a", "poll_interval_first_seconds": "300"},
            ["poll_interval_first_seconds"],
        ),
    ],
)
def test_bad_context_names_the_keys(context: dict[str, Any], keys: list[str]) -> None:
    with pytest.raises(ContextError) as error:
        config(**context)
    for key in keys:
        assert key in str(error.value)


def test_every_tunable_is_settable_by_context() -> None:
    values = {
        "poll_interval_first_seconds": "10",
        "poll_interval_max_seconds": "60",
        "max_drain_seconds": "1800",
        "standalone_tasks": "stop",
        "standalone_grace_seconds": "120",
        "daemon_tasks_hold_instance": "false",
        "at_deadline": "continue",
        "deadline_stop_grace_seconds": "30",
        "polls_per_execution": "500",
        "retry_mode": "standard",
        "retry_max_attempts": "5",
        "tracing_enabled": "false",
        "log_level": "DEBUG",
        "heartbeat_timeout_seconds": "900",
    }
    assert set(values) == set(DrainSettings.field_names())
    settings = config(cluster_name="p", asg_names="a", **values).settings
    env = settings.lambda_environment()
    assert env["STANDALONE_TASKS"] == "stop"
    assert env["DAEMON_TASKS_HOLD_INSTANCE"] == "false"
    assert env["TRACING_ENABLED"] == "false"
    assert env["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert settings.heartbeat_timeout() == 900


# --- derived timeouts -------------------------------------------------------------------------


@pytest.mark.parametrize("max_drain", [60, 3600, 7200, 86400, 170000])
def test_heartbeat_and_execution_timeout_fit(max_drain: int) -> None:
    settings = DrainSettings(max_drain_seconds=max_drain)
    heartbeat = settings.heartbeat_timeout()
    assert 30 <= heartbeat <= 7200
    assert min(48 * 3600, 100 * heartbeat) >= settings.hold_seconds
    assert settings.execution_timeout_seconds > max_drain
    assert heartbeat > settings.poll_interval_max_seconds


def test_drain_longer_than_the_global_timeout_is_rejected() -> None:
    with pytest.raises(SettingsError, match="48 h"):
        DrainSettings(max_drain_seconds=48 * 3600)


def test_explicit_heartbeat_must_cover_the_drain() -> None:
    # 100 x 1000 s = 27.7 h < a 30 h drain.
    with pytest.raises(SettingsError, match="heartbeat_timeout_seconds"):
        DrainSettings(max_drain_seconds=30 * 3600, heartbeat_timeout_seconds=1000)
    assert DrainSettings(max_drain_seconds=30 * 3600, heartbeat_timeout_seconds=1200)


# --- demo mode --------------------------------------------------------------------------------


def test_demo_builds_vpc_cluster_group_and_service(demo: Synth) -> None:
    for type_ in (
        "AWS::EC2::VPC",
        "AWS::ECS::Cluster",
        "AWS::AutoScaling::AutoScalingGroup",
        "AWS::EC2::LaunchTemplate",
        "AWS::ECS::Service",
        "AWS::ECS::CapacityProvider",
    ):
        demo.one(type_)
    assert demo.resources("AWS::AutoScaling::LaunchConfiguration") == {}
    (_, group) = demo.one("AWS::AutoScaling::AutoScalingGroup")
    assert group["Properties"]["DesiredCapacity"] == "2"
    (_, service) = demo.one("AWS::ECS::Service")
    assert service["Properties"]["DesiredCount"] == 4


def test_demo_has_only_our_drain_hook(demo: Synth) -> None:
    """aws-cdk-lib's legacy drain hook (second hook, Lambda, SNS topic) must be gone."""
    assert len(demo.resources("AWS::AutoScaling::LifecycleHook")) == 1
    assert demo.resources("AWS::SNS::Topic") == {}
    demo.one("AWS::Lambda::Function")


def test_demo_capacity_provider_has_managed_draining_off(demo: Synth) -> None:
    (_, provider) = demo.one("AWS::ECS::CapacityProvider")
    asg_provider = provider["Properties"]["AutoScalingGroupProvider"]
    assert asg_provider["ManagedDraining"] == "DISABLED"
    assert asg_provider["ManagedTerminationProtection"] == "DISABLED"


def test_demo_launch_template_is_hardened(demo: Synth) -> None:
    (_, template) = demo.one("AWS::EC2::LaunchTemplate")
    data = template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    (device,) = data["BlockDeviceMappings"]
    assert device["Ebs"]["Encrypted"] is True
    assert data["InstanceType"] == "t4g.small"


def test_feature_flag_for_launch_templates_is_set() -> None:
    flags = cdk_json_context()
    assert flags["@aws-cdk/aws-autoscaling:generateLaunchTemplateInsteadOfLaunchConfig"] is True


def test_demo_outputs_the_scale_in_command(demo: Synth) -> None:
    assert {"DemoGroupName", "DemoClusterName", "DemoScaleInCommand"} <= set(
        demo.template["Outputs"]
    )


# --- managed draining warning -----------------------------------------------------------------


def _warnings(synth: Synth) -> list[str]:
    return [
        json.dumps(entry["data"])
        for entries in synth.metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:warning"
    ]


def test_managed_draining_declared_enabled_warns(tmp_path_factory: pytest.TempPathFactory) -> None:
    synth = synthesize(
        {"cluster_name": "prod", "asg_names": "a", "managed_draining": "enabled"},
        tmp_path_factory.mktemp("managed"),
    )
    assert any("managed instance draining" in w for w in _warnings(synth))


def test_no_warnings_otherwise(attach: Synth, demo: Synth) -> None:
    assert _warnings(attach) == []
    assert _warnings(demo) == []
