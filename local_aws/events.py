"""EventBridge for the sandbox: rules with patterns, retry policies and dead-letter queues, on
virtual time, delivering to Lambda functions the way EventBridge does.

What each behaviour follows (EventBridge user guide pages, unless named otherwise):

- Pattern matching ("Amazon EventBridge event patterns", "Arrays in Amazon EventBridge event
  patterns", "Content filtering in Amazon EventBridge event patterns"): `pattern_matches`.
  Values are OR-lists; every field of the pattern must be in the event with the same nesting;
  when the event value is an array the field matches if any element matches. Filters:
  ``prefix``, ``suffix``, ``anything-but``, ``equals-ignore-case``, ``wildcard``, ``cidr``
  (moto's code, one value at a time), ``numeric`` (numbers only, never booleans), ``exists``
  (leaf fields; an object or a missing field does not "exist"), ``$or``. Exact values compare
  as JSON text, so ``300`` and ``300.0`` differ ("Amazon EventBridge event patterns").
  moto's own matcher (``EventPattern.matches_event``) does not descend into arrays of
  objects; here ``{"detail": {"attributes": {"name": ["x"]}}}`` matches an event whose
  ``detail.attributes`` is a list of objects one of which has ``name`` x, as aws/event-ruler
  does ("JSON Array Matching" in its README). The guide is silent on a pattern with several
  fields inside one array of objects (UNCONFIRMED): by default all of them must hold in the
  same element (event-ruler's JSON mode, ``same_element=True``); ``same_element=False`` lets
  them come from different elements (event-ruler's flattened mode).
- Delivery ("How EventBridge retries delivering events", "Event retry policy and using
  dead-letter queues"): a matched event reaches each rule's target after a small seeded
  latency (``latency_seconds``, default 0.1 to 0.5 s); EventBridge delivers at least once
  (``duplicate_probability`` adds a second copy); `delay_events` makes chosen events late by
  N seconds (e.g. 90 % of a lifecycle hook's heartbeat timeout); `lose_events` drops a share
  of a source's events (AWS calls e.g. Step Functions status-change events "best effort",
  EventBridge Events Reference "AWS Step Functions events").
- Target failures: only a failed call to the target is retried (for a Lambda target that is
  the asynchronous Invoke call: a function error is Lambda's business, see
  `local_aws.lambda_runtime`). 429 and 5xx answers are retried with exponential back-off and
  jitter up to the target's RetryPolicy (MaximumRetryAttempts 0-185, default 185;
  MaximumEventAgeInSeconds 60-86400, default 86400); other 4xx answers (missing function,
  no permission) go to the dead-letter queue at once (re:Post "How do I set up EventBridge
  retries and DLQ for failed invocations?": "EventBridge doesn't retry other 4xx"). The exact
  intervals are undocumented (UNCONFIRMED): here ``min(retry_max_seconds,
  retry_base_seconds * 2**n)`` scaled by a seeded factor in [0.5, 1]. An event whose next
  retry would be older than MaximumEventAgeInSeconds stops there.
- Dead-letter queue: an SQS message whose body is the event and whose attributes are
  RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION
  (``MaximumRetryAttempts`` or ``MaximumEventAgeInSeconds``) and RETRY_ATTEMPTS. Without a
  DLQ the event is dropped (recorded in ``dead_letters`` either way). The ERROR_CODE values
  (THROTTLING, NO_RESOURCE, NO_PERMISSIONS, ERROR_FROM_TARGET) are an assumption: the guide
  lists codes, not which error gives which.

- Scheduled rules ("Creating a rule that runs on a schedule", "Using cron and rate expressions
  to schedule rules in Amazon EventBridge"): a rule with a rate expression (``rate(2 minutes)``;
  `add_schedule`) sends its target a "Scheduled Event" (source ``aws.events``, ``resources`` the
  rule's ARN, ``detail`` {}) every period. "The minimum precision for schedules is one minute":
  each run falls at a seeded second within its minute (UNCONFIRMED where); the first comes one
  period after the rule is created. Its delivery and retries are those of any rule's target.

With `install` + `use_bus`, boto3's ``events.put_events`` lands on the sandbox bus, and
`moto_rules` reads the rules created with ``put_rule`` / ``put_targets`` (their RetryPolicy and
DeadLetterConfig included): the sandbox deploys its rules through boto3 and the bus delivers.
"""

from __future__ import annotations

import heapq
import json
import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import eq, ge, gt, le, lt
from typing import Any

from moto.events.models import EventPattern, EventsBackend, events_backends

