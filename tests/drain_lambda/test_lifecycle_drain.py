"""The drain Lambda on the real code path against moto (plus local_aws's lifecycle actions)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from drain_hook.logic.decision import first_wait_spread
from drain_hook.settings import load_settings
from tests.drain_lambda.conftest import HOOK, World, begin_termination, wait_as_the_loop_does
from tests.drain_lambda.sample_events import eventbridge

CLUSTER = "default-cluster"


def poll(handler, state: dict[str, Any], world: World) -> dict[str, Any]:
    """What the wait loop does: wait the seconds asked for, pass the state back unchanged."""
    wait_as_the_loop_does(world, state)
    return handler(state)


@pytest.fixture
def one_instance(world: World) -> tuple[str, str]:
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1)
    return instance_id, world.register(CLUSTER, instance_id)


def test_instance_with_no_tasks_completes_at_once_without_a_loop(world, handler, one_instance):
    instance_id, arn = one_instance
    result = handler(begin_termination("web-asg", instance_id))

    assert result["done"] is True
    assert result["action"] == "completed"
    assert result["tasks_remaining"] == 0
    assert world.instance_status(CLUSTER, arn) == "DRAINING"
    assert world.executions() == []
    assert world.lifecycle_state(instance_id) is None  # completed: the instance terminated


def test_tasks_hold_the_instance_until_stopped(world, handler, one_instance):
    instance_id, arn = one_instance
    tasks = world.run_tasks(CLUSTER, arn, 3, group="service:web")
    world.service(CLUSTER, "web")

    result = handler(begin_termination("web-asg", instance_id))
    assert (result["done"], result["action"], result["tasks_remaining"]) == (False, "draining", 3)
    assert result["tasks"] == {"service": 3, "daemon": 0, "standalone": 0}
    assert world.instance_status(CLUSTER, arn) == "DRAINING"
    [execution] = world.executions()
    assert execution["name"] == f"{instance_id}-{result['lifecycle_action_token']}"
    assert world.lifecycle_state(instance_id) == "Terminating:Wait"

    # ECS stops the tasks over time; a task still DEACTIVATING or STOPPING keeps the hold.
    world.set_task(CLUSTER, tasks[0], last="STOPPED", desired="STOPPED")
    world.set_task(CLUSTER, tasks[1], last="DEACTIVATING", desired="STOPPED")
    world.set_task(CLUSTER, tasks[2], last="STOPPING", desired="STOPPED")
    result = poll(handler, result, world)
    assert (result["done"], result["tasks_remaining"]) == (False, 2)
    assert world.lifecycle_state(instance_id) == "Terminating:Wait"

    world.set_task(CLUSTER, tasks[1], last="STOPPED", desired="STOPPED")
    world.set_task(CLUSTER, tasks[2], last="DEPROVISIONING", desired="STOPPED")
    result = poll(handler, result, world)
    assert (result["done"], result["tasks_remaining"]) == (False, 1)

    world.set_task(CLUSTER, tasks[2], last="STOPPED", desired="STOPPED")
    result = poll(handler, result, world)
    assert (result["done"], result["action"], result["tasks_remaining"]) == (True, "completed", 0)
    assert world.lifecycle_state(instance_id) is None


def test_poll_backs_off_from_first_to_longest_interval(world, handler, lambda_env):
    lambda_env(POLL_INTERVAL_FIRST_SECONDS="10", POLL_INTERVAL_MAX_SECONDS="45")
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1, heartbeat=3600)  # heartbeats don't cap the waits
    arn = world.register(CLUSTER, instance_id)
    world.run_tasks(CLUSTER, arn, 1)
    result = handler(begin_termination("web-asg", instance_id))
    waits = [result["wait_seconds"]]
    for _ in range(4):
        result = poll(handler, result, world)
        waits.append(result["wait_seconds"])
    # The first wait is spread by up to a quarter of the interval, fixed per instance.
    spread = first_wait_spread(instance_id, load_settings())
    assert 0 <= spread <= 10 // 4
    assert waits == [10 + spread, 20, 40, 45, 45]


def test_duplicate_event_starts_one_loop_and_changes_nothing(world, handler, one_instance):
    instance_id, arn = one_instance
    world.run_tasks(CLUSTER, arn, 2)
    event = begin_termination("web-asg", instance_id)

    first = handler(event)
    world.clock.advance(1)
    second = handler(event)

    assert first["action"] == "draining"
    assert (second["done"], second["action"]) == (True, "duplicate")
    assert len(world.executions()) == 1
    assert world.instance_status(CLUSTER, arn) == "DRAINING"
    assert world.lifecycle_state(instance_id) == "Terminating:Wait"


def test_instance_not_in_cluster_completes_with_continue(world, handler):
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1)
    other = world.standalone_instances(1)[0]
    world.register(CLUSTER, other)

    result = handler(begin_termination("web-asg", instance_id))
    assert (result["done"], result["action"], result["tasks_remaining"]) == (
        True,
        "not_registered",
        0,
    )
    assert world.lifecycle_state(instance_id) is None
    assert world.executions() == []


@pytest.mark.parametrize("status", ["REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED"])
def test_instances_ecs_cannot_drain_are_completed(world, handler, one_instance, status):
    from local_aws.ecs_states import set_container_instance_status

    instance_id, arn = one_instance
    set_container_instance_status(CLUSTER, arn, status)

    result = handler(begin_termination("web-asg", instance_id))
    assert (result["done"], result["action"]) == (True, "not_drainable")
    assert status in result["reason"]
    assert world.instance_status(CLUSTER, arn) == status
    assert world.lifecycle_state(instance_id) is None


def test_inactive_container_instance_is_not_registered_and_completed(world, handler, one_instance):
    """A deregistered (INACTIVE) container instance: ListContainerInstances lists every status
    but INACTIVE and refuses status=INACTIVE (API reference), so the EC2 instance has no
    registration in the cluster and its lifecycle action is completed at once."""
    from local_aws.ecs_states import set_container_instance_status

    instance_id, arn = one_instance
    set_container_instance_status(CLUSTER, arn, "INACTIVE")

    result = handler(begin_termination("web-asg", instance_id))
    assert (result["done"], result["action"], result["tasks_remaining"]) == (
        True,
        "not_registered",
        0,
    )
    assert world.instance_status(CLUSTER, arn) == "INACTIVE"
    assert world.lifecycle_state(instance_id) is None
    assert world.executions() == []
    listings = [call for call in world.calls if call == "ecs:ListContainerInstances"]
    assert len(listings) == 1  # one listing, with no status (status=INACTIVE is refused)


def test_already_draining_instance_goes_on(world, handler, one_instance):
    instance_id, arn = one_instance
    world.run_tasks(CLUSTER, arn, 1)
    world.ecs.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[arn], status="DRAINING"
    )
    result = handler(begin_termination("web-asg", instance_id))
    assert (result["action"], result["tasks_remaining"]) == ("draining", 1)
    assert len(world.executions()) == 1


def test_large_cluster_is_searched_by_filter_and_confirmed(world, handler):
    """150 container instances; moto ignores the ec2InstanceId filter and lists them all."""
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1)
    for other in world.standalone_instances(149):
        world.register(CLUSTER, other)
    arn = world.register(CLUSTER, instance_id)
    world.run_tasks(CLUSTER, arn, 1)

    result = handler(begin_termination("web-asg", instance_id))
    assert result["container_instance_arn"] == arn
    assert result["tasks_remaining"] == 1
    draining = world.ecs.list_container_instances(cluster=CLUSTER, status="DRAINING")
    assert draining["containerInstanceArns"] == [arn]


def test_instance_with_250_tasks_is_counted_in_full(world, handler, one_instance):
    instance_id, arn = one_instance
    tasks = world.run_tasks(CLUSTER, arn, 250)
    for arn_ in tasks[:40]:  # told to stop, not stopped yet: still counted
        world.set_task(CLUSTER, arn_, last="STOPPING", desired="STOPPED")
    for arn_ in tasks[40:60]:
        world.set_task(CLUSTER, arn_, last="STOPPED", desired="STOPPED")

    result = handler(begin_termination("web-asg", instance_id))
    assert result["tasks_remaining"] == 230
    assert result["tasks"]["standalone"] == 230


def test_cluster_from_notification_metadata_wins(world, handler):
    world.cluster(CLUSTER)
    world.cluster("blue")
    world.cluster("green")
    blue_ids = world.group("blue-asg", 1, cluster="blue")
    green_ids = world.group("green-asg", 1, cluster="green")
    blue_arn = world.register("blue", blue_ids[0])
    green_arn = world.register("green", green_ids[0])
    world.run_tasks("green", green_arn, 1)

    blue = handler(begin_termination("blue-asg", blue_ids[0]))
    green = handler(begin_termination("green-asg", green_ids[0]))

    assert (blue["cluster"], blue["action"]) == ("blue", "completed")
    assert (green["cluster"], green["action"], green["tasks_remaining"]) == ("green", "draining", 1)
    assert world.instance_status("blue", blue_arn) == "DRAINING"
    assert world.instance_status("green", green_arn) == "DRAINING"


def test_sns_delivery_drains_like_eventbridge(world, handler, one_instance):
    instance_id, arn = one_instance
    world.run_tasks(CLUSTER, arn, 1)
    detail = begin_termination("web-asg", instance_id)["detail"]
    message = {**detail, "Service": "AWS Auto Scaling", "Time": "2025-01-06T09:00:00.000Z"}
    result = handler(sns_event(json.dumps(message)))
    assert (result["action"], result["tasks_remaining"]) == ("draining", 1)
    assert result["lifecycle_action_token"] == detail["LifecycleActionToken"]


def _queued(*events: dict[str, Any]) -> dict[str, Any]:
    """What the intake queue's event source mapping sends: one SQS record per message."""
    records = [
        {
            "messageId": f"message-{n}",
            "receiptHandle": f"handle-{n}",
            "body": json.dumps(event),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:intake",
            "awsRegion": "us-east-1",
        }
        for n, event in enumerate(events)
    ]
    return {"Records": records}


