"""The drain end to end: scale-in, hook, EventBridge rule, the real Lambda, the real state machine,
the ECS scheduler, lifecycle completion. All on virtual time; assertions on outcomes only."""

from __future__ import annotations

import json
import math

from local_aws.sandbox import HOOK_NAME, Sandbox
from tests.e2e.conftest import SandboxFactory


def _cluster(sb: Sandbox, name: str = "c1", instances: int = 3, **kwargs: object) -> str:
    asg = sb.add_cluster(name, instances=instances, **kwargs)  # type: ignore[arg-type]
    for family in ("web", "worker", "agent", "batch"):
        sb.register_task_definition(family)
    return asg


def _actions(sb: Sandbox, instance_id: str | None = None) -> list:
    from local_aws import autoscaling

    return autoscaling.lifecycle_actions(instance_id)


def _results(sb: Sandbox) -> list[dict]:
    return [i.result for i in sb.runtime.invocations if i.result is not None]


def _running(sb: Sandbox, cluster: str, service: str) -> int:
    svc = sb.client("ecs").describe_services(cluster=cluster, services=[service])["services"][0]
    return svc["runningCount"]


def test_happy_path_replaces_service_tasks_and_completes(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=1)
    asg = _cluster(sb)
    sb.create_service("c1", "web", "web", 6, minimum_healthy_percent=100, maximum_percent=200)
    sb.create_service("c1", "worker", "worker", 3, minimum_healthy_percent=50, maximum_percent=100)
    sb.settle()
    sb.deploy()
    sb.sim.reset_min_running()
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.scale_in(asg, 2)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    [action] = report.lifecycle_actions
    assert (action.instance_id, action.result) == (victim, "CONTINUE")
    assert _running(sb, "c1", "web") == 6 and _running(sb, "c1", "worker") == 3
    seen = sb.sim.min_running_seen()
    assert seen["c1:web"] >= 6 and seen["c1:worker"] >= math.ceil(3 * 0.5)
    assert report.executions == 1 and report.failed_executions == []
    assert victim not in sb.group_instances(asg)
    assert report.calls["autoscaling:CompleteLifecycleAction"] == 1
    assert "ecs:StopTask" not in report.calls  # ECS stops service tasks, not the Lambda


def test_instance_without_tasks_completes_at_once(sandbox: SandboxFactory) -> None:
    sb = sandbox()
    asg = _cluster(sb, instances=2)
    sb.deploy()
    sb.scale_in(asg, 1)
    report = sb.run()
    assert report.all_completed
    assert report.executions == 0  # nothing to wait for: no wait loop
    # At once: within EventBridge's delivery latency (the sandbox bus: 0.1 to 0.5 s) and the
    # init phase of the Lambda environment the event started.
    [action] = report.lifecycle_actions
    assert action.ended_at is not None
    bound = 0.5 + sb.runtime.cold_start_seconds
    assert (action.ended_at - action.started_at).total_seconds() <= bound


def test_standalone_task_under_wait_holds_until_it_exits(sandbox: SandboxFactory) -> None:
    sb = sandbox(lambda_env={"STANDALONE_TASKS": "wait"})
    asg = _cluster(sb, instances=2)
    [victim] = sb.scale_in_candidates(asg, 1)
    task = sb.run_standalone("c1", "batch", victim, exits_after=900)
    sb.settle()
    sb.deploy()
    sb.scale_in(asg, 1)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    [action] = report.lifecycle_actions
    assert (action.ended_at - action.started_at).total_seconds() >= 900
    assert "ecs:StopTask" not in report.calls
    desc = sb.client("ecs").describe_tasks(cluster="c1", tasks=[task])["tasks"][0]
    assert desc["stoppedReason"] == "Essential container in task exited"


def _scale_in_with_a_standalone_task(sb: Sandbox) -> tuple[str, str]:
    """Two instances; a standalone task that never exits by itself on the one scaled in."""
    asg = _cluster(sb, instances=2)
    [victim] = sb.scale_in_candidates(asg, 1)
    task = sb.run_standalone("c1", "batch", victim)
    sb.settle()
    sb.deploy()
    sb.scale_in(asg, 1)
    return victim, task


def test_standalone_task_under_stop_is_stopped_after_grace(sandbox: SandboxFactory) -> None:
    sb = sandbox(lambda_env={"STANDALONE_TASKS": "stop", "STANDALONE_GRACE_SECONDS": "300"})
    _victim, task = _scale_in_with_a_standalone_task(sb)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    assert report.calls["ecs:StopTask"] == 1
    [action] = report.lifecycle_actions
    assert (action.ended_at - action.started_at).total_seconds() >= 300
    desc = sb.client("ecs").describe_tasks(cluster="c1", tasks=[task])["tasks"][0]
    assert desc["lastStatus"] == "STOPPED"


def test_a_first_round_without_a_scaling_activity_still_applies_the_standalone_policy(
    sandbox: SandboxFactory,
) -> None:
    """No grace and no scaling activity to read (Auto Scaling has no record within the pages
    the Lambda reads): the first round counts the hold from now, as it built it itself, and
    stops the standalone task; it does not refuse its own start as unverified."""
    from local_aws import autoscaling

    sb = sandbox(lambda_env={"STANDALONE_TASKS": "stop", "STANDALONE_GRACE_SECONDS": "0"})
    victim, task = _scale_in_with_a_standalone_task(sb)
    autoscaling.drop_activities(victim)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    assert not [i.error for i in sb.runtime.invocations if i.error]
    desc = sb.client("ecs").describe_tasks(cluster="c1", tasks=[task])["tasks"][0]
    assert desc["lastStatus"] == "STOPPED"


