"""Step Functions (Standard) on virtual time: moto's ASL interpreter runs the real definition,
with the service behaviour moto lacks, written to the Step Functions documentation.

Time. moto runs each execution in worker threads. `TimeKeeper` counts executions that are
busy; a Wait, a Retry interval or the execution's own timeout parks the execution until the
virtual clock reaches its time. The sandbox's loop waits until every execution is parked or
finished ("quiet"), then moves the clock to the next wake-up (or the next ECS or lifecycle
timer) and wakes what is due. Start and stop dates, history timestamps and Wait ``Timestamp``
states read the virtual clock.

Behaviour (each line names its source):

- StartExecution (API reference, StartExecution): for a Standard workflow, the same name and
  the same input as a RUNNING execution answers that execution (same executionArn and
  startDate); a closed execution's name, or another input, is ``ExecutionAlreadyExists``
  (moto's rule, kept). Without a name one is generated; names are checked (1-80 characters,
  no whitespace, brackets, wildcards or special characters: ``InvalidName``).
- TimeoutSeconds at the top of the ASL (Amazon States Language spec, "Top-level fields";
  developer guide "Handling errors", States.Timeout): when it passes on the virtual clock the
  execution ends TIMED_OUT (moto waited in real seconds); a Wait or retry interval in progress
  is cut short.
- StopExecution (API reference): the execution is ABORTED at once with that stopDate (moto
  marked it only when its thread noticed, after the Wait it was in).
- DescribeExecution / ListExecutions give TIMED_OUT executions their stopDate (moto omitted
  it).
- "Step Functions Execution Status Change" events (developer guide "EventBridge (CloudWatch
  Events) for Step Functions execution status changes"; EventBridge Events Reference "AWS
  Step Functions events"): source ``aws.states``; detail executionArn, stateMachineArn, name,
  status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED), startDate, stopDate (epoch ms,
  null while running), input / inputDetails, output / outputDetails, plus error and cause
  when the execution has them ("the same information as DescribeExecution"). When the
  escaped output exceeds 248 KB it is left out; when escaped input plus output exceed
  248 KB the input is left out (``...Details.included`` false). Collected here, put on the
  sandbox bus by the loop; delivery is "best effort" (`local_aws.events.EventBus.lose_events`).
- Lambda task errors (developer guide "Handling errors in Step Functions workflows", and
  "Invoke an AWS Lambda function with Step Functions"): the lambda:invoke integration fails
  with ``Lambda.<Lambda API error code>`` (``Lambda.TooManyRequestsException``,
  ``Lambda.ServiceException``, moto's rule, kept), with the function's errorType for a
  function error (``States.TaskFailed`` matches it in Retry / Catch), and with any name a
  ``task_error`` fault gives (e.g. ``Lambda.SdkClientException``,
  ``Lambda.AWSLambdaException``, which Step Functions raises on its side of the call).
- AWS SDK integration errors (developer guide "Learning to use AWS service SDK integrations
  in Step Functions"): ``ServiceName.ErrorName``, both PascalCase, always with the
  ``Exception`` suffix. A modelled error is named after its error code: Auto Scaling's
  ResourceContentionFault (code ``ResourceContention``) is
  ``AutoScaling.ResourceContentionException``, the AWS SDK for Java's class name
  (UNCONFIRMED: by the guide's suffix rule it could be ``...ResourceContentionFaultException``;
  the drain loop retries both). For an error code the service's API model does not declare
  (Auto Scaling's ``ValidationError``, which "No active Lifecycle Action" is, and
  ``Throttling``) the name is the SDK's generic ``<Service>.<Service>Exception``, e.g.
  ``AutoScaling.AutoScalingException`` (UNCONFIRMED: the guide is silent; real executions
  report ``Ec2.Ec2Exception`` for an EC2 throttle, and moto's interpreter chose the same).
  moto named every error after the lower-case resource name ("autoscaling.autoscalingException").
- The execution history quota (developer guide "Step Functions service quotas", "Starting new
  executions to avoid reaching the history quota"): a Standard execution's history holds at
  most 25,000 events. Every event moto's interpreter writes is counted; when a state would
  write event 25,000, the execution fails instead, ExecutionFailed being event 25,000, with
  Error ``States.Runtime`` and Cause "The execution reached the maximum number of history
  events (25000)." (the guide gives neither; real failed executions report them). No Retry or
  Catch sees it (moto's ``States.ALL`` would match ``States.Runtime``, AWS's does not), a Task
  whose scheduling was cut calls nothing, and the FAILED status event goes out as for any
  failure. moto writes what AWS writes per state (checked in
  ``tests/local_aws/test_stepfunctions_semantics.py``): a Task on lambda:invoke or aws-sdk 5
  (TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded or TaskFailed, TaskStateExited;
  no TaskStateExited when the failure ends the execution), 3 more per retry; Wait, Choice,
  Pass and Succeed 2 (entered, exited); Fail 1; ExecutionStarted and the closing event 1 each.
  Express executions have no such quota and are not counted.
- With `use_instrument`, the state machine's aws-sdk and Lambda calls go through an
  instrumented session (scope "states"): counted apart from the Lambda's calls, and
  ``throttle`` / ``server_error`` / ``task_error`` rules on ``states:<service>:<Operation>``
  break them.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.api import (
    ExecutionFailedEventDetails,
    ExecutionStatus,
    HistoryEventType,
    TaskFailedEventDetails,
)
from moto.stepfunctions.parser.asl.component import eval_component
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.path import result_path as result_path_module
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.program import program
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk,
    state_task_service_callback,
    state_task_service_lambda,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
    timestamp as wait_timestamp,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from moto.stepfunctions.parser.asl.eval import environment as environment_module
from moto.stepfunctions.parser.asl.eval.event import event_manager
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils import boto_client as sfn_boto_client
from moto.stepfunctions.parser.asl.utils import json_path as json_path_module
from moto.stepfunctions.parser.backend import execution as execution_module
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.utils import TMP_THREADS

from local_aws.clock import VirtualClock
from local_aws.faults import Instrument
from local_aws.rate_limits import AccountLimiter

STATUS_CHANGE = "Step Functions Execution Status Change"
EVENT_PAYLOAD_LIMIT = 248 * 1024  # "248KB" (developer guide); KB read as KiB (UNCONFIRMED)
CLOSED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
_NAMESPACE = uuid.UUID("3c1d0f7e-9a2b-4d5c-8e6f-7a8b9c0d1e2f")
_STATUS_ORDER = {"RUNNING": 0, "SUCCEEDED": 1, "FAILED": 1, "TIMED_OUT": 1, "ABORTED": 1}
# The history quota of a Standard execution, and how the execution fails on reaching it.
HISTORY_EVENTS_MAX = 25_000
HISTORY_LIMIT_ERROR = "States.Runtime"
HISTORY_LIMIT_CAUSE = "The execution reached the maximum number of history events (25000)."
_CLOSING_EVENTS = frozenset(
    {
        HistoryEventType.ExecutionSucceeded,
        HistoryEventType.ExecutionFailed,
        HistoryEventType.ExecutionAborted,
        HistoryEventType.ExecutionTimedOut,
    }
)
# Java SDK v2 client names Step Functions uses as ServiceName (PascalCase).
_SDK_SERVICE_NAMES = {
    "acmpca": "AcmPca",
    "autoscaling": "AutoScaling",
    "dynamodb": "DynamoDb",
    "ec2": "Ec2",
    "ecs": "Ecs",
    "eventbridge": "EventBridge",
    "lambda": "Lambda",
    "s3": "S3",
    "sfn": "Sfn",
    "sns": "Sns",
    "sqs": "Sqs",
}


class TimeKeeper:
    """Parks the sandbox's threads (Step Functions executions, Lambda runs) on the virtual clock
    and wakes them in a repeatable order.

    A parked thread waits for a virtual time; `wake_one` wakes the earliest due one (ties: a
    seeded hash of the thread's key and the time, so the order is fair and the same on every
    run with the same seed), and the sandbox loop waits until it parks again or ends before it
    wakes the next: only one of these threads runs at a time.
    """

    def __init__(self, clock: VirtualClock, seed: int = 0) -> None:
        self.clock = clock
        self.seed = seed
        # One lock; the loop waits on `_cond` for the busy count, and each parked thread on a
        # condition of its own over the same lock, so a wake-up wakes one thread, not all of
        # them (a burst parks a thousand Lambda runs at once).
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._busy = 0
        self._seq = 0
        self._sleepers: dict[int, dict[str, Any]] = {}  # seq -> entry
        self._heap: list[tuple[datetime, int, int]] = []  # (when, order, seq)
        self._deadlines: dict[int, tuple[datetime, Any, Callable[[], None]]] = {}
        self._status_events: list[tuple[datetime, str, int, dict[str, Any]]] = []
        self.started = 0
        self.finished = 0
        self.threads = 0  # other parkable threads (Lambda runs) started and not finished

    def enter(self) -> None:
        with self._cond:
            self._busy += 1
            self.started += 1

    def leave(self) -> None:
        with self._cond:
            self._busy -= 1
            self.finished += 1
            self._cond.notify_all()

    def enter_thread(self) -> None:
        """A parkable thread that is not an execution (a Lambda run) is about to start."""
        with self._cond:
            self._busy += 1
            self.threads += 1

    def leave_thread(self) -> None:
        with self._cond:
            self._busy -= 1
            self.threads -= 1
            self._cond.notify_all()

    def _order(self, key: str | None, when: datetime) -> int:
        if key is None:
            return 0
        text = f"{self.seed}|{key}|{when.isoformat()}".encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")

    def sleep(
        self, seconds: float, env: Any = None, *, key: str | None = None, yield_: bool = False
    ) -> None:
        """Park the calling thread until the virtual clock has moved ``seconds`` on.

        `interrupt` (a stop or the execution's timeout) ends the sleep of ``env`` early.
        ``yield_``: park even for 0 seconds (wait for this thread's turn).
        """
        if seconds <= 0 and not yield_:
            return
        key = key if key is not None else current_key()
        with self._cond:
            # Whole microseconds, rounded up: a wake-up is never before the time asked for.
            when = self.clock.now() + timedelta(microseconds=math.ceil(max(0.0, seconds) * 1e6))
            if env is not None and not env.is_running():
                return  # stopped or timed out already: don't start waiting
            self._seq += 1
            wakeup = threading.Condition(self._lock)
            entry = {"when": when, "seq": self._seq, "woken": False, "env": env, "cond": wakeup}
            self._sleepers[self._seq] = entry
            heapq.heappush(self._heap, (when, self._order(key, when), self._seq))
            self._busy -= 1
            self._cond.notify_all()
            while not entry["woken"]:
                wakeup.wait()
            # wake_one() / interrupt() counted this thread busy again before waking it.

    def interrupt(self, env: Any) -> int:
        """Wake the sleeps of this execution now (it was stopped or timed out)."""
        with self._cond:
            mine = [s for s in self._sleepers.values() if s["env"] is env]
            for entry in mine:
                del self._sleepers[entry["seq"]]  # its heap item is skipped when it surfaces
                entry["woken"] = True
                self._busy += 1
                entry["cond"].notify()
            if mine:
                self._cond.notify_all()
            return len(mine)

    def set_deadline(self, env: Any, when: datetime, on_expire: Callable[[], None]) -> None:
        with self._cond:
            self._deadlines[id(env)] = (when, env, on_expire)

    def clear_deadline(self, env: Any) -> None:
        with self._cond:
            self._deadlines.pop(id(env), None)

    def wait_quiet(self, timeout: float = 60.0) -> None:
        """Block until every parkable thread is parked or done (``timeout`` real seconds)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._busy == 0, timeout=timeout):
                raise TimeoutError(f"{self._busy} sandbox thread(s) still busy")

    def _top(self) -> tuple[datetime, int, int] | None:
        while self._heap and self._heap[0][2] not in self._sleepers:
            heapq.heappop(self._heap)  # woken by interrupt
        return self._heap[0] if self._heap else None

    def next_wake(self) -> datetime | None:
        with self._cond:
            top = self._top()
            times = [top[0]] if top else []
            times += [when for when, _, _ in self._deadlines.values()]
            return min(times, default=None)

    def _expire_due(self) -> int:
        with self._cond:
            now = self.clock.now()
            expired = sorted(
                ((when, key) for key, (when, _, _) in self._deadlines.items() if when <= now),
                key=lambda item: item[0],
            )
            expiries = [self._deadlines.pop(key) for _, key in expired]
        for _, env, on_expire in expiries:
            on_expire()  # ends the execution TIMED_OUT (its state machine is parked)
            self.interrupt(env)
        return len(expiries)

    def _wake(self, seq: int) -> None:
        entry = self._sleepers.pop(seq)
        entry["woken"] = True
        self._busy += 1
        entry["cond"].notify()

    def wake_one(self) -> int:
        """Apply due execution timeouts, then wake the earliest due sleeper; how many woke."""
        woke = self._expire_due()
        with self._cond:
            top = self._top()
            if top is None or top[0] > self.clock.now():
                return woke
            heapq.heappop(self._heap)
            self._wake(top[2])
            self._cond.notify_all()
            return woke + 1

    def wake_due(self) -> int:
        """Apply due execution timeouts, then wake every due sleeper at once; how many woke."""
        woke = self._expire_due()
        with self._cond:
            now = self.clock.now()
            while (top := self._top()) is not None and top[0] <= now:
                heapq.heappop(self._heap)
                self._wake(top[2])
                woke += 1
            self._cond.notify_all()
            return woke

    @property
    def parked(self) -> int:
        with self._cond:
            return len(self._sleepers)

    @property
    def running(self) -> int:
        """Executions started and not finished (busy or parked)."""
        with self._cond:
            return self.started - self.finished

    # --- status-change events --------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        detail = event["detail"]
        with self._cond:
            now = self.clock.now()
            self._status_events.append(
                (now, detail["executionArn"], _STATUS_ORDER[detail["status"]], event)
            )

    def drain_status_events(self) -> list[dict[str, Any]]:
        """The status-change events emitted so far, in a repeatable order (time, ARN, status)."""
        with self._cond:
            events = sorted(self._status_events, key=lambda item: item[:3])
            self._status_events.clear()
        return [event for *_, event in events]


_keeper: TimeKeeper | None = None
_instrument: Instrument | None = None
_installed = False
_local = threading.local()
_close_lock = threading.Lock()
# --- rate-limits hook (local_aws.rate_limits): the account's buckets ------------------------
_limiter: AccountLimiter | None = None


def use_limiter(limiter: AccountLimiter | None) -> None:
    """Count the state machine's aws-sdk calls and its state transitions against these buckets
    (StateTransition: a transition waits on the virtual clock for its token, as the developer
    guide's ExecutionThrottled metric describes; never an error)."""
    global _limiter
    _limiter = limiter
    _sessions.clear()
    _clients.clear()


def current_key() -> str | None:
    """The key of the calling parkable thread (an execution's ARN, a Lambda run's id), else
    None: only threads with a key may park on the virtual clock."""
    return getattr(_local, "key", None)


def set_thread_key(key: str | None) -> None:
    _local.key = key


def park(seconds: float) -> bool:
    """Park the calling thread ``seconds`` on the virtual clock (not interruptible); False,
    without waiting, when it is not a parkable sandbox thread."""
    keeper = _keeper
    if keeper is None or current_key() is None:
        return False
    keeper.sleep(seconds)
    return True


# --- end of the rate-limits hook -----------------------------------------------------------


def use_timekeeper(keeper: TimeKeeper | None) -> None:
    global _keeper
    _keeper = keeper


def use_instrument(instrument: Instrument | None) -> None:
    """Route the state machine's own AWS calls through this instrument (scope "states")."""
    global _instrument
    _instrument = instrument
    _sessions.clear()
    _clients.clear()


def _sleep(seconds: float) -> None:
    if _keeper is None:
        time.sleep(seconds)
    else:
        _keeper.sleep(seconds, getattr(_local, "env", None))


# --- virtual dates ------------------------------------------------------------------------


class _ClockDatetime(datetime):
    """``datetime`` whose ``now()`` reads the sandbox clock while a keeper is in use."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        keeper = _keeper
        if keeper is None:
            return datetime.now(tz)
        now = keeper.clock.now()
        return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)


_DATETIME = SimpleNamespace(datetime=_ClockDatetime, timezone=timezone, timedelta=timedelta)


def _epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


# --- closing executions and their events --------------------------------------------------


def status_change_event(execution: Any, status: str) -> dict[str, Any]:
    """The EventBridge event for this execution's status (see the module docstring)."""
    arn = execution.exec_arn
    input_text = execution.execution_input
    output_text = None
    if status == "SUCCEEDED" and execution.output is not None:
        output = execution.output
        output_text = (
            output if isinstance(output, str) else json.dumps(output, separators=(",", ":"))
        )
    output_included = output_text is None or len(json.dumps(output_text)) <= EVENT_PAYLOAD_LIMIT
    if not output_included:
        output_text = None
    escaped = len(json.dumps(input_text)) + (len(json.dumps(output_text)) if output_text else 0)
    input_included = escaped <= EVENT_PAYLOAD_LIMIT
    detail: dict[str, Any] = {
        "executionArn": arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": _epoch_ms(execution.start_date),
        "stopDate": _epoch_ms(execution.stop_date) if status != "RUNNING" else None,
        "input": input_text if input_included else None,
        "inputDetails": {"included": input_included},
        "output": output_text,
        "outputDetails": {"included": output_included} if status == "SUCCEEDED" else None,
    }
    if execution.error is not None:
        detail["error"] = execution.error
    if execution.cause is not None:
        detail["cause"] = execution.cause
    when = execution.stop_date if status != "RUNNING" else execution.start_date
    return {
        "version": "0",
        "id": str(uuid.uuid5(_NAMESPACE, f"{arn}/{status}")),
        "detail-type": STATUS_CHANGE,
        "source": "aws.states",
        "account": execution.account_id,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": execution.region_name,
        "resources": [arn],
        "detail": detail,
    }


def _close(execution: Any, status: ExecutionStatus, when: datetime) -> bool:
    """Close the execution once (stop, timeout or its end): status, stopDate, the event."""
    with _close_lock:
        closed = getattr(execution, "_sandbox_closed", None)
        if closed is not None:
            execution.exec_status, execution.stop_date = closed  # a later reflection: undo it
            return False
        execution.exec_status = status
        execution.stop_date = when
        execution._sandbox_closed = (status, when)
    keeper = _keeper
    if keeper is not None and _is_standard(execution):
        keeper.emit(status_change_event(execution, status.value))
    return True


def _is_standard(execution: Any) -> bool:
    """Express workflows emit no status-change events (developer guide, same page)."""
    return str(getattr(execution.sm_type, "value", execution.sm_type)) != "EXPRESS"


def _wait_for_env(execution: Any) -> Any:
    worker = execution.exec_worker
    for _ in range(500):  # the worker's thread builds its environment first thing
        if worker is not None and worker.env is not None:
            return worker.env
        time.sleep(0.002)
    return None


def _stop(execution: Any, error: str | None = None, cause: str | None = None) -> None:
    keeper = _keeper
    assert keeper is not None
    if execution.exec_status != ExecutionStatus.RUNNING:
        return  # already closed: nothing changes
    now = keeper.clock.now()
    env = _wait_for_env(execution)
    if env is not None:
        env.set_stop(stop_date=now, cause=cause, error=error)
    if _close(execution, ExecutionStatus.ABORTED, now) and env is not None:
        keeper.clear_deadline(env)
        keeper.interrupt(env)


def _time_out(execution: Any, env: Any) -> None:
    keeper = _keeper
    if keeper is None or execution.exec_status != ExecutionStatus.RUNNING or not env.is_running():
        return
    env.set_timed_out()
    _close(execution, ExecutionStatus.TIMED_OUT, keeper.clock.now())


# --- error names --------------------------------------------------------------------------


class InjectedTaskError(Exception):
    """A ``task_error`` fault: the Task fails with this error name on Step Functions' side."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


def _error_name(name: str) -> ErrorName:
    if name.startswith("States."):
        try:
            return StatesErrorName.from_name(name)
        except Exception:
            return ErrorName(error_name=name)  # type: ignore[abstract]
    return CustomErrorName(name)


def sdk_error_name(service: str, code: str) -> str:
    """Step Functions' error name for an AWS SDK integration's error code (module docstring)."""
    pascal = _SDK_SERVICE_NAMES.get(service.lower(), service[:1].upper() + service[1:])
    if not _is_modeled_error(service, code):
        return f"{pascal}.{pascal}Exception"
    return f"{pascal}.{code}" if code.endswith("Exception") else f"{pascal}.{code}Exception"


_modeled: dict[str, set[str]] = {}


def _is_modeled_error(service: str, code: str) -> bool:
    if service not in _modeled:
        try:
            model = botocore.session.get_session().get_service_model(service)
            codes = set()
            for shape in model.error_shapes:
                codes.add(shape.name)
                codes.add(shape.metadata.get("error", {}).get("code", shape.name))
            _modeled[service] = codes
        except Exception:
            _modeled[service] = set()
    return code in _modeled[service]


def _task_fault(service: str, operation: str) -> None:
    instrument = _instrument
    if _keeper is None or instrument is None:
        return
    op = f"states:{service}:{operation}"
    rule = instrument.decide(op, ("task_error",))
    if rule is not None:
        error = rule.error or "States.TaskFailed"
        raise InjectedTaskError(error, rule.message or f"Injected {error} on {op}")


_sessions: dict[str, Any] = {}
# One client per Region and service, made once: making a botocore client costs more than most
# calls it makes (its handlers come from the session, faults and rate limits included).
_clients: dict[tuple[str, str], Any] = {}
_sessions_lock = threading.Lock()


def _client_for(original: Callable[..., Any]) -> Callable[..., Any]:
    """boto_client_for that builds the client from the instrumented "states" session."""

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        instrument = _instrument
        if _keeper is None or instrument is None:
            return original(region=region, service=service, state_credentials=state_credentials)
        from botocore.config import Config

        with _sessions_lock:
            client = _clients.get((region, service))
            if client is not None:
                return client
            session = _sessions.get(region)
            if session is None:
                session = _sessions[region] = instrument.session(region, scope="states")
                if _limiter is not None:
                    _limiter.attach(session, "states")
            client = _clients[(region, service)] = session.client(
                service,
                aws_access_key_id="ak",
                aws_secret_access_key="sk",
                config=Config(
                    parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1}
                ),
            )
            return client

    return client_for


# --- installing the patches ---------------------------------------------------------------


def install() -> None:
    """Patch moto's interpreter (idempotent). Without a TimeKeeper in use it behaves as moto."""
    global _installed
    if _installed:
        return
    _install_time()
    _install_executions()
    _install_errors()
    _install_history_limit()
    _install_jsonpath_cache()
    execute_state.Thread = _ExecutionTaskThread  # type: ignore[attr-defined, misc]
    _installed = True


class _ExecutionTaskThread(threading.Thread):
    """moto runs each Task state's work (a lambda:invoke, an aws-sdk call) in a thread of its
    own while the execution's thread waits for it. That thread acts for the execution: it
    parks on the virtual clock under the execution's key, so a Lambda run invoked by the state
    machine spends virtual time on its calls' latency and botocore's back-offs, as an
    asynchronous run does (without the key those waits were skipped: instant retries)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._execution_key = current_key()
        self._execution_env = getattr(_local, "env", None)

    def run(self) -> None:
        _local.key = self._execution_key
        _local.env = self._execution_env
        super().run()


def _install_time() -> None:
    original_wait = wait_function.WaitFunction._wait_interval

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if _keeper is None:
            original_wait(self, env, wait_seconds)
        else:
            _keeper.sleep(wait_seconds, getattr(_local, "env", env))

    wait_function.WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    # Retry intervals (with backoff and jitter) wait on the same clock.
    retrier_decl.time = SimpleNamespace(sleep=_sleep, time=time.time)  # type: ignore[attr-defined]
    for module in (parser_models, execution_module, event_manager, state_module, wait_timestamp):
        module.datetime = _DATETIME  # type: ignore[attr-defined]

    original_eval = program.Program.eval

    def eval_program(self: Any, env: Any) -> None:
        keeper = _keeper
        worker = getattr(env, "_sandbox_worker", None)
        if keeper is None or worker is None:
            return original_eval(self, env)
        execution = worker._execution_communication.execution
        if self.timeout_seconds is not None:
            when = execution.start_date + timedelta(seconds=self.timeout_seconds.timeout_seconds)
            keeper.set_deadline(env, when, lambda: _time_out(execution, env))
        env.next_state_name = self.start_at.start_at_name

        def body() -> None:
            _local.env = env
            _local.key = execution.exec_arn  # parkable; ties ordered by it (TimeKeeper)
            keeper.sleep(0, env, yield_=True)  # run when the loop says, one thread at a time
            eval_component.EvalComponent.eval(self, env)

        # Same shape as moto (a thread for the body), but the timeout is on the virtual clock.
        thread = threading.Thread(target=body, daemon=True)
        TMP_THREADS.append(thread)
        thread.start()
        thread.join()
        keeper.clear_deadline(env)

    program.Program.eval = eval_program  # type: ignore[method-assign]

    # --- rate-limits hook: each state entered takes a StateTransition token, or waits for one.
    field_cls = state_module.CommonStateField
    original_body = field_cls._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        limiter, keeper = _limiter, _keeper
        if limiter is not None and keeper is not None and current_key() is not None:
            waited = 0.0
            while (wait := limiter.transition_wait()) > 0 and env.is_running():
                keeper.sleep(wait, env)
                waited += wait
            if waited:
                limiter.note_transition_delay(waited)
        original_body(self, env)

    field_cls._eval_body = _eval_body  # type: ignore[method-assign]


def _install_executions() -> None:
    worker = execution_worker.ExecutionWorker
    original_start = worker.start
    original_logic = worker._execution_logic
    original_env = worker._get_evaluation_environment

    def start(self: Any) -> None:
        keeper = _keeper
        self._sandbox_keeper = keeper
        if keeper is not None:
            keeper.enter()  # counted busy before its thread exists, so the loop waits for it
        original_start(self)

    def _execution_logic(self: Any) -> None:
        try:
            original_logic(self)
        finally:
            keeper = getattr(self, "_sandbox_keeper", None)
            if keeper is not None:
                keeper.leave()

    def _get_evaluation_environment(self: Any) -> Any:
        env = original_env(self)
        env._sandbox_worker = self  # the root environment knows its execution
        if _is_standard(self._execution_communication.execution):
            env.event_manager._sandbox_root = env  # its history is held to the quota
        return env

    worker.start = start  # type: ignore[method-assign]
    worker._execution_logic = _execution_logic  # type: ignore[method-assign]
    worker._get_evaluation_environment = _get_evaluation_environment  # type: ignore[method-assign]

    comm = execution_module.BaseExecutionWorkerCommunication
    original_terminated = comm.terminated

    def terminated(self: Any) -> None:
        original_terminated(self)
        if _keeper is not None:
            execution = self.execution
            _close(execution, execution.exec_status, _keeper.clock.now())

    comm.terminated = terminated  # type: ignore[method-assign]

    execution_cls = execution_module.Execution
    original_exec_start = execution_cls.start
    original_stop = execution_cls.stop

    def exec_start(self: Any) -> None:
        keeper = _keeper
        if keeper is not None and _is_standard(self):
            self.exec_status = ExecutionStatus.RUNNING
            keeper.emit(status_change_event(self, "RUNNING"))
        original_exec_start(self)

    def stop(self: Any, stop_date: datetime, error: str | None, cause: str | None) -> None:
        if _keeper is None:
            original_stop(self, stop_date, error, cause)
        else:
            _stop(self, error or None, cause or None)

    execution_cls.start = exec_start  # type: ignore[method-assign]
    execution_cls.stop = stop  # type: ignore[method-assign]

    backend = parser_models.StepFunctionsParserBackend
    original_start_execution = backend.start_execution

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        if _keeper is not None:
            if name is None:
                # Deterministic, unlike a random UUID: runs with the same seed stay identical.
                count = sum(len(sm.executions) for sm in self.state_machines)
                name = str(uuid.uuid5(_NAMESPACE, f"{state_machine_arn}/{count}"))
            self._validate_name(name)
        return original_start_execution(
            self, state_machine_arn, name, execution_input, trace_header
        )

    backend.start_execution = start_execution  # type: ignore[method-assign]

    response = sfn_responses.StepFunctionResponse
    original_describe = response.describe_execution
    original_list = response.list_executions

    def describe_execution(self: Any) -> Any:
        result = original_describe(self)
        body = result.result
        if body.get("status") == ExecutionStatus.TIMED_OUT.value and "stopDate" not in body:
            execution = self.stepfunction_backend.describe_execution(body["executionArn"])
            body["stopDate"] = execution.stop_date
        return result

    def list_executions(self: Any) -> Any:
        result = original_list(self)
        for item in result.result.get("executions", []):
            if item.get("status") == ExecutionStatus.TIMED_OUT.value and "stopDate" not in item:
                execution = self.stepfunction_backend.describe_execution(item["executionArn"])
                item["stopDate"] = execution.stop_date
        return result

    response.describe_execution = describe_execution  # type: ignore[method-assign]
    response.list_executions = list_executions  # type: ignore[method-assign]


class HistoryLimitReached(Exception):
    """Raised in place of a Task's integration call once its execution's history is full."""


_history_lock = threading.RLock()


def history_full(env: Any) -> bool:
    """Whether this execution (or a frame of it) failed on the history quota."""
    manager = getattr(env, "event_manager", None)
    return getattr(manager, "_sandbox_history_failure", None) is not None


def execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """The events of an execution's history, as GetExecutionHistory lists them (moto's, read in
    process: through the API, 25,000 events take seconds to serialize and parse)."""
    parts = execution_arn.split(":")
    backend = parser_models.stepfunctions_parser_backends[parts[4]][parts[3]]
    execution = backend.describe_execution(execution_arn)
    return list(execution.to_history_output()["events"])


def _install_history_limit() -> None:
    manager_cls = event_manager.EventManager
    original_add = manager_cls.add_event

    def add_event(self: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        root = getattr(self, "_sandbox_root", None)
        if _keeper is None or root is None:
            return int(original_add(self, context, event_type, *args, **kwargs))
        with _history_lock:
            closing = event_type in _CLOSING_EVENTS
            if getattr(self, "_sandbox_history_failure", None) is not None and not closing:
                return int(context.last_published_event_id)  # failed: nothing more is written
            if not closing and len(self._history_event_list) >= HISTORY_EVENTS_MAX - 1:
                failure = ExecutionFailedEventDetails(
                    error=HISTORY_LIMIT_ERROR, cause=HISTORY_LIMIT_CAUSE
                )
                self._sandbox_history_failure = failure
                root.set_error(failure)  # the program loop stops and writes ExecutionFailed
                return int(context.last_published_event_id)
            return int(original_add(self, context, event_type, *args, **kwargs))

    manager_cls.add_event = add_event  # type: ignore[method-assign]

    # Whatever the interpreter makes of a state cut short (a Catch, a runtime error), the
    # execution's error stays the quota's.
    env_cls = environment_module.Environment
    original_set_error = env_cls.set_error

    def set_error(self: Any, error: Any) -> None:
        failure = getattr(self.event_manager, "_sandbox_history_failure", None)
        original_set_error(self, failure if failure is not None else error)

    env_cls.set_error = set_error  # type: ignore[method-assign]


def _install_jsonpath_cache() -> None:
    """moto parses a JSONPath again each time a state reads it (a new parser each time, about a
    millisecond, most of a state's cost); a path always parses to the same expression, which
    finding and updating leave unchanged: parse each path once. Speed only."""
    for module in (json_path_module, result_path_module):
        parse = module.parse  # type: ignore[attr-defined]
        if not hasattr(parse, "cache_info"):
            module.parse = functools.lru_cache(maxsize=4096)(parse)  # type: ignore[attr-defined]


def _install_errors() -> None:
    callback = state_task_service_callback.StateTaskServiceCallback
    original_from_error = callback._from_error

    def _from_error(self: Any, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, InjectedTaskError):
            return FailureEvent(
                env=env,
                error_name=_error_name(ex.error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=ex.error,
                        cause=ex.cause,
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        return original_from_error(self, env, ex)

    callback._from_error = _from_error  # type: ignore[method-assign]

    aws_sdk = state_task_service_aws_sdk.StateTaskServiceAwsSdk
    original_sdk_from_error = aws_sdk._from_error
    original_sdk_eval = aws_sdk._eval_service_task

    def sdk_from_error(self: Any, env: Any, ex: Exception) -> FailureEvent:
        if not isinstance(ex, ClientError) or _keeper is None:
            return original_sdk_from_error(self, env, ex)
        service = self.resource.api_name
        error = sdk_error_name(service, ex.response["Error"]["Code"])
        meta = ex.response.get("ResponseMetadata", {})
        pascal = error.split(".", 1)[0]
        cause = (
            f"{ex.response['Error'].get('Message', '')} (Service: {pascal}, "
            f"Status Code: {meta.get('HTTPStatusCode')}, Request ID: {meta.get('RequestId')})"
        )
        return self._get_task_failure_event(env=env, error=error, cause=cause)

    def sdk_eval(
        self: Any,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict,
        state_credentials: Any,
    ) -> None:
        if history_full(env):
            raise HistoryLimitReached(HISTORY_LIMIT_CAUSE)
        botocore_op = _operation_name(self.resource.api_action)
        _task_fault(self._get_boto_service_name(), botocore_op)
        original_sdk_eval(
            self, env, resource_runtime_part, normalised_parameters, state_credentials
        )

    aws_sdk._from_error = sdk_from_error  # type: ignore[method-assign]
    aws_sdk._eval_service_task = sdk_eval  # type: ignore[method-assign]

    lam = state_task_service_lambda.StateTaskServiceLambda
    original_lambda_eval = lam._eval_service_task

    def lambda_eval(
        self: Any,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict,
        state_credentials: Any,
    ) -> None:
        if history_full(env):
            raise HistoryLimitReached(HISTORY_LIMIT_CAUSE)
        _task_fault("lambda", "Invoke")
        original_lambda_eval(
            self, env, resource_runtime_part, normalised_parameters, state_credentials
        )

    lam._eval_service_task = lambda_eval  # type: ignore[method-assign]

    for module in (state_task_service_aws_sdk, lambda_eval_utils):
        module.boto_client_for = _client_for(sfn_boto_client.boto_client_for)  # type: ignore[attr-defined]


def _operation_name(api_action: str) -> str:
    """The API's operation name ("completeLifecycleAction" -> "CompleteLifecycleAction")."""
    return api_action[:1].upper() + api_action[1:]