def test_intake_queue_delivery_drains_like_eventbridge(world, handler, one_instance):
    instance_id, arn = one_instance
    world.run_tasks(CLUSTER, arn, 1)
    event = begin_termination("web-asg", instance_id)
    result = handler(_queued(event))
    assert (result["action"], result["tasks_remaining"]) == ("draining", 1)
    assert world.instance_status(CLUSTER, arn) == "DRAINING"
    # The same event again (SQS delivers at least once): the loop already runs.
    again = handler(_queued(event))
    assert again["action"] == "duplicate"
    assert len(world.executions()) == 1


def test_an_intake_batch_of_several_records_is_refused_before_any_aws_call(
    world, handler, one_instance
):
    """The event source mapping sends one record per invoke: a larger batch is not taken in a
    loop but refused, whole, before any call."""
    from drain_hook.errors import InputRejected

    instance_id, _arn = one_instance
    event = begin_termination("web-asg", instance_id)
    world.calls.clear()
    with pytest.raises(InputRejected, match="got 2"):
        handler(_queued(event, event))
    assert world.calls == []
    assert world.executions() == []


def test_sns_test_notification_is_ignored_without_aws_calls(world, handler, one_instance):
    _instance_id, _arn = one_instance
    message = json.dumps(
        {"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": "web-asg"}
    )
    result = handler(sns_event(message))
    assert result == {
        "done": True,
        "instance_id": None,
        "tasks_remaining": 0,
        "action": "ignored",
        "wait_seconds": 0,
        "reason": "Auto Scaling test notification",
    }
    assert world.calls == []


