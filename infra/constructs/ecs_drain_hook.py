"""EcsDrainHook: drain an ECS cluster's container instances before their groups terminate them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Annotations, Duration, Names, RemovalPolicy, Token
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.acknowledgements import acknowledge
from infra.constructs.alarms import DrainAlarms
from infra.constructs.arns import state_machine_arn
from infra.constructs.drain_function import (
    METRICS_NAMESPACE,
    POWERTOOLS_VERSION,
    SERVICE_NAME,
    DrainFunction,
)
from infra.constructs.drain_state_machine import DrainStateMachine
from infra.constructs.lifecycle_hooks import LifecycleHooks
from infra.settings import DrainSettings

DEFAULT_HOOK_NAME = "ecs-drain-hook"
_HOOK_NAME = re.compile(r"^[A-Za-z0-9\-_/]{1,255}$")
_STATE_MACHINE_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,80}$")
MANAGED_DRAINING_WARNING_ID = "ecs-drain-hook:managedDraining"


class EcsDrainHook(Construct):
    """Lifecycle hooks + EventBridge rule + drain Lambda + wait-loop state machine + alarms.

    Drop it into any stack with a cluster (imported or created) and the groups that feed it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        auto_scaling_groups: Sequence[autoscaling.IAutoScalingGroup],
        settings: DrainSettings | None = None,
        hook_name: str = DEFAULT_HOOK_NAME,
        alarm_topic: sns.ITopic | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        reserved_concurrency: int | None = None,
        powertools_version: str = POWERTOOLS_VERSION,
        state_machine_name: str | None = None,
        managed_draining: bool | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        groups = list(auto_scaling_groups)
        settings = settings or DrainSettings()
        _validate(groups, hook_name, state_machine_name, reserved_concurrency)
        self.settings = settings
        self.hook_name = hook_name
        self.heartbeat_timeout_seconds = settings.heartbeat_timeout()

        if managed_draining:
            Annotations.of(self).add_warning_v2(
                MANAGED_DRAINING_WARNING_ID,
                "The cluster's capacity provider uses ECS managed instance draining: it runs its "
                "own termination hook on the group and the two drains fight each other. Disable "
                "managed draining on the capacity provider, or do not deploy this hook.",
            )

        self.state_machine_name = state_machine_name or Names.unique_resource_name(
            self, max_length=80, separator="-"
        )
        self.state_machine_arn = state_machine_arn(self, self.state_machine_name)

        # Undeliverable lifecycle events (EventBridge) and failed async invokes (Lambda).
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue (EventBridge target DLQ and the Lambda's "
            "async on-failure destination); CloudWatch alarms on its depth.",
        )

        self.drain_function = DrainFunction(
            self,
            "Drain",
            cluster=cluster,
            groups=groups,
            settings=settings,
            state_machine_arn=self.state_machine_arn,
            dead_letter_queue=self.dead_letter_queue,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
            reserved_concurrency=reserved_concurrency,
            powertools_version=powertools_version,
        )
        self.function = self.drain_function.function

        self.drain_loop = DrainStateMachine(
            self,
            "Loop",
            state_machine_name=self.state_machine_name,
            function=self.function,
            groups=groups,
            timeout_seconds=settings.execution_timeout_seconds,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        self.state_machine = self.drain_loop.state_machine

        self.lifecycle_hooks = LifecycleHooks(
            self,
            "Hooks",
            cluster=cluster,
            groups=groups,
            hook_name=hook_name,
            heartbeat_timeout_seconds=self.heartbeat_timeout_seconds,
            function=self.function,
            dead_letter_queue=self.dead_letter_queue,
        )

        self.alarms = DrainAlarms(
            self,
            "Alarms",
            function=self.function,
            state_machine=self.state_machine,
            dead_letter_queue=self.dead_letter_queue,
            metrics_namespace=METRICS_NAMESPACE,
            service_name=SERVICE_NAME,
            topic=alarm_topic,
        )


def _validate(
    groups: list[autoscaling.IAutoScalingGroup],
    hook_name: str,
    state_machine_name: str | None,
    reserved_concurrency: int | None,
) -> None:
    if not groups:
        raise ValueError("EcsDrainHook needs at least one Auto Scaling group")
    names = [
        g.auto_scaling_group_name
        for g in groups
        if not Token.is_unresolved(g.auto_scaling_group_name)
    ]
    if len(names) != len(set(names)):
        raise ValueError(f"EcsDrainHook got the same Auto Scaling group twice: {names}")
    if not _HOOK_NAME.match(hook_name):
        raise ValueError(f"hook_name must match {_HOOK_NAME.pattern}, got {hook_name!r}")
    if state_machine_name is not None and not _STATE_MACHINE_NAME.match(state_machine_name):
        raise ValueError(
            f"state_machine_name must match {_STATE_MACHINE_NAME.pattern}, "
            f"got {state_machine_name!r}"
        )
    if reserved_concurrency is not None and reserved_concurrency < 1:
        raise ValueError("reserved_concurrency must be at least 1 (0 would disable the Lambda)")
