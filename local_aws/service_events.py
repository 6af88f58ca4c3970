"""ECS service events: what DescribeServices shows in a service's `events`, as the scheduler
writes them (moto keeps the list and never writes to it).

ECS developer guide, "Service event messages" and "Amazon ECS service event messages": the
scheduler's task placement and instance health events, prefixed `service <name>`; DescribeServices
returns the 100 most recent, newest first, each with an id, createdAt and message; "duplicate
event messages are omitted until either the cause is resolved or six hours passes". The messages
written here, in the guide's words:

- `service <name> has reached a steady state.` when the service runs its desired count with
  nothing starting or stopping (again after six hours of steady state);
- `service <name> was unable to place a task because no container instance met all of its
  requirements. The closest matching container-instance <id> has insufficient memory
  available.` (or `insufficient CPU units`) when a task the service wants finds no room on any
  ACTIVE, connected instance; `... Reason: No Container Instances were found in your cluster.`
  when there is none (an instance that is DRAINING or whose agent is away is not a candidate:
  UNCONFIRMED which of the two texts ECS gives then, the guide names neither case);
- `service <name> has started <n> tasks: task <id> ...` and `service <name> has stopped <n>
  running tasks: task <id> ...` (wording from public consoles' service event logs: the guide
  lists placement and health messages only).

A placement failure is written once while it lasts: again only after a task of the service was
placed (the cause resolved) or six hours later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from moto.moto_api._internal import mock_random

EVENTS_KEPT = 100
REPEAT_AFTER = timedelta(hours=6)
MORE_INFO = " For more information, see the Troubleshooting section."


class ServiceEvents:
    """Writes a service's events on the sandbox's virtual clock (one per simulator)."""

    def __init__(self) -> None:
        # (service key, cause) -> (message, when written); a cause resolved is dropped.
        self._last: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._steady: dict[str, bool] = {}

    def _write(self, service: Any, message: str, now: datetime) -> None:
        events = service.events
        events.insert(0, {"id": str(mock_random.uuid4()), "createdAt": now, "message": message})
        del events[EVENTS_KEPT:]

    def _once(self, key: str, cause: str, service: Any, message: str, now: datetime) -> None:
        last = self._last.get((key, cause))
        if last is not None and last[0] == message and now - last[1] < REPEAT_AFTER:
            return  # a duplicate while the cause lasts
        self._last[(key, cause)] = (message, now)
        self._write(service, message, now)

    def started(self, key: str, service: Any, task_arns: list[str], now: datetime) -> None:
        self._last.pop((key, "placement"), None)  # a task placed: the shortage is resolved
        ids = " ".join(f"task {arn.rsplit('/', 1)[-1]}" for arn in task_arns)
        self._write(
            service, f"service {service.name} has started {len(task_arns)} tasks: {ids}.", now
        )

    # Keyed like the other events, though no later event cancels this one.
    def stopped(self, key: str, service: Any, task_arns: list[str], now: datetime) -> None:  # noqa: ARG002
        ids = " ".join(f"task {arn.rsplit('/', 1)[-1]}" for arn in task_arns)
        self._write(
            service,
            f"service {service.name} has stopped {len(task_arns)} running tasks: {ids}.",
            now,
        )

    def unplaced(
        self, key: str, service: Any, closest: tuple[str, str] | None, now: datetime
    ) -> None:
        """`closest`: (container instance id, "memory" or "CPU units") of the closest match."""
        text = (
            f"service {service.name} was unable to place a task because no container instance "
            "met all of its requirements."
        )
        if closest is None:
            text += " Reason: No Container Instances were found in your cluster."
        else:
            instance_id, resource = closest
            text += (
                f" The closest matching container-instance {instance_id} has insufficient "
                f"{resource} available."
            )
        self._once(key, "placement", service, text + MORE_INFO, now)

    def steady(self, key: str, service: Any, steady: bool, now: datetime) -> None:
        was = self._steady.get(key, False)
        self._steady[key] = steady
        if not steady:
            self._last.pop((key, "steady"), None)
            return
        message = f"service {service.name} has reached a steady state."
        last = self._last.get((key, "steady"))
        if not was or last is None or now - last[1] >= REPEAT_AFTER:
            self._last[(key, "steady")] = (message, now)
            self._write(service, message, now)


def closest_match(instances: list[Any], needs: dict[str, int]) -> tuple[str, str] | None:
    """The candidate instance with the most memory left and what it lacks (ECS names the
    closest matching instance); None when there is no candidate at all."""
    if not instances:
        return None

    def remaining(ci: Any, name: str) -> int:
        return next(
            (int(r.get("integerValue", 0)) for r in ci.remaining_resources if r["name"] == name), 0
        )

    best = max(instances, key=lambda ci: (remaining(ci, "MEMORY"), remaining(ci, "CPU")))
    lacking = "memory"
    if remaining(best, "MEMORY") >= int(needs.get("MEMORY", 0)):
        lacking = "CPU units"
    return best.container_instance_arn.rsplit("/", 1)[-1], lacking
