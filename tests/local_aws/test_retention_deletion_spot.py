"""The sandbox against the AWS docs it names: instance lifecycle policies and the Retained
state, group deletion and its Status, Spot interruptions, scheduled rules, and the intake
queue's API for the Lambda's own calls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_aws import autoscaling, events
from local_aws.builders import lifecycle_states, make_group
from local_aws.clock import VirtualClock
from local_aws.spot import SpotMarket, SpotOptions
from local_aws.sqs_event_source import SqsEventSource, route
from local_aws.timers import Timers

pytestmark = pytest.mark.usefixtures("aws")
RETAIN = {"RetentionTriggers": {"TerminateHookAbandon": "retain"}}
COMMON = {"AutoScalingGroupName": "g", "LifecycleHookName": "drain"}


def _ec2_state(instance_id: str) -> str:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def _group(asg: Any) -> dict[str, Any]:
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"][0]


# --- instance lifecycle policies ("Control instance retention with instance lifecycle
# policies", "Configure instance retention", "Manage retained instances") ----------------------


def test_the_policy_is_kept_and_shown() -> None:
    asg = make_group()
    assert _group(asg).get("InstanceLifecyclePolicy") is None
    asg.update_auto_scaling_group(AutoScalingGroupName="g", InstanceLifecyclePolicy=RETAIN)
    assert _group(asg)["InstanceLifecyclePolicy"] == RETAIN


def test_abandon_retains_the_instance_out_of_capacity_until_terminated() -> None:
    asg = make_group(size=2)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", InstanceLifecyclePolicy=RETAIN)
    iid = autoscaling.begin_termination("g", should_decrement=False)["detail"]["EC2InstanceId"]
    asg.complete_lifecycle_action(InstanceId=iid, LifecycleActionResult="ABANDON", **COMMON)
    assert lifecycle_states(asg)[iid] == "Terminating:Retained"
    assert _ec2_state(iid) == "running"
    group = _group(asg)
    # It counts towards no capacity: a replacement keeps the desired two.
    in_service = [i for i in group["Instances"] if i["LifecycleState"] == "InService"]
    assert group["DesiredCapacity"] == 2 and len(in_service) == 2
    states = [c.state for c in _changes(iid)]
    assert states[-2:] == ["Terminating:Proceed", "Terminating:Retained"]


def test_continue_still_terminates_a_retaining_groups_instance() -> None:
    asg = make_group()
    asg.update_auto_scaling_group(AutoScalingGroupName="g", InstanceLifecyclePolicy=RETAIN)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    asg.complete_lifecycle_action(InstanceId=iid, LifecycleActionResult="CONTINUE", **COMMON)
    assert iid not in lifecycle_states(asg) and _ec2_state(iid) == "terminated"


def test_abandon_ends_the_other_hooks_actions_and_retains(clock: VirtualClock) -> None:
    asg = make_group(hooks=("drain", "other"), heartbeat=60)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", InstanceLifecyclePolicy=RETAIN)
    iid = autoscaling.begin_termination("g", hook_name="drain")["detail"]["EC2InstanceId"]
    asg.complete_lifecycle_action(InstanceId=iid, LifecycleActionResult="ABANDON", **COMMON)
    ended = {a.hook_name: a.ended_by for a in autoscaling.lifecycle_actions(iid)}
    assert ended == {"drain": "complete", "other": "abandoned_by_other_hook"}
    assert lifecycle_states(asg)[iid] == "Terminating:Retained"


def test_a_timeout_with_default_result_abandon_retains(clock: VirtualClock) -> None:
    asg = make_group(heartbeat=30, default_result="ABANDON")
    asg.update_auto_scaling_group(AutoScalingGroupName="g", InstanceLifecyclePolicy=RETAIN)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    clock.advance(31)
    autoscaling.expire_due()
    assert lifecycle_states(asg)[iid] == "Terminating:Retained"


@pytest.mark.parametrize("runs_hooks", [True, False])
def test_terminate_instance_in_auto_scaling_group_ends_a_retained_instance(
    runs_hooks: bool,
) -> None:
    """UNCONFIRMED whether its termination hooks hold it again: both answers (knob)."""
    asg = make_group()
    autoscaling.configure(retained_termination_runs_hooks=runs_hooks)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", InstanceLifecyclePolicy=RETAIN)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    asg.complete_lifecycle_action(InstanceId=iid, LifecycleActionResult="ABANDON", **COMMON)
    desired = _group(asg)["DesiredCapacity"]
    asg.terminate_instance_in_auto_scaling_group(
        InstanceId=iid, ShouldDecrementDesiredCapacity=True
    )
    assert _group(asg)["DesiredCapacity"] == desired  # it counted towards nothing
    if runs_hooks:
        assert lifecycle_states(asg)[iid] == "Terminating:Wait"
        asg.complete_lifecycle_action(InstanceId=iid, LifecycleActionResult="CONTINUE", **COMMON)
    assert iid not in lifecycle_states(asg) and _ec2_state(iid) == "terminated"


def _changes(instance_id: str) -> list[autoscaling.StateChange]:
    return [c for c in _CHANGES if c.instance_id == instance_id]


_CHANGES: list[autoscaling.StateChange] = []


@pytest.fixture(autouse=True)
def _watch_states(aws: None) -> Any:
    _CHANGES.clear()

    def on(kind: str, payload: Any) -> None:
        if kind == "state":
            _CHANGES.append(payload)

    autoscaling.subscribe(on)
    yield
    autoscaling.unsubscribe(on)


# --- group deletion (DeleteAutoScalingGroup, AutoScalingGroup.Status) --------------------------


def test_without_force_a_group_with_instances_is_not_deleted() -> None:
    asg = make_group()
    with pytest.raises(ClientError) as err:
        asg.delete_auto_scaling_group(AutoScalingGroupName="g")
    assert err.value.response["Error"]["Code"] == "ResourceInUse"
    assert _group(asg).get("Status") is None


def test_force_delete_shows_delete_in_progress_while_hooks_hold_the_instances() -> None:
    """The default (UNCONFIRMED) answer: the terminations ForceDelete starts wait for the
    termination hooks; the outstanding action is deleted (API reference)."""
    asg = make_group(size=3)
    outstanding = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    asg.delete_auto_scaling_group(AutoScalingGroupName="g", ForceDelete=True)
    group = _group(asg)
    assert group["Status"] == "Delete in progress"
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 0, 0)
    assert autoscaling.lifecycle_actions(outstanding)[0].ended_by == "group_deleted"
    waiting = [i for i, s in lifecycle_states(asg).items() if s == "Terminating:Wait"]
    assert len(waiting) == 2 and outstanding not in waiting
    for iid in waiting:
        asg.complete_lifecycle_action(InstanceId=iid, LifecycleActionResult="CONTINUE", **COMMON)
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"] == []


def test_force_delete_not_held_takes_every_instance_at_once() -> None:
    asg = make_group(size=2)
    autoscaling.configure(force_delete_holds=False)
    asg.delete_auto_scaling_group(AutoScalingGroupName="g", ForceDelete=True)
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"] == []
    assert lifecycle_states(asg) == {}


# --- Spot interruptions ("Spot Instance interruption notices", Spot request status) -----------


def _market(clock: VirtualClock, put: list[dict[str, Any]], **options: Any) -> SpotMarket:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    begun: list[str] = []
    market = SpotMarket(
        clock=clock,
        timers=Timers(clock),
        put_event=put.append,
        terminate=lambda iid: ec2.terminate_instances(InstanceIds=[iid]),
        begin_group_termination=lambda iid: (
            begun.append(iid),
            autoscaling.replace_instance(iid, "a Spot interruption notice."),
        ),
        capacity_rebalancing=autoscaling.capacity_rebalancing,
        options=SpotOptions(**options),
    )
    market.begun = begun  # type: ignore[attr-defined]
    return market


def _run_timers(market: SpotMarket, clock: VirtualClock, until: datetime) -> None:
    while (when := market.timers.next_time()) is not None and when <= until:
        clock.advance_to(when)
        market.timers.run_due()
    clock.advance_to(until)


def _request(instance_id: str) -> dict[str, Any]:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    [request] = ec2.describe_spot_instance_requests(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["SpotInstanceRequests"]
    return request


def test_a_notice_marks_the_request_emits_the_warning_and_ec2_takes_it_at_two_minutes(
    clock: VirtualClock,
) -> None:
    asg = make_group(size=2, heartbeat=600)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", CapacityRebalance=True)
    assert _group(asg)["CapacityRebalance"] is True
    iid = sorted(lifecycle_states(asg))[0]
    put: list[dict[str, Any]] = []
    market = _market(clock, put, mark_request=True)
    market.make_spot(iid)
    assert _request(iid)["Status"]["Code"] == "fulfilled"
    start = clock.now()
    notice = market.interrupt(iid)
    request = _request(iid)
    assert request["Status"]["Code"] == "marked-for-termination"
    # When EC2 marked it: the notice (UpdateTime keeps whole seconds).
    assert timedelta(0) <= start - request["Status"]["UpdateTime"] < timedelta(seconds=1)
    [event] = put
    assert event["detail-type"] == "EC2 Spot Instance Interruption Warning"
    assert event["detail"] == {"instance-id": iid, "instance-action": "terminate"}
    assert notice.interrupt_at == start + timedelta(seconds=120)
    # The group starts its termination at the knob's 60 s: its hook holds the instance ...
    _run_timers(market, clock, start + timedelta(seconds=61))
    assert lifecycle_states(asg)[iid] == "Terminating:Wait"
    # ... and EC2 takes it at the two minutes whatever the hook says: the action ends.
    _run_timers(market, clock, start + timedelta(seconds=121))
    assert _ec2_state(iid) == "terminated"
    [action] = autoscaling.lifecycle_actions(iid)
    assert action.ended_by == "instance_terminated" and action.result is None


def test_without_capacity_rebalancing_the_group_waits_for_ec2(clock: VirtualClock) -> None:
    """Capacity Rebalancing guide: without it the group replaces a Spot instance only after EC2
    interrupted it, whatever the knob's delay."""
    asg = make_group(size=2, heartbeat=600)
    iid = sorted(lifecycle_states(asg))[0]
    market = _market(clock, [])
    market.make_spot(iid)
    start = clock.now()
    market.interrupt(iid)
    _run_timers(market, clock, start + timedelta(seconds=119))
    assert lifecycle_states(asg)[iid] == "InService" and market.begun == []  # type: ignore[attr-defined]
    _run_timers(market, clock, start + timedelta(seconds=121))
    assert _ec2_state(iid) == "terminated"


