"""EC2_INSTANCE_LAUNCHING hooks against the user guide ("Amazon EC2 Auto Scaling lifecycle hooks",
"Complete a lifecycle action") and the group's notifications the sandbox builds on."""

from __future__ import annotations

import pytest

from local_aws import autoscaling
from local_aws.builders import lifecycle_states, make_group
from local_aws.clock import VirtualClock

pytestmark = pytest.mark.usefixtures("aws")

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


def _launch_hook(asg: object, name: str = "boot", default_result: str = "ABANDON") -> None:
    asg.put_lifecycle_hook(  # type: ignore[attr-defined]
        AutoScalingGroupName="g",
        LifecycleHookName=name,
        LifecycleTransition=LAUNCHING,
        HeartbeatTimeout=120,
        DefaultResult=default_result,
    )


def _scale_out(asg: object) -> tuple[str, dict]:
    before = set(lifecycle_states(asg))
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=len(before) + 1)  # type: ignore[attr-defined]
    [new] = set(lifecycle_states(asg)) - before
    [event] = [e for e in autoscaling.emitted_events() if e["detail"]["EC2InstanceId"] == new]
    return new, event


def test_launch_waits_in_pending_wait_with_a_launch_event() -> None:
    asg = make_group(size=1, hooks=())
    _launch_hook(asg)
    new, event = _scale_out(asg)
    assert lifecycle_states(asg)[new] == "Pending:Wait"
    assert event["detail-type"] == "EC2 Instance-launch Lifecycle Action"
    detail = event["detail"]
    assert detail["LifecycleTransition"] == LAUNCHING
    assert (detail["Origin"], detail["Destination"]) == ("EC2", "AutoScalingGroup")
    activity = asg.describe_scaling_activities(AutoScalingGroupName="g")["Activities"][0]
    assert activity["Description"] == f"Launching a new EC2 instance: {new}"
    assert activity["StatusCode"] == "MidLifecycleAction"


def test_continue_puts_it_in_service_and_tells_subscribers() -> None:
    asg = make_group(size=1, hooks=())
    _launch_hook(asg)
    seen: list[tuple[str, object]] = []
    autoscaling.subscribe(lambda kind, payload: seen.append((kind, payload)))
    new, _ = _scale_out(asg)
    assert not [p for k, p in seen if k == "in_service"]  # not while it waits
    asg.complete_lifecycle_action(
        AutoScalingGroupName="g",
        LifecycleHookName="boot",
        InstanceId=new,
        LifecycleActionResult="CONTINUE",
    )
    assert lifecycle_states(asg)[new] == "InService"
    [change] = [p for k, p in seen if k == "in_service"]
    assert (change.instance_id, change.origin) == (new, "EC2")
    states = [p.state for k, p in seen if k == "state" and p.instance_id == new]
    assert states == ["Pending", "Pending:Wait", "Pending:Proceed", "InService"]
    activity = asg.describe_scaling_activities(AutoScalingGroupName="g")["Activities"][0]
    assert activity["StatusCode"] == "Successful"


def test_abandon_terminates_and_the_group_launches_a_replacement(clock: VirtualClock) -> None:
    asg = make_group(size=1, hooks=())
    _launch_hook(asg)
    new, event = _scale_out(asg)
    clock.advance(120)  # heartbeat timeout: DefaultResult ABANDON
    states = lifecycle_states(asg)
    assert new not in states
    [replacement] = [i for i, s in states.items() if s == "Pending:Wait"]
    assert replacement != new
    activity = next(
        a
        for a in asg.describe_scaling_activities(AutoScalingGroupName="g")["Activities"]
        if a["Description"].endswith(new)
    )
    assert activity["StatusCode"] == "Cancelled"
    assert activity["StatusMessage"] == (
        "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token "
        f"{event['detail']['LifecycleActionToken']} was abandoned: Lifecycle Action Completed "
        "with ABANDON Result"
    )


def test_launch_without_hook_goes_in_service_at_once() -> None:
    asg = make_group(size=1, hooks=())
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=3)
    assert list(lifecycle_states(asg).values()) == ["InService"] * 3
    assert autoscaling.emitted_events() == []


def test_lost_events_leave_the_action_waiting_for_its_timeout(clock: VirtualClock) -> None:
    asg = make_group(size=2)  # a termination hook, heartbeat 60 s, CONTINUE
    autoscaling.configure(event_drop_probability=1.0)
    iid = next(iter(lifecycle_states(asg)))
    asg.terminate_instance_in_auto_scaling_group(
        InstanceId=iid, ShouldDecrementDesiredCapacity=True
    )
    assert autoscaling.emitted_events() == []
    [dropped] = autoscaling.dropped_events()
    assert dropped["detail"]["EC2InstanceId"] == iid
    assert lifecycle_states(asg)[iid] == "Terminating:Wait"
    clock.advance(60)
    assert iid not in lifecycle_states(asg)
    assert autoscaling.lifecycle_actions(iid)[0].ended_by == "heartbeat_timeout"
