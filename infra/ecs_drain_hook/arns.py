"""ARNs the drain hook's IAM policies are scoped to, built without lookups."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from constructs import IConstruct


def cluster_resource_arn(scope: IConstruct, cluster: ecs.ICluster, resource: str) -> str:
    """arn:...:ecs:region:account:<resource>/<cluster>/* (container instances, tasks, services).

    Since the 2018 long ARN format these ARNs carry the cluster name, which pins them to it.
    """
    return Stack.of(scope).format_arn(
        service="ecs",
        resource=resource,
        resource_name=f"{cluster.cluster_name}/*",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def group_arn(scope: IConstruct, group: autoscaling.IAutoScalingGroup) -> str:
    """arn:...:autoscaling:region:account:autoScalingGroup:*:autoScalingGroupName/<name>.

    A group ARN embeds a random UUID that CloudFormation does not return; the name pins the group.
    """
    return Stack.of(scope).format_arn(
        service="autoscaling",
        resource="autoScalingGroup",
        resource_name=f"*:autoScalingGroupName/{group.auto_scaling_group_name}",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def state_machine_arn(scope: IConstruct, name: str) -> str:
    """arn:...:states:region:account:stateMachine:<name>, known before the state machine exists."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def execution_arn_pattern(scope: IConstruct, state_machine_name: str) -> str:
    """arn:...:states:region:account:execution:<state machine>:* (every execution of it)."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="execution",
        resource_name=f"{state_machine_name}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
