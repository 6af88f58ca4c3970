"""The strict pydantic models of the inputs the drain reads fields from.

Imported only by the parsers that need them (`drain_hook.models.requests`), never at cold start:
building pydantic models costs more than importing boto3, and the busiest event, a task that
stopped, needs none of them.
"""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

from drain_hook.models.observations import TERMINATING_TRANSITION
from drain_hook.models.state import INSTANCE_ID_PATTERN

NAME = r"^[^\s].*$"  # non-empty, no leading whitespace


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


class ExecutionStatusDetail(BaseModel):
    """The part of a "Step Functions Execution Status Change" detail the release reads."""

    model_config = ConfigDict(extra="ignore")

    executionArn: StrictStr = Field(min_length=1)
    stateMachineArn: StrictStr = Field(min_length=1)
    name: StrictStr = Field(min_length=1)
    status: StrictStr


def problems(error: ValidationError) -> str:
    """The validation errors as "where: what" phrases, for an InputRejected message."""
    parts = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "event"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)
