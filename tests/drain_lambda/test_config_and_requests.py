"""Settings validation at cold start, and the event shapes the handler accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drain_hook.errors import InputRejected
from drain_hook.models.requests import (
    IgnoredRequest,
    LifecycleRequest,
    LoopEndedRequest,
    PollRequest,
    TaskStoppedRequest,
    cluster_from_metadata,
    parse_request,
)
from drain_hook.settings import Settings, SettingsError, Tunables
from tests.drain_lambda.sample_events import eventbridge

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:loop"
ROOT = Path(__file__).resolve().parents[2]
settings_from = Settings.from_environ


def test_defaults():
    settings = settings_from({"STATE_MACHINE_ARN": ARN})
    defaults = Tunables()
    assert (settings.poll_interval_first_seconds, settings.poll_interval_max_seconds) == (
        defaults.poll_interval_first_seconds,
        defaults.poll_interval_max_seconds,
    )
    assert settings.tracing_enabled is False
    assert (settings.standalone_tasks, settings.at_deadline) == ("wait", "stop_tasks")
    assert settings.daemon_tasks_hold_instance is True
    assert settings.retry_mode == "adaptive"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "STATE_MACHINE_ARN"),
        ({"STATE_MACHINE_ARN": "loop"}, "STATE_MACHINE_ARN"),
        ({"STATE_MACHINE_ARN": ARN, "STANDALONE_TASKS": "kill"}, "STANDALONE_TASKS"),
        ({"STATE_MACHINE_ARN": ARN, "MAX_DRAIN_SECONDS": "200000"}, "MAX_DRAIN_SECONDS"),
        ({"STATE_MACHINE_ARN": ARN, "AT_DEADLINE": "abandon"}, "AT_DEADLINE"),
        ({"STATE_MACHINE_ARN": ARN, "RETRY_MODE": "legacy"}, "RETRY_MODE"),
        ({"STATE_MACHINE_ARN": ARN, "DAEMON_TASKS_HOLD_INSTANCE": "maybe"}, "DAEMON_TASKS_HOLD"),
        ({"STATE_MACHINE_ARN": ARN, "DAEMON_TASKS_HOLD_INSTANCE": "1"}, "DAEMON_TASKS_HOLD"),
        ({"STATE_MACHINE_ARN": ARN, "MAX_DRAIN_SECONDS": "7200.0"}, "MAX_DRAIN_SECONDS"),
        ({"STATE_MACHINE_ARN": ARN, "ERROR_RELEASE_SECONDS": "10"}, "ERROR_RELEASE_SECONDS"),
        (
            {"STATE_MACHINE_ARN": ARN, "AGENT_DISCONNECTED_GRACE_SECONDS": "-1"},
            "AGENT_DISCONNECTED_GRACE_SECONDS",
        ),
        (
            {
                "STATE_MACHINE_ARN": ARN,
                "POLL_INTERVAL_FIRST_SECONDS": "300",
                "POLL_INTERVAL_MAX_SECONDS": "60",
            },
            "POLL_INTERVAL_FIRST_SECONDS",
        ),
    ],
)
def test_bad_settings_fail_with_the_variable_named(environ, named):
    with pytest.raises(SettingsError, match=named):
        settings_from(environ)


def test_cold_start_fails_clearly_on_bad_environment_and_skips_xray_when_tracing_is_off():
    """Import the handler as Lambda would, in a fresh interpreter."""
    code = "import sys, drain_hook.handler; print('aws_xray_sdk' in sys.modules)"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT / "lambda"),
        "AWS_REGION": "us-east-1",
        "STATE_MACHINE_ARN": ARN,
    }
    good = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == "False"

    traced = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "TRACING_ENABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"},
        capture_output=True,
        text=True,
    )
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout.strip() == "True"

    bad = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "AT_DEADLINE": "explode"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
    assert "ecs-drain-hook configuration error: AT_DEADLINE" in bad.stderr


DETAIL = {
    "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
    "AutoScalingGroupName": "web-asg",
    "LifecycleHookName": "drain",
    "EC2InstanceId": "i-0123456789abcdef0",
    "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
    "NotificationMetadata": json.dumps({"cluster": "blue"}),
    "Origin": "AutoScalingGroup",
    "Destination": "EC2",
}


def test_eventbridge_lifecycle_event():
    request = parse_request(eventbridge(DETAIL))
    assert isinstance(request, LifecycleRequest)
    assert (request.instance_id, request.asg_name, request.hook_name, request.cluster) == (
        "i-0123456789abcdef0",
        "web-asg",
        "drain",
        "blue",
    )
    assert request.token == DETAIL["LifecycleActionToken"]
    assert not hasattr(request, "event_time")  # an event's time never decides anything


def test_token_may_be_missing_when_the_instance_id_is_there():
    detail = {k: v for k, v in DETAIL.items() if k != "LifecycleActionToken"}
    request = parse_request(eventbridge(detail))
    assert isinstance(request, LifecycleRequest) and request.token is None


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        ({**DETAIL, "EC2InstanceId": "web-1"}, "EC2InstanceId"),
        ({**DETAIL, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"}, "TERMINATING"),
        ({k: v for k, v in DETAIL.items() if k != "LifecycleHookName"}, "LifecycleHookName"),
        ({**DETAIL, "NotificationMetadata": '{"cluster": 5}'}, "NotificationMetadata"),
    ],
)
def test_bad_lifecycle_details(detail, message):
    with pytest.raises(InputRejected, match=message):
        parse_request(eventbridge(detail))


def test_other_eventbridge_events_are_rejected():
    with pytest.raises(InputRejected, match="EC2 Instance-terminate Lifecycle Action"):
        parse_request(
            eventbridge(DETAIL, **{"detail-type": "EC2 Instance State-change Notification"})
        )


@pytest.mark.parametrize(
    ("metadata", "cluster"),
    [
        (None, None),
        ("", None),
        ("free text from another tool", None),
        ('{"team": "a"}', None),
        ('{"cluster": "prod"}', "prod"),
    ],
)
def test_cluster_from_metadata(metadata, cluster):
    assert cluster_from_metadata(metadata) == cluster


def test_manual_invoke_shapes():
    request = parse_request({"instance_id": "i-0123abcd", "dry_run": True})
    assert isinstance(request, LifecycleRequest)
    assert (request.source, request.dry_run, request.asg_name) == ("manual", True, None)
    for not_a_boolean in ("perhaps", "no", "false", 0, 1, None):
        with pytest.raises(InputRejected, match="dry_run"):
            parse_request({"instance_id": "i-0123abcd", "dry_run": not_a_boolean})


def test_sns_with_several_records_is_rejected():
    record = {"EventSource": "aws:sns"}
    with pytest.raises(InputRejected, match="SNS"):
        parse_request({"Records": [record, record]})


STATE = {
    "state_version": 2,
    "action": "draining",
    "instance_id": "i-0123456789abcdef0",
    "cluster": "c",
    "started_at": "2025-01-06T09:00:00Z",
    "deadline_at": "2025-01-06T11:00:00Z",
    "max_drain_seconds": 7200,
}


def test_poll_state_round_trips():
    request = parse_request(STATE)
    assert isinstance(request, PollRequest)
    assert request.state.model_dump(mode="json")["started_at"] == "2025-01-06T09:00:00Z"
    assert not isinstance(request, IgnoredRequest)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"state_version": True}, "state_version"),
        ({"state_version": 1}, "state_version"),
        ({"state_version": "2"}, "state_version"),
        ({"polls": True}, "polls"),
        ({"polls": "3"}, "polls"),
        ({"done": "no"}, "done"),
        ({"dry_run": 0}, "dry_run"),
        ({"started_at": 1736154000}, "started_at"),
        ({"started_at": "2025-01-06T09:00:00"}, "started_at"),  # no offset
        ({"max_drain_seconds": 7200.5}, "max_drain_seconds"),
        ({"wait_seconds": -5}, "wait_seconds"),
        ({"instance_id": "i-1"}, "instance_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_poll_state_types_are_strict(change, named):
    with pytest.raises(InputRejected, match=named):
        parse_request({**STATE, **change})


def task_event(**detail: object) -> dict:
    """An "ECS Task State Change" detail as the ECS developer guide shows it, for an EC2 task."""
    return eventbridge(
        {
            "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/c",
            "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/c/x",
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef",
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "launchType": "EC2",
            "stoppedAt": "2026-12-06T09:01:32.924Z",
            "version": 5,
            **detail,
        },
        source="aws.ecs",
        **{"detail-type": "ECS Task State Change"},
    )


def test_ecs_task_stopped_event():
    request = parse_request(task_event())
    assert isinstance(request, TaskStoppedRequest)
    assert request.container_instance_arn.endswith("container-instance/c/x")
    assert request.stopped_at is not None and request.stopped_at.tzinfo is not None
    # Other statuses, and tasks on no container instance (Fargate), need nothing.
    assert isinstance(parse_request(task_event(lastStatus="STOPPING")), IgnoredRequest)
    fargate = task_event(launchType="FARGATE")
    del fargate["detail"]["containerInstanceArn"]
    assert isinstance(parse_request(fargate), IgnoredRequest)
    with pytest.raises(InputRejected, match="lastStatus"):
        parse_request(task_event(lastStatus=3))
    with pytest.raises(InputRejected, match="stoppedAt"):
        parse_request(task_event(stoppedAt=1736154000))
    with pytest.raises(InputRejected, match="containerInstanceArn"):
        parse_request(task_event(containerInstanceArn=""))


def test_step_functions_status_event():
    event = eventbridge(
        {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:loop:x",
            "stateMachineArn": ARN,
            "name": "x",
            "status": "FAILED",
            "startDate": 1736154000000,
            "stopDate": 1736154060000,
            "input": "{}",
        },
        source="aws.states",
        **{"detail-type": "Step Functions Execution Status Change"},
    )
    request = parse_request(event)
    assert isinstance(request, LoopEndedRequest) and request.status == "FAILED"
