"""AWS API rate limits for the sandbox: token buckets per API action group, account and Region,
on the sandbox's virtual clock, answered the way each service answers a throttled call.

Sources (each bucket names its page in `BucketSpec.source`):

- ECS: Amazon ECS API Reference, "Request throttling for the Amazon ECS API". ECS uses the
  token bucket algorithm per account and Region; the bucket's maximum capacity is the burst
  rate, its refill rate the sustained rate; "API actions are grouped into categories. All API
  actions in a category share the same token bucket" (section "Request Token Bucket Sizes and
  Refill Rates"). Every category of that table is here (`ECS_CATEGORIES`), with its actions.
  A throttled call answers HTTP 400 ``ThrottlingException`` "Rate exceeded." (the page's own
  example). The table lists ``UpdateContainerInstancesStates``: the API's action is
  ``UpdateContainerInstancesState`` (a typo on the page; mapped to the same category). ECS
  actions the table does not list are not throttled here.
- Step Functions: developer guide "Step Functions service quotas": "Quotas related to API
  action throttling" (StartExecution, Standard: bucket 1,300 / refill 300 per second in US East
  (N. Virginia), US West (Oregon) and Europe (Ireland), 800 / 150 elsewhere) and its "Other
  quotas" table (DescribeExecution 300 / 15 and 250 / 10, StopExecution, ListExecutions, ...);
  "Quotas related to state throttling": StateTransition, Standard, 5,000 / 5,000 per second in
  those three Regions, 800 / 800 elsewhere. "New AWS accounts have reduced state transition
  quotas" (no figure given: pass your own `RateLimits(state_transitions=...)`). Older guides
  (awsdocs/aws-step-functions-developer-guide ``limits.md``, archived) gave StartExecution
  1,000 / 200 and 500 / 25 and StateTransition 5,000 / 1,000 and 800 / 400: the current page's
  figures are the defaults. A throttled API call answers HTTP 400 ``ThrottlingException``
  (Step Functions API Reference, "Common Errors"). A throttled state transition is delayed,
  not failed (the guide reports it as the ``ExecutionThrottled`` metric): the execution waits
  on the virtual clock for the token (`local_aws.stepfunctions`).
- EC2 Auto Scaling publishes no request-rate figures (user guide "Quotas for Amazon EC2 Auto
  Scaling" lists resource quotas only). ASSUMED here: one bucket shared by every Auto Scaling
  action of the account and Region, `AUTOSCALING_ASSUMED` (capacity 40, refill 10 per second),
  conservative (below ECS's cluster read bucket of 50 / 20). A throttled call answers HTTP 400
  ``Throttling`` "Rate exceeded" in the query protocol's XML error, which botocore's retry
  modes treat as throttling.
- Lambda concurrency (Lambda developer guide "Lambda function scaling", "Configuring reserved
  concurrency"): a function's ReservedConcurrentExecutions caps its runs; functions without a
  reservation share the account's concurrency (default 1,000 per Region) less what is
  reserved; each function scales by at most 1,000 execution environments every 10 seconds
  (`lambda_scaling`). Enforced by `local_aws.lambda_runtime` (TooManyRequestsException 429);
  asynchronous events throttled that way go back to Lambda's queue.

Scope: the buckets count the calls of the sessions `AccountLimiter.attach` marks (the drain
Lambda's, the state machine's own aws-sdk calls, `Sandbox.account_client`), i.e. the traffic
of the scenario. The sandbox's own set-up and inspection calls (`Sandbox.client`) and ECS's
internal work (the simulator acting on moto directly) do not consume tokens.

Time: a bucket refills by the sandbox's `VirtualClock`. Inside a sandbox, botocore's retry
back-off sleeps and adaptive mode's client-side rate limiter wait on that clock too
(`install_virtual_time`): the calling thread parks until the virtual clock reaches its wake-up
(the loop advances the clock in order, one parked thread woken at a time), so a throttled call
costs virtual time as it would cost real time in AWS. Threads that are not the sandbox's (a
test calling boto3 directly) cannot park: for them sleeps stay instant, as before. Each
Lambda execution environment has its own boto3 clients, so each has its
own retry quota and adaptive rate limiter, as separate Lambda containers do
(`local_aws.lambda_runtime.EnvironmentSession`).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import boto3

from local_aws.clock import Clock

ECS_PAGE = 'Amazon ECS API Reference, "Request throttling for the Amazon ECS API"'
SFN_PAGE = 'AWS Step Functions Developer Guide, "Step Functions service quotas"'
ASG_ASSUMPTION = (
    "ASSUMED: EC2 Auto Scaling publishes no request-rate figures "
    '(user guide "Quotas for Amazon EC2 Auto Scaling")'
)
# The Regions Step Functions gives its larger quotas ("Step Functions service quotas").
SFN_LARGE_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
ACCOUNT_CONCURRENCY_DEFAULT = 1000  # Lambda DG "Lambda function scaling"
UNRESERVED_CONCURRENCY_MIN = 100  # Lambda DG "Configuring reserved concurrency"

FAULT_URL = "http://fault-injected.invalid/"  # faults.py sends injected attempts here


@dataclass(frozen=True)
class BucketSpec:
    """A token bucket: ``capacity`` tokens (the burst rate), ``refill`` tokens per second (the
    sustained rate), and the documentation it comes from."""

    capacity: float
    refill: float
    source: str = ""

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill <= 0:
            raise ValueError("a bucket needs capacity >= 1 and refill > 0")


# ECS, "Request throttling for the Amazon ECS API", table "Request Token Bucket Sizes and Refill
# Rates": category -> (capacity, refill per second, actions).
ECS_CATEGORIES: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "Cluster modify actions": (
        20,
        1,
        (
            "CreateCluster",
            "DeleteCluster",
            "PutClusterCapacityProviders",
            "UpdateCluster",
            "UpdateClusterSettings",
        ),
    ),
    "Cluster read actions": (50, 20, ("DescribeClusters", "ListClusters")),
    "Task definition modify actions": (
        20,
        1,
        ("DeregisterTaskDefinition", "RegisterTaskDefinition"),
    ),
    "Task definition read actions": (
        50,
        20,
        ("DescribeTaskDefinition", "ListTaskDefinitions", "ListTaskDefinitionFamilies"),
    ),
    "Task definition deletion actions": (5, 1, ("DeleteTaskDefinitions",)),
    "Capacity provider modify actions": (
        10,
        1,
        ("CreateCapacityProvider", "DeleteCapacityProvider", "UpdateCapacityProvider"),
    ),
    "Capacity provider read actions": (50, 20, ("DescribeCapacityProviders",)),
    "Tag modify actions": (20, 10, ("TagResource", "UntagResource")),
    "Tag read actions": (50, 20, ("ListTagsForResource",)),
    "Setting modify actions": (
        10,
        1,
        ("DeleteAccountSetting", "PutAccountSetting", "PutAccountSettingDefault"),
    ),
    "Setting read actions": (50, 20, ("ListAccountSettings",)),
    "Cluster resource modify actions": (
        100,
        40,
        (
            "DeleteAttributes",
            "DeregisterContainerInstance",
            "ExecuteCommand",
            "PutAttributes",
            "RunTask",
            "StartTask",
            "StopTask",
            "UpdateContainerAgent",
            "UpdateContainerInstancesState",  # the page spells it "...States"
        ),
    ),
    "Cluster resource read actions": (
        100,
        20,
        (
            "DescribeContainerInstances",
            "DescribeTasks",
            "ListAttributes",
            "ListContainerInstances",
            "ListTasks",
        ),
    ),
    "Agent modify actions": (
        200,
        120,
        (
            "RegisterContainerInstance",
            "SubmitAttachmentStateChanges",
            "SubmitContainerStateChange",
            "SubmitTaskStateChange",
        ),
    ),
    "Service modify actions": (50, 5, ("CreateService", "DeleteService", "UpdateService")),
    "Service read actions": (100, 20, ("DescribeServices", "ListServices")),
    "Service deployment actions": (
        50,
        20,
        ("DescribeServiceDeployments", "ListServiceDeployments"),
    ),
    "Service revision actions": (50, 20, ("DescribeServiceRevisions",)),
    "Task protection actions": (200, 80, ("UpdateTaskProtection", "GetTaskProtection")),
    "Cluster service resource read actions": (10, 1, ("ListServicesByNamespace",)),
}

# Step Functions, "Step Functions service quotas": API name -> ((capacity, refill) in the three
# large Regions, (capacity, refill) elsewhere). StartExecution: the Standard column.
SFN_ACTIONS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "StartExecution": ((1300, 300), (800, 150)),
    "CreateActivity": ((100, 1), (100, 1)),
    "CreateStateMachine": ((100, 1), (100, 1)),
    "CreateStateMachineAlias": ((100, 1), (100, 1)),
    "DeleteActivity": ((100, 1), (100, 1)),
    "DeleteStateMachine": ((100, 1), (100, 1)),
    "DeleteStateMachineAlias": ((100, 1), (100, 1)),
    "DeleteStateMachineVersion": ((100, 1), (100, 1)),
    "DescribeActivity": ((200, 1), (200, 1)),
    "DescribeExecution": ((300, 15), (250, 10)),
    "DescribeMapRun": ((200, 1), (200, 1)),
    "DescribeStateMachine": ((200, 20), (200, 20)),
    "DescribeStateMachineAlias": ((200, 1), (200, 1)),
    "DescribeStateMachineForExecution": ((200, 1), (200, 1)),
    "GetActivityTask": ((3000, 500), (1500, 300)),
    "GetExecutionHistory": ((400, 20), (400, 20)),
    "ListActivities": ((100, 10), (100, 5)),
    "ListExecutions": ((200, 5), (100, 2)),
    "ListMapRuns": ((100, 1), (100, 1)),
    "ListStateMachineAliases": ((100, 1), (100, 1)),
    "ListStateMachines": ((100, 5), (100, 5)),
    "ListStateMachineVersions": ((100, 1), (100, 1)),
    "ListTagsForResource": ((100, 1), (100, 1)),
    "PublishStateMachineVersion": ((100, 1), (100, 1)),
    "RedriveExecution": ((1300, 300), (800, 150)),
    "SendTaskFailure": ((3000, 500), (1500, 300)),
    "SendTaskHeartbeat": ((3000, 500), (1500, 300)),
    "SendTaskSuccess": ((3000, 500), (1500, 300)),
    "StopExecution": ((1000, 200), (500, 25)),
    "TagResource": ((200, 1), (200, 1)),
    "TestState": ((50, 10), (50, 10)),
    "UntagResource": ((200, 1), (200, 1)),
    "UpdateMapRun": ((100, 1), (100, 1)),
    "UpdateStateMachine": ((100, 1), (100, 1)),
    "UpdateStateMachineAlias": ((100, 1), (100, 1)),
    "ValidateStateMachineDefinition": ((100, 1), (100, 1)),
}
SFN_STATE_TRANSITIONS = ((5000, 5000), (800, 800))  # Standard; Express: unlimited

AUTOSCALING_ASSUMED = BucketSpec(40, 10, ASG_ASSUMPTION)
LAMBDA_SCALING = BucketSpec(
    1000,
    100,
    'Lambda Developer Guide, "Lambda function scaling": 1,000 execution environments every 10 s',
)

# How each service answers a throttled call: (error code, HTTP status, message).
THROTTLE_ANSWERS = {
    "ecs": ("ThrottlingException", 400, "Rate exceeded."),
    "stepfunctions": ("ThrottlingException", 400, "Rate exceeded"),
    "autoscaling": ("Throttling", 400, "Rate exceeded"),
}


def _large(region: str) -> bool:
    return region in SFN_LARGE_REGIONS


@dataclass(frozen=True)
class RateLimits:
    """Which throttles the sandbox applies, with the documented figures by default.

    ``ecs`` / ``stepfunctions``: apply the documented buckets (``ecs_overrides`` and
    ``stepfunctions_overrides`` replace a category's or an action's figures, e.g. to explore a
    range). ``autoscaling``: the assumed bucket, or None for none. ``state_transitions``: None
    takes the documented Standard figure for the Region. ``lambda_account_concurrency``: the
    Region's concurrency limit shared by functions without a reservation. ``lambda_scaling``:
    new execution environments per function (None: unlimited). ``call_latency_seconds``: how
    long each HTTP attempt takes on the virtual clock (0: calls are instant; retries'
    back-offs still take their time).
    """

    ecs: bool = True
    ecs_overrides: Mapping[str, BucketSpec] = field(default_factory=dict)
    stepfunctions: bool = True
    stepfunctions_overrides: Mapping[str, BucketSpec] = field(default_factory=dict)
    autoscaling: BucketSpec | None = AUTOSCALING_ASSUMED
    state_transitions: BucketSpec | None = None
    lambda_account_concurrency: int = ACCOUNT_CONCURRENCY_DEFAULT
    lambda_scaling: BucketSpec | None = LAMBDA_SCALING
    call_latency_seconds: float = 0.0

    def __post_init__(self) -> None:
        unknown = set(self.ecs_overrides) - set(ECS_CATEGORIES)
        if unknown:
            raise ValueError(f"not an ECS throttling category: {sorted(unknown)}")
        unknown = set(self.stepfunctions_overrides) - set(SFN_ACTIONS)
        if unknown:
            raise ValueError(f"not a throttled Step Functions action: {sorted(unknown)}")
        if self.lambda_account_concurrency < 1:
            raise ValueError("lambda_account_concurrency must be >= 1")
        if self.call_latency_seconds < 0:
            raise ValueError("call_latency_seconds must be >= 0")

    @classmethod
    def off(cls) -> RateLimits:
        """No API buckets (Lambda concurrency still applies: it is not a rate)."""
        return cls(ecs=False, stepfunctions=False, autoscaling=None, lambda_scaling=None)

    def with_ecs(self, category: str, capacity: float, refill: float) -> RateLimits:
        """These figures for one ECS category (e.g. to run a burst over a range)."""
        spec = BucketSpec(capacity, refill, f"override of {category!r}")
        return replace(self, ecs_overrides={**self.ecs_overrides, category: spec})

    def buckets(self, region: str) -> dict[str, BucketSpec]:
        """Bucket name -> spec for a Region (names: "ecs:<category>", "stepfunctions:<Action>",
        "autoscaling:*", "states:StateTransition")."""
        out: dict[str, BucketSpec] = {}
        if self.ecs:
            for category, (capacity, refill, _) in ECS_CATEGORIES.items():
                out[f"ecs:{category}"] = self.ecs_overrides.get(
                    category, BucketSpec(capacity, refill, ECS_PAGE)
                )
        if self.stepfunctions:
            for action, (large, small) in SFN_ACTIONS.items():
                capacity, refill = large if _large(region) else small
                out[f"stepfunctions:{action}"] = self.stepfunctions_overrides.get(
                    action, BucketSpec(capacity, refill, SFN_PAGE)
                )
        if self.autoscaling is not None:
            out["autoscaling:*"] = self.autoscaling
        transitions = self.state_transitions
        if transitions is None and self.stepfunctions:
            capacity, refill = SFN_STATE_TRANSITIONS[0 if _large(region) else 1]
            transitions = BucketSpec(capacity, refill, SFN_PAGE + ", state throttling")
        if transitions is not None:
            out["states:StateTransition"] = transitions
        return out


def bucket_name(service: str, operation: str) -> str | None:
    """The bucket an API call draws from (None: not throttled by the sandbox)."""
    if service == "ecs":
        for category, (_, _, actions) in ECS_CATEGORIES.items():
            if operation in actions:
                return f"ecs:{category}"
        return None
    if service == "stepfunctions":
        return f"stepfunctions:{operation}" if operation in SFN_ACTIONS else None
    if service == "autoscaling":
        return "autoscaling:*"
    return None


class TokenBucket:
    """A token bucket on a clock: full at the start, ``refill`` tokens a second up to
    ``capacity``; each admitted request takes one token."""

    def __init__(self, spec: BucketSpec, start: datetime) -> None:
        self.spec = spec
        self.tokens = float(spec.capacity)
        self.last = start

    def _refill(self, now: datetime) -> None:
        if now > self.last:  # never back in time
            gained = (now - self.last).total_seconds() * self.spec.refill
            self.tokens = min(float(self.spec.capacity), self.tokens + gained)
            self.last = now

    def take(self, now: datetime) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_seconds(self, now: datetime) -> float:
        """Seconds from ``now`` until a token is there (0 when one is)."""
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) / self.spec.refill)


class AccountLimiter:
    """The buckets of one account and Region, and what they admitted and refused."""

    def __init__(self, limits: RateLimits, clock: Clock, region: str) -> None:
        self.limits = limits
        self.clock = clock
        self.region = region
        self._lock = threading.Lock()
        now = clock.now()
        specs = limits.buckets(region)
        self.buckets = {name: TokenBucket(spec, now) for name, spec in specs.items()}
        self.admitted: Counter[str] = Counter()  # "ecs:DescribeTasks" -> attempts admitted
        self.throttled: Counter[str] = Counter()  # ... and refused
        self.delayed_transitions = 0
        self.transition_delay_seconds = 0.0

    def admit(self, service: str, operation: str) -> bool:
        """Take a token for this call; False when the account's bucket is empty (throttled)."""
        name = bucket_name(service, operation)
        bucket = self.buckets.get(name) if name else None
        key = f"{service}:{operation}"
        with self._lock:
            if bucket is not None and not bucket.take(self.clock.now()):
                self.throttled[key] += 1
                return False
            self.admitted[key] += 1
            return True

    def transition_wait(self) -> float:
        """Take a StateTransition token: 0, or the seconds to wait for the next token (then
        call again)."""
        bucket = self.buckets.get("states:StateTransition")
        if bucket is None:
            return 0.0
        with self._lock:
            now = self.clock.now()
            if bucket.take(now):
                return 0.0
            return max(bucket.wait_seconds(now), 1e-3)

    def note_transition_delay(self, seconds: float) -> None:
        with self._lock:
            self.delayed_transitions += 1
            self.transition_delay_seconds += seconds

    # --- which sessions are limited ----------------------------------------------------------

    def attach(self, session: boto3.session.Session, scope: str = "account") -> None:
        """Count this session's calls against the account's buckets."""
        session.events.register_first("before-send", _Tagger(self, scope))


