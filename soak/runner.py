"""Build one scenario in the sandbox, run it on virtual time, check it.

The order of a run: cluster, services, warm pool and other hooks; services settle; standalone
tasks start; the stack is deployed (the synthesized rules, the real Lambda with the scenario's
tunables, the real state machine with the matching TimeoutSeconds); delivery knobs and fault
rules are set; then, from t0, the scale-ins, agent outages, replays and fault windows happen on
their virtual times and the sandbox runs until no drain is in flight. The records go to
`soak.invariants`.
"""

from __future__ import annotations

import contextlib
import io
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from moto.moto_api._internal import mock_random

from local_aws import autoscaling
from local_aws.ecs_events import EventDelivery
from local_aws.ecs_sim import AgentFlapping, EcsOptions, SimEvent
from local_aws.faults import FaultKind
from local_aws.sandbox import HANDLER, HOOK_NAME, Sandbox
from local_aws.spot import NOTICE_SECONDS as SPOT_NOTICE_SECONDS
from local_aws.spot import SpotOptions
from soak.deployment import definition_for, tunables_from_env
from soak.invariants import Violation, check
from soak.records import LIFECYCLE_DETAIL_TYPE, Recorder, RunData
from soak.scenario import ScaleInStep, Scenario, SpotSpec

CLUSTER = "soak"
ASG = f"{CLUSTER}-asg"
STANDALONE_FAMILY = "batch"
MAX_VIRTUAL_SECONDS = 72 * 3600  # beyond the 48 h global timeout: a hold can't last longer
MANAGED_DRAINING_POLL_SECONDS = 300
# The Lambda's own log level in the soak (not a drain tunable): its warnings are expected here.
LOG_LEVEL = {"POWERTOOLS_LOG_LEVEL": "CRITICAL"}


@dataclass
class Outcome:
    scenario: Scenario
    data: RunData
    violations: list[Violation]
    excused: list[str] = field(default_factory=list)  # "kind: why" of each excused action

    @property
    def ok(self) -> bool:
        return not self.violations


def replay_command(seed: int, profile: str) -> str:
    return f"python -m soak replay --seed {seed} --profile {profile} --verbose"


def run_scenario(
    scenario: Scenario, log: Callable[[str], None] | None = None, *, handler: str = HANDLER
) -> Outcome:
    """Run one scenario and check every invariant on its records. ``handler``: the Lambda's
    handler (tests give a broken one to see the invariants catch it)."""
    say = log or (lambda _line: None)
    tunables = tunables_from_env(scenario.env)
    ecs = EcsOptions(
        agent_flapping=AgentFlapping(*scenario.flapping) if scenario.flapping else None,
        events=EventDelivery(
            duplicate_probability=scenario.delivery.ecs_duplicate,
            max_delay_seconds=scenario.delivery.ecs_max_delay,
            loss_probability=scenario.delivery.ecs_loss,
        ),
    )
    wall0 = time.monotonic()
    with (
        _quiet(log is None),
        Sandbox(
            seed=scenario.seed,
            # Every tunable, defaults included, so the Lambda runs exactly what the checks assume.
            lambda_env={**tunables.environ(), **LOG_LEVEL},
            handler=handler,
            definition=definition_for(tunables, ASG, HOOK_NAME),
            ecs=ecs,
        ) as sb,
    ):
        mock_random.seed(scenario.seed)  # moto's instance and task ids: a replay shows the same
        # moto's ASL interpreter draws Retry jitter (JitterStrategy FULL) from the global random.
        random.seed(f"soak/jitter/{scenario.seed}")
        daemons = {s.name for s in scenario.services if s.daemon}
        recorder = Recorder(sb, CLUSTER, daemons)
        if log is not None:
            _narrate(sb, say)
        _build(sb, scenario, say)
        start = sb.clock.now()
        _schedule(sb, scenario, say)
        last = max(
            [s.at for s in scenario.scale_ins]
            + list(scenario.delivery.replays)
            + [scenario.warm_pool.shrink_at or 0.0 if scenario.warm_pool else 0.0]
            # EC2 takes a Spot instance two minutes after its notice (a timer, not a drain).
            + [s.at + SPOT_NOTICE_SECONDS + 1 for s in scenario.spot]
        )
        sb.advance(start + timedelta(seconds=last))
        sb.run(max_virtual_seconds=MAX_VIRTUAL_SECONDS)
        data = recorder.collect(start, time.monotonic() - wall0)
    violations, excused = check(scenario, tunables, data)
    return Outcome(scenario, data, violations, excused)


