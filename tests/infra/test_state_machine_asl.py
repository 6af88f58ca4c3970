"""Walk the ASL file's states (v2 loop) with the drain Lambda's output shapes.

A small evaluator of the subset of ASL the file uses (Wait, Task with Parameters/OutputPath/
ResultPath/Retry/Catch, Pass with Parameters and States.MathAdd, Choice with And/IsPresent/
IsString/IsNumeric/BooleanEquals/NumericGreaterThan(Path)/NumericGreaterThanEqualsPath,
Succeed, Fail), on
a virtual clock so `$$.State.EnteredTime` and Wait states mean something. SAMPLE_* below are the
handler's return shapes as the v2 loop reads them.
"""

from __future__ import annotations

import copy
import importlib
import json
import pkgutil
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecs_drain_hook import contract
from ecs_drain_hook.package_files import asl_path, load_definition

ASL_FILE = asl_path()
DEFINITION = json.loads(ASL_FILE.read_text())
# The integrations' ARNs as the file spells them: substitutions, set to the stack's partition's.
INTEGRATIONS = {
    integration: "${" + name + "}"
    for name, integration in contract.INTEGRATION_SUBSTITUTIONS.items()
}
LAMBDA_INVOKE = INTEGRATIONS["lambda:invoke"]
HEARTBEAT = INTEGRATIONS["aws-sdk:autoscaling:recordLifecycleActionHeartbeat"]
START = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC)

STATE_BASE: dict[str, Any] = {
    "state_version": 2,
    "instance_id": "i-0123456789abcdef0",
    "cluster": "prod-cluster",
    "asg_name": "prod-asg-a",
    "hook_name": "ecs-drain-hook",
    "lifecycle_action_token": "87654321-4321-4321-4321-210987654321",
    "started_at": "2026-01-15T10:00:00Z",
    "deadline_at": "2026-01-15T12:00:00Z",
    "polls": 1,
    "retry": {"wait_seconds": 60, "release_after_seconds": 900, "failed_seconds": 0},
    # What the Lambda writes: 2 h to the deadline less the 15 s wait, plus one retry wait.
    "deadline_after_failed_seconds": 7200 - 15 + 60,
}
SAMPLE_DRAINING = {**STATE_BASE, "done": False, "action": "draining", "wait_seconds": 15}
SAMPLE_COMPLETED = {**STATE_BASE, "done": True, "action": "completed", "wait_seconds": 0}
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


def evaluate(expression: str, data: Any, context: dict[str, Any]) -> Any:
    if expression.startswith("$$."):
        return get_path(context, "$." + expression.removeprefix("$$."))
    if expression.startswith("States.MathAdd("):
        left, right = expression.removeprefix("States.MathAdd(").removesuffix(")").split(",")
        return evaluate(left.strip(), data, context) + evaluate(right.strip(), data, context)
    if expression.lstrip("-").isdigit():  # an integer literal argument of an intrinsic
        return int(expression)
    return get_path(data, expression)