def test_manual_invoke_with_hook_completes_by_instance_id(world, handler, one_instance):
    instance_id, _arn = one_instance
    begin_termination("web-asg", instance_id)
    result = handler({"instance_id": instance_id, "asg_name": "web-asg", "hook_name": HOOK})
    assert (result["done"], result["action"]) == (True, "completed")
    assert result["lifecycle_action_token"] is None
    assert world.lifecycle_state(instance_id) is None


def test_manual_invoke_without_hook_drains_and_completes_nothing(world, handler, one_instance):
    instance_id, arn = one_instance
    begin_termination("web-asg", instance_id)
    result = handler({"instance_id": instance_id, "cluster": CLUSTER})
    assert (result["done"], result["action"]) == (True, "drained")
    assert world.instance_status(CLUSTER, arn) == "DRAINING"
    assert world.lifecycle_state(instance_id) == "Terminating:Wait"


def test_dry_run_reports_and_writes_nothing(world, handler, one_instance):
    instance_id, arn = one_instance
    world.run_tasks(CLUSTER, arn, 2)
    begin_termination("web-asg", instance_id)
    result = handler(
        {"instance_id": instance_id, "asg_name": "web-asg", "hook_name": HOOK, "dry_run": True}
    )
    assert (result["done"], result["action"], result["tasks_remaining"]) == (True, "dry_run", 2)
    assert result["planned"] == [
        "record lifecycle heartbeat",
        "set container instance DRAINING",
        "record the drain on the container instance",
        "start the wait loop",
    ]
    assert world.calls and world.writes() == []
    assert world.instance_status(CLUSTER, arn) == "ACTIVE"
    assert world.executions() == []
    assert world.lifecycle_state(instance_id) == "Terminating:Wait"


