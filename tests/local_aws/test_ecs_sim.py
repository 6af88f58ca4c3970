"""The ECS scheduler simulation against the UpdateContainerInstancesState API reference."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from local_aws.sandbox import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=4) as box:
        box.add_cluster("c", instances=3)
        for family in ("web", "agent", "batch"):
            box.register_task_definition(family)
        yield box


def _tasks(sb: Sandbox, service: str | None = None) -> list:
    tasks = list(sb.sim.backend.tasks.get("c", {}).values())
    return [t for t in tasks if service is None or t.group == f"service:{service}"]


def _drain(sb: Sandbox, instance_id: str) -> None:
    ecs = sb.client("ecs")
    for arn in ecs.list_container_instances(cluster="c")["containerInstanceArns"]:
        ci = ecs.describe_container_instances(cluster="c", containerInstances=[arn])
        if ci["containerInstances"][0]["ec2InstanceId"] == instance_id:
            ecs.update_container_instances_state(
                cluster="c", containerInstances=[arn], status="DRAINING"
            )


def _advance_until_quiet(sb: Sandbox, check: callable | None = None) -> None:  # type: ignore[valid-type]
    while True:
        sb.sim.run_due()
        if check is not None:
            check()
        nxt = sb.sim.next_time(include_exits=False)
        if nxt is None:
            return
        sb.clock.advance_to(nxt)


def test_service_keeps_desired_count_spread_over_active_instances(sb: Sandbox) -> None:
    sb.create_service("c", "web", "web", 6)
    sb.settle()
    running = [t for t in _tasks(sb, "web") if t.last_status == "RUNNING"]
    assert len(running) == 6
    per_instance = {t.container_instance_arn for t in running}
    assert len(per_instance) == 3
    svc = sb.client("ecs").describe_services(cluster="c", services=["web"])["services"][0]
    assert svc["runningCount"] == 6
    assert svc["deploymentConfiguration"]["minimumHealthyPercent"] == 100


@pytest.mark.parametrize(("min_pct", "max_pct"), [(100, 200), (50, 100), (50, 150)])
def test_draining_replaces_within_deployment_configuration(
    sb: Sandbox, min_pct: int, max_pct: int
) -> None:
    sb.create_service(
        "c", "web", "web", 6, minimum_healthy_percent=min_pct, maximum_percent=max_pct
    )
    sb.settle()
    victim = sb.group_instances("c-asg")[0]
    victim_arn = next(
        ci.container_instance_arn
        for ci in sb.sim.backend.container_instances["c"].values()
        if ci.ec2_instance_id == victim
    )

    def check() -> None:
        tasks = _tasks(sb, "web")
        alive = sum(1 for t in tasks if t.last_status != "STOPPED")
        healthy = sum(
            1 for t in tasks if t.last_status == "RUNNING" and t.desired_status == "RUNNING"
        )
        assert alive <= math.floor(6 * max_pct / 100)
        assert healthy >= math.ceil(6 * min_pct / 100)

    _drain(sb, victim)
    _advance_until_quiet(sb, check)
    tasks = _tasks(sb, "web")
    assert sum(1 for t in tasks if t.last_status == "RUNNING") == 6
    assert all(t.last_status == "STOPPED" for t in tasks if t.container_instance_arn == victim_arn)


def test_pending_service_tasks_stop_at_once_standalone_untouched(sb: Sandbox) -> None:
    victim = sb.group_instances("c-asg")[0]
    standalone = sb.run_standalone("c", "batch", victim)
    sb.create_service("c", "web", "web", 6)
    sb.sim.run_due()  # placed, still PENDING
    on_victim = [t for t in _tasks(sb, "web") if sb.sim._instance_of(t).ec2_instance_id == victim]
    assert on_victim and all(t.last_status == "PENDING" for t in on_victim)
    _drain(sb, victim)
    sb.sim.run_due()
    assert all(t.last_status == "STOPPED" for t in on_victim)
    _advance_until_quiet(sb)
    task = sb.sim.backend.tasks["c"][standalone]
    assert (task.last_status, task.desired_status) == ("RUNNING", "RUNNING")


def test_daemon_tasks_stop_after_replica_tasks(sb: Sandbox) -> None:
    sb.create_service("c", "agent", "agent", daemon=True)
    sb.create_service("c", "web", "web", 3)
    sb.settle()
    victim = sb.group_instances("c-asg")[0]
    order: list[str] = []
    sb.sim.listeners.append(
        lambda ev: order.append(ev.details["service"]) if ev.kind == "task_stopped" else None
    )
    _drain(sb, victim)
    _advance_until_quiet(sb)
    assert order and order[-1] == "agent" and "web" in order
    assert order.count("agent") == 1  # daemon tasks are not replaced elsewhere


def test_stop_task_walks_through_stopping_states(sb: Sandbox) -> None:
    victim = sb.group_instances("c-asg")[0]
    arn = sb.run_standalone("c", "batch", victim)
    sb.settle()
    ecs = sb.client("ecs")
    ecs.stop_task(cluster="c", task=arn, reason="test")
    seen = [ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["lastStatus"]]
    while (nxt := sb.sim.next_time()) is not None:
        sb.clock.advance_to(nxt)
        sb.sim.run_due()
        seen.append(ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["lastStatus"])
    assert seen[0] == "DEACTIVATING" and seen[-1] == "STOPPED" and "STOPPING" in seen
    assert ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]["desiredStatus"] == "STOPPED"


def test_terminated_instance_loses_its_tasks(sb: Sandbox) -> None:
    victim = sb.group_instances("c-asg")[0]
    arn = sb.run_standalone("c", "batch", victim)
    sb.settle()
    assert sb.sim.instance_terminated(victim) == [arn]
    assert sb.sim.lost_tasks == [arn]