from local_aws.clock import Clock

DEFAULT_MAX_RETRY_ATTEMPTS = 185
DEFAULT_MAX_EVENT_AGE_SECONDS = 86400
_NAMESPACE = uuid.UUID("6f1e2d3c-4b5a-4c7d-8e9f-0a1b2c3d4e5f")
_MISSING = object()


# --- pattern matching ----------------------------------------------------------------------


def pattern_matches(pattern: dict[str, Any], event: Any, *, same_element: bool = True) -> bool:
    """Whether ``event`` matches the EventBridge ``pattern`` (see the module docstring)."""
    return _match_object(pattern, event, same_element)


def _match_object(pattern: dict[str, Any], node: Any, same_element: bool) -> bool:
    if isinstance(node, list):
        objects = [el for el in node if isinstance(el, (dict, list))]
        if not objects:
            return _match_object(pattern, {}, same_element)
        if same_element:
            return any(_match_object(pattern, el, same_element) for el in objects)
        # Flattened: each field may be satisfied by a different element.
        return all(
            any(_match_field(key, sub, el, same_element) for el in objects)
            for key, sub in pattern.items()
        )
    if not isinstance(node, dict):
        node = {}  # a scalar where the pattern expects an object: its fields don't exist
    return all(_match_field(key, sub, node, same_element) for key, sub in pattern.items())


def _match_field(key: str, sub: Any, node: Any, same_element: bool) -> bool:
    if isinstance(node, list):
        return _match_object({key: sub}, node, same_element)
    if key == "$or":
        return any(_match_object(p, node, same_element) for p in sub)
    child = node.get(key, _MISSING) if isinstance(node, dict) else _MISSING
    if isinstance(sub, dict):
        return _match_object(sub, {} if child is _MISSING else child, same_element)
    if isinstance(sub, list):
        return _match_leaf(sub, child)
    return False


def _leaf_values(child: Any) -> list[Any]:
    """The leaf values at a field: none if missing or an object; an array's scalar elements."""
    if child is _MISSING or isinstance(child, dict):
        return []
    if isinstance(child, list):
        values: list[Any] = []
        for element in child:
            values.extend(_leaf_values(element))
        return values
    return [child]


def _match_leaf(filters: list[Any], child: Any) -> bool:
    values = _leaf_values(child)
    for f in filters:
        if isinstance(f, dict):
            name, arg = next(iter(f.items()))
            if name == "exists":
                if bool(values) == bool(arg):
                    return True
            elif name == "numeric":
                if any(_numeric(v, arg) for v in values):
                    return True
            elif any(EventPattern._does_item_match_named_filter(v, f) for v in values):
                return True
        elif any(_same_json(v, f) for v in values):
            return True
    return False


def _same_json(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, str) or isinstance(value, str):
        return value == wanted
    return json.dumps(value) == json.dumps(wanted)  # 300 vs 300.0 differ, true vs 1 differ


_NUMERIC_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lt,
    "<=": le,
    "=": eq,
    ">=": ge,
    ">": gt,
}


def _numeric(value: Any, spec: list[Any]) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return all(
        _NUMERIC_OPS[op](value, bound) for op, bound in zip(spec[::2], spec[1::2], strict=True)
    )


# --- rules, deliveries, dead letters -------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """A rule target's RetryPolicy (EventBridge API reference, RetryPolicy)."""

    maximum_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    maximum_event_age_seconds: int = DEFAULT_MAX_EVENT_AGE_SECONDS

    def __post_init__(self) -> None:
        if not 0 <= self.maximum_retry_attempts <= 185:
            raise ValueError("MaximumRetryAttempts must be 0 to 185")
        if not 60 <= self.maximum_event_age_seconds <= 86400:
            raise ValueError("MaximumEventAgeInSeconds must be 60 to 86400")

    @classmethod
    def from_api(cls, value: dict[str, Any] | None) -> RetryPolicy:
        value = value or {}
        return cls(
            int(value.get("MaximumRetryAttempts", DEFAULT_MAX_RETRY_ATTEMPTS)),
            int(value.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_SECONDS)),
        )


@dataclass
class Rule:
    """One rule and its (Lambda) target."""

    name: str
    pattern: dict[str, Any]
    target_function: str
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    dead_letter_arn: str | None = None
    arn: str = ""
    target_arn: str = ""
    same_element: bool = True

    def matches(self, event: dict[str, Any]) -> bool:
        return pattern_matches(self.pattern, event, same_element=self.same_element)


