"""AWS answers moto can't give, through botocore's Stubber: REGISTERING instances, expired
lifecycle tokens, throttling that outlasts the SDK's retries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from drain_hook.adapters import autoscaling as autoscaling_adapter
from drain_hook.adapters import clients
from drain_hook.adapters import ecs as ecs_adapter
from drain_hook.adapters import stepfunctions as sfn_adapter
from drain_hook.errors import (
    ClusterNotFound,
    ErrorsOutlastedRelease,
    PermanentAwsError,
    TransientAwsError,
    classified,
)
from tests.drain_lambda.conftest import FakeContext
from tests.drain_lambda.sample_events import eventbridge

INSTANCE = "i-0123456789abcdef0"
CI_ARN = "arn:aws:ecs:us-east-1:123456789012:container-instance/default-cluster/abc"
TOKEN = "11111111-2222-3333-4444-555555555555"
NOW = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def lifecycle_event() -> dict[str, Any]:
    return eventbridge(
        {
            "LifecycleActionToken": TOKEN,
            "AutoScalingGroupName": "web-asg",
            "LifecycleHookName": "drain",
            "EC2InstanceId": INSTANCE,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        }
    )


class Stubs:
    def __init__(self) -> None:
        session = boto3.session.Session(region_name="us-east-1")
        self.clients = {
            name: session.client(name) for name in ("ecs", "autoscaling", "stepfunctions")
        }
        self.stubbers = {name: Stubber(c) for name, c in self.clients.items()}

    def __getattr__(self, name: str) -> Stubber:
        return self.stubbers[name]

    def waiting_in_hook(self, heartbeat: int = 300, *, heartbeat_ok: bool = True) -> None:
        """The first round's checks against Auto Scaling, in the order the Lambda makes them."""
        self.autoscaling.add_response(
            "describe_auto_scaling_instances",
            {"AutoScalingInstances": [_asg_instance("Terminating:Wait")]},
            {"InstanceIds": [INSTANCE]},
        )
        self.autoscaling.add_response(
            "describe_lifecycle_hooks",
            {
                "LifecycleHooks": [
                    {
                        "LifecycleHookName": "drain",
                        "AutoScalingGroupName": "web-asg",
                        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                        "HeartbeatTimeout": heartbeat,
                        "GlobalTimeout": 100 * heartbeat,
                        "DefaultResult": "CONTINUE",
                    }
                ]
            },
            {"AutoScalingGroupName": "web-asg"},
        )
        target = {
            "AutoScalingGroupName": "web-asg",
            "LifecycleHookName": "drain",
            "LifecycleActionToken": TOKEN,
        }
        if heartbeat_ok:
            self.autoscaling.add_response("record_lifecycle_action_heartbeat", {}, target)
            self.autoscaling.add_response(
                "describe_scaling_activities",
                {"Activities": []},
                {"AutoScalingGroupName": "web-asg"},
            )
        else:
            self.autoscaling.add_client_error(
                "record_lifecycle_action_heartbeat",
                service_error_code="ValidationError",
                service_message=f"No active Lifecycle Action found with token {TOKEN}",
                http_status_code=400,
                expected_params=target,
            )

    def container_instance_listing(self, status: str) -> None:
        """find_container_instance's listing and describe, nothing more."""
        self.ecs.add_response(
            "list_container_instances",
            {"containerInstanceArns": [CI_ARN]},
            {"cluster": "default-cluster", "filter": f"ec2InstanceId == {INSTANCE}"},
        )
        self.ecs.add_response(
            "describe_container_instances",
            {"containerInstances": [_ci(status)], "failures": []},
            {"cluster": "default-cluster", "containerInstances": [CI_ARN]},
        )

    def container_instance(self, status: str) -> None:
        self.ecs.add_response(
            "list_container_instances",
            {"containerInstanceArns": [CI_ARN]},
            {"cluster": "default-cluster", "filter": f"ec2InstanceId == {INSTANCE}"},
        )
        self.ecs.add_response(
            "describe_container_instances",
            {"containerInstances": [_ci(status)], "failures": []},
            {"cluster": "default-cluster", "containerInstances": [CI_ARN]},
        )


