"""How fast the `ecs-drain-hook` command starts: `--help`, and `status` on an empty sandbox.

    python -m benchmarks.cli_start [--runs 10] [--quick]

Rows, each run in a fresh interpreter, interleaved run by run:

- ``python -c pass``: the interpreter alone, the floor of any command;
- ``--help``: the installed console script (`.venv/bin/ecs-drain-hook --help`), the whole
  process timed from outside (interpreter start included): argparse only, no boto3;
- ``import boto3``: a bare `import boto3` in the process, for scale (the AWS CLI pays it too);
- ``status (empty)``: `status` against an empty sandbox deployment (a cluster, the stack's
  outputs, no drain), timed inside a child whose sandbox is already up: resolving the stack
  (DescribeStacks), the function's settings (GetFunctionConfiguration), the cluster's DRAINING
  instances (ListContainerInstances) and the answer. The sandbox has imported boto3 already,
  so add the `import boto3` row for a real first run.

Medians and p90 per row; absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = Path(sys.executable).parent / "ecs-drain-hook"

_STATUS_CHILD = """
import io, json, sys, time
import boto3
from local_aws.sandbox import Sandbox
with Sandbox(seed=1) as sb:
    sb.add_cluster("c1", instances=2)
    sb.deploy()
    sb.publish_stack()
    session = boto3.session.Session(region_name=sb.region)
    out = io.StringIO()
    t0 = time.perf_counter()
    from ecs_drain_hook.cli.main import main
    code = main(["status"], session=session, now=sb.clock.now(), stdout=out)
    elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "code": code, "out": out.getvalue()}))
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}


def _wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, check=True, timeout=120)
    return time.perf_counter() - t0


def _boto3_import() -> float:
    code = "import time; t0 = time.perf_counter(); import boto3; print(time.perf_counter() - t0)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    return float(out.stdout.strip())


def _status() -> tuple[float, str]:
    env = {**_env(), "PYTHONPATH": f"{ROOT}:{ROOT / 'lambda'}"}
    out = subprocess.run(
        [sys.executable, "-c", _STATUS_CHILD], cwd=ROOT, env=env, capture_output=True,
        text=True, check=True, timeout=300,
    )  # fmt: skip
    data = json.loads(out.stdout.strip().splitlines()[-1])
    if data["code"] != 0:
        raise RuntimeError(f"status failed: {data}")
    return data["seconds"], data["out"]


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 runs")
    args = parser.parse_args(argv)
    runs = 2 if args.quick else args.runs
    if not COMMAND.exists():
        print(f"{COMMAND} is not installed: run `make venv`", file=sys.stderr)
        return 1
    print(
        f"ecs-drain-hook command start, {runs} runs per row (python {sys.version.split()[0]})",
        flush=True,
    )
    rows: dict[str, list[float]] = {
        "python -c pass": [],
        "--help": [],
        "import boto3": [],
        "status (empty)": [],
    }
    answer = ""
    _wall([str(COMMAND), "--help"])  # warm-up: byte-compile, page cache
    for _ in range(runs):
        rows["python -c pass"].append(_wall([sys.executable, "-c", "pass"]))
        rows["--help"].append(_wall([str(COMMAND), "--help"]))
        rows["import boto3"].append(_boto3_import())
        seconds, answer = _status()
        rows["status (empty)"].append(seconds)
    header = f"{'row':<16} {'runs':>4} {'median ms':>10} {'p90 ms':>8}  measured"
    print(header)
    print("-" * len(header))
    how = {
        "python -c pass": "process, from outside",
        "--help": "process, from outside",
        "import boto3": "the import, inside",
        "status (empty)": "import + run, inside (boto3 loaded)",
    }
    for name, values in rows.items():
        print(
            f"{name:<16} {len(values):>4} {statistics.median(values) * 1000:>10.1f} "
            f"{p90(values) * 1000:>8.1f}  {how[name]}"
        )
    print(f"status answered: {answer.strip().splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