def test_poll_after_lifecycle_ended_elsewhere_is_done_without_completion(
    world, handler, one_instance
):
    instance_id, arn = one_instance
    world.run_tasks(CLUSTER, arn, 1)
    state = handler(begin_termination("web-asg", instance_id))
    world.autoscaling.complete_lifecycle_action(
        AutoScalingGroupName="web-asg",
        LifecycleHookName=HOOK,
        InstanceId=instance_id,
        LifecycleActionResult="CONTINUE",
    )
    result = poll(handler, state, world)
    assert (result["done"], result["action"]) == (True, "lifecycle_ended")


def test_finished_state_passed_back_is_returned_unchanged(world, handler, one_instance):
    instance_id, _ = one_instance
    done = handler(begin_termination("web-asg", instance_id))
    assert handler(done) == done


def test_heartbeats_keep_a_drain_longer_than_the_heartbeat_timeout(world, handler):
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1, heartbeat=60)
    arn = world.register(CLUSTER, instance_id)
    [task] = world.run_tasks(CLUSTER, arn, 1)

    state = handler(begin_termination("web-asg", instance_id))
    assert state["heartbeat_timeout_seconds"] == 60
    started = world.clock.now()
    while (world.clock.now() - started).total_seconds() < 600:
        plan = state["heartbeat_plan"]
        # a wait longer than 30 s (half the timeout) is cut by the loop's own heartbeats
        assert state["wait_seconds"] <= 30 or (plan and plan["every"] == 30)
        state = poll(handler, state, world)
        assert world.lifecycle_state(instance_id) == "Terminating:Wait"
    assert state["last_heartbeat_at"] is not None
    from local_aws import autoscaling

    [action] = autoscaling.lifecycle_actions(instance_id)
    assert action.heartbeats >= 600 // 30 - 1

    world.set_task(CLUSTER, task, last="STOPPED", desired="STOPPED")
    state = poll(handler, state, world)
    assert state["action"] == "completed"