class _Tagger:
    """Marks each HTTP attempt of a session as subject to an account's buckets."""

    def __init__(self, limiter: AccountLimiter, scope: str) -> None:
        self.limiter = limiter
        self.scope = scope

    def __call__(self, request: Any, **_: Any) -> None:
        request.__dict__["_sandbox_limiter"] = self.limiter


# --- the gate: in front of moto, after the client's own hooks ------------------------------

_installed = False
_latency: Callable[[float], bool] | None = None  # parks the caller (see install_virtual_time)


def _service_name(service_id: str) -> str:
    return {"auto-scaling": "autoscaling", "sfn": "stepfunctions"}.get(
        service_id.lower(), service_id.lower()
    )


def gate(event_name: str, request: Any) -> Any | None:
    """The throttled answer for this attempt, or None to let moto serve it."""
    limiter: AccountLimiter | None = request.__dict__.get("_sandbox_limiter")
    if limiter is None or request.url == FAULT_URL:
        return None  # not the scenario's traffic, or a fault already answered it
    _, service_id, operation = event_name.split(".", 2)
    service = _service_name(service_id)
    latency = limiter.limits.call_latency_seconds
    if latency > 0 and _latency is not None:
        _latency(latency)
    if limiter.admit(service, operation):
        return None
    from local_aws.faults import error_response

    default = ("ThrottlingException", 400, "Rate exceeded")
    code, status, message = THROTTLE_ANSWERS.get(service, default)
    request.url = FAULT_URL  # the answer is ours: moto must not serve this attempt too
    return error_response(service, status, code, message)


