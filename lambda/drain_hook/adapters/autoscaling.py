"""Auto Scaling calls: where the instance stands, the group's hooks, the record of when the hold
began, heartbeats and completion."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from drain_hook import clock
from drain_hook.adapters.clients import client
from drain_hook.adapters.container_cache import store
from drain_hook.errors import is_no_active_action
from drain_hook.models.observations import (
    RETAIN,
    SWEPT_REUSE_WAIT_STATES,
    SWEPT_WAIT_STATES,
    GroupView,
    HookView,
    LifecycleView,
)

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
        hooks.append(
            HookView(
                name=item["LifecycleHookName"],
                transition=item.get("LifecycleTransition", ""),
                heartbeat_timeout_seconds=int(item.get("HeartbeatTimeout", 3600)),
                metadata=item.get("NotificationMetadata"),
            )
        )
    cache[asg_name] = (now, hooks)
    return list(hooks)


def lifecycle_hook(asg_name: str, name: str | None, *, fresh: bool = False) -> HookView | None:
    """The group's lifecycle hook of that name, None when it has none (as `lifecycle_hooks`)."""
    return next((h for h in lifecycle_hooks(asg_name, fresh=fresh) if h.name == name), None)


def termination_started_at(asg_name: str, instance_id: str, now: datetime) -> datetime | None:
    """When Auto Scaling began terminating the instance (its scaling activity), if recorded.

    The activity's StartTime is when the instance entered the hook's wait: the hook's timers run
    from there, whatever an event's `time` says. One read of the newest pages gives the starts
    of a whole burst: they are kept ACTIVITIES_CACHE_SECONDS, far less than an instance needs to
    leave a warm pool and be scaled in again (a new activity, a later start). An instance that
    read did not reach costs the newest page (where new activities come) and the pages the read
    had not reached yet, never a read of every page again; one it did reach without finding is
    not looked for again: Auto Scaling's one request bucket is shared by the whole account.
    """
    reads: dict[str, _ActivityRead] = store().setdefault("activity_reads", {})
    read = reads.get(asg_name)
    age = clock.utc_now() - read.at if read is not None else None
    if read is None or age is None or age >= timedelta(seconds=ACTIVITIES_CACHE_SECONDS):
        read = reads[asg_name] = _ActivityRead(asg_name, at=clock.utc_now())
        read.deeper(instance_id)
    elif instance_id not in read.starts and instance_id not in read.missed:
        read.newest()
        if instance_id not in read.starts:
            read.deeper(instance_id)
    if instance_id not in read.starts:
        read.missed.add(instance_id)
    start = read.starts.get(instance_id)
    return start if start is not None and start <= now else None


@dataclass
class _ActivityRead:
    """What this container read of a group's scaling activities (newest first), and how deep."""

    asg_name: str
    at: datetime
    starts: dict[str, datetime] = field(default_factory=dict)
    depth: int = 0  # pages read from the top
    next_token: str | None = None  # where the next page below `depth` starts
    missed: set[str] = field(default_factory=set)

    def _page(self, token: str | None) -> str | None:
        arguments: dict[str, Any] = {"AutoScalingGroupName": self.asg_name}
        if token:
            arguments["NextToken"] = token
        page = client("autoscaling").describe_scaling_activities(**arguments)
        for activity in page.get("Activities", []):
            terminated = _terminated_instance(activity)
            if terminated is not None:
                start = activity["StartTime"]
                self.starts[terminated] = max(start, self.starts.get(terminated, start))
        return page.get("NextToken")

    def newest(self) -> None:
        """The first page again: activities begun since the read come first."""
        self._page(None)

    def deeper(self, instance_id: str) -> None:
        """Page on below what was read until the instance shows up, the listing ends, or
        ACTIVITY_PAGES_MAX pages in all."""
        while instance_id not in self.starts and self.depth < ACTIVITY_PAGES_MAX:
            if self.depth and self.next_token is None:
                return  # read to the end already
            self.next_token = self._page(self.next_token)
            self.depth += 1


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


