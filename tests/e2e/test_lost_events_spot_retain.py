"""End to end on the sandbox: lost lifecycle events recovered by the sweep, Spot interruption
warnings, groups being deleted, and hosts retained when a drain fails. Virtual time; assertions
on outcomes (how each lifecycle action ended, what ECS shows)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from drain_hook import contract
from ecs_drain_hook.timing import sweep_first_heartbeat_bound_seconds
from local_aws import autoscaling
from local_aws.sandbox import Sandbox
from local_aws.spot import SpotOptions
from tests.e2e.conftest import SandboxFactory

QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR"}


def _world(sb: Sandbox, instances: int = 6) -> str:
    asg = sb.add_cluster("c1", instances=instances, heartbeat_timeout=1200)
    for family in ("web", "worker", "batch"):
        sb.register_task_definition(family)
    sb.create_service("c1", "web", "web", 2 * instances, minimum_healthy_percent=50)
    sb.create_service("c1", "worker", "worker", instances, minimum_healthy_percent=100)
    sb.settle()
    return asg


def _results(sb: Sandbox) -> list[dict]:
    return [i.result for i in sb.runtime.invocations if isinstance(i.result, dict)]


# --- lost lifecycle events ------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_with_half_the_lifecycle_events_lost_every_action_ends_by_our_completion(
    sandbox: SandboxFactory, seed: int
) -> None:
    """Auto Scaling sends its events on a best-effort basis: with half of them lost, the sweep
    finds the waiting instances and every action still ends by CompleteLifecycleAction, none by
    the hook's timeout, with no task lost."""
    sb = sandbox(seed=seed, lambda_env=QUIET)
    asg = _world(sb)
    sb.deploy()
    sb.lose_lifecycle_events(0.5)
    first_beat: dict[str, float] = {}

    def on(kind: str, action: autoscaling.LifecycleAction) -> None:
        if kind == "heartbeat" and action.instance_id not in first_beat:
            first_beat[action.instance_id] = (sb.clock.now() - action.started_at).total_seconds()

    sb.listeners.append(on)
    sb.scale_in(asg, 2)  # four instances go
    report = sb.run()
    assert len(report.lifecycle_actions) == 4
    assert report.all_completed, [(a.instance_id, a.ended_by) for a in report.lifecycle_actions]
    assert report.lost_tasks == []
    lost = [a for a in report.lifecycle_actions if not a.emitted]
    for action in lost:  # the sweep's message ran its first round within the bound
        assert first_beat[action.instance_id] <= sweep_first_heartbeat_bound_seconds(2)
    recovered = [r for r in _results(sb) if r.get("action") == "swept" and r.get("sent")]
    assert bool(recovered) == bool(lost)


def test_a_lost_event_is_recovered_within_the_sweeps_bound(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=5, lambda_env=QUIET)
    asg = _world(sb, instances=3)
    sb.deploy()
    sb.lose_lifecycle_events(1.0)
    sb.scale_in(asg, 2)
    beats: list = []
    sb.listeners.append(
        lambda kind, p: beats.append(sb.clock.now()) if kind == "heartbeat" else None
    )
    report = sb.run()
    [action] = report.lifecycle_actions
    assert not action.emitted and action.ended_by == "complete" and report.lost_tasks == []
    first_heartbeat = (beats[0] - action.started_at).total_seconds()
    assert contract.SWEEP_GRACE_SECONDS <= first_heartbeat <= sweep_first_heartbeat_bound_seconds(2)


def test_a_lost_event_of_an_instance_going_back_to_the_warm_pool_is_recovered(
    sandbox: SandboxFactory,
) -> None:
    """ReuseOnScaleIn: our termination hook holds the instance in Warmed:Pending:Wait (a state
    launch hooks use too); the sweep reads it from DescribeWarmPool and its heartbeat probe
    tells our action from a launch hook's."""
    sb = sandbox(seed=6, lambda_env=QUIET)
    asg = _world(sb, instances=3)
    sb.deploy()
    sb.put_warm_pool(asg, max_group_prepared_capacity=2, reuse_on_scale_in=True)
    sb.lose_lifecycle_events(1.0)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.scale_in(asg, 1)
    assert sb.pooled_instances(asg)[victim] == "Warmed:Pending:Wait"
    report = sb.run()
    [action] = autoscaling.lifecycle_actions(victim, region=sb.region)
    assert not action.emitted and action.ended_by == "complete"
    assert report.lost_tasks == []
    rounds = [r for r in _results(sb) if r.get("instance_id") == victim]
    assert rounds and rounds[0]["lifecycle_state"] == "Warmed:Pending:Wait"


