"""Run real handler code when moto's Lambda is invoked (moto without Docker only echoes payloads),
with Lambda's synchronous and asynchronous invocation semantics on the virtual clock.

`LambdaRuntime.register(function_name, "package.module.function")` binds a moto function to a
handler. An Invoke of that function (by name or ARN, from boto3, EventBridge delivery, or a
Step Functions lambda:invoke task) then:

- applies the function's Environment.Variables to ``os.environ`` when they differ from the last
  ones applied and calls the registered ``on_cold_start`` hook (a cold start: the drain Lambda
  re-reads its settings there);
- builds a Lambda-like context (function_name, function_version, invoked_function_arn,
  memory_limit_in_mb, aws_request_id, log_group_name, log_stream_name,
  get_remaining_time_in_millis on the virtual clock);
- fails with a function error (``FunctionError: Unhandled``, payload errorType / errorMessage /
  stackTrace) when the handler raises or a ``function_error`` fault fires (Lambda DG "Lambda
  function errors": the Invoke call itself answers 200);
- records each run of the handler in ``invocations`` (time, function, event, result or error).

Throttles and service errors (Lambda API reference, Invoke: TooManyRequestsException 429,
ServiceException 500):

- ``lambda_throttle`` / ``lambda_service_error`` fault rules (operation ``lambda:<function>``)
  make a run fail before the handler starts; a synchronous Invoke answers the error (Step
  Functions' lambda:invoke task sees ``Lambda.TooManyRequestsException`` /
  ``Lambda.ServiceException``).
- Concurrency (Lambda DG "Lambda function scaling", "Configuring reserved concurrency"): a run
  beyond the function's ReservedConcurrentExecutions is throttled (429, Reason
  ``ReservedFunctionConcurrentInvocationLimitExceeded``); 0 throttles every run. Functions
  without a reservation share the account's concurrency (``account_concurrency``, default
  1,000) less what the account's functions reserve (Reason
  ``ConcurrentInvocationLimitExceeded``). A function gains at most 1,000 execution
  environments every 10 seconds (``scaling``, a token bucket; a run that needs a new
  environment beyond it is throttled the same way). A run occupies one unit of concurrency
  from its start until it returns, and at least ``run_seconds`` (default 0).
- Time inside a run: with a ``scheduler`` (the sandbox's `TimeKeeper`), a run made from a
  sandbox thread (a Step Functions task, or an asynchronous event, which gets a thread of its
  own) parks on the virtual clock whenever botocore backs off or waits (`park`), so its
  duration is real virtual time: it holds its concurrency for that long, and it times out at
  the function's Timeout like Lambda does (a function error, errorType ``Sandbox.Timedout``,
  errorMessage "... Task timed out after N.NN seconds": Lambda DG "Troubleshoot invocation
  issues in Lambda", timeouts). A run called from a thread that can't park (a test calling
  Invoke directly) takes no virtual time, as before.
- Execution environments: each run takes a free environment of its function (the most
  recently used) or a new one (a cold start); `current_environment` names it, so the sandbox
  gives each environment its own boto3 clients (`local_aws.rate_limits`). A new environment's
  run first spends ``cold_start_seconds`` of virtual time in its init phase (Lambda DG
  "Understanding the Lambda execution environment lifecycle"; the figure is an assumption,
  default 1 s) when the run can park. An environment idle longer than
  ``environment_idle_seconds`` (default 300 s; AWS publishes no figure) is gone: the next run
  starts a new one.

Asynchronous invocation (``InvocationType=Event``, what EventBridge uses), per Lambda DG "How
Lambda handles errors and retries with asynchronous invocation":

- The Invoke call answers 202 at once and queues the event (an ``async_invoke_error`` fault
  makes the call itself fail with ServiceException: the caller, e.g. EventBridge, retries).
- A function error is retried up to MaximumRetryAttempts (EventInvokeConfig, 0-2, default 2),
  one minute after the first attempt and two minutes after the second.
- A throttle or service error puts the event back in the queue; retries start 1 s later and
  the interval doubles up to 5 minutes, for as long as the event is younger than
  MaximumEventAgeInSeconds (60-21600, default 21600 = 6 h).
- When retries are exhausted or the event is too old, the event goes to the on-failure
  destination of the EventInvokeConfig (an SQS invocation record, Lambda DG "Capturing
  records of Lambda asynchronous invocations": requestContext.condition RetriesExhausted or
  EventAgeExceeded) or is discarded; either way it is kept in ``async_failures``.
- The queue is at least once: ``async_duplicate_probability`` (seeded) runs an event twice.
  ``async_latency_seconds`` delays the first run (default 0).

Runs of one runtime never overlap in wall time: a run parked on the virtual clock lets the
next one go (the sandbox loop wakes one parked thread at a time), so the handler's
process-wide settings are shared safely; module-level state such as log keys is shared by the
runs of all environments (logs only).
"""

