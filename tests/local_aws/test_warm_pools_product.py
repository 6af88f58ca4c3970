"""The drain Lambda (lambda/drain_hook) against warm pool lifecycle waits, end to end.

Both are expected failures of the product as it stands: it treats any LifecycleState other than
Terminating:Wait as "lifecycle ended" and stops without completing, so the hook holds the
instance until its heartbeat timeout. They are strict: once the product handles the warmed
waits they pass, and the marks must go.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_aws import autoscaling
from local_aws.sandbox import Sandbox

PRODUCT_GAP = (
    "product: drain_hook.logic.decision treats Warmed:* wait states as 'lifecycle ended' "
    "and never completes the action"
)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=2) as sandbox:
        asg = sandbox.add_cluster("c1", instances=2, heartbeat_timeout=300)
        sandbox.register_task_definition("web")
        sandbox.create_service("c1", "web", "web", 2)
        sandbox.settle()
        sandbox.deploy([asg])
        yield sandbox


@pytest.mark.xfail(strict=True, reason=PRODUCT_GAP)
def test_pooled_termination_is_completed_promptly(sb: Sandbox) -> None:
    sb.put_warm_pool("c1-asg", max_group_prepared_capacity=3)
    [pooled] = sb.pooled_instances("c1-asg")
    sb.put_warm_pool("c1-asg", max_group_prepared_capacity=2)  # the pool shrinks by one
    assert sb.pooled_instances("c1-asg") == {pooled: "Warmed:Terminating:Wait"}
    sb.run()
    [action] = autoscaling.lifecycle_actions(pooled)
    assert action.ended_by == "complete"  # nothing to drain: no container instance


@pytest.mark.xfail(strict=True, reason=PRODUCT_GAP)
def test_instance_returning_to_the_pool_is_drained_then_completed(sb: Sandbox) -> None:
    sb.put_warm_pool("c1-asg", max_group_prepared_capacity=2, reuse_on_scale_in=True)
    [victim] = sb.scale_in_candidates("c1-asg", 1)
    sb.scale_in("c1-asg", 1)
    assert sb.pooled_instances("c1-asg") == {victim: "Warmed:Pending:Wait"}
    sb.run()
    [action] = autoscaling.lifecycle_actions(victim)
    assert action.ended_by == "complete"
    assert any(
        e.kind == "instance_draining" and e.details["instance"] == victim for e in sb.sim.events
    )
