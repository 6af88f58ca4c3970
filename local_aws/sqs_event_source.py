"""An SQS queue and the Lambda event source mapping that drains it, on the virtual clock.

moto's SQS keeps its visibility timeouts on the wall clock and runs no event source mapping, so
the sandbox models the intake queue itself, to these AWS docs:

- SQS developer guide, "Amazon SQS visibility timeout": a received message stays in the queue,
  hidden for VisibilityTimeout seconds from its receive; deleted, it is gone; not deleted, it is
  received again once the timeout runs out. "Amazon SQS standard queues": delivery is at least
  once (``duplicate_probability`` receives a message a second time, seeded).
- SQS developer guide, "Using dead-letter queues in Amazon SQS": each receive counts
  (ApproximateReceiveCount); a message received more than maxReceiveCount times moves to the
  RedrivePolicy's deadLetterTargetArn instead of being handed out again.
- Lambda developer guide, "Using Lambda with Amazon SQS" (with-sqs.html): the mapping polls the
  queue and invokes the function synchronously with up to BatchSize records (``Records[]`` with
  messageId, receiptHandle, body, attributes.ApproximateReceiveCount, eventSource "aws:sqs",
  eventSourceARN); a batch the function handles is deleted.
- Lambda developer guide, "Handling errors for an SQS event source in Lambda"
  (services-sqs-errorhandling.html), "Backoff strategy for failed invocations":
  - a function error (a timeout included) ends the attempt: the records stay hidden until the
    visibility timeout runs out and come back on a later receive, which counts;
  - a throttled invocation is retried by Lambda itself, the same batch with no new receive
    (ApproximateReceiveCount unchanged), backing off, for as long as the receive's visibility
    timeout lasts; then Lambda lets the batch go, the records become visible again and the next
    receive counts. The guide gives no retry intervals: ``throttle_retry_*`` (ASSUMED: 1 s,
    doubling, no cap). The batch keeps its place among the mapping's concurrent batches while
    it waits (ASSUMED: the guide does not say);
  - in both cases Lambda "gradually backs off", reducing the concurrency it gives the mapping,
    and scales it up again as invocations succeed. No figures are published: ``backoff_*``
    (ASSUMED: each failed invocation halves the batches the mapping will run at once, down to
    1; each success adds one back, until the ramp and MaximumConcurrency are the only limits
    again): the slow answers, so recovering from a spell of errors takes many successes. A
    Lambda service error (5xx) counts as a failed invocation (the guide names only the two
    kinds above) and, like a function error, returns the batch after the visibility timeout.
  - "Implementing partial batch responses": with ReportBatchItemFailures (FunctionResponseTypes,
    read from the template) the function answers ``{"batchItemFailures": [{"itemIdentifier":
    messageId}]}`` and only those return; an answer that names an unknown id or can't be read
    fails the whole batch. With it, Lambda does not scale the mapping down when invocations
    fail: read literally, for throttles as well as errors (a throttled batch is still retried,
    with the same gaps).
- Lambda developer guide, "Creating and configuring an Amazon SQS event source mapping"
  (services-sqs-configure.html): the visibility timeout should be six times the function's
  timeout, to leave Lambda room to retry a throttled batch: the retries above live in that room.
- Lambda developer guide, "Configuring scaling behavior for SQS event source mappings"
  (services-sqs-scaling.html), standard queues: with messages available the mapping runs five
  batches at once, adds up to 300 a minute while messages are still available (taken here as
  a steady 5 a second), at most 1,000, and scales back to five when traffic is low (here: as
  soon as no visible message waits; the pace is not published). ``scaling_ramp`` (default on)
  models this; off, a batch starts whenever a slot is free. The "as few as 2 batches"
  optimisation is not modelled (the guide says it is off with maximum concurrency, which the
  intake queue sets). "Configuring maximum concurrency for Amazon SQS event sources": at most
  MaximumConcurrency (2..1000) batches of the mapping run at once, whatever the ramp allows.

Each batch runs on a parkable thread of its own (as asynchronous invocations do), so a run takes
real virtual time and holds its unit of the mapping's concurrency for that long; a throttled
batch waits for its retry in the mapping (``next_time`` / ``run_due``), not on a thread.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local_aws.clock import Clock

_NAMESPACE = uuid.UUID("5a0c1d2e-8f3b-4c6d-9e7f-1a2b3c4d5e6f")
MAXIMUM_CONCURRENCY_RANGE = (2, 1000)
EVENT_SOURCE = "aws:sqs"
# Lambda DG "Configuring scaling behavior for SQS event source mappings" (standard queues).
SCALING_FIRST_BATCHES = 5
SCALING_BATCHES_PER_MINUTE = 300
SCALING_MOST_BATCHES = 1000
# Float slack when the ramp's level is compared with whole batches.
_EPSILON = 1e-9


def unqueued(event: Any) -> Any:
    """What a run of the mapping carried: the body of a batch of one record (the intake queue's
    batch size), parsed; any other event as it came."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or len(records) != 1 or not isinstance(records[0], dict):
        return event
    if records[0].get("eventSource") != EVENT_SOURCE:
        return event
    try:
        return json.loads(records[0].get("body") or "null")
    except ValueError:
        return event


