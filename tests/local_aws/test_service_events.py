"""Service events as DescribeServices shows them (ECS developer guide, "Service event messages"):
newest first, at most 100, the scheduler's sentences, a placement failure written once while it
lasts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import ClassVar

from local_aws.sandbox import Sandbox
from local_aws.service_events import EVENTS_KEPT, REPEAT_AFTER, ServiceEvents

CLUSTER = "c1"


def _events(sb: Sandbox, service: str) -> list[dict]:
    found = sb.client("ecs").describe_services(cluster=CLUSTER, services=[service])
    return found["services"][0]["events"]


def test_a_service_reaches_a_steady_state_after_starting_its_tasks(
    sandbox: Callable[..., Sandbox],
) -> None:
    sb = sandbox(seed=1)
    sb.add_cluster(CLUSTER, instances=2)
    sb.register_task_definition("web")
    sb.create_service(CLUSTER, "web", "web", 3)
    sb.settle()
    events = _events(sb, "web")
    assert events[0]["message"] == "service web has reached a steady state."
    assert events[1]["message"].startswith("service web has started 3 tasks: task ")
    assert [e["createdAt"] for e in events] == sorted(
        (e["createdAt"] for e in events), reverse=True
    )
    assert len({e["id"] for e in events}) == len(events)


def test_a_task_with_no_room_is_an_unable_to_place_event_once_while_it_lasts(
    sandbox: Callable[..., Sandbox],
) -> None:
    sb = sandbox(seed=1)
    sb.add_cluster(CLUSTER, instances=1)
    sb.register_task_definition("big", memory=4000)  # one fits on moto's 7482 MiB
    sb.create_service(CLUSTER, "big", "big", 2)
    sb.settle()
    sb.advance(sb.clock.now() + timedelta(hours=1))
    unplaced = [e for e in _events(sb, "big") if "unable to place" in e["message"]]
    assert len(unplaced) == 1
    message = unplaced[0]["message"]
    assert message.startswith(
        "service big was unable to place a task because no container instance met all of its "
        "requirements. The closest matching container-instance "
    )
    assert "has insufficient memory available." in message


def test_no_instance_at_all_says_so() -> None:
    log = ServiceEvents()

    class Service:
        name = "api"
        events: ClassVar[list[dict]] = []

    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, tzinfo=UTC)
    log.unplaced("c:api", Service, None, now)
    log.unplaced("c:api", Service, None, now + timedelta(hours=1))  # a duplicate: omitted
    log.unplaced("c:api", Service, None, now + REPEAT_AFTER)  # six hours on: again
    assert [e["message"].split(". ")[1] for e in Service.events] == [
        "Reason: No Container Instances were found in your cluster",
        "Reason: No Container Instances were found in your cluster",
    ]
    for i in range(EVENTS_KEPT + 5):
        log.stopped("c:api", Service, [f"arn:task/{i}"], now)
    assert len(Service.events) == EVENTS_KEPT
