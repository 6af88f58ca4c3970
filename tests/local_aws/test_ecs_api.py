"""ECS API paging, limits, ClusterNotFoundException and stopped-task retention, against the
ECS API reference (ListTasks, ListContainerInstances, DescribeTasks, DescribeContainerInstances,
DescribeServices, UpdateContainerInstancesState, StopTask, PutAttributes, DeleteAttributes)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.ec2.utils import generate_instance_identity_document

from local_aws.ecs_sim import EcsOptions
from local_aws.sandbox import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=3) as box:
        box.add_cluster("c", instances=3)
        box.register_task_definition("tiny", cpu=8, memory=8)
        box.register_task_definition("web")
        yield box


def _error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def _run(sb: Sandbox, count: int, family: str = "tiny") -> list[str]:
    instances = sb.group_instances("c-asg")
    return [sb.run_standalone("c", family, instances[i % len(instances)]) for i in range(count)]


def _pages(ecs: Any, operation: str, key: str, **kwargs: Any) -> list[list[str]]:
    pages, token = [], None
    while True:
        resp = getattr(ecs, operation)(**kwargs, **({"nextToken": token} if token else {}))
        pages.append(resp[key])
        token = resp.get("nextToken")
        if not token:
            return pages


def _register_many(sb: Sandbox, cluster: str, count: int) -> list[str]:
    ecs = sb.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    ec2 = boto3.resource("ec2", region_name=sb.region)
    instances = ec2.create_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count)
    return [
        ecs.register_container_instance(
            cluster=cluster,
            instanceIdentityDocument=json.dumps(generate_instance_identity_document(instance)),
        )["containerInstance"]["containerInstanceArn"]
        for instance in instances
    ]


# --- ListTasks ------------------------------------------------------------------------------


def test_list_tasks_pages_of_at_most_100_with_next_token(sb: Sandbox) -> None:
    arns = _run(sb, 230)
    ecs = sb.client("ecs")
    pages = _pages(ecs, "list_tasks", "taskArns", cluster="c")
    assert [len(p) for p in pages] == [100, 100, 30]
    assert sorted(a for p in pages for a in p) == sorted(arns)
    small = _pages(ecs, "list_tasks", "taskArns", cluster="c", maxResults=40)
    assert [len(p) for p in small] == [40] * 5 + [30]
    listed = [
        a for p in ecs.get_paginator("list_tasks").paginate(cluster="c") for a in p["taskArns"]
    ]
    assert sorted(listed) == sorted(arns)


@pytest.mark.parametrize("max_results", [0, 101])
def test_list_max_results_outside_1_to_100_is_refused(sb: Sandbox, max_results: int) -> None:
    ecs = sb.client("ecs")
    for call in (
        lambda: ecs.list_tasks(cluster="c", maxResults=max_results),
        lambda: ecs.list_container_instances(cluster="c", maxResults=max_results),
    ):
        assert _error(call)[0] == "InvalidParameterException"


def test_list_tasks_defaults_to_desired_status_running(sb: Sandbox) -> None:
    keep, stop = _run(sb, 2)
    sb.settle()
    ecs = sb.client("ecs")
    ecs.stop_task(cluster="c", task=stop, reason="test")
    described = ecs.describe_tasks(cluster="c", tasks=[stop])["tasks"][0]
    assert (described["desiredStatus"], described["lastStatus"]) == ("STOPPED", "DEACTIVATING")
    # Listed by desired status: gone from the default list while its containers still stop.
    assert ecs.list_tasks(cluster="c")["taskArns"] == [keep]
    assert ecs.list_tasks(cluster="c", desiredStatus="STOPPED")["taskArns"] == [stop]
    # "Amazon ECS never sets the desired status of a task to that value."
    assert ecs.list_tasks(cluster="c", desiredStatus="PENDING")["taskArns"] == []


def test_list_tasks_filters_exactly(sb: Sandbox) -> None:
    sb.add_cluster("abc", instances=1)  # moto listed "c"'s tasks for any cluster name containing c
    other = sb.run_standalone("abc", "tiny", sb.group_instances("abc-asg")[0])
    first, second = sb.group_instances("c-asg")[:2]
    on_first = sb.run_standalone("c", "tiny", first)
    web = sb.run_standalone("c", "web", second)
    sb.create_service("c", "svc", "tiny", 2)
    sb.settle()
    ecs = sb.client("ecs")
    service_tasks = ecs.list_tasks(cluster="c", serviceName="svc")["taskArns"]
    assert len(service_tasks) == 2 and not {on_first, web} & set(service_tasks)
    assert other not in ecs.list_tasks(cluster="c")["taskArns"]
    assert ecs.list_tasks(cluster="abc")["taskArns"] == [other]
    assert ecs.list_tasks(cluster="c", family="web")["taskArns"] == [web]
    first_arn = ecs.list_container_instances(cluster="c", filter=f"ec2InstanceId == {first}")[
        "containerInstanceArns"
    ][0]
    on_first_listed = ecs.list_tasks(cluster="c", containerInstance=first_arn)["taskArns"]
    assert on_first in on_first_listed and web not in on_first_listed
    by_id = ecs.list_tasks(cluster="c", containerInstance=first_arn.split("/")[-1])["taskArns"]
    assert sorted(by_id) == sorted(on_first_listed)
    code, _ = _error(lambda: ecs.list_tasks(cluster="c", serviceName="nope"))
    assert code == "ServiceNotFoundException"


# --- ListContainerInstances -----------------------------------------------------------------


def test_list_container_instances_pages_of_at_most_100(sb: Sandbox) -> None:
    arns = _register_many(sb, "big", 105)
    ecs = sb.client("ecs")
    pages = _pages(ecs, "list_container_instances", "containerInstanceArns", cluster="big")
    assert [len(p) for p in pages] == [100, 5]
    assert sorted(a for p in pages for a in p) == sorted(arns)
    small = _pages(
        ecs, "list_container_instances", "containerInstanceArns", cluster="big", maxResults=10
    )
    assert len(small) == 11 and sorted(a for p in small for a in p) == sorted(arns)
    # The ec2InstanceId filter applies before paging: one page, one instance.
    described = ecs.describe_container_instances(cluster="big", containerInstances=arns[-1:])
    target = described["containerInstances"][0]["ec2InstanceId"]
    resp = ecs.list_container_instances(cluster="big", filter=f"ec2InstanceId == {target}")
    assert resp["containerInstanceArns"] == arns[-1:] and "nextToken" not in resp


# --- Describe* and UpdateContainerInstancesState limits ---------------------------------------


def test_describe_tasks_takes_at_most_100(sb: Sandbox) -> None:
    arns = _run(sb, 101)
    ecs = sb.client("ecs")
    assert len(ecs.describe_tasks(cluster="c", tasks=arns[:100])["tasks"]) == 100
    code, message = _error(lambda: ecs.describe_tasks(cluster="c", tasks=arns))
    assert (code, message) == ("InvalidParameterException", "taskIds can have at most 100 items.")


def test_describe_container_instances_takes_at_most_100(sb: Sandbox) -> None:
    arns = _register_many(sb, "big", 101)
    ecs = sb.client("ecs")
    described = ecs.describe_container_instances(cluster="big", containerInstances=arns[:100])
    assert len(described["containerInstances"]) == 100
    code, message = _error(
        lambda: ecs.describe_container_instances(cluster="big", containerInstances=arns)
    )
    assert (code, message) == (
        "InvalidParameterException",
        "instanceIds can have at most 100 items.",
    )


def test_describe_services_takes_at_most_10(sb: Sandbox) -> None:
    for i in range(11):
        sb.create_service("c", f"s{i}", "tiny", 0)
    ecs = sb.client("ecs")
    names = [f"s{i}" for i in range(11)]
    assert len(ecs.describe_services(cluster="c", services=names[:10])["services"]) == 10
    code, message = _error(lambda: ecs.describe_services(cluster="c", services=names))
    assert (code, message) == (
        "InvalidParameterException",
        "service names can have at most 10 items.",
    )


def test_update_container_instances_state_takes_at_most_10(sb: Sandbox) -> None:
    arns = _register_many(sb, "big", 11)
    ecs = sb.client("ecs")
    code, message = _error(
        lambda: ecs.update_container_instances_state(
            cluster="big", containerInstances=arns, status="DRAINING"
        )
    )
    assert (code, message) == (
        "InvalidParameterException",
        "instanceIds can have at most 10 items.",
    )
    resp = ecs.update_container_instances_state(
        cluster="big", containerInstances=arns[:10], status="DRAINING"
    )
    assert len(resp["containerInstances"]) == 10


def test_describe_tasks_answers_missing_for_unknown_and_other_clusters_tasks(sb: Sandbox) -> None:
    sb.add_cluster("abc", instances=1)
    other = sb.run_standalone("abc", "tiny", sb.group_instances("abc-asg")[0])
    [mine] = _run(sb, 1)
    ecs = sb.client("ecs")
    resp = ecs.describe_tasks(cluster="c", tasks=[mine, other, "0123456789abcdef"])
    assert [t["taskArn"] for t in resp["tasks"]] == [mine]
    assert [f["reason"] for f in resp["failures"]] == ["MISSING", "MISSING"]
    assert resp["failures"][0]["arn"] == other
    assert resp["failures"][1]["arn"].endswith(":task/c/0123456789abcdef")


def test_describe_container_instances_missing_on_a_cluster_with_no_instances(sb: Sandbox) -> None:
    ecs = sb.client("ecs")
    ecs.create_cluster(clusterName="empty")
    resp = ecs.describe_container_instances(cluster="empty", containerInstances=["nope"])
    assert resp["containerInstances"] == []
    assert [f["reason"] for f in resp["failures"]] == ["MISSING"]


# --- ClusterNotFoundException -----------------------------------------------------------------

CALLS: dict[str, Callable[[Any], Any]] = {
    "ListContainerInstances": lambda ecs: ecs.list_container_instances(cluster="nope"),
    "DescribeContainerInstances": lambda ecs: ecs.describe_container_instances(
        cluster="nope", containerInstances=["x"]
    ),
    "ListTasks": lambda ecs: ecs.list_tasks(cluster="nope"),
    "DescribeTasks": lambda ecs: ecs.describe_tasks(cluster="nope", tasks=["x"]),
    "UpdateContainerInstancesState": lambda ecs: ecs.update_container_instances_state(
        cluster="nope", containerInstances=["x"], status="DRAINING"
    ),
    "DescribeServices": lambda ecs: ecs.describe_services(cluster="nope", services=["x"]),
    "StopTask": lambda ecs: ecs.stop_task(cluster="nope", task="x"),
    "PutAttributes": lambda ecs: ecs.put_attributes(
        cluster="nope",
        attributes=[{"name": "a", "targetId": "x", "targetType": "container-instance"}],
    ),
    "DeleteAttributes": lambda ecs: ecs.delete_attributes(
        cluster="nope",
        attributes=[{"name": "a", "targetId": "x", "targetType": "container-instance"}],
    ),
}


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_unknown_cluster_is_cluster_not_found(sb: Sandbox, operation: str) -> None:
    code, _ = _error(lambda: CALLS[operation](sb.client("ecs")))
    assert code == "ClusterNotFoundException"


def test_stop_task_of_an_unknown_task_is_refused(sb: Sandbox) -> None:
    code, message = _error(lambda: sb.client("ecs").stop_task(cluster="c", task="0123abcd"))
    assert (code, message) == ("InvalidParameterException", "The referenced task was not found.")


# --- stopped-task retention -------------------------------------------------------------------


def _stop_and_settle(sb: Sandbox, arn: str) -> datetime:
    """Stop a task; return when it reached STOPPED (DescribeTasks' stoppedAt)."""
    sb.client("ecs").stop_task(cluster="c", task=arn)
    sb.settle()
    task = sb.client("ecs").describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
    return task["stoppedAt"].astimezone(UTC)


@pytest.mark.parametrize("retention", [None, 600.0])
def test_stopped_tasks_stay_visible_for_the_retention_then_go(retention: float | None) -> None:
    options = EcsOptions() if retention is None else EcsOptions(stopped_task_retention=retention)
    expected = 3600.0 if retention is None else retention
    with Sandbox(seed=2, ecs=options) as sb:
        sb.add_cluster("c", instances=1)
        sb.register_task_definition("tiny", cpu=8, memory=8)
        [arn] = _run(sb, 1)
        sb.settle()
        stopped = _stop_and_settle(sb, arn)
        ecs = sb.client("ecs")

        sb.clock.advance_to(stopped + timedelta(seconds=expected - 1))
        sb.settle()
        assert ecs.list_tasks(cluster="c", desiredStatus="STOPPED")["taskArns"] == [arn]
        task = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
        assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", "UserInitiated")

        sb.clock.advance(2)
        assert ecs.list_tasks(cluster="c", desiredStatus="STOPPED")["taskArns"] == []
        resp = ecs.describe_tasks(cluster="c", tasks=[arn])
        assert resp["tasks"] == [] and resp["failures"] == [{"arn": arn, "reason": "MISSING"}]
        code, _ = _error(lambda: ecs.stop_task(cluster="c", task=arn))
        assert code == "InvalidParameterException"