def _asg_instance(state: str) -> dict[str, Any]:
    return {
        "InstanceId": INSTANCE,
        "AutoScalingGroupName": "web-asg",
        "AvailabilityZone": "us-east-1a",
        "LifecycleState": state,
        "HealthStatus": "HEALTHY",
        "ProtectedFromScaleIn": False,
    }


def _ci(status: str, running: int = 0) -> dict[str, Any]:
    return {
        "containerInstanceArn": CI_ARN,
        "ec2InstanceId": INSTANCE,
        "status": status,
        "agentConnected": True,
        "runningTasksCount": running,
        "pendingTasksCount": 0,
    }


@pytest.fixture
def stubs(lambda_env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubs]:
    lambda_env()
    stubs = Stubs()
    for module in (ecs_adapter, autoscaling_adapter, sfn_adapter):
        monkeypatch.setattr(module, "client", lambda name: stubs.clients[name])
    monkeypatch.setattr("drain_hook.clock.utc_now", lambda: NOW)
    for stubber in stubs.stubbers.values():
        stubber.activate()
    yield stubs
    for stubber in stubs.stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    from drain_hook.handler import lambda_handler

    return lambda_handler(event, FakeContext())


def complete_params() -> dict[str, Any]:
    return {
        "AutoScalingGroupName": "web-asg",
        "LifecycleHookName": "drain",
        "LifecycleActionToken": TOKEN,
        "LifecycleActionResult": "CONTINUE",
    }


@pytest.mark.parametrize("status", ["REGISTERING", "REGISTRATION_FAILED", "DEREGISTERING"])
def test_instance_ecs_cannot_drain_is_completed_without_update(stubs, status):
    stubs.waiting_in_hook()
    stubs.container_instance(status)
    stubs.autoscaling.add_response("complete_lifecycle_action", {}, complete_params())

    result = invoke(lifecycle_event())
    assert (result["done"], result["action"]) == (True, "not_drainable")
    assert status in result["reason"]


def test_expired_token_at_completion_means_already_done(stubs):
    stubs.waiting_in_hook()
    stubs.container_instance("DRAINING")
    stubs.ecs.add_response("list_tasks", {"taskArns": []}, None)
    stubs.autoscaling.add_client_error(
        "complete_lifecycle_action",
        service_error_code="ValidationError",
        service_message=f"No active Lifecycle Action found with token {TOKEN}",
        http_status_code=400,
        expected_params=complete_params(),
    )
    result = invoke(lifecycle_event())
    assert (result["done"], result["action"]) == (True, "lifecycle_ended")


def _no_loop_ran(stubs: Stubs) -> None:
    stubs.stepfunctions.add_client_error(
        "describe_execution", service_error_code="ExecutionDoesNotExist", http_status_code=400
    )


def test_a_refused_token_for_an_instance_we_drain_is_answered_without_any_write(stubs):
    """Auto Scaling does not know the token (the heartbeat that proves it fails) and the
    instance's drain is under way (ECS's record): a stale or made-up event; nothing is
    drained, recorded or started."""
    stubs.waiting_in_hook(heartbeat_ok=False)
    _no_loop_ran(stubs)
    stubs.ecs.add_response(
        "list_container_instances",
        {"containerInstanceArns": [CI_ARN]},
        {"cluster": "default-cluster", "filter": f"ec2InstanceId == {INSTANCE}"},
    )
    drained = {
        **_ci("DRAINING", running=1),
        "attributes": [{"name": "ecs-drain-hook", "value": "1736154000 i-x-other"}],
    }
    stubs.ecs.add_response(
        "describe_container_instances",
        {"containerInstances": [drained], "failures": []},
        {"cluster": "default-cluster", "containerInstances": [CI_ARN]},
    )
    # Had the hook's timeout ended it before any drain? Auto Scaling's record of when the hold
    # began says (none here: nothing is counted).
    stubs.autoscaling.add_response(
        "describe_scaling_activities", {"Activities": []}, {"AutoScalingGroupName": "web-asg"}
    )
    result = invoke(lifecycle_event())
    assert (result["done"], result["action"]) == (True, "lifecycle_ended")
    assert "no waiting lifecycle action for token" in result["reason"]


