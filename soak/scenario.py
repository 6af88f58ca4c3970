"""Seeded scenarios for the soak: one `random.Random(seed)` draws everything, so a seed (and the
profile) is the whole scenario and `python -m soak replay --seed N` rebuilds it exactly.

A scenario is plain data (frozen dataclasses): the cluster and its services, standalone tasks,
the scale-ins, the Lambda's tunables and the hook's heartbeat timeout, delivery faults (duplicate,
late and lost events), agent outages and flapping, warm pools and other termination hooks, and
fault rules on every API the Lambda and the state machine call. `soak.runner` builds it in the
sandbox; `soak.invariants` checks the run.

What is drawn, and within which bounds (the reasons are in docs/soak.md):

- 2..30 instances (most runs small, some large); 1..n-1 of them removed, at once or staggered
  over up to 20 minutes, by SetDesiredCapacity or TerminateInstanceInAutoScalingGroup (with or
  without decrementing the desired capacity: a replacement joins the cluster).
- Replica services with random desired counts and valid deployment configurations
  (DeploymentConfiguration API reference: minimumHealthyPercent 0..100, maximumPercent
  100..200, maximum above minimum),
  daemon services, standalone tasks on the instances that will be removed and on others, with
  lifetimes from a minute to forever.
- Every tunable of `drain_hook.settings.Tunables` within its bounds (validated by `Tunables`
  itself), and a heartbeat timeout the CDK app accepts for those tunables
  (`soak.deployment.heartbeat_bounds`).
- Delivery: EventBridge duplicates and lifecycle events late by up to the heartbeat timeout less
  the Lambda's own async retries, Lambda async duplicates, ECS events duplicated, late
  (reordered) and lost, Step Functions status events lost, old lifecycle events replayed late.
- Agents: disconnects on chosen instances (shorter and longer than the agent grace, or for
  good) and seeded flapping ("several times per hour").
- Faults: throttle / server_error / delay on the Lambda's ecs:, autoscaling: and
  stepfunctions: calls, lambda_throttle / lambda_service_error / function_error /
  async_invoke_error on the function, task_error and throttle / server_error on the state
  machine's own calls, at random rates; in some scenarios an outage (a rule at probability 1
  for a window) during which the Lambda fails past every retry.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from local_aws.sandbox import FUNCTION_NAME
from soak.deployment import heartbeat_bounds, tunables_from_env

Profile = Literal["full", "fast"]
PROFILES: tuple[Profile, ...] = ("full", "fast")

FUNCTION = FUNCTION_NAME

# Every AWS operation the drain Lambda calls (lambda/drain_hook/adapters/).
LAMBDA_OPERATIONS = (
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLifecycleHooks",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:RecordLifecycleActionHeartbeat",
    "autoscaling:CompleteLifecycleAction",
    "ecs:ListContainerInstances",
    "ecs:DescribeContainerInstances",
    "ecs:UpdateContainerInstancesState",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:DescribeServices",
    "ecs:StopTask",
    "ecs:PutAttributes",
    "ecs:DeleteAttributes",
    "stepfunctions:StartExecution",
    "stepfunctions:DescribeExecution",
)
LAMBDA_WILDCARDS = ("ecs:*", "autoscaling:*", "stepfunctions:*")
# The state machine's own calls (infra/state_machine/drain_loop.asl.json): its lambda:invoke
# and its aws-sdk heartbeat while polls fail.
STATE_MACHINE_OPERATIONS = (
    "states:lambda:Invoke",
    "states:autoscaling:RecordLifecycleActionHeartbeat",
)
# Error names Step Functions reports for a failed lambda:invoke (SFN DG "Handling errors",
# "Invoke an AWS Lambda function with Step Functions") and for an aws-sdk call it could not make.
INVOKE_TASK_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
    "States.TaskFailed",
)
SDK_TASK_ERRORS = ("AutoScaling.AutoScalingException", "States.TaskFailed")
# A function error's errorType: the handler crashed, timed out, or ran out of memory
# (Lambda DG "Lambda function errors"); none is one of the product's permanent error names.
FUNCTION_ERRORS = ("Exception", "Sandbox.Timedout", "Runtime.ExitError")


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    desired: int  # 0 for a daemon service
    minimum_healthy_percent: int
    maximum_percent: int
    daemon: bool = False
    cpu: int = 256
    memory: int = 512


@dataclass(frozen=True)
class StandaloneSpec:
    target: bool  # on an instance the scale-ins remove (else on one that stays)
    index: int  # which one of those, modulo their number
    lifetime: float | None  # seconds from start until it exits by itself; None: forever


@dataclass(frozen=True)
class ScaleInStep:
    at: float  # seconds after the start of the run
    kind: Literal["desired", "terminate"]
    count: int
    decrement: bool = True  # terminate only: False launches a replacement


@dataclass(frozen=True)
class AgentOutage:
    target: bool
    index: int
    at: float
    duration: float | None  # None: never reconnects


@dataclass(frozen=True)
class FaultSpec:
    operation: str
    kind: str
    probability: float
    error: str | None = None
    max_count: int | None = None
    delay_seconds: float = 1.0
    start: float | None = None  # a window (an outage): from start to end seconds after t0
    end: float | None = None

    @property
    def outage(self) -> bool:
        return self.start is not None


@dataclass(frozen=True)
class DeliverySpec:
    eventbridge_duplicate: float = 0.0
    lifecycle_delay: float = 0.0  # seconds late for the first `lifecycle_delayed` events
    lifecycle_delayed: int = 0
    lambda_async_duplicate: float = 0.0
    ecs_duplicate: float = 0.0
    ecs_max_delay: float = 0.0
    ecs_loss: float = 0.0
    states_loss: float = 0.0
    replays: tuple[
        float, ...
    ] = ()  # seconds after t0 at which every lifecycle event so far is replayed


@dataclass(frozen=True)
class WarmPoolSpec:
    min_size: int
    extra_prepared: int  # MaxGroupPreparedCapacity = instances + this
    pool_state: str
    reuse_on_scale_in: bool
    shrink_at: float | None  # seconds after t0 the pool's prepared capacity drops by 2


@dataclass(frozen=True)
class SpotSpec:
    """A Spot instance EC2 interrupts (local_aws/spot.py)."""

    target: bool  # one the scale-ins remove (else one that stays)
    index: int
    at: float  # seconds after t0 of EC2's interruption notice
    action: str = "terminate"  # or "stop"


@dataclass(frozen=True)
class SpotMarketSpec:
    """The UNCONFIRMED answers of the Spot model (local_aws.spot.SpotOptions) and the notice's
    best-effort loss."""

    # None: the group has no Capacity Rebalancing and waits for EC2 (documented); else it has
    # and starts the termination this long after the notice (UNCONFIRMED).
    group_termination_after: float | None = 60.0
    mark_request: bool = True
    warning_loss: float = 0.0


@dataclass(frozen=True)
class Scenario:
    seed: int
    profile: Profile
    instances: int
    heartbeat_timeout: int
    env: dict[str, str]  # the Lambda's tunables (environment variables)
    services: tuple[ServiceSpec, ...]
    standalone: tuple[StandaloneSpec, ...]
    scale_ins: tuple[ScaleInStep, ...]
    agent_outages: tuple[AgentOutage, ...] = ()
    flapping: tuple[float, float, float] | None = None  # per hour, min and max outage seconds
    delivery: DeliverySpec = field(default_factory=DeliverySpec)
    faults: tuple[FaultSpec, ...] = ()
    warm_pool: WarmPoolSpec | None = None
    other_hooks: tuple[str, ...] = ()  # "ecs_managed_draining", "cdk_drain_hook"
    cdk_drain_seconds: int = 300
    # Auto Scaling's lifecycle events lost at the source (best effort): the sweep's to find.
    lifecycle_event_loss: float = 0.0
    spot: tuple[SpotSpec, ...] = ()
    spot_market: SpotMarketSpec = field(default_factory=SpotMarketSpec)
    # The group's instance lifecycle policy retains on TerminateHookAbandon (with
    # ON_DRAIN_FAILURE=retain in env, a failed drain keeps its host).
    retain_policy: bool = False

    @property
    def removed(self) -> int:
        return sum(step.count for step in self.scale_ins)

    @property
    def has_outage(self) -> bool:
        return any(f.outage for f in self.faults)

    def describe(self) -> str:
        """One JSON document of the whole scenario (printed by a verbose replay)."""
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def generate(seed: int, profile: Profile = "full") -> Scenario:
    """The scenario of this seed: the same seed and profile always give the same scenario."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    rng = random.Random(f"soak/{profile}/{seed}")
    fast = profile == "fast"

    instances = _instances(rng, fast)
    removed = 1 + min(instances - 2, int(rng.betavariate(1.2, 3.5) * (instances - 1)))
    if fast:
        removed = min(removed, 3)
    scale_ins = _scale_ins(rng, removed, fast)
    env = _tunables(rng, fast, removed)
    tunables = tunables_from_env(env)
    low, high = heartbeat_bounds(tunables)
    heartbeat = _log_uniform_int(rng, low, min(high, max(low, 3 * low)))
    if rng.random() < 0.25:
        heartbeat = _log_uniform_int(rng, low, high)

    services = _services(rng, instances, fast)
    standalone = _standalone(rng, instances - removed, fast)
    outages = _agent_outages(rng, instances - removed, int(env["AGENT_DISCONNECTED_GRACE_SECONDS"]))
    flapping = None
    if rng.random() < 0.2:
        flapping = (rng.uniform(1, 12), rng.uniform(3, 20), rng.uniform(30, 300))

    delivery = _delivery(rng, heartbeat)
    faults = _faults(rng, int(env["ERROR_RELEASE_SECONDS"]))

    warm_pool = None
    if rng.random() < 0.15:
        warm_pool = WarmPoolSpec(
            min_size=rng.randint(0, 2),
            extra_prepared=rng.randint(1, 3),
            pool_state=rng.choice(("Stopped", "Running", "Hibernated")),
            reuse_on_scale_in=rng.random() < 0.4,
            shrink_at=rng.uniform(0, 600) if rng.random() < 0.5 else None,
        )
    other_hooks: list[str] = []
    if rng.random() < 0.12:
        other_hooks.append("ecs_managed_draining")
    if rng.random() < 0.1:
        other_hooks.append("cdk_drain_hook")

    # Drawn after everything above, so the scenarios of earlier seeds keep their other draws.
    loss, spot, market, retain_policy = _lost_events_spot_retain(rng, env)

    return Scenario(
        seed=seed,
        profile=profile,
        instances=instances,
        heartbeat_timeout=heartbeat,
        env=env,
        services=services,
        standalone=standalone,
        scale_ins=scale_ins,
        agent_outages=outages,
        flapping=flapping,
        delivery=delivery,
        faults=faults,
        warm_pool=warm_pool,
        other_hooks=tuple(other_hooks),
        cdk_drain_seconds=rng.choice((60, 120, 300, 600)),
        lifecycle_event_loss=loss,
        spot=spot,
        spot_market=market,
        retain_policy=retain_policy,
    )