from __future__ import annotations

import heapq
import importlib
import json
import os
import random
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.exceptions import JsonRESTError

from local_aws.clock import Clock, RealClock
from local_aws.faults import FaultRule, Instrument
from local_aws.rate_limits import ACCOUNT_CONCURRENCY_DEFAULT, BucketSpec, TokenBucket

_NAMESPACE = uuid.UUID("0b7f5c1e-3d0a-4e8e-9f51-7a2b8c9d0e11")
DEFAULT_ASYNC_RETRY_ATTEMPTS = 2
DEFAULT_ASYNC_EVENT_AGE_SECONDS = 21600
FUNCTION_ERROR_RETRY_DELAYS = (60, 120)  # after the first and the second attempt
THROTTLE_RETRY_FIRST_SECONDS = 1.0
THROTTLE_RETRY_MAX_SECONDS = 300.0
# Assumed init time of a new environment (python3.13, boto3 and Powertools imported): about
# twice what a 256 MB function's boto3 import alone is commonly reported to take.
COLD_START_SECONDS = 1.0
# Assumed idle time after which an environment is gone (reports range from 5 to 15 minutes).
ENVIRONMENT_IDLE_SECONDS = 300.0

Outcome = Literal["ok", "function_error", "throttled", "service_error"]


class TooManyRequestsException(JsonRESTError):
    code = 429

    def __init__(self, reason: str, message: str = "Rate Exceeded.") -> None:
        super().__init__("TooManyRequestsException", message)
        self.description = json.dumps(
            {"__type": "TooManyRequestsException", "message": message, "Reason": reason}
        )


class InvocationTimedOut(BaseException):  # a BaseException: the handler must not catch it
    """Raised inside a run that reached its function's Timeout while parked."""

    def __init__(self, timeout: int) -> None:
        super().__init__(f"Task timed out after {timeout:.2f} seconds")
        self.timeout = timeout


@dataclass
class _Active:
    """The run the calling thread is executing (thread-local)."""

    function_name: str
    environment: int
    deadline: datetime
    timeout: int
    request_id: str
    invocation: int | None = None  # index in LambdaRuntime.invocations


@dataclass
class _Span:
    start: datetime
    end: datetime | None = None


_current = threading.local()


def current_environment() -> tuple[str, int] | None:
    """(function name, execution environment number) of the run on this thread, if any."""
    active: _Active | None = getattr(_current, "run", None)
    return (active.function_name, active.environment) if active else None


def current_invocation() -> int | None:
    """Index in `invocations` of the run on this thread: runs interleave on virtual time (each
    parks while it waits), so "the latest run" is not necessarily the caller's."""
    active: _Active | None = getattr(_current, "run", None)
    return active.invocation if active else None


class ServiceException(JsonRESTError):
    code = 500

    def __init__(self, message: str = "Lambda was unable to process the request.") -> None:
        super().__init__("ServiceException", message)


@dataclass
class LambdaContext:
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    _deadline: datetime
    _clock: Clock

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock.now()).total_seconds() * 1000))


@dataclass
class Invocation:
    at: datetime
    function_name: str
    event: Any
    result: Any = None
    error: str | None = None
    invocation_type: str = "RequestResponse"
    ended_at: datetime | None = None  # virtual time the run returned (parked runs last)
    environment: int | None = None  # the execution environment that ran it
    cold_start: bool = False  # the environment was new: the run began with its init phase