def test_deadline_stops_remaining_tasks_then_completes(world, handler, one_instance, lambda_env):
    lambda_env(MAX_DRAIN_SECONDS="300", DEADLINE_STOP_GRACE_SECONDS="30")
    instance_id, arn = one_instance
    tasks = world.run_tasks(CLUSTER, arn, 2)
    state = handler(begin_termination("web-asg", instance_id))
    while state["action"] == "draining":
        state = poll(handler, state, world)
    assert state["action"] == "stopping"
    assert state["wait_seconds"] == 30
    statuses = world.ecs.describe_tasks(cluster=CLUSTER, tasks=tasks)["tasks"]
    assert {t["desiredStatus"] for t in statuses} == {"STOPPED"}
    assert world.lifecycle_state(instance_id) == "Terminating:Wait"
    # The containers get their stop timeout: one is still STOPPING when the grace ends.
    world.set_task(CLUSTER, tasks[0], last="STOPPING", desired="STOPPED")
    world.set_task(CLUSTER, tasks[1], last="STOPPED", desired="STOPPED")

    state = poll(handler, state, world)
    assert (state["done"], state["action"], state["tasks_remaining"]) == (True, "deadline", 1)
    assert world.lifecycle_state(instance_id) is None


def test_deadline_with_continue_policy_completes_at_once(world, handler, one_instance, lambda_env):
    lambda_env(MAX_DRAIN_SECONDS="120", AT_DEADLINE="continue")
    instance_id, arn = one_instance
    [task] = world.run_tasks(CLUSTER, arn, 1)
    state = handler(begin_termination("web-asg", instance_id))
    while not state["done"]:
        assert world.lifecycle_state(instance_id) == "Terminating:Wait"
        state = poll(handler, state, world)
    assert state["action"] == "deadline"
    [described] = world.ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"]
    assert described["desiredStatus"] == "RUNNING"


def test_standalone_tasks_stopped_after_grace_under_stop_policy(
    world, handler, one_instance, lambda_env
):
    lambda_env(STANDALONE_TASKS="stop", STANDALONE_GRACE_SECONDS="60")
    instance_id, arn = one_instance
    [standalone] = world.run_tasks(CLUSTER, arn, 1)
    [service_task] = world.run_tasks(CLUSTER, arn, 1, group="service:web")
    world.service(CLUSTER, "web")
    start = world.clock.now()
    state = handler(begin_termination("web-asg", instance_id))
    assert state["tasks"] == {"service": 1, "daemon": 0, "standalone": 1}

    # Before the grace ends nothing is stopped; the loop wakes up at the end of the grace.
    assert state["wait_seconds"] <= 60
    while world.clock.now() < start + timedelta(seconds=60):
        [described] = world.ecs.describe_tasks(cluster=CLUSTER, tasks=[standalone])["tasks"]
        assert described["desiredStatus"] == "RUNNING"
        state = poll(handler, state, world)
    assert state["action"] == "draining"
    described = world.ecs.describe_tasks(cluster=CLUSTER, tasks=[standalone, service_task])
    by_arn = {t["taskArn"]: t["desiredStatus"] for t in described["tasks"]}
    assert by_arn == {standalone: "STOPPED", service_task: "RUNNING"}


def test_standalone_tasks_wait_under_wait_policy(world, handler, one_instance, lambda_env):
    lambda_env(STANDALONE_TASKS="wait", MAX_DRAIN_SECONDS="3600")
    instance_id, arn = one_instance
    [standalone] = world.run_tasks(CLUSTER, arn, 1)
    state = handler(begin_termination("web-asg", instance_id))
    for _ in range(4):  # about 30 minutes of polls, well before the deadline
        state = poll(handler, state, world)
        assert state["action"] == "draining"
    [described] = world.ecs.describe_tasks(cluster=CLUSTER, tasks=[standalone])["tasks"]
    assert described["desiredStatus"] == "RUNNING"


@pytest.mark.parametrize(("hold", "expected"), [("true", "draining"), ("false", "completed")])
def test_daemon_tasks_alone_hold_the_instance_only_if_configured(
    world, handler, one_instance, lambda_env, hold, expected
):
    lambda_env(DAEMON_TASKS_HOLD_INSTANCE=hold)
    instance_id, arn = one_instance
    world.service(CLUSTER, "log-agent", daemon=True)
    world.run_tasks(CLUSTER, arn, 1, group="service:log-agent")
    result = handler(begin_termination("web-asg", instance_id))
    assert result["tasks"] == {"service": 0, "daemon": 1, "standalone": 0}
    assert result["action"] == expected


