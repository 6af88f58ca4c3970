"""The EventBridge rules that wake the drain Lambda, each matching only what concerns this hook.

- lifecycle: "EC2 Instance-terminate Lifecycle Action" of the hooked groups and this hook, sent
  to the intake queue (lifecycle_intake.py), which paces the Lambda's first rounds;
- task stopped: "ECS Task State Change" of this cluster's tasks on container instances that
  reached STOPPED (the event that follows a drained task's stop: ECS raises no container
  instance event for it). The pattern can't tell the instances being drained from the others
  (a task event carries no attribute of its instance): the Lambda does, from a listing it reads
  at most every few seconds per container, so a busy cluster costs Lambda runs, not ECS calls;
- loop end: "Step Functions Execution Status Change" of this drain loop ending FAILED, TIMED_OUT
  or ABORTED, so the Lambda releases what such a loop held;
- Spot interruption: "EC2 Spot Instance Interruption Warning" (source aws.ec2), two minutes
  before EC2 takes a Spot instance. Its detail names only the instance: the Lambda tells a
  hooked group's instances from the others (Auto Scaling's record), and writes nothing for the
  others;
- sweep: a schedule that runs the sweep for lifecycle actions whose event was lost.

Names (sources, detail types, the attribute, the bad ends) come from the runtime's contract module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ecs_drain_hook.runtime.drain_hook import contract
from ecs_drain_hook.timing import (
    LIFECYCLE_DELIVERY,
    LOOP_END_DELIVERY,
    SPOT_DELIVERY,
    SWEEP_DELIVERY,
    SWEEP_MINUTES_DEFAULT,
    TASK_STOPPED_DELIVERY,
    Delivery,
)


class DrainEventRules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        groups: Sequence[autoscaling.IAutoScalingGroup],
        hook_name: str,
        state_machine_arn: str,
        function: lambda_.IFunction,
        intake_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        sweep_minutes: int = SWEEP_MINUTES_DEFAULT,
    ) -> None:
        super().__init__(scope, construct_id)
        self._function = function
        self._dead_letter_queue = dead_letter_queue

        self.lifecycle_rule = self._rule(
            "LifecycleRule",
            "ecs-drain-hook: terminate lifecycle actions of the hooked groups",
            events.EventPattern(
                source=[contract.LIFECYCLE_SOURCE],
                detail_type=[contract.LIFECYCLE_DETAIL_TYPE],
                detail={
                    "AutoScalingGroupName": [group.auto_scaling_group_name for group in groups],
                    "LifecycleHookName": [hook_name],
                },
            ),
            LIFECYCLE_DELIVERY,
            queue=intake_queue,
        )
        self.task_stopped_rule = self._rule(
            "TaskStoppedRule",
            "ecs-drain-hook: tasks of the cluster that stopped on a container instance",
            events.EventPattern(
                source=[contract.ECS_SOURCE],
                detail_type=[contract.TASK_DETAIL_TYPE],
                detail={
                    "clusterArn": [cluster.cluster_arn],
                    "lastStatus": [contract.TASK_STOPPED_STATUS],
                    # Tasks on EC2 container instances: every such task names its instance,
                    # whether it was run with launchType EC2 or a capacity provider strategy
                    # (Fargate tasks have none).
                    "containerInstanceArn": [{"exists": True}],
                },
            ),
            TASK_STOPPED_DELIVERY,
        )
        self.loop_end_rule = self._rule(
            "LoopEndRule",
            "ecs-drain-hook: drain loop executions that failed, timed out or were aborted",
            events.EventPattern(
                source=[contract.STATES_SOURCE],
                detail_type=[contract.EXECUTION_STATUS_DETAIL_TYPE],
                detail={
                    "stateMachineArn": [state_machine_arn],
                    "status": list(contract.LOOP_BAD_ENDS),
                },
            ),
            LOOP_END_DELIVERY,
        )
        self.spot_rule = self._rule(
            "SpotInterruptionRule",
            "ecs-drain-hook: Spot interruption warnings (the Lambda keeps to hooked groups)",
            events.EventPattern(
                source=[contract.SPOT_SOURCE], detail_type=[contract.SPOT_DETAIL_TYPE]
            ),
            SPOT_DELIVERY,
        )
        self.sweep_rule = events.Rule(
            self,
            "SweepRule",
            description="ecs-drain-hook: sweep for termination lifecycle actions whose event "
            "was lost",
            schedule=events.Schedule.rate(Duration.minutes(sweep_minutes)),
        )
        self.sweep_rule.add_target(self._lambda_target(SWEEP_DELIVERY))

    def _rule(
        self,
        construct_id: str,
        description: str,
        pattern: events.EventPattern,
        delivery: Delivery,
        *,
        queue: sqs.IQueue | None = None,
    ) -> events.Rule:
        rule = events.Rule(self, construct_id, description=description, event_pattern=pattern)
        if queue is not None:
            rule.add_target(targets.SqsQueue(queue, **self._retry(delivery)))
        else:
            rule.add_target(self._lambda_target(delivery))
        return rule

    def _retry(self, delivery: Delivery) -> dict[str, Any]:
        return {
            "dead_letter_queue": self._dead_letter_queue,
            "retry_attempts": delivery.retry_attempts,
            "max_event_age": Duration.seconds(delivery.max_event_age_seconds),
        }

    def _lambda_target(self, delivery: Delivery) -> targets.LambdaFunction:
        return targets.LambdaFunction(self._function, **self._retry(delivery))
