"""Nothing someone else wrote decides a write: lifecycle events, states passed back, ECS and Step
Functions events are checked against AWS's own record first (the real handler against moto)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from moto.ecs import models as ecs_models

from drain_hook import contract
from drain_hook.errors import InputRejected, TransientAwsError
from tests.conftest import ACCOUNT, REGION, STATE_MACHINE_ARN
from tests.drain_lambda.conftest import HOOK, World, begin_termination, wait_as_the_loop_does
from tests.drain_lambda.sample_events import eventbridge

CLUSTER = "default-cluster"


@pytest.fixture
def draining(world: World, handler) -> tuple[str, str, dict[str, Any]]:
    """One instance held by the hook with two tasks, after the first round."""
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1)
    arn = world.register(CLUSTER, instance_id)
    world.run_tasks(CLUSTER, arn, 2)
    state = handler(begin_termination("web-asg", instance_id))
    assert state["action"] == "draining"
    world.calls.clear()
    return instance_id, arn, state


def attributes(world: World, arn: str) -> dict[str, str | None]:
    found = world.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])
    return {a["name"]: a.get("value") for a in found["containerInstances"][0]["attributes"]}


def no_write_happened(world: World) -> bool:
    return world.writes() == []


class TestLifecycleEventAgreesWithAws:
    @pytest.fixture
    def held(self, world: World) -> tuple[str, str, dict[str, Any]]:
        world.cluster(CLUSTER)
        [instance_id] = world.group("web-asg", 1)
        arn = world.register(CLUSTER, instance_id)
        world.run_tasks(CLUSTER, arn, 1)
        event = begin_termination("web-asg", instance_id)
        return instance_id, arn, event

    def test_another_groups_name_is_rejected_before_any_write(self, world, handler, held):
        _instance_id, arn, event = held
        world.group("other-asg", 1)
        event["detail"]["AutoScalingGroupName"] = "other-asg"
        with pytest.raises(InputRejected, match="belongs to Auto Scaling group 'web-asg'"):
            handler(event)
        assert no_write_happened(world)
        assert world.instance_status(CLUSTER, arn) == "ACTIVE" and world.executions() == []

    def test_a_hook_that_does_not_exist_is_rejected_before_any_write(self, world, handler, held):
        _instance_id, arn, event = held
        event["detail"]["LifecycleHookName"] = "no-such-hook"
        with pytest.raises(InputRejected, match="no lifecycle hook 'no-such-hook'"):
            handler(event)
        assert no_write_happened(world)
        assert world.instance_status(CLUSTER, arn) == "ACTIVE" and world.executions() == []

    def test_a_made_up_token_drains_nothing(self, world, handler, held):
        """Auto Scaling shows the instance waiting, but refuses the token, and nothing drained
        it yet: that is also what Auto Scaling has answered for an action just begun, so the
        event is taken again later (an error the intake queue retries), never answered over.
        Either way nothing is written."""
        instance_id, arn, event = held
        event["detail"]["LifecycleActionToken"] = "00000000-0000-0000-0000-000000000000"
        with pytest.raises(TransientAwsError, match="taken again later"):
            handler(event)
        # The heartbeat that proves a token is the only call that could write; it failed.
        assert world.writes() == ["autoscaling:RecordLifecycleActionHeartbeat"]
        assert world.instance_status(CLUSTER, arn) == "ACTIVE" and world.executions() == []
        assert contract.DRAIN_ATTRIBUTE not in attributes(world, arn)
        assert world.lifecycle_state(instance_id) == "Terminating:Wait"

    def test_a_made_up_token_for_an_instance_being_drained_is_answered_ended(
        self, world, handler, held
    ):
        instance_id, _arn, event = held
        handler(event)  # the real event: the drain is under way
        forged = copy.deepcopy(event)
        forged["detail"]["LifecycleActionToken"] = "00000000-0000-0000-0000-000000000000"
        world.calls.clear()
        result = handler(forged)
        assert (result["done"], result["action"]) == (True, "lifecycle_ended")
        assert world.writes() == ["autoscaling:RecordLifecycleActionHeartbeat"]
        assert world.lifecycle_state(instance_id) == "Terminating:Wait"

    def test_an_instance_no_hook_holds_is_not_drained(self, world, handler):
        world.cluster(CLUSTER)
        [instance_id] = world.group("web-asg", 1)
        arn = world.register(CLUSTER, instance_id)
        detail = {
            "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
            "AutoScalingGroupName": "web-asg",
            "LifecycleHookName": HOOK,
            "EC2InstanceId": instance_id,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        }
        result = handler(eventbridge(detail))  # InService: a forged or very stale event
        assert result["action"] == "lifecycle_ended"
        assert no_write_happened(world) and world.instance_status(CLUSTER, arn) == "ACTIVE"

    def test_the_first_round_records_a_heartbeat_and_the_drain(self, world, handler, held):
        _instance_id, arn, event = held
        state = handler(event)
        assert state["last_heartbeat_at"] is not None
        assert "autoscaling:RecordLifecycleActionHeartbeat" in world.calls
        record = attributes(world, arn)[contract.DRAIN_ATTRIBUTE]
        assert record is not None and record.endswith(state["execution_name"])
        assert attributes(world, arn)[contract.ACTION_ATTRIBUTE] == f"{HOOK} web-asg"


class TestStatePassedBack:
    def test_an_old_response_with_a_past_deadline_is_refused(self, world, handler, draining):
        _instance_id, _arn, state = draining
        stale = {**state, "deadline_at": "2020-01-01T00:00:00Z"}
        with pytest.raises(InputRejected, match="deadline_at"):
            handler(stale)
        assert no_write_happened(world)

    def test_a_start_earlier_than_ecs_records_is_refused(self, world, handler, draining):
        _instance_id, _arn, state = draining
        earlier = {
            **state,
            "started_at": "2020-01-01T00:00:00Z",
            "deadline_at": "2020-01-01T02:00:00Z",
        }
        with pytest.raises(InputRejected, match="before ECS's record"):
            handler(earlier)
        assert no_write_happened(world)

    def test_another_container_instance_is_refused(self, world, handler, draining):
        _instance_id, _arn, state = draining
        [other] = world.standalone_instances(1)
        other_arn = world.register(CLUSTER, other)
        with pytest.raises(InputRejected, match="is EC2 instance"):
            handler({**state, "container_instance_arn": other_arn})
        assert no_write_happened(world)

    def test_another_group_is_refused(self, world, handler, draining):
        _instance_id, _arn, state = draining
        with pytest.raises(InputRejected, match="belongs to 'web-asg'"):
            handler({**state, "asg_name": "other-asg"})
        assert no_write_happened(world)

    def test_a_later_start_is_replaced_by_the_record(self, world, handler, draining):
        _instance_id, _arn, state = draining
        world.clock.advance(30)
        later = {
            **state,
            "started_at": "2030-01-01T00:00:00Z",
            "deadline_at": "2030-01-01T02:00:00Z",
        }
        result = handler(later)
        assert result["started_at"] == state["started_at"]
        assert result["deadline_at"] == state["deadline_at"]


class TestLoopRecovery:
    def test_a_replay_after_the_loop_ended_starts_a_fresh_loop(self, world, handler, draining):
        instance_id, arn, state = draining
        [execution] = world.executions()
        world.sfn.stop_execution(executionArn=execution["executionArn"], cause="operator")
        replay = begin_termination_event(instance_id, state)
        result = handler(replay)
        assert (result["done"], result["action"]) == (False, "draining")
        assert result["execution_name"] == f"{state['execution_name']}-r1"
        names = {e["name"]: e["status"] for e in world.executions()}
        assert names == {state["execution_name"]: "ABORTED", result["execution_name"]: "RUNNING"}
        record = attributes(world, arn)[contract.DRAIN_ATTRIBUTE]
        assert record is not None and record.endswith(result["execution_name"])
        assert result["started_at"] == state["started_at"]  # the same hold, resumed

    def test_a_replay_while_the_loop_runs_is_a_duplicate(self, world, handler, draining):
        instance_id, _arn, state = draining
        result = handler(begin_termination_event(instance_id, state))
        assert (result["done"], result["action"]) == (True, "duplicate")
        assert len(world.executions()) == 1


class TestLoopEndRelease:
    def test_an_ended_loop_that_owns_the_drain_releases_it(self, world, handler, draining):
        instance_id, _arn, state = draining
        [execution] = world.executions()
        world.sfn.stop_execution(executionArn=execution["executionArn"], cause="operator")
        result = handler(status_event(execution["executionArn"], state["execution_name"]))
        assert result["action"] == "released"
        assert world.lifecycle_state(instance_id) is None

    def test_a_stray_execution_can_not_release_the_drain(self, world, handler, draining):
        instance_id, _arn, state = draining
        stray = world.sfn.start_execution(
            stateMachineArn=STATE_MACHINE_ARN, name="manual-1", input=json.dumps(state)
        )
        world.sfn.stop_execution(executionArn=stray["executionArn"], cause="operator")
        world.calls.clear()
        result = handler(status_event(stray["executionArn"], "manual-1"))
        assert result["action"] == "ignored" and "does not own" in result["reason"]
        assert no_write_happened(world)
        assert world.lifecycle_state(instance_id) == "Terminating:Wait"

    def test_the_event_alone_is_not_believed(self, world, handler, draining):
        """A status event for a loop that, per Step Functions, still runs changes nothing."""
        instance_id, _arn, state = draining
        [execution] = world.executions()
        result = handler(status_event(execution["executionArn"], state["execution_name"]))
        assert result["action"] == "ignored" and "RUNNING" in result["reason"]
        assert no_write_happened(world)
        assert world.lifecycle_state(instance_id) == "Terminating:Wait"


class TestFastPath:
    def test_completes_once_ecs_lists_no_unstopped_task(self, world, handler, draining):
        instance_id, arn, _state = draining
        tasks = world.ecs.list_tasks(cluster=CLUSTER)["taskArns"]
        for task in tasks:
            world.set_task(CLUSTER, task, last="STOPPED", desired="STOPPED")
        _counts(arn, running=0, pending=0)
        result = handler(task_event(arn, tasks[-1]))
        assert result["action"] == "completed" and result["instance_id"] == instance_id
        assert world.lifecycle_state(instance_id) is None

    def test_a_task_of_an_instance_nobody_drains_costs_one_listing_then_none(
        self, world, handler, draining
    ):
        _instance_id, _arn, _state = draining
        [other] = world.standalone_instances(1)
        other_arn = world.register(CLUSTER, other)
        task = world.run_tasks(CLUSTER, other_arn, 1)[0]
        world.calls.clear()
        assert handler(task_event(other_arn, task))["action"] == "ignored"
        assert world.calls == ["ecs:ListContainerInstances"]
        world.calls.clear()
        assert handler(task_event(other_arn, task))["action"] == "ignored"
        assert world.calls == []  # the listing is kept a few seconds

    def test_tasks_meant_to_run_cost_one_describe(self, world, handler, draining):
        _instance_id, arn, _state = draining
        tasks = world.ecs.list_tasks(cluster=CLUSTER)["taskArns"]  # both still RUNNING
        result = handler(task_event(arn, tasks[0]))
        assert result["action"] == "ignored" and result["tasks_remaining"] == 2
        assert world.calls == ["ecs:DescribeContainerInstances"]

    def test_the_instance_counts_are_never_trusted_to_complete(self, world, handler, draining):
        instance_id, arn, _state = draining
        _counts(arn, running=0, pending=0)  # no task desired RUNNING any more...
        tasks = world.ecs.list_tasks(cluster=CLUSTER)["taskArns"]
        for task in tasks:  # ...but ECS's own listing says: told to stop, still stopping
            world.set_task(CLUSTER, task, last="STOPPING", desired="STOPPED")
        result = handler(task_event(arn, tasks[0]))
        assert result["action"] == "ignored" and result["tasks_remaining"] == 2
        assert world.lifecycle_state(instance_id) == "Terminating:Wait"
        # The next stop checks only the tasks it knew were stopping, then everything again.
        world.set_task(CLUSTER, tasks[0], last="STOPPED", desired="STOPPED")
        world.calls.clear()
        assert handler(task_event(arn, tasks[0]))["action"] == "ignored"
        assert world.calls == ["ecs:DescribeTasks"]
        world.set_task(CLUSTER, tasks[1], last="STOPPED", desired="STOPPED")
        assert handler(task_event(arn, tasks[1]))["action"] == "completed"
        assert world.lifecycle_state(instance_id) is None

    def test_a_task_event_naming_another_instance_can_not_complete_this_one(
        self, world, handler, draining
    ):
        instance_id, arn, _state = draining
        [other] = world.standalone_instances(1)
        other_arn = world.register(CLUSTER, other)  # empty, not drained
        tasks = world.ecs.list_tasks(cluster=CLUSTER)["taskArns"]
        result = handler(task_event(other_arn, tasks[0]))
        assert result["action"] == "ignored"
        assert world.lifecycle_state(instance_id) == "Terminating:Wait"
        assert arn != other_arn

    def test_both_paths_completing_is_harmless(self, world, handler, draining):
        _instance_id, arn, state = draining
        tasks = world.ecs.list_tasks(cluster=CLUSTER)["taskArns"]
        for task in tasks:
            world.set_task(CLUSTER, task, last="STOPPED", desired="STOPPED")
        _counts(arn, running=0, pending=0)
        assert handler(task_event(arn, tasks[0]))["action"] == "completed"
        wait_as_the_loop_does(world, state)
        polled = handler(state)
        assert (polled["done"], polled["action"]) == (True, "lifecycle_ended")
        # A duplicate of the event: the action is over, nothing else happens.
        assert handler(task_event(arn, tasks[0]))["action"] in ("ignored", "lifecycle_ended")


class TestAgentDisconnected:
    def test_released_after_the_grace_and_not_before(self, world, handler, draining, lambda_env):
        lambda_env(AGENT_DISCONNECTED_GRACE_SECONDS="600")
        instance_id, arn, state = draining
        _agent(arn, connected=False)
        polls = []
        while not state["done"]:
            wait_as_the_loop_does(world, state)
            state = handler(state)
            polls.append((world.clock.now(), state["action"]))
        lost_at = polls[0][0]
        assert state["action"] == "agent_lost"
        assert polls[-1][0] - lost_at >= timedelta(seconds=600)
        assert all(action == "draining" for _, action in polls[:-1])
        assert world.lifecycle_state(instance_id) is None

    def test_a_reconnect_within_the_grace_changes_nothing(
        self, world, handler, draining, lambda_env
    ):
        lambda_env(AGENT_DISCONNECTED_GRACE_SECONDS="600")
        instance_id, arn, state = draining
        _agent(arn, connected=False)
        wait_as_the_loop_does(world, state)
        state = handler(state)
        _agent(arn, connected=True)
        for _ in range(5):
            wait_as_the_loop_does(world, state)
            state = handler(state)
            assert state["action"] == "draining"
        assert state["agent_disconnected_since"] is None
        assert world.lifecycle_state(instance_id) == "Terminating:Wait"


def test_other_termination_hooks_are_named_once_per_drain(world, handler, capsys, monkeypatch):
    from drain_hook.logic import outcomes

    warnings: list[dict[str, Any]] = []
    monkeypatch.setattr(
        outcomes.logger, "warning", lambda message, extra=None: warnings.append(extra or {})
    )
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1)
    world.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName="web-asg",
        LifecycleHookName="ecs-managed-draining-termination-hook",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=3600,
        DefaultResult="CONTINUE",
    )
    arn = world.register(CLUSTER, instance_id)
    world.run_tasks(CLUSTER, arn, 1)
    from local_aws import autoscaling as lifecycle

    event = lifecycle.begin_termination("web-asg", instance_id, HOOK)
    capsys.readouterr()
    handler(event)
    out = capsys.readouterr().out
    assert warnings == [
        {"asg_name": "web-asg", "other_hooks": ["ecs-managed-draining-termination-hook"]}
    ]
    assert f'"{contract.METRIC_OTHER_TERMINATION_HOOKS}":[1.0]' in out
    handler(event)  # a duplicate delivery: not counted again
    assert contract.METRIC_OTHER_TERMINATION_HOOKS not in capsys.readouterr().out


# --- helpers -------------------------------------------------------------------------------


def begin_termination_event(instance_id: str, state: dict[str, Any]) -> dict[str, Any]:
    return eventbridge(
        {
            "LifecycleActionToken": state["lifecycle_action_token"],
            "AutoScalingGroupName": state["asg_name"],
            "LifecycleHookName": state["hook_name"],
            "EC2InstanceId": instance_id,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "NotificationMetadata": json.dumps({"cluster": state["cluster"]}),
        }
    )


def status_event(execution_arn: str, name: str) -> dict[str, Any]:
    return eventbridge(
        {
            "executionArn": execution_arn,
            "stateMachineArn": STATE_MACHINE_ARN,
            "name": name,
            "status": "ABORTED",
            "startDate": 1736154000000,
            "stopDate": 1736154060000,
            "input": "{}",
        },
        source="aws.states",
        **{"detail-type": "Step Functions Execution Status Change"},
    )


def task_event(container_instance_arn: str, task_arn: str) -> dict[str, Any]:
    """ECS's "Task State Change" for a task that reached STOPPED on the instance."""
    body = {
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
        "containerInstanceArn": container_instance_arn,
        "taskArn": task_arn,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "launchType": "EC2",
        "stoppedAt": "2026-12-06T09:00:00.000Z",
    }
    return eventbridge(
        body, source=contract.ECS_SOURCE, **{"detail-type": contract.TASK_DETAIL_TYPE}
    )


def _backend_instance(arn: str) -> Any:
    backend = ecs_models.ecs_backends[ACCOUNT][REGION]
    return backend.container_instances[CLUSTER][arn.rsplit("/", 1)[-1]]


def _counts(arn: str, *, running: int, pending: int) -> None:
    """What ECS's record says of the instance (moto does not keep these counts by itself)."""
    instance = _backend_instance(arn)
    instance.running_tasks_count, instance.pending_tasks_count = running, pending


def _agent(arn: str, *, connected: bool) -> None:
    _backend_instance(arn).agent_connected = connected
