"""The drain against warm-pool lifecycle waits, end to end: a pooled instance being terminated
(Warmed:Terminating:Wait, never registered with ECS) is released at once; an instance going back
to the pool (ReuseOnScaleIn, Warmed:Pending:Wait) is drained like a termination."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_aws import autoscaling
from local_aws.sandbox import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=2) as sandbox:
        asg = sandbox.add_cluster("c1", instances=2, heartbeat_timeout=300)
        sandbox.register_task_definition("web")
        sandbox.create_service("c1", "web", "web", 2)
        sandbox.settle()
        sandbox.deploy([asg])
        yield sandbox


def test_pooled_termination_is_completed_promptly(sb: Sandbox) -> None:
    sb.put_warm_pool("c1-asg", max_group_prepared_capacity=3)
    [pooled] = sb.pooled_instances("c1-asg")
    sb.put_warm_pool("c1-asg", max_group_prepared_capacity=2)  # the pool shrinks by one
    assert sb.pooled_instances("c1-asg") == {pooled: "Warmed:Terminating:Wait"}
    sb.run()
    [action] = autoscaling.lifecycle_actions(pooled)
    assert action.ended_by == "complete"  # nothing to drain: no container instance


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
