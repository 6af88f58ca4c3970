"""The template's side of the sweep for lost events, Spot interruption warnings and instance
retention: the rules, their delivery, the timing checks, the context keys, and the instance
lifecycle policy set on the app's own groups (warned about for imported ones)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import assertions
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs

from ecs_drain_hook import EcsDrainHook, HookTiming, SettingsError, Tunables, contract
from ecs_drain_hook.construct import SWEEP_TOO_SLOW_WARNING_ID
from ecs_drain_hook.retention import (
    RETENTION_IMPORTED_WARNING_ID,
    RETENTION_MISSING_WARNING_ID,
    RetentionPolicyConflict,
)
from ecs_drain_hook.timing import (
    SPOT_DELIVERY,
    SWEEP_DELIVERY,
    SWEEP_MINUTES_DEFAULT,
    sweep_first_heartbeat_bound_seconds,
)
from infra.config import AppConfig, ContextError
from tests.infra.conftest import Synth
from tests.infra.small_stacks import imported, new_stack, owned_group, warnings

RETAIN_POLICY = {"RetentionTriggers": {"TerminateHookAbandon": "retain"}}


def _rule(synth: Synth, logical_prefix: str) -> dict[str, Any]:
    (_, rule) = synth.one("AWS::Events::Rule", logical_prefix)
    return rule["Properties"]


def _target_of(synth: Synth, rule: dict[str, Any]) -> dict[str, Any]:
    (target,) = rule["Targets"]
    (fn_id, _) = synth.drain_function()
    assert target["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    (dlq_id, _) = synth.one("AWS::SQS::Queue", "DrainHookDeadLetterQueue")
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    return target


def test_the_sweep_runs_every_two_minutes_by_default(synth: Synth) -> None:
    rule = _rule(synth, "DrainHookRulesSweepRule")
    assert rule["ScheduleExpression"] == f"rate({SWEEP_MINUTES_DEFAULT} minutes)"
    assert "EventPattern" not in rule and rule.get("State", "ENABLED") == "ENABLED"
    target = _target_of(synth, rule)
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": SWEEP_DELIVERY.retry_attempts,
        "MaximumEventAgeInSeconds": SWEEP_DELIVERY.max_event_age_seconds,
    }


def test_spot_interruption_warnings_reach_the_lambda_straight(synth: Synth) -> None:
    rule = _rule(synth, "DrainHookRulesSpotInterruptionRule")
    assert rule["EventPattern"] == {
        "source": [contract.SPOT_SOURCE],
        "detail-type": [contract.SPOT_DETAIL_TYPE],
    }
    target = _target_of(synth, rule)
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": SPOT_DELIVERY.retry_attempts,
        "MaximumEventAgeInSeconds": SPOT_DELIVERY.max_event_age_seconds,
    }
    # Worth something only within its two minutes.
    assert SPOT_DELIVERY.max_event_age_seconds <= contract.SPOT_NOTICE_SECONDS


def test_the_sweep_period_is_a_context_key(tmp_path) -> None:
    from tests.infra.conftest import synthesize

    synth = synthesize(
        {"cluster_name": "c", "asg_names": "a", "lost_event_sweep_minutes": "5"}, tmp_path
    )
    assert _rule(synth, "DrainHookRulesSweepRule")["ScheduleExpression"] == "rate(5 minutes)"


@pytest.mark.parametrize("value", ["0", "11", "two", "1.5"])
def test_a_bad_sweep_period_names_its_key(value: str) -> None:
    context = {"cluster_name": "c", "asg_names": "a", "lost_event_sweep_minutes": value}
    with pytest.raises(ContextError, match="lost_event_sweep_minutes"):
        AppConfig.from_context(context.get)


def test_the_derived_heartbeat_outlasts_the_sweeps_recovery_of_a_lost_event() -> None:
    for minutes in (1, 2, 5, 10):
        timing = HookTiming.derive(Tunables(), sweep_minutes=minutes)
        assert timing.heartbeat_timeout_seconds > sweep_first_heartbeat_bound_seconds(minutes)
    # The default period changes nothing of the default heartbeat timeout.
    assert HookTiming.derive(Tunables()).heartbeat_timeout_seconds == 1200


def test_an_explicit_heartbeat_shorter_than_the_sweeps_recovery_is_warned() -> None:
    _app, stack = new_stack()
    cluster, groups = imported(stack, "a")
    EcsDrainHook(
        stack,
        "Hook",
        cluster=cluster,
        auto_scaling_groups=groups,
        heartbeat_timeout_seconds=900,
        lost_event_sweep_minutes=5,
    )
    [warned] = [w for w in warnings(stack) if SWEEP_TOO_SLOW_WARNING_ID in w]
    assert "lost_event_sweep_minutes" in warned and "heartbeat_timeout_seconds=900" in warned


def test_the_sweep_period_prop_is_checked() -> None:
    _app, stack = new_stack()
    cluster, groups = imported(stack, "a")
    with pytest.raises(SettingsError, match="lost_event_sweep_minutes"):
        EcsDrainHook(
            stack, "Hook", cluster=cluster, auto_scaling_groups=groups, lost_event_sweep_minutes=0
        )


# --- retention ---------------------------------------------------------------------------


def _group_policy(stack) -> Any:
    template = assertions.Template.from_stack(stack).to_json()
    (group,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"
    ]
    return group["Properties"].get("InstanceLifecyclePolicy")


def test_the_app_s_own_group_gets_the_retention_policy_when_asked() -> None:
    _app, stack = new_stack()
    cluster, _ = imported(stack)
    group = owned_group(stack, "Group", stack.node.find_child("Vpc"))  # type: ignore[arg-type]
    hook = EcsDrainHook(
        stack,
        "Hook",
        cluster=cluster,
        auto_scaling_groups=[group],
        tunables=Tunables(on_drain_failure="retain"),
        set_retention_policy=True,
    )
    assert _group_policy(stack) == RETAIN_POLICY
    assert hook.retention_policy_groups == [group.node.path]
    assert not [w for w in warnings(stack) if "retention" in w]


def test_not_asked_the_group_keeps_its_policy_and_retain_warns() -> None:
    _app, stack = new_stack()
    cluster, _ = imported(stack)
    group = owned_group(stack, "Group", stack.node.find_child("Vpc"))  # type: ignore[arg-type]
    EcsDrainHook(
        stack,
        "Hook",
        cluster=cluster,
        auto_scaling_groups=[group],
        tunables=Tunables(on_drain_failure="retain"),
    )
    assert _group_policy(stack) is None
    [warned] = [w for w in warnings(stack) if RETENTION_MISSING_WARNING_ID in w]
    assert "set_retention_policy" in warned


def _group_with_policy(stack, action: autoscaling.TerminateHookAbandonAction):
    """A group given its policy the L2 way, when it is built."""
    return autoscaling.AutoScalingGroup(
        stack,
        "Group",
        vpc=stack.node.find_child("Vpc"),
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        instance_type=ec2.InstanceType("t4g.small"),
        machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.ARM),
        instance_lifecycle_policy=autoscaling.InstanceLifecyclePolicy(
            retention_triggers=autoscaling.RetentionTriggers(terminate_hook_abandon=action)
        ),
    )


def test_a_group_that_retains_by_itself_needs_nothing() -> None:
    _app, stack = new_stack()
    cluster, _ = imported(stack)
    group = _group_with_policy(stack, autoscaling.TerminateHookAbandonAction.RETAIN)
    EcsDrainHook(
        stack,
        "Hook",
        cluster=cluster,
        auto_scaling_groups=[group],
        tunables=Tunables(on_drain_failure="retain"),
    )
    assert not [w for w in warnings(stack) if "retention" in w]


def test_a_group_set_to_terminate_is_not_overridden() -> None:
    _app, stack = new_stack()
    cluster, _ = imported(stack)
    group = _group_with_policy(stack, autoscaling.TerminateHookAbandonAction.TERMINATE)
    with pytest.raises(RetentionPolicyConflict, match="TerminateHookAbandon"):
        EcsDrainHook(
            stack, "Hook", cluster=cluster, auto_scaling_groups=[group], set_retention_policy=True
        )


def test_imported_groups_are_warned_about_when_retaining() -> None:
    _app, stack = new_stack()
    cluster, groups = imported(stack, "prod-a")
    EcsDrainHook(
        stack,
        "Hook",
        cluster=cluster,
        auto_scaling_groups=groups,
        tunables=Tunables(on_drain_failure="retain"),
    )
    [warned] = [w for w in warnings(stack) if RETENTION_IMPORTED_WARNING_ID in w]
    assert "prod-a" in warned and "update-auto-scaling-group" in warned
    # Not retaining and not asked: nothing to say.
    _app, quiet = new_stack()
    cluster, groups = imported(quiet, "prod-a")
    EcsDrainHook(quiet, "Hook", cluster=cluster, auto_scaling_groups=groups)
    assert not [w for w in warnings(quiet) if "retention" in w]


def test_the_retention_context_key_in_demo_mode(tmp_path) -> None:
    from tests.infra.conftest import synthesize

    synth = synthesize(
        {"sample_cluster": "true", "set_retention_policy": "true", "on_drain_failure": "retain"},
        tmp_path,
    )
    (_, group) = synth.one("AWS::AutoScaling::AutoScalingGroup")
    assert group["Properties"]["InstanceLifecyclePolicy"] == RETAIN_POLICY
    (_, fn) = synth.drain_function()
    assert fn["Properties"]["Environment"]["Variables"]["ON_DRAIN_FAILURE"] == "retain"


def test_the_retained_alarm(synth: Synth) -> None:
    alarms = synth.resources("AWS::CloudWatch::Alarm")
    [alarm] = [
        a["Properties"]
        for k, a in alarms.items()
        if k.startswith(f"DrainHookAlarms{contract.METRIC_DRAINS_RETAINED}")
    ]
    assert alarm["MetricName"] == contract.METRIC_DRAINS_RETAINED
    assert "TerminateInstanceInAutoScalingGroup" in alarm["AlarmDescription"]
