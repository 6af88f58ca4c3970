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
- Lambda developer guide, "Using Lambda with Amazon SQS": the mapping polls the queue and
  invokes the function synchronously with up to BatchSize records (``Records[]`` with
  messageId, receiptHandle, body, attributes.ApproximateReceiveCount, eventSource "aws:sqs",
  eventSourceARN); when the function succeeds the batch is deleted, when it fails (error,
  timeout, throttle) every record returns to the queue after the visibility timeout.
  "Handling errors for an SQS event source in Lambda": with ReportBatchItemFailures the
  function answers ``{"batchItemFailures": [{"itemIdentifier": messageId}]}`` and only those
  return; an answer that names an unknown id or can't be read fails the whole batch.
- Lambda developer guide, "Configuring maximum concurrency for Amazon SQS event sources": at
  most MaximumConcurrency (2..1000) invocations of the mapping run at once; the mapping does
  not receive more messages than it can hand to them.

Each batch runs on a parkable thread of its own (as asynchronous invocations do), so a run takes
real virtual time and holds its unit of the mapping's concurrency for that long.
"""

from __future__ import annotations

import heapq
import json
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
class Receive:
    """One batch handed to the function, and what became of each record."""

    at: datetime
    message_ids: list[str]
    receive_counts: list[int]
    outcome: str = ""  # ok | function_error | throttled | service_error
    failed: list[str] = field(default_factory=list)  # returned to the queue
    ended_at: datetime | None = None


@dataclass
class DeadLettered:
    at: datetime
    message_id: str
    body: str
    receive_count: int
    sent_at: datetime


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
        self._lock = threading.RLock()
        self._queue: list[QueuedMessage] = []
        self._seq = 0
        self._running = 0
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

    @property
    def pending(self) -> int:
        """Messages still in the queue and batches still running."""
        with self._lock:
            return len(self._queue) + self._running

    def oldest_age_seconds(self) -> float:
        with self._lock:
            if not self._queue:
                return 0.0
            oldest = min(m.sent_at for m in self._queue)
        return (self.clock.now() - oldest).total_seconds()

    # --- the event source mapping ----------------------------------------------------------

    def _room(self) -> bool:
        return self.max_concurrency is None or self._running < self.max_concurrency

    def next_time(self) -> datetime | None:
        """When the mapping can next hand out a batch (None while every slot is busy: a batch
        ending frees one, and the loop looks again then)."""
        with self._lock:
            if not self._queue or not self._room():
                return None
            return self._queue[0].visible_at

    def run_due(self) -> bool:
        """Hand the visible messages out, a batch per free slot; True if any batch started."""
        started = False
        while True:
            with self._lock:
                batch = self._receive_batch() if self._room() else []
                if not batch:
                    return started
                self._running += 1
            started = True
            self._start(batch)

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

    def _start(self, batch: list[QueuedMessage]) -> None:
        if self.scheduler is None:
            self._run(batch)
            return
        from local_aws.stepfunctions import set_thread_key

        self.scheduler.enter_thread()
        key = f"sqs/{self.function_name}/{batch[0].message_id}/{batch[0].receive_count}"

        def run() -> None:
            set_thread_key(key)
            try:
                self.scheduler.sleep(0, key=key, yield_=True)  # run when the loop says
                self._run(batch)
            finally:
                self.scheduler.leave_thread()

        threading.Thread(target=run, daemon=True).start()

    def _run(self, batch: list[QueuedMessage]) -> None:
        record = Receive(
            self.clock.now(), [m.message_id for m in batch], [m.receive_count for m in batch]
        )
        self.receives.append(record)
        try:
            outcome, payload = self.invoke(self.function_name, self._event(batch))
            record.outcome = outcome
            failed = self._failed_ids(batch, outcome, payload)
            with self._lock:
                # DeleteMessage for each record that succeeded (by its receipt: this receive's
                # copy; a duplicate still queued is delivered again, as SQS may).
                done = {id(m) for m in batch if m.message_id not in failed}
                kept = [m for m in self._queue if id(m) not in done]
                self.deleted += len(self._queue) - len(kept)
                if len(kept) != len(self._queue):
                    self._queue = kept
                    heapq.heapify(self._queue)
            record.failed = failed
        finally:
            record.ended_at = self.clock.now()
            with self._lock:
                self._running -= 1

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
