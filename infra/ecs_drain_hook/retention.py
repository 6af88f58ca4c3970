"""Instance retention for failed drains (ON_DRAIN_FAILURE=retain).

With an instance lifecycle policy whose RetentionTriggers.TerminateHookAbandon is `retain`, a
termination lifecycle action that ends with ABANDON moves the instance to a Retained state
instead of terminating it (Auto Scaling user guide, "Control instance retention with instance
lifecycle policies"; CloudFormation AWS::AutoScaling::AutoScalingGroup InstanceLifecyclePolicy).
The Lambda completes a failed drain with ABANDON only where the group has that policy (it reads
it first); this sets it on the hooked groups of the same CDK app when asked, and warns where it
can't (imported groups) or where retention is asked for and the group lacks it.

A group made with aws-cdk-lib's AutoScalingGroup takes `instance_lifecycle_policy` when it is
built; once it exists, its L1 resource is the only place left to set it, which is what this does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_cdk import Annotations, Stack, Token
from aws_cdk import aws_autoscaling as autoscaling
from constructs import IConstruct

from ecs_drain_hook.runtime.drain_hook.models.observations import RETAIN

RETENTION_IMPORTED_WARNING_ID = "ecs-drain-hook:retentionImportedGroup"
RETENTION_MISSING_WARNING_ID = "ecs-drain-hook:retentionPolicyMissing"


class RetentionPolicyConflict(ValueError):
    """A hooked group's own instance lifecycle policy says otherwise than retain."""


def apply_retention(
    owner: IConstruct,
    groups: Sequence[autoscaling.IAutoScalingGroup],
    *,
    on_drain_failure: str,
    set_policy: bool,
) -> list[str]:
    """Set TerminateHookAbandon=retain on the app's own groups when `set_policy`; warn for the
    groups where a failed drain would not retain. Returns the names (or paths) it set it on."""
    stack = Stack.of(owner)
    retaining = on_drain_failure == "retain"
    done: list[str] = []
    for group in groups:
        label = _label(group)
        resource = _own_resource(group)
        if resource is None:
            if retaining or set_policy:
                Annotations.of(owner).add_warning_v2(
                    RETENTION_IMPORTED_WARNING_ID,
                    f"Group {label} is imported: its instance lifecycle policy can't be set or "
                    "read at synth. For ON_DRAIN_FAILURE=retain to keep a host whose drain "
                    "failed, give the group InstanceLifecyclePolicy RetentionTriggers "
                    "TerminateHookAbandon=retain yourself (aws autoscaling "
                    "update-auto-scaling-group --instance-lifecycle-policy "
                    "'RetentionTriggers={TerminateHookAbandon=retain}'); without it the Lambda "
                    "completes failed drains with CONTINUE.",
                )
            continue
        current = _terminate_hook_abandon(resource, stack)
        if set_policy:
            if current not in (None, RETAIN):
                raise RetentionPolicyConflict(
                    f"group {label} sets its instance lifecycle policy's TerminateHookAbandon "
                    f"to {current!r}; set_retention_policy would change it to {RETAIN!r}: "
                    "drop one of the two"
                )
            resource.instance_lifecycle_policy = (
                autoscaling.CfnAutoScalingGroup.InstanceLifecyclePolicyProperty(
                    retention_triggers=autoscaling.CfnAutoScalingGroup.RetentionTriggersProperty(
                        terminate_hook_abandon=RETAIN
                    )
                )
            )
            done.append(label)
        elif retaining and current != RETAIN:
            Annotations.of(owner).add_warning_v2(
                RETENTION_MISSING_WARNING_ID,
                f"ON_DRAIN_FAILURE=retain, but group {label} does not retain on "
                "TerminateHookAbandon: failed drains there complete with CONTINUE. Set "
                "set_retention_policy (context key set_retention_policy=true), or give the "
                "group instance_lifecycle_policy yourself.",
            )
    return done


def _own_resource(group: autoscaling.IAutoScalingGroup) -> autoscaling.CfnAutoScalingGroup | None:
    """The group's CloudFormation resource when the group is built in this app."""
    if not isinstance(group, autoscaling.AutoScalingGroup):
        return None
    child = group.node.default_child
    return child if isinstance(child, autoscaling.CfnAutoScalingGroup) else None


def _terminate_hook_abandon(resource: autoscaling.CfnAutoScalingGroup, stack: Stack) -> str | None:
    policy: Any = stack.resolve(resource.instance_lifecycle_policy)
    if not isinstance(policy, dict):
        return None
    triggers = policy.get("RetentionTriggers") or policy.get("retentionTriggers") or {}
    value = triggers.get("TerminateHookAbandon") or triggers.get("terminateHookAbandon")
    return value if isinstance(value, str) else (json.dumps(value) if value else None)


def _label(group: autoscaling.IAutoScalingGroup) -> str:
    name = group.auto_scaling_group_name
    return name if not Token.is_unresolved(name) else group.node.path
