"""The ASL file's states agree with the real handler: walk the definition, invoking the real
Lambda handler (against moto) at each PollDrain, from a real lifecycle event to the end."""

from __future__ import annotations

from typing import Any

from tests.drain_lambda.conftest import World, begin_termination
from tests.infra.test_state_machine_asl import DEFINITION, run

CLUSTER = "default-cluster"


def test_definition_drives_the_real_handler_from_event_to_completion(world: World, handler):
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1, heartbeat=60)
    arn = world.register(CLUSTER, instance_id)
    tasks = world.run_tasks(CLUSTER, arn, 2, group="service:web")
    world.service(CLUSTER, "web")

    first = handler(begin_termination("web-asg", instance_id))
    assert first["done"] is False

    polls: list[dict[str, Any]] = []

    def service(resource: str, parameters: dict[str, Any]) -> Any:
        assert resource == "arn:aws:states:::lambda:invoke"
        payload = parameters["Payload"]
        world.clock.advance(payload["wait_seconds"])  # the Wait state before this poll
        if len(polls) == 3:  # ECS has replaced the tasks by the fourth poll
            for task in tasks:
                world.set_task(CLUSTER, task, last="STOPPED", desired="STOPPED")
        output = handler(payload)
        polls.append(output)
        return {"Payload": output, "StatusCode": 200}

    status, visited, output, _ = run(DEFINITION, first, service)

    assert status == "SUCCEEDED"
    assert visited == ["WaitBeforePoll", "PollDrain", "IsDrainDone"] * 4 + ["DrainFinished"]
    assert [p["action"] for p in polls] == ["draining", "draining", "draining", "completed"]
    assert output == polls[-1]
    assert world.lifecycle_state(instance_id) is None  # completed by the handler itself


def test_a_handler_error_is_caught_and_the_lifecycle_action_completed(world: World, handler):
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1)
    arn = world.register(CLUSTER, instance_id)
    world.run_tasks(CLUSTER, arn, 1)
    first = handler(begin_termination("web-asg", instance_id))

    def service(resource: str, parameters: dict[str, Any]) -> Any:
        if resource == "arn:aws:states:::lambda:invoke":
            broken = {**parameters["Payload"], "instance_id": "not-an-instance"}
            handler(broken)  # raises BadEventError, as a corrupted payload would
        assert resource.endswith("autoscaling:completeLifecycleAction")
        world.autoscaling.complete_lifecycle_action(**parameters)
        return {}

    from drain_hook.models.requests import BadEventError
    from tests.infra import test_state_machine_asl as asl

    def as_task_failure(resource: str, parameters: dict[str, Any]) -> Any:
        try:
            return service(resource, parameters)
        except BadEventError as error:
            raise asl.TaskFailed("BadEventError", str(error)) from None

    status, visited, output, _ = run(DEFINITION, first, as_task_failure)
    assert status == "FAILED" and output["Error"] == "DrainLoopFailed"
    assert "CompleteLifecycleActionOnError" in visited
    assert world.lifecycle_state(instance_id) is None