def test_a_refused_token_nothing_drained_yet_is_taken_again(stubs):
    """Auto Scaling shows the instance waiting but refuses its token, and no loop or drain
    record of ours exists: Auto Scaling has answered so for an action just begun. The round
    fails transiently (the intake queue takes the event again) and writes nothing."""
    stubs.waiting_in_hook(heartbeat_ok=False)
    _no_loop_ran(stubs)
    stubs.container_instance_listing(status="ACTIVE")
    with pytest.raises(TransientAwsError, match="taken again later"):
        invoke(lifecycle_event())


def test_expired_token_at_heartbeat_ends_the_loop(stubs):
    state = _waiting_state(last_heartbeat_at=NOW - timedelta(seconds=200))
    stubs.autoscaling.add_response(
        "describe_auto_scaling_instances",
        {"AutoScalingInstances": [_asg_instance("Terminating:Wait")]},
        {"InstanceIds": [INSTANCE]},
    )
    stubs.ecs.add_response(
        "describe_container_instances",
        {"containerInstances": [_ci("DRAINING", running=1)], "failures": []},
        {"cluster": "default-cluster", "containerInstances": [CI_ARN]},
    )
    task = "arn:aws:ecs:us-east-1:123456789012:task/default-cluster/t1"
    stubs.ecs.add_response("list_tasks", {"taskArns": [task]}, None)
    stubs.ecs.add_response("list_tasks", {"taskArns": []}, None)
    stubs.ecs.add_response(
        "describe_tasks",
        {
            "tasks": [
                {
                    "taskArn": task,
                    "lastStatus": "RUNNING",
                    "desiredStatus": "RUNNING",
                    "containerInstanceArn": CI_ARN,
                    "group": "family:batch",
                }
            ],
            "failures": [],
        },
        None,
    )
    stubs.autoscaling.add_client_error(
        "record_lifecycle_action_heartbeat",
        service_error_code="ValidationError",
        service_message=f"No active Lifecycle Action found with token {TOKEN}",
        http_status_code=400,
    )
    result = invoke(state)
    assert (result["done"], result["action"], result["tasks_remaining"]) == (
        True,
        "lifecycle_ended",
        1,
    )


def test_throttling_beyond_retries_is_a_transient_error_and_writes_nothing(stubs):
    """The SDK retries throttling itself; if ECS still throttles, the invocation fails with
    TransientAwsError (the wait loop retries it, keeping the hold alive) and nothing was
    written but the heartbeat."""
    stubs.waiting_in_hook()
    stubs.ecs.add_client_error(
        "list_container_instances",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
    )
    with pytest.raises(TransientAwsError, match="ThrottlingException"):
        invoke(lifecycle_event())


def _failing_poll(
    stubs: Stubs, failing_since: str, failed_at: str = "2025-01-06T08:58:50.000Z"
) -> dict[str, Any]:
    """A poll state whose polls have been failing since ``failing_since`` (the state machine's
    `$$.State.EnteredTime` format), the last 70 s ago (one 60 s retry wait and this poll), and
    Auto Scaling throttling this poll too."""
    stubs.autoscaling.add_client_error(
        "describe_auto_scaling_instances",
        service_error_code="Throttling",
        service_message="Rate exceeded",
        http_status_code=400,
    )
    retry = {
        "wait_seconds": 60,
        "release_after_seconds": 900,
        "failed_seconds": 300,
        "failing_since": failing_since,
        "failed_at": failed_at,
    }
    return _waiting_state(started_at=NOW - timedelta(seconds=2000), retry=retry)


def test_a_poll_failing_past_the_release_time_by_the_clock_ends_the_loop(stubs):
    """The state machine counted 300 s of retry waits, but the clock says polls have failed for
    950 s (each failing poll spent its own time in botocore's back-off): past the release."""
    with pytest.raises(ErrorsOutlastedRelease, match="failed for 950 s"):
        invoke(_failing_poll(stubs, "2025-01-06T08:44:10.000Z"))