@dataclass(frozen=True)
class DeliveryError:
    """A failed call to the target, as EventBridge sees it."""

    code: str
    message: str
    status: int = 500

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


@dataclass
class Delivery:
    at: datetime
    rule: str
    event: dict[str, Any]
    attempt: int  # 0 = first try
    error: DeliveryError | None = None
    duplicate: bool = False


@dataclass
class DeadLetter:
    at: datetime
    rule: str
    event: dict[str, Any]
    error: DeliveryError
    condition: str  # MaximumRetryAttempts | MaximumEventAgeInSeconds
    retry_attempts: int
    queue_arn: str | None


@dataclass
class _Pending:
    when: datetime
    seq: int
    rule: Rule
    event: dict[str, Any]
    accepted_at: datetime
    attempt: int = 0
    duplicate: bool = False

    def __lt__(self, other: _Pending) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


@dataclass
class _Schedule:
    rule: Rule
    period_seconds: float
    next_minute: datetime  # the start of the minute the next run falls in
    next_at: datetime


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """A rate expression's period ("rate(5 minutes)"; the value 1 takes the singular unit)."""
    match = _RATE.match(expression.strip())
    if match is None:
        raise ValueError(f"not a rate expression the sandbox runs: {expression!r}")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1 or (value == 1) != (not unit.endswith("s")):
        raise ValueError(f"bad rate expression: {expression!r}")
    return value * _RATE_UNITS[unit.rstrip("s")]


@dataclass
class _Shaping:
    pattern: dict[str, Any]
    value: float
    remaining: int | None


def _error_code(error: DeliveryError) -> str:
    if error.status == 429 or "Throttl" in error.code or "TooManyRequests" in error.code:
        return "THROTTLING"
    if error.status == 404 or error.code == "ResourceNotFoundException":
        return "NO_RESOURCE"
    if error.status == 403 or "AccessDenied" in error.code:
        return "NO_PERMISSIONS"
    return "ERROR_FROM_TARGET"


