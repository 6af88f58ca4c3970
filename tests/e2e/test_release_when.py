"""RELEASE_WHEN on the sandbox: with services_steady an empty instance is held until every
service that had tasks on it runs its desired count, whether a poll or a task-stopped event finds
it empty; a state passed back with fewer services can't shorten that."""

from __future__ import annotations

from datetime import datetime, timedelta

from local_aws import autoscaling
from local_aws.sandbox import Sandbox
from tests.e2e.conftest import SandboxFactory

CLUSTER = "c1"


def _world(sb: Sandbox) -> tuple[str, str]:
    """worker at min 50% / max 100%: a drained task's replacement starts only once it stopped,
    so the instance empties while worker is one task short."""
    asg = sb.add_cluster(CLUSTER, instances=3, heartbeat_timeout=1200)
    sb.register_task_definition("worker")
    sb.create_service(
        CLUSTER, "worker", "worker", 3, minimum_healthy_percent=50, maximum_percent=100
    )
    sb.settle()
    sb.deploy()
    [victim] = sb.scale_in_candidates(asg, 1)
    return asg, victim


def _steady_at(sb: Sandbox, service: str) -> datetime | None:
    """When the service last reached its desired count (its steady-state event)."""
    events = sb.client("ecs").describe_services(cluster=CLUSTER, services=[service])["services"][0][
        "events"
    ]
    steady = [e["createdAt"] for e in events if "has reached a steady state" in e["message"]]
    return max(steady) if steady else None


def _last_stop(sb: Sandbox, victim: str) -> datetime:
    placed = {
        e.details["task"]
        for e in sb.sim.events
        if e.kind == "task_placed" and e.details.get("instance") == victim
    }
    return max(
        e.at for e in sb.sim.events if e.kind == "task_stopped" and e.details["task"] in placed
    )


def test_services_steady_holds_the_empty_instance_until_its_service_catches_up(
    sandbox: SandboxFactory,
) -> None:
    sb = sandbox(seed=4, lambda_env={"RELEASE_WHEN": "services_steady"})
    asg, victim = _world(sb)
    sb.scale_in(asg, 2)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    [action] = autoscaling.lifecycle_actions(victim)
    empty_at = _last_stop(sb, victim)
    steady_at = _steady_at(sb, "worker")
    assert steady_at is not None and empty_at < steady_at <= action.ended_at
    # The task event that found it empty left it (worker short); a poll released it.
    event_answers = [
        inv.result
        for inv in sb.runtime.invocations
        if isinstance(inv.event, dict) and inv.event.get("source") == "aws.ecs" and inv.result
    ]
    assert any("RELEASE_WHEN=services_steady" in r["reason"] for r in event_answers)
    assert not any(r["action"] == "completed" for r in event_answers)
    polls = [
        inv.result
        for inv in sb.runtime.invocations
        if isinstance(inv.event, dict) and "state_version" in inv.event and inv.result
    ]
    assert polls[-1]["action"] == "completed"


def test_drained_releases_at_the_last_task_whatever_the_services(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=4)
    asg, victim = _world(sb)
    sb.scale_in(asg, 2)
    report = sb.run()
    assert report.all_completed
    [action] = autoscaling.lifecycle_actions(victim)
    assert action.ended_at is not None
    released_after = (action.ended_at - _last_stop(sb, victim)).total_seconds()
    assert released_after < 2
    steady_at = _steady_at(sb, "worker")
    assert steady_at is not None and action.ended_at < steady_at


def test_a_state_with_fewer_services_can_not_shorten_the_wait(sandbox: SandboxFactory) -> None:
    """The release rests on AWS's record too: the loop's input and the instance's stopped
    tasks name worker, so a state saying no service at all still waits for it."""
    import json

    from drain_hook.logic import drain_flow
    from drain_hook.models.state import DrainState
    from drain_hook.settings import Settings

    sb = sandbox(seed=4, lambda_env={"RELEASE_WHEN": "services_steady"})
    asg, victim = _world(sb)
    sb.scale_in(asg, 2)
    sfn = sb.client("stepfunctions")

    def empty_and_short() -> bool:
        running = sb.client("ecs").describe_services(cluster=CLUSTER, services=["worker"])[
            "services"
        ][0]["runningCount"]
        on_victim = [
            t
            for ci in sb.sim.backend.container_instances[CLUSTER].values()
            if ci.ec2_instance_id == victim
            for t in sb.sim.tasks_on(CLUSTER, ci.container_instance_arn)
            if t.last_status != "STOPPED"
        ]
        return not on_victim and running < 3

    deadline = sb.clock.now() + timedelta(minutes=10)
    while not empty_and_short() and sb.clock.now() < deadline:
        sb.advance(sb.clock.now() + timedelta(seconds=1))
    assert empty_and_short()
    [execution] = sfn.list_executions(stateMachineArn=sb.state_machine_arn)["executions"]
    given = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert given["release_services"] == ["worker"]
    forged = DrainState.model_validate(
        {**given, "release_services": [], "execution_name": execution["name"]}
    )
    settings = Settings(
        state_machine_arn=sb.state_machine_arn,
        cluster_name=CLUSTER,
        release_when="services_steady",
    )
    result = drain_flow.poll(forged, settings, sb.clock.now())
    assert not result.done and result.action == "draining"
    assert "worker 2/3" in result.reason
    assert result.release_services == ["worker"]  # widened from AWS's record
    assert autoscaling.active_action(victim) is not None
