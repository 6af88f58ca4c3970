"""The intake queue's model (local_aws/sqs_event_source.py) against the SQS and Lambda docs it
names: visibility timeout, receive counts and redrive, maximum concurrency, partial batch
responses, at-least-once delivery, Lambda's retries of throttled batches, its back-off after
failed invocations and the standard queue's scaling. Batches run inline, or on threads parked on
the virtual clock (a TimeKeeper, as in the sandbox) where concurrency is measured."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from local_aws.clock import VIRTUAL_EPOCH, VirtualClock
from local_aws.sqs_event_source import SqsEventSource
from local_aws.stepfunctions import TimeKeeper

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


# --- throttling, back-off and scaling (Lambda DG "Handling errors for an SQS event source in
# Lambda", "Configuring scaling behavior for SQS event source mappings") ----------------------


def _receive_counts(events: list[dict]) -> list[str]:
    return [e["Records"][0]["attributes"]["ApproximateReceiveCount"] for e in events]


def _run_inline(source: SqsEventSource, clock: VirtualClock, seconds: float) -> None:
    """Batches run inline: hand out, then jump to the mapping's next time, up to ``seconds``."""
    end = clock.now() + timedelta(seconds=seconds)
    while True:
        source.run_due()
        nxt = source.next_time()
        if nxt is None or nxt > end:
            return
        clock.advance_to(nxt)


def test_a_throttled_batch_is_retried_without_a_new_receive_backing_off() -> None:
    """Lambda DG "Handling errors for an SQS event source in Lambda": a throttled invocation is
    retried, backing off, while the visibility timeout lasts; the receive is not repeated."""
    clock = VirtualClock()
    outcomes = iter(["throttled"] * 3 + ["ok"])
    source, events, _ = _source(
        clock, lambda e: (next(outcomes), None), batch_size=1, visibility_timeout_seconds=150
    )
    source.send("{}")
    _run_inline(source, clock, 600)
    assert _receive_counts(events) == ["1"] * 4  # four invocations, one receive
    [receive] = source.receives
    starts = [(a.at - receive.at).total_seconds() for a in receive.attempts]
    assert starts == [0, 1, 3, 7]  # gaps of 1, 2 and 4 s (the assumed back-off)
    assert [a.outcome for a in receive.attempts] == ["throttled"] * 3 + ["ok"]
    assert receive.outcome == "ok" and receive.failed == []
    assert source.pending == 0 and source.deleted == 1
    assert source.dead_lettered == []


def test_a_throttle_outlasting_the_visibility_timeout_returns_the_message_and_counts() -> None:
    """Lambda DG "Handling errors for an SQS event source in Lambda": Lambda retries until the
    visibility timeout has run out, then lets the batch go; SQS DG "Amazon SQS visibility
    timeout": the message is visible again, and its next receive counts."""
    clock = VirtualClock()
    throttled_until = clock.now() + timedelta(seconds=10)

    def answer(event: dict) -> tuple[str, None]:
        return ("throttled" if clock.now() < throttled_until else "ok"), None

    source, events, _ = _source(
        clock, answer, batch_size=1, visibility_timeout_seconds=10, max_receive_count=4
    )
    source.send("{}")
    source.run_due()
    assert source.next_time() == clock.now() + timedelta(seconds=1)  # the first retry
    _run_inline(source, clock, 60)
    first, second = source.receives
    # Retries at 1, 3 and 7 s; the next (15 s) would be past the 10 s timeout: none is made.
    assert [(a.at - first.at).total_seconds() for a in first.attempts] == [0, 1, 3, 7]
    assert first.outcome == "throttled" and first.failed == first.message_ids
    assert (second.at - first.at).total_seconds() == 10  # visible again when the timeout ends
    assert second.receive_counts == [2] and _receive_counts(events)[-1] == "2"
    assert second.outcome == "ok" and source.pending == 0


