"""Small CDK stacks around EcsDrainHook, for the checks that need no full app (and no cdk-nag)."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs

from tests.infra.conftest import cdk_json_context


def new_stack(region: str | None = None) -> tuple[cdk.App, cdk.Stack]:
    app = cdk.App(context=cdk_json_context())
    env = cdk.Environment(account="111122223333", region=region) if region else None
    return app, cdk.Stack(app, "Small", env=env)


def vpc(stack: cdk.Stack) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-12345678",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        public_subnet_ids=["subnet-11111111", "subnet-22222222"],
        public_subnet_route_table_ids=["rtb-11111111", "rtb-22222222"],
    )


def imported(stack: cdk.Stack, *groups: str) -> tuple[ecs.ICluster, list[Any]]:
    cluster = ecs.Cluster.from_cluster_attributes(
        stack, "Cluster", cluster_name="prod-cluster", vpc=vpc(stack)
    )
    return cluster, [
        autoscaling.AutoScalingGroup.from_auto_scaling_group_name(stack, f"G{i}", name)
        for i, name in enumerate(groups)
    ]


def owned_group(
    stack: cdk.Stack, construct_id: str, network: ec2.IVpc
) -> autoscaling.AutoScalingGroup:
    return autoscaling.AutoScalingGroup(
        stack,
        construct_id,
        vpc=network,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        instance_type=ec2.InstanceType("t4g.small"),
        machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.ARM),
        min_capacity=0,
        max_capacity=2,
    )


def warnings(stack: cdk.Stack) -> list[str]:
    found = assertions.Annotations.from_stack(stack).find_warning("*", assertions.Match.any_value())
    return [json.dumps(entry.entry.data) for entry in found]