def test_a_late_event_after_the_sweep_is_a_duplicate(sandbox: SandboxFactory) -> None:
    """Late, not lost: the sweep's message starts the drain; the event, when it comes, finds
    that loop running and starts no second one."""
    sb = sandbox(seed=6, lambda_env=QUIET)
    asg = _world(sb, instances=3)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim, exits_after=900)  # the drain lasts past the event
    sb.settle()
    sb.deploy()
    sb.delay_events({"detail-type": [contract.LIFECYCLE_DETAIL_TYPE]}, seconds=400)
    sb.scale_in(asg, 2)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    assert report.executions == 1  # the sweep's loop only
    actions = [r["action"] for r in _results(sb) if r.get("instance_id") == victim]
    assert actions.count("duplicate") == 1  # the late event's round


# --- Spot interruption warnings ---------------------------------------------------------------


def test_a_spot_warning_drains_at_once_and_the_round_completes_by_the_interruption(
    sandbox: SandboxFactory,
) -> None:
    sb = sandbox(seed=7, lambda_env=QUIET)
    sb.spot.options = SpotOptions(mark_request=True)  # EC2 confirms the notice
    asg = _world(sb, instances=3)
    sb.deploy()
    sb.rebalance_capacity(asg)  # the group terminates it through its hooks before EC2 does
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim)  # runs until stopped
    sb.settle()
    sb.make_spot(victim)
    draining: list = []
    sb.sim.listeners.append(
        lambda ev: (
            draining.append(ev.at)
            if ev.kind == "instance_draining" and ev.details.get("instance") == victim
            else None
        )
    )
    notice = sb.interrupt_spot(victim)
    sb.advance(notice.interrupt_at + timedelta(seconds=30))
    report = sb.run()
    assert draining and (draining[0] - notice.noticed_at).total_seconds() <= 5
    [action] = report.lifecycle_actions
    # Completed by the drain (stop at interruption - grace, then empty), before EC2's time.
    assert action.ended_by == "complete" and action.ended_at <= notice.interrupt_at
    assert report.lost_tasks == []


def test_a_spot_warning_ec2_does_not_confirm_is_left_to_the_termination_round(
    sandbox: SandboxFactory,
) -> None:
    """The sandbox's default: EC2 does not mark the Spot request (UNCONFIRMED). The warning is
    believed by no write; the group's termination round drains the instance."""
    sb = sandbox(seed=7, lambda_env=QUIET)
    asg = _world(sb, instances=3)
    sb.deploy()
    sb.rebalance_capacity(asg)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.settle()
    sb.make_spot(victim)
    draining: list = []
    sb.sim.listeners.append(
        lambda ev: (
            draining.append(ev.at)
            if ev.kind == "instance_draining" and ev.details.get("instance") == victim
            else None
        )
    )
    notice = sb.interrupt_spot(victim)
    sb.advance(notice.interrupt_at + timedelta(seconds=30))
    sb.run()
    warned = [r for r in _results(sb) if r.get("instance_id") == victim]
    assert warned[0]["action"] == "ignored"
    after = sb.spot.options.group_termination_after_seconds
    assert draining and (draining[0] - notice.noticed_at).total_seconds() >= after


