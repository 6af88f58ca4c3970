"""Termination lifecycle hooks on the groups (the EventBridge rules are in event_rules.py)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Names, Stack, Token
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from constructs import Construct

# The transition the Lambda accepts in a lifecycle event.
from ecs_drain_hook.runtime.drain_hook.models.observations import TERMINATING_TRANSITION


class LifecycleHooks(Construct):
    """One EC2_INSTANCE_TERMINATING hook per group, its metadata naming the cluster."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        groups: Sequence[autoscaling.IAutoScalingGroup],
        hook_name: str,
        heartbeat_timeout_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        metadata = Stack.of(self).to_json_string({"cluster": cluster.cluster_name})
        # L1 hooks work the same for imported and created groups (the L2 needs an owned group).
        # The name is fixed by design: the rule and the Lambda match it. A hook is never
        # retained, so a redeploy never meets an old one.
        ids = [hook_id(group) for group in groups]
        if len(ids) != len(set(ids)):
            raise ValueError(f"LifecycleHooks got the same Auto Scaling group twice: {ids}")
        self.hooks = [
            autoscaling.CfnLifecycleHook(
                self,
                construct_id,
                auto_scaling_group_name=group.auto_scaling_group_name,
                lifecycle_hook_name=hook_name,
                lifecycle_transition=TERMINATING_TRANSITION,
                heartbeat_timeout=heartbeat_timeout_seconds,
                # If nothing answers (e.g. the Lambda is gone), termination still goes ahead.
                default_result="CONTINUE",
                notification_metadata=metadata,
            )
            for construct_id, group in zip(ids, groups, strict=True)
        ]


def hook_id(group: autoscaling.IAutoScalingGroup) -> str:
    """The construct id of the group's hook: the group's name when known at synth (an imported
    group), else the group construct's own unique id (a group of this app).

    Never a position in the list: a hook named by position would move to another group when the
    list changes, and CloudFormation creates a replacement before it deletes the old resource,
    which fails for a hook of the same name on the same group.
    """
    name = group.auto_scaling_group_name
    if Token.is_unresolved(name):
        return f"HookOf{Names.unique_id(group)}"
    # A group name may hold "/" (a construct path separator) but never ":", so this is 1:1.
    return "Hook-" + name.replace("/", ":")
