"""Lifecycle events through the intake queue (EventBridge -> SQS -> the drain Lambda, at most
INTAKE_MAX_CONCURRENCY runs at once), as the CDK app deploys it, on the sandbox."""

from __future__ import annotations

import json
from datetime import datetime

from ecs_drain_hook.timing import (
    INTAKE_MAX_CONCURRENCY,
    INTAKE_MAX_RECEIVE_COUNT,
    INTAKE_VISIBILITY_TIMEOUT_SECONDS,
    first_heartbeat_bound_seconds,
)
from local_aws.sandbox import Sandbox
from tests.e2e.conftest import SandboxFactory


def _burst_world(sb: Sandbox, instances: int) -> str:
    asg = sb.add_cluster("c1", instances=instances)
    sb.register_task_definition("web")
    sb.create_service("c1", "web", "web", instances, maximum_percent=200)
    sb.settle()
    sb.deploy()
    return asg


def _most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_a_burst_takes_its_lifecycle_events_a_capped_number_at_a_time(
    sandbox: SandboxFactory,
) -> None:
    sb = sandbox(seed=5)
    asg = _burst_world(sb, 40)
    assert sb.intake is not None and sb.intake.max_concurrency == INTAKE_MAX_CONCURRENCY
    sb.scale_in(asg, 10)  # 30 instances at once
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    runs = [(r.at, r.ended_at) for r in sb.intake.receives if r.ended_at is not None]
    assert len(runs) == 30 and all(r.outcome == "ok" for r in sb.intake.receives)
    assert 1 < _most_at_once(runs) <= INTAKE_MAX_CONCURRENCY
    # The group's hooks are read once per container (first rounds reuse the read), not per
    # instance: no more reads than containers that took lifecycle events.
    assert report.calls["autoscaling:DescribeLifecycleHooks"] <= INTAKE_MAX_CONCURRENCY


def test_a_first_round_that_fails_is_taken_again_after_the_visibility_timeout(
    sandbox: SandboxFactory,
) -> None:
    """Auto Scaling refuses the first round's reads for 100 s: the run fails before any write,
    the message comes back 150 s after its receive, and the drain then completes."""
    sb = sandbox(seed=8, lambda_env={"RETRY_MAX_ATTEMPTS": "2", "RETRY_MODE": "standard"})
    asg = _burst_world(sb, 3)
    sb.add_fault_window(
        "autoscaling:DescribeAutoScalingInstances", "server_error", start=0, end=100
    )
    calls = sb.record_calls()
    sb.scale_in(asg, 2)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    [failed, retried] = sb.intake.receives
    assert failed.outcome == "function_error" and retried.outcome == "ok"
    assert retried.receive_counts == [2]
    assert (retried.at - failed.at).total_seconds() == INTAKE_VISIBILITY_TIMEOUT_SECONDS
    [action] = report.lifecycle_actions
    # The failed run wrote nothing: the first write (the heartbeat) came in the second one.
    writes = [c for c in calls if c.operation.split(":")[1].startswith(("Record", "Update"))]
    assert writes and min(c.at for c in writes) >= retried.at
    assert (retried.at - action.started_at).total_seconds() < first_heartbeat_bound_seconds()


def test_a_lifecycle_event_failing_every_receive_goes_to_the_dead_letter_queue(
    sandbox: SandboxFactory,
) -> None:
    """A broken deploy: every run fails. After maxReceiveCount receives the event moves to the
    dead-letter queue (alarm DeadLetters) and the hook's own timeout ends the hold."""
    sb = sandbox(seed=4)
    asg = _burst_world(sb, 3)
    sb.add_fault("lambda:*", "function_error", probability=1.0)
    sb.scale_in(asg, 2)
    report = sb.run(settle=False)
    [action] = report.lifecycle_actions
    assert action.ended_by == "heartbeat_timeout"
    assert [r.receive_counts for r in sb.intake.receives] == [
        [n] for n in range(1, INTAKE_MAX_RECEIVE_COUNT + 1)
    ]
    [moved] = sb.intake.dead_lettered
    assert json.loads(moved.body)["detail"]["EC2InstanceId"] == action.instance_id
    sqs = sb.client("sqs")
    url = sqs.get_queue_url(QueueName=sb.definition.intake.dead_letter_queue)["QueueUrl"]
    bodies = [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    # The lifecycle event itself, and Lambda's records of the task-stopped events it failed on
    # (the instance's tasks stopped when it terminated; the function was broken for them too)
    # and of the sweep's scheduled runs (broken too, so the sweep could not recover the drain).
    [event] = [b for b in bodies if "requestPayload" not in b]
    assert event["detail"]["LifecycleActionToken"] == action.token
    others = [b["requestPayload"]["detail-type"] for b in bodies if "requestPayload" in b]
    assert set(others) <= {"ECS Task State Change", "Scheduled Event"}
