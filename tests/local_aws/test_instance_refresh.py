"""Instance refresh (EC2 Auto Scaling user guide, "How an instance refresh works", "Instance
maintenance policies"): batches by MinHealthyPercentage, terminations through the lifecycle hooks,
replacements launched as they begin, the next batch after the warmup; UNCONFIRMED knob
`wait_for_terminations`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from local_aws import autoscaling, instance_refresh
from local_aws.sandbox import Sandbox


def _group(sb: Sandbox, size: int = 4) -> str:
    asg = sb.add_cluster("c1", instances=size, heartbeat_timeout=120)
    return asg


def _refresh(sb: Sandbox, asg: str) -> dict:
    found = sb.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=asg)
    return found["InstanceRefreshes"][0]


def _run(sb: Sandbox, asg: str, limit: int = 3600) -> None:
    end = sb.clock.now() + timedelta(seconds=limit)
    while sb.clock.now() < end and _refresh(sb, asg)["Status"] == "InProgress":
        sb.advance(sb.clock.now() + timedelta(seconds=5))


def test_batches_follow_min_healthy_and_every_old_instance_is_replaced(
    sandbox: Callable[..., Sandbox],
) -> None:
    sb = sandbox(seed=1)
    asg = _group(sb)
    old = set(sb.group_instances(asg))
    client = sb.client("autoscaling")
    refresh_id = client.start_instance_refresh(
        AutoScalingGroupName=asg, Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 30}
    )["InstanceRefreshId"]
    sb.advance(sb.clock.now() + timedelta(seconds=1))
    held = [a.instance_id for a in autoscaling.lifecycle_actions() if a.active]
    assert len(held) == 2  # 4 instances at 50%: two at a time, held by the termination hook
    assert len(sb.group_instances(asg)) == 4  # replacements launched as the batch began
    with pytest.raises(ClientError, match="InstanceRefreshInProgress"):
        client.start_instance_refresh(AutoScalingGroupName=asg)
    _run(sb, asg)
    refresh = _refresh(sb, asg)
    assert refresh["InstanceRefreshId"] == refresh_id
    assert (refresh["Status"], refresh["PercentageComplete"], refresh["InstancesToUpdate"]) == (
        "Successful",
        100,
        0,
    )
    assert not old & set(sb.group_instances(asg))
    assert {a.ended_by for a in autoscaling.lifecycle_actions()} == {"heartbeat_timeout"}


@pytest.mark.parametrize("wait", [True, False])
def test_the_next_batch_waits_for_held_terminations_only_with_the_knob(
    sandbox: Callable[..., Sandbox], wait: bool
) -> None:
    sb = sandbox(seed=1)
    asg = _group(sb, size=2)
    instance_refresh.configure(wait_for_terminations=wait)
    sb.client("autoscaling").start_instance_refresh(
        AutoScalingGroupName=asg, Preferences={"MinHealthyPercentage": 100, "InstanceWarmup": 10}
    )
    sb.advance(sb.clock.now() + timedelta(seconds=1))
    [first] = [a.instance_id for a in autoscaling.lifecycle_actions() if a.active]
    sb.advance(sb.clock.now() + timedelta(seconds=60))  # the warmup is over, the hook still holds
    active = [a.instance_id for a in autoscaling.lifecycle_actions() if a.active]
    if wait:
        assert active == [first]
    else:
        assert len(active) == 2 and first in active


def test_cancel_and_defaults(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(seed=1)
    asg = _group(sb, size=2)
    client = sb.client("autoscaling")
    with pytest.raises(ClientError, match="ActiveInstanceRefreshNotFound"):
        client.cancel_instance_refresh(AutoScalingGroupName=asg)
    client.start_instance_refresh(AutoScalingGroupName=asg)
    refresh = _refresh(sb, asg)
    assert refresh["Preferences"]["MinHealthyPercentage"] == 90
    client.cancel_instance_refresh(AutoScalingGroupName=asg)
    assert _refresh(sb, asg)["Status"] == "Cancelled"
    with pytest.raises(ClientError, match="MaxHealthyPercentage"):
        client.start_instance_refresh(
            AutoScalingGroupName=asg, Preferences={"MaxHealthyPercentage": 150}
        )
