"""ECS calls the drain needs, each scoped to one container instance (never a cluster scan)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from drain_hook.adapters.clients import client
from drain_hook.logic.decision import TaskKind, TaskView

# ListContainerInstances without a status lists every status but INACTIVE (API reference).
UNLISTED_STATUSES = ("INACTIVE",)
DESCRIBE_TASKS_MAX = 100
DESCRIBE_INSTANCES_MAX = 100
DESCRIBE_SERVICES_MAX = 10


@dataclass(frozen=True)
class ContainerInstance:
    arn: str
    ec2_instance_id: str
    status: str


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _describe_instances(cluster: str, arns: list[str]) -> list[ContainerInstance]:
    found = []
    for chunk in _chunks(arns, DESCRIBE_INSTANCES_MAX):
        response = client("ecs").describe_container_instances(
            cluster=cluster, containerInstances=chunk
        )
        found.extend(
            ContainerInstance(
                arn=item["containerInstanceArn"],
                ec2_instance_id=item.get("ec2InstanceId", ""),
                status=item["status"],
            )
            for item in response.get("containerInstances", [])
        )
    return found


def find_container_instance(cluster: str, ec2_instance_id: str) -> ContainerInstance | None:
    """The container instance of an EC2 instance, or None if it is not registered in the cluster.

    The ec2InstanceId filter keeps this to one small page on real ECS; the describe confirms the
    match, so it stays correct where the filter is ignored (moto). INACTIVE instances are listed
    only when nothing else matched, to say why the instance can't be drained.
    """
    paginator = client("ecs").get_paginator("list_container_instances")
    query = f"ec2InstanceId == {ec2_instance_id}"
    for status in (None, *UNLISTED_STATUSES):
        arguments: dict[str, Any] = {"cluster": cluster, "filter": query}
        if status:
            arguments["status"] = status
        arns = [
            arn for page in paginator.paginate(**arguments) for arn in page["containerInstanceArns"]
        ]
        for instance in _describe_instances(cluster, arns) if arns else []:
            if instance.ec2_instance_id == ec2_instance_id:
                return instance
    return None


def describe_container_instance(cluster: str, arn: str) -> ContainerInstance | None:
    found = _describe_instances(cluster, [arn])
    return found[0] if found else None


def set_draining(cluster: str, arn: str) -> str | None:
    """Set DRAINING; return the failure ECS reported for this instance, if any."""
    response = client("ecs").update_container_instances_state(
        cluster=cluster, containerInstances=[arn], status="DRAINING"
    )
    failures = response.get("failures", [])
    if failures:
        failure = failures[0]
        return f"{failure.get('reason', 'unknown')}: {failure.get('detail', '')}".rstrip(": ")
    return None


def list_unstopped_tasks(
    cluster: str, container_instance_arn: str, strategies: dict[str, str]
) -> tuple[tuple[TaskView, ...], dict[str, str]]:
    """Every task on the instance whose lastStatus is not STOPPED, classified by kind.

    Lists both desired statuses: a task already told to stop (desiredStatus STOPPED) still runs
    until its lastStatus is STOPPED. `strategies` caches service name -> REPLICA/DAEMON between
    polls; the updated cache is returned.
    """
    paginator = client("ecs").get_paginator("list_tasks")
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        for page in paginator.paginate(
            cluster=cluster, containerInstance=container_instance_arn, desiredStatus=desired
        ):
            arns.extend(page["taskArns"])
    arns = list(dict.fromkeys(arns))

    described: list[dict[str, Any]] = []
    for chunk in _chunks(arns, DESCRIBE_TASKS_MAX):
        response = client("ecs").describe_tasks(cluster=cluster, tasks=chunk)
        described.extend(response.get("tasks", []))
    unstopped = [
        task
        for task in described
        if task.get("lastStatus") != "STOPPED"
        and task.get("containerInstanceArn", container_instance_arn) == container_instance_arn
    ]

    services = {_service_name(task) for task in unstopped}
    unknown = sorted(name for name in services if name and name not in strategies)
    strategies = {**strategies, **_scheduling_strategies(cluster, unknown)}
    views = tuple(
        TaskView(
            arn=task["taskArn"],
            kind=_kind(_service_name(task), strategies),
            last_status=task.get("lastStatus", "UNKNOWN"),
            desired_status=task.get("desiredStatus", "UNKNOWN"),
        )
        for task in unstopped
    )
    return views, strategies


def _service_name(task: dict[str, Any]) -> str | None:
    group = task.get("group") or ""
    return group.split(":", 1)[1] if group.startswith("service:") else None


def _kind(service: str | None, strategies: dict[str, str]) -> TaskKind:
    if service is None:
        return "standalone"
    return "daemon" if strategies.get(service) == "DAEMON" else "service"


def _scheduling_strategies(cluster: str, services: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(services, DESCRIBE_SERVICES_MAX):
        response = client("ecs").describe_services(cluster=cluster, services=chunk)
        for service in response.get("services", []):
            found[service["serviceName"]] = service.get("schedulingStrategy", "REPLICA")
    # A service ECS no longer knows counts as a replica service: its tasks still hold the instance.
    return {name: found.get(name, "REPLICA") for name in services}


def stop_tasks(cluster: str, arns: Iterable[str], reason: str) -> list[str]:
    """Stop each task; return the ARNs ECS accepted (a task that is already gone is skipped)."""
    stopped = []
    ecs = client("ecs")
    for arn in arns:
        try:
            ecs.stop_task(cluster=cluster, task=arn, reason=reason[:255])
        except ecs.exceptions.InvalidParameterException:
            continue
        stopped.append(arn)
    return stopped
