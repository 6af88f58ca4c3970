"""An instance refresh through the drain hook: tasks below desired over time, with RELEASE_WHEN
drained and services_steady.

    python -m benchmarks.refresh [--instances 6] [--tasks 12] [--min-healthy 90] [--warmup 60]
                                 [--register-delay 60] [--seeds 1,2,3] [--quick]

A group of `--instances` instances (one Auto Scaling group, the real drain Lambda and state
machine on the sandbox) runs one service of `--tasks` tasks at minimumHealthyPercent 50 /
maximumPercent 200. StartInstanceRefresh replaces every instance, in batches by
`--min-healthy` (the group's MinHealthyPercentage), each old instance terminating through the
termination hook (local_aws/instance_refresh.py). A new instance's ECS agent registers
`--register-delay` seconds after it goes InService (its boot); InstanceWarmup is `--warmup`.

Each run samples the service every 5 virtual seconds until the refresh is done and the service
steady again, and reports:

- `task-min below`: the integral of (desired - running) over time, in task-minutes;
- `peak below`, `lowest running`: the most tasks short at once and the fewest running;
- `refresh`: from StartInstanceRefresh to Successful; `hold`: the mean time an old instance
  was held in Terminating:Wait;
- the timeline: per minute, the most tasks below desired during that minute.

Both answers of the sandbox's UNCONFIRMED knob are run: whether a refresh's next batch waits for
the instances its hook holds to be terminated (`wait_for_terminations`), since the budget can
only pace a refresh that does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from local_aws import autoscaling, instance_refresh
from local_aws.ecs_sim import Timings
from local_aws.sandbox import Sandbox

CLUSTER = "refresh"
SERVICE = "web"
SAMPLE_SECONDS = 5
SETTINGS = ("drained", "services_steady")


@dataclass
class Run:
    release_when: str
    wait_for_terminations: bool
    seed: int
    below: list[tuple[float, int]] = field(default_factory=list)  # (seconds, desired-running)
    running: list[int] = field(default_factory=list)
    refresh_seconds: float = 0.0
    holds: list[float] = field(default_factory=list)
    completed: bool = False
    lost: int = 0
    invocations: int = 0

    @property
    def task_minutes(self) -> float:
        return sum(short for _, short in self.below) * SAMPLE_SECONDS / 60

    @property
    def peak(self) -> int:
        return max((short for _, short in self.below), default=0)

    def per_minute(self) -> list[int]:
        minutes: dict[int, int] = {}
        for at, short in self.below:
            minute = int(at // 60)
            minutes[minute] = max(minutes.get(minute, 0), short)
        return [minutes.get(m, 0) for m in range(max(minutes, default=-1) + 1)]


def _register_later(sb: Sandbox, delay: float) -> None:
    """New instances' ECS agents register `delay` seconds after InService (their boot)."""
    register = sb._register_when_in_service
    sb.in_service_listeners.remove(register)

    def later(asg_name: str, instance_id: str) -> None:
        sb.timers.call_later(delay, lambda: register(asg_name, instance_id), name="agent boot")

    sb.in_service_listeners.append(later)


def run_one(
    release_when: str,
    *,
    wait_for_terminations: bool,
    seed: int,
    instances: int,
    tasks: int,
    min_healthy: int,
    warmup: int,
    register_delay: float,
    start_seconds: float,
    stop_seconds: float,
) -> Run:
    run = Run(release_when, wait_for_terminations, seed)
    # A drained task deregisters from its load balancer (deactivate), then stops.
    timings = Timings(
        start_seconds=start_seconds, deactivate_seconds=stop_seconds * 0.75,
        stop_seconds=stop_seconds * 0.25,
    )  # fmt: skip
    env = {"RELEASE_WHEN": release_when}
    with Sandbox(seed=seed, lambda_env=env, timings=timings) as sb:
        asg = sb.add_cluster(CLUSTER, instances=instances, heartbeat_timeout=1200)
        sb.register_task_definition(SERVICE)
        sb.create_service(
            CLUSTER, SERVICE, SERVICE, tasks, minimum_healthy_percent=50, maximum_percent=200
        )
        sb.settle()
        sb.deploy()
        _register_later(sb, register_delay)
        instance_refresh.configure(wait_for_terminations=wait_for_terminations)
        old = set(sb.group_instances(asg))
        client = sb.client("autoscaling")
        start = sb.clock.now()
        client.start_instance_refresh(
            AutoScalingGroupName=asg,
            Preferences={"MinHealthyPercentage": min_healthy, "InstanceWarmup": warmup},
        )
        ecs = sb.client("ecs")
        ended: datetime | None = None
        limit = start + timedelta(hours=6)
        while sb.clock.now() < limit:
            sb.advance(sb.clock.now() + timedelta(seconds=SAMPLE_SECONDS))
            service = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
            short = max(0, service["desiredCount"] - service["runningCount"])
            at = (sb.clock.now() - start).total_seconds()
            run.below.append((at, short))
            run.running.append(service["runningCount"])
            if ended is None:
                refresh = client.describe_instance_refreshes(AutoScalingGroupName=asg)[
                    "InstanceRefreshes"
                ][0]
                if refresh["Status"] != "InProgress":
                    ended = sb.clock.now()
            if ended is not None and short == 0:
                break
        run.refresh_seconds = ((ended or sb.clock.now()) - start).total_seconds()
        actions = [a for a in autoscaling.lifecycle_actions() if a.instance_id in old]
        run.holds = [
            (a.ended_at - a.started_at).total_seconds() for a in actions if a.ended_at is not None
        ]
        run.completed = len(actions) == len(old) and all(a.ended_by == "complete" for a in actions)
        run.lost = len(sb.sim.lost_tasks)
        run.invocations = len(sb.runtime.invocations)
    return run


