"""The wait loop's executions: start one per lifecycle action, read how one ended."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from drain_hook.adapters.clients import client

MAX_NAME_LENGTH = 80
PREFIX_LENGTH_MAX = 72


@dataclass(frozen=True)
class Execution:
    arn: str
    name: str
    state_machine_arn: str
    status: str
    input: str | None
    error: str | None = None
    cause: str | None = None


def execution_name(*parts: str) -> str:
    """A valid, deterministic execution name, so a duplicate event maps to the same execution."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(parts))
    return name[:MAX_NAME_LENGTH]


def loop_name_prefix(
    instance_id: str, token: str | None, hook_name: str | None, asg_name: str | None
) -> str:
    """The first execution name of a lifecycle action's loop; later ones add -r1, -g1 and so on
    (PREFIX_LENGTH_MAX leaves them room within the 80 characters)."""
    action = token or (f"{hook_name}-{asg_name}" if asg_name else "manual")
    return execution_name(instance_id, action)[:PREFIX_LENGTH_MAX]


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:...:states:<region>:<account>:execution:<state machine name>:<execution name>."""
    prefix, machine = state_machine_arn.split(":stateMachine:", 1)
    return f"{prefix}:execution:{machine}:{name}"


def start(state_machine_arn: str, name: str, state: dict[str, Any]) -> bool:
    """Start the execution. False when the name is taken (running, or closed within 90 days)."""
    sfn = client("stepfunctions")
    try:
        sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(state))
    except sfn.exceptions.ExecutionAlreadyExists:
        return False
    return True


def describe(execution: str) -> Execution | None:
    sfn = client("stepfunctions")
    try:
        response = sfn.describe_execution(executionArn=execution)
    except sfn.exceptions.ExecutionDoesNotExist:
        return None
    return Execution(
        arn=response["executionArn"],
        name=response.get("name", execution.rsplit(":", 1)[-1]),
        state_machine_arn=response["stateMachineArn"],
        status=response["status"],
        input=response.get("input"),
        error=response.get("error"),
        cause=response.get("cause"),
    )


def recorded_release_services(state_machine_arn: str, loop: str) -> set[str]:
    """The services the loop `loop` was started with (its input's `release_services`, as Step
    Functions keeps it): empty when the execution or the list is not there."""
    execution = describe(execution_arn(state_machine_arn, loop))
    if execution is None or not execution.input:
        return set()
    try:
        recorded = json.loads(execution.input).get("release_services")
    except (ValueError, AttributeError):
        return set()
    if not isinstance(recorded, list):
        return set()
    return {name for name in recorded if isinstance(name, str) and name}


LIST_EXECUTIONS_PAGE = 1000  # ListExecutions' maxResults, at most 1000


def running_loops(state_machine_arn: str) -> set[str]:
    """The names of the drain loop's RUNNING executions (ListExecutions, paged by 1000)."""
    paginator = client("stepfunctions").get_paginator("list_executions")
    return {
        execution["name"]
        for page in paginator.paginate(
            stateMachineArn=state_machine_arn,
            statusFilter="RUNNING",
            PaginationConfig={"PageSize": LIST_EXECUTIONS_PAGE},
        )
        for execution in page.get("executions", [])
    }
