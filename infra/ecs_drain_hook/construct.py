"""EcsDrainHook: drain an ECS cluster's container instances before their groups terminate them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Annotations, Aws, CfnOutput, Duration, Fn, Names, RemovalPolicy, Token
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ecs_drain_hook.acknowledgements import acknowledge
from ecs_drain_hook.alarms import (
    STUCK_DRAIN_ALARM_ID,
    DrainAlarms,
    check_stuck_drain_seconds,
    stuck_drain_alarm,
    stuck_drain_default_seconds,
)
from ecs_drain_hook.arns import state_machine_arn
from ecs_drain_hook.dashboard import DrainDashboard
from ecs_drain_hook.drain_function import DrainFunction
from ecs_drain_hook.drain_state_machine import DrainStateMachine
from ecs_drain_hook.event_rules import DrainEventRules
from ecs_drain_hook.lifecycle_hooks import LifecycleHooks
from ecs_drain_hook.lifecycle_intake import LifecycleIntake
from ecs_drain_hook.other_hooks import OtherHooksCheck
from ecs_drain_hook.powertools import POWERTOOLS_VERSION
from ecs_drain_hook.retention import apply_retention
from ecs_drain_hook.runtime.drain_hook.settings import Tunables
from ecs_drain_hook.stack_names import (
    OUTPUT_DASHBOARD_URL,
    OUTPUT_DEAD_LETTER_QUEUE_URL,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_INTAKE_QUEUE_URL,
    OUTPUT_STATE_MACHINE_ARN,
)
from ecs_drain_hook.timing import (
    INTAKE_CONCURRENCY_RANGE,
    INTAKE_MAX_CONCURRENCY,
    SWEEP_MINUTES_DEFAULT,
    HookTiming,
    check_sweep_minutes,
    sweep_first_heartbeat_bound_seconds,
)

DEFAULT_HOOK_NAME = "ecs-drain-hook"
_HOOK_NAME = re.compile(r"^[A-Za-z0-9\-_/]{1,255}$")
_STATE_MACHINE_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,80}$")
# The stack id's UUID (arn:...:stack/<name>/<uuid>) is 36 characters: a name carrying it is new
# for every stack created, so a retained or still-deleting resource never blocks a redeploy.
_STACK_UUID_LENGTH = 36


def stack_instance_id() -> str:
    """The UUID part of AWS::StackId: stable for a stack's life, new after a destroy."""
    return Fn.select(2, Fn.split("/", Aws.STACK_ID))


RESERVED_CONCURRENCY_WARNING_ID = "ecs-drain-hook:reserved-concurrency"
SWEEP_TOO_SLOW_WARNING_ID = "ecs-drain-hook:sweepAfterHeartbeatTimeout"