@dataclass
class Rejection:
    """A run that never reached the handler (throttled or a Lambda service error)."""

    at: datetime
    function_name: str
    outcome: Outcome
    invocation_type: str
    reason: str


@dataclass
class AsyncFailure:
    """An asynchronous event Lambda gave up on (sent to the on-failure destination, if any)."""

    at: datetime
    function_name: str
    event: Any
    condition: str  # RetriesExhausted | EventAgeExceeded
    attempts: int
    destination: str | None
    record: dict[str, Any]


@dataclass
class _RunResult:
    outcome: Outcome
    payload: bytes
    reason: str = ""


@dataclass
class _AsyncEvent:
    when: datetime
    seq: int
    backend: Any
    function_name: str
    qualifier: str | None
    body: bytes
    request_id: str
    accepted_at: datetime
    attempts: int = 0  # runs so far (function errors and rejections)
    function_errors: int = 0
    throttle_interval: float = THROTTLE_RETRY_FIRST_SECONDS
    last: _RunResult | None = None

    def __lt__(self, other: _AsyncEvent) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


@dataclass
class _Binding:
    handler_path: str
    on_cold_start: Callable[[], None] | None
    handler: Callable[..., Any] | None = None


@dataclass
class LambdaRuntime:
    clock: Clock = field(default_factory=RealClock)
    instrument: Instrument | None = None
    invocations: list[Invocation] = field(default_factory=list)
    # Called with each finished Invocation (the demo prints them as they happen).
    listeners: list[Callable[[Invocation], None]] = field(default_factory=list)
    seed: int = 0
    run_seconds: float = 0.0  # how long a run holds a unit of concurrency (virtual seconds)
    # Virtual seconds a new execution environment spends in its init phase before the handler
    # runs (Lambda DG "Understanding the Lambda execution environment lifecycle": Init runs on
    # a cold start). AWS publishes no figure for a function: an assumption, on the slow side.
    cold_start_seconds: float = COLD_START_SECONDS
    # How long an idle environment stays warm before Lambda reclaims it. AWS publishes no
    # figure (UNCONFIRMED): a short one, so runs after a quiet spell start cold.
    environment_idle_seconds: float = ENVIRONMENT_IDLE_SECONDS
    async_latency_seconds: float = 0.0
    async_duplicate_probability: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)
    async_failures: list[AsyncFailure] = field(default_factory=list)
    # Sends an on-failure record: (destination arn, body); the sandbox sends to SQS.
    destination_sink: Callable[[str, str], None] | None = None
    # The sandbox's TimeKeeper: runs park on it (see the module docstring); None: instant runs.
    scheduler: Any = None
    account_concurrency: int = ACCOUNT_CONCURRENCY_DEFAULT
    scaling: BucketSpec | None = None  # new environments per function (None: unlimited)

    def __post_init__(self) -> None:
        self._bindings: dict[str, _Binding] = {}
        self._lock = threading.RLock()
        self._applied_env: dict[str, str] | None = None
        self._saved_env: dict[str, str | None] = {}
        self._count = 0
        self._rng = random.Random(f"lambda/{self.seed}")
        self._queue: list[_AsyncEvent] = []
        self._seq = 0
        self._runs: dict[str, list[_Span]] = {}
        self._reserved: dict[str, int | None] = {}
        self._free_envs: dict[str, list[int]] = {}
        self.environments: dict[str, int] = {}  # function -> environments created (cold starts)
        self._scaling_buckets: dict[str, TokenBucket] = {}
        self._async_threads = 0
        self.peak_concurrency: dict[str, int] = {}
        self._new_envs: set[tuple[str, int]] = set()
        self._idle_since: dict[tuple[str, int], datetime] = {}

    def register(
        self,
        function_name: str,
        handler_path: str,
        on_cold_start: Callable[[], None] | None = None,
    ) -> None:
        self._bindings[function_name] = _Binding(handler_path, on_cold_start)

    def handles(self, function_name: str) -> bool:
        return function_name in self._bindings

    def restore_environment(self) -> None:
        """Put back the environment variables the runtime changed."""
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        self._applied_env = None

    def _apply_env(self, env: dict[str, str], binding: _Binding) -> None:
        if env == self._applied_env:
            return
        for key in set(self._applied_env or {}) | set(env):
            self._saved_env.setdefault(key, os.environ.get(key))
            if key in env:
                os.environ[key] = env[key]
            else:
                os.environ.pop(key, None)
        self._applied_env = dict(env)
        if binding.on_cold_start is not None:
            binding.on_cold_start()

    def _resolve(self, binding: _Binding) -> Callable[..., Any]:
        if binding.handler is None:
            module_name, _, attr = binding.handler_path.rpartition(".")
            binding.handler = getattr(importlib.import_module(module_name), attr)
        return binding.handler

    def _fault(self, function_name: str, kinds: tuple[str, ...]) -> FaultRule | None:
        if self.instrument is None:
            return None
        return self.instrument.decide(f"lambda:{function_name}", kinds)

    # --- the Invoke API --------------------------------------------------------------------

    def invoke(
        self,
        backend: Any,
        fn: Any,
        qualifier: str | None,
        body: bytes | str | None,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        raw = body.encode() if isinstance(body, str) else (body or b"{}")
        invocation_type = (headers or {}).get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            self._accept_async(backend, fn, qualifier, raw)
            return b""
        result = self._run(fn, raw, "RequestResponse", backend)
        if result.outcome == "throttled":
            raise TooManyRequestsException(result.reason)
        if result.outcome == "service_error":
            raise ServiceException()
        if result.outcome == "function_error":
            response_headers["x-amz-function-error"] = "Unhandled"
        return result.payload

    def run_for_event_source(
        self, backend: Any, function_name: str, raw: bytes
    ) -> tuple[str, bytes]:
        """A synchronous run on behalf of an event source mapping (local_aws.sqs_event_source):
        its outcome (ok, function_error, throttled, service_error) and the response payload."""
        fn = backend.get_function(function_name, None)
        result = self._run(fn, raw, "EventSourceMapping", backend)
        return result.outcome, result.payload

    def _run(self, fn: Any, raw: bytes, invocation_type: str, backend: Any = None) -> _RunResult:
        """One run of the function: rejected (throttle, service error) or the handler's answer."""
        with self._lock:
            now = self.clock.now()
            rejected, environment = self._admit(fn, now, backend)
            if rejected is not None:
                self.rejections.append(
                    Rejection(
                        now, fn.function_name, rejected.outcome, invocation_type, rejected.reason
                    )
                )
                return rejected
            span = _Span(now)
            self._runs.setdefault(fn.function_name, []).append(span)
            in_flight = self._in_flight(fn.function_name, now)
            peak = self.peak_concurrency.get(fn.function_name, 0)
            self.peak_concurrency[fn.function_name] = max(peak, in_flight)
            record = Invocation(
                now,
                fn.function_name,
                None,
                invocation_type=invocation_type,
                environment=environment,
                cold_start=(fn.function_name, environment) in self._new_envs,
            )
            self._new_envs.discard((fn.function_name, environment))
        try:
            result = self._run_handler(fn, raw, record, environment)
        finally:
            with self._lock:
                span.end = record.ended_at = self.clock.now()
                self._free_envs.setdefault(fn.function_name, []).append(environment)
                self._idle_since[(fn.function_name, environment)] = span.end
        for listener in self.listeners:
            listener(record)
        return result

    def _admit(self, fn: Any, now: datetime, backend: Any) -> tuple[_RunResult | None, int]:
        """A rejection, or None and the execution environment the run gets."""
        name = fn.function_name
        reserved = fn.reserved_concurrency
        self._reserved[name] = None if reserved is None else int(reserved)
        if reserved is not None and self._in_flight(name, now) >= int(reserved):
            reason = "ReservedFunctionConcurrentInvocationLimitExceeded"
            return _RunResult("throttled", b"", reason), -1
        if reserved is None and self._unreserved_in_flight(now) >= self._unreserved_pool(backend):
            return _RunResult("throttled", b"", "ConcurrentInvocationLimitExceeded"), -1
        rule = self._fault(name, ("lambda_throttle", "lambda_service_error"))
        if rule is not None and rule.kind == "lambda_throttle":
            return _RunResult("throttled", b"", "CallerRateLimitExceeded"), -1
        if rule is not None:
            return _RunResult("service_error", b"", "ServiceException"), -1
        free = self._free_envs.setdefault(name, [])
        if free and (now - self._idle_since[(name, free[-1])]).total_seconds() > (
            self.environment_idle_seconds
        ):
            free.clear()  # the most recently used one has idled too long: so have the others
        if free:
            return None, free.pop()  # the most recently used environment (warm)
        if self.scaling is not None:
            bucket = self._scaling_buckets.setdefault(name, TokenBucket(self.scaling, now))
            if not bucket.take(now):
                return _RunResult("throttled", b"", "ConcurrentInvocationLimitExceeded"), -1
        self.environments[name] = self.environments.get(name, 0) + 1
        self._new_envs.add((name, self.environments[name]))
        return None, self.environments[name]

    def _in_flight(self, function_name: str, now: datetime) -> int:
        window = timedelta(seconds=self.run_seconds)
        spans = self._runs.get(function_name, [])
        # A run holds concurrency while it runs, and at least over [start, start + run_seconds).
        spans[:] = [s for s in spans if s.end is None or max(s.end, s.start + window) > now]
        return len(spans)

    def _unreserved_in_flight(self, now: datetime) -> int:
        return sum(
            self._in_flight(name, now)
            for name, reserved in self._reserved.items()
            if reserved is None
        )

    def _unreserved_pool(self, backend: Any) -> int:
        reserved = 0
        if backend is not None:
            reserved = sum(int(f.reserved_concurrency or 0) for f in backend.list_functions())
        return max(0, self.account_concurrency - reserved)

    def park(self, seconds: float) -> bool:
        """Park the calling sandbox thread ``seconds`` on the virtual clock, cut at the running
        function's Timeout (`InvocationTimedOut`); False at once when it can't park."""
        from local_aws.stepfunctions import current_key

        scheduler = self.scheduler
        if scheduler is None or current_key() is None:
            return False
        active: _Active | None = getattr(_current, "run", None)
        if active is not None:
            remaining = (active.deadline - self.clock.now()).total_seconds()
            if seconds >= remaining:
                if remaining > 0:
                    scheduler.sleep(remaining)
                raise InvocationTimedOut(active.timeout)
        scheduler.sleep(seconds)
        return True

    def _run_handler(
        self, fn: Any, raw: bytes, record: Invocation, environment: int = 0
    ) -> _RunResult:
        binding = self._bindings[fn.function_name]
        event = json.loads(raw.decode() or "{}")
        with self._lock:
            self._count += 1
            count = self._count
            self.invocations.append(record)
            index = len(self.invocations) - 1
        now = record.at
        record.event = event
        rule = self._fault(fn.function_name, ("function_error", "lambda_error"))
        if rule is not None:
            error_type = rule.error or "Exception"
            message = rule.message or "Injected function error"
            record.error = f"{error_type}: {message}"
            return _RunResult("function_error", _error_payload(error_type, message, []))
        self._apply_env(dict(fn.environment_vars or {}), binding)
        context = LambdaContext(
            function_name=fn.function_name,
            function_version="$LATEST",
            invoked_function_arn=fn.function_arn,
            memory_limit_in_mb=int(fn.memory_size),
            aws_request_id=str(uuid.uuid5(_NAMESPACE, f"{fn.function_name}/{count}")),
            log_group_name=f"/aws/lambda/{fn.function_name}",
            log_stream_name=f"{now:%Y/%m/%d}/[$LATEST]sandbox",
            _deadline=now + timedelta(seconds=int(fn.timeout)),
            _clock=self.clock,
        )
        previous = getattr(_current, "run", None)
        _current.run = _Active(
            fn.function_name,
            environment,
            context._deadline,
            int(fn.timeout),
            context.aws_request_id,
            index,
        )
        try:
            if record.cold_start and self.cold_start_seconds > 0:
                self.park(self.cold_start_seconds)  # the init phase, before the handler
            result = self._resolve(binding)(event, context)
        except InvocationTimedOut as timeout:
            # Lambda DG "Troubleshoot invocation issues in Lambda": the run is stopped.
            message = f"{self.clock.now():%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"
            message += f" {context.aws_request_id} {timeout}"
            record.error = f"Sandbox.Timedout: {message}"
            return _RunResult("function_error", _error_payload("Sandbox.Timedout", message, []))
        except Exception as error:  # a handler error is a function error, as in Lambda
            record.error = f"{type(error).__name__}: {error}"
            stack = traceback.format_exception(error)
            return _RunResult(
                "function_error", _error_payload(type(error).__name__, str(error), stack)
            )
        finally:
            _current.run = previous
        record.result = result
        return _RunResult("ok", json.dumps(result).encode())

    # --- asynchronous invocation -----------------------------------------------------------

    def _accept_async(self, backend: Any, fn: Any, qualifier: str | None, raw: bytes) -> None:
        if self._fault(fn.function_name, ("async_invoke_error",)) is not None:
            raise ServiceException()
        with self._lock:
            now = self.clock.now()
            self._count += 1
            request_id = str(uuid.uuid5(_NAMESPACE, f"async/{fn.function_name}/{self._count}"))
            first = now + timedelta(seconds=self.async_latency_seconds)
            copies = 2 if self._rng.random() < self.async_duplicate_probability else 1
            for copy in range(copies):
                self._push(
                    _AsyncEvent(
                        first + timedelta(seconds=copy),
                        0,
                        backend,
                        fn.function_name,
                        qualifier,
                        raw,
                        request_id,
                        now,
                    )
                )

    def _push(self, item: _AsyncEvent) -> None:
        self._seq += 1
        item.seq = self._seq
        heapq.heappush(self._queue, item)

    def next_time(self) -> datetime | None:
        with self._lock:
            return self._queue[0].when if self._queue else None

    @property
    def pending(self) -> int:
        """Queued asynchronous events and runs of them still going (parked)."""
        with self._lock:
            return len(self._queue) + self._async_threads

    def run_due(self) -> bool:
        """Run the asynchronous events that are due (each on a parkable thread of its own when
        there is a scheduler: it waits for its turn); True if any started."""
        ran = False
        while True:
            with self._lock:
                if not self._queue or self._queue[0].when > self.clock.now():
                    return ran
                item = heapq.heappop(self._queue)
                if self.scheduler is not None:
                    self._async_threads += 1
            ran = True
            if self.scheduler is None:
                self._run_async(item)
                continue
            self.scheduler.enter_thread()
            key = f"lambda/{item.function_name}/{item.request_id}/{item.seq}/{item.attempts}"
            thread = threading.Thread(target=self._async_thread, args=(item, key), daemon=True)
            thread.start()

    def _async_thread(self, item: _AsyncEvent, key: str) -> None:
        from local_aws.stepfunctions import set_thread_key

        set_thread_key(key)
        try:
            self.scheduler.sleep(0, key=key, yield_=True)  # run when the loop says
            self._run_async(item)
        finally:
            with self._lock:
                self._async_threads -= 1
            self.scheduler.leave_thread()

    def _run_async(self, item: _AsyncEvent) -> None:
        fn = item.backend.get_function(item.function_name, item.qualifier)
        config = _invoke_config(fn)
        now = self.clock.now()
        if (now - item.accepted_at).total_seconds() > config["MaximumEventAgeInSeconds"]:
            self._give_up(fn, item, "EventAgeExceeded", config)
            return
        result = self._run(fn, item.body, "Event", item.backend)
        item.attempts += 1
        item.last = result
        if result.outcome == "ok":
            return
        if result.outcome == "function_error":
            if item.function_errors >= config["MaximumRetryAttempts"]:
                self._give_up(fn, item, "RetriesExhausted", config)
                return
            delay: float = FUNCTION_ERROR_RETRY_DELAYS[min(item.function_errors, 1)]
            item.function_errors += 1
        else:  # throttled or a service error: back to the queue, growing interval
            delay = item.throttle_interval
            item.throttle_interval = min(THROTTLE_RETRY_MAX_SECONDS, item.throttle_interval * 2)
        item.when = now + timedelta(seconds=delay)
        with self._lock:
            self._push(item)

    def _give_up(self, fn: Any, item: _AsyncEvent, condition: str, config: dict[str, Any]) -> None:
        destination = config.get("OnFailure")
        last = item.last
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "requestContext": {
                "requestId": item.request_id,
                "functionArn": f"{fn.function_arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": item.attempts,
            },
            "requestPayload": json.loads(item.body.decode() or "{}"),
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        }
        if last is not None and last.outcome == "function_error":
            record["responseContext"]["functionError"] = "Unhandled"
            record["responsePayload"] = json.loads(last.payload.decode())
        elif last is not None:
            record["responseContext"]["statusCode"] = 429 if last.outcome == "throttled" else 500
        self.async_failures.append(
            AsyncFailure(
                self.clock.now(),
                fn.function_name,
                record["requestPayload"],
                condition,
                item.attempts,
                destination,
                record,
            )
        )
        if destination and self.destination_sink is not None:
            self.destination_sink(destination, json.dumps(record))