@dataclass
class EventBus:
    """The default event bus: ``put`` events, ``deliver_due`` on the sandbox loop."""

    clock: Clock
    seed: int = 0
    latency_seconds: tuple[float, float] = (0.1, 0.5)
    duplicate_probability: float = 0.0
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    rules: list[Rule] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    lost: list[dict[str, Any]] = field(default_factory=list)
    # Extra rules read at each put (the sandbox reads moto's rules: `moto_rules`).
    rule_source: Callable[[], list[Rule]] | None = None
    # Sends a dead letter: (queue arn, body, message attributes); the sandbox sends to SQS.
    dead_letter_sink: Callable[[str, str, dict[str, str]], None] | None = None
    # Whether a scheduled rule is enabled now (DisableRule stops its runs; the sandbox asks moto).
    schedule_enabled: Callable[[str], bool] | None = None

    def __post_init__(self) -> None:
        self._queue: list[_Pending] = []
        self._seq = 0
        self._lock = threading.RLock()
        self._rng = random.Random(f"events/{self.seed}")
        self._delays: list[_Shaping] = []
        self._losses: list[_Shaping] = []
        self._ids = 0
        self._schedules: list[_Schedule] = []
        self._schedule_rng = random.Random(f"events/schedule/{self.seed}")

    # --- configuration ---------------------------------------------------------------------

    def add_rule(
        self,
        name: str,
        pattern: dict[str, Any],
        target_function: str,
        retry_policy: RetryPolicy | None = None,
        dead_letter_arn: str | None = None,
    ) -> Rule:
        rule = Rule(name, pattern, target_function, retry_policy or RetryPolicy(), dead_letter_arn)
        self.rules.append(rule)
        return rule

    def add_schedule(self, rule: Rule, expression: str) -> None:
        """A scheduled rule: its target gets a "Scheduled Event" every period (module doc)."""
        period = rate_seconds(expression)
        with self._lock:
            first = self.clock.now() + timedelta(seconds=period)
            self._schedules.append(_Schedule(rule, period, first, self._within(first)))

    def _within(self, minute: datetime) -> datetime:
        return minute + timedelta(seconds=self._schedule_rng.uniform(0, 59))

    def _fire_schedules(self, now: datetime) -> None:
        for schedule in self._schedules:
            while schedule.next_at <= now:
                enabled = self.schedule_enabled is None or self.schedule_enabled(schedule.rule.name)
                if not enabled:
                    schedule.next_minute += timedelta(seconds=schedule.period_seconds)
                    schedule.next_at = self._within(schedule.next_minute)
                    continue
                event = {
                    "version": "0",
                    "id": self.new_event_id(),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "account": schedule.rule.arn.split(":")[4] if schedule.rule.arn else "",
                    "time": schedule.next_minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": schedule.rule.arn.split(":")[3] if schedule.rule.arn else "",
                    "resources": [schedule.rule.arn] if schedule.rule.arn else [],
                    "detail": {},
                }
                when = schedule.next_at + timedelta(seconds=self._latency())
                self._push(_Pending(when, 0, schedule.rule, event, schedule.next_at))
                schedule.next_minute += timedelta(seconds=schedule.period_seconds)
                schedule.next_at = self._within(schedule.next_minute)

    def all_rules(self) -> list[Rule]:
        return [*self.rules, *(self.rule_source() if self.rule_source else [])]

    def delay_events(self, pattern: dict[str, Any], seconds: float, count: int | None = 1) -> None:
        """Deliver the next ``count`` events matching ``pattern`` ``seconds`` late (None: all)."""
        with self._lock:
            self._delays.append(_Shaping(pattern, seconds, count))

    def lose_events(self, pattern: dict[str, Any], probability: float) -> None:
        """Drop this share of the events matching ``pattern`` (seeded): best-effort sources."""
        with self._lock:
            self._losses.append(_Shaping(pattern, probability, None))

    # --- putting and delivering ------------------------------------------------------------

    def put(self, event: dict[str, Any]) -> int:
        """Queue the event for every rule it matches; returns how many matched (0 if lost)."""
        with self._lock:
            for loss in self._losses:
                if pattern_matches(loss.pattern, event) and self._rng.random() < loss.value:
                    self.lost.append(event)
                    return 0
            matched = [r for r in self.all_rules() if r.matches(event)]
            if not matched:
                self.unmatched.append(event)
                return 0
            now = self.clock.now()
            late = self._lateness(event)
            for rule in matched:
                when = now + timedelta(seconds=self._latency() + late)
                self._push(_Pending(when, 0, rule, event, now))
                if self._rng.random() < self.duplicate_probability:
                    again = when + timedelta(seconds=self._latency())
                    self._push(_Pending(again, 0, rule, event, now, duplicate=True))
            return len(matched)

    def new_event_id(self) -> str:
        """A deterministic event id (the sandbox's runs repeat with the same seed)."""
        with self._lock:
            self._ids += 1
            return str(uuid.uuid5(_NAMESPACE, f"{self.seed}/{self._ids}"))

    def _latency(self) -> float:
        low, high = self.latency_seconds
        return low if high <= low else self._rng.uniform(low, high)

    def _lateness(self, event: dict[str, Any]) -> float:
        for shaping in self._delays:
            if shaping.remaining != 0 and pattern_matches(shaping.pattern, event):
                if shaping.remaining is not None:
                    shaping.remaining -= 1
                return shaping.value
        return 0.0

    def _push(self, pending: _Pending) -> None:
        self._seq += 1
        pending.seq = self._seq
        heapq.heappush(self._queue, pending)

    def next_time(self) -> datetime | None:
        with self._lock:
            times = [s.next_at for s in self._schedules]
            if self._queue:
                times.append(self._queue[0].when)
            return min(times) if times else None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def deliver_due(self, deliver: Callable[[str, dict[str, Any]], DeliveryError | None]) -> bool:
        """Deliver what is due: ``deliver(function, event)`` returns None or the call's error."""
        delivered = False
        with self._lock:
            self._fire_schedules(self.clock.now())
        while True:
            with self._lock:
                if not self._queue or self._queue[0].when > self.clock.now():
                    return delivered
                item = heapq.heappop(self._queue)
            error = deliver(item.rule.target_function, item.event)
            now = self.clock.now()
            self.deliveries.append(
                Delivery(now, item.rule.name, item.event, item.attempt, error, item.duplicate)
            )
            delivered = True
            if error is not None:
                self._after_failure(item, error, now)

    def _after_failure(self, item: _Pending, error: DeliveryError, now: datetime) -> None:
        policy = item.rule.retry_policy
        if not error.retryable:
            self._dead_letter(item, error, "MaximumRetryAttempts", now)
            return
        if item.attempt >= policy.maximum_retry_attempts:
            self._dead_letter(item, error, "MaximumRetryAttempts", now)
            return
        with self._lock:
            backoff = min(self.retry_max_seconds, self.retry_base_seconds * 2**item.attempt)
            when = now + timedelta(seconds=backoff * self._rng.uniform(0.5, 1.0))
            if (when - item.accepted_at).total_seconds() > policy.maximum_event_age_seconds:
                self._dead_letter(item, error, "MaximumEventAgeInSeconds", now)
                return
            self._push(_Pending(when, 0, item.rule, item.event, item.accepted_at, item.attempt + 1))

    def _dead_letter(
        self, item: _Pending, error: DeliveryError, condition: str, now: datetime
    ) -> None:
        rule = item.rule
        self.dead_letters.append(
            DeadLetter(
                now, rule.name, item.event, error, condition, item.attempt, rule.dead_letter_arn
            )
        )
        if rule.dead_letter_arn and self.dead_letter_sink is not None:
            attributes = {
                "RULE_ARN": rule.arn or rule.name,
                "TARGET_ARN": rule.target_arn or rule.target_function,
                "ERROR_CODE": _error_code(error),
                "ERROR_MESSAGE": error.message,
                "EXHAUSTED_RETRY_CONDITION": condition,
                "RETRY_ATTEMPTS": str(item.attempt),
            }
            self.dead_letter_sink(rule.dead_letter_arn, json.dumps(item.event), attributes)


