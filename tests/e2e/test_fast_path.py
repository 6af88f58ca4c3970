"""Event-driven completion end to end (issue 10): ECS's "Container Instance State Change" event,
routed by the CDK app's rule, ends a drain within seconds of its last task stopping; the wait
loop is only the safety net."""

from __future__ import annotations

from datetime import datetime

from drain_hook import contract
from drain_hook.settings import Tunables
from local_aws.sandbox import Sandbox
from tests.e2e.conftest import SandboxFactory

# The short drain of the issue: three instances, two services, one instance scaled in.
ANCHOR_CALLS = 19  # aws-cdk-lib's own drain hook on the same drain


def _short_drain(sb: Sandbox) -> tuple[str, str]:
    asg = sb.add_cluster("c1", instances=3)
    for family in ("web", "worker"):
        sb.register_task_definition(family)
    sb.create_service("c1", "web", "web", 6, minimum_healthy_percent=100, maximum_percent=200)
    sb.create_service("c1", "worker", "worker", 3, minimum_healthy_percent=50, maximum_percent=100)
    sb.settle()
    sb.deploy()
    [victim] = sb.scale_in_candidates(asg, 1)
    return asg, victim


def _last_stop_on(sb: Sandbox, ec2_instance_id: str) -> datetime:
    """When the last task on the instance reached STOPPED (the ECS simulator's record)."""
    arns = {
        e.details["task"]
        for e in sb.sim.events
        if e.kind == "task_placed" and e.details.get("instance") == ec2_instance_id
    }
    return max(
        e.at for e in sb.sim.events if e.kind == "task_stopped" and e.details["task"] in arns
    )


def _instance_events(sb: Sandbox) -> list[dict]:
    return [
        i.event
        for i in sb.runtime.invocations
        if isinstance(i.event, dict)
        and i.event.get("detail-type") == contract.CONTAINER_INSTANCE_DETAIL_TYPE
    ]


def test_the_instance_is_released_within_two_seconds_of_its_last_task(sandbox: SandboxFactory):
    sb = sandbox(seed=1)
    asg, victim = _short_drain(sb)
    sb.scale_in(asg, 2)
    report = sb.run()
    [action] = report.lifecycle_actions
    assert action.ended_by == "complete" and report.lost_tasks == []
    latency = (action.ended_at - _last_stop_on(sb, victim)).total_seconds()
    assert 0 <= latency <= 2
    # The event path did it; the loop's next poll found the action over and stopped.
    actions = [i.result.get("action") for i in sb.runtime.invocations if i.result]
    assert "completed" in actions and actions[-1] == "lifecycle_ended"
    assert report.executions == 1 and report.failed_executions == []


def test_a_short_drain_costs_fewer_calls_than_the_anchor(sandbox: SandboxFactory):
    sb = sandbox(seed=1)
    asg, _victim = _short_drain(sb)
    sb.scale_in(asg, 2)
    report = sb.run()
    assert report.all_completed
    assert sum(report.calls.values()) <= ANCHOR_CALLS, report.calls


def test_with_every_event_lost_the_loop_alone_releases_within_its_longest_wait(
    sandbox: SandboxFactory,
):
    sb = sandbox(seed=2)
    asg, victim = _short_drain(sb)
    sb.lose_events({"source": [contract.ECS_SOURCE]}, 1.0)
    sb.scale_in(asg, 2)
    report = sb.run()
    [action] = report.lifecycle_actions
    assert action.ended_by == "complete" and report.lost_tasks == []
    latency = (action.ended_at - _last_stop_on(sb, victim)).total_seconds()
    assert 0 <= latency <= Tunables().poll_interval_max_seconds
    assert _instance_events(sb) == []


def test_only_instances_we_drain_wake_the_lambda(sandbox: SandboxFactory):
    """A busy cluster: tasks start and stop on every instance (a deployment replaces them all),
    yet only the drained instance's events reach the Lambda."""
    sb = sandbox(seed=3)
    asg, victim = _short_drain(sb)
    web = sb.client("ecs").describe_services(cluster="c1", services=["web"])["services"][0]
    sb.client("ecs").update_service(cluster="c1", service="web", desiredCount=9)
    sb.scale_in(asg, 2)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == [] and web
    woke = {e["detail"]["ec2InstanceId"] for e in _instance_events(sb)}
    assert woke == {victim}
    raised = [
        e
        for e in sb.sim.ecs_events
        if e["detail-type"] == contract.CONTAINER_INSTANCE_DETAIL_TYPE
        and e["detail"]["ec2InstanceId"] != victim
    ]
    assert raised, "the other instances did raise events; the rule kept them away"