@dataclass
class QueuedMessage:
    message_id: str
    body: str
    sent_at: datetime
    visible_at: datetime
    receive_count: int = 0
    seq: int = 0
    duplicate: bool = False  # a second copy (at-least-once delivery): never copied again

    def __lt__(self, other: QueuedMessage) -> bool:
        return (self.visible_at, self.seq) < (other.visible_at, other.seq)


@dataclass
class Attempt:
    """One invocation of the function with a received batch."""

    at: datetime
    outcome: str  # ok | function_error | throttled | service_error


@dataclass
class Receive:
    """One batch handed to the function, and what became of each record."""

    at: datetime
    message_ids: list[str]
    receive_counts: list[int]
    outcome: str = ""  # the last attempt's: ok | function_error | throttled | service_error
    failed: list[str] = field(default_factory=list)  # returned to the queue
    ended_at: datetime | None = None  # when the mapping let go of the batch
    # Every invocation with this receive: more than one when throttled ones were retried.
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class DeadLettered:
    at: datetime
    message_id: str
    body: str
    receive_count: int
    sent_at: datetime


@dataclass
class _Batch:
    """A received batch the mapping holds: running, or waiting to retry a throttled run."""

    messages: list[QueuedMessage]
    record: Receive
    hidden_until: datetime  # the receive's visibility timeout runs out here
    throttles: int = 0


