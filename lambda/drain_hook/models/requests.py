"""The shapes the handler accepts, parsed into typed requests before any AWS call.

One entry point takes four shapes: the EventBridge lifecycle event, the same notification through
SNS, a manual invoke, and the state the wait loop passes back. Anything else is rejected with an
error that says what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SnsModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drain_hook.models.state import STATE_VERSION, DrainState

INSTANCE_ID_PATTERN = r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$"
TERMINATE_DETAIL_TYPE = "EC2 Instance-terminate Lifecycle Action"
TERMINATING_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"
TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"
MANUAL_KEYS = ("instance_id", "cluster", "asg_name", "hook_name", "dry_run")


class BadEventError(ValueError):
    """The event is not one of the shapes the drain hook accepts, or has bad values."""


class LifecycleDetail(BaseModel):
    """The keys Auto Scaling puts in a termination lifecycle notification."""

    model_config = ConfigDict(extra="ignore")

    LifecycleActionToken: str | None = Field(default=None, min_length=1)
    AutoScalingGroupName: str = Field(min_length=1)
    LifecycleHookName: str = Field(min_length=1)
    EC2InstanceId: str = Field(pattern=INSTANCE_ID_PATTERN)
    LifecycleTransition: str
    NotificationMetadata: str | None = None
    Origin: str | None = None
    Destination: str | None = None

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

    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    cluster: str | None = Field(default=None, min_length=1)
    asg_name: str | None = Field(default=None, min_length=1)
    hook_name: str | None = Field(default=None, min_length=1)
    dry_run: bool = False


@dataclass(frozen=True)
class LifecycleRequest:
    """A termination lifecycle action to drain and complete (from EventBridge, SNS or by hand)."""

    instance_id: str
    asg_name: str | None
    hook_name: str | None
    token: str | None
    cluster: str | None  # from NotificationMetadata or the manual invoke; None: use CLUSTER_NAME
    event_time: datetime | None
    source: str  # eventbridge, sns or manual
    dry_run: bool = False


@dataclass(frozen=True)
class IgnoredRequest:
    reason: str


@dataclass(frozen=True)
class PollRequest:
    state: DrainState


Request = LifecycleRequest | IgnoredRequest | PollRequest


def parse_request(event: Any) -> Request:
    """Dispatch on the event's shape; raise BadEventError naming what was expected."""
    if not isinstance(event, dict):
        raise BadEventError(f"expected a JSON object as the event, got {type(event).__name__}")
    if "state_version" in event:
        return _parse_poll(event)
    if "detail-type" in event or "detail" in event:
        return _parse_eventbridge(event)
    if "Records" in event:
        return _parse_sns(event)
    if "instance_id" in event:
        return _parse_manual(event)
    raise BadEventError(
        "unrecognised event: expected an EventBridge 'EC2 Instance-terminate Lifecycle Action' "
        "event, an SNS lifecycle notification (Records[].Sns.Message), a manual invoke "
        '{"instance_id": "i-...", "cluster"?, "asg_name"?, "hook_name"?, "dry_run"?}, '
        f"or a drain state returned by this function; got keys {sorted(event)}"
    )


def _problems(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "event"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


def _lifecycle(detail: Any, source: str, event_time: datetime | None) -> LifecycleRequest:
    if not isinstance(detail, dict):
        raise BadEventError(f"expected the lifecycle detail to be a JSON object ({source})")
    if not detail.get("LifecycleActionToken") and not detail.get("EC2InstanceId"):
        raise BadEventError(
            "lifecycle notification has neither LifecycleActionToken nor EC2InstanceId: "
            "expected at least EC2InstanceId (i-...)"
        )
    try:
        parsed = LifecycleDetail.model_validate(detail)
    except ValidationError as error:
        raise BadEventError(f"bad lifecycle notification ({source}): {_problems(error)}") from None
    return LifecycleRequest(
        instance_id=parsed.EC2InstanceId,
        asg_name=parsed.AutoScalingGroupName,
        hook_name=parsed.LifecycleHookName,
        token=parsed.LifecycleActionToken,
        cluster=cluster_from_metadata(parsed.NotificationMetadata),
        event_time=event_time,
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
        raise BadEventError(
            'expected NotificationMetadata {"cluster": "<cluster name or ARN>"} with a non-empty '
            f"string, got {metadata!r}"
        )
    return cluster


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _parse_eventbridge(event: dict[str, Any]) -> LifecycleRequest:
    source, detail_type = event.get("source"), event.get("detail-type")
    if source != "aws.autoscaling" or detail_type != TERMINATE_DETAIL_TYPE:
        raise BadEventError(
            f"expected an EventBridge event with source 'aws.autoscaling' and detail-type "
            f"{TERMINATE_DETAIL_TYPE!r}, got source {source!r} and detail-type {detail_type!r}"
        )
    try:
        envelope = parse(event=event, model=EventBridgeModel)
    except ValidationError as error:
        raise BadEventError(f"bad EventBridge event: {_problems(error)}") from None
    return _lifecycle(envelope.detail, "eventbridge", envelope.time)


def _parse_sns(event: dict[str, Any]) -> Request:
    try:
        envelope = parse(event=event, model=SnsModel)
    except ValidationError as error:
        raise BadEventError(f"bad SNS event: {_problems(error)}") from None
    if len(envelope.Records) != 1:
        raise BadEventError("expected an SNS event with exactly one record in Records")
    try:
        body = json.loads(envelope.Records[0].Sns.Message)
    except ValueError:
        raise BadEventError("expected Records[0].Sns.Message to be JSON") from None
    if isinstance(body, dict) and body.get("Event") == TEST_NOTIFICATION:
        return IgnoredRequest(reason="Auto Scaling test notification")
    return _lifecycle(body, "sns", _time(body.get("Time") if isinstance(body, dict) else None))


def _parse_manual(event: dict[str, Any]) -> LifecycleRequest:
    try:
        manual = ManualInvoke.model_validate(event)
    except ValidationError as error:
        raise BadEventError(
            f"bad manual invoke: {_problems(error)}; expected keys {', '.join(MANUAL_KEYS)} with "
            'instance_id like "i-0123456789abcdef0"'
        ) from None
    if (manual.asg_name is None) != (manual.hook_name is None):
        raise BadEventError(
            "manual invoke: expected both asg_name and hook_name (to complete that lifecycle "
            "action) or neither (to drain and report only)"
        )
    return LifecycleRequest(
        instance_id=manual.instance_id,
        asg_name=manual.asg_name,
        hook_name=manual.hook_name,
        token=None,
        cluster=manual.cluster,
        event_time=None,
        source="manual",
        dry_run=manual.dry_run,
    )


def _parse_poll(event: dict[str, Any]) -> PollRequest:
    if event.get("state_version") != STATE_VERSION:
        raise BadEventError(
            f"expected a drain state with state_version {STATE_VERSION}, "
            f"got {event.get('state_version')!r}"
        )
    try:
        return PollRequest(state=DrainState.model_validate(event))
    except ValidationError as error:
        raise BadEventError(
            f"bad drain state: {_problems(error)}; expected the object this function returned, "
            "passed back unchanged"
        ) from None
