"""ECS events for EventBridge: what ECS sends, and how it arrives (late, twice, out of order).

ECS sends two kinds of events to EventBridge (ECS developer guide, "Amazon ECS events"):

- "ECS Task State Change": the ``detail`` resembles DescribeTasks' Task, with timestamps as ISO
  strings instead of Unix numbers ("Amazon ECS task state change events").
- "ECS Container Instance State Change": the ``detail`` resembles DescribeContainerInstances'
  ContainerInstance, custom attributes included ("Amazon ECS container instance state change
  events").

Every event has source "aws.ecs", ``resources`` [the task's or container instance's ARN], the
account, region, time (virtual clock), a unique id, and a top-level ``version`` of "0"; the
``detail.version`` is the resource's own version counter, which rises with each change and is the
same number DescribeTasks / DescribeContainerInstances report ("Amazon ECS events"; API reference
Task.version, ContainerInstance.version).

Delivery ("Handling Amazon ECS events"): events are delivered at least once, possibly more than
once, and not necessarily in order. `EventDelivery` makes each of these a seeded knob:
``duplicate_probability`` (a second copy of the same event, same id and version),
``max_delay_seconds`` (each copy waits a uniform 0..max seconds of virtual time, so events overtake
each other) and ``loss_probability`` (an event never arrives; ECS calls its events durable, so this
is for testing a consumer's tolerance, not something the docs promise). All default to 0: each
event reaches the sinks once, at once, in order.

`EcsEventStream.sinks` are called with each delivered event dict (a fresh copy per delivery).
"""

from __future__ import annotations

import copy
import heapq
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from local_aws.clock import Clock

TASK_STATE_CHANGE = "ECS Task State Change"
CONTAINER_INSTANCE_STATE_CHANGE = "ECS Container Instance State Change"
SOURCE = "aws.ecs"

EventSink = Callable[[dict[str, Any]], object]