def install() -> None:
    """Put the gate in front of moto's request handler (idempotent; inert for untagged calls).

    Also makes adaptive retry mode's client-side limiter run before moto serves a request (its
    before-send handler is registered first), so its wait happens before the call, as in AWS.
    """
    global _installed
    if _installed:
        return
    from botocore.retries import adaptive
    from moto.core.botocore_stubber import BotocoreStubber

    original_call = BotocoreStubber.__call__

    def __call__(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if self.enabled:
            answer = gate(event_name, request)
            if answer is not None:
                return answer
        return original_call(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = __call__  # type: ignore[method-assign]

    original_register = adaptive.register_retry_handler

    def register_retry_handler(client: Any) -> Any:
        limiter = original_register(client)
        events = client.meta.events
        events.unregister("before-send", limiter.on_sending_request)
        events.register_first("before-send", limiter.on_sending_request)
        return limiter

    adaptive.register_retry_handler = register_retry_handler  # type: ignore[assignment]
    _installed = True


# --- time inside an invocation ------------------------------------------------------------


class VirtualBotoClock:
    """botocore.retries.bucket.Clock on the sandbox clock: adaptive mode measures send rates and
    refills its client-side bucket in virtual seconds, and waits by parking."""

    clock: Clock | None = None
    park: Callable[[float], bool] | None = None

    def __init__(self) -> None:
        pass

    def sleep(self, amount: float) -> None:
        park = VirtualBotoClock.park
        if park is not None:
            park(amount)

    def current_time(self) -> float:
        clock = VirtualBotoClock.clock
        if clock is None:
            import time

            return time.time()
        return clock.now().timestamp()


_saved_time: tuple[Any, ...] | None = None
_jitter: random.Random | None = None  # botocore's back-off jitter, seeded by the sandbox


def install_virtual_time(clock: Clock, park: Callable[[float], bool], seed: int = 0) -> None:
    """botocore waits on the sandbox clock until `uninstall_virtual_time`.

    ``park(seconds)`` parks the calling thread for that many virtual seconds and returns True,
    or returns False at once when the thread can't park (not a sandbox thread): then the wait
    is skipped, as the sandbox did before (instant back-off). The jitter of botocore's
    back-offs (standard, adaptive and legacy modes) is drawn from a ``random.Random`` seeded
    by ``seed``, so runs repeat.
    """
    global _saved_time, _latency, _jitter
    import botocore.retryhandler
    from botocore.retries import bucket, standard

    from local_aws import faults

    if _saved_time is None:
        _saved_time = (
            bucket.Clock,
            bucket.TokenBucket._acquire,
            standard.ExponentialBackoff.__init__,
            botocore.retryhandler.random,
        )
    _jitter = random.Random(f"botocore-jitter/{seed}")
    VirtualBotoClock.clock = clock
    VirtualBotoClock.park = park
    bucket.Clock = VirtualBotoClock  # type: ignore[misc, assignment]
    bucket.TokenBucket._acquire = _acquire_virtual  # type: ignore[method-assign]
    original_init = _saved_time[2]

    def backoff_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self._random is random.random and _jitter is not None:
            self._random = _jitter.random

    standard.ExponentialBackoff.__init__ = backoff_init  # type: ignore[method-assign]
    botocore.retryhandler.random = _jitter  # type: ignore[attr-defined]
    faults.use_sleeper(park)
    _latency = park


def uninstall_virtual_time() -> None:
    global _saved_time, _latency, _jitter
    import botocore.retryhandler
    from botocore.retries import bucket, standard

    from local_aws import faults

    if _saved_time is not None:
        (
            bucket.Clock,
            bucket.TokenBucket._acquire,
            standard.ExponentialBackoff.__init__,
            botocore.retryhandler.random,
        ) = _saved_time  # type: ignore[misc]
        _saved_time = None
    _jitter = None
    VirtualBotoClock.clock = None
    VirtualBotoClock.park = None
    faults.use_sleeper(None)
    _latency = None


def _acquire_virtual(self: Any, amount: int = 1, block: bool = True) -> bool:
    """TokenBucket._acquire that waits by parking on the virtual clock (the caller holds the
    bucket's condition: it is released while parked). A thread that can't park takes the
    token at once (instant, as before)."""
    from botocore.exceptions import CapacityNotAvailableError

    self._refill()
    if amount <= self._current_capacity:
        self._current_capacity -= amount
        return True
    if not block:
        raise CapacityNotAvailableError()
    park = VirtualBotoClock.park
    # Virtual time has microsecond steps and epoch floats ~0.2 us: a shortfall below that is none.
    while (wait := self._sleep_amount(amount)) > 1e-6:
        self._new_fill_rate_condition.release()
        try:
            parked = park(wait) if park is not None else False
        finally:
            self._new_fill_rate_condition.acquire()
        if not parked:
            break
        self._refill()
    self._current_capacity -= amount
    return True
