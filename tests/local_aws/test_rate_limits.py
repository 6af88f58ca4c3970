"""The sandbox's API rate limits against the AWS documentation, through boto3.

ECS: API Reference "Request throttling for the Amazon ECS API" (token buckets per action
category, per account and Region; ThrottlingException). Step Functions: developer guide "Step
Functions service quotas" (API action and state transition buckets). Auto Scaling: no published
figures; the sandbox's bucket is an assumption (`AUTOSCALING_ASSUMED`), answered as the query
protocol's ``Throttling``. Lambda: developer guide "Lambda function scaling" and "Configuring
reserved concurrency". Time: botocore's back-off and adaptive waits, and each Lambda run, take
virtual time (`local_aws.rate_limits`, `local_aws.lambda_runtime`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws.rate_limits import (
    AUTOSCALING_ASSUMED,
    ECS_CATEGORIES,
    BucketSpec,
    RateLimits,
    bucket_name,
)
from local_aws.sandbox import Sandbox

ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})
HERE = "tests.local_aws.test_rate_limits"

# What the handlers below do: set by each test (the handlers run in the sandbox's threads).
CALLS: dict[str, Any] = {}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    CALLS.clear()
    with Sandbox(seed=5) as box:
        yield box


def _count_until_throttled(call: Callable[[], Any], limit: int = 2000) -> tuple[int, Any]:
    """Calls admitted before the first throttle, and the throttled answer."""
    for admitted in range(limit):
        try:
            call()
        except ClientError as error:
            return admitted, error.response
    raise AssertionError(f"no throttle in {limit} calls")


def _cluster(sb: Sandbox) -> None:
    sb.client("ecs").create_cluster(clusterName="c")


# --- ECS ----------------------------------------------------------------------------------


def test_ecs_cluster_reads_burst_50_then_throttling_exception(sb: Sandbox) -> None:
    _cluster(sb)
    ecs = sb.account_client("ecs", ONE_ATTEMPT)
    admitted, answer = _count_until_throttled(lambda: ecs.describe_clusters(clusters=["c"]))
    assert admitted == 50  # "the bucket size for Cluster read actions ... is 50 tokens"
    assert answer["Error"]["Code"] == "ThrottlingException"
    assert answer["Error"]["Message"] == "Rate exceeded."
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_ecs_bucket_refills_at_its_sustained_rate(sb: Sandbox) -> None:
    _cluster(sb)
    ecs = sb.account_client("ecs", ONE_ATTEMPT)
    _count_until_throttled(lambda: ecs.describe_clusters(clusters=["c"]))
    sb.clock.advance(1)  # "the refill rate is 20 tokens per second"
    admitted, _ = _count_until_throttled(lambda: ecs.describe_clusters(clusters=["c"]))
    assert admitted == 20
    sb.clock.advance(2.5)  # "reaches its maximum capacity after 2.5 seconds"
    admitted, _ = _count_until_throttled(lambda: ecs.describe_clusters(clusters=["c"]))
    assert admitted == 50


def test_actions_of_one_category_share_its_bucket(sb: Sandbox) -> None:
    _cluster(sb)
    ecs = sb.account_client("ecs", ONE_ATTEMPT)
    for _ in range(25):
        ecs.describe_clusters(clusters=["c"])
    admitted, answer = _count_until_throttled(ecs.list_clusters)
    assert admitted == 25  # "you can make 25 DescribeClusters and 25 ListClusters"
    assert answer["Error"]["Code"] == "ThrottlingException"


def test_categories_have_their_own_buckets(sb: Sandbox) -> None:
    _cluster(sb)
    ecs = sb.account_client("ecs", ONE_ATTEMPT)
    _count_until_throttled(lambda: ecs.describe_clusters(clusters=["c"]))
    # Cluster resource read actions (ListTasks, DescribeTasks, ...): 100 tokens of their own.
    admitted, _ = _count_until_throttled(lambda: ecs.list_tasks(cluster="c"))
    assert admitted == 100
    with pytest.raises(ClientError):
        ecs.describe_tasks(cluster="c", tasks=["x"])  # same category, now empty
    assert ecs.list_services(cluster="c")["serviceArns"] == []  # Service read: another bucket


def test_ecs_table_figures_for_the_drains_calls() -> None:
    figures = {name: (cap, refill) for name, (cap, refill, _) in ECS_CATEGORIES.items()}
    buckets = RateLimits().buckets("us-east-1")
    expected = {
        "ListContainerInstances": (100, 20),
        "DescribeContainerInstances": (100, 20),
        "ListTasks": (100, 20),
        "DescribeTasks": (100, 20),
        "DescribeServices": (100, 20),
        "UpdateContainerInstancesState": (100, 40),
        "StopTask": (100, 40),
        "PutAttributes": (100, 40),
        "DeleteAttributes": (100, 40),
    }
    for operation, (capacity, refill) in expected.items():
        name = bucket_name("ecs", operation)
        assert name is not None, operation
        spec = buckets[name]
        assert (spec.capacity, spec.refill) == (capacity, refill), operation
        assert figures[name.split(":", 1)[1]] == (capacity, refill)
        assert "Request throttling for the Amazon ECS API" in spec.source


def test_the_scenarios_calls_only_count(sb: Sandbox) -> None:
    """The sandbox's own set-up client is not the account's traffic: never throttled."""
    _cluster(sb)
    for _ in range(200):
        sb.client("ecs").describe_clusters(clusters=["c"])


def test_no_buckets_when_switched_off() -> None:
    with Sandbox(rate_limits=None) as box:
        _cluster(box)
        ecs = box.account_client("ecs", ONE_ATTEMPT)
        for _ in range(200):
            ecs.describe_clusters(clusters=["c"])
        assert box.limiter.throttled == {}


# --- Step Functions -------------------------------------------------------------------------


def test_step_functions_quotas_per_region() -> None:
    big = RateLimits().buckets("us-east-1")
    other = RateLimits().buckets("eu-central-1")
    spec = big["stepfunctions:StartExecution"]
    assert (spec.capacity, spec.refill) == (1300, 300)
    assert (
        other["stepfunctions:StartExecution"].capacity,
        other["stepfunctions:StartExecution"].refill,
    ) == (800, 150)
    assert (big["states:StateTransition"].capacity, big["states:StateTransition"].refill) == (
        5000,
        5000,
    )
    assert other["states:StateTransition"].capacity == 800
    assert (
        big["stepfunctions:DescribeExecution"].refill,
        other["stepfunctions:DescribeExecution"].refill,
    ) == (15, 10)
    assert "Step Functions service quotas" in spec.source


def test_step_functions_api_throttle_is_throttling_exception(sb: Sandbox) -> None:
    sfn = sb.account_client("stepfunctions", ONE_ATTEMPT)
    admitted, answer = _count_until_throttled(sfn.list_state_machines)
    assert admitted == 100  # ListStateMachines: bucket 100, refill 5
    assert answer["Error"]["Code"] == "ThrottlingException"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    sb.clock.advance(1)
    admitted, _ = _count_until_throttled(sfn.list_state_machines)
    assert admitted == 5


def test_throttled_state_transitions_wait_and_the_execution_succeeds() -> None:
    limits = RateLimits(state_transitions=BucketSpec(2, 1, "test"))
    with Sandbox(rate_limits=limits) as box:
        sfn = box.client("stepfunctions")
        states = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(5)}
        states["S5"] = {"Type": "Succeed"}
        arn = sfn.create_state_machine(
            name="passes",
            definition=json.dumps({"StartAt": "S0", "States": states}),
            roleArn="arn:aws:iam::123456789012:role/x",
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        box.run(settle=False)
        described = sfn.describe_execution(executionArn=execution)
        assert described["status"] == "SUCCEEDED"  # delayed, never failed
        took = (described["stopDate"] - described["startDate"]).total_seconds()
        assert took >= 3.9  # 6 states, 2 tokens at once, then 1 a second
        assert box.limiter.delayed_transitions >= 4


# --- Auto Scaling ---------------------------------------------------------------------------


def test_auto_scaling_assumed_bucket_answers_throttling(sb: Sandbox) -> None:
    asg = sb.account_client("autoscaling", ONE_ATTEMPT)
    admitted, answer = _count_until_throttled(asg.describe_auto_scaling_groups)
    assert admitted == AUTOSCALING_ASSUMED.capacity
    assert answer["Error"]["Code"] == "Throttling"  # query protocol, as Auto Scaling answers
    assert answer["Error"]["Type"] == "Sender"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "ASSUMED" in AUTOSCALING_ASSUMED.source


def test_botocore_retries_a_throttle_as_throttling(sb: Sandbox) -> None:
    asg = sb.account_client(
        "autoscaling", Config(retries={"mode": "standard", "total_max_attempts": 3})
    )
    _count_until_throttled(
        sb.account_client("autoscaling", ONE_ATTEMPT).describe_auto_scaling_groups
    )
    with pytest.raises(ClientError) as error:
        asg.describe_auto_scaling_groups()
    # Retried (a test's thread can't park, so every attempt met the same empty bucket).
    assert error.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert sb.limiter.throttled["autoscaling:DescribeAutoScalingGroups"] >= 3


# --- time inside a Lambda run -----------------------------------------------------------------


def drain_a_bucket(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Make ``event["calls"]`` ListClusters calls through an account client with retries."""
    ecs = CALLS["client"]()
    for _ in range(event["calls"]):
        ecs.list_clusters()
    return {"left_ms": context.get_remaining_time_in_millis()}