def test_spot_knobs(clock: VirtualClock) -> None:
    # Unmarked is the default: the UNCONFIRMED answer less favourable to the product.
    assert SpotOptions().mark_request is False
    asg = make_group(size=2)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", CapacityRebalance=True)
    iid = sorted(lifecycle_states(asg))[0]
    put: list[dict[str, Any]] = []
    market = _market(
        clock,
        put,
        mark_request=False,
        group_termination_after_seconds=None,
        warning_loss_probability=1.0,
    )
    market.make_spot(iid)
    start = clock.now()
    notice = market.interrupt(iid)
    assert _request(iid)["Status"]["Code"] == "fulfilled" and put == [] and not notice.warned
    _run_timers(market, clock, start + timedelta(seconds=119))
    assert lifecycle_states(asg)[iid] == "InService"  # the group did nothing before EC2
    _run_timers(market, clock, start + timedelta(seconds=121))
    assert _ec2_state(iid) == "terminated"


# --- scheduled rules ("Creating a rule that runs on a schedule") ------------------------------


def test_rate_expressions() -> None:
    assert events.rate_seconds("rate(2 minutes)") == 120
    assert events.rate_seconds("rate(1 minute)") == 60
    assert events.rate_seconds("rate(1 hour)") == 3600
    for bad in ("rate(1 minutes)", "rate(2 minute)", "cron(0 12 * * ? *)", "rate(0 minutes)"):
        with pytest.raises(ValueError):
            events.rate_seconds(bad)