def test_daemon_tasks_only_stop_last_and_complete(sandbox: SandboxFactory) -> None:
    sb = sandbox()
    asg = _cluster(sb, instances=2)
    sb.create_service("c1", "agent", "agent", daemon=True)
    sb.settle()
    sb.deploy()
    sb.scale_in(asg, 1)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    assert _running(sb, "c1", "agent") == 1  # one daemon task on the instance left


def test_deadline_stops_what_remains_and_completes(sandbox: SandboxFactory) -> None:
    sb = sandbox(
        lambda_env={
            "MAX_DRAIN_SECONDS": "600",
            "STANDALONE_TASKS": "wait",
            "AT_DEADLINE": "stop_tasks",
        }
    )
    asg = _cluster(sb, instances=2)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim)  # runs forever: only the deadline ends the drain
    sb.settle()
    sb.deploy()
    sb.scale_in(asg, 1)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    [action] = report.lifecycle_actions
    elapsed = (action.ended_at - action.started_at).total_seconds()
    assert 600 <= elapsed <= 600 + 45 + 180
    assert report.calls["ecs:StopTask"] == 1
    actions = [r["action"] for r in _results(sb)]
    # The policy stopped the task at the deadline; whichever path saw the instance empty first
    # (the ECS event or the loop's poll at the end of the grace) completed the action.
    assert "stopping" in actions
    assert {"completed", "deadline"} & set(actions)


def test_drain_longer_than_heartbeat_timeout_is_kept_alive(sandbox: SandboxFactory) -> None:
    sb = sandbox()
    asg = _cluster(sb, instances=2, heartbeat_timeout=120)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim, exits_after=3600)
    sb.settle()
    sb.deploy()
    sb.scale_in(asg, 1)
    report = sb.run()
    [action] = report.lifecycle_actions
    assert action.ended_by == "complete"  # not heartbeat_timeout
    assert (action.ended_at - action.started_at).total_seconds() >= 3600
    assert action.heartbeats >= 3600 // 120
    assert report.lost_tasks == []


def test_duplicate_event_starts_one_loop(sandbox: SandboxFactory) -> None:
    sb = sandbox()
    asg = _cluster(sb, instances=2)
    sb.create_service("c1", "web", "web", 4)
    sb.settle()
    sb.deploy()
    sb.scale_in(asg, 1)
    sb.run(until=lambda: len(sb.bus.deliveries) >= 1, settle=False)
    first = sb.bus.deliveries[0].event
    assert sb.put_event(json.loads(json.dumps(first))) == 1  # at-least-once: delivered again
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    assert report.executions == 1
    assert len(report.lifecycle_actions) == 1
    assert report.calls["autoscaling:CompleteLifecycleAction"] == 1


def test_instance_not_in_cluster_completes_at_once(sandbox: SandboxFactory) -> None:
    sb = sandbox()
    asg = _cluster(sb, instances=2)
    [victim] = sb.scale_in_candidates(asg, 1)
    ci = sb.client("ecs").list_container_instances(cluster="c1")["containerInstanceArns"]
    for arn in ci:
        desc = sb.client("ecs").describe_container_instances(cluster="c1", containerInstances=[arn])
        if desc["containerInstances"][0]["ec2InstanceId"] == victim:
            sb.client("ecs").deregister_container_instance(cluster="c1", containerInstance=arn)
    sb.deploy()
    sb.scale_in(asg, 1)
    report = sb.run()
    assert report.all_completed and report.executions == 0
    assert _results(sb)[0]["action"] == "not_registered"


def test_several_instances_at_once(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=5)
    asg = _cluster(sb, instances=5)
    sb.create_service("c1", "web", "web", 10)
    sb.create_service("c1", "worker", "worker", 5, minimum_healthy_percent=50, maximum_percent=100)
    sb.settle()
    sb.deploy()
    sb.scale_in(asg, 2)
    report = sb.run()
    assert len(report.lifecycle_actions) == 3
    assert report.all_completed and report.lost_tasks == []
    assert _running(sb, "c1", "web") == 10 and _running(sb, "c1", "worker") == 5
    assert len(sb.group_instances(asg)) == 2


def test_two_groups_on_two_clusters(sandbox: SandboxFactory) -> None:
    sb = sandbox()
    asg_a = _cluster(sb, "alpha", instances=2)
    asg_b = sb.add_cluster("beta", instances=2)
    sb.create_service("alpha", "web", "web", 2)
    sb.create_service("beta", "web", "web", 2)
    sb.settle()
    sb.deploy()  # one deployment, CLUSTER_NAME=alpha; beta comes from the hook's metadata
    sb.scale_in(asg_a, 1)
    sb.scale_in(asg_b, 1)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    assert {a.asg_name for a in report.lifecycle_actions} == {asg_a, asg_b}
    assert _running(sb, "alpha", "web") == 2 and _running(sb, "beta", "web") == 2


def test_event_of_another_group_or_hook_is_not_delivered(sandbox: SandboxFactory) -> None:
    sb = sandbox()
    asg = _cluster(sb, instances=2)
    sb.deploy()
    sb.run(settle=False)
    event = {
        "source": "aws.autoscaling",
        "detail-type": "EC2 Instance-terminate Lifecycle Action",
        "detail": {"AutoScalingGroupName": "someone-else", "LifecycleHookName": HOOK_NAME},
    }
    assert sb.put_event(event) == 0
    event["detail"] = {"AutoScalingGroupName": asg, "LifecycleHookName": "other-hook"}
    assert sb.put_event(event) == 0
