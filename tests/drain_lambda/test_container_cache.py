"""What a Lambda container keeps between runs (adapters/container_cache.py): a group's hooks for
a minute, a burst's scaling activity starts for a minute; AWS is asked again after that, or at
once when a destructive step needs the hooks afresh."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from drain_hook import clock
from drain_hook.adapters import autoscaling

NOW = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
GROUP = "web-asg"
HOOKS = {
    "LifecycleHooks": [
        {
            "LifecycleHookName": "drain",
            "AutoScalingGroupName": GROUP,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "HeartbeatTimeout": 1200,
            "DefaultResult": "CONTINUE",
        }
    ]
}


def _instance(n: int) -> str:
    return f"i-{n:017x}"


def _activity(n: int, start: datetime, activity: str = "") -> dict[str, Any]:
    return {
        "ActivityId": activity or f"a-{n}",
        "AutoScalingGroupName": GROUP,
        "Description": f"Terminating EC2 instance: {_instance(n)}",
        "Cause": "a user request update of AutoScalingGroup constraints",
        "StartTime": start,
        "StatusCode": "WaitingForTerminationLifecycleAction",
    }


class World:
    def __init__(self) -> None:
        self.client = boto3.session.Session(region_name="us-east-1").client("autoscaling")
        self.stub = Stubber(self.client)
        self.now = NOW


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    world = World()
    monkeypatch.setattr(autoscaling, "client", lambda name: world.client)
    monkeypatch.setattr(clock, "utc_now", lambda: world.now)
    with world.stub:
        yield world
        world.stub.assert_no_pending_responses()


def test_hooks_are_read_once_a_minute_unless_asked_fresh(world: World) -> None:
    world.stub.add_response("describe_lifecycle_hooks", HOOKS, {"AutoScalingGroupName": GROUP})
    first = autoscaling.lifecycle_hooks(GROUP)
    world.now += timedelta(seconds=59)
    assert autoscaling.lifecycle_hooks(GROUP) == first  # no call: the stub has none left
    world.stub.add_response("describe_lifecycle_hooks", HOOKS, {"AutoScalingGroupName": GROUP})
    assert autoscaling.lifecycle_hooks(GROUP, fresh=True) == first
    world.now += timedelta(seconds=60)
    world.stub.add_response("describe_lifecycle_hooks", HOOKS, {"AutoScalingGroupName": GROUP})
    assert autoscaling.lifecycle_hooks(GROUP)[0].heartbeat_timeout_seconds == 1200


def test_one_read_of_the_activities_serves_a_whole_burst(world: World) -> None:
    """A burst's activities are newest first; pages are read until the instance shows up, and
    every start seen serves the next first rounds of that container."""
    starts = {n: NOW - timedelta(seconds=n) for n in range(250)}
    pages = [
        [_activity(n, starts[n]) for n in range(first, min(first + 100, 250))]
        for first in (0, 100, 200)
    ]
    world.stub.add_response(
        "describe_scaling_activities",
        {"Activities": pages[0], "NextToken": "p2"},
        {"AutoScalingGroupName": GROUP},
    )
    world.stub.add_response(
        "describe_scaling_activities",
        {"Activities": pages[1], "NextToken": "p3"},
        {"AutoScalingGroupName": GROUP, "NextToken": "p2"},
    )
    assert autoscaling.termination_started_at(GROUP, _instance(150), NOW) == starts[150]
    for n in (0, 99, 101, 199):  # read with it: no call
        assert autoscaling.termination_started_at(GROUP, _instance(n), NOW) == starts[n]
    # Beyond what was read: the newest page (new activities come first), then on from where
    # the read stopped, until it shows up; pages already read are not read again.
    world.stub.add_response(
        "describe_scaling_activities",
        {"Activities": pages[0], "NextToken": "p2"},
        {"AutoScalingGroupName": GROUP},
    )
    world.stub.add_response(
        "describe_scaling_activities",
        {"Activities": pages[2]},
        {"AutoScalingGroupName": GROUP, "NextToken": "p3"},
    )
    assert autoscaling.termination_started_at(GROUP, _instance(220), NOW) == starts[220]


def test_an_instance_with_no_activity_costs_one_page_then_nothing(world: World) -> None:
    """The group's activities were read to the end: an instance they don't name (its activity
    is older than six weeks, say) costs the newest page once, then nothing for a minute."""
    starts = {n: NOW - timedelta(seconds=n) for n in range(3)}
    page = [_activity(n, starts[n]) for n in range(3)]
    world.stub.add_response(
        "describe_scaling_activities", {"Activities": page}, {"AutoScalingGroupName": GROUP}
    )
    assert autoscaling.termination_started_at(GROUP, _instance(1), NOW) == starts[1]
    world.stub.add_response(
        "describe_scaling_activities", {"Activities": page}, {"AutoScalingGroupName": GROUP}
    )
    assert autoscaling.termination_started_at(GROUP, _instance(9), NOW) is None
    assert autoscaling.termination_started_at(GROUP, _instance(9), NOW) is None  # no call


def test_activity_starts_are_read_again_after_a_minute(world: World) -> None:
    """A later termination of the same instance (back from a warm pool, scaled in again) is a
    new activity: a start read more than a minute ago is not trusted for it."""
    old, new = NOW - timedelta(hours=2), NOW - timedelta(seconds=5)
    world.stub.add_response(
        "describe_scaling_activities",
        {"Activities": [_activity(1, old)]},
        {"AutoScalingGroupName": GROUP},
    )
    assert autoscaling.termination_started_at(GROUP, _instance(1), NOW) == old
    world.now += timedelta(seconds=60)
    world.stub.add_response(
        "describe_scaling_activities",
        {"Activities": [_activity(1, new, "a-again"), _activity(1, old)]},
        {"AutoScalingGroupName": GROUP},
    )
    assert autoscaling.termination_started_at(GROUP, _instance(1), world.now) == new


def test_a_time_based_step_reads_the_hooks_afresh(world: World) -> None:
    """Before a time-based stop or release the drain checks the hook's heartbeat timeout against
    AWS: a cached read is not enough there."""
    from drain_hook.logic import drain_flow
    from drain_hook.models.state import DrainState

    state = DrainState(
        action="draining",
        instance_id=_instance(1),
        cluster="c1",
        asg_name=GROUP,
        hook_name="drain",
        lifecycle_action_token="11111111-2222-3333-4444-555555555555",
        started_at=NOW - timedelta(seconds=30),
        deadline_at=NOW + timedelta(hours=2),
        max_drain_seconds=7200,
    )
    world.stub.add_response("describe_lifecycle_hooks", HOOKS, {"AutoScalingGroupName": GROUP})
    autoscaling.lifecycle_hooks(GROUP)  # a first round's read, kept by the container
    world.stub.add_response("describe_lifecycle_hooks", HOOKS, {"AutoScalingGroupName": GROUP})
    world.stub.add_response(
        "describe_scaling_activities",
        {"Activities": [_activity(1, NOW - timedelta(seconds=30))]},
        {"AutoScalingGroupName": GROUP},
    )
    checked = drain_flow._verified_hold_start(state, None, NOW)
    assert checked.heartbeat_timeout_seconds == 1200
