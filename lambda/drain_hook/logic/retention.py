"""ON_DRAIN_FAILURE=retain: which result a failure release completes the lifecycle action with.

With an instance lifecycle policy that retains on TerminateHookAbandon, a termination hook's
action completed with ABANDON moves the instance to Terminating:Retained (Warmed:Terminating:
Retained from a warm pool) instead of terminating it: it leaves the desired capacity and stays,
tasks and all, until TerminateInstanceInAutoScalingGroup (Auto Scaling user guide, "Control
instance retention with instance lifecycle policies"). Without that policy ABANDON terminates
the instance like CONTINUE and also ends the other termination hooks' actions on it, so the
policy is read from AWS (DescribeAutoScalingGroups) before every ABANDON, never assumed.
"""

from __future__ import annotations

from drain_hook.adapters import autoscaling
from drain_hook.observability import logger
from drain_hook.settings import Settings

CONTINUE = "CONTINUE"
ABANDON = "ABANDON"


def failure_result(settings: Settings, asg_name: str, instance_id: str, why: str) -> str:
    """ABANDON when retaining is asked for and the group retains; else CONTINUE, logged."""
    if settings.on_drain_failure != "retain":
        return CONTINUE
    group = autoscaling.describe_group(asg_name)
    if group is not None and group.retains and not group.deleting:
        return ABANDON
    if group is None:
        because = f"Auto Scaling has no group {asg_name!r} any more"
    elif group.deleting:
        because = f"group {asg_name!r} is being deleted ({group.status})"
    else:
        because = (
            f"group {asg_name!r} has no instance lifecycle policy retaining on "
            "TerminateHookAbandon: ABANDON would terminate the instance all the same, and end "
            "the other termination hooks' actions on it"
        )
    logger.warning(
        "ON_DRAIN_FAILURE=retain, but completing with CONTINUE",
        extra={"instance_id": instance_id, "failure": why, "because": because},
    )
    return CONTINUE
