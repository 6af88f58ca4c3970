"""ON_DRAIN_FAILURE=retain on the real code path against moto (and local_aws's instance
lifecycle policies): a failed drain completes with ABANDON only where the group retains; the
instance is then Retained with its tasks; everywhere else it is CONTINUE, as before."""

from __future__ import annotations

import pytest

from drain_hook import contract
from tests.drain_lambda.conftest import World, begin_termination, wait_as_the_loop_does

CLUSTER = "keep-cluster"
GROUP = "keep-asg"
RETAIN = {"RetentionTriggers": {"TerminateHookAbandon": "retain"}}


@pytest.fixture
def keep_world(world: World, lambda_env):
    def make(*, on_failure: str, policy: dict | None, **env: str) -> tuple[str, str]:
        lambda_env(
            **{
                "ON_DRAIN_FAILURE": on_failure,
                "MAX_DRAIN_SECONDS": "600",
                "AT_DEADLINE": "continue",
                "POLL_INTERVAL_FIRST_SECONDS": "300",
                "POLL_INTERVAL_MAX_SECONDS": "600",
                **env,
            }
        )
        world.cluster(CLUSTER)
        [instance_id] = world.group(GROUP, 1, cluster=CLUSTER, heartbeat=1200)
        if policy is not None:
            world.autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=GROUP, InstanceLifecyclePolicy=policy
            )
        arn = world.register(CLUSTER, instance_id)
        world.run_tasks(CLUSTER, arn, 1, group="family:batch")  # it never ends by itself
        return instance_id, arn

    return make


def _to_the_deadline(world: World, handler, instance_id: str) -> dict:
    state = handler(begin_termination(GROUP, instance_id))
    while not state["done"]:
        wait_as_the_loop_does(world, state)
        state = handler(state)
    return state


def _completions(world: World) -> list[str]:
    return [c for c in world.calls if c == "autoscaling:CompleteLifecycleAction"]


def test_a_deadline_with_tasks_left_retains_the_host_where_the_group_retains(
    world, handler, keep_world, capsys
) -> None:
    instance_id, arn = keep_world(on_failure="retain", policy=RETAIN)
    capsys.readouterr()
    state = _to_the_deadline(world, handler, instance_id)
    assert state["action"] == "deadline" and state["tasks_remaining"] == 1
    assert world.lifecycle_state(instance_id) == "Terminating:Retained"
    # Still registered, still DRAINING, its task still running: nothing was lost.
    assert world.instance_status(CLUSTER, arn) == "DRAINING"
    out = capsys.readouterr().out
    assert contract.METRIC_DRAINS_RETAINED in out
    assert len(_completions(world)) == 1


def test_without_the_groups_policy_retain_falls_back_to_continue_and_says_why(
    world, handler, keep_world, capsys
) -> None:
    instance_id, _arn = keep_world(on_failure="retain", policy=None)
    capsys.readouterr()
    state = _to_the_deadline(world, handler, instance_id)
    assert state["action"] == "deadline"
    assert world.lifecycle_state(instance_id) is None  # terminated, as with CONTINUE
    assert contract.METRIC_DRAINS_RETAINED not in capsys.readouterr().out


def test_the_fallback_is_logged(world, handler, keep_world, caplog) -> None:
    instance_id, _arn = keep_world(on_failure="retain", policy=None)
    with caplog.at_level("WARNING"):
        _to_the_deadline(world, handler, instance_id)
    assert any("completing with CONTINUE" in r.getMessage() for r in caplog.records)


def test_terminate_the_default_never_abandons_even_where_the_group_retains(
    world, handler, keep_world
) -> None:
    instance_id, _arn = keep_world(on_failure="terminate", policy=RETAIN)
    world.calls.clear()
    _to_the_deadline(world, handler, instance_id)
    assert world.lifecycle_state(instance_id) is None
    assert "autoscaling:DescribeAutoScalingGroups" not in world.calls  # not even looked at


def test_a_drain_that_empties_at_the_deadline_is_no_failure(world, handler, keep_world) -> None:
    """AT_DEADLINE=stop_tasks stops what is left; if it stops, the host terminates as drained."""
    instance_id, arn = keep_world(
        on_failure="retain",
        policy=RETAIN,
        AT_DEADLINE="stop_tasks",
        DEADLINE_STOP_GRACE_SECONDS="30",
    )
    state = handler(begin_termination(GROUP, instance_id))
    while state["action"] != "stopping":
        wait_as_the_loop_does(world, state)
        state = handler(state)
    [task] = world.ecs.list_tasks(cluster=CLUSTER, containerInstance=arn, desiredStatus="STOPPED")[
        "taskArns"
    ]
    world.set_task(CLUSTER, task, last="STOPPED", desired="STOPPED")
    wait_as_the_loop_does(world, state)
    state = handler(state)
    assert state["action"] == "deadline" and state["tasks_remaining"] == 0
    assert world.lifecycle_state(instance_id) is None  # CONTINUE: it had nothing left


def test_a_lost_agent_retains_too(world, handler, keep_world) -> None:
    instance_id, arn = keep_world(
        on_failure="retain",
        policy=RETAIN,
        MAX_DRAIN_SECONDS="7200",
        AGENT_DISCONNECTED_GRACE_SECONDS="120",
    )
    from moto.ecs import models as ecs_models

    from tests.conftest import ACCOUNT, REGION

    state = handler(begin_termination(GROUP, instance_id))
    backend = ecs_models.ecs_backends[ACCOUNT][REGION]
    backend.container_instances[CLUSTER][arn.rsplit("/", 1)[-1]].agent_connected = False
    while not state["done"]:
        wait_as_the_loop_does(world, state)
        state = handler(state)
    assert state["action"] == "agent_lost"
    assert world.lifecycle_state(instance_id) == "Terminating:Retained"


def test_a_loop_that_ends_badly_retains_where_the_group_retains(world, handler, keep_world):
    from tests.drain_lambda.test_checks_against_aws import status_event

    instance_id, _arn = keep_world(on_failure="retain", policy=RETAIN, MAX_DRAIN_SECONDS="7200")
    state = handler(begin_termination(GROUP, instance_id))
    [execution] = world.executions()
    world.sfn.stop_execution(executionArn=execution["executionArn"], cause="operator")
    result = handler(status_event(execution["executionArn"], execution["name"]))
    assert result["action"] == "released" and "ABANDON" in result["reason"]
    assert world.lifecycle_state(instance_id) == "Terminating:Retained"
    assert state["action"] == "draining"
