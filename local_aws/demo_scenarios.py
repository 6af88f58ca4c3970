"""The demo's three failure scenarios (`make demo DEMO_ARGS="--lose-lifecycle-event"`, ...).

Each builds a small cluster on the sandbox, makes one thing go wrong the way AWS lets it, runs
the real Lambda, state machine and rules, prints what happens on virtual time, and returns 0
only when the product did what it should:

- ``--lose-lifecycle-event``: Auto Scaling's lifecycle event is lost (best effort): the sweep
  finds the instance waiting, sends its message through the intake queue, and the drain
  completes the action, not the hook's timeout.
- ``--spot-interruption``: EC2's interruption warning for a Spot instance of a group with
  Capacity Rebalancing: the instance is DRAINING within seconds; the termination hook's round
  that follows (the group terminates the instance before EC2 does) stops what is left so its
  grace ends at the interruption, and completes by then.
- ``--retain-on-failure``: ON_DRAIN_FAILURE=retain and a group whose instance lifecycle policy
  retains: a drain that can't finish (the ECS agent is gone, its task can't stop) ends with
  ABANDON and the instance Terminating:Retained, its task still running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from local_aws.demo import CLUSTER, Printer
from local_aws.ecs_sim import Timings
from local_aws.lambda_runtime import Invocation
from local_aws.sandbox import Sandbox
from local_aws.sqs_event_source import unqueued

QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR"}  # the scenarios print the story themselves


class ScenarioPrinter(Printer):
    """The demo's printer, naming the sweep's runs, its messages and Spot warnings too."""

    def on_lambda(self, inv: Invocation) -> None:
        event = inv.event if isinstance(inv.event, dict) else {}
        body = unqueued(event)
        r = inv.result or {}
        if event.get("source") == "aws.events":
            if r.get("sent"):
                self.say(f"  λ    sweep: {r.get('reason')}: {', '.join(r['sent'])}")
            return
        if event.get("source") == "aws.ec2":
            self.say(f"  λ    Spot warning: {r.get('instance_id')} action={r.get('action')}")
            return
        if isinstance(body, dict) and body.get("source") == "ecs-drain-hook.sweep":
            self.say(
                f"  λ    lifecycle message from the sweep (intake queue): {r.get('instance_id')} "
                f"action={r.get('action')} tasks_remaining={r.get('tasks_remaining')}"
            )
            return
        super().on_lambda(inv)

    def on_lifecycle(self, kind: str, payload: Any) -> None:
        if kind == "state" and payload.state in ("Terminating:Wait", "Terminating:Retained"):
            self.say(f"  ASG  {payload.instance_id} {payload.state}")
        elif kind == "terminated" or kind == "event" or kind == "heartbeat":
            super().on_lifecycle(kind, payload)


def _quiet_logs() -> None:
    """The Lambda's JSON log lines stay out of the story (the sandbox's Lambda shares the
    process, and its logger may have been made before the function's environment was set)."""
    from drain_hook.observability import logger

    logger.setLevel("ERROR")


def _world(sb: Sandbox, instances: int = 3) -> str:
    asg = sb.add_cluster(CLUSTER, instances=instances, heartbeat_timeout=1200)
    for family in ("web", "batch"):
        sb.register_task_definition(family)
    sb.create_service(CLUSTER, "web", "web", 2 * instances, minimum_healthy_percent=50)
    sb.settle()
    return asg


def _watch(sb: Sandbox, out: ScenarioPrinter, quiet: bool) -> None:
    if not quiet:
        sb.sim.listeners.append(out.on_ecs)
        sb.runtime.listeners.append(out.on_lambda)
        sb.listeners.append(out.on_lifecycle)


def _summary(rows: list[tuple[str, str]], ok: bool, wall0: float) -> int:
    print()
    print("summary")
    for name, value in rows:
        print(f"  {name:<20}{value}")
    print(f"  {'wall time':<20}{time.monotonic() - wall0:.1f}s")
    print("RESULT", "OK" if ok else "FAILED")
    return 0 if ok else 1


def lose_lifecycle_event(seed: int, quiet: bool) -> int:
    wall0 = time.monotonic()
    with Sandbox(seed=seed, lambda_env=QUIET) as sb:
        _quiet_logs()
        out = ScenarioPrinter(sb)
        asg = _world(sb)
        sb.deploy()
        sb.lose_lifecycle_events(1.0)  # Auto Scaling's events are best effort: this one is lost
        print(
            f"demo --lose-lifecycle-event: cluster '{CLUSTER}', group '{asg}' of 3 instances; "
            "Auto Scaling's lifecycle event for the scale-in is lost; the sweep runs every 2 min"
        )
        _watch(sb, out, quiet)
        out.offset = sb.clock.elapsed()
        [victim] = sb.scale_in_candidates(asg, 1)
        out.say(f"scale-in: {asg} desired 3 -> 2 ({victim}); its lifecycle event is never sent")
        sb.scale_in(asg, 2)
        report = sb.run()
        [action] = report.lifecycle_actions
        swept = [
            i.result
            for i in sb.runtime.invocations
            if isinstance(i.result, dict) and victim in (i.result.get("sent") or [])
        ]
        held = (action.ended_at - action.started_at).total_seconds() if action.ended_at else 0
        ok = (
            not action.emitted
            and bool(swept)
            and action.ended_by == "complete"
            and not report.lost_tasks
        )
        return _summary(
            [
                ("lifecycle event", "lost (never sent)" if not action.emitted else "sent"),
                ("sweep", f"sent {victim} to the intake queue" if swept else "did not find it"),
                ("lifecycle action", f"{action.result} by {action.ended_by} after {held:.0f}s"),
                ("hook timeout", f"{action.heartbeat_timeout}s (not reached)"),
                ("lost tasks", str(len(report.lost_tasks))),
            ],
            ok,
            wall0,
        )


