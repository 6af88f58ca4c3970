"""How an AWS error ends a round: retried by the wait loop, or final.

The state machine sees the class name of what the handler raises. `TransientAwsError` (throttling
or server errors past botocore's retries, timeouts, lost connections) goes back to waiting while
the loop keeps the hold alive; `PermanentAwsError` (access denied and the like: retrying can't
fix it) ends the loop, and the loop's end releases the instance it owns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

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


@contextmanager
def classified() -> Iterator[None]:
    """Re-raise AWS errors as TransientAwsError or PermanentAwsError (the loop's error names)."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        kind = PermanentAwsError if code in PERMANENT_CODES else TransientAwsError
        operation = getattr(error, "operation_name", "an AWS call")
        raise kind(f"{operation} failed: {code}: {error}") from error
    except BotoCoreError as error:
        raise TransientAwsError(f"AWS call failed: {error}") from error
