"""What one drain costs in AWS calls as the cluster grows, on the local sandbox.

    python -m benchmarks.scale_in [--sizes 10,50,150] [--scale-in 1,5] [--seed 7] [--quick]

For each cluster size N and scale-in K: a Sandbox cluster of N container instances runs two
services spread over them (web: 2 tasks per instance, min 100% / max 200%; worker: 1 task per
instance, min 50% / max 100%); the group is scaled in by K at once and the real drain Lambda and
state machine drain the K instances on virtual time. Printed per row, from the Lambda's own
boto3 session (the sandbox counts every call and every HTTP attempt):

- calls/inst: the Lambda's AWS calls divided by the K drained instances, and the same split by
  family: ECS list (ListContainerInstances, ListTasks), ECS describe (Describe*), ECS update
  (UpdateContainerInstancesState, StopTask), Auto Scaling, Step Functions;
- calls/poll: calls per Lambda invocation (the lifecycle event and every poll);
- att/inst: HTTP attempts per instance (retries included);
- listed/lookup: container instance ARNs returned per ListContainerInstances call (the
  ``ec2InstanceId ==`` filter, honoured by the sandbox as by ECS: 1 however big the cluster);
- polls, executions, virtual drain time (scale-in to the last CompleteLifecycleAction), wall
  seconds of the drain (setup s: of building the cluster, CDK synth included on the first row),
  whether every lifecycle action was completed by the Lambda, lost tasks.

The claim to read off the table: calls per instance do not grow with N (no cluster scan).
Then a throttling run: the same drain with seeded ThrottlingException on ecs:DescribeTasks and
ecs:ListContainerInstances; botocore's retries absorb them, so calls stay as without faults
while attempts rise, and every lifecycle action still completes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from local_aws.sandbox import Sandbox

CLUSTER = "bench"
FAMILIES = ("ecs list", "ecs describe", "ecs update", "autoscaling", "stepfunctions")
THROTTLED = ("ecs:DescribeTasks", "ecs:ListContainerInstances")


def family(operation: str) -> str:
    service, name = operation.split(":", 1)
    if service == "ecs":
        if name.startswith("List"):
            return "ecs list"
        if name.startswith("Describe"):
            return "ecs describe"
        return "ecs update"
    return service


@dataclass
class Row:
    n: int
    k: int
    calls: Counter[str]
    attempts: Counter[str]
    injected: int
    polls: int
    executions: int
    drain_seconds: float
    wall_seconds: float
    setup_seconds: float
    completed: bool
    lost: int
    listed: list[int] = field(default_factory=list)
    label: str = ""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_attempts(self) -> int:
        return sum(self.attempts.values())

    def by_family(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for op, count in self.calls.items():
            out[family(op)] += count
        return out


def scenario(n: int, k: int, *, seed: int = 7, throttle: float = 0.0, label: str = "") -> Row:
    """Build a cluster of ``n`` instances, scale in by ``k``, drain; measure the Lambda."""
    if n < 2 or not 1 <= k < n:
        raise ValueError("need N >= 2 and 1 <= K < N")
    wall0 = time.monotonic()
    with Sandbox(seed=seed) as sb:
        asg = sb.add_cluster(CLUSTER, instances=n, heartbeat_timeout=300)
        for name in ("web", "worker"):
            sb.register_task_definition(name)
        sb.create_service(CLUSTER, "web", "web", 2 * n, maximum_percent=200)
        sb.create_service(
            CLUSTER, "worker", "worker", n, minimum_healthy_percent=50, maximum_percent=100
        )
        sb.settle()
        sb.deploy()
        listed = _count_listed(sb)
        for operation in THROTTLED if throttle else ():
            sb.add_fault(operation, "throttle", probability=throttle)
        start = sb.clock.now()
        setup = time.monotonic() - wall0
        sb.scale_in(asg, n - k)
        report = sb.run()
        ends = [a.ended_at for a in report.lifecycle_actions if a.ended_at is not None]
        return Row(
            n=n,
            k=k,
            calls=Counter(report.calls),
            attempts=Counter(report.attempts),
            injected=sum(sb.instrument.injected.values()),
            polls=report.polls,
            executions=report.executions,
            drain_seconds=(max(ends) - start).total_seconds() if ends else 0.0,
            wall_seconds=report.wall_seconds,
            setup_seconds=setup,
            completed=report.all_completed and len(report.lifecycle_actions) == k,
            lost=len(report.lost_tasks),
            listed=listed,
            label=label,
        )


def _count_listed(sb: Sandbox) -> list[int]:
    """Record how many ARNs each of the Lambda's ListContainerInstances calls returned."""
    listed: list[int] = []

    def after_list(parsed: dict[str, Any], **_: Any) -> None:
        listed.append(len(parsed.get("containerInstanceArns", [])))

    sb.lambda_session.events.register("after-call.ecs.ListContainerInstances", after_list)
    return listed


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s"