def record_heartbeat(asg_name: str, hook_name: str, instance_id: str, token: str | None) -> bool:
    """Restart the hook's heartbeat timer. False when no such lifecycle action waits."""
    try:
        client("autoscaling").record_lifecycle_action_heartbeat(
            **_action_target(asg_name, hook_name, instance_id, token)
        )
    except ClientError as error:
        if is_no_active_action(error):
            return False
        raise
    return True


def complete_lifecycle_action(
    asg_name: str,
    hook_name: str,
    instance_id: str,
    token: str | None,
    result: str = "CONTINUE",
) -> bool:
    """Complete with CONTINUE (or ABANDON, where the caller has checked the group retains).
    False when the action was already over (not an error for us)."""
    try:
        client("autoscaling").complete_lifecycle_action(
            LifecycleActionResult=result,
            **_action_target(asg_name, hook_name, instance_id, token),
        )
    except ClientError as error:
        if is_no_active_action(error):
            return False
        raise
    return True


# DescribeAutoScalingGroups takes 50 names a call by default (100 with MaxRecords); the sweep
# asks for 50, so one call answers for up to 50 groups.
GROUP_NAMES_PER_CALL = 50
WARM_POOL_PAGE = 50  # DescribeWarmPool's MaxRecords, at most 50


def describe_groups(names: list[str], *, instances: bool = True) -> list[GroupView]:
    """The groups (those that exist), with their instances in a termination wait.

    DescribeAutoScalingGroups lists a group's own instances, never its warm pool's
    (DescribeWarmPool does, API reference): `pooled_waiting` reads those."""
    found: list[GroupView] = []
    for start in range(0, len(names), GROUP_NAMES_PER_CALL):
        chunk = names[start : start + GROUP_NAMES_PER_CALL]
        arguments: dict[str, Any] = {
            "AutoScalingGroupNames": chunk,
            "MaxRecords": GROUP_NAMES_PER_CALL,
        }
        if not instances:
            arguments["IncludeInstances"] = False
        response = client("autoscaling").describe_auto_scaling_groups(**arguments)
        found.extend(_group_view(item) for item in response.get("AutoScalingGroups", []))
    return found


def describe_group(name: str) -> GroupView | None:
    """One group's status and instance lifecycle policy, read now (no instances)."""
    groups = describe_groups([name], instances=False)
    return next((g for g in groups if g.name == name), None)


def pooled_waiting(
    name: str, states: frozenset[str] = SWEPT_WAIT_STATES
) -> tuple[tuple[str, str], ...]:
    """The group's warm pool instances in one of `states` (DescribeWarmPool, paged)."""
    waiting: list[tuple[str, str]] = []
    token: str | None = None
    while True:
        arguments: dict[str, Any] = {"AutoScalingGroupName": name, "MaxRecords": WARM_POOL_PAGE}
        if token:
            arguments["NextToken"] = token
        response = client("autoscaling").describe_warm_pool(**arguments)
        waiting += [
            (item["InstanceId"], item["LifecycleState"])
            for item in response.get("Instances", [])
            if item.get("LifecycleState") in states
        ]
        token = response.get("NextToken")
        if not token:
            return tuple(waiting)


def _group_view(item: dict[str, Any]) -> GroupView:
    policy = item.get("InstanceLifecyclePolicy") or {}
    triggers = policy.get("RetentionTriggers") or {}
    pool = item.get("WarmPoolConfiguration") or {}
    reuse = (pool.get("InstanceReusePolicy") or {}).get("ReuseOnScaleIn") is True
    states = SWEPT_REUSE_WAIT_STATES if reuse else SWEPT_WAIT_STATES
    return GroupView(
        name=item["AutoScalingGroupName"],
        status=item.get("Status") or None,
        retains=triggers.get("TerminateHookAbandon") == RETAIN,
        warm_pool=bool(pool),
        reuse_on_scale_in=reuse,
        waiting=tuple(
            (i["InstanceId"], i["LifecycleState"])
            for i in item.get("Instances", [])
            if i.get("LifecycleState") in states
        ),
    )
