"""Lambda in the sandbox against the developer guide: asynchronous invocation (retries of
function errors, re-queued throttles and service errors, event age, on-failure destination,
duplicates) and reserved concurrency."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws.sandbox import Sandbox
from tests.local_aws import lambda_handlers

RECORD = "tests.local_aws.lambda_handlers.record"
FAIL = "tests.local_aws.lambda_handlers.fail"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    lambda_handlers.RECEIVED.clear()
    with Sandbox(seed=5) as box:
        yield box


def _async(sb: Sandbox, function: str, event: dict[str, Any]) -> None:
    answer = sb.client("lambda").invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(event)
    )
    assert answer["StatusCode"] == 202


def _destination(sb: Sandbox, name: str = "failures") -> tuple[str, str]:
    url = sb.client("sqs").create_queue(QueueName=name)["QueueUrl"]
    attrs = sb.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, attrs["Attributes"]["QueueArn"]


def _records(sb: Sandbox, url: str) -> list[dict[str, Any]]:
    messages = sb.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def _seconds(sb: Sandbox) -> list[float]:
    start = sb.runtime.invocations[0].at
    return [(i.at - start).total_seconds() for i in sb.runtime.invocations]


def test_function_errors_are_retried_after_one_and_two_minutes(sb: Sandbox) -> None:
    url, arn = _destination(sb)
    config = {"DestinationConfig": {"OnFailure": {"Destination": arn}}}
    sb.create_function("f", FAIL, invoke_config=config)
    _async(sb, "f", {"n": 1})
    sb.run(settle=False)
    assert _seconds(sb) == [0, 60, 180]  # the first try, then 1 and 2 minutes apart
    [record] = _records(sb, url)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "BoomError"


def test_maximum_retry_attempts_zero_tries_once(sb: Sandbox) -> None:
    sb.create_function("f", FAIL, invoke_config={"MaximumRetryAttempts": 0})
    _async(sb, "f", {"n": 1})
    sb.run(settle=False)
    assert len(lambda_handlers.RECEIVED["fail"]) == 1
    [failure] = sb.runtime.async_failures
    assert (failure.condition, failure.destination) == ("RetriesExhausted", None)


def test_throttled_events_are_requeued_until_too_old(sb: Sandbox) -> None:
    url, arn = _destination(sb)
    config = {
        "MaximumEventAgeInSeconds": 1800,
        "DestinationConfig": {"OnFailure": {"Destination": arn}},
    }
    sb.create_function("f", RECORD, reserved_concurrency=0, invoke_config=config)
    _async(sb, "f", {"n": 1})
    sb.run(settle=False)
    tries = [r.at for r in sb.runtime.rejections]
    gaps = [(b - a).total_seconds() for a, b in pairwise(tries)]
    assert gaps[:5] == [1, 2, 4, 8, 16]  # from 1 s, growing...
    assert max(gaps) == 300  # ...to at most 5 minutes
    assert (tries[-1] - tries[0]).total_seconds() <= 1800
    assert "record" not in lambda_handlers.RECEIVED
    [record] = _records(sb, url)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["responseContext"]["statusCode"] == 429


def test_service_errors_are_requeued_then_the_event_runs(sb: Sandbox) -> None:
    sb.create_function("f", RECORD)
    sb.add_fault("lambda:f", "lambda_service_error", max_count=3)
    _async(sb, "f", {"n": 1})
    sb.run(settle=False)
    assert [r.outcome for r in sb.runtime.rejections] == ["service_error"] * 3
    assert lambda_handlers.RECEIVED["record"] == [{"n": 1}]
    # Retried 1, 2 and 4 s apart; the run that got through began in a new environment.
    assert sb.clock.elapsed() == 1 + 2 + 4 + sb.runtime.cold_start_seconds


def test_async_queue_can_deliver_an_event_twice(sb: Sandbox) -> None:
    sb.create_function("f", RECORD)
    sb.runtime.async_duplicate_probability = 1.0
    _async(sb, "f", {"n": 1})
    sb.run(settle=False)
    assert lambda_handlers.RECEIVED["record"] == [{"n": 1}, {"n": 1}]


def test_a_rejected_async_invoke_call_is_the_callers_error(sb: Sandbox) -> None:
    sb.create_function("f", RECORD)
    sb.add_fault("lambda:f", "async_invoke_error", max_count=1)
    once = boto3.client("lambda", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as error:
        once.invoke(FunctionName="f", InvocationType="Event", Payload=b"{}")
    assert error.value.response["Error"]["Code"] == "ServiceException"
    sb.run(settle=False)
    assert "record" not in lambda_handlers.RECEIVED


def test_synchronous_invoke_beyond_reserved_concurrency_is_throttled(sb: Sandbox) -> None:
    sb.create_function("f", RECORD, reserved_concurrency=1)
    sb.runtime.run_seconds = 10  # each run holds its unit of concurrency for 10 s
    lam = sb.client("lambda")
    assert lam.invoke(FunctionName="f", Payload=b"{}")["StatusCode"] == 200
    with pytest.raises(ClientError) as error:
        lam.invoke(FunctionName="f", Payload=b"{}")
    assert error.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    sb.clock.advance(10)
    assert lam.invoke(FunctionName="f", Payload=b"{}")["StatusCode"] == 200


def test_a_function_error_answers_200_with_function_error(sb: Sandbox) -> None:
    sb.create_function("f", RECORD)
    sb.add_fault("lambda:f", "function_error", error="DrainError", max_count=1)
    answer = sb.client("lambda").invoke(FunctionName="f", Payload=b"{}")
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    assert json.loads(answer["Payload"].read())["errorType"] == "DrainError"


def test_a_new_environment_spends_its_init_phase_before_the_handler(sb: Sandbox) -> None:
    """Lambda DG "Understanding the Lambda execution environment lifecycle": Init runs once per
    new environment, before its first invocation; a warm environment goes straight in."""
    sb.create_function("f", RECORD)
    _async(sb, "f", {"n": 1})
    sb.run(settle=False)
    _async(sb, "f", {"n": 2})
    sb.run(settle=False)
    cold, warm = sb.runtime.invocations
    assert (cold.cold_start, warm.cold_start) == (True, False)
    assert cold.environment == warm.environment == 1
    assert cold.ended_at is not None and warm.ended_at is not None
    assert (cold.ended_at - cold.at).total_seconds() == sb.runtime.cold_start_seconds > 0
    assert (warm.ended_at - warm.at).total_seconds() == 0


def test_an_environment_idle_too_long_is_gone(sb: Sandbox) -> None:
    sb.create_function("f", RECORD)
    _async(sb, "f", {"n": 1})
    sb.run(settle=False)
    sb.advance(sb.clock.now() + timedelta(seconds=sb.runtime.environment_idle_seconds + 1))
    _async(sb, "f", {"n": 2})
    sb.run(settle=False)
    first, second = sb.runtime.invocations
    assert (first.cold_start, second.cold_start) == (True, True)
    assert (first.environment, second.environment) == (1, 2)
