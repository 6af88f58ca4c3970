"""The Sandbox conveniences the soak reads (local_aws/sandbox.py, "Soak conveniences" block):
call and fault logs, fault windows on the virtual clock, running to a given time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from local_aws.sandbox import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=3) as sandbox:
        asg = sandbox.add_cluster("c1", instances=2)
        sandbox.register_task_definition("web")
        sandbox.create_service("c1", "web", "web", 2)
        sandbox.settle()
        sandbox.deploy([asg])
        yield sandbox


def test_the_call_log_names_each_call_its_run_and_its_end(sb: Sandbox) -> None:
    calls = sb.record_calls()
    assert sb.record_calls() is calls
    sb.add_fault("ecs:DescribeTasks", "throttle", probability=1.0, max_count=1)
    sb.scale_in("c1-asg", 1)
    sb.run()
    lambda_calls = [c for c in calls if c.scope == "lambda"]
    assert lambda_calls and all(c.ok is not None for c in lambda_calls)
    # Every call belongs to a recorded run of the Lambda, and the run was the one making it.
    for call in lambda_calls:
        assert call.invocation is not None
        run = sb.runtime.invocations[call.invocation]
        # Time passes inside a run (each HTTP attempt takes virtual time): within the run.
        assert run.ended_at is not None and run.at <= call.at <= run.ended_at
    [complete] = [c for c in lambda_calls if c.operation == "autoscaling:CompleteLifecycleAction"]
    assert complete.ok and complete.params["LifecycleActionResult"] == "CONTINUE"
    # One throttled attempt, retried by botocore: the call still ended well.
    describe = [c for c in lambda_calls if c.operation == "ecs:DescribeTasks"]
    assert describe and all(c.ok for c in describe)


def test_the_fault_log_and_a_fault_window(sb: Sandbox) -> None:
    faults = sb.record_faults()
    start = sb.clock.now()
    rule = sb.add_fault_window("ecs:*", "server_error", 10, 20, probability=1.0)
    assert rule not in sb.instrument.rules
    sb.advance(start + timedelta(seconds=15))
    assert sb.clock.now() == start + timedelta(seconds=15)
    assert rule in sb.instrument.rules
    sb.advance(start + timedelta(seconds=25))
    assert rule not in sb.instrument.rules
    sb.add_fault("lambda:ecs-drain-hook", "function_error", max_count=1)
    sb.scale_in("c1-asg", 1)
    sb.run()
    assert [(f.operation, f.kind) for f in faults] == [("lambda:ecs-drain-hook", "function_error")]
    assert faults[0].at >= start + timedelta(seconds=25)
