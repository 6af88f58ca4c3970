"""Auto Scaling calls: where the instance stands, the group's hooks, the record of when the hold
began, heartbeats and completion."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from drain_hook import clock
from drain_hook.adapters.clients import client
from drain_hook.adapters.container_cache import store
from drain_hook.models.observations import HookView, LifecycleView
from drain_hook.settings import lifecycle_global_timeout

# Once a lifecycle action is over (completed, timed out, instance gone), Auto Scaling answers
# heartbeats and completions with this ValidationError. For us that means "already done".
NO_ACTIVE_ACTION = "No active Lifecycle Action found"
# DescribeScalingActivities lists in-progress and newest first, 100 a page: the activity we look
# for is recent, but a burst of 1,000 scale-ins puts 1,000 of them ahead of older ones.
ACTIVITY_PAGES_MAX = 10
# A group's hooks change only when someone redeploys them: a container reuses its read this long.
HOOKS_CACHE_SECONDS = 60
ACTIVITIES_CACHE_SECONDS = 60
_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")


def describe_instance(instance_id: str) -> LifecycleView | None:
    """The instance's group and LifecycleState, None if it is in no group (anymore)."""
    response = client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])
    for item in response.get("AutoScalingInstances", []):
        if item.get("InstanceId") == instance_id:
            return LifecycleView(
                asg_name=item["AutoScalingGroupName"], lifecycle_state=item["LifecycleState"]
            )
    return None


def lifecycle_hooks(asg_name: str, *, fresh: bool = False) -> list[HookView]:
    """Every lifecycle hook of the group (one call gives ours and any other termination hook).

    Reused from this container's cache for HOOKS_CACHE_SECONDS unless ``fresh``."""
    cache: dict[str, tuple[datetime, list[HookView]]] = store().setdefault("hooks", {})
    now = clock.utc_now()
    kept = cache.get(asg_name)
    if not fresh and kept is not None and now - kept[0] < timedelta(seconds=HOOKS_CACHE_SECONDS):
        return list(kept[1])
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
    cache[asg_name] = (now, hooks)
    return list(hooks)


def termination_started_at(asg_name: str, instance_id: str, now: datetime) -> datetime | None:
    """When Auto Scaling began terminating the instance (its scaling activity), if recorded.

    The activity's StartTime is when the instance entered the hook's wait: the hook's timers run
    from there, whatever an event's `time` says. One read of the newest pages gives the starts
    of a whole burst: they are kept ACTIVITIES_CACHE_SECONDS, far less than an instance needs to
    leave a warm pool and be scaled in again (a new activity, a later start).
    """
    starts: dict[tuple[str, str], tuple[datetime, datetime]] = store().setdefault(
        "termination_starts", {}
    )
    key = (asg_name, instance_id)
    kept = starts.get(key)
    if kept is None or clock.utc_now() - kept[1] >= timedelta(seconds=ACTIVITIES_CACHE_SECONDS):
        _read_termination_starts(asg_name, instance_id, starts)
        kept = starts.get(key)
    return kept[0] if kept is not None and kept[0] <= now else None


def _read_termination_starts(
    asg_name: str, instance_id: str, starts: dict[tuple[str, str], tuple[datetime, datetime]]
) -> None:
    """Page newest first until the instance's activity shows up, keeping every start seen."""
    read_at = clock.utc_now()
    starts.pop((asg_name, instance_id), None)
    paginator = client("autoscaling").get_paginator("describe_scaling_activities")
    pages = paginator.paginate(
        AutoScalingGroupName=asg_name, PaginationConfig={"MaxItems": 100 * ACTIVITY_PAGES_MAX}
    )
    seen: dict[tuple[str, str], datetime] = {}
    for page in pages:
        for activity in page.get("Activities", []):
            terminated = _terminated_instance(activity)
            if terminated is not None:
                key = (asg_name, terminated)
                seen[key] = max(activity["StartTime"], seen.get(key, activity["StartTime"]))
        if (asg_name, instance_id) in seen:
            break
    starts.update({key: (start, read_at) for key, start in seen.items()})


def _terminated_instance(activity: dict[str, Any]) -> str | None:
    """The instance a "Terminating EC2 instance: i-..." activity is about, else None."""
    description = str(activity.get("Description", ""))
    if not description.startswith("Terminating"):
        return None
    match = _INSTANCE_ID.search(description)
    return match.group(0) if match else None


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