@dataclass(frozen=True)
class EventDelivery:
    """Seeded delivery faults ("Handling Amazon ECS events": at least once, order not kept)."""

    duplicate_probability: float = 0.0
    max_delay_seconds: float = 0.0
    loss_probability: float = 0.0

    def __post_init__(self) -> None:
        for name in ("duplicate_probability", "loss_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.max_delay_seconds < 0:
            raise ValueError("max_delay_seconds must be >= 0")


def iso(when: datetime | None) -> str | None:
    """An event timestamp: ISO 8601, UTC, milliseconds (as the ECS event examples show)."""
    if when is None:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _attributes(ci: Any) -> list[dict[str, str]]:
    out = []
    for name, value in (ci.attributes or {}).items():
        out.append({"name": name} if value is None else {"name": name, "value": value})
    return out


def container_instance_detail(ci: Any, cluster_arn: str) -> dict[str, Any]:
    """The detail of a container instance event: DescribeContainerInstances' ContainerInstance."""
    detail: dict[str, Any] = {
        "agentConnected": bool(ci.agent_connected),
        "attributes": _attributes(ci),
        "clusterArn": cluster_arn,
        "containerInstanceArn": ci.container_instance_arn,
        "ec2InstanceId": ci.ec2_instance_id,
        "pendingTasksCount": ci.pending_tasks_count,
        "registeredAt": iso(getattr(ci, "registered_at", None)),
        "registeredResources": copy.deepcopy(ci.registered_resources),
        "remainingResources": copy.deepcopy(ci.remaining_resources),
        "runningTasksCount": ci.running_tasks_count,
        "status": ci.status,
        "updatedAt": iso(getattr(ci, "updated_at", None)),
        "version": getattr(ci, "version", 0),
        "versionInfo": dict(ci.version_info),
    }
    reason = getattr(ci, "status_reason", None)
    if reason:
        detail["statusReason"] = reason
    return {k: v for k, v in detail.items() if v is not None}


def task_detail(task: Any, availability_zone: str | None) -> dict[str, Any]:
    """The detail of a task event: DescribeTasks' Task, timestamps as ISO strings."""
    containers = [
        {
            "containerArn": c.container_arn,
            "lastStatus": c.last_status,
            "name": c.name,
            "taskArn": task.task_arn,
            "image": c.image,
        }
        for c in task.containers
    ]
    detail: dict[str, Any] = {
        "attachments": list(task.attachments),
        "availabilityZone": availability_zone,
        "clusterArn": task.cluster_arn,
        "containerInstanceArn": task.container_instance_arn,
        "containers": containers,
        "createdAt": iso(getattr(task, "created_at", None)),
        "desiredStatus": task.desired_status,
        "group": task.group,
        "lastStatus": task.last_status,
        "launchType": task.launch_type or "EC2",
        "overrides": {"containerOverrides": []},
        "startedAt": iso(getattr(task, "started_at", None)),
        "startedBy": task.started_by or None,
        "stopCode": getattr(task, "stop_code", None),
        "stoppedAt": iso(getattr(task, "stopped_at", None)),
        "stoppedReason": task.stopped_reason or None,
        "stoppingAt": iso(getattr(task, "stopping_at", None)),
        "taskArn": task.task_arn,
        "taskDefinitionArn": task.task_definition_arn,
        "updatedAt": iso(getattr(task, "updated_at", None)),
        "version": getattr(task, "version", 0),
    }
    return {k: v for k, v in detail.items() if v is not None}


class EcsEventStream:
    """Builds ECS events and delivers them to the sinks, through the `EventDelivery` faults."""

    def __init__(
        self,
        clock: Clock,
        *,
        account_id: str,
        region: str,
        seed: int = 0,
        delivery: EventDelivery | None = None,
    ) -> None:
        self.clock = clock
        self.account_id, self.region = account_id, region
        self.delivery = delivery or EventDelivery()
        self.sinks: list[EventSink] = []
        self.emitted: list[dict[str, Any]] = []  # every event ECS raised, in the order raised
        self.delivered: list[dict[str, Any]] = []  # every delivery, duplicates included
        self.lost: list[dict[str, Any]] = []
        # Separate streams: turning a fault knob on does not change ids or other draws.
        self._ids = random.Random(f"{seed}:ecs-event-ids")
        self._faults = random.Random(f"{seed}:ecs-event-delivery")
        self._queue: list[tuple[datetime, int, dict[str, Any]]] = []
        self._seq = 0

    def emit(self, detail_type: str, resource_arn: str, detail: dict[str, Any]) -> dict[str, Any]:
        """Raise one event now; returns it (as raised, before any delivery fault)."""
        event = {
            "version": "0",
            "id": str(uuid.UUID(int=self._ids.getrandbits(128), version=4)),
            "detail-type": detail_type,
            "source": SOURCE,
            "account": self.account_id,
            "time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [resource_arn],
            "detail": detail,
        }
        self.emitted.append(event)
        self._route(event)
        return event

    def _route(self, event: dict[str, Any]) -> None:
        d = self.delivery
        if d.loss_probability and self._faults.random() < d.loss_probability:
            self.lost.append(event)
            return
        copies = (
            2 if d.duplicate_probability and self._faults.random() < d.duplicate_probability else 1
        )
        for _ in range(copies):
            delay = self._faults.uniform(0.0, d.max_delay_seconds) if d.max_delay_seconds else 0.0
            if delay <= 0.0:
                self._deliver(event)
            else:
                self._seq += 1
                when = self.clock.now() + timedelta(seconds=delay)
                heapq.heappush(self._queue, (when, self._seq, event))

    def _deliver(self, event: dict[str, Any]) -> None:
        self.delivered.append(event)
        for sink in list(self.sinks):
            sink(copy.deepcopy(event))

    def next_time(self) -> datetime | None:
        return self._queue[0][0] if self._queue else None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def deliver_due(self) -> bool:
        """Deliver every delayed copy due by now; True if any was delivered."""
        delivered = False
        while self._queue and self._queue[0][0] <= self.clock.now():
            _, _, event = heapq.heappop(self._queue)
            self._deliver(event)
            delivered = True
        return delivered
