"""The shapes the handler accepts, parsed into typed requests before any AWS call.

One entry point takes these shapes: the EventBridge lifecycle event (the intake queue's message
body, or sent straight), the same notification through SNS, a manual invoke, the state the wait
loop passes back, an ECS "Task State Change" event of a task that stopped, and a Step Functions
"Execution Status Change" event for a loop that ended badly. Types are strict (no
"no" for false, no true for 1); anything else is rejected with an `InputRejected` error that
says what was expected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drain_hook import contract
from drain_hook.errors import InputRejected
from drain_hook.models.observations import INSTANCE_ID_PATTERN

if TYPE_CHECKING:
    from drain_hook.models.state import DrainState

TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"
QUEUE_EVENT_SOURCE = "aws:sqs"  # eventSource of an SQS event source mapping's records
MANUAL_KEYS = ("instance_id", "cluster", "asg_name", "hook_name", "dry_run")


@dataclass(frozen=True)
class LifecycleRequest:
    """A termination lifecycle action to drain and complete (from EventBridge, SNS or by hand)."""

    instance_id: str
    asg_name: str | None
    hook_name: str | None
    token: str | None
    cluster: str | None  # from NotificationMetadata or the manual invoke; None: use CLUSTER_NAME
    source: str  # eventbridge, sns, manual or sweep (a lost event found by the sweep)
    dry_run: bool = False


@dataclass(frozen=True)
class IgnoredRequest:
    reason: str


@dataclass(frozen=True)
class PollRequest:
    state: DrainState


@dataclass(frozen=True)
class TaskStoppedRequest:
    """An ECS "Task State Change" event of a task that reached STOPPED on a container instance:
    perhaps the last task of an instance we drain."""

    cluster_arn: str
    container_instance_arn: str
    task_arn: str
    stopped_at: datetime | None  # the event's stoppedAt (only compared, never trusted alone)


@dataclass(frozen=True)
class LoopEndedRequest:
    """A wait-loop execution that ended FAILED, TIMED_OUT or ABORTED (per the event)."""

    execution_arn: str
    state_machine_arn: str
    name: str
    status: str


@dataclass(frozen=True)
class SweepRequest:
    """The scheduled rule's event: look for lifecycle actions whose event never came."""


@dataclass(frozen=True)
class SpotWarningRequest:
    """An "EC2 Spot Instance Interruption Warning" (EC2 user guide, "Spot Instance interruption
    notices"): the instance, and what EC2 will do to it (terminate, stop or hibernate)."""

    instance_id: str
    instance_action: str


SPOT_ACTIONS = ("terminate", "stop", "hibernate")
_INSTANCE_ID = re.compile(INSTANCE_ID_PATTERN)

Request = (
    LifecycleRequest
    | IgnoredRequest
    | PollRequest
    | TaskStoppedRequest
    | LoopEndedRequest
    | SweepRequest
    | SpotWarningRequest
)


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


def _lifecycle(detail: Any, source: str) -> LifecycleRequest:
    from pydantic import ValidationError

    from drain_hook.models.observations import TERMINATING_TRANSITION
    from drain_hook.models.schemas import LifecycleDetail, problems

    if not isinstance(detail, dict):
        raise InputRejected(f"expected the lifecycle detail to be a JSON object ({source})")
    try:
        parsed = LifecycleDetail.model_validate(detail)
    except ValidationError as error:
        raise InputRejected(
            f"bad lifecycle notification ({source}): {problems(error)}; expected "
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
        (contract.SWEEP_SOURCE, contract.LIFECYCLE_DETAIL_TYPE),
        (contract.ECS_SOURCE, contract.TASK_DETAIL_TYPE),
        (contract.STATES_SOURCE, contract.EXECUTION_STATUS_DETAIL_TYPE),
        (contract.SCHEDULE_SOURCE, contract.SCHEDULE_DETAIL_TYPE),
        (contract.SPOT_SOURCE, contract.SPOT_DETAIL_TYPE),
    }
    if (source, detail_type) not in kinds:
        raise InputRejected(
            "expected an EventBridge event with source/detail-type "
            + ", ".join(f"{s!r}/{d!r}" for s, d in sorted(kinds))
            + f"; got source {source!r} and detail-type {detail_type!r}"
        )
    if source == contract.ECS_SOURCE:
        # Every stopped task of the cluster comes here: read without pydantic (cold start), the
        # detail's fields checked one by one.
        return _task_stopped(event.get("detail"))
    if source == contract.SCHEDULE_SOURCE:
        # Every few minutes, all day: read without pydantic too (nothing in it is needed).
        return SweepRequest()
    if source == contract.SPOT_SOURCE:
        return _spot_warning(event.get("detail"))
    from aws_lambda_powertools.utilities.parser import parse
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
    from pydantic import ValidationError

    from drain_hook.models.schemas import problems

    try:
        envelope = parse(event=event, model=EventBridgeModel)
    except ValidationError as error:
        raise InputRejected(f"bad EventBridge event: {problems(error)}") from None
    if source == contract.STATES_SOURCE:
        return _loop_ended(envelope.detail)
    return _lifecycle(
        envelope.detail, "sweep" if source == contract.SWEEP_SOURCE else "eventbridge"
    )