def test_a_poll_failing_within_the_release_time_is_retried(stubs):
    with pytest.raises(TransientAwsError, match="Throttling"):
        invoke(_failing_poll(stubs, "2025-01-06T08:51:40.000Z"))  # 500 s ago


@pytest.mark.parametrize(
    "failing_since",
    ["2025-01-06T08:20:00Z", "2025-01-06T09:10:00Z", "yesterday"],
    ids=["before-the-hold", "in-the-future", "not-a-time"],
)
def test_a_failure_time_that_cannot_be_true_does_not_end_the_loop(stubs, failing_since):
    """A failing_since before the hold began, after now, or unreadable (a state edited by
    hand) doesn't shorten the hold: the state machine's own count still applies."""
    with pytest.raises(TransientAwsError):
        invoke(_failing_poll(stubs, failing_since))


def test_an_old_state_passed_back_does_not_end_a_new_loop_at_its_first_failure(stubs):
    """An old response of the same drain given to a new execution by hand: polls failed from
    08:30 to 08:35, and this is the new loop's first failure, 25 minutes after the last one
    noted. That run of failures is not this one: the poll is retried, not taken for an outage
    that outlasted the 900 s release time (by failing_since alone it would be 30 minutes)."""
    with pytest.raises(TransientAwsError, match="Throttling"):
        invoke(
            _failing_poll(stubs, "2025-01-06T08:30:00.000Z", failed_at="2025-01-06T08:35:00.000Z")
        )
    # The same times, the last failure one retry wait and one poll ago: the loop ends.
    with pytest.raises(ErrorsOutlastedRelease, match="failed for 1800 s"):
        invoke(
            _failing_poll(stubs, "2025-01-06T08:30:00.000Z", failed_at="2025-01-06T08:58:50.000Z")
        )


def test_access_denied_is_a_permanent_error(stubs):
    stubs.waiting_in_hook()
    stubs.ecs.add_client_error(
        "list_container_instances",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform ecs:ListContainerInstances",
        http_status_code=400,
    )
    with pytest.raises(PermanentAwsError, match="AccessDeniedException"):
        invoke(lifecycle_event())


def test_a_cluster_that_does_not_exist_is_an_error_naming_it(stubs):
    stubs.waiting_in_hook()
    stubs.ecs.add_client_error(
        "list_container_instances",
        service_error_code="ClusterNotFoundException",
        service_message="Cluster not found.",
        http_status_code=400,
    )
    with pytest.raises(ClusterNotFound, match="default-cluster"):
        invoke(lifecycle_event())


# --- requests AWS (or botocore) refuses as invalid: refused again on every retry -----------


def test_ecs_refusing_a_parameter_is_a_permanent_error(stubs):
    stubs.waiting_in_hook()
    stubs.ecs.add_client_error(
        "list_container_instances",
        service_error_code="InvalidParameterException",
        service_message="Invalid filter expression",
        http_status_code=400,
    )
    with pytest.raises(PermanentAwsError, match="InvalidParameterException") as raised:
        invoke(lifecycle_event())
    assert type(raised.value) is PermanentAwsError


def test_auto_scaling_validation_error_is_a_permanent_error(stubs):
    """A ValidationError other than "No active Lifecycle Action found": the request itself is
    wrong (here the group is gone), and sending it again changes nothing."""
    stubs.autoscaling.add_response(
        "describe_auto_scaling_instances",
        {"AutoScalingInstances": [_asg_instance("Terminating:Wait")]},
        {"InstanceIds": [INSTANCE]},
    )
    stubs.autoscaling.add_client_error(
        "describe_lifecycle_hooks",
        service_error_code="ValidationError",
        service_message="Group web-asg not found",
        http_status_code=400,
        expected_params={"AutoScalingGroupName": "web-asg"},
    )
    with pytest.raises(PermanentAwsError, match="ValidationError"):
        invoke(lifecycle_event())