def test_a_scheduled_rule_sends_a_scheduled_event_every_period_within_its_minute(
    clock: VirtualClock,
) -> None:
    bus = events.EventBus(clock, seed=3, latency_seconds=(0.0, 0.0))
    arn = "arn:aws:events:us-east-1:123456789012:rule/sweep"
    bus.add_schedule(events.Rule("sweep", {}, "fn", arn=arn), "rate(2 minutes)")
    created = clock.now()
    got: list[tuple[datetime, dict[str, Any]]] = []

    def deliver(function: str, event: dict[str, Any]) -> None:
        got.append((clock.now(), event))

    while len(got) < 3:
        clock.advance_to(bus.next_time())
        bus.deliver_due(deliver)
    for n, (at, event) in enumerate(got, start=1):
        minute = created + timedelta(seconds=120 * n)
        assert minute <= at < minute + timedelta(seconds=60)
        assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
        assert event["resources"] == [arn] and event["detail"] == {}

    bus.schedule_enabled = lambda _name: False  # DisableRule
    before = len(got)
    for _ in range(3):
        clock.advance(120)
        bus.deliver_due(deliver)
    assert len(got) == before


# --- the intake queue answers the Lambda's own calls ---------------------------------------


def test_send_message_batch_and_attributes_of_the_routed_queue(clock: VirtualClock) -> None:
    source = SqsEventSource(
        queue_arn="arn:aws:sqs:us-east-1:123456789012:intake",
        function_name="f",
        clock=clock,
        invoke=lambda _f, _p: ("ok", b"{}"),
    )
    route("intake", source)
    try:
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = "https://sqs.us-east-1.amazonaws.com/123456789012/intake"
        answer = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": "a", "MessageBody": "{}"}, {"Id": "b", "MessageBody": "[]"}],
        )
        assert [e["Id"] for e in answer["Successful"]] == ["a", "b"]
        assert source.depth == 2
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        assert attributes == {"ApproximateNumberOfMessages": "2"}
    finally:
        route("intake", None)