def render(parameters: Any, data: Any, context: dict[str, Any]) -> Any:
    if isinstance(parameters, dict):
        out = {}
        for key, value in parameters.items():
            if key.endswith(".$"):
                out[key[:-2]] = evaluate(value, data, context)
            else:
                out[key] = render(value, data, context)
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
        # Step Functions fails the execution (States.Runtime) on a comparison with a missing
        # path: the definition must test IsPresent first, in a Choice of its own.
        raise KeyError(f"States.Runtime: {rule['Variable']} is missing")
    if "IsString" in rule:
        return isinstance(value, str) == rule["IsString"]
    if "IsNumeric" in rule:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        return numeric == rule["IsNumeric"]
    if "NumericGreaterThan" in rule:
        return value > rule["NumericGreaterThan"]
    if "BooleanEquals" in rule:
        return isinstance(value, bool) and value == rule["BooleanEquals"]
    if "NumericGreaterThanPath" in rule:
        return value > get_path(data, rule["NumericGreaterThanPath"])
    if "NumericGreaterThanEqualsPath" in rule:
        return value >= get_path(data, rule["NumericGreaterThanEqualsPath"])
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
    max_steps: int = 400,
    start: datetime = START,
) -> tuple[str, list[str], Any, list[tuple[str, dict[str, Any]]]]:
    """Returns (status, visited states, final output or error, service calls)."""
    state_name = definition["StartAt"]
    data: Any = execution_input
    visited: list[str] = []
    calls: list[tuple[str, dict[str, Any]]] = []
    now = start
    for _ in range(max_steps):
        visited.append(state_name)
        state = definition["States"][state_name]
        context = {"State": {"EnteredTime": now.strftime("%Y-%m-%dT%H:%M:%S.000Z")}}
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
            now += timedelta(seconds=seconds)
            state_name = state["Next"]
            continue
        if kind == "Choice":
            state_name = next(
                (c["Next"] for c in state["Choices"] if choice_matches(c, data)), state["Default"]
            )
            continue
        if kind == "Pass":
            result = render(state.get("Parameters", {}), data, context)
            data = set_path(data, state.get("ResultPath", "$"), result)
            state_name = state["Next"]
            continue
        assert kind == "Task", kind
        parameters = render(state.get("Parameters", {}), data, context)
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


def lambda_service(outputs: Iterator[Any], heartbeats: list[dict[str, Any]]) -> Service:
    """lambda:invoke returns {"Payload": <handler output>}; an exception item raises instead."""

    def call(resource: str, parameters: dict[str, Any]) -> Any:
        if resource == LAMBDA_INVOKE:
            assert parameters["FunctionName"] == "${DrainFunctionArn}"
            item = next(outputs)
            if isinstance(item, TaskFailed):
                raise item
            return {"Payload": item, "StatusCode": 200, "ExecutedVersion": "$LATEST"}
        if resource == HEARTBEAT:
            heartbeats.append(parameters)
            return {}
        raise AssertionError(resource)

    return call


def invokes(calls: list[tuple[str, dict[str, Any]]]) -> int:
    return sum(1 for resource, _ in calls if resource == LAMBDA_INVOKE)


# --- structure ----------------------------------------------------------------------------------


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


def test_the_loop_never_completes_a_lifecycle_action() -> None:
    """v2: releases are the Lambda's; the loop only invokes it and records heartbeats."""
    resources = {s["Resource"] for s in DEFINITION["States"].values() if s["Type"] == "Task"}
    assert resources == {LAMBDA_INVOKE, HEARTBEAT}
    assert "completeLifecycleAction" not in ASL_FILE.read_text()


def test_no_arn_in_the_file_names_a_partition() -> None:
    """China and GovCloud: the file spells out no ARN (each would name a partition); every
    Task's Resource is one of the integration substitutions the construct sets."""
    assert not re.search(r"arn:", ASL_FILE.read_text())
    tasks = [s for s in DEFINITION["States"].values() if s["Type"] == "Task"]
    assert tasks
    assert {task["Resource"] for task in tasks} == set(INTEGRATIONS.values())


def test_every_fail_state_names_its_error() -> None:
    fails = {n: s for n, s in DEFINITION["States"].items() if s["Type"] == "Fail"}
    assert set(fails) == {
        "InputRejected",
        "PermanentError",
        "ClusterNotFound",
        "ErrorsOutlastedRelease",
        "DeadlinePassedWhileFailing",
    }
    for name, state in fails.items():
        assert state["Error"] == name
        assert "Lambda releases" in state["Cause"]


def _final_errors() -> set[str]:
    """The names of the errors the drain Lambda raises for what retrying can't fix: every
    subclass of PermanentAwsError (found in every module of the Lambda's package), InputRejected
    and ErrorsOutlastedRelease. Lambda reports an exception by its class name."""
    import drain_hook
    from drain_hook.errors import ErrorsOutlastedRelease, InputRejected, PermanentAwsError

    for module in pkgutil.walk_packages(drain_hook.__path__, "drain_hook."):
        if module.name != "drain_hook.handler":  # reads settings at import; defines no error
            importlib.import_module(module.name)
    found: set[type[Exception]] = set()
    pending: list[type[Exception]] = [PermanentAwsError]
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending.extend(cls.__subclasses__())
    return {cls.__name__ for cls in found} | {
        InputRejected.__name__,
        ErrorsOutlastedRelease.__name__,
    }