def spot_interruption(seed: int, quiet: bool) -> int:
    wall0 = time.monotonic()
    # A minute's stop grace: the deadline policy stops what is left a minute before EC2 does,
    # and a task (10 s of deregistration, about 20 s to stop) is stopped well before then.
    timings = Timings(deactivate_seconds=10, stop_seconds=20)
    env = {**QUIET, "DEADLINE_STOP_GRACE_SECONDS": "60"}
    with Sandbox(seed=seed, lambda_env=env, timings=timings) as sb:
        _quiet_logs()
        out = ScenarioPrinter(sb)
        asg = _world(sb)
        [victim] = sb.scale_in_candidates(asg, 1)
        batch = sb.run_standalone(CLUSTER, "batch", victim)  # never ends by itself
        sb.settle()
        sb.deploy()
        sb.rebalance_capacity(asg)
        # EC2 marks the Spot request at the notice (an UNCONFIRMED answer, not the sandbox's
        # default: docs/aws-contract.md); the Lambda believes a warning only with that mark.
        sb.spot.options.mark_request = True
        sb.make_spot(victim)
        print(
            f"demo --spot-interruption: cluster '{CLUSTER}', group '{asg}' of 3 instances "
            "(Capacity Rebalancing on); "
            f"{victim} is a Spot instance running service tasks and a standalone batch task; "
            "EC2 sends its interruption warning and takes it two minutes later"
        )
        _watch(sb, out, quiet)
        draining: list[datetime] = []
        sb.sim.listeners.append(
            lambda ev: (
                draining.append(ev.at)
                if ev.kind == "instance_draining" and ev.details.get("instance") == victim
                else None
            )
        )
        out.offset = sb.clock.elapsed()
        notice = sb.interrupt_spot(victim)
        out.say(f"EC2 Spot Instance Interruption Warning for {victim}: interrupted at +120s")
        sb.advance(notice.interrupt_at + timedelta(seconds=30))
        report = sb.run()
        [action] = report.lifecycle_actions
        task = sb.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[batch])["tasks"][0]

        def since(at: datetime | None) -> str:
            return "-" if at is None else f"+{(at - notice.noticed_at).total_seconds():.1f}s"

        drained_at = draining[0] if draining else None
        ok = (
            drained_at is not None
            and (drained_at - notice.noticed_at).total_seconds() <= 5
            and action.ended_by == "complete"
            and action.ended_at is not None
            and action.ended_at <= notice.interrupt_at
            and not report.lost_tasks
        )
        return _summary(
            [
                ("DRAINING", f"{since(drained_at)} after the warning"),
                ("hook's action", f"began {since(action.started_at)}"),
                (
                    "completed",
                    f"{since(action.ended_at)} ({action.result} by {action.ended_by}); "
                    "EC2 interrupts at +120.0s",
                ),
                ("batch task", f"{task['lastStatus']} ({task.get('stoppedReason', '')})"),
                ("lost tasks", str(len(report.lost_tasks))),
            ],
            ok,
            wall0,
        )


def retain_on_failure(seed: int, quiet: bool) -> int:
    wall0 = time.monotonic()
    env = {
        **QUIET,
        "ON_DRAIN_FAILURE": "retain",
        "AGENT_DISCONNECTED_GRACE_SECONDS": "300",
        "POLL_INTERVAL_FIRST_SECONDS": "60",
        "POLL_INTERVAL_MAX_SECONDS": "120",
    }
    with Sandbox(seed=seed, lambda_env=env) as sb:
        _quiet_logs()
        out = ScenarioPrinter(sb)
        asg = _world(sb)
        [victim] = sb.scale_in_candidates(asg, 1)
        batch = sb.run_standalone(CLUSTER, "batch", victim)
        sb.settle()
        sb.deploy()
        sb.retain_on_abandon(asg)
        print(
            f"demo --retain-on-failure: cluster '{CLUSTER}', group '{asg}' (instance lifecycle "
            "policy: TerminateHookAbandon=retain), ON_DRAIN_FAILURE=retain, "
            "AGENT_DISCONNECTED_GRACE_SECONDS=300; the ECS agent of the instance scaled in is "
            "gone, so its batch task can't stop"
        )
        _watch(sb, out, quiet)
        out.offset = sb.clock.elapsed()
        out.say(f"the ECS agent on {victim} disconnects")
        sb.disconnect_agent(victim)
        out.say(f"scale-in: {asg} desired 3 -> 2 ({victim})")
        sb.scale_in(asg, 2)
        report = sb.run()
        [action] = report.lifecycle_actions
        state = sb.lifecycle_state(victim)
        task = sb.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[batch])["tasks"][0]
        ok = (
            action.result == "ABANDON"
            and state == "Terminating:Retained"
            and task["lastStatus"] == "RUNNING"
            and batch not in report.lost_tasks
        )
        return _summary(
            [
                ("lifecycle action", f"{action.result} by {action.ended_by}"),
                ("instance", f"{victim} {state}"),
                ("batch task", f"{task['lastStatus']} on the retained instance"),
                (
                    "to finish it",
                    "aws autoscaling terminate-instance-in-auto-scaling-group --instance-id "
                    f"{victim} --no-should-decrement-desired-capacity",
                ),
            ],
            ok,
            wall0,
        )


SCENARIOS: dict[str, Callable[[int, bool], int]] = {
    "lose_lifecycle_event": lose_lifecycle_event,
    "spot_interruption": spot_interruption,
    "retain_on_failure": retain_on_failure,
}
