"""EventBridge pattern matching for exact values, including fields inside arrays of objects.

EventBridge's user guide ("Arrays in Amazon EventBridge event patterns") says a pattern value
matches an array in the event when the two intersect. For objects inside an array, the guide is
silent; aws/event-ruler (the library behind EventBridge, README "JSON Array Matching") flattens
the array, so `{"attributes": {"name": ["x"]}}` matches when any element has name "x". moto 5.2.5
does not flatten (it never matches such a pattern), hence this small matcher for the tests.
"""

from __future__ import annotations

from typing import Any


def matches(pattern: dict[str, Any], event: Any) -> bool:
    return all(_field(value, _get(event, key)) for key, value in pattern.items())


_MISSING = object()


def _get(event: Any, key: str) -> Any:
    if isinstance(event, dict):
        return event.get(key, _MISSING)
    if isinstance(event, list):
        found = [_get(item, key) for item in event]
        found = [f for f in found if f is not _MISSING]
        return found if found else _MISSING
    return _MISSING


def _field(pattern: Any, value: Any) -> bool:
    if value is _MISSING:
        return False
    if isinstance(pattern, dict):
        if isinstance(value, list):
            return any(isinstance(v, dict | list) and matches(pattern, v) for v in value)
        return isinstance(value, dict) and matches(pattern, value)
    values = _leaves(value)
    return any(p in values for p in pattern)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]
