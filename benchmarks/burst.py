"""A burst of scale-ins under AWS's API rate limits, on the local sandbox.

    python -m benchmarks.burst                   # small: 100 instances (500 tasks), bursts of 10
                                                 # and 50
    python -m benchmarks.burst --full            # 1,000 instances running 10,000 tasks: bursts
                                                 # of 100 and 200; 2,000 instances running the
                                                 # same 10,000 tasks: a burst of 1,000
    python -m benchmarks.burst --cluster 1000 --burst 200 [--tasks 10000] [--seed 7]
        [--asg-bucket 40/10] [--ecs-read 100/20] [--no-limits] [--intake-concurrency 20]

Each run builds a fresh Sandbox with AWS's documented rate limits on (`local_aws.rate_limits`:
ECS's token buckets per action category, Step Functions' StartExecution / DescribeExecution /
state-transition quotas, an assumed Auto Scaling bucket, Lambda concurrency): an ECS cluster of
``--cluster`` container instances in one Auto Scaling group with the termination hook, running
``--tasks`` tasks (default 10 per instance): one daemon task per instance, the rest in replica
services of 200 tasks each (min 100% / max 200%). The drain Lambda, its state machine and its
EventBridge rules are what the CDK app synthesizes (`local_aws.template`), reserved concurrency
and the intake queue (lifecycle events through SQS, at most its mapping's maximum concurrency of
first rounds at once) included. The group is scaled in by ``--burst`` instances at once, and
the run goes on until every lifecycle action has ended.

A burst needs somewhere for its tasks to go: with min 100%, ECS stops a drained task only once
its replacement runs elsewhere. A run whose replica tasks would not fit on the instances left
after the burst is refused before the scale-in (it would only show the deadline policy): the
1,000-instance burst runs on 2,000 instances with the full run's 10,000 tasks, which fit on the
1,000 left.

Printed per run: how every lifecycle action ended; lost tasks, failed executions, Lambda events
given up; how long lifecycle events waited in the intake queue before their first round (p50 /
p95 / max), how many were taken again after a failed round or moved to the dead-letter queue;
Lambda invocations, throttled runs, peak concurrency; the Lambda's calls and attempts
per instance; throttled attempts by operation (every caller in the account: the Lambda and the
state machine); delayed state transitions; release latency p50 / p95 / max (virtual seconds from
the last task on the instance reaching STOPPED to CompleteLifecycleAction) and the longest any
instance waited past its last task (whatever ended its action); wall seconds of the set-up and
of the drain. Exit status 1 unless every action of every run was completed by
CompleteLifecycleAction with no task lost.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from local_aws import template
from local_aws.ecs_sim import SimEvent
from local_aws.rate_limits import AUTOSCALING_ASSUMED, BucketSpec, RateLimits
from local_aws.sandbox import FUNCTION_NAME, Sandbox

CLUSTER = "burst"
TASKS_PER_SERVICE = 200
# ASSUMED: how long one HTTP attempt to an AWS API takes (AWS publishes no figure); it is what
# makes a Lambda run last, so what concurrency and the buckets act on.
CALL_LATENCY_SECONDS = 0.05
TASKS_PER_INSTANCE = 10  # the full run's density: 10,000 tasks on 1,000 instances
# (cluster, burst, tasks) per run.
SMALL = [(100, 10, 500), (100, 50, 500)]
FULL = [(1000, 100, 10000), (1000, 200, 10000), (2000, 1000, 10000)]
APP_CPU, APP_MEMORY = 256, 512  # `Sandbox.register_task_definition` defaults
DAEMON_CPU, DAEMON_MEMORY = 64, 128


class BurstDoesNotFit(ValueError):
    """The replica tasks would not fit on the instances left after the burst."""


@dataclass
class BurstRun:
    cluster: int
    burst: int
    tasks: int
    services: int
    seed: int
    reserved_concurrency: int | None
    reserved_source: str
    heartbeat_timeout: int
    poll_first: str
    poll_max: str
    fast_path: bool
    ended: Counter[str]
    lost: int
    failed_executions: int
    async_failures: int
    dead_letters: int
    intake_concurrency: int | None
    intake_waits: list[float]  # seconds each lifecycle event waited in the intake queue
    intake_received_again: int  # lifecycle events whose first round ran more than once
    intake_dead_letters: int
    invocations: int
    function_errors: Counter[str]
    timeouts: int
    rejected_runs: Counter[str]
    peak_concurrency: int
    environments: int
    calls: Counter[str]
    attempts: Counter[str]
    states_calls: int
    throttled: Counter[str]
    delayed_transitions: int
    release_latency: list[float]
    waited_past_last_task: list[float]
    drain_seconds: float
    setup_seconds: float
    wall_seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return self.ended.get("complete", 0)

    @property
    def ok(self) -> bool:
        return self.completed == self.burst and self.lost == 0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def limits_for(args: argparse.Namespace) -> RateLimits | None:
    if args.no_limits:
        return None
    limits = RateLimits(autoscaling=args.asg_bucket, call_latency_seconds=args.call_latency)
    if args.ecs_read is not None:
        limits = limits.with_ecs(
            "Cluster resource read actions", args.ecs_read.capacity, args.ecs_read.refill
        )
    return limits


def run_burst(
    cluster: int,
    burst: int,
    *,
    tasks: int | None = None,
    seed: int = 7,
    limits: RateLimits | None = None,
    reserved_concurrency: int | None = None,
    lambda_env: dict[str, str] | None = None,
    function_timeout: int | None = None,
    intake_concurrency: int | None = None,
) -> BurstRun:
    """Build the cluster, scale in by ``burst`` at once, drain; measure.

    Raises BurstDoesNotFit (before any scale-in) when the replica tasks would not fit on the
    instances left after the burst."""
    notes: list[str] = []
    if burst >= cluster:
        raise BurstDoesNotFit(f"a burst of {burst} leaves none of {cluster} instances")
    total = tasks if tasks is not None else TASKS_PER_INSTANCE * cluster
    replicas = total - cluster  # one daemon task per instance
    if replicas < 1:
        raise BurstDoesNotFit(f"{total} tasks on {cluster} instances: need more than one each")
    services = max(1, round(replicas / TASKS_PER_SERVICE))
    heartbeat = hook_heartbeat_timeout()
    wall0 = time.monotonic()
    context = {"intake_concurrency": str(intake_concurrency)} if intake_concurrency else None
    if intake_concurrency:
        notes.append(f"intake_concurrency {intake_concurrency} (--intake-concurrency)")
    with Sandbox(seed=seed, rate_limits=limits, lambda_env=lambda_env, context=context) as sb:
        asg = sb.add_cluster(CLUSTER, instances=cluster, heartbeat_timeout=heartbeat)
        sb.register_task_definition("app", cpu=APP_CPU, memory=APP_MEMORY)
        sb.register_task_definition("agent", cpu=DAEMON_CPU, memory=DAEMON_MEMORY)
        per_service = [replicas // services] * services
        per_service[0] += replicas - sum(per_service)
        for i, desired in enumerate(per_service):
            sb.create_service(CLUSTER, f"svc{i:03d}", "app", desired, maximum_percent=200)
        sb.create_service(CLUSTER, "agent", "agent", daemon=True)
        sb.settle()
        placed = sum(len(t) for t in sb.sim.backend.tasks.values())
        if placed != total:
            raise BurstDoesNotFit(f"only {placed} of {total} tasks fit on {cluster} instances")
        room = _replica_room(sb)
        if (cluster - burst) * room < replicas:
            raise BurstDoesNotFit(
                f"{replicas} replica tasks do not fit on the {cluster - burst} instances left "
                f"after the burst ({room} each): fewer --tasks or a larger --cluster"
            )
        sb.deploy()
        definition = sb.definition
        reserved, source = definition.reserved_concurrency, "the CDK app"
        if reserved_concurrency is not None:
            reserved, source = reserved_concurrency, "--reserved-concurrency"
            sb.client("lambda").put_function_concurrency(
                FunctionName=FUNCTION_NAME, ReservedConcurrentExecutions=reserved
            )
        if function_timeout is not None:
            notes.append(f"function Timeout {function_timeout} s (--function-timeout)")
            sb.client("lambda").update_function_configuration(
                FunctionName=FUNCTION_NAME, Timeout=function_timeout
            )
        for key, value in sorted((lambda_env or {}).items()):
            notes.append(f"Lambda environment {key}={value} (--lambda-env)")
        env = definition.lambda_environment
        fast_path = any("ECS Task State Change" in str(rule.pattern) for rule in definition.rules)
        stopped: list[tuple[datetime, str]] = []

        def on_sim(event: SimEvent) -> None:
            if event.kind == "task_stopped":
                stopped.append((event.at, event.details["task"]))

        sb.sim.listeners.append(on_sim)
        setup = time.monotonic() - wall0
        start = sb.clock.now()
        sb.scale_in(asg, cluster - burst)
        quiet = io.StringIO()  # the handler's EMF metric lines: not the benchmark's output
        with contextlib.redirect_stdout(quiet):
            report = sb.run()
        wall = time.monotonic() - wall0 - setup

        last_stop: dict[str, datetime] = {}
        tasks_by_arn = {arn: t for ts in sb.sim.backend.tasks.values() for arn, t in ts.items()}
        instances = {
            ci.container_instance_arn: ci.ec2_instance_id
            for cis in sb.sim.backend.container_instances.values()
            for ci in cis.values()
        }
        for at, arn in stopped:
            task = tasks_by_arn.get(arn)
            if task is None or getattr(task, "stop_code", None) == "TerminationNotice":
                continue
            ec2 = instances.get(task.container_instance_arn)
            if ec2 is not None and (ec2 not in last_stop or at > last_stop[ec2]):
                last_stop[ec2] = at
        actions = [a for a in report.lifecycle_actions if a.asg_name == asg]
        latency, waited = [], []
        for action in actions:
            stop = last_stop.get(action.instance_id)
            if stop is None or action.ended_at is None:
                continue
            past = max(0.0, (action.ended_at - stop).total_seconds())
            waited.append(past)
            if action.ended_by == "complete":
                latency.append(past)
        ends = [a.ended_at for a in actions if a.ended_at is not None]
        invocations = sb.runtime.invocations
        intake = sb.intake
        received = Counter(m for r in intake.receives for m in r.message_ids) if intake else {}
        return BurstRun(
            cluster=cluster,
            burst=burst,
            tasks=placed,
            services=services + 1,
            seed=seed,
            reserved_concurrency=reserved,
            reserved_source=source,
            heartbeat_timeout=heartbeat,
            poll_first=str(env.get("POLL_INTERVAL_FIRST_SECONDS", "default")),
            poll_max=str(env.get("POLL_INTERVAL_MAX_SECONDS", "default")),
            fast_path=fast_path,
            ended=Counter(a.ended_by or "still waiting" for a in actions),
            lost=len(report.lost_tasks),
            failed_executions=len(report.failed_executions),
            async_failures=len(sb.runtime.async_failures),
            dead_letters=len(sb.bus.dead_letters),
            intake_concurrency=intake.max_concurrency if intake else None,
            intake_waits=list(intake.first_wait.values()) if intake else [],
            intake_received_again=sum(1 for n in received.values() if n > 1),
            intake_dead_letters=len(intake.dead_lettered) if intake else 0,
            invocations=len(invocations),
            function_errors=Counter(
                (i.error or "").split(":", 1)[0] for i in invocations if i.error
            ),
            timeouts=sum(1 for i in invocations if (i.error or "").startswith("Sandbox.Timedout")),
            rejected_runs=Counter(r.outcome for r in sb.runtime.rejections),
            peak_concurrency=max(sb.runtime.peak_concurrency.values(), default=0),
            environments=sum(sb.runtime.environments.values()),
            calls=Counter(report.calls),
            attempts=Counter(report.attempts),
            states_calls=sum(sb.instrument.states_calls.values()),
            throttled=Counter(report.throttled),
            delayed_transitions=sb.limiter.delayed_transitions,
            release_latency=latency,
            waited_past_last_task=waited,
            drain_seconds=(max(ends) - start).total_seconds() if ends else 0.0,
            setup_seconds=setup,
            wall_seconds=wall,
            notes=notes,
        )


def _replica_room(sb: Sandbox) -> int:
    """Replica tasks one container instance holds beside its daemon task."""
    cis = next(iter(sb.sim.backend.container_instances.values()))
    instance = next(iter(cis.values()))
    resources = {r["name"]: r["integerValue"] for r in instance.registered_resources}
    return min(
        (resources["CPU"] - DAEMON_CPU) // APP_CPU,
        (resources["MEMORY"] - DAEMON_MEMORY) // APP_MEMORY,
    )


def hook_heartbeat_timeout() -> int:
    """The HeartbeatTimeout the CDK app gives the termination hook (600 s if none)."""
    for resource in template.synthesized_template()["Resources"].values():
        if resource.get("Type") == "AWS::AutoScaling::LifecycleHook":
            return int(resource["Properties"].get("HeartbeatTimeout", 3600))
    return 600


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s"


def describe(run: BurstRun, limits: RateLimits | None) -> str:
    k = run.burst
    calls, attempts = sum(run.calls.values()), sum(run.attempts.values())
    ended = ", ".join(f"{n} {how}" for how, n in sorted(run.ended.items())) or "none"
    throttled = ", ".join(f"{op} {n}" for op, n in run.throttled.most_common()) or "none"
    rejected = ", ".join(f"{n} {why}" for why, n in sorted(run.rejected_runs.items())) or "none"
    reserved = (
        f"{run.reserved_concurrency} ({run.reserved_source})"
        if run.reserved_concurrency is not None
        else "none in the CDK app (the account's unreserved concurrency, 1,000)"
    )
    errors = ", ".join(f"{n} {kind}" for kind, n in run.function_errors.most_common()) or "none"
    path = "wait loop + task-stopped event fast path" if run.fast_path else "wait loop only"
    if limits is None:
        bucket_text = "rate limits OFF"
    else:
        asg = limits.autoscaling
        asg_text = f"{asg.capacity:g}/{asg.refill:g} per s" if asg else "off"
        read = limits.buckets("us-east-1").get("ecs:Cluster resource read actions")
        read_text = f"{read.capacity:g}/{read.refill:g} per s" if read else "off"
        bucket_text = (
            f"ECS cluster resource reads {read_text}, Auto Scaling {asg_text} (assumed), "
            f"{limits.call_latency_seconds:g} s per attempt (assumed)"
        )
    lines = [
        f"burst of {k} on {run.cluster} instances ({run.tasks} tasks, {run.services} services "
        f"incl. 1 daemon), seed {run.seed}",
        *(f"  note: {note}" for note in run.notes),
        f"  limits: {bucket_text}",
        f"  template: reserved concurrency {reserved}; hook heartbeat {run.heartbeat_timeout} s;"
        f" polls first {run.poll_first} s, max {run.poll_max} s; release path: {path}",
        f"  actions: {ended}; lost tasks {run.lost}; failed executions "
        f"{run.failed_executions}; async events given up {run.async_failures}; DLQ "
        f"{run.dead_letters}",
        f"  intake queue (maximum concurrency {run.intake_concurrency or 'none'}): lifecycle "
        f"events waited p50 {percentile(run.intake_waits, 50):.1f} s, "
        f"p95 {percentile(run.intake_waits, 95):.1f} s, "
        f"max {max(run.intake_waits, default=0.0):.1f} s before their first round; "
        f"{run.intake_received_again} taken again after a failed round; "
        f"{run.intake_dead_letters} moved to the dead-letter queue",
        f"  Lambda: {run.invocations} runs; function errors: {errors} ({run.timeouts} timeouts);"
        f" runs refused: {rejected}; peak concurrency "
        f"{run.peak_concurrency}; environments {run.environments}",
        f"  calls per instance: {calls / k:.1f} by the Lambda ({attempts / k:.1f} attempts), "
        f"{run.states_calls / k:.1f} by the state machine",
        f"  throttled attempts: {throttled}",
        f"  state transitions delayed: {run.delayed_transitions}",
        f"  release latency (last task STOPPED -> CompleteLifecycleAction): "
        f"p50 {percentile(run.release_latency, 50):.1f} s, "
        f"p95 {percentile(run.release_latency, 95):.1f} s, "
        f"max {max(run.release_latency, default=0.0):.1f} s "
        f"({len(run.release_latency)} actions)",
        f"  longest wait past the last task: {max(run.waited_past_last_task, default=0.0):.1f} s",
        f"  drain (scale-in -> last action ended): {_hms(run.drain_seconds)}; wall: set-up "
        f"{run.setup_seconds:.1f} s, drain {run.wall_seconds:.1f} s",
    ]
    return "\n".join(lines)


SUMMARY = (
    f"{'cluster':>7} {'burst':>5} {'completed':>9} {'lost':>4} {'calls/inst':>10} "
    f"{'att/inst':>8} {'throttled':>9} {'p50 s':>7} {'p95 s':>7} {'max s':>7} "
    f"{'wall s':>7}"
)


def summary_row(run: BurstRun) -> str:
    k = run.burst
    return (
        f"{run.cluster:>7} {k:>5} {f'{run.completed}/{k}':>9} {run.lost:>4} "
        f"{sum(run.calls.values()) / k:>10.1f} {sum(run.attempts.values()) / k:>8.1f} "
        f"{sum(run.throttled.values()):>9} {percentile(run.release_latency, 50):>7.1f} "
        f"{percentile(run.release_latency, 95):>7.1f} "
        f"{max(run.release_latency, default=0.0):>7.1f} "
        f"{run.setup_seconds + run.wall_seconds:>7.1f}"
    )


def _ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers")
    return values


def _bucket(text: str) -> BucketSpec:
    try:
        capacity, refill = (float(part) for part in text.split("/"))
        return BucketSpec(capacity, refill, "command line")
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"expected CAPACITY/REFILL, e.g. 40/10: {text}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.burst", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--full", action="store_true", help="the full sizes (long)")
    parser.add_argument("--cluster", type=_ints, help="container instances (one per burst)")
    parser.add_argument("--burst", type=_ints, help="instances scaled in at once")
    parser.add_argument(
        "--tasks",
        type=_ints,
        help=f"tasks in the cluster, one per burst or one for all "
        f"(default {TASKS_PER_INSTANCE} per instance)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--asg-bucket",
        type=_bucket,
        default=AUTOSCALING_ASSUMED,
        help="the assumed Auto Scaling bucket CAPACITY/REFILL (default 40/10)",
    )
    parser.add_argument(
        "--ecs-read", type=_bucket, help="ECS cluster resource read bucket (documented: 100/20)"
    )
    parser.add_argument("--no-limits", action="store_true", help="no API buckets at all")
    parser.add_argument(
        "--call-latency",
        type=float,
        default=CALL_LATENCY_SECONDS,
        help="virtual seconds per HTTP attempt (assumed, default 0.05)",
    )
    parser.add_argument(
        "--lambda-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the Lambda's settings (e.g. RETRY_MAX_ATTEMPTS=15)",
    )
    parser.add_argument(
        "--function-timeout", type=int, help="override the function's Timeout (seconds)"
    )
    parser.add_argument(
        "--intake-concurrency",
        type=int,
        help="the CDK app's -c intake_concurrency (first rounds at once; default 10)",
    )
    parser.add_argument(
        "--reserved-concurrency",
        type=int,
        help="override the CDK app's reserved concurrency (the app's -c reserved_concurrency)",
    )
    args = parser.parse_args(argv)
    sizes = FULL if args.full else SMALL
    if args.burst or args.cluster or args.tasks:
        bursts = args.burst or [burst for _, burst, _ in sizes]
        clusters = args.cluster or [max(bursts) * 2]
        if len(clusters) == 1:
            clusters = clusters * len(bursts)
        tasks: list[int | None] = list(args.tasks or [None])
        if len(tasks) == 1:
            tasks = tasks * len(bursts)
        if len(clusters) != len(bursts) or len(tasks) != len(bursts):
            parser.error("give one --cluster (and --tasks), or one per --burst")
        runs_asked = list(zip(clusters, bursts, tasks, strict=True))
    else:
        runs_asked = list(sizes)
    limits = limits_for(args)

    wall0 = time.monotonic()
    print("burst: scale-ins at once under AWS's API rate limits, on the local sandbox", flush=True)
    runs = []
    for cluster, burst, task_count in runs_asked:
        try:
            run = run_burst(
                cluster,
                burst,
                tasks=task_count,
                seed=args.seed,
                limits=limits,
                reserved_concurrency=args.reserved_concurrency,
                lambda_env=dict(item.split("=", 1) for item in args.lambda_env),
                function_timeout=args.function_timeout,
                intake_concurrency=args.intake_concurrency,
            )
        except BurstDoesNotFit as exc:
            parser.error(f"burst of {burst} on {cluster} instances: {exc}")
        runs.append(run)
        print()
        print(describe(run, limits), flush=True)
    print()
    print(SUMMARY)
    print("-" * len(SUMMARY))
    for run in runs:
        print(summary_row(run))
    ok = all(run.ok for run in runs)
    print()
    print(
        f"every action completed, no task lost: {'yes' if ok else 'NO'}; "
        f"total wall {time.monotonic() - wall0:.1f}s"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
