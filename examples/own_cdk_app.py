#!/usr/bin/env python3
"""A CDK app of your own that adds the drain hook to a cluster you already run.

It imports the cluster (with its VPC) and the Auto Scaling group that feeds it, makes an SNS
topic for the drain alarms, and adds `EcsDrainHook` with its outputs. Install the package
(`pip install ecs-drain-hook`, or `pip install <path to this repository>`), put your own names
in the constants below, then from this folder:

    npx cdk synth --quiet --app "python3 own_cdk_app.py"
    npx cdk deploy --app "python3 own_cdk_app.py"

It synthesizes offline: nothing here is looked up in an account.
"""

from __future__ import annotations

import os
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from ecs_drain_hook import EcsDrainHook, Tunables

# What you already run: replace these placeholders with your own.
VPC_ID = "vpc-0123456789abcdef0"
AVAILABILITY_ZONES = ["eu-west-1a", "eu-west-1b"]
CLUSTER_NAME = "my-cluster"
GROUP_NAME = "my-cluster-instances"
ALARM_EMAIL = "ops@example.com"


class DrainedClusterStack(cdk.Stack):
    """The drain hook on an existing cluster and group, its alarms sent to a new topic."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Importing a cluster needs its VPC. From attributes nothing is looked up at synth;
        # ec2.Vpc.from_lookup(self, "Vpc", vpc_id=VPC_ID) would find the rest of it, but needs
        # the stack's account and Region and credentials at synth.
        vpc = ec2.Vpc.from_vpc_attributes(
            self, "Vpc", vpc_id=VPC_ID, availability_zones=AVAILABILITY_ZONES
        )
        cluster = ecs.Cluster.from_cluster_attributes(
            self, "Cluster", cluster_name=CLUSTER_NAME, vpc=vpc
        )
        group = autoscaling.AutoScalingGroup.from_auto_scaling_group_name(self, "Group", GROUP_NAME)
        # An existing topic works as well: sns.Topic.from_topic_arn(self, "Alarms", arn).
        alarm_topic = sns.Topic(self, "DrainAlarms", display_name="ECS drain alarms")
        alarm_topic.add_subscription(subscriptions.EmailSubscription(ALARM_EMAIL))

        self.drain_hook = EcsDrainHook(
            self,
            "DrainHook",
            cluster=cluster,
            auto_scaling_groups=[group],
            alarm_topic=alarm_topic,
            # Each field of Tunables is a setting of the drain (docs/configuration.md).
            tunables=Tunables(max_drain_seconds=2 * 3600),
            # Say whether the group's capacity provider uses ECS managed draining: it adds a
            # second termination hook, which synth then warns about.
            managed_draining=False,
            # Stack outputs: the function, the state machine, both queues and the dashboard,
            # which `ecs-drain-hook status --stack-name DrainedCluster` reads.
            outputs=True,
        )


def main() -> None:
    app = cdk.App()
    DrainedClusterStack(
        app,
        "DrainedCluster",
        # The CLI's account and Region when it has credentials; environment-agnostic offline.
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    app.synth()


if __name__ == "__main__":
    main()