HEADER = (
    f"{'N':>4} {'K':>2} {'calls/inst':>10} {'list':>5} {'descr':>5} {'upd':>4} {'asg':>4} "
    f"{'sfn':>4} {'calls/poll':>10} {'att/inst':>8} {'listed/lookup':>13} {'polls':>5} "
    f"{'execs':>5} {'drain':>9} {'wall s':>6} {'setup s':>7} {'completed':>9} {'lost':>4}"
)


def format_row(row: Row) -> str:
    fam = row.by_family()
    per = {name: fam[name] / row.k for name in FAMILIES}
    listed = (
        f"{sum(row.listed) / len(row.listed):.1f} (max {max(row.listed)})" if row.listed else "-"
    )
    return (
        f"{row.n:>4} {row.k:>2} {row.total_calls / row.k:>10.1f} {per['ecs list']:>5.1f} "
        f"{per['ecs describe']:>5.1f} {per['ecs update']:>4.1f} {per['autoscaling']:>4.1f} "
        f"{per['stepfunctions']:>4.1f} {row.total_calls / max(row.polls, 1):>10.1f} "
        f"{row.total_attempts / row.k:>8.1f} {listed:>13} {row.polls:>5} {row.executions:>5} "
        f"{_hms(row.drain_seconds):>9} {row.wall_seconds:>6.1f} {row.setup_seconds:>7.1f} "
        f"{('yes' if row.completed else 'NO'):>9} {row.lost:>4}"
    )


def _ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text}") from exc
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale_in", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", type=_ints, help="cluster sizes N (default 10,50,150)")
    parser.add_argument("--scale-in", type=_ints, help="instances removed K (default 1,5)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--throttle", type=float, default=0.3, help="throttling probability (0 skips the run)"
    )
    parser.add_argument(
        "--throttle-size", type=int, help="N of the throttling run (default 50); K: the largest"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small defaults: N=4,8 K=1,2, throttling on N=8"
    )
    args = parser.parse_args(argv)
    defaults = ([4, 8], [1, 2], 8) if args.quick else ([10, 50, 150], [1, 5], 50)
    args.sizes = args.sizes or defaults[0]
    args.scale_in = args.scale_in or defaults[1]
    args.throttle_size = args.throttle_size or defaults[2]
    if args.throttle_size < 2 or min(args.scale_in) >= args.throttle_size:
        parser.error("--throttle-size must be larger than the smallest --scale-in")
    if not 0.0 <= args.throttle < 1.0:
        parser.error("--throttle must be in [0, 1)")

    wall0 = time.monotonic()
    print(
        f"scale-in: AWS calls by the drain Lambda per drained instance, sandbox seed {args.seed}",
        flush=True,
    )
    print(
        "families per instance: list / descr(ibe) / upd(ate) = ECS; asg = Auto Scaling; "
        "sfn = Step Functions"
    )
    print(HEADER)
    print("-" * len(HEADER), flush=True)
    rows = []
    for n in args.sizes:
        for k in args.scale_in:
            if not 1 <= k < n:
                continue
            row = scenario(n, k, seed=args.seed)
            rows.append(row)
            print(format_row(row), flush=True)
    ok = all(r.completed and not r.lost for r in rows)

    if args.throttle > 0:
        n, k = args.throttle_size, max(kk for kk in args.scale_in if kk < args.throttle_size)
        print()
        print(
            f"throttling: ThrottlingException with probability {args.throttle} on "
            f"{' and '.join(THROTTLED)} (seeded), N={n} K={k}"
        )
        base = next((r for r in rows if (r.n, r.k) == (n, k)), None) or scenario(
            n, k, seed=args.seed
        )
        hot = scenario(n, k, seed=args.seed, throttle=args.throttle)
        print(
            f"{'run':<10} {'calls':>6} {'attempts':>8} {'injected':>8} {'att/call':>8}  "
            f"{'per throttled op: calls -> attempts':<40} {'completed':>9} {'lost':>4}"
        )
        for name, row in (("no faults", base), ("throttled", hot)):
            per_op = ", ".join(
                f"{op.split(':')[1]} {row.calls[op]} -> {row.attempts[op]}" for op in THROTTLED
            )
            print(
                f"{name:<10} {row.total_calls:>6} {row.total_attempts:>8} {row.injected:>8} "
                f"{row.total_attempts / max(row.total_calls, 1):>8.2f}  {per_op:<40} "
                f"{('yes' if row.completed else 'NO'):>9} {row.lost:>4}"
            )
        ok = ok and hot.completed and not hot.lost

    print()
    print(
        f"all lifecycle actions completed, no task lost: {'yes' if ok else 'NO'}; "
        f"total wall {time.monotonic() - wall0:.1f}s"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
