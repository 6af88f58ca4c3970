"""Handlers the sandbox's own tests bind to Lambda functions (`Sandbox.create_function`)."""

from __future__ import annotations

from typing import Any

# Events each recording handler received, by handler name; tests clear it.
RECEIVED: dict[str, list[Any]] = {}


def record(event: Any, context: Any) -> dict[str, Any]:
    RECEIVED.setdefault("record", []).append(event)
    return {"ok": True}


def record_other(event: Any, context: Any) -> dict[str, Any]:
    RECEIVED.setdefault("record_other", []).append(event)
    return {"ok": True}


def echo(event: Any, context: Any) -> Any:
    return event


class BoomError(Exception):
    pass


def fail(event: Any, context: Any) -> Any:
    RECEIVED.setdefault("fail", []).append(event)
    raise BoomError("boom")