class EcsDrainHook(Construct):
    """Lifecycle hooks + EventBridge rules + drain Lambda + wait-loop state machine + alarms +
    dashboard.

    Drop it into any stack with a cluster (imported or created) and the groups that feed it. The
    Lambda's tunables (`Tunables`, every field also a CDK context key of the repository's app)
    are checked here, with the same messages the Lambda would give at cold start.

    Attributes (the values that are names, ARNs or URLs are tokens until deploy):
        function: the drain Lambda (`aws_lambda.Function`): every round of every drain runs in it.
        state_machine: the wait loop (`aws_stepfunctions.StateMachine`), one execution per drain.
        state_machine_name, state_machine_arn: its name and ARN, known before it is created.
        intake_queue: the SQS queue lifecycle events wait in for their first round; send a
            lifecycle event's JSON to it to replay that event.
        dead_letter_queue: the SQS queue of undeliverable events, failed asynchronous runs and
            lifecycle events whose first round failed every receive.
        dashboard_url: the CloudWatch console URL of the drain dashboard.
        alarms: the `DrainAlarms` construct; `alarms.alarms` maps each alarm's id to it.
        hooks: the `CfnLifecycleHook` of each group (termination transition, `hook_name`).
        tunables: the Lambda's settings in effect.
        timing: the derived heartbeat timeout, the loop's timeout and the delivery bounds
            (`HookTiming`); heartbeat_timeout_seconds is its heartbeat timeout.
        hook_name: the lifecycle hooks' name.
        stuck_drain_alarm_seconds: the drain age at which the stuck-drain alarm fires.
        outputs: the CfnOutputs added with `outputs=True`, by output id (empty otherwise).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        auto_scaling_groups: Sequence[autoscaling.IAutoScalingGroup],
        tunables: Tunables | None = None,
        heartbeat_timeout_seconds: int | None = None,
        hook_name: str = DEFAULT_HOOK_NAME,
        alarm_topic: sns.ITopic | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        reserved_concurrency: int | None = None,
        intake_concurrency: int = INTAKE_MAX_CONCURRENCY,
        powertools_layer_arn: str | None = None,
        powertools_version: str = POWERTOOLS_VERSION,
        state_machine_name: str | None = None,
        managed_draining: bool | None = None,
        lost_event_sweep_minutes: int = SWEEP_MINUTES_DEFAULT,
        set_retention_policy: bool = False,
        stuck_drain_alarm_seconds: int | None = None,
        outputs: bool = False,
    ) -> None:
        """
        Args:
            tunables: the drain Lambda's settings (defaults: `Tunables()`).
            heartbeat_timeout_seconds: the hooks' heartbeat timeout; derived when unset. An
                explicit one must outlast the longest event delivery plus one Lambda run.
            intake_concurrency: how many first rounds run at once (the intake queue's event
                source mapping's maximum concurrency, 2..1000): more goes faster through a
                burst while Auto Scaling's API keeps up, and throttles it sooner.
            powertools_layer_arn: a Powertools v3 python3.13 arm64 layer; needed where
                Powertools publishes no SSM parameter (China, GovCloud, some newer Regions).
            state_machine_name: a fixed name (default: unique per stack instance).
            managed_draining: for imported groups, whether their capacity provider uses ECS
                managed draining (True warns); owned groups are inspected instead.
            lost_event_sweep_minutes: minutes between two sweeps for termination lifecycle
                actions whose event was lost (1..10).
            set_retention_policy: give the hooked groups built in this app the instance
                lifecycle policy that retains on TerminateHookAbandon, so that with
                `Tunables(on_drain_failure="retain")` a failed drain keeps the host.
            stuck_drain_alarm_seconds: the age of a drain at which the stuck-drain alarm
                fires (metric OldestDrainSeconds of the cluster; default: half of
                `max_drain_seconds`; below `max_drain_seconds`).
            outputs: add a CfnOutput each for the function's name, the state machine's ARN,
                the intake and dead-letter queues' URLs and the dashboard's URL (the stack's
                outputs then name what the ecs-drain-hook command and the runbook need).
        """
        super().__init__(scope, construct_id)
        groups = list(auto_scaling_groups)
        tunables = tunables or Tunables()
        _validate(groups, hook_name, state_machine_name, reserved_concurrency)
        low, high = INTAKE_CONCURRENCY_RANGE
        if isinstance(intake_concurrency, bool) or not isinstance(intake_concurrency, int):
            raise ValueError(f"intake_concurrency must be an integer, got {intake_concurrency!r}")
        if not low <= intake_concurrency <= high:
            raise ValueError(
                f"intake_concurrency must be {low}..{high} (an SQS event source mapping's "
                f"maximum concurrency), got {intake_concurrency}"
            )
        self.tunables = tunables
        self.hook_name = hook_name
        check_sweep_minutes(lost_event_sweep_minutes)
        self.lost_event_sweep_minutes = lost_event_sweep_minutes
        self.timing = HookTiming.derive(
            tunables, heartbeat_timeout_seconds, sweep_minutes=lost_event_sweep_minutes
        )
        self.heartbeat_timeout_seconds = self.timing.heartbeat_timeout_seconds

        OtherHooksCheck.add_to(
            self, groups=groups, cluster=cluster, declared_managed_draining=managed_draining
        )

        base_name = Names.unique_resource_name(
            self, max_length=80 - _STACK_UUID_LENGTH - 1, separator="-"
        )
        self.state_machine_name = state_machine_name or Fn.join(
            "-", [base_name, stack_instance_id()]
        )
        self.state_machine_arn = state_machine_arn(self, self.state_machine_name)

        # Undeliverable events (EventBridge), failed async invokes (Lambda) and lifecycle events
        # whose first round failed every receive of the intake queue.
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
            "This queue is itself the dead-letter queue (EventBridge target DLQ, the Lambda's "
            "async on-failure destination and the intake queue's redrive target); CloudWatch "
            "alarms on its depth.",
        )

        self.drain_function = DrainFunction(
            self,
            "Drain",
            cluster=cluster,
            groups=groups,
            tunables=tunables,
            state_machine_name=self.state_machine_name,
            state_machine_arn=self.state_machine_arn,
            dead_letter_queue=self.dead_letter_queue,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
            reserved_concurrency=reserved_concurrency,
            powertools_layer_arn=powertools_layer_arn,
            powertools_version=powertools_version,
            hook_name=hook_name,
        )
        self.function = self.drain_function.function
        if reserved_concurrency is not None:
            # The intake queue already caps first rounds; a reservation only throttles the rest.
            Annotations.of(self).add_warning_v2(
                RESERVED_CONCURRENCY_WARNING_ID,
                f"reserved_concurrency={reserved_concurrency}: the intake queue's runs (up to "
                f"{intake_concurrency} at once), polls and ECS events share it; throttled "
                "polls are retried by the wait loop, but an ECS or loop-end event throttled "
                "past 5 minutes is given up"
                + (
                    f", and below {intake_concurrency + 1} the intake queue's own runs are "
                    "throttled"
                    if reserved_concurrency <= intake_concurrency
                    else ""
                )
                + ". Leave it unset unless you must.",
            )

        self.drain_loop = DrainStateMachine(
            self,
            "Loop",
            state_machine_name=self.state_machine_name,
            log_group_name=Fn.join(
                "", ["/aws/vendedlogs/states/", base_name, "-", stack_instance_id()]
            )
            if state_machine_name is None
            else f"/aws/vendedlogs/states/{state_machine_name}",
            function=self.function,
            groups=groups,
            timeout_seconds=self.timing.execution_timeout_seconds,
            tracing_enabled=tunables.tracing_enabled,
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
        )
        self.intake = LifecycleIntake(
            self,
            "Intake",
            function=self.function,
            dead_letter_queue=self.dead_letter_queue,
            max_concurrency=intake_concurrency,
        )
        self.intake_queue = self.intake.queue
        self.drain_function.allow_sweep_intake(self.intake.queue)
        self.rules = DrainEventRules(
            self,
            "Rules",
            cluster=cluster,
            groups=groups,
            hook_name=hook_name,
            state_machine_arn=self.state_machine_arn,
            function=self.function,
            intake_queue=self.intake.queue,
            dead_letter_queue=self.dead_letter_queue,
            sweep_minutes=lost_event_sweep_minutes,
        )
        sweep_bound = sweep_first_heartbeat_bound_seconds(lost_event_sweep_minutes)
        if self.heartbeat_timeout_seconds <= sweep_bound:
            Annotations.of(self).add_warning_v2(
                SWEEP_TOO_SLOW_WARNING_ID,
                f"heartbeat_timeout_seconds={self.heartbeat_timeout_seconds}: an instance whose "
                f"lifecycle event is lost gets its first heartbeat up to {sweep_bound} s into "
                f"its wait (the sweep's grace, one sweep every {lost_event_sweep_minutes} min, "
                "the intake queue's retries): its hook may time out first. Raise "
                "heartbeat_timeout_seconds or lower lost_event_sweep_minutes.",
            )
        self.retention_policy_groups = apply_retention(
            self,
            groups,
            on_drain_failure=tunables.on_drain_failure,
            set_policy=set_retention_policy,
        )

        self.alarms = DrainAlarms(
            self,
            "Alarms",
            function=self.function,
            state_machine=self.state_machine,
            dead_letter_queue=self.dead_letter_queue,
            intake_queue=self.intake.queue,
            topic=alarm_topic,
        )
        # A drain lasting this long is stuck: its polls log what holds it.
        self.stuck_drain_alarm_seconds = (
            stuck_drain_default_seconds(tunables)
            if stuck_drain_alarm_seconds is None
            else stuck_drain_alarm_seconds
        )
        check_stuck_drain_seconds(self.stuck_drain_alarm_seconds, tunables)
        self.alarms.alarms[STUCK_DRAIN_ALARM_ID] = stuck_drain_alarm(
            self.alarms,
            cluster_name=cluster.cluster_name,
            threshold_seconds=self.stuck_drain_alarm_seconds,
            tunables=tunables,
            topic=alarm_topic,
        )
        self.dashboard = DrainDashboard(
            self,
            "Dashboard",
            function=self.function,
            state_machine=self.state_machine,
            dead_letter_queue=self.dead_letter_queue,
            intake_queue=self.intake.queue,
        )
        self.outputs: dict[str, CfnOutput] = self._add_outputs() if outputs else {}

    @property
    def dashboard_url(self) -> str:
        """The CloudWatch console URL of the dashboard (a token; e.g. for a CfnOutput)."""
        return self.dashboard.url

    @property
    def hooks(self) -> list[autoscaling.CfnLifecycleHook]:
        """The termination lifecycle hook of each group."""
        return self.lifecycle_hooks.hooks

    def _add_outputs(self) -> dict[str, CfnOutput]:
        values = {
            OUTPUT_FUNCTION_NAME: (self.function.function_name, "The drain Lambda"),
            OUTPUT_STATE_MACHINE_ARN: (
                self.state_machine.state_machine_arn,
                "The wait loop's state machine (one execution per drain)",
            ),
            OUTPUT_INTAKE_QUEUE_URL: (
                self.intake_queue.queue_url,
                "Where lifecycle events wait for the drain Lambda (send one to replay it)",
            ),
            OUTPUT_DEAD_LETTER_QUEUE_URL: (
                self.dead_letter_queue.queue_url,
                "Events and runs that failed every retry",
            ),
            OUTPUT_DASHBOARD_URL: (
                self.dashboard_url,
                "CloudWatch dashboard of the drains, the wait loop and the dead letters",
            ),
        }
        return {
            key: CfnOutput(self, key, value=value, description=description)
            for key, (value, description) in values.items()
        }


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
