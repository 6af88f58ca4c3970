"""Starting the wait loop: one Step Functions execution per lifecycle action."""

from __future__ import annotations

import json
import re
from typing import Any

from drain_hook.adapters.clients import client

MAX_NAME_LENGTH = 80


def execution_name(*parts: str) -> str:
    """A valid, deterministic execution name, so a duplicate event maps to the same execution."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(parts))
    return name[:MAX_NAME_LENGTH]


def start_loop(state_machine_arn: str, name: str, state: dict[str, Any]) -> str | None:
    """Start the execution; None if one with this name exists already (a duplicate event)."""
    sfn = client("stepfunctions")
    try:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(state)
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        return None
    return response["executionArn"]
