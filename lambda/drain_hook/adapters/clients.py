"""boto3 clients, created on first use and reused while the Lambda container stays warm.

Retries use botocore's own standard or adaptive mode, so throttling on big scale-ins is absorbed
by the SDK rather than by hand-written loops.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_session: boto3.session.Session | None = None
_retry_mode = "adaptive"
_max_attempts = 8


def configure(retry_mode: str, max_attempts: int) -> None:
    """Set the retry policy; clears cached clients so the next call uses it."""
    global _retry_mode, _max_attempts
    if (retry_mode, max_attempts) != (_retry_mode, _max_attempts):
        _retry_mode, _max_attempts = retry_mode, max_attempts
        client.cache_clear()


def use_session(session: boto3.session.Session | None) -> None:
    """Build clients from this session (the local sandbox counts and fault-injects through it)."""
    global _session
    _session = session
    client.cache_clear()


@cache
def client(service: str) -> Any:
    # total_max_attempts counts the first try too, as AWS_MAX_ATTEMPTS does.
    config = Config(retries={"mode": _retry_mode, "total_max_attempts": _max_attempts})
    session = _session or boto3.session.Session()
    return session.client(service, config=config)