def _lost_events_spot_retain(
    rng: random.Random, env: dict[str, str]
) -> tuple[float, tuple[SpotSpec, ...], SpotMarketSpec, bool]:
    """Lifecycle events lost at the source, Spot interruptions, ON_DRAIN_FAILURE=retain (with
    or without the group's retention policy). Changes `env` for retain."""
    loss = rng.choice((0.2, 0.5, 0.8, 1.0)) if rng.random() < 0.25 else 0.0
    spot: list[SpotSpec] = []
    market = SpotMarketSpec()
    if rng.random() < 0.2:
        for _ in range(rng.randint(1, 2)):
            spot.append(
                SpotSpec(
                    target=rng.random() < 0.6,
                    index=rng.randrange(100),
                    at=round(rng.uniform(0, 900), 3),
                    action="stop" if rng.random() < 0.2 else "terminate",
                )
            )
        market = SpotMarketSpec(
            group_termination_after=rng.choice((None, 0.0, 30.0, 60.0, 100.0)),
            mark_request=rng.random() < 0.9,
            warning_loss=0.3 if rng.random() < 0.1 else 0.0,
        )
    retain_policy = False
    if rng.random() < 0.2:
        env["ON_DRAIN_FAILURE"] = "retain"
        retain_policy = rng.random() < 0.8
    return loss, tuple(spot), market, retain_policy


