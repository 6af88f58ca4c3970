"""Walk the ASL file's states with the drain Lambda's output shapes.

A small evaluator of the subset of ASL the file uses (Wait, Task with Parameters/OutputPath/
ResultPath/Retry/Catch, Choice, Succeed, Fail). SAMPLE_* below are the handler's return shapes
(lambda/drain_hook/models/state.py): swap in real handler outputs when convenient.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.constructs.drain_state_machine import ASL_FILE, load_definition

DEFINITION = json.loads(ASL_FILE.read_text())
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:111122223333:function:drain"

STATE_BASE: dict[str, Any] = {
    "state_version": 1,
    "instance_id": "i-0123456789abcdef0",
    "cluster": "prod-cluster",
    "container_instance_arn": (
        "arn:aws:ecs:eu-west-1:111122223333:container-instance/prod-cluster/abc"
    ),
    "asg_name": "prod-asg-a",
    "hook_name": "ecs-drain-hook",
    "lifecycle_action_token": "87654321-4321-4321-4321-210987654321",
    "started_at": "2026-01-15T10:00:00Z",
    "deadline_at": "2026-01-15T12:00:00Z",
    "polls": 1,
    "tasks": {"service": 2, "daemon": 0, "standalone": 0},
}
SAMPLE_DRAINING = {
    **STATE_BASE,
    "done": False,
    "action": "draining",
    "tasks_remaining": 2,
    "wait_seconds": 15,
}
SAMPLE_COMPLETED = {
    **STATE_BASE,
    "done": True,
    "action": "completed",
    "tasks_remaining": 0,
    "wait_seconds": 0,
}
SAMPLE_MANUAL_DRAINING = {
    **SAMPLE_DRAINING,
    "asg_name": None,
    "hook_name": None,
    "lifecycle_action_token": None,
}


class TaskFailed(Exception):
    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(error)
        self.error, self.cause = error, cause


def get_path(document: Any, path: str) -> Any:
    """$.a.b JSONPath subset (what the file uses)."""
    if path == "$":
        return document
    value = document
    for part in path.removeprefix("$.").split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


def set_path(document: dict[str, Any], path: str | None, value: Any) -> Any:
    if path is None:
        return document
    if path == "$":
        return value
    out = copy.deepcopy(document)
    target = out
    parts = path.removeprefix("$.").split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
    return out


def render(parameters: Any, data: Any) -> Any:
    if isinstance(parameters, dict):
        out = {}
        for key, value in parameters.items():
            if key.endswith(".$"):
                out[key[:-2]] = get_path(data, value)
            else:
                out[key] = render(value, data)
        return out
    return parameters


def choice_matches(rule: dict[str, Any], data: Any) -> bool:
    if "And" in rule:
        return all(choice_matches(r, data) for r in rule["And"])
    if "Or" in rule:
        return any(choice_matches(r, data) for r in rule["Or"])
    if "Not" in rule:
        return not choice_matches(rule["Not"], data)
    try:
        value = get_path(data, rule["Variable"])
        present = True
    except KeyError:
        value, present = None, False
    if "IsPresent" in rule:
        return present == rule["IsPresent"]
    if not present:
        return False  # a missing variable fails every comparison (States.Runtime aside)
    if "IsString" in rule:
        return isinstance(value, str) == rule["IsString"]
    if "BooleanEquals" in rule:
        return isinstance(value, bool) and value == rule["BooleanEquals"]
    raise NotImplementedError(rule)


def error_matches(names: list[str], error: str) -> bool:
    return (
        "States.ALL" in names
        or error in names
        or ("States.TaskFailed" in names and not error.startswith("States."))
    )


Service = Callable[[str, dict[str, Any]], Any]


def run(
    definition: dict[str, Any],
    execution_input: dict[str, Any],
    service: Service,
    max_steps: int = 200,
) -> tuple[str, list[str], Any, list[tuple[str, dict[str, Any]]]]:
    """Returns (status, visited states, final output or error, service calls)."""
    state_name = definition["StartAt"]
    data: Any = execution_input
    visited: list[str] = []
    calls: list[tuple[str, dict[str, Any]]] = []
    for _ in range(max_steps):
        visited.append(state_name)
        state = definition["States"][state_name]
        kind = state["Type"]
        if kind == "Succeed":
            return "SUCCEEDED", visited, data, calls
        if kind == "Fail":
            return "FAILED", visited, {"Error": state["Error"], "Cause": state.get("Cause")}, calls
        if kind == "Wait":
            seconds = get_path(data, state["SecondsPath"])
            assert isinstance(seconds, int) and seconds >= 0, (
                f"Wait needs whole seconds: {seconds!r}"
            )
            state_name = state["Next"]
            continue
        if kind == "Choice":
            state_name = next(
                (c["Next"] for c in state["Choices"] if choice_matches(c, data)), state["Default"]
            )
            continue
        assert kind == "Task", kind
        parameters = render(state.get("Parameters", {}), data)
        attempts: dict[int, int] = {}
        caught = False
        while True:
            try:
                calls.append((state["Resource"], parameters))
                result = service(state["Resource"], parameters)
                break
            except TaskFailed as failure:
                retrier = next(
                    (
                        (i, r)
                        for i, r in enumerate(state.get("Retry", []))
                        if error_matches(r["ErrorEquals"], failure.error)
                    ),
                    None,
                )
                if retrier is not None and attempts.get(retrier[0], 0) < retrier[1]["MaxAttempts"]:
                    attempts[retrier[0]] = attempts.get(retrier[0], 0) + 1
                    continue
                catcher = next(
                    (
                        c
                        for c in state.get("Catch", [])
                        if error_matches(c["ErrorEquals"], failure.error)
                    ),
                    None,
                )
                if catcher is None:
                    return "FAILED", visited, {"Error": failure.error}, calls
                data = set_path(
                    data,
                    catcher.get("ResultPath", "$"),
                    {"Error": failure.error, "Cause": failure.cause},
                )
                state_name = catcher["Next"]
                caught = True
                break
        if caught:
            continue
        # ResultPath null keeps the input; absent means the result replaces it.
        data = set_path(data, state["ResultPath"], result) if "ResultPath" in state else result
        if "OutputPath" in state:
            data = get_path(data, state["OutputPath"])
        state_name = state["Next"]
    raise AssertionError(f"no end after {max_steps} steps: {visited[-10:]}")


def lambda_service(outputs: Iterator[Any], completions: list[dict[str, Any]]) -> Service:
    """lambda:invoke returns {"Payload": <handler output>}; an exception item raises instead."""

    def call(resource: str, parameters: dict[str, Any]) -> Any:
        if resource == "arn:aws:states:::lambda:invoke":
            assert parameters["FunctionName"] == "${DrainFunctionArn}"
            item = next(outputs)
            if isinstance(item, TaskFailed):
                raise item
            return {"Payload": item, "StatusCode": 200, "ExecutedVersion": "$LATEST"}
        if resource == "arn:aws:states:::aws-sdk:autoscaling:completeLifecycleAction":
            completions.append(parameters)
            return {}
        raise AssertionError(resource)

    return call


def test_definition_is_well_formed() -> None:
    states = DEFINITION["States"]
    assert DEFINITION["StartAt"] in states
    targets = {DEFINITION["StartAt"]}
    for state in states.values():
        for key in ("Next", "Default"):
            if key in state:
                targets.add(state[key])
        targets.update(c["Next"] for c in state.get("Choices", []) + state.get("Catch", []))
    assert targets <= set(states), targets - set(states)
    assert targets == set(states), f"unreachable: {set(states) - targets}"
    assert "TimeoutSeconds" not in DEFINITION  # added at synth from the drain settings
    assert load_definition(9000)["TimeoutSeconds"] == 9000


def test_draining_loops_to_wait_then_succeeds_when_done() -> None:
    outputs = iter(
        [
            {**SAMPLE_DRAINING, "wait_seconds": 30},
            {**SAMPLE_DRAINING, "wait_seconds": 60},
            SAMPLE_COMPLETED,
        ]
    )
    completions: list[dict[str, Any]] = []
    status, visited, output, _ = run(
        DEFINITION, SAMPLE_DRAINING, lambda_service(outputs, completions)
    )
    assert status == "SUCCEEDED"
    assert visited == ["WaitBeforePoll", "PollDrain", "IsDrainDone"] * 3 + ["DrainFinished"]
    assert output == SAMPLE_COMPLETED
    assert completions == []  # the Lambda completes the action itself on success


def test_each_poll_gets_the_previous_output_unchanged() -> None:
    seen: list[dict[str, Any]] = []
    second = {**SAMPLE_DRAINING, "polls": 2, "wait_seconds": 45}

    def service(resource: str, parameters: dict[str, Any]) -> Any:
        seen.append(parameters["Payload"])
        return {"Payload": second if len(seen) == 1 else SAMPLE_COMPLETED}

    run(DEFINITION, SAMPLE_DRAINING, service)
    assert seen == [SAMPLE_DRAINING, second]


@pytest.mark.parametrize(
    "action", ["completed", "deadline", "lifecycle_ended", "continued", "drained"]
)
def test_any_done_output_ends_the_execution(action: str) -> None:
    done = {**SAMPLE_COMPLETED, "action": action}
    status, visited, _, _ = run(DEFINITION, SAMPLE_DRAINING, lambda_service(iter([done]), []))
    assert status == "SUCCEEDED"
    assert visited[-1] == "DrainFinished"


def test_lambda_error_completes_the_lifecycle_action_then_fails() -> None:
    # TaskFailed retried 3 times, then caught.
    failures = [TaskFailed("RuntimeError", "boom")] * 4
    completions: list[dict[str, Any]] = []
    status, visited, output, calls = run(
        DEFINITION, SAMPLE_DRAINING, lambda_service(iter(failures), completions)
    )
    assert status == "FAILED"
    assert output["Error"] == "DrainLoopFailed"
    assert visited == [
        "WaitBeforePoll",
        "PollDrain",
        "HasLifecycleAction",
        "CompleteLifecycleActionOnError",
        "DrainFailed",
    ]
    assert completions == [
        {
            "AutoScalingGroupName": "prod-asg-a",
            "LifecycleHookName": "ecs-drain-hook",
            "InstanceId": "i-0123456789abcdef0",
            "LifecycleActionResult": "CONTINUE",
        }
    ]
    assert sum(1 for resource, _ in calls if resource.endswith("lambda:invoke")) == 4


def test_throttling_is_retried_then_the_loop_carries_on() -> None:
    outputs = iter([TaskFailed("Lambda.TooManyRequestsException")] * 3 + [SAMPLE_COMPLETED])
    status, _, output, _ = run(DEFINITION, SAMPLE_DRAINING, lambda_service(outputs, []))
    assert status == "SUCCEEDED"
    assert output == SAMPLE_COMPLETED


def test_error_without_a_lifecycle_action_fails_without_completing() -> None:
    completions: list[dict[str, Any]] = []
    failures = iter([TaskFailed("RuntimeError")] * 4)
    status, visited, _, _ = run(
        DEFINITION, SAMPLE_MANUAL_DRAINING, lambda_service(failures, completions)
    )
    assert status == "FAILED"
    assert visited[-2:] == ["HasLifecycleAction", "DrainFailed"]
    assert completions == []


def test_failed_completion_still_fails_the_execution() -> None:
    def service(resource: str, parameters: dict[str, Any]) -> Any:
        if resource.endswith("lambda:invoke"):
            raise TaskFailed("RuntimeError")
        raise TaskFailed("AutoScaling.ValidationErrorException", "No active Lifecycle Action found")

    status, visited, _, _ = run(DEFINITION, SAMPLE_DRAINING, service)
    assert status == "FAILED"
    assert visited[-2:] == ["CompleteLifecycleActionOnError", "DrainFailed"]


def test_sample_outputs_are_valid_handler_states() -> None:
    """The samples stay in step with the handler's model (extra='forbid' catches drift)."""
    from drain_hook.models.state import DrainState

    for sample in (SAMPLE_DRAINING, SAMPLE_COMPLETED, SAMPLE_MANUAL_DRAINING):
        state = DrainState.model_validate(sample)
        assert state.model_dump(mode="json")["done"] == sample["done"]
