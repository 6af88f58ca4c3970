"""ECS calls the drain needs, each scoped to one container instance (never a cluster scan)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from drain_hook import clock, contract
from drain_hook.adapters.clients import client
from drain_hook.adapters.container_cache import store
from drain_hook.errors import ClusterNotFound, error_code
from drain_hook.models.observations import (
    ActionRecord,
    ContainerInstanceView,
    DrainRecord,
    ServiceView,
    TaskKind,
    TaskView,
)

# ListContainerInstances without `status` lists every status but INACTIVE, and INACTIVE is not
# a status it takes (API reference, ListContainerInstances `status`: ECS answers
# InvalidParameterException). An EC2 instance whose container instance is INACTIVE
# (deregistered) is not registered in the cluster any more.
UNLISTED_STATUSES = ("INACTIVE",)
DESCRIBE_TASKS_MAX = 100
DESCRIBE_INSTANCES_MAX = 100
DESCRIBE_SERVICES_MAX = 10


@dataclass(frozen=True)
class TaskListing:
    """The unstopped tasks on an instance, and what the listing learnt on the way."""

    tasks: tuple[TaskView, ...]
    strategies: dict[str, str]  # service name -> REPLICA / DAEMON (a cache between polls)
    last_stopped_at: datetime | None  # latest stoppedAt among the instance's stopped tasks
    # The services DescribeServices was asked about on the way (counts, latest event).
    services: dict[str, ServiceView] = field(default_factory=dict)
    # Services of the instance's tasks that are STOPPED and still listed (ECS keeps them at
    # least an hour): they had tasks here, e.g. before the drain stopped them.
    stopped_services: frozenset[str] = frozenset()


@contextmanager
def _cluster_must_exist(cluster: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        if error_code(error) == "ClusterNotFoundException":
            raise ClusterNotFound(cluster) from error
        raise


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _view(item: dict[str, Any]) -> ContainerInstanceView:
    attributes = {a.get("name"): a.get("value") for a in item.get("attributes", [])}
    return ContainerInstanceView(
        arn=item["containerInstanceArn"],
        ec2_instance_id=item.get("ec2InstanceId", ""),
        status=item["status"],
        agent_connected=bool(item.get("agentConnected", True)),
        version=int(item["version"]) if isinstance(item.get("version"), int) else None,
        running_tasks=int(item.get("runningTasksCount", 0)),
        pending_tasks=int(item.get("pendingTasksCount", 0)),
        drain_record=DrainRecord.decode(attributes.get(contract.DRAIN_ATTRIBUTE)),
        action_record=ActionRecord.decode(attributes.get(contract.ACTION_ATTRIBUTE)),
    )


def _describe_instances(cluster: str, arns: list[str]) -> list[ContainerInstanceView]:
    found = []
    with _cluster_must_exist(cluster):
        for chunk in _chunks(arns, DESCRIBE_INSTANCES_MAX):
            response = client("ecs").describe_container_instances(
                cluster=cluster, containerInstances=chunk
            )
            found.extend(_view(item) for item in response.get("containerInstances", []))
    return found


def find_container_instance(cluster: str, ec2_instance_id: str) -> ContainerInstanceView | None:
    """The container instance of an EC2 instance, or None if it is not registered in the cluster.

    The ec2InstanceId filter keeps this to one small page on real ECS; the describe confirms the
    match, so it stays correct where the filter is ignored (moto). The listing leaves out
    UNLISTED_STATUSES: a deregistered (INACTIVE) container instance is no registration at all.
    """
    paginator = client("ecs").get_paginator("list_container_instances")
    query = f"ec2InstanceId == {ec2_instance_id}"
    with _cluster_must_exist(cluster):
        arns = [
            arn
            for page in paginator.paginate(cluster=cluster, filter=query)
            for arn in page["containerInstanceArns"]
        ]
    for instance in _describe_instances(cluster, arns) if arns else []:
        if instance.ec2_instance_id == ec2_instance_id and instance.status not in UNLISTED_STATUSES:
            return instance
    return None


def describe_container_instance(cluster: str, arn: str) -> ContainerInstanceView | None:
    found = _describe_instances(cluster, [arn])
    return found[0] if found else None


def set_draining(cluster: str, arn: str) -> str | None:
    """Set DRAINING; return the failure ECS reported for this instance, if any."""
    with _cluster_must_exist(cluster):
        response = client("ecs").update_container_instances_state(
            cluster=cluster, containerInstances=[arn], status="DRAINING"
        )
    failures = response.get("failures", [])
    if failures:
        failure = failures[0]
        return f"{failure.get('reason', 'unknown')}: {failure.get('detail', '')}".rstrip(": ")
    return None


def put_drain_record(
    cluster: str, arn: str, record: DrainRecord, action: ActionRecord | None
) -> str | None:
    """Record our drain on the container instance; the error text if ECS refused it."""
    attributes = [{"name": contract.DRAIN_ATTRIBUTE, "value": record.encode()}]
    value = action.encode() if action else None
    if value:
        attributes.append({"name": contract.ACTION_ATTRIBUTE, "value": value})
    for attribute in attributes:
        attribute["targetId"] = arn  # a full ARN needs no targetType (PutAttributes reference)
    try:
        with _cluster_must_exist(cluster):
            client("ecs").put_attributes(cluster=cluster, attributes=attributes)
    except ClientError as error:
        # e.g. AttributeLimitExceededException: ten custom attributes already on the instance.
        if error_code(error) in ("AttributeLimitExceededException", "InvalidParameterException"):
            return f"{error_code(error)}: {error}"
        raise
    return None


def delete_drain_record(cluster: str, arn: str) -> None:
    attributes = [
        {"name": name, "targetId": arn}
        for name in (contract.DRAIN_ATTRIBUTE, contract.ACTION_ATTRIBUTE)
    ]
    with _cluster_must_exist(cluster):
        client("ecs").delete_attributes(cluster=cluster, attributes=attributes)


def list_unstopped_tasks(
    cluster: str,
    instance: ContainerInstanceView,
    strategies: dict[str, str],
    *,
    classify: bool = True,
    describe_all: bool = False,
) -> TaskListing:
    """Every task on the instance whose lastStatus is not STOPPED, classified by kind.

    A task already told to stop (desiredStatus STOPPED) still runs until its lastStatus is
    STOPPED, so tasks of both desired statuses are read. Without `classify`, service tasks are
    not told apart as daemon or replica (no DescribeServices). When ECS reports no task on the
    instance meant to run (runningTasksCount counts desiredStatus RUNNING) and none PENDING, the
    listing of desired-RUNNING tasks is skipped: it would be empty. With `describe_all`, every
    service of the unstopped tasks is described (its counts and latest event, in the same
    DescribeServices calls that classify them), not only those not classified yet.
    """
    paginator = client("ecs").get_paginator("list_tasks")
    desired = ("STOPPED",)
    if instance.running_tasks or instance.pending_tasks:
        desired = ("RUNNING", "STOPPED")
    arns: list[str] = []
    with _cluster_must_exist(cluster):
        for status in desired:
            for page in paginator.paginate(
                cluster=cluster, containerInstance=instance.arn, desiredStatus=status
            ):
                arns.extend(page["taskArns"])
        arns = list(dict.fromkeys(arns))
        described: list[dict[str, Any]] = []
        for chunk in _chunks(arns, DESCRIBE_TASKS_MAX):
            response = client("ecs").describe_tasks(cluster=cluster, tasks=chunk)
            described.extend(response.get("tasks", []))
    on_instance = [
        task for task in described if task.get("containerInstanceArn", instance.arn) == instance.arn
    ]
    unstopped = [task for task in on_instance if task.get("lastStatus") != "STOPPED"]
    stopped_at = [
        task["stoppedAt"]
        for task in on_instance
        if task.get("lastStatus") == "STOPPED" and isinstance(task.get("stoppedAt"), datetime)
    ]

    services = {_service_name(task) for task in unstopped}
    unknown = sorted(name for name in services if name and name not in strategies)
    if describe_all:
        unknown = sorted(name for name in services if name)
    described: dict[str, ServiceView] = {}
    if classify and unknown:  # daemon or replica: only DescribeServices knows
        described = describe_services(cluster, unknown)
        strategies = {**strategies, **{name: v.strategy for name, v in described.items()}}
    views = tuple(
        TaskView(
            arn=task["taskArn"],
            kind=_kind(_service_name(task), strategies),
            last_status=task.get("lastStatus", "UNKNOWN"),
            desired_status=task.get("desiredStatus", "UNKNOWN"),
            service=_service_name(task),
        )
        for task in unstopped
    )
    stopped_services = frozenset(
        name
        for task in on_instance
        if task.get("lastStatus") == "STOPPED" and (name := _service_name(task))
    )
    return TaskListing(
        views,
        strategies,
        max(stopped_at) if stopped_at else None,
        described,
        stopped_services,
    )


def _service_name(task: dict[str, Any]) -> str | None:
    group = task.get("group") or ""
    return group.split(":", 1)[1] if group.startswith("service:") else None


def _kind(service: str | None, strategies: dict[str, str]) -> TaskKind:
    if service is None:
        return "standalone"
    return "daemon" if strategies.get(service) == "DAEMON" else "service"


def describe_services(cluster: str, names: Iterable[str]) -> dict[str, ServiceView]:
    """DescribeServices, 10 a call: each service's strategy, counts and latest event. A service
    ECS no longer knows is MISSING and counts as a replica service (its tasks still hold the
    instance)."""
    wanted = sorted(set(names))
    found: dict[str, ServiceView] = {}
    with _cluster_must_exist(cluster):
        for chunk in _chunks(wanted, DESCRIBE_SERVICES_MAX):
            response = client("ecs").describe_services(cluster=cluster, services=chunk)
            for service in response.get("services", []):
                found[service["serviceName"]] = service_view(service)
    return {name: found.get(name) or ServiceView(name=name, status="MISSING") for name in wanted}


def service_view(service: dict[str, Any]) -> ServiceView:
    """A DescribeServices entry as the decision reads it (events come newest first)."""
    events = service.get("events") or []
    latest = events[0] if events else {}
    at = latest.get("createdAt")
    return ServiceView(
        name=service["serviceName"],
        status=service.get("status", "ACTIVE"),
        strategy=service.get("schedulingStrategy", "REPLICA"),
        running=int(service.get("runningCount", 0)),
        desired=int(service.get("desiredCount", 0)),
        pending=int(service.get("pendingCount", 0)),
        event=latest.get("message"),
        event_at=at if isinstance(at, datetime) else None,
    )


def stop_tasks(cluster: str, arns: Iterable[str], reason: str) -> list[str]:
    """Stop each task; return the ARNs ECS accepted (a task that is already gone is skipped)."""
    stopped = []
    ecs = client("ecs")
    for arn in arns:
        try:
            with _cluster_must_exist(cluster):
                ecs.stop_task(cluster=cluster, task=arn, reason=reason[:255])
        except ecs.exceptions.InvalidParameterException:
            continue
        stopped.append(arn)
    return stopped


# How long a container trusts that an instance is not being drained: a busy cluster stops many
# tasks a minute, and each stop wakes the Lambda; one listing every few seconds per container
# keeps those runs off the account's ECS cluster-read bucket. That an instance is being drained
# stays true until its drain ends (the caller checks ECS's record each time), so it is kept.
DRAINS_LIST_SECONDS = 5


def _drains(cluster: str) -> dict[str, Any]:
    key = cluster.rsplit("/", 1)[-1]  # a cluster ARN and its name are the same cluster
    caches: dict[str, dict[str, Any]] = store().setdefault("drains", {})
    return caches.setdefault(key, {"read_at": None, "arns": set()})


def is_being_drained(cluster: str, container_instance_arn: str) -> bool:
    """Whether the container instance is one of the cluster's DRAINING ones.

    Answered from this container's listing (ListContainerInstances with status DRAINING: a
    status the API takes), read again only for an instance not in it, and at most every
    DRAINS_LIST_SECONDS. It holds every DRAINING instance, ours and any another tool drains:
    the caller checks ECS's record of our drain (DescribeContainerInstances) before acting.
    """
    drains = _drains(cluster)
    if container_instance_arn in drains["arns"]:
        return True
    now = clock.utc_now()
    read_at = drains["read_at"]
    if read_at is not None and now - read_at < timedelta(seconds=DRAINS_LIST_SECONDS):
        return False
    paginator = client("ecs").get_paginator("list_container_instances")
    with _cluster_must_exist(cluster):
        listed = {
            arn
            for page in paginator.paginate(cluster=cluster, status="DRAINING")
            for arn in page["containerInstanceArns"]
        }
    drains.update(read_at=now, arns=listed)
    return container_instance_arn in listed


def note_drain(cluster: str, container_instance_arn: str, *, under_way: bool) -> None:
    """What this container learnt of a drain (it recorded one, or found one over), so its
    next task event for the instance needs no listing."""
    arns: set[str] = _drains(cluster)["arns"]
    if under_way:
        arns.add(container_instance_arn)
    else:
        arns.discard(container_instance_arn)


def known_holders(cluster: str, container_instance_arn: str) -> set[str]:
    """The tasks this container last found holding the instance (all told to stop), if any."""
    return set(_drains(cluster).setdefault("holders", {}).get(container_instance_arn, ()))


def note_holders(cluster: str, container_instance_arn: str, task_arns: set[str]) -> None:
    holders: dict[str, set[str]] = _drains(cluster).setdefault("holders", {})
    if task_arns:
        holders[container_instance_arn] = set(task_arns)
    else:
        holders.pop(container_instance_arn, None)


def unstopped_of(cluster: str, task_arns: set[str]) -> set[str]:
    """Which of these tasks ECS does not show STOPPED (DescribeTasks: AWS's current record)."""
    unstopped: set[str] = set()
    with _cluster_must_exist(cluster):
        for chunk in _chunks(sorted(task_arns), DESCRIBE_TASKS_MAX):
            response = client("ecs").describe_tasks(cluster=cluster, tasks=chunk)
            unstopped |= {
                task["taskArn"]
                for task in response.get("tasks", [])
                if task.get("lastStatus") != "STOPPED"
            }
    return unstopped


def draining_instances(cluster: str) -> list[ContainerInstanceView]:
    """The cluster's DRAINING container instances, described (records and all): one
    ListContainerInstances page and one DescribeContainerInstances per 100 of them."""
    paginator = client("ecs").get_paginator("list_container_instances")
    with _cluster_must_exist(cluster):
        arns = [
            arn
            for page in paginator.paginate(cluster=cluster, status="DRAINING")
            for arn in page["containerInstanceArns"]
        ]
    return _describe_instances(cluster, arns) if arns else []
