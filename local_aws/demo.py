"""`make demo`: a scale-in drained end to end on the local sandbox, printed as it happens.

    python -m local_aws.demo [--instances 3] [--scale-in 1] [--standalone wait|stop]
                             [--standalone-seconds 1200] [--deregistration-delay 60]
                             [--seed 7] [--warm-pool]

A cluster of a few instances runs two services (web: min 100% / max 200%; worker: min 50% /
max 100%) and a standalone batch task on the instance the scale-in will pick. The group is
scaled in; the hook fires, the real drain Lambda sets DRAINING and starts the real state machine,
ECS replaces the service tasks, the Lambda polls and heartbeats, and completes the lifecycle
action (on ECS's task-stopped event for the last task, or at a poll). With --warm-pool the group
keeps a warm pool: after the drain the pool shrinks by one, and the pooled instance (never
registered with ECS) is released at once instead of waiting for the hook's timeout. Exit status
0 only if every lifecycle action was completed by the drain and no task was lost (no task still
running when its instance terminated).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from local_aws.ecs_sim import SimEvent, Timings
from local_aws.lambda_runtime import Invocation
from local_aws.sandbox import Sandbox
from local_aws.sqs_event_source import unqueued

CLUSTER = "demo"
STATUS_AFTER_SECONDS = 60  # when the demo prints `ecs-drain-hook status`, after the scale-in


class Printer:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.names: dict[str, str] = {}  # task arn -> short label
        self.polls = 0
        self.offset = 0.0  # virtual seconds at the scale-in: times print from there

    def t(self) -> str:
        s = int(self.sb.clock.elapsed() - self.offset)
        return f"[{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}]"

    def say(self, text: str) -> None:
        print(f"{self.t()} {text}", flush=True)

    def label(self, arn: str, service: str | None) -> str:
        if arn not in self.names:
            self.names[arn] = f"{service or 'standalone'}/{arn.rsplit('/', 1)[-1][:8]}"
        return self.names[arn]

    def on_ecs(self, ev: SimEvent) -> None:
        d = ev.details
        if ev.kind == "task_placed":
            self.say(f"  ECS  placed {self.label(d['task'], d['service'])} on {d['instance']}")
        elif ev.kind == "task_running":
            self.say(f"  ECS  {self.label(d['task'], d['service'])} RUNNING")
        elif ev.kind == "task_stopping":
            self.say(f"  ECS  {self.label(d['task'], d['service'])} DEACTIVATING ({d['reason']})")
        elif ev.kind == "task_stopped":
            self.say(f"  ECS  {self.label(d['task'], d['service'])} STOPPED")
        elif ev.kind == "task_lost":
            self.say(f"  ECS  LOST {self.label(d['task'], None)}: its instance terminated")
        elif ev.kind.startswith("instance_"):
            self.say(f"  ECS  container instance {d['instance']} {ev.kind[9:].upper()}")

    def on_lambda(self, inv: Invocation) -> None:
        if inv.error:
            self.say(f"  λ    invocation failed: {inv.error}")
            return
        r = inv.result or {}
        event = inv.event if isinstance(inv.event, dict) else {}
        kind = "poll" if "state_version" in event else "event"
        if unqueued(event) is not event:
            kind = "lifecycle event (intake queue)"
            event = unqueued(event)
        if event.get("source") == "aws.ecs":
            if r.get("action") == "ignored":
                return  # a task stopped, but tasks still hold its instance (or nobody drains it)
            kind = "task-stopped event"
        elif event.get("source") == "aws.states":
            kind = "loop end"
        self.say(
            f"  λ    {kind}: {r.get('instance_id')} action={r.get('action')} "
            f"tasks_remaining={r.get('tasks_remaining')}"
            + (f" next poll in {r.get('wait_seconds')}s" if not r.get("done") else " done")
        )

    def on_lifecycle(self, kind: str, payload: Any) -> None:
        if kind == "event":
            d = payload["detail"]
            where = (
                "Warmed:Terminating:Wait" if d.get("Origin") == "WarmPool" else "Terminating:Wait"
            )
            self.say(
                f"HOOK {d['EC2InstanceId']} {where} "
                f"(hook {d['LifecycleHookName']}, token {d['LifecycleActionToken'][:8]}…)"
            )
        elif kind == "heartbeat":
            self.say(f"  ASG  heartbeat for {payload.instance_id} ({payload.heartbeats})")
        elif kind == "terminated":
            self.say(
                f"DONE {payload.instance_id} lifecycle action {payload.result} "
                f"({payload.ended_by}); instance terminated"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_aws.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--instances", type=int, default=3, help="instances in the group (>= 2)")
    parser.add_argument("--scale-in", type=int, default=1, help="instances to remove")
    parser.add_argument(
        "--standalone",
        choices=["wait", "stop"],
        default="wait",
        help="STANDALONE_TASKS policy of the Lambda",
    )
    parser.add_argument(
        "--standalone-seconds",
        type=float,
        default=1200,
        help="how long the standalone task runs before it exits by itself",
    )
    parser.add_argument(
        "--deregistration-delay",
        type=float,
        default=60,
        help="seconds a task told to stop spends DEACTIVATING (a load balancer's deregistration "
        "delay) before it stops",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--warm-pool",
        action="store_true",
        help="give the group a warm pool and show a pooled instance released at once",
    )
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    # Failure scenarios (local_aws/demo_scenarios.py): each runs instead of the drain above.
    scenario = parser.add_mutually_exclusive_group()
    for flag, what in (
        ("--lose-lifecycle-event", "the lifecycle event is lost; the sweep recovers it"),
        ("--spot-interruption", "a Spot interruption warning: DRAINING at once, done in 2 min"),
        ("--retain-on-failure", "a drain that can't finish retains its host (ABANDON)"),
    ):
        scenario.add_argument(flag, action="store_true", help=what)
    args = parser.parse_args(argv)
    chosen = [k for k in ("lose_lifecycle_event", "spot_interruption", "retain_on_failure")
              if getattr(args, k)]  # fmt: skip
    if chosen:
        from local_aws.demo_scenarios import SCENARIOS

        return SCENARIOS[chosen[0]](args.seed, args.quiet)
    if args.instances < 2 or not 1 <= args.scale_in < args.instances:
        parser.error("need --instances >= 2 and 1 <= --scale-in < --instances")

    wall0 = time.monotonic()
    env = {"STANDALONE_TASKS": args.standalone, "STANDALONE_GRACE_SECONDS": "300"}
    timings = Timings(deactivate_seconds=args.deregistration_delay)
    with Sandbox(seed=args.seed, lambda_env=env, timings=timings) as sb:
        out = Printer(sb)
        # The CDK app's default heartbeat timeout (it must outlast the longest event delivery).
        asg = sb.add_cluster(CLUSTER, instances=args.instances, heartbeat_timeout=1200)
        for family in ("web", "worker", "batch"):
            sb.register_task_definition(family)
        web_desired, worker_desired = 2 * args.instances, args.instances
        sb.create_service(
            CLUSTER, "web", "web", web_desired, minimum_healthy_percent=100, maximum_percent=200
        )
        sb.create_service(
            CLUSTER,
            "worker",
            "worker",
            worker_desired,
            minimum_healthy_percent=50,
            maximum_percent=100,
        )
        victims = sb.scale_in_candidates(asg, args.scale_in)
        batch = sb.run_standalone(CLUSTER, "batch", victims[0], exits_after=args.standalone_seconds)
        if args.warm_pool:
            # One pooled instance: stopped, never registered with ECS (ECS_WARM_POOLS_CHECK).
            sb.put_warm_pool(asg, max_group_prepared_capacity=args.instances + 1)
        sb.settle()
        sb.deploy()
        sb.publish_stack()  # the CLI finds the deployment by its stack's outputs
        print(
            f"ecs-drain-hook demo: cluster '{CLUSTER}', group '{asg}' with {args.instances} "
            f"instances, services web ({web_desired} tasks, min 100% max 200%) and worker "
            f"({worker_desired} tasks, min 50% max 100%), a standalone task on {victims[0]}, "
            f"STANDALONE_TASKS={args.standalone}, deregistration delay "
            f"{args.deregistration_delay:.0f}s, seed {args.seed}"
        )
        print(f"state machine from {sb.definition.source}; virtual time below, [hh:mm:ss]")
        if not args.quiet:
            sb.sim.listeners.append(out.on_ecs)
            sb.runtime.listeners.append(out.on_lambda)
            sb.listeners.append(out.on_lifecycle)
        sb.sim.reset_min_running()
        start = out.offset = sb.clock.elapsed()
        out.say(f"scale-in: {asg} desired {args.instances} -> {args.instances - args.scale_in}")
        sb.scale_in(asg, args.instances - args.scale_in)
        _status_mid_drain(sb, out)
        report = sb.run()
        pooled_released: list[tuple[str, float]] = []
        if args.warm_pool:
            pooled = set(sb.pooled_instances(asg))
            out.say(f"warm pool shrinks by one: a pooled instance of {sorted(pooled)} goes")
            shrink = max(0, args.instances - args.scale_in + len(pooled) - 1)
            sb.put_warm_pool(asg, max_group_prepared_capacity=shrink)
            report = sb.run()
            for action in report.lifecycle_actions:
                if action.instance_id in pooled and action.ended_at is not None:
                    held = (action.ended_at - action.started_at).total_seconds()
                    pooled_released.append((action.instance_id, held))

        below = _below_minimum(sb)
        services = sb.client("ecs").describe_services(cluster=CLUSTER, services=["web", "worker"])
        short = {
            s["serviceName"]: (s["runningCount"], s["desiredCount"]) for s in services["services"]
        }
        expected = args.scale_in + (1 if args.warm_pool else 0)
        completed = report.all_completed and len(report.lifecycle_actions) == expected
        if args.warm_pool:
            completed = completed and len(pooled_released) == 1
        ok = completed and not report.lost_tasks
        batch_task = sb.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[batch])["tasks"][0]
        print()
        print("summary")
        print(
            f"  lifecycle actions   {len(report.lifecycle_actions)} ("
            + ", ".join(
                f"{a.instance_id}: {a.result} by {a.ended_by}" for a in report.lifecycle_actions
            )
            + ")"
        )
        print(
            f"  virtual drain time  {_hms(_drain_time(report, start, sb))} from the scale-in to "
            f"the last completion ({_hms(sb.clock.elapsed() - start)} of virtual time in all)"
        )
        latencies = _release_latencies(sb, report)
        print(
            "  release latency     "
            + (
                ", ".join(f"{i}: {s:.1f}s" for i, s in latencies)
                + " from its last task STOPPED to the completion"
                if latencies
                else "-"
            )
        )
        kinds = _invocation_kinds(sb)
        print(
            f"  Lambda invocations  {sum(kinds.values())} ("
            + ", ".join(f"{n} {k}" for k, n in kinds.items())
            + f"), {report.executions} state machine execution(s)"
        )
        if args.warm_pool:
            print(
                "  pooled instance     "
                + ", ".join(
                    f"{i} released {s:.1f}s after it entered Warmed:Terminating:Wait"
                    for i, s in pooled_released
                )
            )
        print(
            f"  AWS calls           {sum(report.calls.values())} by the Lambda: "
            + ", ".join(f"{k} {v}" for k, v in sorted(report.calls.items()))
        )
        print(
            "  services now        "
            + ", ".join(f"{k} {r}/{d} running" for k, (r, d) in sorted(short.items()))
        )
        print(f"  below min healthy   {', '.join(below) if below else 'none'}")
        print(
            f"  standalone task     {batch_task['lastStatus']} "
            f"({batch_task.get('stoppedReason') or 'still running'})"
        )
        print(f"  lost tasks          {len(report.lost_tasks)}")
        print(f"  wall time           {time.monotonic() - wall0:.1f}s")
        print("RESULT", "OK" if ok else "FAILED")
        return 0 if ok else 1


def _status_mid_drain(sb: Sandbox, out: Printer) -> None:
    """A minute into the drain (the services' tasks still stopping), what `ecs-drain-hook
    status` says: the CLI's own code, run on the sandbox's AWS and clock."""
    import boto3

    from ecs_drain_hook.cli.main import main as cli

    sb.advance(sb.clock.now() + timedelta(seconds=STATUS_AFTER_SECONDS))
    out.say("$ ecs-drain-hook status")
    cli(["status"], session=boto3.session.Session(region_name=sb.region), now=sb.clock.now())


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s"


def _drain_time(report: Any, start: float, sb: Sandbox) -> float:
    ends = [a.ended_at for a in report.lifecycle_actions if a.ended_at is not None]
    if not ends:
        return 0.0
    return (max(ends) - sb.clock._start).total_seconds() - start


def _release_latencies(sb: Sandbox, report: Any) -> list[tuple[str, float]]:
    """Per drained instance: seconds from its last task reaching STOPPED to the completion."""
    out = []
    for action in report.lifecycle_actions:
        placed = {
            e.details["task"]
            for e in sb.sim.events
            if e.kind == "task_placed" and e.details.get("instance") == action.instance_id
        }
        stops = [
            e.at for e in sb.sim.events if e.kind == "task_stopped" and e.details["task"] in placed
        ]
        if stops and action.ended_at is not None:
            out.append((action.instance_id, (action.ended_at - max(stops)).total_seconds()))
    return out


def _invocation_kinds(sb: Sandbox) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for invocation in sb.runtime.invocations:
        event = invocation.event if isinstance(invocation.event, dict) else {}
        if "state_version" in event:
            kind = "polls"
        elif event.get("source") == "aws.ecs":
            kind = "task-stopped events"
        elif event.get("source") == "aws.states":
            kind = "loop ends"
        else:
            kind = "lifecycle events"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _below_minimum(sb: Sandbox) -> list[str]:
    services = sb.client("ecs").describe_services(cluster=CLUSTER, services=["web", "worker"])
    out = []
    seen = sb.sim.min_running_seen()
    for s in services["services"]:
        cfg = s.get("deploymentConfiguration", {})
        floor = math.ceil(s["desiredCount"] * cfg.get("minimumHealthyPercent", 100) / 100)
        low = seen.get(f"{CLUSTER}:{s['serviceName']}", s["runningCount"])
        if low < floor:
            out.append(f"{s['serviceName']} (lowest {low} RUNNING < {floor})")
    return out


if __name__ == "__main__":
    sys.exit(main())
