"""The sandbox's lifecycle hooks against the EC2 Auto Scaling user guide and API reference."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from local_aws import autoscaling
from local_aws.builders import lifecycle_states, make_group
from local_aws.clock import VirtualClock

pytestmark = pytest.mark.usefixtures("aws")


def _ec2_state(instance_id: str) -> str:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def test_begin_termination_holds_instance_and_returns_event() -> None:
    asg = make_group(metadata='{"cluster": "c1"}')
    event = autoscaling.begin_termination("g")
    detail = event["detail"]
    assert event["source"] == "aws.autoscaling"
    assert event["detail-type"] == "EC2 Instance-terminate Lifecycle Action"
    assert detail["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert detail["AutoScalingGroupName"] == "g"
    assert detail["LifecycleHookName"] == "drain"
    assert detail["NotificationMetadata"] == '{"cluster": "c1"}'
    assert detail["LifecycleActionToken"]
    assert lifecycle_states(asg)[detail["EC2InstanceId"]] == "Terminating:Wait"
    assert _ec2_state(detail["EC2InstanceId"]) == "running"
    assert autoscaling.emitted_events() == [event]


def test_put_hook_keeps_metadata_and_global_timeout() -> None:
    asg = make_group(heartbeat=300, metadata="m")
    hook = asg.describe_lifecycle_hooks(AutoScalingGroupName="g")["LifecycleHooks"][0]
    assert hook["NotificationMetadata"] == "m"
    assert hook["GlobalTimeout"] == 30000  # 100 x heartbeat, under the 48 h cap


def test_heartbeat_timeout_out_of_range_is_rejected() -> None:
    with pytest.raises(ClientError, match="HeartbeatTimeout"):
        make_group(heartbeat=10)


@pytest.mark.parametrize("by", ["token", "instance"])
@pytest.mark.parametrize("result", ["CONTINUE", "ABANDON"])
def test_complete_terminates_instance(by: str, result: str) -> None:
    asg = make_group()
    detail = autoscaling.begin_termination("g")["detail"]
    iid, token = detail["EC2InstanceId"], detail["LifecycleActionToken"]
    ref = {"LifecycleActionToken": token} if by == "token" else {"InstanceId": iid}
    asg.complete_lifecycle_action(
        AutoScalingGroupName="g", LifecycleHookName="drain", LifecycleActionResult=result, **ref
    )
    assert iid not in lifecycle_states(asg)
    assert _ec2_state(iid) == "terminated"
    action = autoscaling.lifecycle_actions(iid)[0]
    assert (action.result, action.ended_by) == (result, "complete")
    group = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 2
    assert len(group["Instances"]) == 2  # no replacement after a decrementing termination


def test_calls_after_the_action_ended_fail_with_validation_error() -> None:
    asg = make_group()
    detail = autoscaling.begin_termination("g")["detail"]
    iid, token = detail["EC2InstanceId"], detail["LifecycleActionToken"]
    common = {"AutoScalingGroupName": "g", "LifecycleHookName": "drain"}
    asg.complete_lifecycle_action(InstanceId=iid, LifecycleActionResult="CONTINUE", **common)
    with pytest.raises(ClientError) as err:
        asg.complete_lifecycle_action(InstanceId=iid, LifecycleActionResult="CONTINUE", **common)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["Error"]["Message"] == (
        f"No active Lifecycle Action found with instance ID {iid}"
    )
    with pytest.raises(ClientError, match=f"No active Lifecycle Action found with token {token}"):
        asg.record_lifecycle_action_heartbeat(LifecycleActionToken=token, **common)
    with pytest.raises(ClientError, match="No active Lifecycle Action found with instance ID"):
        asg.record_lifecycle_action_heartbeat(InstanceId=iid, **common)


def test_invalid_result_is_rejected() -> None:
    asg = make_group()
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    with pytest.raises(ClientError, match="ValidationError"):
        asg.complete_lifecycle_action(
            AutoScalingGroupName="g",
            LifecycleHookName="drain",
            InstanceId=iid,
            LifecycleActionResult="MAYBE",
        )


def test_heartbeat_restarts_heartbeat_timer(clock: VirtualClock) -> None:
    asg = make_group(heartbeat=60)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    for _ in range(5):
        clock.advance(50)
        asg.record_lifecycle_action_heartbeat(
            AutoScalingGroupName="g", LifecycleHookName="drain", InstanceId=iid
        )
    assert lifecycle_states(asg)[iid] == "Terminating:Wait"
    assert autoscaling.active_action(iid).heartbeats == 5
    clock.advance(61)
    assert iid not in lifecycle_states(asg)  # timers are checked on describe
    action = autoscaling.lifecycle_actions(iid)[0]
    assert (action.result, action.ended_by) == ("CONTINUE", "heartbeat_timeout")


def test_heartbeat_timeout_applies_default_result(clock: VirtualClock) -> None:
    make_group(heartbeat=30, default_result="ABANDON")
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    clock.advance(29)
    assert autoscaling.expire_due() == []
    clock.advance(1)
    [action] = autoscaling.expire_due()
    assert (action.instance_id, action.result, action.ended_by) == (
        iid,
        "ABANDON",
        "heartbeat_timeout",
    )
    assert _ec2_state(iid) == "terminated"


def test_global_timeout_is_not_restarted_by_heartbeats(clock: VirtualClock) -> None:
    asg = make_group(heartbeat=30)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    beats = 0
    while autoscaling.active_action(iid) is not None:
        clock.advance(20)
        try:
            asg.record_lifecycle_action_heartbeat(
                AutoScalingGroupName="g", LifecycleHookName="drain", InstanceId=iid
            )
            beats += 1
        except ClientError:
            break
    action = autoscaling.lifecycle_actions(iid)[0]
    assert action.ended_by == "global_timeout"
    assert (action.ended_at - action.started_at).total_seconds() == 3000  # 100 x 30 s
    assert beats == 149


def test_global_timeout_is_capped_at_48_hours(clock: VirtualClock) -> None:
    make_group(heartbeat=7200)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    action = autoscaling.active_action(iid)
    assert (action.global_deadline - action.started_at).total_seconds() == 48 * 3600


def test_scale_in_holds_instances_and_emits_one_event_each() -> None:
    asg = make_group(size=4)
    seen: list[tuple[str, object]] = []
    autoscaling.subscribe(lambda kind, payload: seen.append((kind, payload)))
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=2)
    states = lifecycle_states(asg)
    waiting = sorted(i for i, s in states.items() if s == "Terminating:Wait")
    assert len(waiting) == 2
    assert sorted(p["detail"]["EC2InstanceId"] for k, p in seen if k == "event") == waiting
    tokens = {p["detail"]["LifecycleActionToken"] for k, p in seen if k == "event"}
    assert len(tokens) == 2
    # Capacity stays at the new desired count: no replacement is launched for held instances.
    group = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 2
    assert sum(1 for s in states.values() if s == "InService") == 2


def test_scale_in_without_hook_terminates_at_once() -> None:
    asg = make_group(size=3, hooks=())
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=1)
    assert list(lifecycle_states(asg).values()) == ["InService"]
    assert autoscaling.emitted_events() == []


def test_terminate_instance_in_group_with_decrement() -> None:
    asg = make_group(size=2)
    iid = next(iter(lifecycle_states(asg)))
    asg.terminate_instance_in_auto_scaling_group(
        InstanceId=iid, ShouldDecrementDesiredCapacity=True
    )
    assert lifecycle_states(asg)[iid] == "Terminating:Wait"
    assert autoscaling.emitted_events()[0]["detail"]["EC2InstanceId"] == iid
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["DesiredCapacity"] == 1


def test_terminate_instance_without_decrement_launches_replacement() -> None:
    asg = make_group(size=2)
    iid = next(iter(lifecycle_states(asg)))
    asg.terminate_instance_in_auto_scaling_group(
        InstanceId=iid, ShouldDecrementDesiredCapacity=False
    )
    states = lifecycle_states(asg)
    assert states[iid] == "Terminating:Wait"
    assert sum(1 for s in states.values() if s == "InService") == 2


def test_terminate_with_decrement_below_min_size_is_rejected() -> None:
    asg = make_group(size=2, min_size=2)
    iid = next(iter(lifecycle_states(asg)))
    with pytest.raises(ClientError, match="min size"):
        asg.terminate_instance_in_auto_scaling_group(
            InstanceId=iid, ShouldDecrementDesiredCapacity=True
        )


def test_two_hooks_both_must_complete_and_abandon_ends_the_other() -> None:
    asg = make_group(size=2, hooks=("drain", "backup"))
    event = autoscaling.begin_termination("g", hook_name="drain")
    iid = event["detail"]["EC2InstanceId"]
    tokens = {a.hook_name: a.token for a in autoscaling.lifecycle_actions(iid)}
    assert len(set(tokens.values())) == 2
    asg.complete_lifecycle_action(
        AutoScalingGroupName="g",
        LifecycleHookName="drain",
        InstanceId=iid,
        LifecycleActionResult="CONTINUE",
    )
    assert lifecycle_states(asg)[iid] == "Terminating:Wait"  # "backup" still holds it
    event2 = autoscaling.begin_termination("g", hook_name="backup")
    iid2 = event2["detail"]["EC2InstanceId"]
    asg.complete_lifecycle_action(
        AutoScalingGroupName="g",
        LifecycleHookName="drain",
        InstanceId=iid2,
        LifecycleActionResult="ABANDON",
    )
    assert iid2 not in lifecycle_states(asg)
    ended = {a.hook_name: a.ended_by for a in autoscaling.lifecycle_actions(iid2)}
    assert ended == {"drain": "complete", "backup": "abandoned_by_other_hook"}


def test_wrong_hook_or_group_is_a_validation_error() -> None:
    asg = make_group()
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    with pytest.raises(ClientError, match="ValidationError"):
        asg.complete_lifecycle_action(
            AutoScalingGroupName="g",
            LifecycleHookName="other",
            InstanceId=iid,
            LifecycleActionResult="CONTINUE",
        )
    with pytest.raises(ClientError, match="ValidationError"):
        asg.complete_lifecycle_action(
            AutoScalingGroupName="nope",
            LifecycleHookName="drain",
            InstanceId=iid,
            LifecycleActionResult="CONTINUE",
        )


def test_install_is_idempotent() -> None:
    autoscaling.install()
    autoscaling.install()
    asg = make_group()
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    asg.complete_lifecycle_action(
        AutoScalingGroupName="g",
        LifecycleHookName="drain",
        InstanceId=iid,
        LifecycleActionResult="CONTINUE",
    )
    assert iid not in lifecycle_states(asg)
