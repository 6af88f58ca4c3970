"""The intake queue's model (local_aws/sqs_event_source.py) against the SQS and Lambda docs it
names: visibility timeout, receive counts and redrive, maximum concurrency, partial batch
responses, at-least-once delivery. Batches run inline here (no scheduler)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from local_aws.clock import VirtualClock
from local_aws.sqs_event_source import SqsEventSource

QUEUE = "arn:aws:sqs:us-east-1:123456789012:intake"
DLQ = "arn:aws:sqs:us-east-1:123456789012:dead-letters"


def _source(
    clock: VirtualClock, answer: Callable[[dict], tuple[str, dict | None]], **options
) -> tuple[SqsEventSource, list[dict], list[tuple[str, str]]]:
    events: list[dict] = []
    dead: list[tuple[str, str]] = []

    def invoke(function: str, payload: bytes) -> tuple[str, bytes]:
        event = json.loads(payload)
        events.append(event)
        outcome, response = answer(event)
        return outcome, json.dumps(response).encode()

    source = SqsEventSource(
        queue_arn=QUEUE,
        function_name="drain",
        clock=clock,
        invoke=invoke,
        dead_letter_arn=DLQ,
        dead_letter_sink=lambda arn, body: dead.append((arn, body)),
        **options,
    )
    return source, events, dead


def test_a_record_carries_the_body_and_its_receive_count() -> None:
    clock = VirtualClock()
    source, events, _ = _source(clock, lambda e: ("ok", None), batch_size=1)
    message_id = source.send('{"detail": 1}')
    assert source.run_due()
    [record] = events[0]["Records"]
    assert record["messageId"] == message_id and record["body"] == '{"detail": 1}'
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == QUEUE
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert source.pending == 0 and source.deleted == 1  # success deletes the batch


def test_a_failed_run_returns_the_message_after_the_visibility_timeout() -> None:
    clock = VirtualClock()
    outcomes = iter(["function_error", "ok"])
    source, events, _ = _source(
        clock, lambda e: (next(outcomes), None), batch_size=1, visibility_timeout_seconds=150
    )
    source.send("{}")
    source.run_due()
    assert source.pending == 1  # still in the queue, hidden
    clock.advance(149)
    assert not source.run_due()
    clock.advance(1)
    assert source.run_due()
    assert [e["Records"][0]["attributes"]["ApproximateReceiveCount"] for e in events] == ["1", "2"]
    assert source.pending == 0


def test_past_max_receive_count_the_message_moves_to_the_dead_letter_queue() -> None:
    clock = VirtualClock()
    source, events, dead = _source(
        clock,
        lambda e: ("function_error", None),
        batch_size=1,
        visibility_timeout_seconds=10,
        max_receive_count=4,
    )
    source.send("lost")
    for _ in range(6):
        source.run_due()
        clock.advance(10)
    assert len(events) == 4  # handed out maxReceiveCount times, never a fifth
    assert dead == [(DLQ, "lost")]
    assert source.dead_lettered[0].receive_count == 4 and source.pending == 0


def test_no_batch_is_handed_out_while_every_slot_runs() -> None:
    """The cap itself is measured on the sandbox, where batches run on threads and take time
    (tests/e2e/test_intake_queue.py); here: a full mapping hands nothing out."""
    clock = VirtualClock()
    source, events, _ = _source(clock, lambda e: ("ok", None), batch_size=1, max_concurrency=2)
    for n in range(5):
        source.send(str(n))
    source._running = 2  # two batches still running (the sandbox's threads)
    assert source.next_time() is None and not source.run_due() and events == []
    source._running = 1
    assert source.next_time() == clock.now()
    with pytest.raises(ValueError, match="MaximumConcurrency must be 2 to 1000"):
        SqsEventSource(QUEUE, "drain", clock, lambda f, p: ("ok", b""), max_concurrency=1)


def test_partial_batch_responses_return_only_the_named_records() -> None:
    clock = VirtualClock()

    def answer(event: dict) -> tuple[str, dict]:
        if len(event["Records"]) < 3:
            return "ok", {"batchItemFailures": []}
        second = event["Records"][1]["messageId"]
        return "ok", {"batchItemFailures": [{"itemIdentifier": second}]}

    source, events, _ = _source(
        clock, answer, batch_size=3, report_batch_item_failures=True, visibility_timeout_seconds=5
    )
    for n in range(3):
        source.send(str(n))
    source.run_due()
    assert source.pending == 1 and source.deleted == 2
    clock.advance(5)
    source.run_due()
    assert [r["body"] for r in events[1]["Records"]] == ["1"]


def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    clock = VirtualClock()
    source, _, _ = _source(
        clock,
        lambda e: ("ok", {"batchItemFailures": [{"itemIdentifier": "nope"}]}),
        batch_size=2,
        report_batch_item_failures=True,
    )
    source.send("a")
    source.send("b")
    source.run_due()
    assert source.pending == 2 and source.deleted == 0


def test_delivery_is_at_least_once() -> None:
    clock = VirtualClock()
    source, events, _ = _source(
        clock, lambda e: ("ok", None), batch_size=1, duplicate_probability=1.0
    )
    source.send("twice")
    source.run_due()
    clock.advance(1)
    source.run_due()
    clock.advance(60)
    source.run_due()
    assert [e["Records"][0]["body"] for e in events] == ["twice", "twice"]  # once more, no more