def test_no_active_lifecycle_action_is_still_not_a_permanent_error(stubs):
    """The adapters answer it themselves (lifecycle_ended, above); one that reached the
    classification anyway stays retryable, as before: the next poll sees the action over."""
    stubs.autoscaling.add_client_error(
        "record_lifecycle_action_heartbeat",
        service_error_code="ValidationError",
        service_message=f"No active Lifecycle Action found with token {TOKEN}",
        http_status_code=400,
    )
    with pytest.raises(TransientAwsError, match="ValidationError"), classified():
        stubs.clients["autoscaling"].record_lifecycle_action_heartbeat(
            AutoScalingGroupName="web-asg", LifecycleHookName="drain", LifecycleActionToken=TOKEN
        )


def test_step_functions_validation_exception_is_a_permanent_error(stubs):
    stubs.stepfunctions.add_client_error(
        "start_execution",
        service_error_code="ValidationException",
        service_message="1 validation error detected",
        http_status_code=400,
    )
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:loop"
    with pytest.raises(PermanentAwsError, match="ValidationException"), classified():
        sfn_adapter.start(machine, "name", {"instance_id": INSTANCE})


def test_a_request_botocore_refuses_to_send_is_a_permanent_error(monkeypatch):
    """ParamValidationError: botocore checks the request against the service model before
    sending it, and would refuse it on every retry. A client without a Stubber (which would
    want a queued response first): the request is refused before anything is sent."""
    ecs = boto3.session.Session(region_name="us-east-1").client("ecs")
    monkeypatch.setattr(ecs_adapter, "client", lambda name: ecs)
    with pytest.raises(PermanentAwsError, match="Invalid type for parameter task"), classified():
        ecs_adapter.stop_tasks("default-cluster", [12345], "deadline")  # type: ignore[list-item]


def test_stopping_a_task_that_is_already_gone_is_still_skipped(stubs):
    """StopTask answers InvalidParameterException for a task ECS no longer shows; the adapter
    skips that task, before any classification."""
    gone, running = (f"arn:aws:ecs:us-east-1:123456789012:task/default-cluster/{t}" for t in "ab")
    stubs.ecs.add_client_error(
        "stop_task",
        service_error_code="InvalidParameterException",
        service_message="The referenced task was not found.",
        http_status_code=400,
        expected_params={"cluster": "default-cluster", "task": gone, "reason": "deadline"},
    )
    stubs.ecs.add_response(
        "stop_task",
        {"task": {"taskArn": running}},
        {"cluster": "default-cluster", "task": running, "reason": "deadline"},
    )
    with classified():
        assert ecs_adapter.stop_tasks("default-cluster", [gone, running], "deadline") == [running]


def test_clients_use_botocore_retry_mode_from_settings(lambda_env):
    lambda_env(RETRY_MODE="standard", RETRY_MAX_ATTEMPTS="5")
    from drain_hook.settings import load_settings

    settings = load_settings()
    clients.configure(settings.retry_mode, settings.retry_max_attempts)
    try:
        retries = clients.client("ecs").meta.config.retries
        assert retries == {"mode": "standard", "total_max_attempts": 5}
    finally:
        clients.configure("adaptive", 8)


def _waiting_state(**overrides: Any) -> dict[str, Any]:
    state = {
        "state_version": 2,
        "done": False,
        "action": "draining",
        "instance_id": INSTANCE,
        "tasks_remaining": 1,
        "wait_seconds": 30,
        "cluster": "default-cluster",
        "container_instance_arn": CI_ARN,
        "asg_name": "web-asg",
        "hook_name": "drain",
        "lifecycle_action_token": TOKEN,
        "started_at": (NOW - timedelta(seconds=400)).isoformat(),
        "deadline_at": (NOW - timedelta(seconds=400) + timedelta(hours=2)).isoformat(),
        "max_drain_seconds": 7200,
        "heartbeat_timeout_seconds": 300,
        "execution_name": f"{INSTANCE}-{TOKEN}",
        "polls": 5,
        "polls_in_execution": 5,
    }
    for key, value in overrides.items():
        state[key] = value.isoformat() if isinstance(value, datetime) else value
    return state