def _row(label: str, runs: list[Run]) -> str:
    def mean(values: list[float]) -> float:
        return statistics.mean(values) if values else 0.0

    return (
        f"{label:<34} {mean([r.task_minutes for r in runs]):>13.1f} "
        f"{max(r.peak for r in runs):>10} {min(min(r.running) for r in runs):>14} "
        f"{mean([r.refresh_seconds for r in runs]) / 60:>11.1f} "
        f"{mean([mean(r.holds) for r in runs]):>8.0f} "
        f"{'yes' if all(r.completed for r in runs) else 'NO':>9} {sum(r.lost for r in runs):>5}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=12, help="the service's desired count")
    parser.add_argument(
        "--min-healthy", type=int, default=90, help="the refresh's MinHealthyPercentage"
    )
    parser.add_argument("--warmup", type=int, default=60, help="InstanceWarmup, seconds")
    parser.add_argument(
        "--register-delay",
        type=float,
        default=60,
        help="seconds from InService to the ECS agent's registration",
    )
    parser.add_argument(
        "--start-seconds",
        type=float,
        default=90,
        help="a task's start, placement to RUNNING (image pull, health checks), before jitter",
    )
    parser.add_argument(
        "--stop-seconds",
        type=float,
        default=40,
        help="a drained task's stop (deregistration delay and stop), before jitter",
    )
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds")
    parser.add_argument("--quick", action="store_true", help="one seed, the default knob only")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    knobs = [True, False]
    if args.quick:
        seeds, knobs = seeds[:1], [True]
    wall = time.monotonic()
    print(
        f"instance refresh of {args.instances} instances (MinHealthyPercentage "
        f"{args.min_healthy}, InstanceWarmup {args.warmup} s, agents register "
        f"{args.register_delay:.0f} s after InService), service {SERVICE} of {args.tasks} "
        f"tasks at minimumHealthyPercent 50 / maximumPercent 200; tasks start in "
        f"{args.start_seconds:.0f} s and stop in {args.stop_seconds:.0f} s (+ up to 50% jitter); "
        f"seeds {','.join(map(str, seeds))} (virtual time, means over the seeds)",
        flush=True,
    )
    header = (
        f"{'RELEASE_WHEN / next batch waits':<34} {'task-min below':>13} {'peak below':>10} "
        f"{'lowest running':>14} {'refresh min':>11} {'hold s':>8} {'completed':>9} {'lost':>5}"
    )
    print(header)
    print("-" * len(header))
    timelines: list[tuple[str, list[int]]] = []
    for wait in knobs:
        for release_when in SETTINGS:
            runs = [
                run_one(
                    release_when,
                    wait_for_terminations=wait,
                    seed=seed,
                    instances=args.instances,
                    tasks=args.tasks,
                    min_healthy=args.min_healthy,
                    warmup=args.warmup,
                    register_delay=args.register_delay,
                    start_seconds=args.start_seconds,
                    stop_seconds=args.stop_seconds,
                )
                for seed in seeds
            ]
            label = f"{release_when} / {'terminations' if wait else 'warmup only'}"
            print(_row(label, runs), flush=True)
            timelines.append((label, runs[0].per_minute()))
    print()
    print(f"tasks below desired, the most in each minute (seed {seeds[0]}):")
    for label, per_minute in timelines:
        print(f"  {label:<34} {' '.join(str(n) for n in per_minute)}")
    print(f"wall time {time.monotonic() - wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
