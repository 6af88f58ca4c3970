"""What a cold start loads: the handler's import and a task-stopped event's path leave pydantic
(and the drain decision built on it) for the events that need it. Timings are measured by
`make bench` (benchmarks/cold_start.py), not asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pydantic", "aws_lambda_powertools.utilities.parser", "drain_hook.logic.decision")


def _loaded_after(*modules: str, run: str = "") -> set[str]:
    code = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + run
        + "print(json.dumps(sorted(sys.modules)))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": "lambda",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:x",
        "TRACING_ENABLED": "false",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def test_the_handler_and_the_task_event_path_load_no_pydantic() -> None:
    loaded = _loaded_after("drain_hook.handler", "drain_hook.logic.fast_path")
    assert not [m for m in loaded if m.startswith(HEAVY)]
    assert "boto3" in loaded and "aws_lambda_powertools.metrics" in loaded


def test_a_lifecycle_event_or_poll_loads_them_on_first_use() -> None:
    loaded = _loaded_after("drain_hook.handler", "drain_hook.logic.drain_flow")
    assert {"pydantic", "drain_hook.logic.decision"} <= loaded


def test_the_sweep_and_spot_warnings_load_no_pydantic_either() -> None:
    """Both come all day (a schedule every few minutes, every Spot notice of the account): they
    are parsed by hand, and their logic needs no drain state."""
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    spot = {
        "source": "aws.ec2",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "detail": {"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"},
    }
    parsed = (
        "from drain_hook.models.requests import parse_request\n"
        f"assert type(parse_request({scheduled!r})).__name__ == 'SweepRequest'\n"
        f"assert type(parse_request({spot!r})).__name__ == 'SpotWarningRequest'\n"
    )
    loaded = _loaded_after(
        "drain_hook.handler", "drain_hook.logic.sweep", "drain_hook.logic.spot", run=parsed
    )
    assert not [m for m in loaded if m.startswith(HEAVY)]
