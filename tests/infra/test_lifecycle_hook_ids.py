"""Each lifecycle hook's logical id follows its group, never its place in the list of groups.

CloudFormation replaces a resource by creating the new one before deleting the old: a hook id
that moved to another group (the list reordered, a group removed) would meet a hook of the same
name on the same group, and fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions
from aws_cdk import aws_ecs as ecs

from ecs_drain_hook import EcsDrainHook
from tests.infra.cfn_eval import evaluate
from tests.infra.conftest import CLUSTER, synthesize
from tests.infra.small_stacks import imported, new_stack, owned_group, vpc

pytestmark = pytest.mark.synth

HOOK = "AWS::AutoScaling::LifecycleHook"


def hooks_by_group(template: dict[str, Any]) -> dict[str, str]:
    """Logical id of each hook -> the group it hooks (a name, or the group's logical id)."""
    groups = {logical_id: logical_id for logical_id, r in template["Resources"].items()}
    return {
        logical_id: evaluate(resource["Properties"]["AutoScalingGroupName"], groups)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == HOOK
    }


def attach_hooks(asg_names: str, outdir: Path) -> dict[str, str]:
    synth = synthesize({"cluster_name": CLUSTER, "asg_names": asg_names}, outdir)
    return hooks_by_group(synth.template)


def test_hooks_of_imported_groups_keep_their_ids_when_the_list_changes(tmp_path: Path) -> None:
    before = attach_hooks("a,b,c", tmp_path / "abc")
    after = attach_hooks("c,a", tmp_path / "ca")
    assert sorted(before.values()) == ["a", "b", "c"]
    assert sorted(after.values()) == ["a", "c"]
    # a's and c's hooks are the same resources as before: nothing replaced.
    ids = {group: logical_id for logical_id, group in before.items()}
    assert after == {ids["c"]: "c", ids["a"]: "a"}
    # No logical id now names another group than it did.
    for logical_id, group in after.items():
        assert before.get(logical_id, group) == group


def test_hooks_of_groups_in_the_same_app_keep_their_ids_when_the_list_changes() -> None:
    def hooks(order: list[str]) -> dict[str, str]:
        _, stack = new_stack()
        network = vpc(stack)
        cluster = ecs.Cluster.from_cluster_attributes(
            stack, "Cluster", cluster_name=CLUSTER, vpc=network
        )
        groups = {name: owned_group(stack, name, network) for name in ("Web", "Batch", "Jobs")}
        EcsDrainHook(
            stack, "DrainHook", cluster=cluster, auto_scaling_groups=[groups[n] for n in order]
        )
        return hooks_by_group(assertions.Template.from_stack(stack).to_json())

    before = hooks(["Web", "Batch", "Jobs"])
    after = hooks(["Jobs", "Web"])
    assert len(set(before.values())) == 3  # one hook on each group
    assert len(after) == 2
    assert set(after.items()) <= set(before.items())


def test_any_group_name_gives_a_valid_id_of_its_own() -> None:
    """A group name may hold "/" (a construct path's separator) and most punctuation; names
    that differ only there still get hooks of their own."""
    names = ["web/blue", "web--blue", "web-blue", "webblue", "web_blue"]
    _, stack = new_stack()
    cluster, groups = imported(stack, *names)
    EcsDrainHook(stack, "DrainHook", cluster=cluster, auto_scaling_groups=groups)
    hooks = hooks_by_group(assertions.Template.from_stack(stack).to_json())
    assert sorted(hooks.values()) == sorted(names)


def test_the_same_group_twice_is_refused() -> None:
    _, stack = new_stack()
    network = vpc(stack)
    cluster = ecs.Cluster.from_cluster_attributes(
        stack, "Cluster", cluster_name=CLUSTER, vpc=network
    )
    group = owned_group(stack, "Web", network)
    with pytest.raises(ValueError, match="same Auto Scaling group twice"):
        EcsDrainHook(stack, "DrainHook", cluster=cluster, auto_scaling_groups=[group, group])
