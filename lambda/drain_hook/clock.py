"""The one place the Lambda reads the time, so the local sandbox can run it on a virtual clock."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