def test_throttles_past_every_receive_still_reach_the_dead_letter_queue() -> None:
    """SQS DG "Using dead-letter queues in Amazon SQS": only receives count, not Lambda's
    retries of a throttled batch; past maxReceiveCount receives the message moves."""
    clock = VirtualClock()
    source, events, dead = _source(
        clock,
        lambda e: ("throttled", None),
        batch_size=1,
        visibility_timeout_seconds=10,
        max_receive_count=2,
    )
    source.send("never")
    _run_inline(source, clock, 600)
    assert _receive_counts(events) == ["1"] * 4 + ["2"] * 4  # four attempts a receive
    assert dead == [(DLQ, "never")] and source.pending == 0


# Batches on threads, parked on the virtual clock as the sandbox runs them.


def _threaded(
    clock: VirtualClock,
    outcome: Callable[[datetime], str],
    run_seconds: float,
    **options: Any,
) -> tuple[SqsEventSource, TimeKeeper]:
    keeper = TimeKeeper(clock, seed=1)

    def invoke(function: str, payload: bytes) -> tuple[str, bytes]:
        answer = outcome(clock.now())
        if answer != "throttled":  # a throttle is refused at once; a run takes virtual time
            keeper.sleep(run_seconds)
        return answer, b"null"

    source = SqsEventSource(
        QUEUE, "drain", clock, invoke, batch_size=1, scheduler=keeper, **options
    )
    return source, keeper


def _drive(source: SqsEventSource, keeper: TimeKeeper, clock: VirtualClock) -> None:
    """The sandbox loop in small: hand out, wake parked runs one by one, jump the clock."""
    for _ in range(100_000):
        progressed = True
        while progressed:
            keeper.wait_quiet()
            progressed = source.run_due()
            keeper.wait_quiet()
            progressed |= keeper.wake_one() > 0
        if not source.pending and not keeper.parked:
            return
        times = [t for t in (keeper.next_wake(), source.next_time()) if t is not None]
        assert times, "stuck: batches held with nothing due"
        clock.advance_to(min(times))
    raise AssertionError("did not finish")


def _at_once(source: SqsEventSource, start: float, end: float) -> int:
    """Most batches held at once in [start, end) seconds of the clock."""
    spans = [
        ((r.at - VIRTUAL_EPOCH).total_seconds(), (r.ended_at - VIRTUAL_EPOCH).total_seconds())
        for r in source.receives
        if r.ended_at is not None
    ]
    points = sorted({s for s, _ in spans} | {start})
    return max(
        (sum(1 for s, e in spans if s <= t < e) for t in points if start <= t < end), default=0
    )


def test_standard_queues_start_at_five_batches_and_add_300_a_minute() -> None:
    """Lambda DG "Configuring scaling behavior for SQS event source mappings": five batches at
    once to start with, then up to 300 more a minute while messages wait."""
    clock = VirtualClock()
    source, keeper = _threaded(
        clock, lambda t: "ok", run_seconds=100, visibility_timeout_seconds=600
    )
    for n in range(20):
        source.send(str(n))
    _drive(source, keeper, clock)
    starts = sorted((r.at - VIRTUAL_EPOCH).total_seconds() for r in source.receives)
    assert starts[:5] == [0] * 5
    # One more every 0.2 s (300 a minute) while messages wait.
    assert starts[5:] == pytest.approx([0.2 * k for k in range(1, 16)], abs=1e-5)
    assert _at_once(source, 0, 100) == 20


def test_maximum_concurrency_caps_the_ramp() -> None:
    """Lambda DG "Configuring maximum concurrency for Amazon SQS event sources"."""
    clock = VirtualClock()
    source, keeper = _threaded(clock, lambda t: "ok", run_seconds=10, max_concurrency=3)
    for n in range(9):
        source.send(str(n))
    _drive(source, keeper, clock)
    assert _at_once(source, 0, 100) == 3
    assert sorted({(r.at - VIRTUAL_EPOCH).total_seconds() for r in source.receives}) == [
        0,
        10,
        20,
    ]


def _errors_until(seconds: float) -> Callable[[datetime], str]:
    """Runs started before ``seconds`` of the clock fail, later ones succeed."""
    return lambda started: (
        "function_error" if (started - VIRTUAL_EPOCH).total_seconds() < seconds else "ok"
    )