# --- the parts ----------------------------------------------------------------------------


def _log_uniform_int(rng: random.Random, low: int, high: int) -> int:
    if high <= low:
        return low
    return min(high, max(low, round(math.exp(rng.uniform(math.log(low), math.log(high))))))


def _instances(rng: random.Random, fast: bool) -> int:
    if fast:
        return rng.randint(2, 6)
    roll = rng.random()
    if roll < 0.55:
        return rng.randint(2, 8)
    if roll < 0.85:
        return rng.randint(9, 16)
    return rng.randint(17, 30)


def _scale_ins(rng: random.Random, removed: int, fast: bool) -> tuple[ScaleInStep, ...]:
    staggered = removed > 1 and rng.random() < 0.45
    steps = rng.randint(2, min(removed, 4)) if staggered else 1
    counts = [1] * steps
    for _ in range(removed - steps):
        counts[rng.randrange(steps)] += 1
    horizon = 300 if fast else 1200
    times = sorted(rng.uniform(0, horizon) for _ in range(steps)) if staggered else [0.0]
    times[0] = 0.0
    out = []
    for at, count in zip(times, counts, strict=True):
        kind: Literal["desired", "terminate"] = "terminate" if rng.random() < 0.35 else "desired"
        decrement = kind == "desired" or rng.random() < 0.8
        out.append(ScaleInStep(at=round(at, 3), kind=kind, count=count, decrement=decrement))
    return tuple(out)


