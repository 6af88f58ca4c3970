"""The fast path: an ECS "Container Instance State Change" event for an instance we drain.

ECS emits one when a task on the instance stops and its resources are released. The EventBridge
rule only routes instances that carry our drain record (an ECS attribute), and the event is only
a hint: when it shows no task meant to run and no resources held, the instance is checked as
every poll checks it (ECS's own listing of its unstopped tasks) and the lifecycle action is
completed at once when none is left. The wait loop stays the safety net; if both complete, the
second gets "No active Lifecycle Action", which is harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drain_hook.adapters import autoscaling, ecs
from drain_hook.logic import outcomes
from drain_hook.models.observations import DrainRecord
from drain_hook.models.requests import InstanceChangeRequest
from drain_hook.observability import logger
from drain_hook.settings import Settings


def on_instance_change(
    request: InstanceChangeRequest, settings: Settings, now: datetime
) -> dict[str, Any]:
    def answer(action: str, reason: str, tasks_remaining: int | None = None) -> dict[str, Any]:
        logger.info("Instance event handled", extra={"action": action, "reason": reason})
        return {
            "done": True,
            "instance_id": request.ec2_instance_id,
            "tasks_remaining": tasks_remaining,
            "action": action,
            "wait_seconds": 0,
            "reason": reason,
        }

    if DrainRecord.decode(request.drain_attribute) is None:
        return answer("ignored", "the instance carries no drain record of ours")
    if request.says_not_draining:
        return answer("ignored", "the event shows the instance not DRAINING or its agent away")
    if request.says_tasks_remain:
        return answer("ignored", "the event shows tasks still meant to run or holding resources")

    instance = ecs.describe_container_instance(request.cluster_arn, request.container_instance_arn)
    if instance is None or instance.ec2_instance_id != request.ec2_instance_id:
        return answer("ignored", "ECS has no such container instance for this EC2 instance")
    record, action = instance.drain_record, instance.action_record
    if record is None:
        return answer("ignored", "the drain is over (no drain record on the instance)")
    if action is None:
        return answer("ignored", "no lifecycle action recorded: the wait loop completes this drain")
    if instance.status != "DRAINING":
        return answer("ignored", f"the container instance is {instance.status}, not DRAINING")

    listing = ecs.list_unstopped_tasks(
        request.cluster_arn, instance, {}, classify=not settings.daemon_tasks_hold_instance
    )
    holding = [
        t for t in listing.tasks if settings.daemon_tasks_hold_instance or t.kind != "daemon"
    ]
    if holding:
        return answer(
            "ignored", f"{len(holding)} unstopped task(s) hold the instance", len(holding)
        )
    if not autoscaling.complete_lifecycle_action(
        action.asg_name, action.hook_name, request.ec2_instance_id, None
    ):
        return answer("lifecycle_ended", "the lifecycle action was already over", 0)
    outcomes.drain_done_by_event(record.started_at, now, listing.last_stopped_at)
    return answer("completed", "no unstopped task left on the instance: completed at once", 0)
