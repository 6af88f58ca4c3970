"""How long an empty instance waits, and what a drain costs, against aws-cdk-lib's own hook.

    python -m benchmarks.release [--seeds 10] [--quick] [--schedules 15:120,120:300,300:600]

All on the local sandbox, on virtual time, with the real drain Lambda and state machine as the
CDK app synthesizes them, and ECS's events as the developer guide lists them (a task told to
stop raises a task event when it reaches STOPPED, and no container instance event). A new
Lambda environment spends the sandbox's assumed init time (1 s) before its handler runs, so a
release on a cold start pays it. Three variants of each drain:

- ours, events on: ECS "Task State Change" events of stopped tasks reach the Lambda through
  the CDK app's rule (the fast path), the wait loop is the safety net;
- ours, events lost: every ECS event is lost, the loop alone finds the instance empty;
- anchor: aws-cdk-lib's legacy drain hook (`LifecycleHookDrainHook` + its Lambda, polling every
  10 s inside one run, releasing at its drain time, default 5 minutes) on the same cluster,
  without ours (`local_aws/other_hooks.py`).

Drains: the short one (its last task stops a minute or two after the scale-in) and the same
with a 60 s deregistration delay (every task told to stop spends 60 s DEACTIVATING first).

Printed per variant:

- release latency: virtual seconds from the last task on the instance reaching STOPPED to the
  lifecycle action's completion (p50 / p95 / max over the seeds); "held" when the action ended
  while tasks still ran (the anchor's time limit) and "lost" tasks;
- calls: AWS calls the drain's Lambda made per drained instance (the anchor's Lambda counted the
  same way); ASL: the state machine's own calls (its Lambda invokes, and heartbeats while polls
  fail);
- invocations: Lambda invocations per drain; transitions: Step Functions state transitions;
- cost per drain at list prices (PRICES below, us-east-1, late 2026), for drains of about
  5 minutes, 1 hour and 24 hours (a standalone task that runs that long).

Then what a busy cluster costs: tasks stopping on instances nobody drains (batch jobs ending at
a steady rate) each wake the Lambda, since the rule can't tell instances apart; printed per
1,000 such stops: Lambda invocations, ECS calls, and the share of the account's ECS
cluster-read bucket (20 a second refilled) they take.

Then the loop's schedule: the same drains under several (first, longest) poll intervals, the
figures the defaults in lambda/drain_hook/settings.py were chosen from.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from drain_hook import contract
from drain_hook.settings import Tunables
from local_aws import autoscaling
from local_aws.ecs_sim import Timings
from local_aws.faults import Instrument
from local_aws.rate_limits import ECS_CATEGORIES
from local_aws.sandbox import HOOK_NAME, Sandbox

CLUSTER = "c1"
# List prices (USD), us-east-1: Step Functions Standard per state transition; Lambda per request
# and per GB-second on arm64 (ours: 256 MB) and x86 (aws-cdk-lib's hook: 128 MB, x86 default);
# CloudWatch Logs ingestion per GB; SNS publish (the anchor's hook notifies through SNS).
PRICES = {
    "transition": 25.0 / 1_000_000,
    "lambda_request": 0.20 / 1_000_000,
    "gb_second_arm": 0.0000133334,
    "gb_second_x86": 0.0000166667,
    "log_gb": 0.50,
    "sns_publish": 0.50 / 1_000_000,
}
# Assumptions (stated in the table): a round of ours bills 200 ms and writes 2 KB of logs.
OURS_BILLED_SECONDS, OURS_MEMORY_GB, OURS_LOG_KB = 0.2, 0.25, 2.0
ANCHOR_MEMORY_GB, ANCHOR_LOG_KB_PER_POLL = 0.125, 0.2
DRAIN_LENGTHS = {"5 min": 300.0, "1 h": 3600.0, "24 h": 86400.0}


@dataclass
class Drain:
    variant: str
    latency: float | None  # last task STOPPED -> completion; None if tasks were still running
    calls: int
    asl_calls: int
    invocations: int
    transitions: int
    lost: int
    held_seconds: float
    ended_by: str
    billed_gb_seconds: float
    log_kb: float
    sns: int

    @property
    def cost(self) -> float:
        gb_price = PRICES["gb_second_x86" if self.variant == "anchor" else "gb_second_arm"]
        return (
            self.transitions * PRICES["transition"]
            + self.invocations * PRICES["lambda_request"]
            + self.billed_gb_seconds * gb_price
            + self.log_kb / 1024 / 1024 * PRICES["log_gb"]
            + self.sns * PRICES["sns_publish"]
        )


def _world(sb: Sandbox, batch_seconds: float | None) -> tuple[str, str]:
    """The benchmark's short drain: three instances, two services, one scaled in; optionally a
    standalone task on the victim that runs `batch_seconds` (a longer drain)."""
    asg = sb.add_cluster(CLUSTER, instances=3, heartbeat_timeout=1200)
    for family in ("web", "worker", "batch"):
        sb.register_task_definition(family)
    sb.create_service(CLUSTER, "web", "web", 6, minimum_healthy_percent=100, maximum_percent=200)
    sb.create_service(
        CLUSTER, "worker", "worker", 3, minimum_healthy_percent=50, maximum_percent=100
    )
    [victim] = sb.scale_in_candidates(asg, 1)
    if batch_seconds:
        sb.run_standalone(CLUSTER, "batch", victim, exits_after=batch_seconds)
    sb.settle()
    return asg, victim


def _last_stop(sb: Sandbox, instance_id: str) -> datetime | None:
    placed = {
        e.details["task"]
        for e in sb.sim.events
        if e.kind == "task_placed" and e.details.get("instance") == instance_id
    }
    stops = [
        e.at for e in sb.sim.events if e.kind == "task_stopped" and e.details["task"] in placed
    ]
    return max(stops) if stops else None


def _transitions(sb: Sandbox) -> int:
    sfn = sb.client("stepfunctions")
    total = 0
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=sb.state_machine_arn):
        for execution in page["executions"]:
            history = sfn.get_execution_history(
                executionArn=execution["executionArn"], maxResults=1000
            )
            total += sum(1 for e in history["events"] if e["type"].endswith("StateEntered"))
    return total


def ours(
    seed: int,
    *,
    events: bool,
    batch_seconds: float | None,
    env: dict[str, str],
    context: dict[str, str] | None = None,
    timings: Timings | None = None,
) -> Drain:
    with Sandbox(seed=seed, lambda_env=env, context=context, timings=timings) as sb:
        asg, victim = _world(sb, batch_seconds)
        sb.deploy()
        if not events:
            sb.lose_events({"source": [contract.ECS_SOURCE]}, 1.0)
        start = sb.clock.now()
        sb.scale_in(asg, 2)
        report = sb.run()
        [action] = [a for a in autoscaling.lifecycle_actions(victim) if a.hook_name == HOOK_NAME]
        invocations = len(sb.runtime.invocations)
        return _measure(
            sb,
            "ours, events on" if events else "ours, events lost",
            victim,
            action,
            start,
            calls=sum(report.calls.values()),
            asl_calls=sum(sb.instrument.states_calls.values()),
            invocations=invocations,
            transitions=_transitions(sb),
            lost=len(report.lost_tasks),
            billed=invocations * OURS_BILLED_SECONDS * OURS_MEMORY_GB,
            log_kb=invocations * OURS_LOG_KB,
            sns=0,
        )


def anchor(seed: int, *, batch_seconds: float | None, timings: Timings | None = None) -> Drain:
    with Sandbox(seed=seed, timings=timings) as sb:
        asg, victim = _world(sb, batch_seconds)
        counter = Instrument(seed=seed)
        session = counter.session(sb.region)
        # The group as aws-cdk-lib's addAutoScalingGroup builds it: its hook, not ours.
        sb.client("autoscaling").delete_lifecycle_hook(
            AutoScalingGroupName=asg, LifecycleHookName=HOOK_NAME
        )
        actor = sb.add_cdk_drain_hook(asg, drain_seconds=300, clients=session.client)
        start = sb.clock.now()
        sb.scale_in(asg, 2)
        report = sb.run()
        [action] = autoscaling.lifecycle_actions(victim)
        # Its Lambda bills the whole wait: one run per attempt, up to its timeout.
        ran = (action.ended_at - action.started_at).total_seconds() if action.ended_at else 0.0
        polls = counter.calls.get("ecs:DescribeContainerInstances", 0)
        return _measure(
            sb,
            "anchor",
            victim,
            action,
            start,
            calls=sum(counter.calls.values()),
            asl_calls=0,
            invocations=actor.invocations,
            transitions=0,
            lost=len(report.lost_tasks),
            billed=min(ran, actor.function_timeout * actor.invocations) * ANCHOR_MEMORY_GB,
            log_kb=polls * ANCHOR_LOG_KB_PER_POLL,
            sns=actor.invocations,
        )


def _measure(
    sb: Sandbox,
    variant: str,
    victim: str,
    action: autoscaling.LifecycleAction,
    start: datetime,
    **figures: float,
) -> Drain:
    last = _last_stop(sb, victim)
    ended = action.ended_at
    latency = None
    if ended is not None and last is not None and figures["lost"] == 0:
        latency = max(0.0, (ended - last).total_seconds())
    return Drain(
        variant=variant,
        latency=latency,
        calls=int(figures["calls"]),
        asl_calls=int(figures["asl_calls"]),
        invocations=int(figures["invocations"]),
        transitions=int(figures["transitions"]),
        lost=int(figures["lost"]),
        held_seconds=(ended - start).total_seconds() if ended else 0.0,
        ended_by=action.ended_by or "waiting",
        billed_gb_seconds=figures["billed"],
        log_kb=figures["log_kb"],
        sns=int(figures["sns"]),
    )


@dataclass
class Busy:
    stops: int  # task stops on instances nobody drains
    invocations: int  # Lambda runs those stops caused
    ecs_calls: int  # AWS calls those runs made (ListContainerInstances only)
    seconds: float  # virtual time the stops took
    environments: int
    drained: bool  # the instance scaled in meanwhile was released on its last task's event


def busy_cluster(seed: int, *, stops: int, per_minute: float) -> Busy:
    """One instance drains while batch jobs keep ending on the others, `per_minute` a minute."""
    with Sandbox(seed=seed) as sb:
        asg = sb.add_cluster(CLUSTER, instances=4, heartbeat_timeout=1200, cpu=65536, memory=262144)
        for family in ("web", "job"):
            sb.register_task_definition(family, cpu=64, memory=128)
        sb.create_service(
            CLUSTER, "web", "web", 8, minimum_healthy_percent=100, maximum_percent=200
        )
        sb.settle()
        sb.deploy()
        calls = sb.record_calls()
        [victim] = sb.scale_in_candidates(asg, 1)
        others = [i for i in sb.group_instances(asg) if i != victim]
        gap = 60.0 / per_minute
        for n in range(stops):
            # Each job starts (about 20 s), runs 10 s and exits: one stop every `gap` seconds.
            sb.timers.call_later(
                n * gap,
                lambda n=n: sb.run_standalone(CLUSTER, "job", others[n % 3], exits_after=10),
                name="job",
            )
        sb.scale_in(asg, 3)
        start = sb.clock.now()
        sb.run()
        sb.advance(start + timedelta(seconds=stops * gap + 120))
        victim_arn = next(
            e["detail"]["containerInstanceArn"]
            for e in sb.sim.ecs_events
            if e["detail"].get("ec2InstanceId") == victim
        )
        theirs = {
            index
            for index, invocation in enumerate(sb.runtime.invocations)
            if isinstance(invocation.event, dict)
            and invocation.event.get("detail-type") == contract.TASK_DETAIL_TYPE
            and invocation.event["detail"].get("containerInstanceArn") != victim_arn
        }
        [action] = [a for a in autoscaling.lifecycle_actions(victim) if a.hook_name == HOOK_NAME]
        last = _last_stop(sb, victim)
        released = (
            action.ended_by == "complete"
            and last is not None
            and action.ended_at is not None
            and (action.ended_at - last).total_seconds() <= 2.0
        )
        return Busy(
            stops=len(theirs),
            invocations=len(theirs),
            ecs_calls=sum(1 for c in calls if c.invocation in theirs),
            seconds=stops * gap,
            environments=len({sb.runtime.invocations[i].environment for i in theirs}),
            drained=released,
        )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarize(drains: list[Drain]) -> str:
    latencies = [d.latency for d in drains if d.latency is not None]
    lat = (
        f"{_pct(latencies, 0.5):7.1f} {_pct(latencies, 0.95):7.1f} {max(latencies):7.1f}"
        if latencies
        else f"{'-':>7} {'-':>7} {'-':>7}"
    )
    held = sum(1 for d in drains if d.latency is None)
    return (
        f"{drains[0].variant:<18} {lat} {held:>5} {sum(d.lost for d in drains):>5} "
        f"{statistics.mean(d.calls for d in drains):>7.1f} "
        f"{statistics.mean(d.asl_calls for d in drains):>6.1f} "
        f"{statistics.mean(d.invocations for d in drains):>6.1f} "
        f"{statistics.mean(d.transitions for d in drains):>7.1f} "
        f"${statistics.mean(d.cost for d in drains):>9.6f}"
    )


HEADER = (
    f"{'variant':<18} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'held':>5} {'lost':>5} "
    f"{'calls':>7} {'ASL':>6} {'invoc':>6} {'transit':>7} {'cost':>10}"
)


def schedule_env(first: int, longest: int) -> dict[str, str]:
    return {"POLL_INTERVAL_FIRST_SECONDS": str(first), "POLL_INTERVAL_MAX_SECONDS": str(longest)}


def _pairs(text: str) -> list[tuple[int, int]]:
    pairs = []
    for part in text.split(","):
        first, _, longest = part.partition(":")
        pairs.append((int(first), int(longest)))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.release", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=10, help="runs per variant (short drain)")
    parser.add_argument(
        "--schedules",
        type=_pairs,
        default=[(15, 120), (120, 300), (120, 900), (120, 1800), (120, 3600)],
        help="first:longest poll intervals to compare "
        "(default 15:120,120:300,120:900,120:1800,120:3600)",
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, 5-minute drains only")
    args = parser.parse_args(argv)
    seeds = range(1, 1 + (min(2, args.seeds) if args.quick else args.seeds))
    lengths = {"5 min": 300.0} if args.quick else DRAIN_LENGTHS
    defaults = Tunables()
    wall0 = time.monotonic()
    ok = True

    env = schedule_env(defaults.poll_interval_first_seconds, defaults.poll_interval_max_seconds)
    delay = Timings(deactivate_seconds=60.0)
    for title, timings in (
        ("short drain", None),
        ("the same drain, 60 s deregistration delay (every stop spends 60 s DEACTIVATING)", delay),
    ):
        print(
            f"{title}: 3 instances, web 6 tasks 100/200 %, worker 3 tasks 50/100 %, one scaled "
            f"in, no standalone task; {len(seeds)} seeds; schedule "
            f"{defaults.poll_interval_first_seconds}:{defaults.poll_interval_max_seconds} "
            "(defaults); latency = last task STOPPED -> CompleteLifecycleAction"
        )
        print(HEADER)
        variants = [
            [ours(s, events=True, batch_seconds=None, env=env, timings=timings) for s in seeds],
            [ours(s, events=False, batch_seconds=None, env=env, timings=timings) for s in seeds],
            [anchor(s, batch_seconds=None, timings=timings) for s in seeds],
        ]
        for drains in variants:
            print(summarize(drains))
        ok &= all(d.lost == 0 for group in variants[:2] for d in group)
        print()

    per_minute = 300.0
    stops = 200 if args.quick else 1000
    busy = busy_cluster(1, stops=stops, per_minute=per_minute)
    refill = ECS_CATEGORIES["Cluster resource read actions"][1]
    scale = 1000 / max(1, busy.stops)
    print(
        f"busy cluster: {busy.stops} task stops on instances nobody drains, {per_minute:.0f} a "
        "minute, while one instance drains (seed 1)"
    )
    print(
        f"  per 1,000 such stops: {busy.invocations * scale:.0f} Lambda invocations, "
        f"{busy.ecs_calls * scale:.0f} ECS calls (ListContainerInstances; "
        f"{busy.environments} Lambda environments), "
        f"{busy.ecs_calls / busy.seconds:.2f} calls a second = "
        f"{100 * busy.ecs_calls / busy.seconds / refill:.1f} % of the cluster-read bucket's "
        f"refill ({refill}/s); invocations cost "
        f"${busy.invocations * scale * PRICES['lambda_request']:.4f} + "
        f"${busy.invocations * scale * 0.02 * OURS_MEMORY_GB * PRICES['gb_second_arm']:.4f} "
        "(20 ms billed each) per 1,000 stops"
    )
    print(f"  the drained instance released within 2 s of its last task: {busy.drained}")
    ok &= busy.drained

    print()
    print(
        "longer drains (a standalone task on the instance runs that long; MAX_DRAIN_SECONDS is "
        "raised to let it), seed 1"
    )
    print(f"{'drain':<6} " + HEADER)
    for label, seconds in lengths.items():
        # As `cdk deploy -c max_drain_seconds=...` would: the loop's timeout follows.
        longer = {"max_drain_seconds": str(int(seconds) + 3600)}
        for drain in (
            ours(1, events=True, batch_seconds=seconds, env=env, context=longer),
            ours(1, events=False, batch_seconds=seconds, env=env, context=longer),
            anchor(1, batch_seconds=seconds),
        ):
            print(f"{label:<6} " + summarize([drain]))
            ok &= drain.variant == "anchor" or drain.lost == 0

    print()
    print(
        "the loop's schedule (first:longest poll interval): ours, short drain, and 1 h and 24 h "
        "drains (events on, then lost)"
    )
    print(f"{'schedule':<9} " + HEADER)
    for first, longest in args.schedules:
        env_s = schedule_env(first, longest)
        for events in (True, False):
            short = [ours(s, events=events, batch_seconds=None, env=env_s) for s in seeds]
            print(f"{first}:{longest:<5} " + summarize(short))
        if not args.quick:
            for label, seconds in (("1 h", 3600.0), ("24 h", 86400.0)):
                context = {
                    "max_drain_seconds": str(int(seconds) + 3600),
                    "poll_interval_first_seconds": str(first),
                    "poll_interval_max_seconds": str(longest),
                }
                for events in (True, False):
                    drain = ours(1, events=events, batch_seconds=seconds, env={}, context=context)
                    print(f"{first}:{longest:<5} " + summarize([drain]) + f"  ({label} drain)")

    print()
    print(
        f"cost assumptions: ours bills {OURS_BILLED_SECONDS * 1000:.0f} ms at "
        f"{OURS_MEMORY_GB * 1024:.0f} MB arm64 and logs {OURS_LOG_KB:.0f} KB per invocation; "
        f"the anchor bills its whole wait at {ANCHOR_MEMORY_GB * 1024:.0f} MB x86 plus one SNS "
        "publish per attempt; API calls are free"
    )
    print(f"no task lost by ours: {'yes' if ok else 'NO'}; wall {time.monotonic() - wall0:.0f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
