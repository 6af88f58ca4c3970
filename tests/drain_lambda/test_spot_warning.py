"""Spot interruption warnings on the real code path against moto (and local_aws's Spot requests
and lifecycle actions): what is checked against AWS, what is written, and how the termination
round that follows keeps to the two minutes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from drain_hook import contract
from drain_hook.errors import InputRejected
from local_aws.spot import SpotMarket, SpotOptions
from local_aws.timers import Timers
from tests.conftest import REGION
from tests.drain_lambda.conftest import HOOK, World, begin_termination, wait_as_the_loop_does

CLUSTER = "spot-cluster"
GROUP = "spot-asg"


def warning(instance_id: str, action: str = "terminate") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": contract.SPOT_DETAIL_TYPE,
        "source": contract.SPOT_SOURCE,
        "account": "123456789012",
        "time": "2025-01-06T09:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:123456789012:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "instance-action": action},
    }


@pytest.fixture
def spot_world(world: World, lambda_env) -> tuple[World, SpotMarket, list[str], list[str]]:
    """A hooked group of two registered instances, one of them a Spot instance; EC2's market."""
    lambda_env(
        HOOKED_GROUPS=json.dumps([GROUP]),
        HOOK_NAME=HOOK,
        DEADLINE_STOP_GRACE_SECONDS="45",
        AT_DEADLINE="stop_tasks",
    )
    world.cluster(CLUSTER)
    instances = world.group(GROUP, 2, cluster=CLUSTER, heartbeat=1200)
    arns = [world.register(CLUSTER, i) for i in instances]
    market = SpotMarket(
        clock=world.clock,
        timers=Timers(world.clock),
        put_event=lambda _event: None,
        terminate=lambda _iid: None,
        begin_group_termination=lambda _iid: None,
        region=REGION,
        account_id="123456789012",
        options=SpotOptions(mark_request=True),  # EC2 confirms the notice (the unmarked: below)
    )
    market.make_spot(instances[0])
    return world, market, instances, arns


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _record(world: World, arn: str) -> str | None:
    described = world.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])
    attributes = described["containerInstances"][0].get("attributes", [])
    return next((a.get("value") for a in attributes if a["name"] == contract.DRAIN_ATTRIBUTE), None)


def test_a_warning_for_a_hooked_spot_instance_drains_it_at_once(spot_world, handler) -> None:
    world, market, instances, arns = spot_world
    notice = market.interrupt(instances[0])
    world.calls.clear()
    result = handler(warning(instances[0]))
    assert result["action"] == "spot_draining"
    assert world.instance_status(CLUSTER, arns[0]) == "DRAINING"
    # The interruption's time as EC2 records it (the request's UpdateTime + 2 min).
    value = _record(world, arns[0])
    assert value is not None and value.endswith(f"spot@{int(notice.interrupt_at.timestamp())}")
    assert "ec2:DescribeSpotInstanceRequests" in world.calls
    assert world.writes() == ["ecs:UpdateContainerInstancesState", "ecs:PutAttributes"]
    # No lifecycle action yet: nothing completed, no loop.
    assert world.executions() == [] and world.lifecycle_state(instances[0]) == "InService"


def test_a_warning_ec2_does_not_confirm_writes_nothing(spot_world, handler) -> None:
    world, _market, instances, arns = spot_world
    world.calls.clear()
    # A made-up warning: EC2 shows the request fulfilled, not marked.
    result = handler(warning(instances[0]))
    assert result["action"] == "ignored" and "no pending interruption" in result["reason"]
    assert world.writes() == []
    assert world.instance_status(CLUSTER, arns[0]) == "ACTIVE"


def test_a_warning_for_an_instance_we_do_not_hook_writes_nothing(spot_world, handler) -> None:
    world, _market, _instances, _arns = spot_world
    [other] = world.group("other-asg", 1)
    world.calls.clear()
    for instance_id in (other, "i-0123456789abcdef0"):
        result = handler(warning(instance_id))
        assert result["action"] == "ignored"
    assert world.writes() == []
    assert "ec2:DescribeSpotInstanceRequests" not in world.calls


@pytest.mark.parametrize(
    "detail",
    [
        {"instance-id": "i-xyz", "instance-action": "terminate"},
        {"instance-id": "i-0123456789abcdef0", "instance-action": "reboot"},
        {"instance-id": "i-0123456789abcdef0"},
        "terminate",
    ],
)
def test_a_bad_warning_is_rejected_before_any_call(spot_world, handler, detail) -> None:
    world, *_ = spot_world
    event = warning("i-0123456789abcdef0")
    event["detail"] = detail
    world.calls.clear()
    with pytest.raises(InputRejected, match="Spot Instance Interruption Warning"):
        handler(event)
    assert world.calls == []


def test_the_termination_round_after_a_warning_stops_and_completes_by_the_interruption(
    spot_world, handler
) -> None:
    world, market, instances, arns = spot_world
    victim = instances[0]
    world.run_tasks(CLUSTER, arns[0], 1, group="family:batch")  # a task that won't stop itself
    notice = market.interrupt(victim)
    handler(warning(victim))
    world.clock.advance(30)
    state = handler(begin_termination(GROUP, victim))  # the group starts its termination
    assert state["action"] == "draining"
    stop_at = notice.interrupt_at - timedelta(seconds=45)
    assert _time(state["deadline_at"]) == stop_at.replace(microsecond=0)
    wait_as_the_loop_does(world, state)
    assert world.clock.now() <= stop_at + timedelta(seconds=1)
    world.clock.advance(max(0.0, (stop_at - world.clock.now()).total_seconds()))
    state = handler(state)
    assert state["action"] == "stopping"
    assert "ecs:StopTask" in world.calls  # EC2's interruption was checked first
    assert world.clock.now() + timedelta(seconds=state["wait_seconds"]) <= notice.interrupt_at + (
        timedelta(seconds=1)
    )


def test_a_recorded_interruption_ec2_no_longer_shows_is_dropped_before_any_stop(
    spot_world, handler
) -> None:
    """Someone wrote an early interruption into the record: before the deadline policy acts on
    it, EC2 is asked, and shows none: the settings' deadline applies, nothing is stopped."""
    world, _market, instances, arns = spot_world
    victim = instances[0]
    world.run_tasks(CLUSTER, arns[0], 1, group="family:batch")
    state = handler(begin_termination(GROUP, victim))
    assert state["action"] == "draining"
    described = world.ecs.describe_container_instances(
        cluster=CLUSTER, containerInstances=[arns[0]]
    )
    value = next(
        a["value"]
        for a in described["containerInstances"][0]["attributes"]
        if a["name"] == contract.DRAIN_ATTRIBUTE
    )
    forged = f"{value} spot@{int(world.clock.now().timestamp()) + 60}"
    world.ecs.put_attributes(
        cluster=CLUSTER,
        attributes=[{"name": contract.DRAIN_ATTRIBUTE, "value": forged, "targetId": arns[0]}],
    )
    world.clock.advance(120)
    world.calls.clear()
    state = handler(state)
    assert state["action"] == "draining"
    assert "ec2:DescribeSpotInstanceRequests" in world.calls
    assert "ecs:StopTask" not in world.calls
    assert _time(state["deadline_at"]) > world.clock.now() + timedelta(hours=1)
