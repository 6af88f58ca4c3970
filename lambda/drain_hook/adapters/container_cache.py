"""Reads kept for the life of the Lambda container, so a burst of drains asks AWS once per
container instead of once per instance.

Only what stays true is kept: a lifecycle hook's settings for a minute (they change only by a
deploy), a scaling activity's start time for good (AWS never rewrites it). Nothing here decides a
destructive step on its own: before a time-based stop or release the drain reads the hooks
afresh (`drain_flow._verified_hold_start`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_store: dict[str, Any] = {}
_store_for: Callable[[], dict[str, Any]] | None = None


def store() -> dict[str, Any]:
    """This container's cache (a plain dict: keys are owned by the adapter that writes them)."""
    return _store_for() if _store_for is not None else _store


def clear() -> None:
    """Forget everything (a test's fresh container)."""
    store().clear()


def use_store(factory: Callable[[], dict[str, Any]] | None) -> None:
    """Where `store` looks (the local sandbox runs many containers in one process: each gets
    its own); None: the module's own dict."""
    global _store_for
    _store_for = factory
    _store.clear()
