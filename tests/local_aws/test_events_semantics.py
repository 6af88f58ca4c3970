"""EventBridge in the sandbox against the user guide: event patterns (arrays, numeric, exists,
prefix...), rules with retry policies and dead-letter queues, latency, late and duplicate
deliveries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from moto.events.models import EventPattern

from local_aws.events import pattern_matches
from local_aws.sandbox import Sandbox
from tests.local_aws import lambda_handlers

RECORD = "tests.local_aws.lambda_handlers.record"

CI_EVENT = {
    "source": "aws.ecs",
    "detail-type": "ECS Container Instance State Change",
    "detail": {
        "status": "DRAINING",
        "runningTasksCount": 3,
        "attributes": [
            {"name": "ecs.capability.task-eni"},
            {"name": "drain-hook.state", "value": "draining"},
            {"name": "ecs.os-type", "value": "linux"},
        ],
        "versionInfo": {"agentVersion": "1.80.0"},
    },
}


# --- patterns ("Amazon EventBridge event patterns", "Arrays in ... event patterns") ----------


def test_a_field_inside_an_array_of_objects_matches_any_element() -> None:
    pattern = {"detail": {"attributes": {"name": ["drain-hook.state"]}}}
    assert pattern_matches(pattern, CI_EVENT)
    assert not pattern_matches({"detail": {"attributes": {"name": ["other"]}}}, CI_EVENT)
    # moto's own matcher misses it: the reason the sandbox matches with its own code.
    assert not EventPattern.load(json.dumps(pattern)).matches_event(CI_EVENT)


def test_fields_of_one_array_element_must_hold_together_unless_flattened() -> None:
    pattern = {"detail": {"attributes": {"name": ["drain-hook.state"], "value": ["linux"]}}}
    assert not pattern_matches(pattern, CI_EVENT)  # name and value from different elements
    assert pattern_matches(pattern, CI_EVENT, same_element=False)
    together = {"detail": {"attributes": {"name": ["ecs.os-type"], "value": ["linux"]}}}
    assert pattern_matches(together, CI_EVENT)


def test_values_are_or_lists_and_arrays_match_on_intersection() -> None:
    event = {"source": "aws.ec2", "resources": ["arn:a", "arn:b"], "detail": {"state": "running"}}
    assert pattern_matches({"detail": {"state": ["pending", "running"]}}, event)
    assert pattern_matches({"resources": ["arn:b", "arn:z"]}, event)
    assert not pattern_matches({"resources": ["arn:z"]}, event)
    assert not pattern_matches({"detail": {"missing": ["x"]}}, event)  # every field must exist


def test_numeric_matching_takes_numbers_only() -> None:
    pattern = {"detail": {"runningTasksCount": [{"numeric": [">", 0, "<=", 5]}]}}
    assert pattern_matches(pattern, CI_EVENT)
    event = json.loads(json.dumps(CI_EVENT))
    event["detail"]["runningTasksCount"] = 6
    assert not pattern_matches(pattern, event)
    event["detail"]["runningTasksCount"] = "3"
    assert not pattern_matches(pattern, event)
    event["detail"]["runningTasksCount"] = True
    assert not pattern_matches({"detail": {"runningTasksCount": [{"numeric": [">", 0]}]}}, event)


def test_exact_numbers_compare_as_json_text() -> None:
    assert pattern_matches({"detail": {"n": [300]}}, {"detail": {"n": 300}})
    assert not pattern_matches({"detail": {"n": [300]}}, {"detail": {"n": 300.0}})
    assert not pattern_matches({"detail": {"n": [1]}}, {"detail": {"n": True}})


def test_exists_prefix_anything_but_and_or() -> None:
    assert pattern_matches({"detail": {"status": [{"exists": True}]}}, CI_EVENT)
    assert pattern_matches({"detail": {"statusReason": [{"exists": False}]}}, CI_EVENT)
    assert not pattern_matches({"detail": {"status": [{"exists": False}]}}, CI_EVENT)
    # exists works on leaves: an object is not a leaf.
    assert not pattern_matches({"detail": {"versionInfo": [{"exists": True}]}}, CI_EVENT)
    assert pattern_matches({"detail": {"attributes": {"value": [{"exists": True}]}}}, CI_EVENT)
    assert pattern_matches({"detail": {"status": [{"prefix": "DRAIN"}]}}, CI_EVENT)
    assert not pattern_matches({"detail": {"status": [{"anything-but": ["DRAINING"]}]}}, CI_EVENT)
    assert not pattern_matches({"detail": {"nope": [{"anything-but": ["x"]}]}}, CI_EVENT)
    either = {"$or": [{"detail": {"status": ["ACTIVE"]}}, {"detail": {"runningTasksCount": [3]}}]}
    assert pattern_matches(either, CI_EVENT)


# --- rules, delivery and retries ("How EventBridge retries delivering events") --------------


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    lambda_handlers.RECEIVED.clear()
    with Sandbox(seed=3) as box:
        yield box


def _rule(sb: Sandbox, name: str, pattern: dict[str, Any], fn: str, **target: Any) -> None:
    events = sb.client("events")
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "t", "Arn": fn, **target}])


def _put(sb: Sandbox, detail: dict[str, Any], detail_type: str = "Thing Happened") -> None:
    answer = sb.client("events").put_events(
        Entries=[{"Source": "my.app", "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )
    assert answer["FailedEntryCount"] == 0


def _queue(sb: Sandbox, name: str) -> tuple[str, str]:
    url = sb.client("sqs").create_queue(QueueName=name)["QueueUrl"]
    arn = sb.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"]


def _messages(sb: Sandbox, url: str) -> list[dict[str, Any]]:
    answer = sb.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(answer.get("Messages", []))


def test_put_events_reach_each_matching_rules_function_after_a_small_latency(
    sb: Sandbox,
) -> None:
    first = sb.create_function("first", RECORD)
    other = sb.create_function("other", "tests.local_aws.lambda_handlers.record_other")
    _rule(sb, "kinds-a", {"source": ["my.app"], "detail": {"kind": ["a"]}}, first)
    _rule(sb, "kinds-any", {"source": ["my.app"], "detail": {"kind": [{"exists": True}]}}, other)
    put_at = sb.clock.now()
    _put(sb, {"kind": "a"})
    _put(sb, {"kind": "b"})
    sb.run(settle=False)
    assert [e["detail"] for e in lambda_handlers.RECEIVED["record"]] == [{"kind": "a"}]
    kinds = sorted(e["detail"]["kind"] for e in lambda_handlers.RECEIVED["record_other"])
    assert kinds == ["a", "b"]
    event = lambda_handlers.RECEIVED["record"][0]
    assert event["source"] == "my.app" and event["detail-type"] == "Thing Happened"
    latencies = [(d.at - put_at).total_seconds() for d in sb.bus.deliveries]
    assert len(latencies) == 3 and all(0.1 <= latency <= 0.5 for latency in latencies)
    assert {i.invocation_type for i in sb.runtime.invocations} == {"Event"}


def test_a_failed_invoke_call_is_retried_with_back_off(sb: Sandbox) -> None:
    fn = sb.create_function("f", RECORD)
    _rule(sb, "r", {"source": ["my.app"]}, fn)
    sb.add_fault("lambda:f", "async_invoke_error", max_count=3)
    _put(sb, {"n": 1})
    sb.run(settle=False)
    attempts = [d for d in sb.bus.deliveries if d.rule == "r"]
    assert [d.attempt for d in attempts] == [0, 1, 2, 3]
    assert [d.error is not None for d in attempts] == [True, True, True, False]
    gaps = [(b.at - a.at).total_seconds() for a, b in pairwise(attempts)]
    assert gaps == sorted(gaps)  # exponential back-off
    assert len(lambda_handlers.RECEIVED["record"]) == 1


def test_retries_exhausted_go_to_the_dead_letter_queue(sb: Sandbox) -> None:
    fn = sb.create_function("f", RECORD)
    url, dlq = _queue(sb, "dlq")
    policy = {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    _rule(sb, "r", {"source": ["my.app"]}, fn, RetryPolicy=policy, DeadLetterConfig={"Arn": dlq})
    sb.add_fault("lambda:f", "async_invoke_error")
    _put(sb, {"n": 1})
    sb.run(settle=False)
    assert len(sb.bus.deliveries) == 3  # the first try and two retries
    [message] = _messages(sb, url)
    assert json.loads(message["Body"])["detail"] == {"n": 1}
    attrs = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attrs["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attrs["RETRY_ATTEMPTS"] == "2"
    assert attrs["ERROR_CODE"] == "ERROR_FROM_TARGET"
    assert attrs["RULE_ARN"].endswith(":rule/r") and attrs["TARGET_ARN"] == fn


def test_events_older_than_the_maximum_age_stop_retrying(sb: Sandbox) -> None:
    fn = sb.create_function("f", RECORD)
    url, dlq = _queue(sb, "dlq")
    policy = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 60}
    _rule(sb, "r", {"source": ["my.app"]}, fn, RetryPolicy=policy, DeadLetterConfig={"Arn": dlq})
    sb.add_fault("lambda:f", "async_invoke_error")
    _put(sb, {"n": 1})
    sb.run(settle=False)
    assert sb.bus.deliveries[-1].at.timestamp() - sb.bus.deliveries[0].at.timestamp() <= 60
    [dead] = sb.bus.dead_letters
    assert dead.condition == "MaximumEventAgeInSeconds" and dead.retry_attempts >= 5
    [message] = _messages(sb, url)
    attrs = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attrs["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"


def test_a_missing_target_goes_to_the_dlq_without_retries(sb: Sandbox) -> None:
    url, dlq = _queue(sb, "dlq")
    gone = "arn:aws:lambda:us-east-1:123456789012:function:gone"
    _rule(sb, "r", {"source": ["my.app"]}, gone, DeadLetterConfig={"Arn": dlq})
    _put(sb, {"n": 1})
    sb.run(settle=False)
    assert len(sb.bus.deliveries) == 1
    [message] = _messages(sb, url)
    attrs = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attrs["ERROR_CODE"] == "NO_RESOURCE" and attrs["RETRY_ATTEMPTS"] == "0"


def test_a_function_error_is_not_an_eventbridge_retry(sb: Sandbox) -> None:
    fn = sb.create_function("f", "tests.local_aws.lambda_handlers.fail")
    _rule(sb, "r", {"source": ["my.app"]}, fn)
    _put(sb, {"n": 1})
    sb.run(settle=False)
    assert len(sb.bus.deliveries) == 1 and sb.bus.deliveries[0].error is None
    assert len(lambda_handlers.RECEIVED["fail"]) == 3  # Lambda's own async retries


def test_at_least_once_delivery_can_duplicate(sb: Sandbox) -> None:
    fn = sb.create_function("f", RECORD)
    _rule(sb, "r", {"source": ["my.app"]}, fn)
    sb.bus.duplicate_probability = 1.0
    _put(sb, {"n": 1})
    sb.run(settle=False)
    assert [d.duplicate for d in sb.bus.deliveries] == [False, True]
    first, second = lambda_handlers.RECEIVED["record"]
    assert first == second  # the same event, id included


def test_a_chosen_event_can_arrive_late(sb: Sandbox) -> None:
    fn = sb.create_function("f", RECORD)
    _rule(sb, "r", {"source": ["my.app"]}, fn)
    sb.delay_events({"detail": {"n": [2]}}, seconds=270)  # e.g. 90 % of a 300 s heartbeat
    _put(sb, {"n": 1})
    _put(sb, {"n": 2})
    _put(sb, {"n": 2})  # only the next one is late
    sb.run(settle=False)
    put_at = sb.bus.deliveries[0].at - timedelta(seconds=0.5)
    late = [d for d in sb.bus.deliveries if (d.at - put_at).total_seconds() > 1]
    [delayed] = late
    assert delayed.event["detail"] == {"n": 2}
    assert 270 <= (delayed.at - put_at).total_seconds() <= 271
    assert len(sb.bus.deliveries) == 3
    assert lambda_handlers.RECEIVED["record"][-1]["detail"] == {"n": 2}
