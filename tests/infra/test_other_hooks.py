"""Synth-time checks for a second termination hook on a hooked group, and warm pools.

Each app here is small (no cdk-nag) and built the way users build theirs: the group, its capacity
provider and the cluster in the same app, in either order around EcsDrainHook.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs

from ecs_drain_hook import (
    CDK_DRAIN_HOOK_WARNING_ID,
    MANAGED_DRAINING_WARNING_ID,
    EcsDrainHook,
    ReuseOnScaleInError,
)
from tests.infra.conftest import REPO
from tests.infra.small_stacks import imported, new_stack, owned_group, vpc, warnings

pytestmark = pytest.mark.synth


def readme_snippet() -> str:
    """The construct snippet the README gives for a CDK app of one's own."""
    readme = (REPO / "README.md").read_text()
    marker = readme.index("<!-- construct-snippet -->")
    match = re.search(r"```python\n(.*?)```", readme[marker:], re.S)
    assert match, "no python block after the construct-snippet marker"
    return match.group(1)


def test_readme_snippet_next_to_a_default_capacity_provider_warns() -> None:
    """A CDK AsgCapacityProvider with enableManagedDraining unset gets ECS managed draining."""
    app, stack = new_stack()
    network = vpc(stack)
    cluster = ecs.Cluster(stack, "Cluster", vpc=network)
    group = owned_group(stack, "Group", network)
    # The snippet first, the capacity provider after it: the check sees the whole app.
    exec(readme_snippet(), {"self": stack, "cluster": cluster, "group": group, "topic": None})
    cluster.add_asg_capacity_provider(
        ecs.AsgCapacityProvider(stack, "Provider", auto_scaling_group=group)
    )
    app.synth()
    found = warnings(stack)
    assert len(found) == 1, found
    (warning,) = found
    assert MANAGED_DRAINING_WARNING_ID in warning
    assert "ecs-managed-draining-termination-hook" in warning
    assert "enableManagedDraining: false" in warning
    assert "remove ecs-drain-hook" in warning


def test_cdk_drain_hooks_and_managed_draining_each_named_on_their_group() -> None:
    app, stack = new_stack()
    network = vpc(stack)
    cluster = ecs.Cluster(stack, "Cluster", vpc=network)
    # aws-cdk-lib's hook: addCapacity without taskDrainTime 0.
    legacy = cluster.add_capacity(
        "Legacy",
        instance_type=ec2.InstanceType("t4g.small"),
        machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.ARM),
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
    )
    # addAsgCapacityProvider with termination protection off and draining off: aws-cdk-lib's hook.
    unprotected = owned_group(stack, "Unprotected", network)
    cluster.add_asg_capacity_provider(
        ecs.AsgCapacityProvider(
            stack,
            "UnprotectedProvider",
            auto_scaling_group=unprotected,
            enable_managed_draining=False,
            enable_managed_termination_protection=False,
        )
    )
    # Both fixed: no hook of aws-cdk-lib's, managed draining off.
    clean = owned_group(stack, "Clean", network)
    cluster.add_asg_capacity_provider(
        ecs.AsgCapacityProvider(
            stack,
            "CleanProvider",
            auto_scaling_group=clean,
            enable_managed_draining=False,
            enable_managed_termination_protection=False,
        )
    )
    # taskDrainTime: 0 is not in the Python binding: drop aws-cdk-lib's hook as the fix says.
    for child in ("DrainECSHook", "LifecycleHookDrainHook"):
        assert clean.node.try_remove_child(child)
    EcsDrainHook(
        stack, "DrainHook", cluster=cluster, auto_scaling_groups=[legacy, unprotected, clean]
    )
    app.synth()
    found = warnings(stack)
    assert all(CDK_DRAIN_HOOK_WARNING_ID in w for w in found), found
    assert len(found) == 2
    text = "\n".join(found)
    assert (
        "Small/Cluster/Legacy" in text and "Small/Unprotected" in text and "Small/Clean" not in text
    )
    assert "taskDrainTime: Duration.seconds(0)" in text
    assert "DrainECSHook" in text


def test_imported_groups_warn_only_when_declared() -> None:
    app, stack = new_stack()
    cluster, groups = imported(stack, "prod-asg-a")
    EcsDrainHook(stack, "Quiet", cluster=cluster, auto_scaling_groups=groups)
    EcsDrainHook(
        stack,
        "Declared",
        cluster=cluster,
        auto_scaling_groups=groups,
        hook_name="second-hook",
        managed_draining=True,
    )
    app.synth()
    (warning,) = warnings(stack)
    assert MANAGED_DRAINING_WARNING_ID in warning and "prod-asg-a" in warning
    assert "managed_draining=enabled" in warning


def test_a_capacity_provider_on_an_imported_group_name_is_seen() -> None:
    """The cluster and its capacity provider in the app, the group imported by name."""
    app, stack = new_stack()
    cluster = ecs.Cluster(stack, "Cluster", vpc=vpc(stack))
    group = autoscaling.AutoScalingGroup.from_auto_scaling_group_name(stack, "G", "prod-asg-a")
    ecs.CfnCapacityProvider(
        stack,
        "Provider",
        auto_scaling_group_provider=ecs.CfnCapacityProvider.AutoScalingGroupProviderProperty(
            auto_scaling_group_arn="prod-asg-a"
        ),
    )
    EcsDrainHook(stack, "DrainHook", cluster=cluster, auto_scaling_groups=[group])
    app.synth()
    (warning,) = warnings(stack)
    assert MANAGED_DRAINING_WARNING_ID in warning and "prod-asg-a" in warning


def test_a_warm_pool_with_reuse_on_scale_in_is_refused() -> None:
    app, stack = new_stack()
    network = vpc(stack)
    cluster = ecs.Cluster(stack, "Cluster", vpc=network)
    group = owned_group(stack, "Group", network)
    EcsDrainHook(stack, "DrainHook", cluster=cluster, auto_scaling_groups=[group])
    group.add_warm_pool(reuse_on_scale_in=True)
    with pytest.raises(Exception, match="ReuseOnScaleIn") as error:
        app.synth()
    assert "ECS does not support" in str(error.value)
    assert issubclass(ReuseOnScaleInError, ValueError)


def test_a_warm_pool_without_reuse_is_fine() -> None:
    app, stack = new_stack()
    network = vpc(stack)
    cluster = ecs.Cluster(stack, "Cluster", vpc=network)
    group = owned_group(stack, "Group", network)
    group.add_warm_pool(pool_state=autoscaling.PoolState.STOPPED)
    cluster.add_asg_capacity_provider(
        ecs.AsgCapacityProvider(
            stack, "Provider", auto_scaling_group=group, enable_managed_draining=False
        )
    )
    EcsDrainHook(stack, "DrainHook", cluster=cluster, auto_scaling_groups=[group])
    app.synth()
    assert warnings(stack) == []


def test_readme_marks_its_snippet() -> None:
    assert "EcsDrainHook(" in readme_snippet()
    assert Path(REPO / "README.md").is_file()
