"""The sweep: lifecycle actions whose event never reached us, sent through the intake queue.

Auto Scaling sends its lifecycle events to EventBridge "on a best-effort basis" (EC2 Auto
Scaling user guide, "Amazon EC2 Auto Scaling event reference"): a lost one leaves its instance
waiting, undrained, until the hook's timeout lets it go with its tasks. A scheduled rule runs
this every few minutes. What it costs, in AWS calls:

- always: one DescribeAutoScalingGroups per 50 hooked groups, which lists each group's
  instances with their LifecycleState, its Status (set while the group is being deleted) and
  its warm pool's configuration; plus one DescribeWarmPool page per group that has a warm pool
  (pooled instances are not in DescribeAutoScalingGroups' list);
- only when an instance waits in Terminating:Wait or Warmed:Terminating:Wait (or, where the
  warm pool takes scaled-in instances back, Warmed:Pending:Wait): one ListExecutions
  page (1,000 names) of the drain loop's RUNNING executions. A loop's name begins with its
  instance's id, so an instance whose id begins a running loop's name has a drain under way
  (no call per instance);
- only when one waits with no running loop: its cluster's DRAINING container instances
  (ListContainerInstances, DescribeContainerInstances per 100), for ECS's record of a drain of
  ours for this action. A loop of ours drained it and ended (a failure, an operator's stop):
  that end is the loop-end release's to act on, not the sweep's;
- only when one is left: the intake queue's backlog (GetQueueAttributes) and the group's
  scaling activities (DescribeScalingActivities, kept a minute per container); then, per
  instance still left, a RecordLifecycleActionHeartbeat by instance id on our hook: it fails
  when our hook's action is over and the instance waits for another hook (ECS's managed
  draining hook, a launch hook of the warm pool), which is then left alone rather than sent
  every run for as long as that hook holds it; it also gives a lost action a fresh heartbeat
  timeout for its drain. Last, one SendMessageBatch per 10 instances.

An instance with no loop is sent only if the intake queue holds no message (its event may be
there: in a burst's backlog, being handled, or failed and coming back after the visibility
timeout) and it has waited SWEEP_GRACE_SECONDS (its event may still be on its way: SQS's counts
may lag a minute). Each is sent as a lifecycle message
addressed by instance id: its first round checks it against AWS like any event (the instance
waits on our hook, the heartbeat by instance id proves the action waits) and a needless one
finds the loop already running (a duplicate) or the action over. Instances of a group being
deleted are all sent, drain or not: their round completes them at once.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from drain_hook import contract
from drain_hook.adapters import autoscaling, ecs, sqs, stepfunctions
from drain_hook.models.answer import Answer
from drain_hook.models.observations import (
    SWEPT_REUSE_WAIT_STATES,
    SWEPT_WAIT_STATES,
    TERMINATING_TRANSITION,
    GroupView,
)
from drain_hook.models.requests import cluster_from_metadata
from drain_hook.observability import logger
from drain_hook.settings import Settings

_LOOP_INSTANCE = re.compile(r"^(i-(?:[0-9a-f]{17}|[0-9a-f]{8}))-")
_ACCOUNT = re.compile(r"/(\d{12})/[^/]+$")


@dataclass(frozen=True)
class Waiting:
    group: GroupView
    instance_id: str
    lifecycle_state: str


def on_sweep(settings: Settings, now: datetime) -> Answer:
    def answer(reason: str, **details: Any) -> Answer:
        return Answer.terminal("swept", reason, **details)

    if not settings.groups or not settings.hook_name or not settings.intake_queue_url:
        return answer("no hooked groups, hook name or intake queue in the environment: nothing")
    waiting = _waiting(autoscaling.describe_groups(list(settings.groups)))
    if not waiting:
        return answer("no instance waits on a termination", waiting=0, sent=[])

    deleting = [w for w in waiting if w.group.deleting]
    others = [w for w in waiting if not w.group.deleting]
    lost: list[Waiting] = []
    held_back = ""
    if others:
        running = {
            found.group(1)
            for name in stepfunctions.running_loops(settings.state_machine_arn)
            if (found := _LOOP_INSTANCE.match(name))
        }
        lost = [w for w in others if w.instance_id not in running]
    if lost:
        drained = _drained_before(lost, settings)
        lost = [w for w in lost if w.instance_id not in drained]
    if lost:
        backlog = sqs.backlog(settings.intake_queue_url)
        if backlog:
            held_back = f"the intake queue holds {backlog} message(s): their events may be there"
            lost = []
        else:
            lost = [w for w in lost if _waited_long_enough(w, now)]
    # The probe comes last: it is a call per instance, and a write (the heartbeat).
    deleting = [w for w in deleting if _our_action_waits(w, settings)]
    lost = [w for w in lost if _our_action_waits(w, settings)]

    to_send = deleting + lost
    bodies = [_message(w, settings, now) for w in to_send]
    sent = sqs.send_batch(settings.intake_queue_url, bodies) if bodies else []
    if to_send:
        logger.warning(
            "Sweep: lifecycle actions with no drain under way sent to the intake queue",
            extra={
                "instances": [w.instance_id for w in lost],
                "group_deleting": [w.instance_id for w in deleting],
            },
        )
    return answer(
        held_back or f"{len(waiting)} instance(s) wait, {len(to_send)} sent to the intake queue",
        waiting=len(waiting),
        sent=[w.instance_id for w in to_send],
        message_ids=sent,
    )


def _waiting(groups: list[GroupView]) -> list[Waiting]:
    found = []
    for group in groups:
        states = SWEPT_REUSE_WAIT_STATES if group.reuse_on_scale_in else SWEPT_WAIT_STATES
        pooled = autoscaling.pooled_waiting(group.name, states) if group.warm_pool else ()
        waiting = group.waiting + pooled
        found += [Waiting(group, instance, state) for instance, state in waiting]
    return found


def _drained_before(waiting: list[Waiting], settings: Settings) -> set[str]:
    """The instances ECS records a drain of ours for (a loop, this group, this hook)."""
    clusters: dict[str, set[str]] = {}
    for w in waiting:
        ours = autoscaling.lifecycle_hook(w.group.name, settings.hook_name)
        cluster = cluster_from_metadata(ours.metadata if ours else None) or settings.cluster_name
        if cluster:
            clusters.setdefault(cluster, set()).add(w.group.name)
    drained: set[str] = set()
    for cluster, groups in clusters.items():
        for instance in ecs.draining_instances(cluster):
            record, action = instance.drain_record, instance.action_record
            if record is None or not record.has_loop or action is None:
                continue
            if action.hook_name == settings.hook_name and action.asg_name in groups:
                drained.add(instance.ec2_instance_id)
    return drained


def _our_action_waits(waiting: Waiting, settings: Settings) -> bool:
    """Whether our hook's lifecycle action for the instance still waits (its heartbeat by
    instance id succeeds): a sweep message for it would otherwise be a round that finds the
    action over."""
    return autoscaling.record_heartbeat(
        waiting.group.name, str(settings.hook_name), waiting.instance_id, None
    )


def _waited_long_enough(waiting: Waiting, now: datetime) -> bool:
    """Whether the instance entered its wait SWEEP_GRACE_SECONDS ago or more, per Auto Scaling's
    scaling activity; with no activity on record, it is taken as old enough."""
    started = autoscaling.termination_started_at(waiting.group.name, waiting.instance_id, now)
    return started is None or now - started >= timedelta(seconds=contract.SWEEP_GRACE_SECONDS)


def _message(waiting: Waiting, settings: Settings, now: datetime) -> dict[str, Any]:
    """A lifecycle message in the EventBridge shape the intake queue takes, addressed by
    instance id (no token: no API gives it) and carrying our hook's metadata (the cluster)."""
    ours = autoscaling.lifecycle_hook(waiting.group.name, settings.hook_name)
    detail: dict[str, Any] = {
        "AutoScalingGroupName": waiting.group.name,
        "LifecycleHookName": settings.hook_name,
        "EC2InstanceId": waiting.instance_id,
        "LifecycleTransition": TERMINATING_TRANSITION,
    }
    if ours is not None and ours.metadata is not None:
        detail["NotificationMetadata"] = ours.metadata
    account = _ACCOUNT.search(settings.intake_queue_url)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": contract.LIFECYCLE_DETAIL_TYPE,
        "source": contract.SWEEP_SOURCE,
        "account": account.group(1) if account else "",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": os.environ.get("AWS_REGION", ""),
        "resources": [],
        "detail": detail,
    }
