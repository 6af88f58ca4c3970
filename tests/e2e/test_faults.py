"""The drain under injected faults: throttling, server errors, Lambda errors, the Catch path."""

from __future__ import annotations

from local_aws.sandbox import Sandbox
from tests.e2e.conftest import SandboxFactory


def _world(sb: Sandbox) -> str:
    asg = sb.add_cluster("c1", instances=3)
    sb.register_task_definition("web")
    sb.create_service("c1", "web", "web", 6)
    sb.settle()
    sb.deploy()
    return asg


def test_throttling_and_server_errors_are_retried(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=11, lambda_env={"RETRY_MODE": "standard"})
    asg = _world(sb)
    sb.add_fault("ecs:*", "throttle", probability=0.3)
    sb.add_fault("autoscaling:DescribeAutoScalingInstances", "server_error", probability=0.3)
    sb.scale_in(asg, 2)
    report = sb.run()
    assert report.all_completed and report.lost_tasks == []
    assert sum(sb.instrument.injected.values()) > 0
    assert sum(report.attempts.values()) > sum(report.calls.values())


def test_same_seed_same_run(sandbox: SandboxFactory) -> None:
    outcomes = []
    for _ in range(2):
        sb = sandbox(seed=3)
        asg = _world(sb)
        sb.add_fault("ecs:DescribeTasks", "throttle", probability=0.5)
        sb.scale_in(asg, 2)
        report = sb.run()
        outcomes.append((report.calls, report.attempts, report.virtual_seconds, report.polls))
        sb.__exit__(None, None, None)
    assert outcomes[0] == outcomes[1]


def test_lambda_errors_in_the_loop_are_retried(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=2)
    asg = _world(sb)
    sb.scale_in(asg, 2)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    sb.add_fault("lambda:*", "lambda_error", max_count=2)
    report = sb.run()
    assert report.all_completed and report.failed_executions == []
    assert sum(1 for i in sb.runtime.invocations if i.error) == 2


def test_a_lambda_failing_for_good_leaves_the_hook_timeout_as_the_last_resort(
    sandbox: SandboxFactory,
) -> None:
    """Every invocation fails (a broken deploy): the loop keeps the hold with its own
    heartbeats for ERROR_RELEASE_SECONDS, then fails; the release that would follow is the
    Lambda too, so it fails, lands in the dead-letter queue (alarm DeadLetters), and the hook's
    own timeout (DefaultResult CONTINUE) ends the hold one heartbeat timeout later."""
    sb = sandbox()
    asg = _world(sb)
    sb.scale_in(asg, 2)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    sb.add_fault("lambda:*", "function_error")
    report = sb.run()
    [action] = report.lifecycle_actions
    assert (action.result, action.ended_by) == ("CONTINUE", "heartbeat_timeout")
    assert len(report.failed_executions) == 1
    failures = sb.runtime.async_failures
    assert any("Step Functions Execution Status Change" in str(f) for f in failures)


def test_the_state_machines_own_invoke_throttled_is_retried_in_place(
    sandbox: SandboxFactory,
) -> None:
    """Lambda answers the state machine's Invoke with 429 (as an HTTP error, request id and
    all): Step Functions names it Lambda.TooManyRequestsException and PollDrain's Retry takes
    it; the loop carries on and the drain completes."""
    sb = sandbox(seed=12)
    asg = _world(sb)
    sb.scale_in(asg, 1)
    sb.run(until=lambda: sb.keeper.started > 0, settle=False)
    sb.add_fault("states:lambda:Invoke", "throttle", max_count=2)
    report = sb.run()
    sfn = sb.client("stepfunctions")
    ends = [sfn.describe_execution(executionArn=arn) for arn in report.failed_executions]
    assert report.all_completed and ends == []
    assert report.lost_tasks == []
