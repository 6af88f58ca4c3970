"""Spot interruption warnings: drain at once, and record when EC2 takes the instance.

EC2 sends "EC2 Spot Instance Interruption Warning" two minutes before it stops or terminates a
Spot instance, and does so whatever its lifecycle hooks say (EC2 user guide, "Spot Instance
interruption notices"). Waiting for the termination hook's event would waste part of those two
minutes: for an instance of a hooked group registered in the cluster, this sets its container
instance DRAINING at once (ECS starts replacements) and records the interruption's time in the
drain record, so the termination round that follows takes min(deadline, interruption) and never
waits past it (`decision.round_deadline`).

Nothing in the event is taken on its word: the instance's group comes from Auto Scaling, the
interruption from EC2's record of it (the instance's Spot request marked for stop or
termination, DescribeSpotInstanceRequests: its status's UpdateTime is when EC2 marked it), the
container instance from ECS. An instance we don't hook, or one EC2 shows no interruption for,
is answered `ignored` with no write. Rebalance recommendations are left to Capacity Rebalancing,
whose replacement terminates the instance through its termination hooks.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from drain_hook import contract
from drain_hook.adapters import autoscaling, ec2, ecs
from drain_hook.logic import outcomes
from drain_hook.models.answer import Answer
from drain_hook.models.observations import (
    DRAINABLE_STATUSES,
    NO_LOOP,
    WARMED_PREFIX,
    DrainRecord,
)
from drain_hook.models.requests import SpotWarningRequest, cluster_from_metadata
from drain_hook.observability import logger
from drain_hook.settings import Settings


def on_spot_warning(request: SpotWarningRequest, settings: Settings, now: datetime) -> Answer:
    instance_id = request.instance_id

    def ignored(reason: str) -> Answer:
        return Answer.terminal("ignored", reason, instance_id=instance_id)

    lifecycle = autoscaling.describe_instance(instance_id)
    if lifecycle is None or lifecycle.asg_name not in settings.groups:
        where = f"group {lifecycle.asg_name}" if lifecycle else "no Auto Scaling group"
        return ignored(f"the instance is in {where}, not one we hook")
    if lifecycle.lifecycle_state.startswith(WARMED_PREFIX):
        return ignored("a warm pool instance: never registered with ECS")
    notice = ec2.pending_interruption(instance_id, contract.SPOT_NOTICE_SECONDS)
    if notice is None:
        return ignored("EC2 shows no pending interruption of this instance")
    interruption_at = notice.interruption_at
    if "hibernat" in notice.code:
        # Hibernation begins at the notice: no two minutes (the same user guide page).
        interruption_at = notice.noticed_at
    logger.append_keys(asg_name=lifecycle.asg_name)

    ours = autoscaling.lifecycle_hook(lifecycle.asg_name, settings.hook_name)
    cluster = cluster_from_metadata(ours.metadata if ours else None) or settings.cluster_name
    if not cluster:
        return ignored("no ECS cluster for the group (hook metadata, CLUSTER_NAME)")
    logger.append_keys(cluster=cluster)
    instance = ecs.find_container_instance(cluster, instance_id)
    if instance is None:
        return ignored(f"no container instance for it in cluster {cluster}")
    if instance.status not in DRAINABLE_STATUSES:
        return ignored(f"the container instance is {instance.status}")
    if instance.status == "ACTIVE":
        failure = ecs.set_draining(cluster, instance.arn)
        if failure:
            outcomes.drain_refused(failure)
            return ignored(f"ECS did not set it DRAINING: {failure}")
    record = instance.drain_record
    if record is None:
        record = DrainRecord(started_at=notice.noticed_at, loop=NO_LOOP)
    record = replace(record, interruption_at=interruption_at)
    refused = ecs.put_drain_record(cluster, instance.arn, record, None)
    if refused:
        outcomes.record_refused(refused)
    left = max(0.0, (interruption_at - now).total_seconds())
    logger.warning(
        "Spot interruption: the instance is DRAINING, its termination round ends by then",
        extra={
            "instance_id": instance_id,
            "interruption_at": interruption_at.isoformat(),
            "seconds_left": round(left, 1),
            "ec2_code": notice.code,
        },
    )
    at = interruption_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Answer.terminal(
        "spot_draining",
        f"EC2 interrupts it at {at}: set DRAINING, time recorded",
        instance_id=instance_id,
    )