def _async(sb: Sandbox, function: str, event: dict[str, Any]) -> None:
    sb.client("lambda").invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(event)
    )


def _retrying_ecs(sb: Sandbox, mode: str = "standard") -> None:
    config = Config(retries={"mode": mode, "total_max_attempts": 10})
    CALLS["client"] = lambda: sb.account_client("ecs", config)


def test_throttling_in_a_run_turns_into_virtual_time(sb: Sandbox) -> None:
    """botocore's back-off sleeps park the run on the virtual clock: the calls succeed once the
    bucket refills, the run lasts that long, and no real time is spent waiting."""
    _retrying_ecs(sb)
    sb.create_function("f", f"{HERE}.drain_a_bucket", timeout=300)
    _async(sb, "f", {"calls": 90})  # 50 at once, then 20 a second: 2 s of refill at least
    wall = time.monotonic()
    sb.run(settle=False)
    [run] = sb.runtime.invocations
    assert run.error is None
    assert run.ended_at is not None
    took = (run.ended_at - run.at).total_seconds()
    assert took >= 2.0
    assert sb.limiter.throttled["ecs:ListClusters"] > 0
    assert time.monotonic() - wall < 30  # waits were virtual


def test_adaptive_mode_waits_on_the_virtual_clock(sb: Sandbox) -> None:
    _retrying_ecs(sb, mode="adaptive")
    sb.create_function("f", f"{HERE}.drain_a_bucket", timeout=300)
    _async(sb, "f", {"calls": 120})
    sb.run(settle=False)
    [run] = sb.runtime.invocations
    assert run.error is None and run.ended_at is not None
    assert (run.ended_at - run.at).total_seconds() >= 3.0


