"""Scaling activities for moto's Auto Scaling (moto 5.2.5 answers DescribeScalingActivities []).

Each launch and termination the sandbox's Auto Scaling performs (`local_aws.autoscaling`) records
an activity, as the EC2 Auto Scaling user guide ("Verify a scaling activity for an Auto Scaling
group") and the API reference ("DescribeScalingActivities", "Activity") describe:

- ActivityId, AutoScalingGroupName, AutoScalingGroupARN, AutoScalingGroupState (InService or
  Deleted), Description ("Terminating EC2 instance: i-...", "Launching a new EC2 instance:
  i-..."), Cause (the "At <time> ..." narrative), StartTime, EndTime once over, StatusCode,
  StatusMessage when it failed or was cancelled, Progress (0..100) and Details, a JSON string
  with "Subnet ID" (VPC groups) and "Availability Zone".
- DescribeScalingActivities: newest first by StartTime with activities still in progress ahead
  of finished ones; MaxRecords default and maximum 100, NextToken to page; at most 50
  ActivityIds (unknown ids ignored); only activities started in the last six weeks; activities
  of deleted groups only with IncludeDeletedGroups; Filters StartTimeLowerBound,
  StartTimeUpperBound (ISO 8601, UTC when no offset) and Status (only together with
  AutoScalingGroupName); an invalid NextToken fails with InvalidNextToken.

What the docs leave open, and what this module assumes (the callers choose the status codes):
the exact wording of error messages (ValidationError texts are ours), and that paging is by
position in the sorted list (an activity started between two pages shifts the next page by one,
as any offset cursor would).

API: `log_for(backend)` (the backend's `ActivityLog`), `ActivityLog.start(...)` /
`ScalingActivity.finish(...)`, `install()` (patch moto's DescribeScalingActivities; idempotent).
The clock is the caller's: `ActivityLog.describe(now=...)` decides what "the last six weeks" is.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.autoscaling import responses as asg_responses
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.core.responses import ActionResult

RETENTION = timedelta(weeks=6)
MAX_RECORDS = 100
MAX_ACTIVITY_IDS = 50
FINISHED = frozenset({"Successful", "Failed", "Cancelled"})
_NAMESPACE = uuid.UUID("0b7f1c52-3e0e-4f55-9a4e-6d1b2c3a4f50")

_installed = False


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Set by `local_aws.autoscaling` so that "now" is the sandbox's virtual clock.
_now: Callable[[], datetime] = _utc_now


def cause_time(when: datetime) -> str:
    """The timestamp format of a Cause narrative ("At 2020-10-30T19:35:51Z ...")."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ScalingActivity:
    activity_id: str
    asg_name: str
    asg_arn: str
    description: str
    cause: str
    start_time: datetime
    instance_id: str | None = None
    status_code: str = "InProgress"
    progress: int = 0
    details: dict[str, str] = field(default_factory=dict)
    end_time: datetime | None = None
    status_message: str | None = None
    # Dropped by a knob (`ActivityLog.drop`): kept for the record, never described.
    dropped: bool = False

    @property
    def in_progress(self) -> bool:
        return self.status_code not in FINISHED

    def set_status(self, status_code: str, progress: int | None = None) -> None:
        self.status_code = status_code
        if progress is not None:
            self.progress = progress

    def finish(
        self, when: datetime, status_code: str = "Successful", message: str | None = None
    ) -> None:
        self.status_code, self.end_time, self.progress = status_code, when, 100
        if message:
            self.status_message = message

    def to_api(self, group_deleted: bool = False) -> dict[str, Any]:
        """The Activity shape of the API reference."""
        out: dict[str, Any] = {
            "ActivityId": self.activity_id,
            "AutoScalingGroupName": self.asg_name,
            "AutoScalingGroupARN": self.asg_arn,
            "AutoScalingGroupState": "Deleted" if group_deleted else "InService",
            "Description": self.description,
            "Cause": self.cause,
            "StartTime": self.start_time,
            "StatusCode": self.status_code,
            "Progress": self.progress,
            "Details": json.dumps(self.details, separators=(",", ":")),
        }
        if self.end_time is not None:
            out["EndTime"] = self.end_time
        if self.status_message:
            out["StatusMessage"] = self.status_message
        return out


