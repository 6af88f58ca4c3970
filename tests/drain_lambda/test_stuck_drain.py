"""A drain that does not end: each round that keeps it waiting emits its age per cluster
(OldestDrainSeconds, the stuck-drain alarm's metric), and each poll past half the deadline logs
what holds it, with every blocking service's latest event from the DescribeServices the poll
makes anyway (no call added before half the deadline)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from moto.ecs import models as ecs_models

from drain_hook import contract
from tests.conftest import ACCOUNT, REGION
from tests.drain_lambda.conftest import HOOK, begin_termination, wait_as_the_loop_does

CLUSTER = "prod"
EVENT = (
    "service web was unable to place a task because no container instance met all of its "
    "requirements."
)


def _emf(out: str, name: str) -> list[dict[str, Any]]:
    """The EMF blobs that carry metric `name`."""
    found = []
    for line in out.splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            blob = json.loads(line)
            if "_aws" in blob:
                found.append(blob)
    return found


def _holders(monkeypatch) -> list[dict[str, Any]]:
    from drain_hook.logic import outcomes

    logged: list[dict[str, Any]] = []
    original = outcomes.logger.warning

    def warning(message: str, *args: Any, extra: dict | None = None, **kwargs: Any) -> None:
        if message.startswith("Drain past half its deadline"):
            logged.append(extra or {})
        original(message, *args, extra=extra, **kwargs)

    monkeypatch.setattr(outcomes.logger, "warning", warning)
    return logged


def test_age_is_emitted_per_cluster_and_blockers_logged_past_half_the_deadline(
    world, handler, lambda_env, capsys, monkeypatch
):
    lambda_env(MAX_DRAIN_SECONDS="3600", POLL_INTERVAL_MAX_SECONDS="600")
    logged = _holders(monkeypatch)
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1, cluster=CLUSTER)
    arn = world.register(CLUSTER, instance_id)
    world.service(CLUSTER, "web")
    world.run_tasks(CLUSTER, arn, 2, group="service:web")
    world.run_tasks(CLUSTER, arn, 1)  # a standalone task
    service = ecs_models.ecs_backends[ACCOUNT][REGION].services[f"{CLUSTER}:web"]
    service.events.insert(
        0, {"id": "e1", "createdAt": datetime(2025, 1, 6, 9, 5, tzinfo=UTC), "message": EVENT}
    )

    capsys.readouterr()
    state = handler(begin_termination("web-asg", instance_id))
    assert state["action"] == "draining"
    (first,) = _emf(capsys.readouterr().out, contract.METRIC_OLDEST_DRAIN_SECONDS)
    [directive] = first["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == contract.METRICS_NAMESPACE
    assert sorted(directive["Dimensions"][0]) == sorted(["service", contract.CLUSTER_DIMENSION])
    assert first[contract.CLUSTER_DIMENSION] == CLUSTER
    assert first[contract.METRIC_OLDEST_DRAIN_SECONDS] == [0.0]  # EMF: a list of values

    describes_before_half = 0
    polls_past_half = 0
    ages: list[float] = []
    while not state["done"]:
        wait_as_the_loop_does(world, state)
        before = world.calls.count("ecs:DescribeServices")
        state = handler(state)
        out = capsys.readouterr().out
        age = world.clock.now() - datetime.fromisoformat(state["started_at"])
        past_half = age.total_seconds() >= 1800
        if not state["done"]:  # draining, or stopping at the deadline
            (blob,) = _emf(out, contract.METRIC_OLDEST_DRAIN_SECONDS)
            ages += blob[contract.METRIC_OLDEST_DRAIN_SECONDS]
        if past_half and not state["done"]:
            polls_past_half += 1
            assert world.calls.count("ecs:DescribeServices") == before + 1  # one call, reused
        elif not past_half:
            describes_before_half += world.calls.count("ecs:DescribeServices") - before
    assert state["action"] == "deadline"
    assert ages == sorted(ages) and ages[-1] > 1800
    assert describes_before_half == 0  # the strategy is known after the first round
    assert polls_past_half >= 1 and len(logged) == polls_past_half  # once per poll
    holding = logged[-1]
    assert holding["standalone_tasks"] == 1 and holding["agent_connected"] is True
    [web] = holding["services"]
    assert web["service"] == "web" and web["tasks_on_instance"] == 2
    assert web["latest_event"] == EVENT
    assert web["latest_event_at"] == "2025-01-06T09:05:00+00:00"
    assert HOOK  # the hook the drain completes at its deadline