def test_after_function_errors_fewer_batches_run_at_once_then_it_recovers() -> None:
    """Lambda DG "Handling errors for an SQS event source in Lambda": after function errors
    Lambda backs off, giving the mapping less concurrency, and scales up again as invocations
    succeed (the halving and the one-per-success recovery are the sandbox's assumption)."""
    clock = VirtualClock()
    source, keeper = _threaded(
        clock, _errors_until(20), run_seconds=10, max_concurrency=10, visibility_timeout_seconds=600
    )
    for n in range(50):
        source.send(str(n))
    _drive(source, keeper, clock)
    assert _at_once(source, 0, 10) == 10  # ramped up to the maximum within a second
    # The first ten fail at 10 to 11 s: 10 -> 5 -> 2 -> 1 batch at a time.
    assert _at_once(source, 11, 31) == 1
    # One at a time (a failure at 11 s, a success at 21 s), then each success adds one back:
    # 2 at 31 s, 4 at 41 s, 8 at 51 s, and the maximum again from 61 s.
    starts = sorted((r.at - VIRTUAL_EPOCH).total_seconds() for r in source.receives)
    later = [round(s) for s in starts if s > 10.5]
    assert later[:16] == [11, 21] + [31] * 2 + [41] * 4 + [51] * 8
    assert _at_once(source, 61, 200) == 10
    assert source.concurrency_limit == 5  # idle now: the ramp is back at its start


def test_with_report_batch_item_failures_errors_do_not_scale_the_mapping_down() -> None:
    """Lambda DG "Handling errors for an SQS event source in Lambda", "Implementing partial
    batch responses": with ReportBatchItemFailures Lambda does not scale down message polling
    when invocations fail."""
    clock = VirtualClock()
    source, keeper = _threaded(
        clock,
        _errors_until(20),
        run_seconds=10,
        max_concurrency=10,
        visibility_timeout_seconds=600,
        report_batch_item_failures=True,
    )
    for n in range(50):
        source.send(str(n))
    _drive(source, keeper, clock)
    assert _at_once(source, 11, 31) == 10  # the failures at 10 to 11 s changed nothing
    failed = [r for r in source.receives if r.outcome == "function_error"]
    assert len(failed) == 20 and all(r.failed == r.message_ids for r in failed)


def test_throttles_also_scale_the_mapping_down() -> None:
    """Lambda DG "Handling errors for an SQS event source in Lambda": on throttling Lambda backs
    off its retries by reducing the concurrency given to the mapping."""
    clock = VirtualClock()
    source, _, _ = _source(clock, lambda e: ("throttled", None), batch_size=1, max_concurrency=10)
    source.send("{}")
    assert source.concurrency_limit == 5
    source.run_due()
    assert source.concurrency_limit == 2  # halved from the ramp's five
    clock.advance(1)
    source.run_due()
    assert source.concurrency_limit == 1  # the floor


def test_a_batch_waiting_to_retry_a_throttle_keeps_its_slot() -> None:
    """Lambda DG "Handling errors for an SQS event source in Lambda": Lambda itself retries a
    throttled batch; here it keeps its place among the mapping's batches meanwhile (assumed),
    so the third message waits for a slot, not for the throttles to end."""
    clock = VirtualClock()
    source, keeper = _threaded(
        clock,
        lambda started: "throttled" if (started - VIRTUAL_EPOCH).total_seconds() < 5 else "ok",
        run_seconds=10,
        max_concurrency=2,
        visibility_timeout_seconds=60,
    )
    for n in range(3):
        source.send(str(n))
    _drive(source, keeper, clock)
    first, second, third = source.receives
    for receive in (first, second):
        assert [(a.at - VIRTUAL_EPOCH).total_seconds() for a in receive.attempts] == [0, 1, 3, 7]
        assert receive.outcome == "ok" and receive.receive_counts == [1]
    assert (third.at - VIRTUAL_EPOCH).total_seconds() == 17  # when the first two let go
    assert third.receive_counts == [1] and source.deleted == 3