class EnvironmentSession:
    """A boto3 Session stand-in whose clients belong to the calling run's execution environment.

    The drain Lambda caches one client per service for its container; in the sandbox all
    environments share the process, so the client handed out forwards each use to a real
    client of the current environment (`current_environment`), built from ``base`` (its event
    handlers included) on first use. Each environment thus has its own retry quota and adaptive
    rate limiter, like separate Lambda containers.
    """

    def __init__(self, base: Any) -> None:
        self.base = base
        self.events = base.events
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self._handed_out = 0

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._handed_out += 1
            serial = self._handed_out
        return _EnvironmentClient(self, serial, service_name, args, kwargs)

    def real_client(
        self, serial: int, service_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        key = (current_environment(), serial)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = self._clients[key] = self.base.client(service_name, *args, **kwargs)
            return found

    @property
    def clients_created(self) -> int:
        return len(self._clients)


class _EnvironmentClient:
    def __init__(
        self,
        owner: EnvironmentSession,
        serial: int,
        service: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._owner, self._serial = owner, serial
        self._service, self._args, self._kwargs = service, args, kwargs

    def __getattr__(self, name: str) -> Any:
        real = self._owner.real_client(self._serial, self._service, self._args, self._kwargs)
        return getattr(real, name)


def _invoke_config(fn: Any) -> dict[str, Any]:
    """The function's EventInvokeConfig with Lambda's defaults (moto keeps every put: last wins)."""
    config = fn.event_invoke_config[-1].config if fn.event_invoke_config else {}
    destinations = config.get("DestinationConfig") or {}
    return {
        "MaximumRetryAttempts": int(
            config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRY_ATTEMPTS)
        ),
        "MaximumEventAgeInSeconds": int(
            config.get("MaximumEventAgeInSeconds", DEFAULT_ASYNC_EVENT_AGE_SECONDS)
        ),
        "OnFailure": (destinations.get("OnFailure") or {}).get("Destination"),
    }


def _error_payload(error_type: str, message: str, stack: list[str]) -> bytes:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "stackTrace": stack}
    ).encode()


_runtime: LambdaRuntime | None = None
_installed = False


def use_runtime(runtime: LambdaRuntime | None) -> None:
    global _runtime
    _runtime = runtime


def install() -> None:
    """Patch moto's Docker-less Lambda backend to run registered handlers (idempotent)."""
    global _installed
    if _installed:
        return
    original = LambdaSimpleBackend.invoke

    def invoke(
        self: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> str | bytes | None:
        runtime = _runtime
        if runtime is not None:
            fn = self.get_function(function_name, qualifier)
            if runtime.handles(fn.function_name):
                return runtime.invoke(self, fn, qualifier, body, headers, response_headers)
        return original(self, function_name, qualifier, body, headers, response_headers)

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    _installed = True