def test_update_failure_is_handled_and_retried_on_the_next_poll(world, handler, one_instance):
    """ECS answers with a `failures` entry instead of setting DRAINING: the loop runs anyway
    and the next poll sets DRAINING again."""
    instance_id, arn = one_instance
    world.run_tasks(CLUSTER, arn, 1)
    world.answer_once(
        "ecs",
        "UpdateContainerInstancesState",
        {"containerInstances": [], "failures": [{"arn": arn, "reason": "MISSING"}]},
    )

    state = handler(begin_termination("web-asg", instance_id))
    assert (state["action"], state["done"]) == ("draining", False)
    assert world.instance_status(CLUSTER, arn) == "ACTIVE"
    assert world.calls.count("ecs:UpdateContainerInstancesState") == 1
    state = poll(handler, state, world)
    assert world.instance_status(CLUSTER, arn) == "DRAINING"
    assert state["action"] == "draining"


def test_a_long_drain_carries_on_in_a_fresh_execution(world, handler, lambda_env):
    """Step Functions caps an execution at 25,000 history events: after POLLS_PER_EXECUTION
    polls the state is handed to a new execution and this one ends."""
    lambda_env(
        POLLS_PER_EXECUTION="10",
        POLL_INTERVAL_FIRST_SECONDS="15",
        POLL_INTERVAL_MAX_SECONDS="60",
        MAX_DRAIN_SECONDS="86400",
    )
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1, heartbeat=3600)
    arn = world.register(CLUSTER, instance_id)
    world.run_tasks(CLUSTER, arn, 1)
    state = handler(begin_termination("web-asg", instance_id))
    actions = []
    for _ in range(10):
        state = poll(handler, state, world)
        actions.append(state["action"])
    assert actions == ["draining"] * 9 + ["continued"]
    assert state["done"] is True
    executions = sorted(e["name"] for e in world.executions())
    base = f"{instance_id}-{state['lifecycle_action_token']}"
    assert executions == [base, f"{base}-g1"]
    handed_on = world.sfn.describe_execution(
        executionArn=next(
            e["executionArn"] for e in world.executions() if e["name"].endswith("-g1")
        )
    )
    carried = json.loads(handed_on["input"])
    assert (carried["done"], carried["action"], carried["polls_in_execution"]) == (
        False,
        "draining",
        0,
    )
    assert world.lifecycle_state(instance_id) == "Terminating:Wait"


def sns_event(message: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:hook:sub",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:hook",
                    "Subject": "Auto Scaling:  Lifecycle action 'TERMINATING'",
                    "Message": message,
                    "Timestamp": "2025-01-06T09:00:00.000Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


BAD_EVENTS = {
    "not an object": ["i-0123456789abcdef0"],
    "unknown shape": {"hello": "world"},
    "instance id not i-": {"instance_id": "web-1"},
    "manual typo": {"instance_id": "i-0123456789abcdef0", "asg": "web-asg"},
    "hook without group": {"instance_id": "i-0123456789abcdef0", "hook_name": HOOK},
    "launch transition": eventbridge(
        {
            "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
            "AutoScalingGroupName": "web-asg",
            "LifecycleHookName": HOOK,
            "EC2InstanceId": "i-0123456789abcdef0",
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
        },
        **{"detail-type": "EC2 Instance-launch Lifecycle Action"},
    ),
    "missing token and instance": eventbridge(
        {
            "AutoScalingGroupName": "web-asg",
            "LifecycleHookName": HOOK,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        }
    ),
    "tampered state": {"state_version": 2, "done": False, "instance_id": "i-0123456789abcdef0"},
    "old state version": {"state_version": 1, "done": False, "instance_id": "i-0123456789abcdef0"},
}


@pytest.mark.parametrize("name", sorted(BAD_EVENTS))
def test_bad_input_raises_before_any_aws_call(world, handler, one_instance, name):
    from drain_hook.errors import InputRejected

    with pytest.raises(InputRejected) as raised:
        handler(BAD_EVENTS[name])
    assert "expected" in str(raised.value)
    assert world.calls == []
