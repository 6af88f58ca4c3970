"""Deliberately broken drain Lambdas: the soak's invariants must catch each of them.

Each wraps the real handler and adds one mistake, through the Lambda's own AWS clients (so the
sandbox records the calls as the Lambda's).
"""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import ClientError

from drain_hook.adapters.clients import client
from drain_hook.handler import lambda_handler
from local_aws.sqs_event_source import unqueued

LIFECYCLE = "EC2 Instance-terminate Lifecycle Action"


def _lifecycle_detail(event: Any) -> dict[str, Any] | None:
    """The lifecycle event's detail, sent straight or as the intake queue's message body."""
    event = unqueued(event)
    if isinstance(event, dict) and event.get("detail-type") == LIFECYCLE:
        return dict(event["detail"])
    return None


def complete_at_once(event: Any, context: Any) -> Any:
    """Drains, but also completes the lifecycle action at once: tasks still run."""
    result = lambda_handler(event, context)
    detail = _lifecycle_detail(event)
    if detail is not None:
        with contextlib.suppress(ClientError):  # the action may be over already
            client("autoscaling").complete_lifecycle_action(
                AutoScalingGroupName=detail["AutoScalingGroupName"],
                LifecycleHookName=detail["LifecycleHookName"],
                LifecycleActionToken=detail["LifecycleActionToken"],
                LifecycleActionResult="CONTINUE",
            )
    return result


def drain_everything(event: Any, context: Any) -> Any:
    """Drains its instance, and sets every container instance of the cluster DRAINING too."""
    result = lambda_handler(event, context)
    if _lifecycle_detail(event) is not None:
        ecs = client("ecs")
        arns = ecs.list_container_instances(cluster="soak")["containerInstanceArns"]
        ecs.update_container_instances_state(
            cluster="soak", containerInstances=arns[:10], status="DRAINING"
        )
    return result


def ignore_lifecycle_events(event: Any, context: Any) -> Any:
    """Answers lifecycle events without doing anything: the hold runs out."""
    if _lifecycle_detail(event) is not None:
        return {"done": True, "action": "ignored", "reason": "broken on purpose"}
    return lambda_handler(event, context)
