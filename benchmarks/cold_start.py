"""Cold-start import cost of the drain Lambda, each run in a fresh interpreter.

    python -m benchmarks.cold_start [--runs 15] [--quick]

Variants, interleaved run by run so a noisy machine slows them alike:

- ``boto3``: a bare ``import boto3``, the floor any Python Lambda that calls AWS pays;
- ``handler``: ``import drain_hook.handler`` with tracing off (the module also reads and
  validates the settings and configures the clients, as a cold start does);
- ``handler+tracing``: the same with ``TRACING_ENABLED=true`` (Powertools Tracer and the X-Ray
  SDK are imported; ``POWERTOOLS_TRACE_DISABLED=true`` keeps it from talking to a daemon);
- ``+task event``: the handler and what its first task-stopped event loads (the fast path: a
  release usually begins in a new Lambda environment, so this is inside its latency);
- ``+lifecycle/poll``: the handler and what a lifecycle event or a poll loads (pydantic, the
  drain decision and flow).

Each child times only the import statement (``perf_counter`` around it, interpreter start-up
excluded) and reports how many modules it added to ``sys.modules`` and whether ``aws_xray_sdk``
was among them. The parent prints median and p90 per variant and the ratios to ``boto3``.
Absolute times depend on the machine; compare the rows of one run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, sys, time
before = set(sys.modules)
t0 = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t0
added = set(sys.modules) - before
print(json.dumps({{
    "seconds": elapsed,
    "modules": len(added),
    "xray": any(m == "aws_xray_sdk" or m.startswith("aws_xray_sdk.") for m in added),
}}))
"""

_LAMBDA_ENV = {
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:x",
    "AWS_REGION": "us-east-1",
    "PYTHONPATH": "lambda",
}


@dataclass(frozen=True)
class Variant:
    name: str
    module: str
    env: dict[str, str]


VARIANTS = (
    Variant("boto3", "boto3", {**_LAMBDA_ENV}),
    Variant("handler", "drain_hook.handler", {**_LAMBDA_ENV, "TRACING_ENABLED": "false"}),
    Variant(
        "handler+tracing",
        "drain_hook.handler",
        {**_LAMBDA_ENV, "TRACING_ENABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"},
    ),
    Variant(
        "+task event",
        "drain_hook.handler, drain_hook.logic.fast_path",
        {**_LAMBDA_ENV, "TRACING_ENABLED": "false"},
    ),
    Variant(
        "+lifecycle/poll",
        "drain_hook.handler, drain_hook.logic.drain_flow, drain_hook.models.schemas",
        {**_LAMBDA_ENV, "TRACING_ENABLED": "false"},
    ),
)
# The handler's import is held to this multiple of a bare `import boto3` (median of a run).
HANDLER_IMPORT_BUDGET = 1.4


@dataclass
class Sample:
    seconds: float
    modules: int
    xray: bool


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment without anything that would change the Lambda's settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_", "TRACING_", "PYTHON"))
        and key not in _lambda_setting_names()
    }
    env.update(extra)
    return env


def _lambda_setting_names() -> set[str]:
    return {
        "CLUSTER_NAME",
        "STATE_MACHINE_ARN",
        "POLL_INTERVAL_FIRST_SECONDS",
        "POLL_INTERVAL_MAX_SECONDS",
        "MAX_DRAIN_SECONDS",
        "STANDALONE_TASKS",
        "STANDALONE_GRACE_SECONDS",
        "DAEMON_TASKS_HOLD_INSTANCE",
        "AT_DEADLINE",
        "DEADLINE_STOP_GRACE_SECONDS",
        "POLLS_PER_EXECUTION",
        "RETRY_MODE",
        "RETRY_MAX_ATTEMPTS",
    }


def measure(variant: Variant, python: str = sys.executable) -> Sample:
    out = subprocess.run(
        [python, "-c", _CHILD.format(module=variant.module)],
        cwd=ROOT,
        env=_child_env(variant.env),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{variant.name}: import failed:\n{out.stderr.strip()}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Sample(data["seconds"], data["modules"], data["xray"])


def p90(values: Sequence[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def run(runs: int) -> dict[str, list[Sample]]:
    for variant in VARIANTS:  # warm-up: byte-compile and fill the page cache; not counted
        measure(variant)
    samples: dict[str, list[Sample]] = {v.name: [] for v in VARIANTS}
    for _ in range(runs):
        for variant in VARIANTS:
            samples[variant.name].append(measure(variant))
    return samples


def table(samples: dict[str, list[Sample]]) -> str:
    base = statistics.median(s.seconds for s in samples["boto3"])
    header = (
        f"{'variant':<16} {'runs':>4} {'median ms':>10} {'p90 ms':>8} {'x boto3':>8} "
        f"{'+ms vs boto3':>12} {'modules':>8} {'aws_xray_sdk':>12}"
    )
    lines = [header, "-" * len(header)]
    for name, rows in samples.items():
        times = [s.seconds for s in rows]
        median = statistics.median(times)
        modules = statistics.median(s.modules for s in rows)
        xray = "yes" if any(s.xray for s in rows) else "no"
        lines.append(
            f"{name:<16} {len(rows):>4} {median * 1000:>10.1f} {p90(times) * 1000:>8.1f} "
            f"{median / base:>8.2f} {(median - base) * 1000:>12.1f} {modules:>8.0f} {xray:>12}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per variant (default 15)")
    parser.add_argument("--quick", action="store_true", help="3 runs per variant")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be >= 1")
    print(
        f"cold start: import time in a fresh interpreter, {runs} runs per variant "
        f"(python {sys.version.split()[0]})",
        flush=True,
    )
    samples = run(runs)
    print(table(samples))
    handler = samples["handler"][0]
    tracing = samples["handler+tracing"][0]
    print(
        f"tracing off imports aws_xray_sdk: {'yes' if handler.xray else 'no'}; "
        f"tracing on adds {tracing.modules - handler.modules} modules"
    )
    base = statistics.median(s.seconds for s in samples["boto3"])
    ratio = statistics.median(s.seconds for s in samples["handler"]) / base
    print(
        f"the handler's import: {ratio:.2f}x boto3 (budget {HANDLER_IMPORT_BUDGET}x): "
        + ("within" if ratio <= HANDLER_IMPORT_BUDGET else "OVER")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
