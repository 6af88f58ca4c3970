"""The shapes the handler accepts, parsed into typed requests before any AWS call.

One entry point takes these shapes: the EventBridge lifecycle event (the intake queue's message
body, or sent straight), the same notification through SNS, a manual invoke, the state the wait
loop passes back, an ECS "Container Instance State Change" event for an instance we drain, and a
Step Functions "Execution Status Change" event for a loop that ended badly. Types are strict (no
"no" for false, no true for 1); anything else is rejected with an `InputRejected` error that
says what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SnsModel
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from drain_hook import contract
from drain_hook.models.observations import TERMINATING_TRANSITION
from drain_hook.models.state import INSTANCE_ID_PATTERN, STATE_VERSION, DrainState

TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"
QUEUE_EVENT_SOURCE = "aws:sqs"  # eventSource of an SQS event source mapping's records
MANUAL_KEYS = ("instance_id", "cluster", "asg_name", "hook_name", "dry_run")
NAME = r"^[^\s].*$"  # non-empty, no leading whitespace


class InputRejected(ValueError):
    """The event is not one of the shapes the drain hook accepts, has bad values, or disagrees
    with AWS's own record. Raised before any AWS write; the error name the state machine sees."""


BadEventError = InputRejected  # the name earlier releases used


class LifecycleDetail(BaseModel):
    """The keys Auto Scaling puts in a termination lifecycle notification."""

    model_config = ConfigDict(extra="ignore")

    LifecycleActionToken: StrictStr | None = Field(default=None, min_length=1)
    AutoScalingGroupName: StrictStr = Field(min_length=1, max_length=255)
    LifecycleHookName: StrictStr = Field(min_length=1, max_length=255)
    EC2InstanceId: StrictStr = Field(pattern=INSTANCE_ID_PATTERN)
    LifecycleTransition: StrictStr
    NotificationMetadata: StrictStr | None = None
    Origin: StrictStr | None = None
    Destination: StrictStr | None = None

    @field_validator("LifecycleTransition")
    @classmethod
    def _terminating_only(cls, value: str) -> str:
        if value != TERMINATING_TRANSITION:
            raise ValueError(
                f"expected LifecycleTransition {TERMINATING_TRANSITION!r}, got {value!r}: "
                "the drain hook only handles termination hooks"
            )
        return value


class ManualInvoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instance_id: StrictStr = Field(pattern=INSTANCE_ID_PATTERN)
    cluster: StrictStr | None = Field(default=None, min_length=1, pattern=NAME)
    asg_name: StrictStr | None = Field(default=None, min_length=1, max_length=255, pattern=NAME)
    hook_name: StrictStr | None = Field(default=None, min_length=1, max_length=255, pattern=NAME)
    dry_run: StrictBool = False


