"""ECS agent connectivity: API reference ContainerInstance.agentConnected ("Only instances
connected to an agent can accept task placement requests") and the developer guide "Amazon ECS
container instance state change events" (several disconnects and reconnects an hour are normal).
What a task does while its agent is away is not documented: the sandbox holds its lastStatus and
applies StopTask / draining (desiredStatus STOPPED at once) only when the agent is back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local_aws.ecs_sim import AgentFlapping, EcsOptions
from local_aws.sandbox import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=6) as box:
        box.add_cluster("c", instances=3)
        for family in ("web", "batch"):
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


def _task(sb: Sandbox, arn: str) -> dict[str, Any]:
    return sb.client("ecs").describe_tasks(cluster="c", tasks=[arn])["tasks"][0]


def _wait(sb: Sandbox, seconds: float) -> None:
    """Let virtual time pass, applying whatever falls due."""
    end = sb.clock.now().timestamp() + seconds
    while (nxt := sb.sim.next_time()) is not None and nxt.timestamp() <= end:
        sb.clock.advance_to(nxt)
        sb.sim.run_due()
    sb.clock.advance(end - sb.clock.now().timestamp())
    sb.sim.run_due()


def test_a_disconnected_instance_shows_it_and_takes_no_placement(sb: Sandbox) -> None:
    away = sb.group_instances("c-asg")[0]
    sb.disconnect_agent(away)
    assert _instance(sb, away)["agentConnected"] is False
    sb.create_service("c", "web", "web", 6)
    sb.settle()
    ecs = sb.client("ecs")
    assert _instance(sb, away)["runningTasksCount"] == 0
    assert len(ecs.list_tasks(cluster="c", serviceName="web")["taskArns"]) == 6
    with pytest.raises(RuntimeError, match="AGENT"):
        sb.run_standalone("c", "batch", away)
    sb.reconnect_agent(away)
    assert _instance(sb, away)["agentConnected"] is True


def test_a_pending_task_stays_pending_until_the_agent_is_back(sb: Sandbox) -> None:
    away = sb.group_instances("c-asg")[0]
    arn = sb.run_standalone("c", "batch", away)
    sb.disconnect_agent(away)
    _wait(sb, 600)
    assert _task(sb, arn)["lastStatus"] == "PENDING"
    sb.reconnect_agent(away)
    back = sb.clock.now()
    sb.sim.run_due()
    task = _task(sb, arn)
    assert task["lastStatus"] == "RUNNING"
    assert task["startedAt"] == back


def test_stop_task_while_disconnected_stops_only_once_the_agent_is_back(sb: Sandbox) -> None:
    away = sb.group_instances("c-asg")[0]
    arn = sb.run_standalone("c", "batch", away)
    sb.settle()
    sb.disconnect_agent(away)
    ecs = sb.client("ecs")
    ecs.stop_task(cluster="c", task=arn, reason="test")
    _wait(sb, 3600)
    task = _task(sb, arn)
    assert (task["desiredStatus"], task["lastStatus"]) == ("STOPPED", "RUNNING")
    assert ecs.list_tasks(cluster="c")["taskArns"] == []  # listed by desiredStatus
    assert _instance(sb, away)["runningTasksCount"] == 0
    sb.reconnect_agent(away)
    sb.sim.run_due()
    assert _task(sb, arn)["lastStatus"] == "DEACTIVATING"
    sb.settle()
    assert _task(sb, arn)["lastStatus"] == "STOPPED"
    assert sb.sim.audit() == []


def test_draining_a_disconnected_instance_replaces_but_stops_after_reconnect(sb: Sandbox) -> None:
    sb.create_service("c", "web", "web", 3, minimum_healthy_percent=100, maximum_percent=200)
    sb.settle()
    away = sb.group_instances("c-asg")[0]
    ecs = sb.client("ecs")
    on_away = ecs.list_tasks(
        cluster="c", containerInstance=_instance(sb, away)["containerInstanceArn"]
    )["taskArns"]
    assert len(on_away) == 1
    sb.disconnect_agent(away)
    ecs.update_container_instances_state(
        cluster="c",
        containerInstances=[_instance(sb, away)["containerInstanceArn"]],
        status="DRAINING",
    )
    sb.settle()
    # The replacement runs elsewhere; the drained task is told to stop but its agent is away.
    running = ecs.list_tasks(cluster="c", serviceName="web")["taskArns"]
    assert len(running) == 3 and on_away[0] not in running
    held = _task(sb, on_away[0])
    assert (held["desiredStatus"], held["lastStatus"]) == ("STOPPED", "RUNNING")
    sb.reconnect_agent(away)
    sb.settle()
    assert _task(sb, on_away[0])["lastStatus"] == "STOPPED"


def _flaps(seed: int, hours: float, per_hour: float = 6.0) -> tuple[list[tuple[str, str]], float]:
    options = EcsOptions(agent_flapping=AgentFlapping(per_hour=per_hour))
    with Sandbox(seed=seed, ecs=options) as sb:
        sb.add_cluster("c", instances=3)
        sb.settle()
        settle_seconds = sb.clock.elapsed()
        _wait(sb, hours * 3600)
        kinds = ("agent_disconnected", "agent_connected")
        # moto's EC2 ids are random: name instances by the order they first flap.
        names: dict[str, str] = {}
        seen = []
        for ev in sb.sim.events:
            if ev.kind in kinds and ev.details.get("by") == "flap":
                name = names.setdefault(ev.details["instance"], f"instance-{len(names)}")
                seen.append((ev.at.isoformat(), f"{ev.kind} {name}"))
        return seen, settle_seconds


def test_flapping_is_seeded_several_an_hour_and_always_reconnects() -> None:
    seen, settle_seconds = _flaps(seed=1, hours=10)
    assert settle_seconds < 60  # settle does not wait for the next outage
    disconnects = [s for s in seen if s[1].startswith("agent_disconnected")]
    assert 120 <= len(disconnects) <= 240  # 3 instances x 6 an hour x 10 hours = 180
    # Every outage ends: per instance, disconnect and reconnect alternate.
    by_instance: dict[str, list[str]] = {}
    for _, what in seen:
        kind, instance = what.split()
        by_instance.setdefault(instance, []).append(kind)
    for kinds in by_instance.values():
        assert kinds[::2] == ["agent_disconnected"] * len(kinds[::2])
        assert kinds[1::2] == ["agent_connected"] * len(kinds[1::2])
    # Seeded: the same seed gives the same outages, another seed others.
    assert _flaps(seed=1, hours=10)[0] == seen
    assert _flaps(seed=2, hours=10)[0] != seen


def test_the_drain_completes_while_agents_flap() -> None:
    options = EcsOptions(agent_flapping=AgentFlapping(per_hour=12, max_outage_seconds=120))
    with Sandbox(seed=8, ecs=options) as sb:
        asg = sb.add_cluster("c", instances=3)
        for family in ("web", "batch"):
            sb.register_task_definition(family)
        sb.create_service("c", "web", "web", 6)
        sb.run_standalone("c", "batch", sb.scale_in_candidates(asg, 1)[0], exits_after=900)
        sb.settle()
        sb.deploy()
        sb.scale_in(asg, 2)
        report = sb.run()
        assert report.all_completed and report.lost_tasks == []
        assert any(ev.kind == "agent_disconnected" for ev in sb.sim.events)