@dataclass
class SqsEventSource:
    """One standard queue with a redrive policy, read by one function's event source mapping."""

    queue_arn: str
    function_name: str
    clock: Clock
    # Runs one invocation: (function name, payload bytes) -> (outcome, response payload bytes).
    invoke: Callable[[str, bytes], tuple[str, bytes]]
    batch_size: int = 10
    max_concurrency: int | None = None
    visibility_timeout_seconds: float = 30.0
    max_receive_count: int | None = None
    dead_letter_arn: str | None = None
    report_batch_item_failures: bool = False
    duplicate_probability: float = 0.0
    seed: int = 0
    scheduler: Any = None  # the sandbox's TimeKeeper; None runs batches inline
    # Sends a dead-lettered message on: (queue arn, body); the sandbox sends it to moto's SQS.
    dead_letter_sink: Callable[[str, str], None] | None = None
    # Retries of a throttled batch (no published figures; ASSUMED): the first this long after
    # the throttle, each later gap times the factor, at most the cap (None: no cap). A retry
    # that would fall at or past the end of the receive's visibility timeout is not made.
    throttle_retry_first_seconds: float = 1.0
    throttle_retry_factor: float = 2.0
    throttle_retry_max_seconds: float | None = None
    # Back-off after failed invocations (no published figures; ASSUMED, the slow end): each one
    # multiplies the batches the mapping runs at once by the factor (rounded down), never below
    # the floor; each success adds the step back. A factor of 1 turns the back-off off.
    backoff_factor: float = 0.5
    backoff_floor: int = 1
    backoff_recovery_step: int = 1
    # Standard queues' scaling: start at five batches, add 300 a minute while messages wait.
    scaling_ramp: bool = True
    receives: list[Receive] = field(default_factory=list)
    dead_lettered: list[DeadLettered] = field(default_factory=list)
    # Seconds each message waited in the queue before its first receive (message id -> s).
    first_wait: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        low, high = MAXIMUM_CONCURRENCY_RANGE
        if self.max_concurrency is not None and not low <= self.max_concurrency <= high:
            raise ValueError(f"MaximumConcurrency must be {low} to {high}")
        if self.visibility_timeout_seconds < 0:
            raise ValueError("VisibilityTimeout can't be negative")
        if self.throttle_retry_first_seconds <= 0 or self.throttle_retry_factor < 1:
            raise ValueError("throttle retries need a first wait > 0 and a factor >= 1")
        if not 0 < self.backoff_factor <= 1 or self.backoff_floor < 1:
            raise ValueError("the back-off needs a factor in (0, 1] and a floor >= 1")
        if self.backoff_recovery_step < 1:
            raise ValueError("the back-off's recovery step must be >= 1")
        self._lock = threading.RLock()
        self._queue: list[QueuedMessage] = []
        self._seq = 0
        self._running = 0  # batches the mapping holds (running or waiting for a retry)
        self._retries: list[tuple[datetime, int, _Batch]] = []  # (when, order, batch)
        self._retry_seq = 0
        self._backoff: int | None = None  # batches at once while backed off; None: not
        self._level = float(SCALING_FIRST_BATCHES)  # the ramp's batches at once ...
        self._level_at = self.clock.now()  # ... as of this time
        self._rng = random.Random(f"sqs/{self.seed}")
        self.sent = 0
        self.deleted = 0

    # --- the queue -----------------------------------------------------------------------

    def send(self, body: str) -> str:
        """SendMessage: visible at once."""
        with self._lock:
            self.sent += 1
            message_id = str(uuid.uuid5(_NAMESPACE, f"{self.queue_arn}/{self.sent}"))
            now = self.clock.now()
            self._push(QueuedMessage(message_id, body, now, now))
            return message_id

    def _push(self, message: QueuedMessage) -> None:
        self._seq += 1
        message.seq = self._seq
        heapq.heappush(self._queue, message)

    @property
    def depth(self) -> int:
        """Messages in the queue, visible or not (ApproximateNumberOfMessages + NotVisible)."""
        with self._lock:
            return len(self._queue)

    def counts(self) -> tuple[int, int]:
        """(visible, not visible) messages now: ApproximateNumberOfMessages and
        ApproximateNumberOfMessagesNotVisible, exact here (SQS's are approximate)."""
        with self._lock:
            now = self.clock.now()
            visible = sum(1 for m in self._queue if m.visible_at <= now)
            return visible, len(self._queue) - visible

    @property
    def pending(self) -> int:
        """Messages still in the queue and batches the mapping still holds."""
        with self._lock:
            return len(self._queue) + self._running

    def oldest_age_seconds(self) -> float:
        with self._lock:
            if not self._queue:
                return 0.0
            oldest = min(m.sent_at for m in self._queue)
        return (self.clock.now() - oldest).total_seconds()

    # --- how many batches the mapping runs at once -----------------------------------------

    def _waiting_since(self, now: datetime) -> datetime | None:
        """When the earliest message now visible became visible (None: none is)."""
        if self._queue and self._queue[0].visible_at <= now:
            return self._queue[0].visible_at
        return None

    def _ramp_level(self, now: datetime) -> float:
        """The ramp's batches at once at ``now``: it grows only while messages wait."""
        since = self._waiting_since(now)
        if since is None:
            return self._level
        grown = (now - max(self._level_at, since)).total_seconds() * SCALING_BATCHES_PER_MINUTE
        return min(self._level + grown / 60, float(SCALING_MOST_BATCHES))

    def _settle_ramp(self, now: datetime) -> None:
        # Nothing visible left waiting: traffic is low, the pollers fall back to the start.
        waiting = self._waiting_since(now) is not None
        self._level = self._ramp_level(now) if waiting else float(SCALING_FIRST_BATCHES)
        self._level_at = now

    def _cap(self) -> int:
        return self.max_concurrency or SCALING_MOST_BATCHES

    def _undamped_limit(self, now: datetime) -> float:
        limit = float(self._cap())
        if self.scaling_ramp:
            limit = min(limit, self._ramp_level(now))
        return limit

    def _limit(self, now: datetime) -> float:
        limit = self._undamped_limit(now)
        return limit if self._backoff is None else min(limit, float(self._backoff))

    @property
    def concurrency_limit(self) -> int:
        """How many batches the mapping would hold at once now (ramp, back-off, maximum)."""
        with self._lock:
            return math.floor(self._limit(self.clock.now()) + _EPSILON)

    def _room(self, now: datetime) -> bool:
        return self._running + 1 <= self._limit(now) + _EPSILON

    def _back_off(self, now: datetime) -> None:
        """A failed invocation: fewer batches at once (not with partial batch responses)."""
        if self.report_batch_item_failures or self.backoff_factor >= 1:
            return
        current = math.floor(self._limit(now) + _EPSILON)
        self._backoff = max(self.backoff_floor, math.floor(current * self.backoff_factor))

    def _recover(self, now: datetime) -> None:
        if self._backoff is None:
            return
        self._backoff += self.backoff_recovery_step
        if self._backoff >= self._undamped_limit(now) - _EPSILON:
            self._backoff = None  # back where the ramp and the maximum put it

    # --- the event source mapping ----------------------------------------------------------

    def next_time(self) -> datetime | None:
        """When the mapping next has something to do: a throttled batch's retry, or a batch to
        hand out (None while neither: a batch ending frees a slot, and the loop looks again
        then)."""
        with self._lock:
            now = self.clock.now()
            times = [self._retries[0][0]] if self._retries else []
            hard = float(self._cap()) if self._backoff is None else min(self._cap(), self._backoff)
            if self._queue and self._running + 1 <= hard + _EPSILON:
                head = self._queue[0].visible_at
                times.append(head if head > now else self._ramp_time(now))
            return min(times, default=None)

    def _ramp_time(self, now: datetime) -> datetime:
        """When the ramp lets one more batch start (messages wait now)."""
        if not self.scaling_ramp:
            return now
        short = self._running + 1 - self._ramp_level(now)
        if short <= _EPSILON:
            return now
        seconds = short * 60 / SCALING_BATCHES_PER_MINUTE
        # Whole microseconds, rounded up and one more: at that time the level is there.
        return now + timedelta(microseconds=math.ceil(seconds * 1e6) + 1)

    def run_due(self) -> bool:
        """Retry the throttled batches that are due, then hand the visible messages out, a
        batch per free slot; True if any batch started."""
        started = False
        while True:
            with self._lock:
                now = self.clock.now()
                batch = self._due_retry(now)
                if batch is None:
                    self._settle_ramp(now)
                    messages = self._receive_batch() if self._room(now) else []
                    if messages:
                        batch = self._hold(messages, now)
                    self._settle_ramp(now)
                if batch is None:
                    return started
            started = True
            self._start(batch)

    def _due_retry(self, now: datetime) -> _Batch | None:
        if self._retries and self._retries[0][0] <= now:
            return heapq.heappop(self._retries)[2]
        return None

    def _hold(self, messages: list[QueuedMessage], now: datetime) -> _Batch:
        record = Receive(now, [m.message_id for m in messages], [m.receive_count for m in messages])
        self.receives.append(record)
        self._running += 1
        return _Batch(messages, record, min(m.visible_at for m in messages))

    def _receive_batch(self) -> list[QueuedMessage]:
        now = self.clock.now()
        batch: list[QueuedMessage] = []
        while self._queue and self._queue[0].visible_at <= now and len(batch) < self.batch_size:
            message = heapq.heappop(self._queue)
            message.receive_count += 1
            if (
                self.max_receive_count is not None
                and message.receive_count > self.max_receive_count
            ):
                self._dead_letter(message, now)
                continue
            if message.receive_count == 1:
                self.first_wait[message.message_id] = (now - message.sent_at).total_seconds()
            message.visible_at = now + timedelta(seconds=self.visibility_timeout_seconds)
            self._push(message)  # still in the queue, hidden until deleted or visible again
            batch.append(message)
            if not message.duplicate and self._rng.random() < self.duplicate_probability:
                # At least once: the same message comes again in a later receive (a second
                # copy on another server), a second after this one.
                copy = QueuedMessage(
                    message.message_id,
                    message.body,
                    message.sent_at,
                    now + timedelta(seconds=1),
                    message.receive_count,
                    duplicate=True,
                )
                self._push(copy)
        return batch

    def _dead_letter(self, message: QueuedMessage, now: datetime) -> None:
        handed_out = message.receive_count - 1
        self.dead_lettered.append(
            DeadLettered(now, message.message_id, message.body, handed_out, message.sent_at)
        )
        if self.dead_letter_arn and self.dead_letter_sink is not None:
            self.dead_letter_sink(self.dead_letter_arn, message.body)

    def _start(self, batch: _Batch) -> None:
        if self.scheduler is None:
            self._run(batch)
            return
        from local_aws.stepfunctions import set_thread_key

        self.scheduler.enter_thread()
        first = batch.messages[0]
        key = f"sqs/{self.function_name}/{first.message_id}/{first.receive_count}"
        if batch.throttles:
            key += f"/retry{batch.throttles}"  # a thread key of its own for each retry

        def run() -> None:
            set_thread_key(key)
            try:
                self.scheduler.sleep(0, key=key, yield_=True)  # run when the loop says
                self._run(batch)
            finally:
                self.scheduler.leave_thread()

        threading.Thread(target=run, daemon=True).start()

    def _run(self, batch: _Batch) -> None:
        record = batch.record
        kept = False  # the mapping keeps the batch for a retry: it still holds its slot
        try:
            attempt = Attempt(self.clock.now(), "")
            record.attempts.append(attempt)
            outcome, payload = self.invoke(self.function_name, self._event(batch.messages))
            attempt.outcome = record.outcome = outcome
            now = self.clock.now()
            with self._lock:
                if outcome == "ok":
                    self._recover(now)
                else:
                    self._back_off(now)
                kept = outcome == "throttled" and self._retry_later(batch, now)
            if kept:
                return
            failed = self._failed_ids(batch.messages, outcome, payload)
            with self._lock:
                # DeleteMessage for each record that succeeded (by its receipt: this receive's
                # copy; a duplicate still queued is delivered again, as SQS may).
                handled = {id(m) for m in batch.messages if m.message_id not in failed}
                left = [m for m in self._queue if id(m) not in handled]
                self.deleted += len(self._queue) - len(left)
                if len(left) != len(self._queue):
                    self._queue = left
                    heapq.heapify(self._queue)
            record.failed = failed
        finally:
            if not kept:
                record.ended_at = self.clock.now()
                with self._lock:
                    self._running -= 1

    def _retry_later(self, batch: _Batch, now: datetime) -> bool:
        """Queue the throttled batch's next attempt if it falls inside the receive's visibility
        timeout; else the batch is let go (its records come back when that runs out)."""
        gap = self.throttle_retry_first_seconds * self.throttle_retry_factor**batch.throttles
        if self.throttle_retry_max_seconds is not None:
            gap = min(gap, self.throttle_retry_max_seconds)
        when = now + timedelta(seconds=gap)
        if when >= batch.hidden_until:
            return False
        batch.throttles += 1
        self._retry_seq += 1
        heapq.heappush(self._retries, (when, self._retry_seq, batch))
        return True

    def _failed_ids(self, batch: list[QueuedMessage], outcome: str, payload: bytes) -> list[str]:
        ids = [m.message_id for m in batch]
        if outcome != "ok":
            return ids
        if not self.report_batch_item_failures:
            return []
        try:
            answer = json.loads(payload.decode() or "null")
        except ValueError:
            return ids
        if answer is None or (isinstance(answer, dict) and not answer.get("batchItemFailures")):
            return []
        if not isinstance(answer, dict) or not isinstance(answer["batchItemFailures"], list):
            return ids
        failed = []
        for item in answer["batchItemFailures"]:
            item_id = item.get("itemIdentifier") if isinstance(item, dict) else None
            if item_id not in ids:
                return ids  # an unknown or empty id fails the whole batch
            failed.append(item_id)
        return failed

    def _event(self, batch: list[QueuedMessage]) -> bytes:
        region = self.queue_arn.split(":")[3]
        records = [
            {
                "messageId": m.message_id,
                "receiptHandle": f"{m.message_id}/{m.receive_count}",
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": str(m.receive_count),
                    "SentTimestamp": str(int(m.sent_at.timestamp() * 1000)),
                    "SenderId": "AIDAEVENTBRIDGE",
                    "ApproximateFirstReceiveTimestamp": str(int(m.sent_at.timestamp() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": EVENT_SOURCE,
                "eventSourceARN": self.queue_arn,
                "awsRegion": region,
            }
            for m in batch
        ]
        return json.dumps({"Records": records}).encode()


# --- the queue's API for other callers (the drain Lambda's sweep) ---------------------------
# The sandbox keeps the intake queue's messages here, not in moto's queue of the same name: a
# SendMessage / SendMessageBatch / GetQueueAttributes naming that queue is answered from this
# source ("SendMessage", "SendMessageBatch", "GetQueueAttributes" API references). Every other
# queue stays moto's.

_routes: dict[str, SqsEventSource] = {}
_routing_installed = False


def route(queue_name: str, source: SqsEventSource | None) -> None:
    """Answer the API calls that name this queue from `source` (None: moto's queue again)."""
    if source is None:
        _routes.pop(queue_name, None)
    else:
        _install_routing()
        _routes[queue_name] = source


def _install_routing() -> None:
    global _routing_installed
    if _routing_installed:
        return
    import hashlib

    from moto.core.responses import ActionResult
    from moto.sqs.responses import SQSResponse

    def md5(text: str) -> str:
        return hashlib.md5(text.encode("utf-8")).hexdigest()  # SQS's own body checksum

    original_send = SQSResponse.send_message
    original_batch = SQSResponse.send_message_batch
    original_attributes = SQSResponse.get_queue_attributes

    def send_message(self: SQSResponse) -> Any:
        source = _routes.get(self._get_queue_name())
        if source is None:
            return original_send(self)
        body = self._get_param("MessageBody")
        message_id = source.send(body)
        return ActionResult({"MessageId": message_id, "MD5OfMessageBody": md5(body)})

    def send_message_batch(self: SQSResponse) -> Any:
        source = _routes.get(self._get_queue_name())
        if source is None:
            return original_batch(self)
        successful = []
        for entry in self._get_param("Entries", []):
            body = entry["MessageBody"]
            successful.append(
                {"Id": entry["Id"], "MessageId": source.send(body), "MD5OfMessageBody": md5(body)}
            )
        return ActionResult({"Successful": successful, "Failed": []})

    def get_queue_attributes(self: SQSResponse) -> Any:
        source = _routes.get(self._get_queue_name())
        if source is None:
            return original_attributes(self)
        visible, hidden = source.counts()
        counts = {
            "ApproximateNumberOfMessages": visible,
            "ApproximateNumberOfMessagesNotVisible": hidden,
            "ApproximateNumberOfMessagesDelayed": 0,
        }
        wanted = self._get_param("AttributeNames", [])
        shown = {k: str(v) for k, v in counts.items() if "All" in wanted or k in wanted}
        return ActionResult({"Attributes": shown})

    SQSResponse.send_message = send_message  # type: ignore[method-assign]
    SQSResponse.send_message_batch = send_message_batch  # type: ignore[method-assign]
    SQSResponse.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]
    _routing_installed = True
