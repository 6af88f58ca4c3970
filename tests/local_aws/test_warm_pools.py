"""Warm pools against the user guide ("Warm pools for Amazon EC2 Auto Scaling", "Use lifecycle
hooks with a warm pool in Auto Scaling group", "Warm pool example events and patterns") and the
API reference (PutWarmPool, DescribeWarmPool, DeleteWarmPool, TerminateInstanceInAutoScalingGroup).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_aws import autoscaling, warm_pools
from local_aws.builders import lifecycle_states, make_group
from local_aws.clock import VirtualClock

pytestmark = pytest.mark.usefixtures("aws")

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


def _ec2_state(instance_id: str) -> str:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def _pool(asg: Any) -> dict[str, str]:
    answer = asg.describe_warm_pool(AutoScalingGroupName="g")
    return {i["InstanceId"]: i["LifecycleState"] for i in answer["Instances"]}


def _group(asg: Any) -> dict[str, Any]:
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"][0]


def _launch_hook(asg: Any) -> None:
    asg.put_lifecycle_hook(
        AutoScalingGroupName="g",
        LifecycleHookName="boot",
        LifecycleTransition=LAUNCHING,
        HeartbeatTimeout=300,
        DefaultResult="CONTINUE",
    )


def _complete(asg: Any, instance_id: str, hook: str, result: str = "CONTINUE") -> None:
    asg.complete_lifecycle_action(
        AutoScalingGroupName="g",
        LifecycleHookName=hook,
        InstanceId=instance_id,
        LifecycleActionResult=result,
    )


def _events_for(instance_id: str) -> list[dict]:
    return [e for e in autoscaling.emitted_events() if e["detail"]["EC2InstanceId"] == instance_id]


def test_pool_fills_to_max_size_minus_desired_and_is_stopped() -> None:
    asg = make_group(size=2, hooks=())  # MaxSize 10
    asg.put_warm_pool(AutoScalingGroupName="g")
    pool = _pool(asg)
    assert len(pool) == 8
    assert set(pool.values()) == {"Warmed:Stopped"}
    assert {_ec2_state(i) for i in pool} == {"stopped"}
    group = _group(asg)
    assert group["WarmPoolSize"] == 8
    assert group["WarmPoolConfiguration"]["PoolState"] == "Stopped"
    assert len(group["Instances"]) == 2  # pooled instances are not the group's
    assert {**lifecycle_states(asg)} == {
        **{i["InstanceId"]: "InService" for i in group["Instances"]},
        **pool,
    }  # DescribeAutoScalingInstances lists both
    assert warm_pools.pooled_instances("g") == pool
    launches = [
        a["Description"]
        for a in asg.describe_scaling_activities(AutoScalingGroupName="g")["Activities"]
    ]
    assert sum(d.startswith("Launching a new EC2 instance into warm pool: ") for d in launches) == 8


@pytest.mark.parametrize(
    ("min_size", "max_prepared", "expected"),
    [(0, 5, 3), (4, 5, 4), (1, 2, 1), (0, -1, 8)],
)
def test_pool_size_from_min_size_and_max_prepared_capacity(
    min_size: int, max_prepared: int, expected: int
) -> None:
    asg = make_group(size=2, hooks=())
    asg.put_warm_pool(
        AutoScalingGroupName="g", MinSize=min_size, MaxGroupPreparedCapacity=max_prepared
    )
    assert len(_pool(asg)) == expected


@pytest.mark.parametrize(("pool_state", "ec2"), [("Running", "running"), ("Hibernated", "stopped")])
def test_pool_state(pool_state: str, ec2: str) -> None:
    asg = make_group(size=1, hooks=())
    asg.put_warm_pool(AutoScalingGroupName="g", PoolState=pool_state, MaxGroupPreparedCapacity=2)
    [(iid, state)] = _pool(asg).items()
    assert state == f"Warmed:{pool_state}" and _ec2_state(iid) == ec2


def test_launching_hook_holds_instances_entering_the_pool() -> None:
    asg = make_group(size=1, hooks=())
    _launch_hook(asg)
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=2)
    [(iid, state)] = _pool(asg).items()
    assert state == "Warmed:Pending:Wait"
    [event] = _events_for(iid)
    assert event["detail-type"] == "EC2 Instance-launch Lifecycle Action"
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == ("EC2", "WarmPool")
    _complete(asg, iid, "boot")
    assert _pool(asg) == {iid: "Warmed:Stopped"}


def test_scale_out_takes_pooled_instances_first_then_launches() -> None:
    asg = make_group(size=1, hooks=())
    asg.put_warm_pool(AutoScalingGroupName="g", MinSize=1, MaxGroupPreparedCapacity=2)
    [pooled] = _pool(asg)
    seen: list[Any] = []
    autoscaling.subscribe(lambda kind, p: seen.append(p) if kind == "in_service" else None)
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=3)
    states = lifecycle_states(asg)
    assert states[pooled] == "InService" and _ec2_state(pooled) == "running"
    assert sorted(p.origin for p in seen) == ["EC2", "WarmPool"]
    assert next(p for p in seen if p.origin == "WarmPool").instance_id == pooled
    # MinSize keeps one instance in the pool: a new one is launched into it.
    assert list(_pool(asg).values()) == ["Warmed:Stopped"]
    descriptions = [
        a["Description"]
        for a in asg.describe_scaling_activities(AutoScalingGroupName="g")["Activities"]
    ]
    assert f"Launching a new EC2 instance from warm pool: {pooled}" in descriptions


def test_leaving_the_pool_with_a_launching_hook_waits_in_pending_wait() -> None:
    asg = make_group(size=1, hooks=())
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=2)
    [pooled] = _pool(asg)
    _launch_hook(asg)
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=2)
    assert lifecycle_states(asg)[pooled] == "Pending:Wait"
    [event] = _events_for(pooled)
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == (
        "WarmPool",
        "AutoScalingGroup",
    )
    _complete(asg, pooled, "boot")
    assert lifecycle_states(asg)[pooled] == "InService"


def test_scale_in_terminates_and_the_pool_gets_a_new_instance() -> None:
    asg = make_group(size=2)  # termination hook "drain"
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=2)
    assert _pool(asg) == {}
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=1)
    [victim] = [i for i, s in lifecycle_states(asg).items() if s == "Terminating:Wait"]
    assert list(_pool(asg).values()) == ["Warmed:Stopped"]
    [event] = _events_for(victim)
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == (
        "AutoScalingGroup",
        "EC2",
    )


def test_reuse_on_scale_in_returns_through_warmed_pending_wait(clock: VirtualClock) -> None:
    asg = make_group(size=2)  # termination hook "drain", heartbeat 60 s
    asg.put_warm_pool(
        AutoScalingGroupName="g",
        MaxGroupPreparedCapacity=2,
        InstanceReusePolicy={"ReuseOnScaleIn": True},
    )
    assert _group(asg)["WarmPoolConfiguration"]["InstanceReusePolicy"] == {"ReuseOnScaleIn": True}
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=1)
    [victim] = [i for i, s in lifecycle_states(asg).items() if s == "Warmed:Pending:Wait"]
    assert victim in _pool(asg)
    [event] = _events_for(victim)
    assert event["detail-type"] == "EC2 Instance-terminate Lifecycle Action"
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == (
        "AutoScalingGroup",
        "WarmPool",
    )
    clock.advance(30)
    asg.record_lifecycle_action_heartbeat(
        AutoScalingGroupName="g", LifecycleHookName="drain", InstanceId=victim
    )
    _complete(asg, victim, "drain")
    assert _pool(asg) == {victim: "Warmed:Stopped"}
    assert _ec2_state(victim) == "stopped"


def test_reuse_on_scale_in_times_out_into_the_pool(clock: VirtualClock) -> None:
    asg = make_group(size=2)
    asg.put_warm_pool(
        AutoScalingGroupName="g",
        MaxGroupPreparedCapacity=2,
        InstanceReusePolicy={"ReuseOnScaleIn": True},
    )
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=1)
    [victim] = list(_pool(asg))
    clock.advance(60)
    assert _pool(asg) == {victim: "Warmed:Stopped"}
    assert autoscaling.lifecycle_actions(victim)[0].ended_by == "heartbeat_timeout"


def test_pool_shrink_holds_pooled_instance_in_warmed_terminating_wait() -> None:
    asg = make_group(size=1)  # termination hook "drain"
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=3)
    first, second = list(_pool(asg))
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=2)
    assert _pool(asg) == {first: "Warmed:Terminating:Wait", second: "Warmed:Stopped"}
    [event] = _events_for(first)
    assert event["detail-type"] == "EC2 Instance-terminate Lifecycle Action"
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == ("WarmPool", "EC2")
    _complete(asg, first, "drain", result="ABANDON")
    assert _pool(asg) == {second: "Warmed:Stopped"}
    assert _ec2_state(first) == "terminated"
    activity = next(
        a
        for a in asg.describe_scaling_activities(AutoScalingGroupName="g")["Activities"]
        if a["Description"] == f"Terminating EC2 instance: {first}"
    )
    assert activity["StatusCode"] == "Successful"


def test_knobs_for_pooled_terminations() -> None:
    asg = make_group(size=1)
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=4)
    pooled = list(_pool(asg))
    autoscaling.configure(pooled_termination_event=False)
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=3)
    assert _pool(asg)[pooled[0]] == "Warmed:Terminating:Wait"
    assert _events_for(pooled[0]) == []  # held, but nobody is told
    assert autoscaling.dropped_events()[0]["detail"]["EC2InstanceId"] == pooled[0]
    autoscaling.configure(pooled_termination_waits=False)
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=2)
    assert pooled[1] not in _pool(asg) and _ec2_state(pooled[1]) == "terminated"


def test_terminate_instance_on_a_pooled_instance() -> None:
    asg = make_group(size=1)
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=2)
    [pooled] = _pool(asg)
    with pytest.raises(ClientError) as err:
        asg.terminate_instance_in_auto_scaling_group(
            InstanceId=pooled, ShouldDecrementDesiredCapacity=False
        )
    assert err.value.response["Error"]["Code"] == "ValidationError"
    autoscaling.configure(terminate_pooled_instance="allow")
    asg.terminate_instance_in_auto_scaling_group(
        InstanceId=pooled, ShouldDecrementDesiredCapacity=False
    )
    pool = _pool(asg)
    assert pool.pop(pooled) == "Warmed:Terminating:Wait"
    assert list(pool.values()) == ["Warmed:Stopped"]  # the pool launched a replacement


def test_delete_warm_pool_waits_for_hooks_then_goes() -> None:
    asg = make_group(size=1)
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=3)
    first, second = list(_pool(asg))
    asg.delete_warm_pool(AutoScalingGroupName="g")
    answer = asg.describe_warm_pool(AutoScalingGroupName="g")
    assert answer["WarmPoolConfiguration"]["Status"] == "PendingDelete"
    assert set(_pool(asg).values()) == {"Warmed:Terminating:Wait"}
    _complete(asg, first, "drain")
    assert asg.describe_warm_pool(AutoScalingGroupName="g")["WarmPoolConfiguration"]
    _complete(asg, second, "drain")
    answer = asg.describe_warm_pool(AutoScalingGroupName="g")
    assert "WarmPoolConfiguration" not in answer and answer["Instances"] == []
    assert "WarmPoolConfiguration" not in _group(asg)


def test_force_delete_warm_pool_terminates_at_once() -> None:
    asg = make_group(size=1)
    asg.put_warm_pool(AutoScalingGroupName="g", MaxGroupPreparedCapacity=3)
    asg.delete_warm_pool(AutoScalingGroupName="g")
    waiting = list(_pool(asg))
    asg.delete_warm_pool(AutoScalingGroupName="g", ForceDelete=True)
    assert _pool(asg) == {}
    assert {_ec2_state(i) for i in waiting} == {"terminated"}
    assert {a.ended_by for a in autoscaling.lifecycle_actions() if a.instance_id in waiting} == {
        "warm_pool_deleted"
    }


def test_describe_warm_pool_pages() -> None:
    asg = make_group(size=1, hooks=())
    asg.put_warm_pool(AutoScalingGroupName="g")  # 9 pooled
    first = asg.describe_warm_pool(AutoScalingGroupName="g", MaxRecords=4)
    assert len(first["Instances"]) == 4
    rest = asg.describe_warm_pool(
        AutoScalingGroupName="g", MaxRecords=50, NextToken=first["NextToken"]
    )
    assert len(rest["Instances"]) == 5 and "NextToken" not in rest


def test_put_warm_pool_validation() -> None:
    asg = make_group(size=1, hooks=())
    with pytest.raises(ClientError, match="PoolState"):
        asg.put_warm_pool(AutoScalingGroupName="g", PoolState="Frozen")
    with pytest.raises(ClientError, match="not found"):
        asg.put_warm_pool(AutoScalingGroupName="nope")


def test_raising_max_size_grows_the_pool() -> None:
    asg = make_group(size=1, hooks=())
    asg.put_warm_pool(AutoScalingGroupName="g")
    assert len(_pool(asg)) == 9
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MaxSize=12)
    assert len(_pool(asg)) == 11


def test_min_size_above_the_group_size_raises_desired_capacity_not_counting_the_pool() -> None:
    asg = make_group(size=1, hooks=())
    asg.put_warm_pool(AutoScalingGroupName="g", MinSize=2)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=2)
    group = _group(asg)
    assert group["DesiredCapacity"] == 2 and len(group["Instances"]) == 2