@dataclass
class ActivityLog:
    """The activities of one account and Region, oldest first."""

    activities: list[ScalingActivity] = field(default_factory=list)
    deleted_groups: set[str] = field(default_factory=set)  # group ARNs
    counter: int = 0

    def start(
        self,
        *,
        asg_name: str,
        asg_arn: str,
        description: str,
        cause: str,
        when: datetime,
        instance_id: str | None = None,
        details: dict[str, str] | None = None,
        record: bool = True,
    ) -> ScalingActivity:
        """A new InProgress activity; ``record=False`` returns it without keeping it."""
        self.counter += 1
        activity = ScalingActivity(
            activity_id=str(uuid.uuid5(_NAMESPACE, f"{asg_name}/{self.counter}")),
            asg_name=asg_name,
            asg_arn=asg_arn,
            description=description,
            cause=cause,
            start_time=when,
            instance_id=instance_id,
            details=dict(details or {}),
        )
        if record:
            self.activities.append(activity)
        return activity

    def for_instance(self, instance_id: str) -> list[ScalingActivity]:
        return [a for a in self.activities if a.instance_id == instance_id]

    def drop(self, instance_id: str | None = None) -> int:
        """Hide the recorded activities of an instance (or all): as if AWS had none."""
        dropped = 0
        for activity in self.activities:
            if instance_id is None or activity.instance_id == instance_id:
                dropped += not activity.dropped
                activity.dropped = True
        return dropped

    def mark_deleted(self, asg_arn: str) -> None:
        self.deleted_groups.add(asg_arn)

    def describe(
        self,
        *,
        now: datetime,
        asg_name: str | None = None,
        activity_ids: list[str] | None = None,
        include_deleted: bool = False,
        max_records: int | None = None,
        next_token: str | None = None,
        filters: list[dict[str, Any]] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of DescribeScalingActivities: (activities, next token or None)."""
        limit = MAX_RECORDS if max_records is None else max_records
        if not 1 <= limit <= MAX_RECORDS:
            raise ValidationError(
                f"1 validation error detected: Value '{limit}' at 'maxRecords' failed to "
                f"satisfy constraint: Member must have value between 1 and {MAX_RECORDS}"
            )
        if activity_ids and len(activity_ids) > MAX_ACTIVITY_IDS:
            raise ValidationError(
                f"1 validation error detected: Value at 'activityIds' failed to satisfy "
                f"constraint: Member must have length less than or equal to {MAX_ACTIVITY_IDS}"
            )
        lower, upper, statuses = _parse_filters(filters or [], asg_name)
        oldest = now - RETENTION
        wanted_ids = set(activity_ids or [])
        selected = [
            a
            for a in self.activities
            if not a.dropped
            and a.start_time >= oldest
            and (include_deleted or a.asg_arn not in self.deleted_groups)
            and (asg_name is None or a.asg_name == asg_name)
            and (not wanted_ids or a.activity_id in wanted_ids)
            and (lower is None or a.start_time >= lower)
            and (upper is None or a.start_time <= upper)
            and (statuses is None or a.status_code in statuses)
        ]
        # In-progress first, then newest first; the record order breaks ties (later = newer).
        order = {id(a): i for i, a in enumerate(self.activities)}
        selected.sort(key=lambda a: (not a.in_progress, -a.start_time.timestamp(), -order[id(a)]))
        offset = decode_token(next_token) if next_token else 0
        page = selected[offset : offset + limit]
        token = encode_token(offset + limit) if offset + limit < len(selected) else None
        return [a.to_api(a.asg_arn in self.deleted_groups) for a in page], token


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise ValidationError(f"Invalid ISO 8601 timestamp: {value}") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_filters(
    filters: list[dict[str, Any]], asg_name: str | None
) -> tuple[datetime | None, datetime | None, set[str] | None]:
    lower = upper = None
    statuses: set[str] | None = None
    for flt in filters:
        name, values = flt.get("Name"), list(flt.get("Values") or [])
        if name == "StartTimeLowerBound" and values:
            lower = _parse_time(values[0])
        elif name == "StartTimeUpperBound" and values:
            upper = _parse_time(values[0])
        elif name == "Status":
            if asg_name is None:
                raise ValidationError(
                    "The Status filter can only be used together with AutoScalingGroupName."
                )
            statuses = set(values)
        else:
            raise ValidationError(f"Unsupported filter name: {name}")
    return lower, upper, statuses


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        raise AutoscalingClientError(
            "InvalidNextToken", f"The token '{token}' is invalid."
        ) from err
    if not isinstance(offset, int) or offset < 0:
        raise AutoscalingClientError("InvalidNextToken", f"The token '{token}' is invalid.")
    return offset


def log_for(backend: Any) -> ActivityLog:
    # Kept on the backend object, so moto's reset between mock_aws() contexts wipes it too.
    log = backend.__dict__.get("_sandbox_activities")
    if log is None:
        log = ActivityLog()
        backend.__dict__["_sandbox_activities"] = log
    return log


def _describe_scaling_activities(self: Any) -> ActionResult:
    activities, token = log_for(self.autoscaling_backend).describe(
        now=_now(),
        asg_name=self._get_param("AutoScalingGroupName"),
        activity_ids=self._get_param("ActivityIds", []),
        include_deleted=bool(self._get_bool_param("IncludeDeletedGroups", False)),
        max_records=self._get_int_param("MaxRecords"),
        next_token=self._get_param("NextToken"),
        filters=self._get_param("Filters", []),
    )
    result: dict[str, Any] = {"Activities": activities}
    if token:
        result["NextToken"] = token
    return ActionResult(result)


def set_now(now: Callable[[], datetime]) -> None:
    global _now
    _now = now


def install() -> None:
    """Answer DescribeScalingActivities from the recorded activities. Idempotent."""
    global _installed
    if _installed:
        return
    asg_responses.AutoScalingResponse.describe_scaling_activities = _describe_scaling_activities  # type: ignore[method-assign]
    _installed = True