# --- moto: rules from put_rule / put_targets, put_events onto the bus ----------------------


def moto_rules(region: str, account_id: str, *, same_element: bool = True) -> list[Rule]:
    """The enabled rules of moto's default bus with a Lambda or SQS target, as sandbox `Rule`s
    (``target_function``: the function's name, or the queue's ARN)."""
    backend = events_backends[account_id][region]
    rules: list[Rule] = []
    for rule in backend.event_buses["default"].rules.values():
        pattern = rule.event_pattern.get_pattern()
        if rule.state != "ENABLED" or not pattern:
            continue
        for target in rule.targets:
            arn = target.get("Arn", "")
            if ":lambda:" in arn and ":function:" in arn:
                destination = arn.split(":function:", 1)[1].split(":")[0]
            elif arn.startswith("arn:aws:sqs:"):
                destination = arn  # a queue: the sandbox's deliver callback sends to it
            else:
                continue  # only Lambda and SQS targets are delivered in the sandbox
            rules.append(
                Rule(
                    name=rule.name,
                    pattern=pattern,
                    target_function=destination,
                    retry_policy=RetryPolicy.from_api(target.get("RetryPolicy")),
                    dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
                    arn=rule.arn,
                    target_arn=arn,
                    same_element=same_element,
                )
            )
    return rules


def rule_enabled(name: str, region: str, account_id: str) -> bool:
    """Whether moto's default bus has this rule, ENABLED (EnableRule / DisableRule)."""
    rule = events_backends[account_id][region].event_buses["default"].rules.get(name)
    return rule is not None and rule.state == "ENABLED"


def send_to_sqs(queue_arn: str, body: str, attributes: dict[str, str] | None = None) -> None:
    """Send a message to the SQS queue with this ARN (inside moto)."""
    import boto3

    _, _, _, region, account, name = queue_arn.split(":", 5)
    sqs = boto3.client("sqs", region_name=region)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
    if attributes:
        kwargs["MessageAttributes"] = {
            k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
        }
    sqs.send_message(**kwargs)


_bus: EventBus | None = None
_installed = False


def use_bus(bus: EventBus | None) -> None:
    global _bus
    _bus = bus


def install() -> None:
    """Route moto's PutEvents to the bus in use (idempotent); without one, moto's own."""
    global _installed
    if _installed:
        return
    original = EventsBackend.put_events

    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        bus = _bus
        if bus is None:
            return original(self, events)
        checked = [e for e in events if e.get("Source") and e.get("DetailType") and e.get("Detail")]
        if len(checked) != len(events) or len(events) > 10:
            return original(self, events)  # moto's validation answers
        entries = []
        for entry in events:
            try:
                detail = json.loads(entry["Detail"])
            except ValueError:
                entries.append(
                    {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
                )
                continue
            time = entry.get("Time")
            if isinstance(time, (int, float)):
                stamp = datetime.fromtimestamp(time, UTC)
            else:
                stamp = time if isinstance(time, datetime) else bus.clock.now()
            event_id = bus.new_event_id()
            bus.put(
                {
                    "version": "0",
                    "id": event_id,
                    "detail-type": entry["DetailType"],
                    "source": entry["Source"],
                    "account": self.account_id,
                    "time": stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": self.region_name,
                    "resources": entry.get("Resources", []),
                    "detail": detail,
                }
            )
            entries.append({"EventId": event_id})
        return entries

    EventsBackend.put_events = put_events  # type: ignore[method-assign]
    _installed = True