def _tunables(rng: random.Random, fast: bool, removed: int) -> dict[str, str]:
    """Every Tunables field within its bounds (lambda/drain_hook/settings.py)."""
    first = rng.choice((1, 2, 5, 10, 15, 30, 60, 120, 300))
    longest = max(first, rng.choice((5, 15, 30, 60, 120, 300, 600, 1800, 3600)))
    if rng.random() < 0.05:
        first, longest = 1, 1  # the lower edge: poll every second
    max_drain = rng.choice((60, 120, 300, 600, 900, 1800, 3600, 7200))
    if rng.random() < 0.05:
        max_drain = rng.choice((14_400, 43_200, 86_400))  # hours: the global timeout matters
    env = {
        "POLL_INTERVAL_FIRST_SECONDS": first,
        "POLL_INTERVAL_MAX_SECONDS": longest,
        "MAX_DRAIN_SECONDS": max_drain,
        "STANDALONE_TASKS": rng.choice(("wait", "stop")),
        "STANDALONE_GRACE_SECONDS": rng.choice((0, 30, 120, 300, 600, 1800)),
        "DAEMON_TASKS_HOLD_INSTANCE": rng.choice(("true", "false")),
        "AT_DEADLINE": rng.choice(("stop_tasks", "continue")),
        "DEADLINE_STOP_GRACE_SECONDS": rng.choice((0, 10, 45, 120, 600)),
        "AGENT_DISCONNECTED_GRACE_SECONDS": rng.choice((60, 120, 300, 600, 1800)),
        "ERROR_RELEASE_SECONDS": rng.choice((60, 180, 300, 900, 1800)),
        "POLLS_PER_EXECUTION": rng.choice((10, 12, 25, 100, 1000, 1199)),
        "RETRY_MODE": rng.choice(("standard", "adaptive")),
        "RETRY_MAX_ATTEMPTS": rng.choice((1, 2, 3, 5, 8, 20)),
    }
    # Keep a run affordable: a drain that lasts to its deadline polls about
    # MAX_DRAIN / POLL_INTERVAL_MAX times (heartbeats shorten waits further).
    budget = (150 if fast else 600) / max(1, removed)
    while (
        env["MAX_DRAIN_SECONDS"] > 60
        and env["MAX_DRAIN_SECONDS"] / env["POLL_INTERVAL_MAX_SECONDS"] > budget
    ):
        env["MAX_DRAIN_SECONDS"] = max(60, env["MAX_DRAIN_SECONDS"] // 2)
    while env["MAX_DRAIN_SECONDS"] / env["POLL_INTERVAL_MAX_SECONDS"] > budget:
        env["POLL_INTERVAL_MAX_SECONDS"] *= 2
    text = {key: str(value) for key, value in env.items()}
    tunables_from_env(text)  # the product's own validation: a bad draw fails here, loudly
    return text


def _services(rng: random.Random, instances: int, fast: bool) -> tuple[ServiceSpec, ...]:
    services = []
    for n in range(rng.randint(0 if rng.random() < 0.1 else 1, 3 if fast else 5)):
        minimum = rng.choice((0, 25, 50, 50, 75, 100, 100))
        maximum = rng.choice((100, 125, 150, 200, 200))
        if maximum <= minimum:
            maximum = 200 if minimum == 100 else 100
        cpu, memory = rng.choice(((128, 256), (256, 512), (256, 512), (512, 1024), (1024, 2048)))
        services.append(
            ServiceSpec(
                name=f"svc{n}",
                desired=rng.randint(0, max(1, int(instances * rng.uniform(0.3, 2.5)))),
                minimum_healthy_percent=minimum,
                maximum_percent=maximum,
                cpu=cpu,
                memory=memory,
            )
        )
    for n in range(1 if rng.random() < 0.35 else 0):
        services.append(
            ServiceSpec(
                name=f"daemon{n}",
                desired=0,
                minimum_healthy_percent=0,
                maximum_percent=100,
                daemon=True,
                cpu=128,
                memory=128,
            )
        )
    return tuple(services)


def _lifetime(rng: random.Random) -> float | None:
    roll = rng.random()
    if roll < 0.2:
        return None  # runs until stopped
    if roll < 0.6:
        return rng.uniform(60, 600)
    return rng.uniform(600, 5400)


def _standalone(rng: random.Random, others: int, fast: bool) -> tuple[StandaloneSpec, ...]:
    out = []
    for _ in range(rng.randint(0, 3 if fast else 6)):
        on_target = others == 0 or rng.random() < 0.7
        out.append(StandaloneSpec(on_target, rng.randrange(100), _lifetime(rng)))
    return tuple(out)


def _agent_outages(rng: random.Random, others: int, grace: int) -> tuple[AgentOutage, ...]:
    if rng.random() >= 0.25:
        return ()
    out = []
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        duration: float | None
        if roll < 0.4:
            duration = rng.uniform(5, 0.8 * grace)  # shorter than the grace
        elif roll < 0.8:
            duration = rng.uniform(1.2 * grace, 3 * grace)  # longer: the agent-lost rule
        else:
            duration = None
        on_target = others == 0 or rng.random() < 0.85
        out.append(AgentOutage(on_target, rng.randrange(100), rng.uniform(0, 900), duration))
    return tuple(out)


def _delivery(rng: random.Random, heartbeat: int) -> DeliverySpec:
    values: dict[str, Any] = {}
    if rng.random() < 0.3:
        values["eventbridge_duplicate"] = rng.uniform(0.05, 0.5)
    if rng.random() < 0.3:
        # Late, but early enough that a failed first round is taken again (the intake queue's
        # next receive, 150 s on) before the heartbeat timeout: nothing can hold the instance
        # before a first round. (Written for Lambda's two async retries; the seeds keep it.)
        values["lifecycle_delay"] = rng.uniform(1, max(1.0, min(0.9 * heartbeat, heartbeat - 240)))
        values["lifecycle_delayed"] = rng.randint(1, 3)
    if rng.random() < 0.3:
        values["lambda_async_duplicate"] = rng.uniform(0.05, 0.5)
    if rng.random() < 0.4:
        values["ecs_duplicate"] = rng.uniform(0, 0.3)
        values["ecs_max_delay"] = rng.uniform(0, 120)
        values["ecs_loss"] = rng.uniform(0, 0.3)
    if rng.random() < 0.3:
        values["states_loss"] = rng.uniform(0.1, 1.0)
    if rng.random() < 0.25:
        values["replays"] = tuple(sorted(round(rng.uniform(0, 3600), 3) for _ in range(2)))
    return DeliverySpec(**values)


def _probability(rng: random.Random, high: float = 0.5) -> float:
    return round(math.exp(rng.uniform(math.log(0.01), math.log(high))), 4)


def _faults(rng: random.Random, error_release: int) -> tuple[FaultSpec, ...]:
    out: list[FaultSpec] = []
    for _ in range(rng.choice((0, 0, 1, 2, 3, 4, 6))):
        group = rng.random()
        if group < 0.5:
            operation = rng.choice(LAMBDA_OPERATIONS + LAMBDA_WILDCARDS)
            kind = rng.choice(("throttle", "throttle", "server_error", "delay"))
            out.append(
                FaultSpec(operation, kind, _probability(rng), delay_seconds=rng.uniform(0.1, 5))
            )
        elif group < 0.8:
            kind = rng.choice(
                ("lambda_throttle", "lambda_service_error", "function_error", "async_invoke_error")
            )
            error = rng.choice(FUNCTION_ERRORS) if kind == "function_error" else None
            out.append(FaultSpec(f"lambda:{FUNCTION}", kind, _probability(rng, 0.3), error=error))
        else:
            operation = rng.choice(STATE_MACHINE_OPERATIONS)
            if operation.endswith("Invoke"):
                # The task's own error names, or the Invoke call itself throttled / failing.
                kind = rng.choice(("task_error", "task_error", "throttle", "server_error"))
                error = rng.choice(INVOKE_TASK_ERRORS) if kind == "task_error" else None
            else:
                kind = rng.choice(("task_error", "task_error", "throttle", "server_error"))
                error = rng.choice(SDK_TASK_ERRORS) if kind == "task_error" else None
            out.append(FaultSpec(operation, kind, _probability(rng, 0.3), error=error))
    if rng.random() < 0.2:
        out.append(_outage(rng, error_release))
    return tuple(out)


def _outage(rng: random.Random, error_release: int) -> FaultSpec:
    """A window in which a fault always fires: the Lambda fails past every retry."""
    operation, kind, error = rng.choice(
        (
            (f"lambda:{FUNCTION}", "function_error", "Exception"),
            (f"lambda:{FUNCTION}", "lambda_throttle", None),
            ("ecs:*", "server_error", None),
            ("autoscaling:*", "throttle", None),
            ("states:lambda:Invoke", "task_error", "Lambda.ServiceException"),
        )
    )
    start = rng.uniform(0, 900)
    roll = rng.random()
    if roll < 0.4:
        length: float | None = rng.uniform(30, 0.8 * error_release)  # the drain rides it out
    elif roll < 0.85:
        length = rng.uniform(1.3 * error_release, 3 * error_release + 600)  # errors release
    else:
        length = None  # for good
    end = None if length is None else round(start + length, 3)
    return FaultSpec(operation, kind, 1.0, error=error, start=round(start, 3), end=end)
