"""Step Functions on virtual time: moto's ASL interpreter runs the real definition, but Wait
states and Retry intervals park the execution on the sandbox clock instead of sleeping.

moto runs each execution in worker threads. `TimeKeeper` counts executions that are busy; a
Wait (or a retry interval) parks its execution until the virtual clock reaches its wake time.
The sandbox's loop waits until every execution is parked or finished ("quiet"), then moves the
clock to the next wake-up (or the next ECS or lifecycle timer) and wakes what is due. So many
executions can wait at once, in the right order, and a two-hour drain takes seconds.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from moto.stepfunctions.parser.backend import execution_worker

from local_aws.clock import VirtualClock


class TimeKeeper:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._busy = 0
        self._seq = 0
        self._sleepers: list[dict[str, Any]] = []
        self.started = 0
        self.finished = 0

    def enter(self) -> None:
        with self._cond:
            self._busy += 1
            self.started += 1

    def leave(self) -> None:
        with self._cond:
            self._busy -= 1
            self.finished += 1
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        """Park the calling execution until the virtual clock has moved ``seconds`` on."""
        if seconds <= 0:
            return
        with self._cond:
            self._seq += 1
            entry = {
                "when": self.clock.now() + timedelta(seconds=seconds),
                "seq": self._seq,
                "woken": False,
            }
            self._sleepers.append(entry)
            self._busy -= 1
            self._cond.notify_all()
            while not entry["woken"]:
                self._cond.wait()
            # wake_due() counted this execution busy again before waking it.

    def wait_quiet(self, timeout: float = 60.0) -> None:
        """Block until every execution is parked or done (``timeout`` real seconds)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._busy == 0, timeout=timeout):
                raise TimeoutError(f"{self._busy} Step Functions execution(s) still busy")

    def next_wake(self) -> datetime | None:
        with self._cond:
            return min((s["when"] for s in self._sleepers), default=None)

    def wake_due(self) -> int:
        with self._cond:
            now = self.clock.now()
            due = sorted(
                (s for s in self._sleepers if s["when"] <= now), key=lambda s: (s["when"], s["seq"])
            )
            for entry in due:
                self._sleepers.remove(entry)
                entry["woken"] = True
                self._busy += 1
            if due:
                self._cond.notify_all()
            return len(due)

    @property
    def parked(self) -> int:
        with self._cond:
            return len(self._sleepers)

    @property
    def running(self) -> int:
        """Executions started and not finished (busy or parked)."""
        with self._cond:
            return self.started - self.finished


_keeper: TimeKeeper | None = None
_installed = False


def use_timekeeper(keeper: TimeKeeper | None) -> None:
    global _keeper
    _keeper = keeper


def _sleep(seconds: float) -> None:
    if _keeper is None:
        time.sleep(seconds)
    else:
        _keeper.sleep(seconds)


def install() -> None:
    """Patch moto's interpreter (idempotent). Without a TimeKeeper in use it sleeps for real."""
    global _installed
    if _installed:
        return
    original_wait = wait_function.WaitFunction._wait_interval

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if _keeper is None:
            original_wait(self, env, wait_seconds)
        else:
            _keeper.sleep(wait_seconds)

    wait_function.WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    # Retry intervals (with backoff and jitter) wait on the same clock.
    retrier_decl.time = SimpleNamespace(sleep=_sleep, time=time.time)  # type: ignore[attr-defined]

    worker = execution_worker.ExecutionWorker
    original_start = worker.start
    original_logic = worker._execution_logic

    def start(self: Any) -> None:
        keeper = _keeper
        self._sandbox_keeper = keeper
        if keeper is not None:
            keeper.enter()  # counted busy before its thread exists, so the loop waits for it
        original_start(self)

    def _execution_logic(self: Any) -> None:
        try:
            original_logic(self)
        finally:
            keeper = getattr(self, "_sandbox_keeper", None)
            if keeper is not None:
                keeper.leave()

    worker.start = start  # type: ignore[method-assign]
    worker._execution_logic = _execution_logic  # type: ignore[method-assign]
    _installed = True
