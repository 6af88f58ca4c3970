"""Clocks for the sandbox: the real one, and a virtual one that Wait states and timers advance.

Everything in the sandbox that needs the time asks a `Clock`, so a two-hour drain can run in
seconds: the Step Functions Wait state advances the virtual clock instead of sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

# A fixed start keeps runs with the same seed identical, timestamps included.
VIRTUAL_EPOCH = datetime(2025, 1, 6, 9, 0, 0, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A thread-safe clock that only moves when told to (`advance`) or by a `sleep`."""

    def __init__(self, start: datetime = VIRTUAL_EPOCH) -> None:
        self._start = start
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def advance_to(self, when: datetime) -> datetime:
        with self._lock:
            if when > self._now:
                self._now = when
            return self._now

    def elapsed(self) -> float:
        """Virtual seconds since the clock started."""
        with self._lock:
            return (self._now - self._start).total_seconds()
