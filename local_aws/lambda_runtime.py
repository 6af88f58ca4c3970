"""Run real handler code when moto's Lambda is invoked (moto without Docker only echoes payloads).

`LambdaRuntime.register(function_name, "package.module.function")` binds a moto function to a
handler. An Invoke of that function (by name or ARN, from boto3, EventBridge delivery, or a
Step Functions lambda:invoke task) then:

- applies the function's Environment.Variables to ``os.environ`` when they differ from the last
  ones applied and calls the registered ``on_cold_start`` hook (a cold start: the drain Lambda
  re-reads its settings there);
- builds a Lambda-like context (function_name, function_version, invoked_function_arn,
  memory_limit_in_mb, aws_request_id, log_group_name, log_stream_name,
  get_remaining_time_in_millis on the virtual clock);
- fails with a Lambda function error (``FunctionError: Unhandled``, payload errorType /
  errorMessage / stackTrace) when the handler raises or when a ``lambda_error`` fault fires;
- records each invocation in ``invocations`` (time, function, event, result or error).

Invocations of one runtime are serialized (one at a time), as the handler's settings and
clients are process-wide here.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from local_aws.clock import Clock, RealClock
from local_aws.faults import Instrument

_NAMESPACE = uuid.UUID("0b7f5c1e-3d0a-4e8e-9f51-7a2b8c9d0e11")


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

    def __post_init__(self) -> None:
        self._bindings: dict[str, _Binding] = {}
        self._lock = threading.RLock()
        self._applied_env: dict[str, str] | None = None
        self._saved_env: dict[str, str | None] = {}
        self._count = 0

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

    def invoke(self, fn: Any, body: bytes | str | None, response_headers: dict[str, str]) -> bytes:
        record = Invocation(self.clock.now(), fn.function_name, None)
        payload = self._invoke(fn, body, response_headers, record)
        for listener in self.listeners:
            listener(record)
        return payload

    def _invoke(
        self,
        fn: Any,
        body: bytes | str | None,
        response_headers: dict[str, str],
        record: Invocation,
    ) -> bytes:
        binding = self._bindings[fn.function_name]
        raw = body.decode() if isinstance(body, bytes) else (body or "{}")
        event = json.loads(raw or "{}")
        with self._lock:
            self._count += 1
            now = self.clock.now()
            record.at, record.event = now, event
            self.invocations.append(record)
            if self.instrument is not None:
                rule = self.instrument.decide(f"lambda:{fn.function_name}", ("lambda_error",))
                if rule is not None:
                    record.error = "Injected Lambda error"
                    response_headers["x-amz-function-error"] = "Unhandled"
                    return _error_payload("ServiceException", "Injected Lambda error", [])
            self._apply_env(dict(fn.environment_vars or {}), binding)
            context = LambdaContext(
                function_name=fn.function_name,
                function_version="$LATEST",
                invoked_function_arn=fn.function_arn,
                memory_limit_in_mb=int(fn.memory_size),
                aws_request_id=str(uuid.uuid5(_NAMESPACE, f"{fn.function_name}/{self._count}")),
                log_group_name=f"/aws/lambda/{fn.function_name}",
                log_stream_name=f"{now:%Y/%m/%d}/[$LATEST]sandbox",
                _deadline=now + timedelta(seconds=int(fn.timeout)),
                _clock=self.clock,
            )
            try:
                result = self._resolve(binding)(event, context)
            except Exception as error:  # a handler error is a function error, as in Lambda
                record.error = f"{type(error).__name__}: {error}"
                response_headers["x-amz-function-error"] = "Unhandled"
                stack = traceback.format_exception(error)
                return _error_payload(type(error).__name__, str(error), stack)
            record.result = result
            return json.dumps(result).encode()


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
                return runtime.invoke(fn, body, response_headers)
        return original(self, function_name, qualifier, body, headers, response_headers)

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    _installed = True
