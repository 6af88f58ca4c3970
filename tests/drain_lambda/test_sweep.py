"""The sweep for lost lifecycle events, on the real code path against moto (and local_aws's
lifecycle actions): what it reads, what it sends through the intake queue, and what the rounds
of its messages do."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from drain_hook import contract
from tests.conftest import REGION
from tests.drain_lambda.conftest import HOOK, World, begin_termination

CLUSTER = "sweep-cluster"
GROUP = "sweep-asg"
SCHEDULED = {
    "version": "0",
    "id": "5e6f7a8b-0000-0000-0000-000000000000",
    "detail-type": contract.SCHEDULE_DETAIL_TYPE,
    "source": contract.SCHEDULE_SOURCE,
    "account": "123456789012",
    "time": "2025-01-06T09:00:00Z",
    "region": REGION,
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"],
    "detail": {},
}


@pytest.fixture
def sweep_world(world: World, lambda_env) -> tuple[World, str, list[str]]:
    """A cluster, a hooked group of three registered instances, and the intake queue."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="intake")["QueueUrl"]
    lambda_env(HOOKED_GROUPS=json.dumps([GROUP]), HOOK_NAME=HOOK, INTAKE_QUEUE_URL=url)
    world.cluster(CLUSTER)
    instances = world.group(GROUP, 3, cluster=CLUSTER, heartbeat=1200)
    for instance_id in instances:
        world.register(CLUSTER, instance_id)
    return world, url, instances


def queued(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def as_queue_record(body: dict[str, Any]) -> dict[str, Any]:
    """The intake queue's batch of one, as the event source mapping hands it to the Lambda."""
    return {
        "Records": [
            {
                "messageId": "1",
                "receiptHandle": "r",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:intake",
            }
        ]
    }


def test_with_nothing_waiting_a_sweep_costs_one_describe(sweep_world, handler) -> None:
    world, url, _ = sweep_world
    world.calls.clear()
    result = handler(SCHEDULED)
    assert result["action"] == "swept" and result["waiting"] == 0
    assert world.calls == ["autoscaling:DescribeAutoScalingGroups"]
    assert queued(url) == []


def test_a_lost_event_is_sent_once_the_grace_is_over_and_its_round_drains(
    sweep_world, handler, capsys
) -> None:
    world, url, instances = sweep_world
    victim = instances[0]
    begin_termination(GROUP, victim)  # the event is never delivered
    world.clock.advance(contract.SWEEP_GRACE_SECONDS - 5)
    young = handler(SCHEDULED)
    assert young["waiting"] == 1 and young["sent"] == [] and queued(url) == []

    world.clock.advance(10)
    world.calls.clear()
    swept = handler(SCHEDULED)
    assert swept["sent"] == [victim]
    assert "ecs:UpdateContainerInstancesState" not in world.calls  # the sweep writes nothing
    [message] = queued(url)
    assert message["source"] == contract.SWEEP_SOURCE
    assert message["detail-type"] == contract.LIFECYCLE_DETAIL_TYPE
    assert message["detail"] == {
        "AutoScalingGroupName": GROUP,
        "LifecycleHookName": HOOK,
        "EC2InstanceId": victim,
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "NotificationMetadata": json.dumps({"cluster": CLUSTER}),
    }

    capsys.readouterr()
    result = handler(as_queue_record(message))
    assert result["action"] == "completed"  # no task on it: completed at once
    assert world.lifecycle_state(victim) is None
    out = capsys.readouterr().out
    assert contract.METRIC_LOST_EVENTS_RECOVERED in out


def test_an_instance_with_a_running_loop_or_a_drain_record_is_left_alone(
    sweep_world, handler
) -> None:
    world, url, instances = sweep_world
    running, ended = instances[0], instances[1]
    for instance_id in (running, ended):
        arn = _arn(world, instance_id)
        world.run_tasks(CLUSTER, arn, 1, group="family:batch")
        result = handler(begin_termination(GROUP, instance_id))
        assert result["action"] == "draining"
    # The second loop ended (an operator stopped it): its release is the loop-end event's.
    [stopped] = [e for e in world.executions() if e["name"].startswith(ended)]
    world.sfn.stop_execution(executionArn=stopped["executionArn"])
    world.clock.advance(600)
    world.calls.clear()
    result = handler(SCHEDULED)
    assert result["waiting"] == 2 and result["sent"] == []
    assert "stepfunctions:ListExecutions" in world.calls
    assert "ecs:ListContainerInstances" in world.calls  # for the one with no running loop
    assert queued(url) == []


def test_nothing_is_sent_while_the_intake_queue_holds_messages(sweep_world, handler) -> None:
    world, url, instances = sweep_world
    begin_termination(GROUP, instances[0])
    boto3.client("sqs", region_name=REGION).send_message(QueueUrl=url, MessageBody="{}")
    world.clock.advance(600)
    result = handler(SCHEDULED)
    assert result["sent"] == [] and "intake queue holds 1" in result["reason"]


def test_a_sweep_message_for_an_action_whose_loop_runs_is_a_duplicate(sweep_world, handler):
    """The event came after all (late, not lost) and its loop runs: the sweep's message for the
    same action, addressed by instance id, finds that loop and starts no second one."""
    world, _url, instances = sweep_world
    victim = instances[0]
    world.run_tasks(CLUSTER, _arn(world, victim), 1, group="family:batch")
    event = begin_termination(GROUP, victim)
    message = _sweep_message(victim)
    assert handler(event)["action"] == "draining"
    result = handler(as_queue_record(message))
    assert result["action"] == "duplicate"
    assert len(world.executions()) == 1


def test_a_deleting_groups_waiting_instances_are_all_sent_and_completed_at_once(
    sweep_world, handler, capsys
) -> None:
    world, url, instances = sweep_world
    victim = instances[0]
    world.run_tasks(CLUSTER, _arn(world, victim), 2, group="family:batch")
    assert handler(begin_termination(GROUP, victim))["action"] == "draining"  # a loop runs
    world.autoscaling.delete_auto_scaling_group(AutoScalingGroupName=GROUP, ForceDelete=True)
    group = world.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
    assert group["AutoScalingGroups"][0]["Status"] == "Delete in progress"
    result = handler(SCHEDULED)
    # The outstanding action was deleted with the group (ForceDelete); the other two wait.
    assert sorted(result["sent"]) == sorted(instances[1:])
    capsys.readouterr()
    for message in queued(url):
        round_ = handler(as_queue_record(message))
        assert round_["action"] == "group_deleting"
    assert contract.METRIC_DRAINS_SKIPPED_GROUP_DELETING in capsys.readouterr().out
    assert [world.lifecycle_state(i) for i in instances[1:]] == [None, None]


def test_without_its_wiring_the_sweep_does_nothing(world, handler) -> None:
    world.calls.clear()
    result = handler(SCHEDULED)
    assert result["action"] == "swept" and "nothing" in result["reason"]
    assert world.calls == []


def _arn(world: World, instance_id: str) -> str:
    listed = world.ecs.list_container_instances(
        cluster=CLUSTER, filter=f"ec2InstanceId == {instance_id}"
    )["containerInstanceArns"]
    described = world.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=listed)
    return next(
        c["containerInstanceArn"]
        for c in described["containerInstances"]
        if c["ec2InstanceId"] == instance_id
    )


