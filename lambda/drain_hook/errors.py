"""Every error the handler raises by name, and how an AWS error ends a round.

The state machine sees the class name of what the handler raises, and its ASL names each of
these. `InputRejected`: the input is not a shape the drain hook takes, or disagrees with AWS's
record; raised before any AWS write. `TransientAwsError` (throttling or server errors past
botocore's retries, timeouts, lost connections) goes back to waiting while the loop keeps the
hold alive; `PermanentAwsError` and its subclasses (access denied, a request AWS or botocore
refuses as invalid, a cluster that does not exist: retrying can't fix them) end the loop, and
the loop's end releases the instance it owns; so does `ErrorsOutlastedRelease`.

Standard library and botocore only: the handler imports it at cold start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

# Once a lifecycle action is over (completed, timed out, instance gone), Auto Scaling answers
# heartbeats and completions with a ValidationError saying this. For us that means "already
# done", which the Auto Scaling adapter answers itself; it is no invalid request.
NO_ACTIVE_ACTION = "No active Lifecycle Action found"

# Error codes that retrying can't fix (IAM and account problems).
PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "AuthFailure",
        "OptInRequired",
    }
)


# A request the service refuses as invalid is refused again however often it is sent: ECS's
# InvalidParameterException, Auto Scaling's ValidationError, and the *ValidationException of
# the JSON protocol services (Step Functions).
INVALID_REQUEST_CODES = frozenset({"InvalidParameterException", "ValidationError"})
INVALID_REQUEST_SUFFIX = "ValidationException"


class InputRejected(ValueError):
    """The event is not one of the shapes the drain hook accepts, has bad values, or disagrees
    with AWS's own record. Raised before any AWS write; the error name the state machine sees."""


class TransientAwsError(RuntimeError):
    """An AWS call failed for a reason that may pass (throttling, 5xx, timeouts)."""


class ErrorsOutlastedRelease(RuntimeError):
    """A poll failed, and polls have been failing for ERROR_RELEASE_SECONDS: the loop ends and
    its end releases the instance (the state machine's state of the same name)."""


class PermanentAwsError(RuntimeError):
    """An AWS call failed for a reason retrying can't fix (e.g. access denied)."""


class ClusterNotFound(PermanentAwsError):
    """The ECS cluster the drain names does not exist (ClusterNotFoundException)."""

    def __init__(self, cluster: str) -> None:
        super().__init__(
            f"ECS cluster {cluster!r} does not exist in this account and region: check the "
            'hook\'s NotificationMetadata {"cluster": ...}, the manual invoke\'s "cluster" or '
            "CLUSTER_NAME"
        )
        self.cluster = cluster


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_no_active_action(error: ClientError) -> bool:
    return NO_ACTIVE_ACTION in str(error.response.get("Error", {}).get("Message", ""))


def is_permanent(error: ClientError) -> bool:
    """Whether sending the same request again can't succeed."""
    code = error_code(error)
    if code in PERMANENT_CODES:
        return True
    if code in INVALID_REQUEST_CODES or code.endswith(INVALID_REQUEST_SUFFIX):
        return not is_no_active_action(error)
    return False


@contextmanager
def classified() -> Iterator[None]:
    """Re-raise AWS errors as TransientAwsError or PermanentAwsError (the loop's error names)."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        kind = PermanentAwsError if is_permanent(error) else TransientAwsError
        operation = getattr(error, "operation_name", "an AWS call")
        raise kind(f"{operation} failed: {code}: {error}") from error
    except ParamValidationError as error:
        # botocore refused the request before sending it: it would refuse it every time.
        raise PermanentAwsError(f"AWS call refused by botocore: {error}") from error
    except BotoCoreError as error:
        raise TransientAwsError(f"AWS call failed: {error}") from error