def test_every_error_retrying_cannot_fix_ends_the_loop_at_once() -> None:
    """PollDrain neither retries nor waits out a final error: each is in the no-retry list and
    has a Catch of its own to a Fail state. A new permanent error class that the definition
    does not name would be retried for ERROR_RELEASE_SECONDS."""
    from drain_hook.errors import TransientAwsError

    final = _final_errors()
    assert {"ClusterNotFound", "PermanentAwsError"} <= final
    poll = DEFINITION["States"]["PollDrain"]
    (no_retry,) = [r for r in poll["Retry"] if r["MaxAttempts"] == 0]
    assert set(no_retry["ErrorEquals"]) == final
    assert TransientAwsError.__name__ not in no_retry["ErrorEquals"]
    caught = {
        name: catcher["Next"]
        for catcher in poll["Catch"]
        for name in catcher["ErrorEquals"]
        if name != "States.ALL"
    }
    assert set(caught) == final
    for name, target in caught.items():
        assert DEFINITION["States"][target]["Type"] == "Fail", name
    # States.ALL (the transient path) comes last, after every final error's own Catch.
    assert poll["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
    for name in final:  # the top Comment lists them
        assert name in DEFINITION["Comment"]


def test_the_poll_retries_in_place_what_the_guide_calls_transient() -> None:
    """Step Functions guide, "Handle Lambda service exceptions": these four are transient
    service errors to retry; a throttled invocation (TooManyRequests) is retried too. A function
    error (Lambda.Unknown, or the function's own error type) is not retried in place: it is a
    failed poll, tried again after the retry wait."""
    poll = DEFINITION["States"]["PollDrain"]
    [in_place] = [r for r in poll["Retry"] if r["MaxAttempts"] > 0]
    assert set(in_place["ErrorEquals"]) == {
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    }


# --- history events: the Lambda's counts follow the definition ---------------------------------
#
# drain_hook.history holds how many events each state writes (per state type, from the Step
# Functions pages it names) and, from those, each round of this loop at its worst. Here the
# rounds are derived again from the definition itself: a change to the loop that the counts don't
# follow fails these tests.


def _retries(state: dict[str, Any]) -> int:
    """The most retries a Task makes: every retrier keeps its own count (MaxAttempts, default 3)."""
    return sum(retrier.get("MaxAttempts", 3) for retrier in state.get("Retry", []))


def _events(name: str) -> int:
    """Events a state writes at worst, by its type (drain_hook.history's per-state counts)."""
    from drain_hook import history

    state = DEFINITION["States"][name]
    if state["Type"] == "Task":
        return history.TASK_EVENTS + _retries(state) * history.TASK_RETRY_EVENTS
    if state["Type"] == "Fail":
        return history.FAIL_STATE_EVENTS
    assert state["Type"] in ("Wait", "Choice", "Pass", "Succeed"), state["Type"]
    return history.STATE_EVENTS


def _next_states(name: str, *, catches: bool = True) -> list[str]:
    state = DEFINITION["States"][name]
    found = [state[key] for key in ("Next", "Default") if key in state]
    found += [choice["Next"] for choice in state.get("Choices", [])]
    if catches:
        found += [catcher["Next"] for catcher in state.get("Catch", [])]
    return found


def _paths(start: str, stop: Callable[[str], bool], *, catches: bool = True) -> list[list[str]]:
    """Every path from `start` that visits no state twice and ends where `stop` says (that
    state left out) or at a state with no next one (included)."""
    found: list[list[str]] = []

    def walk(path: list[str]) -> None:
        following = _next_states(path[-1], catches=catches)
        if not following:
            found.append(path)
        for name in following:
            if stop(name):
                found.append(path)
            elif name not in path:
                walk([*path, name])

    walk([start])
    return found


def _heartbeat_task() -> str:
    """The Task that records heartbeats between polls: on the way from the start to the poll."""
    (name,) = {
        state
        for path in _paths(DEFINITION["StartAt"], lambda n: n == "PollDrain", catches=False)
        for state in path
        if DEFINITION["States"][state].get("Resource") == HEARTBEAT
    }
    return name


def test_every_task_retries_at_most_what_the_history_counts_assume() -> None:
    from drain_hook import history

    tasks = {n: s for n, s in DEFINITION["States"].items() if s["Type"] == "Task"}
    assert _retries(tasks.pop("PollDrain")) == history.POLL_RETRIES_MAX
    assert {name: _retries(state) for name, state in tasks.items()} == {
        name: history.HEARTBEAT_RETRIES_MAX for name in tasks
    }
    assert all(state["Resource"] == HEARTBEAT for state in tasks.values())


def test_a_round_is_the_count_the_lambda_adds_per_poll() -> None:
    """From the start (or the end of the previous round) to the poll, then on to where the next
    round starts. A path through the heartbeats holds one; each further heartbeat runs the
    heartbeat loop once more."""
    from drain_hook import history

    start = DEFINITION["StartAt"]
    to_poll = _paths(start, lambda n: n == "PollDrain", catches=False)
    assert len(to_poll) == 2  # straight to the poll's wait, or through the heartbeats
    poll_to_start = _paths("PollDrain", lambda n: n == start, catches=False)
    back = [path for path in poll_to_start if DEFINITION["States"][path[-1]]["Type"] != "Succeed"]
    assert len(back) == 1  # PollDrain, IsDrainDone, then the next round
    round_end = sum(_events(name) for name in back[0])
    heartbeat = _heartbeat_task()
    for path in to_poll:
        beats = path.count(heartbeat)
        assert sum(_events(name) for name in path) + round_end == history.round_events(beats, 0)
    loops = _paths(heartbeat, lambda n: n == heartbeat, catches=False)
    (loop,) = [path for path in loops if "PollDrain" not in path]
    assert sum(_events(name) for name in loop) == history.HEARTBEAT_EVENTS_MAX


def test_a_failed_poll_tried_again_is_the_count_the_lambda_adds_per_failure() -> None:
    """From PollDrain's catch-all back to PollDrain, by the longest way (both heartbeats and
    the checks on the way), plus the failed poll itself."""
    from drain_hook import history

    poll = DEFINITION["States"]["PollDrain"]
    [catch_all] = [c["Next"] for c in poll["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
    paths = _paths(catch_all, lambda n: n == "PollDrain")
    again = [path for path in paths if DEFINITION["States"][path[-1]]["Type"] != "Fail"]
    assert again
    longest = max(sum(_events(name) for name in path) for path in again)
    assert _events("PollDrain") + longest == history.FAILED_POLL_EVENTS_MAX


def test_the_end_of_an_execution_after_a_poll_is_within_the_closing_count() -> None:
    """Whatever a poll's outcome, the execution writes at most CLOSING_EVENTS_MAX more events
    before it closes (its closing event included) unless it polls again."""
    from drain_hook import history

    ends = [
        path
        for first in _next_states("PollDrain")
        for path in _paths(first, lambda n: n in ("PollDrain", DEFINITION["StartAt"]))
        if DEFINITION["States"][path[-1]]["Type"] in ("Succeed", "Fail")
    ]
    assert {path[-1] for path in ends} == {
        n for n, s in DEFINITION["States"].items() if s["Type"] in ("Succeed", "Fail")
    }
    longest = max(sum(_events(name) for name in path) for path in ends)
    assert longest + history.EXECUTION_CLOSED_EVENTS == history.CLOSING_EVENTS_MAX


def test_polls_per_execution_can_never_promise_more_than_the_history_holds() -> None:
    from drain_hook import history
    from drain_hook.settings import Tunables

    [row] = [r for r in Tunables.describe() if r["env"] == "POLLS_PER_EXECUTION"]
    high = row["bounds"][1]
    worst = history.EXECUTION_STARTED_EVENTS + history.CLOSING_EVENTS_MAX
    assert worst + high * history.round_events(0, 0) <= history.HISTORY_BUDGET
    assert worst + (high + 1) * history.round_events(0, 0) > history.HISTORY_BUDGET
    assert history.HISTORY_BUDGET < history.HISTORY_EVENTS_MAX == 25_000


# --- walks --------------------------------------------------------------------------------------


def test_draining_loops_to_wait_then_succeeds_when_done() -> None:
    outputs = iter(
        [
            {**SAMPLE_DRAINING, "wait_seconds": 30},
            {**SAMPLE_DRAINING, "wait_seconds": 60},
            SAMPLE_COMPLETED,
        ]
    )
    heartbeats: list[dict[str, Any]] = []
    status, visited, output, _ = run(
        DEFINITION, SAMPLE_DRAINING, lambda_service(outputs, heartbeats)
    )
    assert status == "SUCCEEDED"
    assert visited == ["ChooseWait", "WaitBeforePoll", "PollDrain", "IsDrainDone"] * 3 + [
        "DrainFinished"
    ]
    assert output == SAMPLE_COMPLETED
    assert heartbeats == []  # the Lambda heartbeats while polls succeed


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


@pytest.mark.parametrize(
    ("error", "fail_state"),
    [
        ("InputRejected", "InputRejected"),
        ("PermanentAwsError", "PermanentError"),
        ("ClusterNotFound", "ClusterNotFound"),
    ],
)
def test_permanent_errors_fail_at_once_without_retry(error: str, fail_state: str) -> None:
    heartbeats: list[dict[str, Any]] = []
    status, visited, output, calls = run(
        DEFINITION, SAMPLE_DRAINING, lambda_service(iter([TaskFailed(error)]), heartbeats)
    )
    assert status == "FAILED"
    assert output["Error"] == fail_state
    assert visited == ["ChooseWait", "WaitBeforePoll", "PollDrain", fail_state]
    assert invokes(calls) == 1
    assert heartbeats == []


def test_throttling_is_retried_in_place_then_the_loop_carries_on() -> None:
    outputs = iter([TaskFailed("Lambda.TooManyRequestsException")] * 3 + [SAMPLE_COMPLETED])
    status, visited, output, calls = run(DEFINITION, SAMPLE_DRAINING, lambda_service(outputs, []))
    assert status == "SUCCEEDED"
    assert output == SAMPLE_COMPLETED
    assert "CountFailure" not in visited
    assert invokes(calls) == 4


def test_a_transient_failure_waits_heartbeats_and_polls_again() -> None:
    """A Lambda error past the in-place retries: heartbeat, wait $.retry.wait_seconds, poll."""
    outputs = iter([TaskFailed("RuntimeError", "boom"), SAMPLE_COMPLETED])
    heartbeats: list[dict[str, Any]] = []
    status, visited, _, _ = run(DEFINITION, SAMPLE_DRAINING, lambda_service(outputs, heartbeats))
    assert status == "SUCCEEDED"
    assert visited == [
        "ChooseWait",
        "WaitBeforePoll",
        "PollDrain",
        "FailingSinceKnown",
        "CountFirstFailure",
        "KeepTrying",
        "DeadlineCountKnown",
        "DeadlineCountIsNumber",
        "DeadlinePassed",
        "HeartbeatOrWait",
        "HeartbeatWhileFailing",
        "WaitAfterFailure",
        "PollDrain",
        "IsDrainDone",
        "DrainFinished",
    ]
    assert heartbeats == [
        {
            "AutoScalingGroupName": "prod-asg-a",
            "LifecycleHookName": "ecs-drain-hook",
            "InstanceId": "i-0123456789abcdef0",
        }
    ]


def test_the_retry_poll_carries_the_failure_record() -> None:
    payloads: list[dict[str, Any]] = []

    def service(resource: str, parameters: dict[str, Any]) -> Any:
        if resource == HEARTBEAT:
            return {}
        payloads.append(parameters["Payload"])
        if len(payloads) == 1:
            raise TaskFailed("Lambda.Unknown", "runtime exited")
        return {"Payload": SAMPLE_COMPLETED}

    run(DEFINITION, SAMPLE_DRAINING, service)
    retry = payloads[1]["retry"]
    assert retry["failed_seconds"] == 60  # this retry's wait
    assert retry["wait_seconds"] == 60 and retry["release_after_seconds"] == 900
    assert retry["last_error"]["Error"] == "Lambda.Unknown"
    assert retry["failed_at"].startswith("2026-01-15T10:00:15")  # after the first Wait


def test_a_run_of_failures_keeps_the_time_of_its_first() -> None:
    """failing_since is the first failure's time, kept through later failures (the Lambda
    times the run of failures from it); a poll that succeeds starts a new run."""
    payloads: list[dict[str, Any]] = []

    def service(resource: str, parameters: dict[str, Any]) -> Any:
        if resource == HEARTBEAT:
            return {}
        payloads.append(parameters["Payload"])
        if len(payloads) <= 3:
            raise TaskFailed("TransientAwsError", "throttled")
        return {"Payload": SAMPLE_COMPLETED}

    status, visited, _, _ = run(DEFINITION, SAMPLE_DRAINING, service)
    assert status == "SUCCEEDED"
    assert not SAMPLE_DRAINING["retry"].get("failing_since")
    since = [p["retry"]["failing_since"] for p in payloads[1:]]
    assert since[0].startswith("2026-01-15T10:00:15")  # the first failure
    assert since == [since[0]] * 3
    assert [p["retry"]["failed_at"] for p in payloads[1:]] != since  # the latest failure moves
    assert visited.count("CountFirstFailure") == 1 and visited.count("CountFailure") == 2


def test_the_lambda_saying_failures_outlasted_the_release_fails_the_loop_at_once() -> None:
    """The Lambda timed the run of failures past ERROR_RELEASE_SECONDS: no retry, no wait."""
    outputs = iter([TaskFailed("ErrorsOutlastedRelease", "polls have failed for 960 s")])
    status, visited, output, calls = run(DEFINITION, SAMPLE_DRAINING, lambda_service(outputs, []))
    assert status == "FAILED"
    assert output["Error"] == "ErrorsOutlastedRelease"
    assert visited[-2:] == ["PollDrain", "ErrorsOutlastedRelease"]
    assert invokes(calls) == 1


def test_failures_longer_than_the_release_time_fail_the_loop() -> None:
    """900 s of failures at 60 s a retry: the 16th failure passes the limit."""
    heartbeats: list[dict[str, Any]] = []
    outputs = iter([TaskFailed("RuntimeError")] * 100)
    status, visited, output, calls = run(
        DEFINITION, SAMPLE_DRAINING, lambda_service(outputs, heartbeats)
    )
    assert status == "FAILED"
    assert output["Error"] == "ErrorsOutlastedRelease"
    assert visited[-2:] == ["KeepTrying", "ErrorsOutlastedRelease"]
    assert len(heartbeats) == 15
    assert invokes(calls) == 16  # a function error is not retried in place: it waits


def test_the_deadline_passing_while_polls_fail_fails_the_loop() -> None:
    """Deadline 10:01:30, next poll due 10:00:15: 75 s after it, plus one retry wait (what the
    Lambda writes). Failures at 10:00:15 and 10:01:15 come before the deadline; the third, at
    10:02:15, after it: the loop fails then, not a retry earlier."""
    near_deadline = {
        **SAMPLE_DRAINING,
        "deadline_at": "2026-01-15T10:01:30Z",
        "deadline_after_failed_seconds": 75 + 60,
    }
    status, visited, output, _ = run(
        DEFINITION, near_deadline, lambda_service(iter([TaskFailed("RuntimeError")] * 10), [])
    )
    assert status == "FAILED"
    assert output["Error"] == "DeadlinePassedWhileFailing"
    assert visited.count("HeartbeatWhileFailing") == 2
    assert visited.count("CountFirstFailure") == 1
    assert visited.count("CountFailure") == 2


@pytest.mark.parametrize("count", ["absent", None])
def test_a_state_without_the_deadline_count_keeps_trying(count: str | None) -> None:
    """A state from before the count existed (a drain in flight across a redeploy), or one whose
    deadline isn't counted: failures are retried, never a runtime error that would end the
    loop at once."""
    state = {k: v for k, v in SAMPLE_DRAINING.items() if k != "deadline_after_failed_seconds"}
    if count is None:
        state["deadline_after_failed_seconds"] = None
    outputs = iter([TaskFailed("RuntimeError"), SAMPLE_COMPLETED])
    status, visited, _, _ = run(DEFINITION, state, lambda_service(outputs, []))
    assert status == "SUCCEEDED"
    assert "HeartbeatWhileFailing" in visited and "DeadlinePassed" not in visited


def test_a_manual_drain_without_a_lifecycle_action_records_no_heartbeat() -> None:
    heartbeats: list[dict[str, Any]] = []
    outputs = iter([TaskFailed("RuntimeError"), SAMPLE_COMPLETED])
    status, visited, _, _ = run(
        DEFINITION, SAMPLE_MANUAL_DRAINING, lambda_service(outputs, heartbeats)
    )
    assert status == "SUCCEEDED"
    assert "HeartbeatWhileFailing" not in visited
    assert "WaitAfterFailure" in visited
    assert heartbeats == []


# How the aws-sdk integration names Auto Scaling's errors (local_aws.stepfunctions.sdk_error_name):
# codes the API model does not declare (Throttling; ValidationError, which is also what an action
# that is over answers) share the generic name; its one modelled error, ResourceContentionFault,
# has a name of its own, spelt one of two ways.
AUTOSCALING_GENERIC = "AutoScaling.AutoScalingException"
RESOURCE_CONTENTION = (
    "AutoScaling.ResourceContentionException",
    "AutoScaling.ResourceContentionFaultException",
)


def _failing_heartbeats(error: str, cause: str = "") -> Service:
    """Heartbeats fail with `error`; the first poll fails (so the loop records one itself)."""

    def service(resource: str, parameters: dict[str, Any]) -> Any:
        if resource == HEARTBEAT:
            raise TaskFailed(error, cause)
        if service.polls == 0:  # type: ignore[attr-defined]
            service.polls += 1  # type: ignore[attr-defined]
            raise TaskFailed("RuntimeError")
        return {"Payload": SAMPLE_COMPLETED}

    service.polls = 0  # type: ignore[attr-defined]
    return service


@pytest.mark.parametrize(
    "cause",
    [
        "No active Lifecycle Action found with instance ID i-0123456789abcdef0 "
        "(Service: AutoScaling, Status Code: 400)",
        "Rate exceeded (Service: AutoScaling, Status Code: 400)",
    ],
)
def test_a_refused_heartbeat_while_failing_is_not_retried_and_never_ends_the_loop(
    cause: str,
) -> None:
    """An action that is over and a throttled call share one name: neither is retried in place
    (the first would hold a finished action longer); the loop goes on to its retry wait."""
    status, visited, _, calls = run(
        DEFINITION, SAMPLE_DRAINING, _failing_heartbeats(AUTOSCALING_GENERIC, cause)
    )
    assert status == "SUCCEEDED"
    assert sum(1 for r, _ in calls if r == HEARTBEAT) == 1
    assert visited[visited.index("HeartbeatWhileFailing") + 1] == "WaitAfterFailure"


@pytest.mark.parametrize("error", RESOURCE_CONTENTION)
def test_resource_contention_on_a_heartbeat_while_failing_is_retried(error: str) -> None:
    status, visited, _, calls = run(DEFINITION, SAMPLE_DRAINING, _failing_heartbeats(error))
    assert status == "SUCCEEDED"
    assert sum(1 for r, _ in calls if r == HEARTBEAT) == 4  # first try + 3 retries
    assert visited[visited.index("HeartbeatWhileFailing") + 1] == "WaitAfterFailure"


# --- heartbeats between polls (a long wait cut by the loop) --------------------------------


def _with_plan(count: int, every: int = 600, then: int = 300) -> dict[str, Any]:
    wait = count * every + then
    return {
        **SAMPLE_DRAINING,
        "wait_seconds": wait,
        "heartbeat_plan": {"every": every, "count": count, "then": then},
    }


def test_a_long_wait_is_cut_by_heartbeats_then_polls() -> None:
    heartbeats: list[dict[str, Any]] = []
    status, visited, _, calls = run(
        DEFINITION, _with_plan(2), lambda_service(iter([SAMPLE_COMPLETED]), heartbeats)
    )
    assert status == "SUCCEEDED"
    beat = ["WaitForHeartbeat", "HeartbeatBetweenPolls", "CountHeartbeat", "MoreHeartbeats"]
    assert visited == [
        "ChooseWait",
        *beat,
        *beat,
        "WaitRestBeforePoll",
        "PollDrain",
        "IsDrainDone",
        "DrainFinished",
    ]
    assert len(heartbeats) == 2 and invokes(calls) == 1


def test_the_poll_after_beats_gets_the_state_with_the_plan_counted_down() -> None:
    payloads: list[dict[str, Any]] = []

    def service(resource: str, parameters: dict[str, Any]) -> Any:
        if resource == HEARTBEAT:
            return {}
        payloads.append(parameters["Payload"])
        return {"Payload": SAMPLE_COMPLETED}

    run(DEFINITION, _with_plan(3, every=100, then=50), service)
    [payload] = payloads
    assert payload["heartbeat_plan"] == {"every": 100, "count": 0, "then": 50}
    assert {k: v for k, v in payload.items() if k != "heartbeat_plan"} == {
        k: v for k, v in _with_plan(3, every=100, then=50).items() if k != "heartbeat_plan"
    }


def test_a_failed_heartbeat_between_polls_polls_at_once() -> None:
    """The action is over (e.g. the ECS event completed it): poll now, the Lambda ends the loop."""

    def service(resource: str, parameters: dict[str, Any]) -> Any:
        if resource == HEARTBEAT:
            raise TaskFailed(AUTOSCALING_GENERIC, "No active Lifecycle Action")
        return {"Payload": {**SAMPLE_COMPLETED, "action": "lifecycle_ended"}}

    status, visited, _, calls = run(DEFINITION, _with_plan(5), service)
    assert status == "SUCCEEDED"
    assert sum(1 for r, _ in calls if r == HEARTBEAT) == 1  # not retried
    assert visited == [
        "ChooseWait",
        "WaitForHeartbeat",
        "HeartbeatBetweenPolls",
        "PollDrain",
        "IsDrainDone",
        "DrainFinished",
    ]


@pytest.mark.parametrize("error", RESOURCE_CONTENTION)
def test_resource_contention_between_polls_is_retried_then_the_plan_goes_on(error: str) -> None:
    attempts: list[str] = []

    def service(resource: str, parameters: dict[str, Any]) -> Any:
        if resource == HEARTBEAT:
            attempts.append(resource)
            if len(attempts) <= 2:
                raise TaskFailed(error, "Resource contention (Service: AutoScaling)")
            return {}
        return {"Payload": SAMPLE_COMPLETED}

    status, visited, _, _ = run(DEFINITION, _with_plan(2), service)
    assert status == "SUCCEEDED"
    assert len(attempts) == 4  # two failures retried, then both heartbeats of the plan
    assert visited.count("CountHeartbeat") == 2 and visited.count("PollDrain") == 1


def test_a_manual_drain_waits_without_heartbeats_whatever_the_plan() -> None:
    manual = {**_with_plan(2), "asg_name": None, "hook_name": None}
    heartbeats: list[dict[str, Any]] = []
    status, visited, _, _ = run(
        DEFINITION, manual, lambda_service(iter([SAMPLE_COMPLETED]), heartbeats)
    )
    assert status == "SUCCEEDED" and heartbeats == []
    assert visited[:2] == ["ChooseWait", "WaitBeforePoll"]
