"""EventBridge for the sandbox: events go through each rule's pattern to its Lambda target.

moto's put_events can't deliver to every target kind, and a Lambda target would run inside the
Auto Scaling request that emitted the event. Here an emitted event is queued, then delivered by
the sandbox loop: for each rule whose pattern matches (moto's own matcher,
``EventPattern.load(pattern).matches_event``) its target function is invoked, as an
asynchronous invocation: a function error is retried twice, one and two minutes later
(virtual time), then dropped (AWS would send it to the dead-letter queue).
"""

from __future__ import annotations

import heapq
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.events.models import EventPattern

from local_aws.clock import Clock

RETRY_DELAYS = (60, 120)


@dataclass
class Rule:
    name: str
    pattern: dict[str, Any]
    target_function: str

    def matches(self, event: dict[str, Any]) -> bool:
        return EventPattern.load(json.dumps(self.pattern)).matches_event(event)


@dataclass
class Delivery:
    at: datetime
    rule: str
    event: dict[str, Any]
    attempt: int
    error: str | None = None


@dataclass
class EventBus:
    clock: Clock
    rules: list[Rule] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: list[tuple[datetime, int, int, Rule, dict[str, Any]]] = []
        self._seq = 0
        self._lock = threading.Lock()

    def add_rule(self, name: str, pattern: dict[str, Any], target_function: str) -> Rule:
        rule = Rule(name, pattern, target_function)
        self.rules.append(rule)
        return rule

    def put(self, event: dict[str, Any]) -> int:
        """Queue the event for every rule it matches; returns how many matched."""
        matched = [r for r in self.rules if r.matches(event)]
        if not matched:
            self.unmatched.append(event)
        with self._lock:
            for rule in matched:
                self._push(self.clock.now(), 0, rule, event)
        return len(matched)

    def _push(self, when: datetime, attempt: int, rule: Rule, event: dict[str, Any]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, attempt, rule, event))

    def next_time(self) -> datetime | None:
        with self._lock:
            return self._queue[0][0] if self._queue else None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def deliver_due(self, invoke: Callable[[str, dict[str, Any]], str | None]) -> bool:
        """Deliver what is due; ``invoke(function, event)`` returns an error text or None."""
        delivered = False
        while True:
            with self._lock:
                if not self._queue or self._queue[0][0] > self.clock.now():
                    return delivered
                _, _, attempt, rule, event = heapq.heappop(self._queue)
            error = invoke(rule.target_function, event)
            self.deliveries.append(Delivery(self.clock.now(), rule.name, event, attempt, error))
            delivered = True
            if error is not None:
                if attempt < len(RETRY_DELAYS):
                    with self._lock:
                        when = self.clock.now() + timedelta(seconds=RETRY_DELAYS[attempt])
                        self._push(when, attempt + 1, rule, event)
                else:
                    self.dead_letters.append(event)
