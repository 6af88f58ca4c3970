"""runningTasksCount and pendingTasksCount, against the API reference (ContainerInstance):
runningTasksCount counts the instance's tasks whose desiredStatus is RUNNING, pendingTasksCount
those whose lastStatus is PENDING; remainingResources give back a task's CPU and memory only
when it reaches STOPPED ("Amazon ECS container instance state change events")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local_aws.sandbox import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=5) as box:
        box.add_cluster("c", instances=3)
        for family in ("web", "agent", "batch"):
            box.register_task_definition(family)
        yield box


def _instance(sb: Sandbox, ec2_instance_id: str) -> dict[str, Any]:
    ecs = sb.client("ecs")
    [arn] = ecs.list_container_instances(cluster="c", filter=f"ec2InstanceId == {ec2_instance_id}")[
        "containerInstanceArns"
    ]
    return ecs.describe_container_instances(cluster="c", containerInstances=[arn])[
        "containerInstances"
    ][0]


def _remaining(ci: dict[str, Any], name: str) -> int:
    return next(r["integerValue"] for r in ci["remainingResources"] if r["name"] == name)


def _counts_match_tasks(sb: Sandbox) -> None:
    """Each listed instance's counts equal what ListTasks / DescribeTasks show of its tasks."""
    ecs = sb.client("ecs")
    arns = ecs.list_container_instances(cluster="c")["containerInstanceArns"]
    for ci in ecs.describe_container_instances(cluster="c", containerInstances=arns)[
        "containerInstances"
    ]:
        listed = {
            desired: ecs.list_tasks(
                cluster="c", containerInstance=ci["containerInstanceArn"], desiredStatus=desired
            )["taskArns"]
            for desired in ("RUNNING", "STOPPED")
        }
        every = listed["RUNNING"] + listed["STOPPED"]
        tasks = ecs.describe_tasks(cluster="c", tasks=every)["tasks"] if every else []
        pending = sum(1 for t in tasks if t["lastStatus"] == "PENDING")
        assert ci["runningTasksCount"] == len(listed["RUNNING"]), ci["ec2InstanceId"]
        assert ci["pendingTasksCount"] == pending, ci["ec2InstanceId"]
    assert sb.sim.audit() == []


def _step_until_quiet(sb: Sandbox) -> int:
    steps = 0
    while True:
        sb.sim.run_due()
        _counts_match_tasks(sb)
        steps += 1
        nxt = sb.sim.next_time(include_exits=False)
        if nxt is None:
            return steps
        sb.clock.advance_to(nxt)


def test_a_pending_task_counts_as_running_and_pending_and_keeps_resources_until_stopped(
    sb: Sandbox,
) -> None:
    victim = sb.group_instances("c-asg")[0]
    idle = _instance(sb, victim)
    cpu = _remaining(idle, "CPU")
    arn = sb.run_standalone("c", "batch", victim)
    placed = _instance(sb, victim)
    # desiredStatus RUNNING and lastStatus PENDING: counted in both.
    assert (placed["runningTasksCount"], placed["pendingTasksCount"]) == (1, 1)
    assert _remaining(placed, "CPU") == cpu - 256
    sb.settle()
    running = _instance(sb, victim)
    assert (running["runningTasksCount"], running["pendingTasksCount"]) == (1, 0)

    sb.client("ecs").stop_task(cluster="c", task=arn)
    stopping = _instance(sb, victim)
    # Told to stop: no longer counted, but its containers still hold the CPU.
    assert (stopping["runningTasksCount"], stopping["pendingTasksCount"]) == (0, 0)
    assert _remaining(stopping, "CPU") == cpu - 256
    sb.settle()
    assert _remaining(_instance(sb, victim), "CPU") == cpu
    assert sb.sim.audit() == []


def test_counts_stay_consistent_through_placement_drain_stop_and_termination(sb: Sandbox) -> None:
    ecs = sb.client("ecs")
    sb.create_service("c", "agent", "agent", daemon=True)
    sb.create_service("c", "web", "web", 6, minimum_healthy_percent=50, maximum_percent=150)
    first, second, third = sb.group_instances("c-asg")
    standalone = sb.run_standalone("c", "batch", first)
    pending = sb.run_standalone("c", "batch", second)
    sb.sim.run_due()
    _counts_match_tasks(sb)
    ecs.stop_task(cluster="c", task=pending)  # a PENDING task stops at once
    _step_until_quiet(sb)

    [first_arn] = ecs.list_container_instances(cluster="c", filter=f"ec2InstanceId == {first}")[
        "containerInstanceArns"
    ]
    ecs.update_container_instances_state(
        cluster="c", containerInstances=[first_arn], status="DRAINING"
    )
    assert _step_until_quiet(sb) > 3
    drained = _instance(sb, first)
    assert drained["runningTasksCount"] == 1  # the standalone task: draining leaves it
    ecs.stop_task(cluster="c", task=standalone)
    _step_until_quiet(sb)
    assert _instance(sb, first)["runningTasksCount"] == 0

    sb.run_standalone("c", "batch", third)
    [third_arn] = ecs.list_container_instances(cluster="c", filter=f"ec2InstanceId == {third}")[
        "containerInstanceArns"
    ]
    sb.sim.instance_terminated(third)  # its tasks are lost: STOPPED, resources released
    _step_until_quiet(sb)
    # INACTIVE now: no longer listed (ListContainerInstances takes no status INACTIVE), still
    # describable by its ARN.
    gone = ecs.describe_container_instances(cluster="c", containerInstances=[third_arn])[
        "containerInstances"
    ][0]
    assert gone["status"] == "INACTIVE"
    assert (gone["runningTasksCount"], gone["pendingTasksCount"]) == (0, 0)
    assert sb.sim.audit() == []
