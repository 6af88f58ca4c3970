"""Synth-time checks of what else holds the hooked groups' instances.

Another termination hook on the same group holds each instance too, and each must complete: ECS
managed instance draining's `ecs-managed-draining-termination-hook` (on by default for a new
capacity provider, and for a CDK AsgCapacityProvider whose enableManagedDraining is unset; ECS
developer guide, "Configuring Amazon ECS capacity providers to safely shut down instances"), and
aws-cdk-lib's own drain hook (`DrainECSHook` with `LifecycleHookDrainHook`, added to a group by
Cluster.addAutoScalingGroup / addCapacity, or by addAsgCapacityProvider when managed termination
protection and managed draining are both off, unless taskDrainTime is 0). Where the group, its
capacity provider or the cluster is in the same CDK app, synth warns, naming the other hook and the
fix. ECS does not support a warm pool's ReuseOnScaleIn (ECS developer guide, "Configuring
pre-initialized instances for your Amazon ECS Auto Scaling group"): synth refuses it when the warm
pool is in the app.

The checks run as an aspect, when the whole app is built, so constructs added after EcsDrainHook
count too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import jsii
from aws_cdk import Annotations, AspectPriority, Aspects, IAspect, Stack, Token
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from constructs import IConstruct

MANAGED_DRAINING_WARNING_ID = "ecs-drain-hook:managedDraining"
CDK_DRAIN_HOOK_WARNING_ID = "ecs-drain-hook:cdkDrainHook"
MANAGED_DRAINING_HOOK = "ecs-managed-draining-termination-hook"
CDK_DRAIN_HOOK_CHILDREN = ("DrainECSHook", "LifecycleHookDrainHook")


class ReuseOnScaleInError(ValueError):
    """A hooked group's warm pool returns instances to the pool on scale-in (ECS can't)."""


def managed_draining_message(group: str, where: str) -> str:
    return (
        f"{where} uses ECS managed instance draining, which puts its own termination hook "
        f"({MANAGED_DRAINING_HOOK}) on group {group}: both hooks then hold every instance and "
        "each must complete. Choose one: set enableManagedDraining: false on the capacity "
        "provider (enable_managed_draining=False in Python) to keep ecs-drain-hook, or remove "
        "ecs-drain-hook from this group."
    )


def cdk_drain_hook_message(group: str) -> str:
    return (
        f"Group {group} carries aws-cdk-lib's drain hook (DrainECSHook / LifecycleHookDrainHook, "
        "added by Cluster.addAutoScalingGroup, addCapacity, or addAsgCapacityProvider with "
        "managed termination protection off): a second termination hook that releases after "
        "its taskDrainTime (5 minutes by default) with tasks or not. Pass taskDrainTime: "
        "Duration.seconds(0) where the group joins the cluster (TypeScript; the Python binding "
        "lacks the option: remove the group's DrainECSHook and LifecycleHookDrainHook children "
        "with group.node.try_remove_child), or remove ecs-drain-hook from this group."
    )


def reuse_on_scale_in_message(group: str) -> str:
    return (
        f"Group {group} has a warm pool with ReuseOnScaleIn: ECS does not support returning "
        "instances to a warm pool on scale-in (ECS developer guide, 'Configuring "
        "pre-initialized instances for your Amazon ECS Auto Scaling group'). Drop "
        "reuse_on_scale_in from the warm pool."
    )


@jsii.implements(IAspect)
class OtherHooksCheck:
    """Visits the EcsDrainHook it was added to, then inspects the whole app once."""

    def __init__(
        self,
        owner: IConstruct,
        groups: Sequence[autoscaling.IAutoScalingGroup],
        cluster: ecs.ICluster,
        declared_managed_draining: bool | None,
    ) -> None:
        self._owner = owner
        self._groups = list(groups)
        self._cluster = cluster
        self._declared = declared_managed_draining
        self._done = False

    @classmethod
    def add_to(cls, owner: IConstruct, **kwargs: Any) -> OtherHooksCheck:
        check = cls(owner, **kwargs)
        Aspects.of(owner).add(check, priority=AspectPriority.READONLY)
        return check

    def visit(self, node: IConstruct) -> None:
        if self._done or node is not self._owner:
            return
        self._done = True
        stack = Stack.of(self._owner)
        resolve: Callable[[Any], str] = lambda v: json.dumps(stack.resolve(v), sort_keys=True)  # noqa: E731
        everything = self._owner.node.root.node.find_all()
        providers = [c for c in everything if isinstance(c, ecs.CfnCapacityProvider)]
        warm_pools = [c for c in everything if isinstance(c, autoscaling.CfnWarmPool)]
        warned_managed = False
        for group in self._groups:
            name = group.auto_scaling_group_name
            label = name if not Token.is_unresolved(name) else group.node.path
            keys = {resolve(name)}
            if not Token.is_unresolved(name):
                keys.add(json.dumps(name))
            for provider in providers:
                if _provider_group(provider, stack, keys) and _managed_draining_on(provider, stack):
                    self._warn(
                        MANAGED_DRAINING_WARNING_ID,
                        managed_draining_message(label, f"Capacity provider {provider.node.path}"),
                    )
                    warned_managed = True
            if any(group.node.try_find_child(child) for child in CDK_DRAIN_HOOK_CHILDREN):
                self._warn(CDK_DRAIN_HOOK_WARNING_ID, cdk_drain_hook_message(label))
            for pool in warm_pools:
                if resolve(pool.auto_scaling_group_name) in keys and _reuses_on_scale_in(
                    pool, stack
                ):
                    raise ReuseOnScaleInError(reuse_on_scale_in_message(label))
        if self._declared and not warned_managed:
            # An imported group: only the user knows (-c managed_draining=enabled).
            self._warn(
                MANAGED_DRAINING_WARNING_ID,
                managed_draining_message(
                    ", ".join(
                        g.auto_scaling_group_name
                        if not Token.is_unresolved(g.auto_scaling_group_name)
                        else g.node.path
                        for g in self._groups
                    ),
                    "The cluster's capacity provider (declared with managed_draining=enabled)",
                ),
            )

    def _warn(self, warning_id: str, message: str) -> None:
        Annotations.of(self._owner).add_warning_v2(warning_id, message)


def _provider_group(provider: ecs.CfnCapacityProvider, stack: Stack, keys: set[str]) -> bool:
    settings = _plain(stack.resolve(provider.auto_scaling_group_provider))
    if not isinstance(settings, dict):
        return False
    arn = settings.get("autoScalingGroupArn")
    if json.dumps(arn, sort_keys=True) in keys:
        return True
    # A literal group ARN ends with autoScalingGroupName/<name>.
    return isinstance(arn, str) and any(
        arn.endswith(f"autoScalingGroupName/{json.loads(k)}")
        for k in keys
        if isinstance(json.loads(k), str)
    )


def _managed_draining_on(provider: ecs.CfnCapacityProvider, stack: Stack) -> bool:
    settings = _plain(stack.resolve(provider.auto_scaling_group_provider))
    # Unset means ECS's default for a new capacity provider: ENABLED.
    return settings.get("managedDraining", "ENABLED") != "DISABLED"


def _reuses_on_scale_in(pool: autoscaling.CfnWarmPool, stack: Stack) -> bool:
    policy = _plain(stack.resolve(pool.instance_reuse_policy))
    return isinstance(policy, dict) and policy.get("reuseOnScaleIn") is True


def _plain(value: Any) -> Any:
    """Resolved L1 structs come back with camelCase keys; normalise the first letter."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: v for k, v in value.items()}
    return value