@pytest.mark.parametrize(
    "rebalancing, options",
    [
        # documented: without Capacity Rebalancing the group waits
        (False, SpotOptions(mark_request=True)),
        # the knob's other answer
        (True, SpotOptions(mark_request=True, group_termination_after_seconds=None)),
    ],
    ids=["no-capacity-rebalancing", "rebalancing-group-waits"],
)
def test_a_spot_warning_with_no_hook_action_before_ec2_still_drains_at_once(
    sandbox: SandboxFactory, rebalancing: bool, options: SpotOptions
) -> None:
    sb = sandbox(seed=8, lambda_env=QUIET)
    sb.spot.options = options
    asg = _world(sb, instances=3)
    sb.deploy()
    if rebalancing:
        sb.rebalance_capacity(asg)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.make_spot(victim)
    notice = sb.interrupt_spot(victim)
    sb.advance(notice.interrupt_at + timedelta(seconds=60))
    sb.run()
    assert [r["action"] for r in _results(sb) if r.get("instance_id") == victim][:1] == [
        "spot_draining"
    ]
    assert autoscaling.lifecycle_actions(victim, region=sb.region) == []
    # Its service tasks had two minutes to move: ECS replaced them elsewhere.
    assert sb.sim.lost_tasks == []


def test_a_spot_warning_for_an_instance_we_do_not_hook_writes_nothing(
    sandbox: SandboxFactory,
) -> None:
    sb = sandbox(seed=9, lambda_env=QUIET)
    sb.spot.options = SpotOptions(mark_request=True)  # ignored for being unhooked, not unconfirmed
    _world(sb, instances=2)
    other = sb.add_cluster("c2", instances=1)
    sb.deploy(asg_names=["c1-asg"])
    [victim] = sb.group_instances(other)
    sb.make_spot(victim)
    calls = sb.record_calls()
    notice = sb.interrupt_spot(victim)
    sb.advance(notice.noticed_at + timedelta(seconds=10))
    [result] = [r for r in _results(sb) if r.get("instance_id") == victim]
    assert result["action"] == "ignored"
    writes = [c.operation for c in calls if c.operation.split(":")[1].startswith(("Update", "Put"))]
    assert writes == []


# --- groups being deleted ---------------------------------------------------------------------


def test_a_group_being_deleted_is_completed_without_a_drain(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=10, lambda_env=QUIET)
    asg = _world(sb, instances=3)
    for instance in sb.group_instances(asg):
        sb.run_standalone("c1", "batch", instance)  # nothing would ever empty them
    sb.settle()
    sb.deploy()
    start = sb.clock.now()
    sb.delete_group(asg)
    report = sb.run()
    assert len(report.lifecycle_actions) == 3
    assert all(a.ended_by == "complete" for a in report.lifecycle_actions)
    longest = max((a.ended_at - start).total_seconds() for a in report.lifecycle_actions)
    assert longest <= 2 * 60 + 60 + 30  # one sweep period (and its minute), one round
    assert [r for r in _results(sb) if r.get("action") == "group_deleting"]
    assert (
        sb.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg])[
            "AutoScalingGroups"
        ]
        == []
    )


# --- a host kept when its drain fails ---------------------------------------------------------


@pytest.mark.parametrize("retains", [True, False])
def test_a_stuck_drain_retains_the_host_only_where_the_group_retains(
    sandbox: SandboxFactory, retains: bool
) -> None:
    env = {
        **QUIET,
        "ON_DRAIN_FAILURE": "retain",
        "AGENT_DISCONNECTED_GRACE_SECONDS": "120",
        "POLL_INTERVAL_FIRST_SECONDS": "30",
        "POLL_INTERVAL_MAX_SECONDS": "60",
    }
    sb = sandbox(seed=11, lambda_env=env)
    asg = _world(sb, instances=3)
    [victim] = sb.scale_in_candidates(asg, 1)
    batch = sb.run_standalone("c1", "batch", victim)
    sb.settle()
    sb.deploy()
    if retains:
        sb.retain_on_abandon(asg)
    sb.disconnect_agent(victim)  # its tasks can't stop any more
    sb.scale_in(asg, 2)
    report = sb.run()
    [action] = report.lifecycle_actions
    assert action.ended_by == "complete"
    task = sb.client("ecs").describe_tasks(cluster="c1", tasks=[batch])["tasks"][0]
    if retains:
        assert action.result == "ABANDON"
        assert sb.lifecycle_state(victim) == "Terminating:Retained"
        assert task["lastStatus"] == "RUNNING" and batch not in report.lost_tasks
    else:
        assert action.result == "CONTINUE" and sb.lifecycle_state(victim) is None
        assert batch in report.lost_tasks