def test_a_run_past_its_timeout_is_cut_as_lambda_does(sb: Sandbox) -> None:
    _retrying_ecs(sb)
    sb.create_function("f", f"{HERE}.drain_a_bucket", timeout=3)
    _async(sb, "f", {"calls": 400})  # needs far more than 3 s of refill
    sb.run(settle=False)
    first = sb.runtime.invocations[0]
    assert first.error is not None and first.error.startswith("Sandbox.Timedout")
    assert "Task timed out after 3.00 seconds" in first.error
    assert first.ended_at is not None
    assert (first.ended_at - first.at).total_seconds() == pytest.approx(3.0, abs=1e-3)


def test_runs_in_flight_hold_reserved_concurrency() -> None:
    limits = RateLimits(call_latency_seconds=1.0)  # each call takes a virtual second
    CALLS.clear()
    with Sandbox(seed=5, rate_limits=limits) as box:
        box.client("ecs").create_cluster(clusterName="c")
        CALLS["client"] = lambda: box.account_client("ecs")
        box.create_function("f", f"{HERE}.drain_a_bucket", reserved_concurrency=1)
        _async(box, "f", {"calls": 3})
        _async(box, "f", {"calls": 3})
        box.run(settle=False)
        first, second = box.runtime.invocations
        assert first.ended_at is not None and first.cold_start
        # Its init phase, then three calls of a virtual second each.
        expected = box.runtime.cold_start_seconds + 3.0
        assert (first.ended_at - first.at).total_seconds() == pytest.approx(expected)
        assert second.at >= first.ended_at  # throttled while the first ran, then re-queued
        reasons = {r.reason for r in box.runtime.rejections}
        assert reasons == {"ReservedFunctionConcurrentInvocationLimitExceeded"}


def test_functions_without_reservation_share_the_account_concurrency() -> None:
    limits = RateLimits(call_latency_seconds=1.0, lambda_account_concurrency=1)
    CALLS.clear()
    with Sandbox(seed=5, rate_limits=limits) as box:
        box.client("ecs").create_cluster(clusterName="c")
        CALLS["client"] = lambda: box.account_client("ecs")
        box.create_function("f", f"{HERE}.drain_a_bucket")
        box.create_function("g", f"{HERE}.drain_a_bucket")
        _async(box, "f", {"calls": 2})
        _async(box, "g", {"calls": 2})
        box.run(settle=False)
        assert len(box.runtime.invocations) == 2
        assert {r.reason for r in box.runtime.rejections} == {"ConcurrentInvocationLimitExceeded"}


def test_each_execution_environment_has_its_own_clients(sb: Sandbox) -> None:
    """The drain Lambda's clients, through the sandbox's session, are per environment."""
    session = sb.environment_session
    proxy = session.client("ecs")
    assert proxy.list_clusters()["clusterArns"] == []
    before = session.clients_created
    proxy.list_clusters()
    assert session.clients_created == before  # the same environment reuses its client


def test_same_seed_same_throttles() -> None:
    def once() -> tuple[Any, ...]:
        CALLS.clear()
        with Sandbox(seed=9) as box:
            box.client("ecs").create_cluster(clusterName="c")
            config = Config(retries={"mode": "standard", "total_max_attempts": 10})
            CALLS["client"] = lambda: box.account_client("ecs", config)
            box.create_function("f", f"{HERE}.drain_a_bucket", timeout=300)
            for _ in range(4):
                _async(box, "f", {"calls": 30})
            box.run(settle=False)
            return (
                dict(box.limiter.throttled),
                [(i.at, i.ended_at) for i in box.runtime.invocations],
            )

    assert once() == once()
