"""Auto Scaling calls: where the instance stands, the group's hooks, the record of when the hold
began, heartbeats and completion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from drain_hook.adapters.clients import client
from drain_hook.models.observations import HookView, LifecycleView
from drain_hook.settings import lifecycle_global_timeout

# Once a lifecycle action is over (completed, timed out, instance gone), Auto Scaling answers
# heartbeats and completions with this ValidationError. For us that means "already done".
NO_ACTIVE_ACTION = "No active Lifecycle Action found"
# DescribeScalingActivities lists newest first, 100 a page; the activity we look for is recent.
ACTIVITY_PAGES_MAX = 3


def describe_instance(instance_id: str) -> LifecycleView | None:
    """The instance's group and LifecycleState, None if it is in no group (anymore)."""
    response = client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])
    for item in response.get("AutoScalingInstances", []):
        if item.get("InstanceId") == instance_id:
            return LifecycleView(
                asg_name=item["AutoScalingGroupName"], lifecycle_state=item["LifecycleState"]
            )
    return None


def lifecycle_hooks(asg_name: str) -> list[HookView]:
    """Every lifecycle hook of the group (one call gives ours and any other termination hook)."""
    response = client("autoscaling").describe_lifecycle_hooks(AutoScalingGroupName=asg_name)
    hooks = []
    for item in response.get("LifecycleHooks", []):
        heartbeat = int(item.get("HeartbeatTimeout", 3600))
        hooks.append(
            HookView(
                name=item["LifecycleHookName"],
                transition=item.get("LifecycleTransition", ""),
                heartbeat_timeout_seconds=heartbeat,
                global_timeout_seconds=int(
                    item.get("GlobalTimeout") or lifecycle_global_timeout(heartbeat)
                ),
                default_result=item.get("DefaultResult", "ABANDON"),
            )
        )
    return hooks


def termination_started_at(asg_name: str, instance_id: str, now: datetime) -> datetime | None:
    """When Auto Scaling began terminating the instance (its scaling activity), if recorded.

    The activity's StartTime is when the instance entered the hook's wait: the hook's timers run
    from there, whatever an event's `time` says.
    """
    paginator = client("autoscaling").get_paginator("describe_scaling_activities")
    pages = paginator.paginate(
        AutoScalingGroupName=asg_name, PaginationConfig={"MaxItems": 100 * ACTIVITY_PAGES_MAX}
    )
    found: list[datetime] = []
    for page in pages:
        found.extend(
            activity["StartTime"]
            for activity in page.get("Activities", [])
            if _terminates(activity, instance_id) and activity["StartTime"] <= now
        )
        if found:
            break
    return max(found) if found else None


def _terminates(activity: dict[str, Any], instance_id: str) -> bool:
    description = str(activity.get("Description", ""))
    return description.startswith("Terminating") and instance_id in description


def _action_target(
    asg_name: str, hook_name: str, instance_id: str, token: str | None
) -> dict[str, str]:
    target = {"AutoScalingGroupName": asg_name, "LifecycleHookName": hook_name}
    if token:
        target["LifecycleActionToken"] = token
    else:
        target["InstanceId"] = instance_id
    return target


def _is_no_active_action(error: ClientError) -> bool:
    return NO_ACTIVE_ACTION in error.response.get("Error", {}).get("Message", "")


def record_heartbeat(asg_name: str, hook_name: str, instance_id: str, token: str | None) -> bool:
    """Restart the hook's heartbeat timer. False when no such lifecycle action waits."""
    try:
        client("autoscaling").record_lifecycle_action_heartbeat(
            **_action_target(asg_name, hook_name, instance_id, token)
        )
    except ClientError as error:
        if _is_no_active_action(error):
            return False
        raise
    return True


def complete_lifecycle_action(
    asg_name: str, hook_name: str, instance_id: str, token: str | None
) -> bool:
    """Complete with CONTINUE. False when the action was already over (not an error for us)."""
    try:
        client("autoscaling").complete_lifecycle_action(
            LifecycleActionResult="CONTINUE",
            **_action_target(asg_name, hook_name, instance_id, token),
        )
    except ClientError as error:
        if _is_no_active_action(error):
            return False
        raise
    return True