class Attribute(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr
    value: StrictStr | None = None


class Resource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr
    integerValue: StrictInt | None = None


class InstanceChangeDetail(BaseModel):
    """The part of an ECS "Container Instance State Change" detail the fast path reads."""

    model_config = ConfigDict(extra="ignore")

    clusterArn: StrictStr = Field(min_length=1)
    containerInstanceArn: StrictStr = Field(min_length=1)
    ec2InstanceId: StrictStr = Field(pattern=INSTANCE_ID_PATTERN)
    status: StrictStr | None = None
    agentConnected: StrictBool | None = None
    runningTasksCount: StrictInt | None = Field(default=None, ge=0)
    pendingTasksCount: StrictInt | None = Field(default=None, ge=0)
    attributes: list[Attribute] = Field(default_factory=list)
    registeredResources: list[Resource] = Field(default_factory=list)
    remainingResources: list[Resource] = Field(default_factory=list)


class ExecutionStatusDetail(BaseModel):
    """The part of a "Step Functions Execution Status Change" detail the release reads."""

    model_config = ConfigDict(extra="ignore")

    executionArn: StrictStr = Field(min_length=1)
    stateMachineArn: StrictStr = Field(min_length=1)
    name: StrictStr = Field(min_length=1)
    status: StrictStr


@dataclass(frozen=True)
class LifecycleRequest:
    """A termination lifecycle action to drain and complete (from EventBridge, SNS or by hand)."""

    instance_id: str
    asg_name: str | None
    hook_name: str | None
    token: str | None
    cluster: str | None  # from NotificationMetadata or the manual invoke; None: use CLUSTER_NAME
    source: str  # eventbridge, sns or manual
    dry_run: bool = False


@dataclass(frozen=True)
class IgnoredRequest:
    reason: str


@dataclass(frozen=True)
class PollRequest:
    state: DrainState


@dataclass(frozen=True)
class InstanceChangeRequest:
    """An ECS event for a container instance that carries our drain attribute."""

    cluster_arn: str
    container_instance_arn: str
    ec2_instance_id: str
    status: str | None
    running_tasks: int | None
    pending_tasks: int | None
    agent_connected: bool | None
    drain_attribute: str | None
    memory_registered: int | None
    memory_remaining: int | None

    @property
    def says_not_draining(self) -> bool:
        """The event shows the instance in another status (INACTIVE once it terminated,
        ACTIVE if someone reactivated it) or its agent away: nothing to complete on it now."""
        return (self.status is not None and self.status != "DRAINING") or (
            self.agent_connected is False
        )

    @property
    def says_tasks_remain(self) -> bool:
        """Whether the event itself shows a task still meant to run or holding resources.

        Used only to skip work: an event never decides that the instance is empty.
        """
        if (self.running_tasks or 0) + (self.pending_tasks or 0) > 0:
            return True
        registered, remaining = self.memory_registered, self.memory_remaining
        return registered is not None and remaining is not None and remaining < registered


@dataclass(frozen=True)
class LoopEndedRequest:
    """A wait-loop execution that ended FAILED, TIMED_OUT or ABORTED (per the event)."""

    execution_arn: str
    state_machine_arn: str
    name: str
    status: str


Request = LifecycleRequest | IgnoredRequest | PollRequest | InstanceChangeRequest | LoopEndedRequest


def parse_request(event: Any) -> Request:
    """Dispatch on the event's shape; raise InputRejected naming what was expected."""
    if not isinstance(event, dict):
        raise InputRejected(f"expected a JSON object as the event, got {type(event).__name__}")
    if "state_version" in event:
        return _parse_poll(event)
    if "detail-type" in event or "detail" in event:
        return _parse_eventbridge(event)
    if "Records" in event:
        return _parse_sns(event)
    if "instance_id" in event:
        return _parse_manual(event)
    raise InputRejected(
        "unrecognised event: expected an EventBridge 'EC2 Instance-terminate Lifecycle Action' "
        "event, an SNS lifecycle notification (Records[].Sns.Message), a manual invoke "
        '{"instance_id": "i-...", "cluster"?, "asg_name"?, "hook_name"?, "dry_run"?}, '
        f"or a drain state returned by this function; got keys {sorted(event)}"
    )


def is_queue_batch(event: Any) -> bool:
    """Whether the event is a batch from the intake queue (SQS event source mapping)."""
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == QUEUE_EVENT_SOURCE for r in records)
    )


def parse_queued(body: Any) -> LifecycleRequest:
    """One message of the intake queue: the lifecycle event the EventBridge rule sent there."""
    try:
        event = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        event = None
    if not isinstance(event, dict) or event.get("detail-type") != contract.LIFECYCLE_DETAIL_TYPE:
        raise InputRejected(
            "expected the intake queue's message body to be an EventBridge "
            f"{contract.LIFECYCLE_DETAIL_TYPE!r} event (JSON), as the lifecycle rule sends it"
        )
    request = _parse_eventbridge(event)
    assert isinstance(request, LifecycleRequest)  # the detail-type says so
    return request


