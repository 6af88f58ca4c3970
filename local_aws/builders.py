"""Small builders for tests and the demo: groups with termination hooks, clusters, instances."""

from __future__ import annotations

from typing import Any

import boto3

REGION = "us-east-1"


def make_group(
    name: str = "g",
    size: int = 3,
    *,
    heartbeat: int = 60,
    default_result: str = "CONTINUE",
    metadata: str | None = None,
    hooks: tuple[str, ...] = ("drain",),
    min_size: int = 0,
) -> Any:
    asg = boto3.client("autoscaling", region_name=REGION)
    asg.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId="ami-12c6146b", InstanceType="t3.micro"
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=f"{name}-lc",
        MinSize=min_size,
        MaxSize=10,
        DesiredCapacity=size,
        AvailabilityZones=["us-east-1a"],
    )
    for hook in hooks:
        kwargs: dict[str, Any] = {}
        if metadata is not None:
            kwargs["NotificationMetadata"] = metadata
        asg.put_lifecycle_hook(
            AutoScalingGroupName=name,
            LifecycleHookName=hook,
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            HeartbeatTimeout=heartbeat,
            DefaultResult=default_result,
            **kwargs,
        )
    return asg


def lifecycle_states(asg: Any) -> dict[str, str]:
    return {
        i["InstanceId"]: i["LifecycleState"]
        for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"]
    }