NARRATED = ("agent_disconnected", "agent_connected", "instance_draining", "task_lost")


def _narrate(sb: Sandbox, say: Callable[[str], None]) -> None:
    """A replay's log: agents, DRAINING, lost tasks, and how each lifecycle action ended."""

    def on_ecs(event: SimEvent) -> None:
        if event.kind in NARRATED:
            what = event.details.get("instance") or event.details.get("task", "")
            by = f" ({event.details['by']})" if "by" in event.details else ""
            say(f"{event.at:%H:%M:%S} {event.kind} {what}{by}")

    def on_lifecycle(kind: str, payload: Any) -> None:
        if kind == "action_ended":
            say(
                f"{payload.ended_at:%H:%M:%S} lifecycle action of {payload.instance_id} on "
                f"{payload.hook_name} ended by {payload.ended_by}"
            )

    sb.sim.listeners.append(on_ecs)
    sb.listeners.append(on_lifecycle)


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Keep what moto and the Lambda print (EMF metrics, interpreter warnings) off the
    summary unless a replay asks for the whole story."""
    if not quiet:
        yield
        return
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def _build(sb: Sandbox, scenario: Scenario, say: Callable[[str], None]) -> None:
    sb.add_cluster(
        CLUSTER, instances=scenario.instances, heartbeat_timeout=scenario.heartbeat_timeout
    )
    for service in scenario.services:
        sb.register_task_definition(service.name, cpu=service.cpu, memory=service.memory)
        sb.create_service(
            CLUSTER,
            service.name,
            service.name,
            service.desired,
            minimum_healthy_percent=service.minimum_healthy_percent,
            maximum_percent=service.maximum_percent,
            daemon=service.daemon,
        )
    sb.register_task_definition(STANDALONE_FAMILY)
    if scenario.warm_pool is not None:
        pool = scenario.warm_pool
        sb.put_warm_pool(
            ASG,
            min_size=pool.min_size,
            max_group_prepared_capacity=scenario.instances + pool.extra_prepared,
            pool_state=pool.pool_state,
            reuse_on_scale_in=pool.reuse_on_scale_in,
        )
    for hook in scenario.other_hooks:
        if hook == "ecs_managed_draining":
            # Polls every 5 min (the sandbox's default is 30 s, an assumption either way): a
            # hold of up to 48 h stays affordable.
            sb.add_ecs_managed_draining(ASG, poll_seconds=MANAGED_DRAINING_POLL_SECONDS)
        else:
            sb.add_cdk_drain_hook(ASG, drain_seconds=scenario.cdk_drain_seconds)
    sb.settle()
    targets, others = _targets(sb, scenario)
    for spec in scenario.standalone:
        pool = targets if spec.target or not others else others
        instance = pool[spec.index % len(pool)]
        try:
            sb.run_standalone(CLUSTER, STANDALONE_FAMILY, instance, exits_after=spec.lifetime)
        except RuntimeError as error:  # its agent is away (flapping): ECS would refuse too
            say(f"standalone task not started on {instance}: {error}")
    sb.settle()
    sb.deploy([ASG])
    if scenario.lifecycle_event_loss:
        sb.lose_lifecycle_events(scenario.lifecycle_event_loss)
    if scenario.retain_policy:
        sb.retain_on_abandon(ASG)
    market = scenario.spot_market
    if market.group_termination_after is not None:
        sb.rebalance_capacity(ASG)  # only a group with Capacity Rebalancing acts before EC2
    sb.spot.options = SpotOptions(
        warning_loss_probability=market.warning_loss,
        mark_request=market.mark_request,
        group_termination_after_seconds=market.group_termination_after,
    )
    for instance in sorted({_spot_instance(sb, scenario, spec) for spec in scenario.spot}):
        sb.make_spot(instance)
    delivery = scenario.delivery
    sb.bus.duplicate_probability = delivery.eventbridge_duplicate
    sb.runtime.async_duplicate_probability = delivery.lambda_async_duplicate
    if delivery.states_loss:
        sb.lose_events({"source": ["aws.states"]}, delivery.states_loss)
    for fault in scenario.faults:
        kind = cast(FaultKind, fault.kind)
        options: dict[str, Any] = {
            "probability": fault.probability,
            "error": fault.error,
            "max_count": fault.max_count,
            "delay_seconds": fault.delay_seconds,
        }
        if fault.start is not None:  # an outage: the rule holds for a window
            sb.add_fault_window(fault.operation, kind, fault.start, fault.end, **options)
        else:
            sb.add_fault(fault.operation, kind, **options)
    say(
        f"built: {scenario.instances} instances, {len(scenario.services)} services, "
        f"{len(scenario.standalone)} standalone tasks; targets {targets}"
    )


def _spot_instance(sb: Sandbox, scenario: Scenario, spec: SpotSpec) -> str:
    targets, others = _targets(sb, scenario)
    pool = targets if spec.target or not others else others
    return pool[spec.index % len(pool)]


def _targets(sb: Sandbox, scenario: Scenario) -> tuple[list[str], list[str]]:
    """The instances the scale-ins will remove (oldest InService first) and the others."""
    targets = sb.scale_in_candidates(ASG, scenario.removed)
    others = [i for i in sb.group_instances(ASG) if i not in targets]
    return targets, others


def _schedule(sb: Sandbox, scenario: Scenario, say: Callable[[str], None]) -> None:
    """Put every timed happening of the scenario on the sandbox's timers, from now (t0)."""
    targets, others = _targets(sb, scenario)
    delivery = scenario.delivery
    if delivery.lifecycle_delayed:
        sb.delay_events(
            {"detail-type": [LIFECYCLE_DETAIL_TYPE]},
            seconds=delivery.lifecycle_delay,
            count=delivery.lifecycle_delayed,
        )

    for step in scenario.scale_ins:

        def scale_in(step: ScaleInStep = step) -> None:
            if step.kind == "desired":
                group = sb.client("autoscaling").describe_auto_scaling_groups(
                    AutoScalingGroupNames=[ASG]
                )["AutoScalingGroups"][0]
                desired = max(0, group["DesiredCapacity"] - step.count)
                say(f"{sb.clock.now():%H:%M:%S} scale-in: desired capacity -> {desired}")
                sb.scale_in(ASG, desired)
                return
            for instance in sb.scale_in_candidates(ASG, step.count):
                say(
                    f"{sb.clock.now():%H:%M:%S} TerminateInstanceInAutoScalingGroup {instance} "
                    f"(decrement {step.decrement})"
                )
                sb.terminate(instance, decrement=step.decrement)

        sb.timers.call_later(step.at, scale_in, name="scale-in")

    spot_instances = {id(spec): _spot_instance(sb, scenario, spec) for spec in scenario.spot}
    for spec in scenario.spot:

        def interrupt(instance: str = spot_instances[id(spec)], action: str = spec.action) -> None:
            if sb.lifecycle_state(instance) is None:
                return  # already gone: EC2 has nothing to interrupt
            say(f"{sb.clock.now():%H:%M:%S} Spot interruption notice for {instance} ({action})")
            sb.interrupt_spot(instance, action)

        sb.timers.call_later(spec.at, interrupt, name="spot interruption")

    for outage in scenario.agent_outages:
        pool = targets if outage.target or not others else others
        instance = pool[outage.index % len(pool)]

        def disconnect(instance: str = instance, duration: float | None = outage.duration) -> None:
            say(f"{sb.clock.now():%H:%M:%S} agent of {instance} disconnects for {duration} s")
            sb.disconnect_agent(instance)
            if duration is not None:
                sb.timers.call_later(duration, lambda: sb.reconnect_agent(instance))

        sb.timers.call_later(outage.at, disconnect, name="agent outage")

    for at in delivery.replays:

        def replay() -> None:
            for action in autoscaling.lifecycle_actions(region=sb.region):
                if action.hook_name == HOOK_NAME and action.emitted:
                    say(f"{sb.clock.now():%H:%M:%S} replay lifecycle event of {action.instance_id}")
                    sb.put_event(dict(action.event))

        sb.timers.call_later(at, replay, name="replay")

    if scenario.warm_pool is not None and scenario.warm_pool.shrink_at is not None:
        pool = scenario.warm_pool

        def shrink() -> None:
            prepared = max(0, scenario.instances + pool.extra_prepared - 2)
            say(f"{sb.clock.now():%H:%M:%S} warm pool prepared capacity -> {prepared}")
            sb.put_warm_pool(
                ASG,
                min_size=min(pool.min_size, prepared),
                max_group_prepared_capacity=prepared,
                pool_state=pool.pool_state,
                reuse_on_scale_in=pool.reuse_on_scale_in,
            )

        sb.timers.call_later(pool.shrink_at, shrink, name="warm pool shrink")
