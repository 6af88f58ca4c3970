"""Scaling activities against the user guide ("Verify a scaling activity for an Auto Scaling
group") and the API reference (DescribeScalingActivities, Activity)."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from local_aws import autoscaling
from local_aws.builders import lifecycle_states, make_group
from local_aws.clock import VirtualClock

pytestmark = pytest.mark.usefixtures("aws")


def _activities(asg: object, **kwargs: object) -> list[dict]:
    return asg.describe_scaling_activities(**kwargs)["Activities"]  # type: ignore[attr-defined]


def _for(asg: object, instance_id: str, verb: str = "Terminating") -> dict:
    matches = [
        a
        for a in _activities(asg, AutoScalingGroupName="g")
        if a["Description"] == f"{verb} EC2 instance: {instance_id}"
    ]
    assert len(matches) == 1, matches
    return matches[0]


def _complete(asg: object, instance_id: str, result: str = "CONTINUE") -> None:
    asg.complete_lifecycle_action(  # type: ignore[attr-defined]
        AutoScalingGroupName="g",
        LifecycleHookName="drain",
        InstanceId=instance_id,
        LifecycleActionResult=result,
    )


def test_held_termination_records_activity_from_entering_the_wait(clock: VirtualClock) -> None:
    asg = make_group(size=3)
    clock.advance(600)
    entered = clock.now()
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=2)
    [victim] = [i for i, s in lifecycle_states(asg).items() if s == "Terminating:Wait"]
    activity = _for(asg, victim)
    assert activity["StartTime"] == entered
    assert activity["StatusCode"] == "MidLifecycleAction"  # the default of the knob
    assert activity["Progress"] < 100 and "EndTime" not in activity
    assert activity["AutoScalingGroupName"] == "g"
    assert activity["AutoScalingGroupARN"].endswith(":autoScalingGroupName/g")
    assert json.loads(activity["Details"]) == {"Availability Zone": "us-east-1a"}
    assert activity["Cause"].startswith(
        "At 2025-01-06T09:10:00Z a user request explicitly set group desired capacity "
        "changing the desired capacity from 3 to 2."
    )
    assert "shrinking the capacity from 3 to 2." in activity["Cause"]

    clock.advance(45)
    _complete(asg, victim)
    done = _for(asg, victim)
    assert done["ActivityId"] == activity["ActivityId"]
    assert (done["StatusCode"], done["Progress"]) == ("Successful", 100)
    assert done["StartTime"] == entered
    assert done["EndTime"] == entered + timedelta(seconds=45)


def test_wait_status_code_knob_shows_in_progress() -> None:
    autoscaling.configure(wait_status_code="InProgress")
    asg = make_group(size=2)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    assert _for(asg, iid)["StatusCode"] == "InProgress"
    with pytest.raises(ValueError):
        autoscaling.configure(wait_status_code="Waiting")


def test_terminate_instance_answers_the_activity_in_progress(clock: VirtualClock) -> None:
    asg = make_group(size=2)
    iid = next(iter(lifecycle_states(asg)))
    answer = asg.terminate_instance_in_auto_scaling_group(
        InstanceId=iid, ShouldDecrementDesiredCapacity=True
    )["Activity"]
    assert (answer["StatusCode"], answer["Progress"]) == ("InProgress", 0)
    assert answer["Description"] == f"Terminating EC2 instance: {iid}"
    assert answer["Cause"] == (
        f"At 2025-01-06T09:00:00Z instance {iid} was taken out of service in response to a "
        "user request, shrinking the capacity from 2 to 1."
    )
    assert _for(asg, iid)["ActivityId"] == answer["ActivityId"]


def test_terminate_without_decrement_records_the_replacement_launch() -> None:
    asg = make_group(size=2)
    before = set(lifecycle_states(asg))
    iid = next(iter(before))
    asg.terminate_instance_in_auto_scaling_group(
        InstanceId=iid, ShouldDecrementDesiredCapacity=False
    )
    assert _for(asg, iid)["Cause"].endswith("in response to a user request.")
    [replacement] = set(lifecycle_states(asg)) - before
    launch = _for(asg, replacement, verb="Launching a new")
    assert launch["StatusCode"] == "Successful"
    assert launch["Cause"].endswith("increasing the capacity from 1 to 2.")


def test_launches_are_recorded_successful_with_the_creation_cause() -> None:
    asg = make_group(size=2)
    launches = _activities(asg)
    assert len(launches) == 2
    for activity in launches:
        assert activity["Description"].startswith("Launching a new EC2 instance: i-")
        assert (activity["StatusCode"], activity["Progress"]) == ("Successful", 100)
        assert activity["Cause"].startswith(
            "At 2025-01-06T09:00:00Z a user request created an AutoScalingGroup changing the "
            "desired capacity from 0 to 2.  At 2025-01-06T09:00:00Z an instance was started in "
            "response to a difference between desired and actual capacity"
        )


def test_scale_in_without_hook_terminates_and_succeeds_at_once() -> None:
    asg = make_group(size=2, hooks=())
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=1)
    terminations = [a for a in _activities(asg) if a["Description"].startswith("Terminating")]
    assert [a["StatusCode"] for a in terminations] == ["Successful"]
    iid = terminations[0]["Description"].split(": ")[1]
    ec2 = boto3.client("ec2", region_name="us-east-1")
    state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "terminated"


def test_in_progress_first_then_newest_first(clock: VirtualClock) -> None:
    asg = make_group(size=4)
    clock.advance(20)
    first = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    clock.advance(20)
    second = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    clock.advance(20)
    _complete(asg, second)
    order = [a["Description"] for a in _activities(asg)]
    assert order[0] == f"Terminating EC2 instance: {first}"  # still in progress
    assert order[1] == f"Terminating EC2 instance: {second}"  # newest finished
    assert all(d.startswith("Launching") for d in order[2:])
    starts = [a["StartTime"] for a in _activities(asg)[1:]]
    assert starts == sorted(starts, reverse=True)


def test_pages_of_max_records_with_next_token() -> None:
    asg = make_group(size=5)
    everything = _activities(asg)
    first = asg.describe_scaling_activities(MaxRecords=2)
    assert len(first["Activities"]) == 2 and first["NextToken"]
    second = asg.describe_scaling_activities(MaxRecords=2, NextToken=first["NextToken"])
    third = asg.describe_scaling_activities(MaxRecords=2, NextToken=second["NextToken"])
    assert "NextToken" not in third
    paged = first["Activities"] + second["Activities"] + third["Activities"]
    assert [a["ActivityId"] for a in paged] == [a["ActivityId"] for a in everything]
    pages = asg.get_paginator("describe_scaling_activities").paginate(
        PaginationConfig={"PageSize": 2}
    )
    assert sum(len(p["Activities"]) for p in pages) == 5


def test_limits_and_bad_tokens_are_rejected() -> None:
    asg = make_group(size=1)
    with pytest.raises(ClientError) as err:
        asg.describe_scaling_activities(MaxRecords=101)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as err:
        asg.describe_scaling_activities(ActivityIds=[f"id-{i}" for i in range(51)])
    assert err.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as err:
        asg.describe_scaling_activities(NextToken="not-a-token")
    assert err.value.response["Error"]["Code"] == "InvalidNextToken"


def test_activity_ids_select_and_unknown_ids_are_ignored() -> None:
    asg = make_group(size=3)
    wanted = _activities(asg)[1]["ActivityId"]
    found = _activities(asg, ActivityIds=[wanted, "00000000-0000-0000-0000-000000000000"])
    assert [a["ActivityId"] for a in found] == [wanted]


def test_only_the_last_six_weeks(clock: VirtualClock) -> None:
    asg = make_group(size=2)
    clock.advance(timedelta(weeks=6).total_seconds())
    assert len(_activities(asg)) == 2
    clock.advance(1)
    assert _activities(asg) == []
    assert len(autoscaling.activities()) == 2  # kept, just no longer described


def test_filters_on_start_time_and_status(clock: VirtualClock) -> None:
    asg = make_group(size=3)
    clock.advance(3600)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    later = _activities(
        asg, Filters=[{"Name": "StartTimeLowerBound", "Values": ["2025-01-06T09:30:00Z"]}]
    )
    assert [a["Description"] for a in later] == [f"Terminating EC2 instance: {iid}"]
    earlier = _activities(
        asg, Filters=[{"Name": "StartTimeUpperBound", "Values": ["2025-01-06T09:30:00"]}]
    )
    assert len(earlier) == 3
    waiting = _activities(
        asg,
        AutoScalingGroupName="g",
        Filters=[{"Name": "Status", "Values": ["MidLifecycleAction"]}],
    )
    assert len(waiting) == 1
    with pytest.raises(ClientError, match="AutoScalingGroupName"):
        _activities(asg, Filters=[{"Name": "Status", "Values": ["Successful"]}])


def test_deleted_groups_only_with_include_deleted_groups() -> None:
    asg = make_group(size=2)
    # ForceDelete's terminations not held by the hooks (the knob's other answer; the default's
    # is in tests/local_aws/test_group_deletion.py).
    autoscaling.configure(force_delete_holds=False)
    with pytest.raises(ClientError) as err:
        asg.delete_auto_scaling_group(AutoScalingGroupName="g")
    assert err.value.response["Error"]["Code"] == "ResourceInUse"
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    asg.delete_auto_scaling_group(AutoScalingGroupName="g", ForceDelete=True)
    assert _activities(asg) == []
    kept = _activities(asg, IncludeDeletedGroups=True)
    assert {a["AutoScalingGroupState"] for a in kept} == {"Deleted"}
    assert len(kept) == 3 and all(a["StatusCode"] == "Successful" for a in kept)
    # ForceDelete deletes the outstanding lifecycle actions.
    assert autoscaling.lifecycle_actions(iid)[0].ended_by == "group_deleted"


def test_knob_records_no_activity() -> None:
    asg = make_group(size=2)
    autoscaling.configure(record_activities=False)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    assert not [a for a in _activities(asg) if a["Description"].startswith("Terminating")]
    assert lifecycle_states(asg)[iid] == "Terminating:Wait"


def test_knob_drops_activities_with_seeded_chance() -> None:
    asg = make_group(size=1)
    autoscaling.configure(activity_drop_probability=1.0, seed=3)
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=4)
    assert len(_activities(asg)) == 1  # only the launch from before the knob


def test_dropping_the_record_of_one_instance() -> None:
    asg = make_group(size=2)
    iid = autoscaling.begin_termination("g")["detail"]["EC2InstanceId"]
    assert autoscaling.drop_activities(iid) == 2  # its launch and its termination
    assert not [a for a in _activities(asg) if iid in a["Description"]]


def test_ec2_termination_is_noticed_and_replaced() -> None:
    asg = make_group(size=2)
    iid = next(iter(lifecycle_states(asg)))
    boto3.client("ec2", region_name="us-east-1").terminate_instances(InstanceIds=[iid])
    activity = _for(asg, iid)
    assert activity["StatusCode"] == "Successful"
    assert activity["Cause"].endswith(
        "an instance was taken out of service in response to an EC2 health check indicating "
        "it has been terminated or stopped."
    )
    states = lifecycle_states(asg)
    assert iid not in states and list(states.values()) == ["InService", "InService"]
