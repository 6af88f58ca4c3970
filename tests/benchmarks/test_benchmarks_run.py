"""Smoke test: each benchmark runs as ``python -m benchmarks.<name>`` and prints its table.

Smallest modes only, and no assertion on any time: the figures are for reading, not gating.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra import QUIET_NODE

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    env = {**QUIET_NODE, **os.environ}
    out = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_cold_start_prints_its_table() -> None:
    text = _run("benchmarks.cold_start", "--runs", "1")
    assert "median ms" in text and "p90 ms" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert {"boto3", "handler", "handler+tracing"} <= set(rows)
    # Last column: was aws_xray_sdk imported. Only with tracing on.
    assert rows["boto3"][-1] == "no"
    assert rows["handler"][-1] == "no"
    assert rows["handler+tracing"][-1] == "yes"
    # The task-stopped path adds nothing heavy to the cold start (its figure is for reading).
    assert rows["+task"][-1] == "no" and "the handler's import:" in text


def test_scale_in_prints_its_table() -> None:
    text = _run("benchmarks.scale_in", "--sizes", "3", "--scale-in", "1", "--throttle-size", "3")
    lines = text.splitlines()
    assert any(line.split()[:3] == ["N", "K", "calls/inst"] for line in lines if line.strip())
    (row,) = [line.split() for line in lines if line.split()[:2] == ["3", "1"]]
    assert row[-2:] == ["yes", "0"]  # lifecycle action completed, no task lost
    assert "throttling:" in text
    assert any(line.startswith("throttled") for line in lines)
    assert "no task lost: yes" in text


def test_release_prints_its_table() -> None:
    text = _run("benchmarks.release", "--quick", "--seeds", "1", "--schedules", "120:300")
    rows = [line for line in text.splitlines() if line.startswith(("ours", "anchor"))]
    assert {r.split(",")[0].split()[0] for r in rows} == {"ours", "anchor"}
    assert "no task lost by ours: yes" in text


def test_burst_prints_its_report() -> None:
    text = _run("benchmarks.burst", "--cluster", "6", "--burst", "2", "--tasks", "18")
    assert "burst of 2 on 6 instances" in text
    assert "throttled attempts:" in text
    assert "release latency (last task STOPPED -> CompleteLifecycleAction)" in text
    lines = [line.split() for line in text.splitlines() if line.strip()]
    assert any(row[:3] == ["cluster", "burst", "completed"] for row in lines)
    (row,) = [row for row in lines if row[:2] == ["6", "2"]]
    assert row[2:4] == ["2/2", "0"]  # every action completed, no task lost
    assert "every action completed, no task lost: yes" in text


def test_refresh_prints_the_below_desired_task_minutes_with_and_without_the_budget() -> None:
    text = _run("benchmarks.refresh", "--quick")
    assert "instance refresh of 6 instances" in text
    rows = {
        line.split(" / ")[0]: line.split()
        for line in text.splitlines()
        if line.startswith(("drained /", "services_steady /"))
    }
    assert set(rows) == {"drained", "services_steady"}
    for row in rows.values():
        assert row[-2:] == ["yes", "0"]  # every old instance released by the drain, none lost
    assert "tasks below desired, the most in each minute" in text


def test_cli_start_prints_its_table() -> None:
    text = _run("benchmarks.cli_start", "--runs", "1")
    rows = {line[:16].strip(): line.split() for line in text.splitlines() if "ms" not in line}
    assert {"python -c pass", "--help", "import boto3", "status (empty)"} <= set(rows)
    assert "status answered: no drain under way in c1" in text
