"""cdk-nag acknowledgements for the sample cluster's own capacity (not part of the construct)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import IConstruct

from ecs_drain_hook.acknowledgements import (
    acknowledge,
    acknowledge_wildcard_resource,
    default_policy,
)


def acknowledge_sample_cluster_findings(*, instance_role: iam.IRole, group: IConstruct) -> None:
    """Findings on the sample cluster's instance role and group."""
    policy = default_policy(instance_role)
    acknowledge(
        policy,
        "AwsSolutions-IAM5[Action::ecs:Submit*]",
        "aws-cdk-lib's ECS agent policy: the agent reports container, task and attachment state "
        "changes (ecs:Submit*), scoped to the sample cluster.",
    )
    acknowledge_wildcard_resource(
        policy,
        "*",
        "ECS agent calls without resource-level permissions (ecs:DiscoverPollEndpoint, "
        "ecr:GetAuthorizationToken, its own logs).",
    )
    acknowledge(
        group.node.default_child or group,
        "AwsSolutions-AS3",
        "Throwaway sample group: its scaling activity and every drain are visible in the activity "
        "history, the drain logs and the drain alarms.",
    )
