"""Settings validation at cold start, and the event shapes the handler accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drain_hook.config import ConfigError, settings_from
from drain_hook.models.requests import (
    BadEventError,
    IgnoredRequest,
    LifecycleRequest,
    PollRequest,
    cluster_from_metadata,
    parse_request,
)
from tests.drain_lambda.sample_events import eventbridge

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:loop"
ROOT = Path(__file__).resolve().parents[2]


def test_defaults():
    settings = settings_from({"STATE_MACHINE_ARN": ARN})
    assert (settings.poll_interval_first_seconds, settings.poll_interval_max_seconds) == (15, 120)
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
    with pytest.raises(ConfigError, match=named):
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
    assert request.event_time is not None and request.event_time.year == 2025


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
    with pytest.raises(BadEventError, match=message):
        parse_request(eventbridge(detail))


def test_other_eventbridge_events_are_rejected():
    with pytest.raises(BadEventError, match="EC2 Instance-terminate Lifecycle Action"):
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
    with pytest.raises(BadEventError, match="dry_run"):
        parse_request({"instance_id": "i-0123abcd", "dry_run": "perhaps"})


def test_sns_with_several_records_is_rejected():
    record = {"EventSource": "aws:sns"}
    with pytest.raises(BadEventError, match="SNS"):
        parse_request({"Records": [record, record]})


def test_poll_state_round_trips():
    state = {
        "state_version": 1,
        "action": "draining",
        "instance_id": "i-0123456789abcdef0",
        "cluster": "c",
        "started_at": "2025-01-06T09:00:00Z",
        "deadline_at": "2025-01-06T11:00:00Z",
    }
    request = parse_request(state)
    assert isinstance(request, PollRequest)
    assert request.state.model_dump(mode="json")["started_at"] == "2025-01-06T09:00:00Z"
    assert not isinstance(request, IgnoredRequest)
