"""Measure and break the handler's AWS calls: count them by operation, inject faults by seed.

`Instrument.session()` returns a boto3 Session to hand to
``drain_hook.adapters.clients.use_session``. Botocore event handlers on it:

- count every API call (``calls``, e.g. ``{"ecs:DescribeTasks": 12}``) and every HTTP attempt
  (``attempts``: retries included), so the cost of a drain and of throttling is visible;
- inject faults per operation from `FaultRule`s, decided by a ``random.Random(seed)``, so a run
  is repeatable: ``throttle`` (HTTP 400 ThrottlingException / Throttling, which botocore's
  retry modes retry), ``server_error`` (HTTP 500 InternalFailure / ServiceUnavailable 503,
  also retried), ``delay`` (adds latency in virtual seconds to ``delay_seconds_total``, never
  real time), ``client_error`` (HTTP 400 with the code in ``error``, default
  AccessDeniedException: what a missing IAM grant answers; botocore does not retry it). A
  faulted attempt never reaches moto, so it changes nothing.
- Lambda service faults, read by the Lambda runtime (`local_aws.lambda_runtime`) for the
  operation ``lambda:<function name>``: ``lambda_throttle`` (the run is throttled: 429
  TooManyRequestsException), ``lambda_service_error`` (500 ServiceException),
  ``function_error`` (the run fails as a function error, FunctionError Unhandled, errorType
  ``error`` or "Exception"; ``lambda_error`` is the older name), ``async_invoke_error`` (an
  asynchronous Invoke call itself fails, so its caller, e.g. EventBridge, retries).
- ``task_error``, read by the Step Functions interpreter (`local_aws.stepfunctions`) for the
  operation ``states:<service>:<Operation>`` of a Task's integration call (e.g.
  ``states:lambda:Invoke``, ``states:autoscaling:CompleteLifecycleAction``): the task fails
  with the error name ``error`` (e.g. ``Lambda.SdkClientException``,
  ``Lambda.AWSLambdaException``, ``States.TaskFailed``), as Step Functions reports failures
  that happen on its side of the call.
- ``session(scope="states")`` is the session of the state machine's own aws-sdk calls: its
  calls are counted in ``states_calls`` / ``states_attempts`` and faults are decided for
  ``states:<service>:<Operation>``, so ``throttle`` / ``server_error`` rules can target them.

Botocore's retry back-off sleeps never take wall time while a sandbox is open (`install`):
they are instant, or, with a sleeper set (`use_sleeper`, see `local_aws.rate_limits`), they
park the calling thread on the sandbox's virtual clock, so throttling costs virtual time.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.awsrequest import AWSResponse

FaultKind = Literal[
    "throttle",
    "server_error",
    "delay",
    "lambda_error",
    "function_error",
    "lambda_throttle",
    "lambda_service_error",
    "async_invoke_error",
    "task_error",
    "client_error",
]

# The error each service answers for throttling: (code, HTTP status).
_THROTTLE = {
    "autoscaling": ("Throttling", 400),
    "ecs": ("ThrottlingException", 400),
    "lambda": ("TooManyRequestsException", 429),
}
_SERVER_ERROR = {"lambda": ("ServiceException", 500)}
_QUERY_PROTOCOL = {"autoscaling", "ec2", "sts", "iam"}


@dataclass
class FaultRule:
    """Fault ``kind`` on operations matching ``operation`` ("ecs:DescribeTasks", "ecs:*", "*")."""

    operation: str
    kind: FaultKind
    probability: float = 1.0
    max_count: int | None = None  # stop after this many injections
    delay_seconds: float = 1.0
    error: str | None = None  # function_error: errorType; task_error: the error name
    message: str | None = None
    injected: int = 0

    def matches(self, operation: str) -> bool:
        return fnmatch.fnmatchcase(operation, self.operation)


@dataclass
class Instrument:
    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    delay_seconds_total: float = 0.0
    # The state machine's own aws-sdk calls (session scope "states"), counted apart.
    states_calls: Counter[str] = field(default_factory=Counter)
    states_attempts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        self.rules.clear()

    def decide(self, operation: str, kinds: tuple[str, ...]) -> FaultRule | None:
        """The rule (if any) that fires for this attempt; draws are seeded and serialized."""
        with self._lock:
            for rule in self.rules:
                if rule.kind not in kinds or not rule.matches(operation):
                    continue
                if rule.max_count is not None and rule.injected >= rule.max_count:
                    continue
                if self._rng.random() < rule.probability:
                    rule.injected += 1
                    self.injected[f"{rule.kind}:{operation}"] += 1
                    return rule
        return None

    # --- botocore handlers -----------------------------------------------------------------

    def _on_call(self, model: Any, scope: str = "lambda", **_: Any) -> None:
        op = f"{model.service_model.service_name}:{model.name}"
        with self._lock:
            if scope == "states":
                self.states_calls[f"states:{op}"] += 1
            else:
                self.calls[op] += 1

    def _on_send(
        self, request: Any, event_name: str, scope: str = "lambda", **_: Any
    ) -> AWSResponse | None:
        # event_name is "before-send.<service id>.<Operation>"
        _, service_id, operation = event_name.split(".", 2)
        service = _service_name(service_id)
        op = f"{service}:{operation}"
        if scope == "states":
            op = f"states:{op}"
        with self._lock:
            (self.states_attempts if scope == "states" else self.attempts)[op] += 1
        rule = self.decide(op, ("throttle", "server_error", "delay", "client_error"))
        if rule is None:
            return None
        if rule.kind == "delay":
            with self._lock:
                self.delay_seconds_total += rule.delay_seconds
            return None
        # Send the attempt nowhere moto listens, so the fault has no side effect.
        request.url = "http://fault-injected.invalid/"
        if rule.kind == "throttle":
            code, status = _THROTTLE.get(service, ("ThrottlingException", 400))
            return _error_response(service, status, code, "Rate exceeded")
        if rule.kind == "client_error":
            # A 4xx the SDK does not retry, e.g. AccessDeniedException from a missing grant.
            code = rule.error or "AccessDeniedException"
            return _error_response(service, 400, code, rule.message or "Injected client error")
        code, status = _SERVER_ERROR.get(service, ("InternalFailure", 500))
        return _error_response(service, status, code, "Injected server error")

    def session(self, region: str = "us-east-1", scope: str = "lambda") -> boto3.session.Session:
        """A session whose calls are counted and faulted (scope "lambda" or "states")."""
        session = boto3.session.Session(region_name=region)
        session.events.register("before-call", functools.partial(self._on_call, scope=scope))
        session.events.register_first("before-send", functools.partial(self._on_send, scope=scope))
        return session

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def _service_name(service_id: str) -> str:
    return {"auto-scaling": "autoscaling", "sfn": "stepfunctions"}.get(
        service_id.lower(), service_id.lower()
    )


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _error_response(service: str, status: int, code: str, message: str) -> AWSResponse:
    if service in _QUERY_PROTOCOL:
        body = (
            (
                "<ErrorResponse><Error><Type>{t}</Type><Code>{c}</Code><Message>{m}</Message></Error>"
                "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
            )
            .format(t="Sender" if status < 500 else "Receiver", c=code, m=message)
            .encode()
        )
        headers = {"Content-Type": "text/xml"}
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        # JSON-protocol services answer with a request id header, as every AWS response has
        # (moto's Step Functions lambda:invoke task reads it from the error).
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "x-amzn-ErrorType": code,
            "x-amzn-RequestId": "00000000-0000-0000-0000-000000000000",
        }
    return AWSResponse("http://fault-injected.invalid/", status, headers, _Raw(body))  # type: ignore[arg-type]


_saved: tuple[Any, Any] | None = None


def install() -> None:
    """Make botocore's retry back-off instant (the sandbox counts attempts, not waits).

    Undone by `uninstall`, so code outside a sandbox keeps botocore's real back-off.
    """
    global _saved
    if _saved is not None:
        return
    import botocore.endpoint
    import botocore.retries.bucket

    _saved = (botocore.endpoint.time, botocore.retries.bucket.TokenBucket._acquire)
    botocore.endpoint.time = _NoSleepTime()  # type: ignore[attr-defined]
    # Adaptive mode's client-side rate limiter would block on real time after a throttle.
    botocore.retries.bucket.TokenBucket._acquire = _acquire_now  # type: ignore[method-assign]


def uninstall() -> None:
    global _saved
    if _saved is None:
        return
    import botocore.endpoint
    import botocore.retries.bucket

    botocore.endpoint.time, botocore.retries.bucket.TokenBucket._acquire = _saved  # type: ignore[method-assign]
    _saved = None


# --- rate-limits hook (local_aws.rate_limits): back-off sleeps on the virtual clock --------
_sleeper: Any = None  # Callable[[float], bool]: parks the caller; False when it can't


def use_sleeper(sleeper: Any) -> None:
    """Route botocore's back-off sleeps to ``sleeper(seconds)`` (None: instant)."""
    global _sleeper
    _sleeper = sleeper


def error_response(service: str, status: int, code: str, message: str) -> AWSResponse:
    """The HTTP answer ``service`` gives for an error (query protocol XML or JSON)."""
    return _error_response(service, status, code, message)


class _NoSleepTime:
    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        sleeper = _sleeper
        if sleeper is not None:
            sleeper(seconds)  # parks on the virtual clock, or returns at once


# --- end of the rate-limits hook -----------------------------------------------------------


# TokenBucket._acquire's signature, which it replaces.
def _acquire_now(self: Any, amount: int = 1, block: bool = True) -> bool:  # noqa: ARG001
    return True
