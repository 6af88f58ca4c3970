"""Callbacks due at a virtual time: how sandbox actors poll without threads.

An actor (an ECS-side drain hook, say) asks to be called back in N seconds; the sandbox loop
runs what is due on every step and moves the clock to the next due time (`next_time`). Ties run
in the order they were scheduled, so runs are repeatable.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from local_aws.clock import Clock


@dataclass(order=True)
class Timer:
    when: datetime
    seq: int
    callback: Callable[[], None] = field(compare=False)
    name: str = field(default="", compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._lock = threading.RLock()

    def call_at(self, when: datetime, callback: Callable[[], None], name: str = "") -> Timer:
        timer = Timer(when, next(self._seq), callback, name)
        with self._lock:
            heapq.heappush(self._heap, timer)
        return timer

    def call_later(self, seconds: float, callback: Callable[[], None], name: str = "") -> Timer:
        return self.call_at(self.clock.now() + timedelta(seconds=seconds), callback, name)

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)

    def next_time(self) -> datetime | None:
        with self._lock:
            self._drop_cancelled()
            return self._heap[0].when if self._heap else None

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(1 for t in self._heap if not t.cancelled)

    def run_due(self) -> bool:
        """Run every callback due now (including ones scheduled by them for now)."""
        ran = False
        while True:
            with self._lock:
                self._drop_cancelled()
                if not self._heap or self._heap[0].when > self.clock.now():
                    return ran
                timer = heapq.heappop(self._heap)
            timer.callback()
            ran = True