def _spot_warning(detail: Any) -> SpotWarningRequest:
    """The detail of a Spot interruption warning: instance-id and instance-action."""
    instance = detail.get("instance-id") if isinstance(detail, dict) else None
    action = detail.get("instance-action") if isinstance(detail, dict) else None
    if not isinstance(instance, str) or not _INSTANCE_ID.match(instance):
        raise InputRejected(
            "bad EC2 Spot Instance Interruption Warning: expected detail.instance-id like "
            f'"i-0123456789abcdef0", got {instance!r}'
        )
    if action not in SPOT_ACTIONS:
        raise InputRejected(
            "bad EC2 Spot Instance Interruption Warning: expected detail.instance-action "
            f"{' / '.join(SPOT_ACTIONS)}, got {action!r}"
        )
    return SpotWarningRequest(instance_id=instance, instance_action=action)


def _task_stopped(detail: Any) -> Request:
    """The fields of a "Task State Change" detail the release reads (the detail resembles
    DescribeTasks' Task, timestamps as ISO strings: "Amazon ECS task state change events")."""
    if not isinstance(detail, dict):
        raise InputRejected("expected the ECS task state change detail to be a JSON object")
    wanted = ("clusterArn", "taskArn", "lastStatus")
    bad = [key for key in wanted if not isinstance(detail.get(key), str) or not detail[key]]
    instance_arn = detail.get("containerInstanceArn")
    if instance_arn is not None and (not isinstance(instance_arn, str) or not instance_arn):
        bad.append("containerInstanceArn")
    stopped_at = _event_time(detail.get("stoppedAt"))
    if "stoppedAt" in detail and stopped_at is None:
        bad.append("stoppedAt")
    if bad:
        raise InputRejected(
            f"bad ECS task state change event: {', '.join(bad)}: expected non-empty strings "
            "clusterArn, taskArn and lastStatus, containerInstanceArn if present, and stoppedAt "
            "an ISO 8601 time with its offset if present"
        )
    if detail["lastStatus"] != contract.TASK_STOPPED_STATUS:
        return IgnoredRequest(reason=f"a task {detail['lastStatus']}, not STOPPED")
    if instance_arn is None:
        return IgnoredRequest(reason="a task on no container instance (not an EC2 task)")
    return TaskStoppedRequest(
        cluster_arn=detail["clusterArn"],
        container_instance_arn=instance_arn,
        task_arn=detail["taskArn"],
        stopped_at=stopped_at,
    )


def _event_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _loop_ended(detail: Any) -> LoopEndedRequest:
    from pydantic import ValidationError

    from drain_hook.models.schemas import ExecutionStatusDetail, problems

    try:
        parsed = ExecutionStatusDetail.model_validate(detail)
    except ValidationError as error:
        raise InputRejected(
            f"bad Step Functions execution status change event: {problems(error)}"
        ) from None
    return LoopEndedRequest(
        execution_arn=parsed.executionArn,
        state_machine_arn=parsed.stateMachineArn,
        name=parsed.name,
        status=parsed.status,
    )


def _parse_sns(event: dict[str, Any]) -> Request:
    from aws_lambda_powertools.utilities.parser import parse
    from aws_lambda_powertools.utilities.parser.models import SnsModel
    from pydantic import ValidationError

    from drain_hook.models.schemas import problems

    try:
        envelope = parse(event=event, model=SnsModel)
    except ValidationError as error:
        raise InputRejected(f"bad SNS event: {problems(error)}") from None
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
    from pydantic import ValidationError

    from drain_hook.models.schemas import ManualInvoke, problems

    try:
        manual = ManualInvoke.model_validate(event)
    except ValidationError as error:
        raise InputRejected(
            f"bad manual invoke: {problems(error)}; expected keys {', '.join(MANUAL_KEYS)} "
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
    from pydantic import ValidationError

    from drain_hook.models.schemas import problems
    from drain_hook.models.state import STATE_VERSION, DrainState

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
            f"bad drain state: {problems(error)}; expected the object this function returned, "
            "passed back unchanged"
        ) from None
    return PollRequest(state=state)