def _problems(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "event"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


def _lifecycle(detail: Any, source: str) -> LifecycleRequest:
    if not isinstance(detail, dict):
        raise InputRejected(f"expected the lifecycle detail to be a JSON object ({source})")
    try:
        parsed = LifecycleDetail.model_validate(detail)
    except ValidationError as error:
        raise InputRejected(
            f"bad lifecycle notification ({source}): {_problems(error)}; expected "
            "AutoScalingGroupName, LifecycleHookName, EC2InstanceId (i-...), "
            f"LifecycleTransition {TERMINATING_TRANSITION!r} and LifecycleActionToken"
        ) from None
    return LifecycleRequest(
        instance_id=parsed.EC2InstanceId,
        asg_name=parsed.AutoScalingGroupName,
        hook_name=parsed.LifecycleHookName,
        token=parsed.LifecycleActionToken,
        cluster=cluster_from_metadata(parsed.NotificationMetadata),
        source=source,
    )


def cluster_from_metadata(metadata: str | None) -> str | None:
    """The hook's NotificationMetadata may be JSON {"cluster": "name"}; other text is not ours."""
    if not metadata:
        return None
    try:
        value = json.loads(metadata)
    except ValueError:
        return None
    if not isinstance(value, dict) or "cluster" not in value:
        return None
    cluster = value["cluster"]
    if not isinstance(cluster, str) or not cluster.strip():
        raise InputRejected(
            'expected NotificationMetadata {"cluster": "<cluster name or ARN>"} with a non-empty '
            f"string, got {metadata!r}"
        )
    return cluster


def _parse_eventbridge(event: dict[str, Any]) -> Request:
    source, detail_type = event.get("source"), event.get("detail-type")
    kinds = {
        (contract.LIFECYCLE_SOURCE, contract.LIFECYCLE_DETAIL_TYPE),
        (contract.ECS_SOURCE, contract.CONTAINER_INSTANCE_DETAIL_TYPE),
        (contract.STATES_SOURCE, contract.EXECUTION_STATUS_DETAIL_TYPE),
    }
    if (source, detail_type) not in kinds:
        raise InputRejected(
            "expected an EventBridge event with source/detail-type "
            + ", ".join(f"{s!r}/{d!r}" for s, d in sorted(kinds))
            + f"; got source {source!r} and detail-type {detail_type!r}"
        )
    try:
        envelope = parse(event=event, model=EventBridgeModel)
    except ValidationError as error:
        raise InputRejected(f"bad EventBridge event: {_problems(error)}") from None
    if source == contract.ECS_SOURCE:
        return _instance_change(envelope.detail)
    if source == contract.STATES_SOURCE:
        return _loop_ended(envelope.detail)
    return _lifecycle(envelope.detail, "eventbridge")


def _instance_change(detail: Any) -> InstanceChangeRequest:
    try:
        parsed = InstanceChangeDetail.model_validate(detail)
    except ValidationError as error:
        raise InputRejected(
            f"bad ECS container instance state change event: {_problems(error)}"
        ) from None
    attributes = {a.name: a.value for a in parsed.attributes}
    registered = {r.name: r.integerValue for r in parsed.registeredResources}
    remaining = {r.name: r.integerValue for r in parsed.remainingResources}
    return InstanceChangeRequest(
        cluster_arn=parsed.clusterArn,
        container_instance_arn=parsed.containerInstanceArn,
        ec2_instance_id=parsed.ec2InstanceId,
        status=parsed.status,
        running_tasks=parsed.runningTasksCount,
        pending_tasks=parsed.pendingTasksCount,
        agent_connected=parsed.agentConnected,
        drain_attribute=attributes.get(contract.DRAIN_ATTRIBUTE),
        memory_registered=registered.get("MEMORY"),
        memory_remaining=remaining.get("MEMORY"),
    )


def _loop_ended(detail: Any) -> LoopEndedRequest:
    try:
        parsed = ExecutionStatusDetail.model_validate(detail)
    except ValidationError as error:
        raise InputRejected(
            f"bad Step Functions execution status change event: {_problems(error)}"
        ) from None
    return LoopEndedRequest(
        execution_arn=parsed.executionArn,
        state_machine_arn=parsed.stateMachineArn,
        name=parsed.name,
        status=parsed.status,
    )


def _parse_sns(event: dict[str, Any]) -> Request:
    try:
        envelope = parse(event=event, model=SnsModel)
    except ValidationError as error:
        raise InputRejected(f"bad SNS event: {_problems(error)}") from None
    if len(envelope.Records) != 1:
        raise InputRejected("expected an SNS event with exactly one record in Records")
    try:
        body = json.loads(envelope.Records[0].Sns.Message)
    except ValueError:
        raise InputRejected("expected Records[0].Sns.Message to be JSON") from None
    if isinstance(body, dict) and body.get("Event") == TEST_NOTIFICATION:
        return IgnoredRequest(reason="Auto Scaling test notification")
    return _lifecycle(body, "sns")


def _parse_manual(event: dict[str, Any]) -> LifecycleRequest:
    try:
        manual = ManualInvoke.model_validate(event)
    except ValidationError as error:
        raise InputRejected(
            f"bad manual invoke: {_problems(error)}; expected keys {', '.join(MANUAL_KEYS)} "
            'with instance_id like "i-0123456789abcdef0", strings for cluster, asg_name and '
            "hook_name, and dry_run true or false"
        ) from None
    if (manual.asg_name is None) != (manual.hook_name is None):
        raise InputRejected(
            "manual invoke: expected both asg_name and hook_name (to complete that lifecycle "
            "action) or neither (to drain and report only)"
        )
    return LifecycleRequest(
        instance_id=manual.instance_id,
        asg_name=manual.asg_name,
        hook_name=manual.hook_name,
        token=None,
        cluster=manual.cluster,
        source="manual",
        dry_run=manual.dry_run,
    )


def _parse_poll(event: dict[str, Any]) -> PollRequest:
    version = event.get("state_version")
    if type(version) is not int or version != STATE_VERSION:
        raise InputRejected(
            f"expected a drain state with state_version {STATE_VERSION} (a JSON number), "
            f"got {version!r}: pass back the object this function returned"
        )
    try:
        state = DrainState.model_validate(event)
    except ValidationError as error:
        raise InputRejected(
            f"bad drain state: {_problems(error)}; expected the object this function returned, "
            "passed back unchanged"
        ) from None
    return PollRequest(state=state)
