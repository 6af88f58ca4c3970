"""Another termination hook on the same group, end to end: each hook must complete
before the instance terminates, so ours still holds it until it is drained, whatever the other
hook does; and the drain names the other hooks once (log and metric OtherTerminationHooks)."""

from __future__ import annotations

from typing import Any

import pytest

from local_aws import autoscaling
from local_aws.sandbox import HOOK_NAME, Sandbox
from tests.e2e.conftest import SandboxFactory


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    from drain_hook.logic import outcomes

    seen: list[dict[str, Any]] = []
    original = outcomes.other_hooks
    monkeypatch.setattr(
        outcomes,
        "other_hooks",
        lambda asg, names: (seen.append({"asg": asg, "hooks": names}), original(asg, names)),
    )
    return seen


def _world(sb: Sandbox, batch_seconds: float) -> tuple[str, str]:
    asg = sb.add_cluster("c1", instances=2, heartbeat_timeout=600)
    for family in ("web", "batch"):
        sb.register_task_definition(family)
    sb.create_service("c1", "web", "web", 4, minimum_healthy_percent=50, maximum_percent=200)
    [victim] = sb.scale_in_candidates(asg, 1)
    sb.run_standalone("c1", "batch", victim, exits_after=batch_seconds)
    sb.settle()
    return asg, victim


def _by_hook(instance_id: str) -> dict[str, autoscaling.LifecycleAction]:
    return {a.hook_name: a for a in autoscaling.lifecycle_actions(instance_id)}


def test_aws_cdk_libs_hook_releases_early_ours_still_holds(sandbox: SandboxFactory, warnings):
    sb = sandbox(seed=21)
    asg, victim = _world(sb, batch_seconds=900)
    cdk = sb.add_cdk_drain_hook(asg, drain_seconds=300)
    sb.deploy()
    sb.scale_in(asg, 1)
    report = sb.run()
    actions = _by_hook(victim)
    ours, theirs = actions[HOOK_NAME], actions[cdk.hook_name]
    # aws-cdk-lib's hook lets go after its drain time, tasks or not; ours holds until drained.
    assert theirs.ended_at is not None and ours.ended_at is not None
    assert (theirs.ended_at - theirs.started_at).total_seconds() <= 300 + 30
    assert ours.ended_by == "complete" and (ours.ended_at - ours.started_at).total_seconds() >= 900
    assert report.lost_tasks == []
    assert warnings == [{"asg": asg, "hooks": [cdk.hook_name]}]


def test_ecs_managed_draining_and_ours_both_complete(sandbox: SandboxFactory, warnings):
    sb = sandbox(seed=22)
    asg, victim = _world(sb, batch_seconds=600)
    sb.add_ecs_managed_draining(asg)
    sb.deploy()
    sb.scale_in(asg, 1)
    report = sb.run()
    actions = _by_hook(victim)
    assert set(actions) == {HOOK_NAME, "ecs-managed-draining-termination-hook"}
    assert all(a.ended_by == "complete" for a in actions.values())
    assert report.lost_tasks == []
    assert warnings == [{"asg": asg, "hooks": ["ecs-managed-draining-termination-hook"]}]


def test_a_single_hook_names_no_other(sandbox: SandboxFactory, warnings):
    sb = sandbox(seed=23)
    asg, _victim = _world(sb, batch_seconds=60)
    sb.deploy()
    sb.scale_in(asg, 1)
    assert sb.run().all_completed
    assert warnings == []