def _sweep_message(instance_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000001",
        "detail-type": contract.LIFECYCLE_DETAIL_TYPE,
        "source": contract.SWEEP_SOURCE,
        "account": "123456789012",
        "time": "2025-01-06T09:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "AutoScalingGroupName": GROUP,
            "LifecycleHookName": HOOK,
            "EC2InstanceId": instance_id,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "NotificationMetadata": json.dumps({"cluster": CLUSTER}),
        },
    }


def test_the_grace_counts_from_auto_scalings_record(sweep_world, handler) -> None:
    """An instance with no scaling activity on record is taken as old enough."""
    world, _url, instances = sweep_world
    begin_termination(GROUP, instances[0])
    from local_aws import autoscaling

    autoscaling.drop_activities(instances[0])
    world.clock.advance(1)  # well inside the grace, were the start on record
    assert handler(SCHEDULED)["sent"] == [instances[0]]


def test_an_instance_another_hook_still_holds_is_probed_not_sent(sweep_world, handler) -> None:
    """Our action is over, ECS's managed draining hook still holds the instance: the heartbeat
    by instance id fails, so no message is sent (each run would send one for as long as that
    hook holds it, and keep the intake queue from looking empty)."""
    world, url, instances = sweep_world
    victim = instances[0]
    world.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=GROUP,
        LifecycleHookName="ecs-managed-draining-termination-hook",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=3600,
        DefaultResult="CONTINUE",
    )
    begin_termination(GROUP, victim)
    world.autoscaling.complete_lifecycle_action(
        AutoScalingGroupName=GROUP,
        LifecycleHookName=HOOK,
        InstanceId=victim,
        LifecycleActionResult="CONTINUE",
    )
    assert world.lifecycle_state(victim) == "Terminating:Wait"  # the other hook's wait
    world.clock.advance(contract.SWEEP_GRACE_SECONDS + 10)
    world.calls.clear()
    result = handler(SCHEDULED)
    assert result["waiting"] == 1 and result["sent"] == []
    assert world.calls.count("autoscaling:RecordLifecycleActionHeartbeat") == 1
    assert queued(url) == []
