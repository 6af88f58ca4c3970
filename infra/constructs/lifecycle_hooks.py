"""Termination lifecycle hooks on the groups and the EventBridge rule that feeds the Lambda."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

TERMINATE_DETAIL_TYPE = "EC2 Instance-terminate Lifecycle Action"
EVENT_SOURCE = "aws.autoscaling"
# EventBridge accepts 0..185 retries; a lost event would hold an instance until the heartbeat.
EVENT_RETRY_ATTEMPTS = 8


class LifecycleHooks(Construct):
    """One EC2_INSTANCE_TERMINATING hook per group, and the rule that routes their events."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        groups: Sequence[autoscaling.IAutoScalingGroup],
        hook_name: str,
        heartbeat_timeout_seconds: int,
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)

        metadata = Stack.of(self).to_json_string({"cluster": cluster.cluster_name})
        # L1 hooks work the same for imported and created groups (the L2 needs an owned group).
        self.hooks = [
            autoscaling.CfnLifecycleHook(
                self,
                f"Hook{index}",
                auto_scaling_group_name=group.auto_scaling_group_name,
                lifecycle_hook_name=hook_name,
                lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
                heartbeat_timeout=heartbeat_timeout_seconds,
                # If nothing answers (e.g. the Lambda is gone), termination still goes ahead.
                default_result="CONTINUE",
                notification_metadata=metadata,
            )
            for index, group in enumerate(groups)
        ]

        self.rule = events.Rule(
            self,
            "TerminateRule",
            description="ecs-drain-hook: terminate lifecycle actions of the hooked groups",
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE],
                detail_type=[TERMINATE_DETAIL_TYPE],
                detail={
                    "AutoScalingGroupName": [group.auto_scaling_group_name for group in groups],
                    "LifecycleHookName": [hook_name],
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                function,
                dead_letter_queue=dead_letter_queue,
                retry_attempts=EVENT_RETRY_ATTEMPTS,
                # After the heartbeat timeout the action is over: a later delivery is useless.
                max_event_age=Duration.seconds(max(60, heartbeat_timeout_seconds)),
            )
        )
