"""python -m soak run | replay: randomized drains on the local sandbox, with invariants checked.

    python -m soak run --scenarios 500              # the soak (make soak)
    python -m soak run --scenarios 12 --profile fast
    python -m soak replay --seed 17 --verbose       # one scenario: what happened, what failed

Exit status 0 only when no invariant was violated.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Sequence

from soak.invariants import INVARIANTS
from soak.report import Totals, failure_lines
from soak.runner import run_scenario
from soak.scenario import PROFILES, generate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run many seeded scenarios and print the counts")
    run.add_argument("--scenarios", type=int, default=500)
    run.add_argument("--first-seed", type=int, default=0)
    run.add_argument("--profile", choices=PROFILES, default="full")
    run.add_argument("--quiet", action="store_true", help="no line per scenario")
    run.add_argument("--json", metavar="PATH", help="also write the totals as JSON")
    replay = commands.add_parser("replay", help="run one scenario again, verbosely")
    replay.add_argument("--seed", type=int, required=True)
    replay.add_argument("--profile", choices=PROFILES, default="full")
    replay.add_argument("--verbose", "-v", action="store_true", help="the scenario and its log")
    args = parser.parse_args(argv)
    if args.command == "replay":
        return _replay(args.seed, args.profile, args.verbose)
    return _run(args.scenarios, args.first_seed, args.profile, args.quiet, args.json)


def _run(count: int, first: int, profile: str, quiet: bool, json_path: str | None) -> int:
    totals = Totals(profile=profile)
    wall0 = time.monotonic()
    print(
        f"soak: {count} scenarios, seeds {first}..{first + count - 1}, profile {profile}, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    for seed in range(first, first + count):
        outcome = run_scenario(generate(seed, profile))  # type: ignore[arg-type]
        totals.add(outcome)
        totals.wall_seconds = time.monotonic() - wall0
        if not quiet:
            data = outcome.data
            status = "ok" if outcome.ok else f"{len(outcome.violations)} violation(s)"
            print(
                f"  seed {seed:5}: {outcome.scenario.instances:2} instances, "
                f"{len(data.ours()):2} actions, {len(data.invocations):4} runs, "
                f"{data.virtual_seconds / 60:6.1f} min virtual, {data.wall_seconds:5.1f} s: "
                f"{status}",
                flush=True,
            )
        if outcome.violations and not quiet:
            for line in failure_lines(outcome):
                print("    " + line, flush=True)
    print("\n".join(totals.lines()), flush=True)
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(
                {
                    "profile": profile,
                    "scenarios": totals.scenarios,
                    "actions": totals.actions,
                    "completed": totals.completed,
                    "faults": dict(totals.faults),
                    "violations": {name: totals.violations[name] for name in INVARIANTS},
                    "tags": dict(totals.tags),
                    "excused": dict(totals.excused),
                    "failing_seeds": totals.failing_seeds,
                    "calls_max": totals.calls_max,
                    "wall_seconds": round(totals.wall_seconds, 1),
                },
                handle,
                indent=1,
            )
    return 0 if not totals.failing_seeds else 1


def _replay(seed: int, profile: str, verbose: bool) -> int:
    scenario = generate(seed, profile)  # type: ignore[arg-type]
    if verbose:
        print(scenario.describe())
    outcome = run_scenario(scenario, log=print if verbose else None)
    data = outcome.data
    if verbose:
        for action in data.ours():
            ended = (
                f"t+{(action.ended_at - data.start).total_seconds():.1f}s by {action.ended_by}"
                if action.ended_at
                else "still waiting"
            )
            print(
                f"action {action.instance_id} ({action.lifecycle_state}): waited from "
                f"t+{(action.started_at - data.start).total_seconds():.1f}s, ended {ended}, "
                f"{action.heartbeats} heartbeat(s)"
            )
        for line in outcome.excused:
            print(f"excused: {line}")
    totals = Totals(profile=profile)
    totals.add(outcome)
    totals.wall_seconds = data.wall_seconds
    print("\n".join(totals.lines()))
    for line in failure_lines(outcome) if outcome.violations else []:
        print(line)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
