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
    assert action.ended_at is not None
    assert (action.ended_at - action.started_at).total_seconds() < 2  # at once, not at timeout
    [result] = [i.result for i in sb.runtime.invocations if i.result]
    assert result["action"] == "not_registered" and "warm-pool" in result["reason"]
    assert result["lifecycle_state"] == "Warmed:Terminating:Wait"


def test_instance_returning_to_the_pool_is_drained_then_completed(sb: Sandbox) -> None:
    sb.put_warm_pool("c1-asg", max_group_prepared_capacity=2, reuse_on_scale_in=True)
    [victim] = sb.scale_in_candidates("c1-asg", 1)
    sb.scale_in("c1-asg", 1)
    assert sb.pooled_instances("c1-asg") == {victim: "Warmed:Pending:Wait"}
    report = sb.run()
    [action] = autoscaling.lifecycle_actions(victim)
    assert action.ended_by == "complete" and report.lost_tasks == []
    assert any(
        e.kind == "instance_draining" and e.details["instance"] == victim for e in sb.sim.events
    )
    first = next(i.result for i in sb.runtime.invocations if i.result)
    assert first["lifecycle_state"] == "Warmed:Pending:Wait"


def test_a_scale_in_of_a_group_with_a_warm_pool_drains_as_usual(sb: Sandbox) -> None:
    sb.put_warm_pool("c1-asg", max_group_prepared_capacity=3)
    [victim] = sb.scale_in_candidates("c1-asg", 1)
    sb.scale_in("c1-asg", 1)
    report = sb.run()
    [action] = [a for a in autoscaling.lifecycle_actions(victim)]
    assert action.ended_by == "complete" and report.lost_tasks == []
    first = next(i.result for i in sb.runtime.invocations if i.result)
    assert first["lifecycle_state"] == "Terminating:Wait" and first["tasks_remaining"] >= 1


def test_an_instance_leaving_the_pool_joins_the_cluster(sb: Sandbox) -> None:
    sb.put_warm_pool("c1-asg", max_group_prepared_capacity=3)
    [pooled] = sb.pooled_instances("c1-asg")
    ecs = sb.client("ecs")

    def registered() -> set[str]:
        arns = ecs.list_container_instances(cluster="c1")["containerInstanceArns"]
        found = ecs.describe_container_instances(cluster="c1", containerInstances=arns)
        return {ci["ec2InstanceId"] for ci in found["containerInstances"]}

    assert pooled not in registered()  # ECS_WARM_POOLS_CHECK: never while pooled
    sb.client("autoscaling").set_desired_capacity(AutoScalingGroupName="c1-asg", DesiredCapacity=3)
    assert pooled in registered()
