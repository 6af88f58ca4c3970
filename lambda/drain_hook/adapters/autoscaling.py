"""Auto Scaling lifecycle calls: where the instance stands, heartbeats, completion."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from drain_hook.adapters.clients import client

# Once a lifecycle action is over (completed, timed out, instance gone), Auto Scaling answers
# heartbeats and completions with this ValidationError. For us that means "already done".
NO_ACTIVE_ACTION = "No active Lifecycle Action found"


@dataclass(frozen=True)
class HookTimeouts:
    heartbeat_seconds: int
    global_seconds: int


def lifecycle_state(instance_id: str) -> str | None:
    """The instance's LifecycleState in its group (e.g. Terminating:Wait), None if not in one."""
    response = client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])
    instances = response.get("AutoScalingInstances", [])
    return instances[0].get("LifecycleState") if instances else None


def hook_timeouts(asg_name: str, hook_name: str) -> HookTimeouts | None:
    response = client("autoscaling").describe_lifecycle_hooks(
        AutoScalingGroupName=asg_name, LifecycleHookNames=[hook_name]
    )
    hooks = response.get("LifecycleHooks", [])
    if not hooks:
        return None
    heartbeat = int(hooks[0].get("HeartbeatTimeout", 3600))
    # The global timeout is the smaller of 48 hours and 100 heartbeat timeouts.
    global_timeout = int(hooks[0].get("GlobalTimeout") or min(48 * 3600, 100 * heartbeat))
    return HookTimeouts(heartbeat_seconds=heartbeat, global_seconds=global_timeout)


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
    """Restart the hook's heartbeat timer. False when the lifecycle action is already over."""
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
