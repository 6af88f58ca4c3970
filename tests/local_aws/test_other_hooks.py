"""Other termination hooks on the same group, as sandbox actors: ECS managed instance draining
(ECS guide "Configuring Amazon ECS capacity providers to safely shut down instances") and
aws-cdk-lib's legacy drain hook (aws-ecs/lib/drain-hook). The ECS side is the sandbox's ECS
scheduler, reached through boto3; time is virtual."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from local_aws import autoscaling
from local_aws.other_hooks import ECS_MANAGED_DRAINING_HOOK
from local_aws.sandbox import HOOK_NAME, Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=4) as sandbox:
        yield sandbox


def _cluster(
    sb: Sandbox,
    *,
    keep_project_hook: bool = False,
    instances: int = 3,
    heartbeat_timeout: int = 300,
) -> str:
    asg = sb.add_cluster("c1", instances=instances, heartbeat_timeout=heartbeat_timeout)
    if not keep_project_hook:
        sb.client("autoscaling").delete_lifecycle_hook(
            AutoScalingGroupName=asg, LifecycleHookName=HOOK_NAME
        )
    for family in ("web", "batch"):
        sb.register_task_definition(family)
    return asg


def _container_status(sb: Sandbox, instance_id: str) -> str:
    ecs = sb.client("ecs")
    arns = ecs.list_container_instances(cluster="c1", status="DRAINING")["containerInstanceArns"]
    arns += ecs.list_container_instances(cluster="c1")["containerInstanceArns"]
    described = ecs.describe_container_instances(cluster="c1", containerInstances=arns)
    return next(
        ci["status"] for ci in described["containerInstances"] if ci["ec2InstanceId"] == instance_id
    )


def _last_task_stop_on(sb: Sandbox, instance_id: str) -> object:
    placed = {
        e.details["task"]
        for e in sb.sim.events
        if e.kind == "task_placed" and e.details.get("instance") == instance_id
    }
    stops = [
        e.at for e in sb.sim.events if e.kind == "task_stopped" and e.details["task"] in placed
    ]
    return max(stops)


def test_managed_draining_drains_then_completes_continue(sb: Sandbox) -> None:
    asg = _cluster(sb)
    actor = sb.add_ecs_managed_draining(asg)
    sb.create_service("c1", "web", "web", 6)
    sb.settle()
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.scale_in(asg, 2)
    report = sb.run()
    [action] = report.lifecycle_actions
    assert (action.hook_name, action.result, action.ended_by) == (
        ECS_MANAGED_DRAINING_HOOK,
        "CONTINUE",
        "complete",
    )
    assert report.lost_tasks == []
    assert victim not in sb.group_instances(asg)
    assert any(
        e.kind == "instance_draining" and e.details["instance"] == victim for e in sb.sim.events
    )
    # It completes after the last task on the instance stopped, within one poll.
    stopped = _last_task_stop_on(sb, victim)
    assert stopped <= action.ended_at <= stopped + timedelta(seconds=actor.poll_seconds)
    hook = sb.client("autoscaling").describe_lifecycle_hooks(
        AutoScalingGroupName=asg, LifecycleHookNames=[ECS_MANAGED_DRAINING_HOOK]
    )["LifecycleHooks"][0]
    assert (hook["HeartbeatTimeout"], hook["DefaultResult"]) == (3600, "CONTINUE")


def test_managed_draining_holds_up_to_48_hours_with_heartbeats(sb: Sandbox) -> None:
    asg = _cluster(sb)
    # A poll every 30 min keeps two days of virtual time quick; the heartbeats are as often.
    sb.add_ecs_managed_draining(asg, poll_seconds=1800)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim)  # never exits by itself
    sb.settle()
    sb.scale_in(asg, 2)
    report = sb.run()
    [action] = report.lifecycle_actions
    assert action.result == "CONTINUE"
    assert (action.ended_at - action.started_at) == timedelta(hours=48)
    assert action.heartbeats >= 90  # every 30 min, past the 1 h heartbeat timeout
    assert len(report.lost_tasks) == 1


def test_cdk_drain_hook_completes_once_tasks_are_gone(sb: Sandbox) -> None:
    asg = _cluster(sb)
    actor = sb.add_cdk_drain_hook(asg)
    sb.create_service("c1", "web", "web", 6)
    sb.settle()
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.scale_in(asg, 2)
    report = sb.run()
    [action] = report.lifecycle_actions
    assert action.hook_name == actor.hook_name
    assert (action.result, action.ended_by) == ("CONTINUE", "complete")
    assert report.lost_tasks == [] and actor.invocations == 1
    messages = [m for _, iid, m in actor.log if iid == victim]
    assert messages == ["container instance DRAINING", "CompleteLifecycleAction CONTINUE"]
    hook = sb.client("autoscaling").describe_lifecycle_hooks(
        AutoScalingGroupName=asg, LifecycleHookNames=[actor.hook_name]
    )["LifecycleHooks"][0]
    assert (hook["HeartbeatTimeout"], hook["DefaultResult"]) == (300, "CONTINUE")


def test_cdk_drain_hook_lets_go_after_its_drain_time(sb: Sandbox) -> None:
    asg = _cluster(sb)
    actor = sb.add_cdk_drain_hook(asg, drain_seconds=300)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim, exits_after=3600)
    sb.settle()
    sb.scale_in(asg, 2)
    report = sb.run(settle=False)
    [action] = report.lifecycle_actions
    # The hook's heartbeat timeout (= drain time) lets the instance go with CONTINUE ...
    assert (action.result, action.ended_by) == ("CONTINUE", "heartbeat_timeout")
    assert action.ended_at - action.started_at == timedelta(seconds=300)
    assert len(report.lost_tasks) == 1
    # ... and the Lambda's next look finds nothing left; its completion fails, printed only.
    assert actor.log[-1][2].startswith("CompleteLifecycleAction failed: No active Lifecycle")
    assert actor.invocations == 1


def test_cdk_lambda_times_out_and_is_retried_while_another_hook_holds(sb: Sandbox) -> None:
    asg = _cluster(sb, keep_project_hook=True, heartbeat_timeout=1800)
    actor = sb.add_cdk_drain_hook(asg, drain_seconds=300)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim, exits_after=3600)
    sb.settle()
    sb.scale_in(asg, 2)
    report = sb.run(settle=False)
    ended = {a.hook_name: a for a in report.lifecycle_actions}
    cdk, project = ended[actor.hook_name], ended[HOOK_NAME]
    assert (cdk.ended_by, cdk.ended_at - cdk.started_at) == (
        "heartbeat_timeout",
        timedelta(seconds=300),
    )
    assert project.ended_at - project.started_at == timedelta(seconds=1800)
    # Killed at drain time + 10 s, then retried twice as an asynchronous invocation.
    timeouts = [at - cdk.started_at for at, _, m in actor.log if m.startswith("Lambda timed out")]
    assert timeouts == [timedelta(seconds=s) for s in (310, 680, 1110)]
    assert actor.invocations == 3


def test_every_hook_must_complete_or_time_out(sb: Sandbox) -> None:
    asg = _cluster(sb, keep_project_hook=True)  # the project hook: 300 s, nobody completes it
    sb.add_ecs_managed_draining(asg)
    sb.settle()
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.scale_in(asg, 2)
    report = sb.run()
    ended = {a.hook_name: a for a in report.lifecycle_actions}
    managed, project = ended[ECS_MANAGED_DRAINING_HOOK], ended[HOOK_NAME]
    assert managed.ended_by == "complete" and managed.ended_at < project.ended_at
    assert project.ended_by == "heartbeat_timeout"
    # The instance waited for the slower hook.
    [(at, iid)] = sb.terminated
    assert (iid, at) == (victim, project.ended_at)


def test_abandon_from_another_hook_ends_managed_draining(sb: Sandbox) -> None:
    asg = _cluster(sb, keep_project_hook=True)
    actor = sb.add_ecs_managed_draining(asg)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim)
    sb.settle()
    sb.scale_in(asg, 2)
    sb.run(
        until=lambda: autoscaling.active_action(victim) is not None and bool(actor.log),
        settle=False,
    )
    sb.clock.advance(60)
    sb.client("autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=asg,
        LifecycleHookName=HOOK_NAME,
        InstanceId=victim,
        LifecycleActionResult="ABANDON",
    )
    ended = {a.hook_name: a.ended_by for a in autoscaling.lifecycle_actions(victim)}
    assert ended == {HOOK_NAME: "complete", ECS_MANAGED_DRAINING_HOOK: "abandoned_by_other_hook"}
    assert victim not in sb.group_instances(asg, state=None)
    assert sb.timers.pending == 0  # the actor stopped polling


def test_managed_draining_completes_pooled_terminations_at_once(sb: Sandbox) -> None:
    asg = _cluster(sb, instances=2)
    actor = sb.add_ecs_managed_draining(asg)
    sb.put_warm_pool(asg, max_group_prepared_capacity=3)
    [pooled] = sb.pooled_instances(asg)
    sb.put_warm_pool(asg, max_group_prepared_capacity=2)
    assert sb.pooled_instances(asg) == {pooled: "Warmed:Terminating:Wait"}
    sb.run()
    assert sb.pooled_instances(asg) == {}
    [action] = autoscaling.lifecycle_actions(pooled)
    assert (action.ended_by, action.origin) == ("complete", "WarmPool")
    assert [m for _, _, m in actor.log] == [
        "no container instance: nothing to drain",
        "CompleteLifecycleAction CONTINUE",
    ]


def test_in_service_hook_point_registers_only_instances_leaving_the_pool(sb: Sandbox) -> None:
    """The sandbox registers a container instance when the instance goes InService (as the ECS
    agent does with ECS_WARM_POOLS_CHECK=true), never while it is pooled."""
    asg = _cluster(sb, instances=1)
    registered: list[str] = []
    sb.on_in_service(lambda _group, instance_id: registered.append(instance_id))
    sb.put_warm_pool(asg, max_group_prepared_capacity=3)
    pooled = list(sb.pooled_instances(asg))
    assert len(pooled) == 2 and registered == []  # pooled: the agent waits for InService
    sb.client("autoscaling").set_desired_capacity(AutoScalingGroupName=asg, DesiredCapacity=2)
    assert registered == [pooled[0]]
    listed = sb.client("ecs").list_container_instances(cluster="c1")["containerInstanceArns"]
    assert len(listed) == 2
