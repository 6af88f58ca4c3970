"""CloudWatch alarms on the drain hook, optionally notifying an SNS topic."""

from __future__ import annotations

import math

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ecs_drain_hook.runtime.drain_hook import contract
from ecs_drain_hook.runtime.drain_hook.settings import Tunables
from ecs_drain_hook.timing import INTAKE_AGE_ALARM_SECONDS, LAMBDA_TIMEOUT_SECONDS

PERIOD = Duration.minutes(5)
# What each alarmed drain metric means, for the alarm description.
DRAIN_METRIC_DESCRIPTIONS = {
    contract.METRIC_DRAINS_FORCED: "A drain hit its deadline and the instance was released with "
    "tasks left",
    contract.METRIC_DRAINS_AGENT_LOST: "An instance was released because its ECS agent stayed "
    "disconnected past the grace",
    contract.METRIC_LOOP_END_RELEASES: "A drain loop failed, timed out or was aborted and the "
    "Lambda released its instance",
    contract.METRIC_CLUSTER_NOT_FOUND: "A lifecycle event named a cluster that does not exist",
    contract.METRIC_TIMED_OUT_BEFORE_DRAIN: "A lifecycle event reached its first round after the "
    "hook's heartbeat timeout had let the instance go: nothing drained it",
    contract.METRIC_DRAINS_RETAINED: "A drain failed (deadline, agent lost or loop end) and the "
    "instance was retained (Terminating:Retained) with its tasks: look at it, then finish it with "
    "TerminateInstanceInAutoScalingGroup",
}


def drain_metric(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
    """A metric the Lambda emits (Powertools EMF, dimension service)."""
    return cloudwatch.Metric(
        namespace=contract.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": contract.SERVICE_NAME},
        period=PERIOD,
        statistic=statistic,
    )


class DrainAlarms(Construct):
    """Any bad loop end, Lambda error or throttle, dead letter, or alarmed drain metric."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        state_machine: sfn.IStateMachine,
        dead_letter_queue: sqs.IQueue,
        intake_queue: sqs.IQueue,
        topic: sns.ITopic | None,
    ) -> None:
        super().__init__(scope, construct_id)
        metrics: dict[str, tuple[cloudwatch.IMetric, str]] = {
            "ExecutionsFailed": (
                state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                "A drain loop execution failed (the Lambda releases its instance)",
            ),
            "ExecutionsTimedOut": (
                state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                "A drain loop execution hit its timeout",
            ),
            "ExecutionsAborted": (
                state_machine.metric_aborted(period=PERIOD, statistic="Sum"),
                "A drain loop execution was aborted",
            ),
            "FunctionErrors": (
                function.metric_errors(period=PERIOD, statistic="Sum"),
                "The drain Lambda raised an error",
            ),
            "FunctionThrottles": (
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                "The drain Lambda was throttled (check reserved concurrency)",
            ),
            "DeadLetters": (
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                "An event could not be delivered to or handled by the drain Lambda",
            ),
            **{
                name: (drain_metric(name), DRAIN_METRIC_DESCRIPTIONS[name])
                for name in contract.ALARMED_METRICS
            },
        }
        thresholds = {"IntakeBacklog": INTAKE_AGE_ALARM_SECONDS}
        metrics["IntakeBacklog"] = (
            intake_queue.metric_approximate_age_of_oldest_message(
                period=PERIOD, statistic="Maximum"
            ),
            f"A lifecycle event waited {INTAKE_AGE_ALARM_SECONDS} s or more in the intake queue: "
            "first rounds fall behind a burst of scale-ins (each must land before the hook's "
            "heartbeat timeout)",
        )
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, (metric, description) in metrics.items():
            alarm = cloudwatch.Alarm(
                self,
                name,
                alarm_description=f"ecs-drain-hook: {description}",
                metric=metric,
                threshold=thresholds.get(name, 1),
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # No data means nothing happened, which is healthy.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            if topic is not None:
                alarm.add_alarm_action(cw_actions.SnsAction(topic))
            self.alarms[name] = alarm


# The stuck-drain alarm: on the oldest drain's age, per cluster (OldestDrainSeconds).
STUCK_DRAIN_ALARM_ID = "StuckDrain"
STUCK_DRAIN_ALARM_MIN_SECONDS = 60


def stuck_drain_default_seconds(tunables: Tunables) -> int:
    """Half the drain deadline: the poll past that point logs what holds the drain, and the
    operator still has the other half before the deadline policy acts."""
    return max(STUCK_DRAIN_ALARM_MIN_SECONDS, tunables.max_drain_seconds // 2)


def stuck_drain_period_seconds(tunables: Tunables) -> int:
    """The alarm's period: the longest a drain under way goes without a round (the longest wait
    between polls, one Lambda run more), in whole minutes, so every period of a drain under
    way has a datapoint and a period without one means no drain."""
    longest = tunables.poll_interval_max_seconds
    if tunables.release_when == "services_steady":
        longest = tunables.poll_interval_first_seconds  # the waits are capped there
    return math.ceil((longest + LAMBDA_TIMEOUT_SECONDS) / 60) * 60


def check_stuck_drain_seconds(threshold: int, tunables: Tunables) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise ValueError(f"stuck_drain_alarm_seconds must be an integer, got {threshold!r}")
    if not STUCK_DRAIN_ALARM_MIN_SECONDS <= threshold < tunables.max_drain_seconds:
        raise ValueError(
            f"stuck_drain_alarm_seconds must be {STUCK_DRAIN_ALARM_MIN_SECONDS}.."
            f"{tunables.max_drain_seconds - 1} (below max_drain_seconds: at the deadline the "
            f"deadline policy ends the drain, so the alarm would never fire), got {threshold}"
        )


def stuck_drain_alarm(
    scope: Construct,
    *,
    cluster_name: str,
    threshold_seconds: int,
    tunables: Tunables,
    topic: sns.ITopic | None,
) -> cloudwatch.Alarm:
    """An alarm when a drain of the cluster has lasted `threshold_seconds`: the Maximum of
    OldestDrainSeconds (each round that keeps a drain waiting emits its age, with the cluster
    as a dimension). The Lambda's log of that drain's polls names what holds it."""
    period = Duration.seconds(stuck_drain_period_seconds(tunables))
    metric = cloudwatch.Metric(
        namespace=contract.METRICS_NAMESPACE,
        metric_name=contract.METRIC_OLDEST_DRAIN_SECONDS,
        dimensions_map={
            "service": contract.SERVICE_NAME,
            contract.CLUSTER_DIMENSION: cluster_name,
        },
        period=period,
        statistic="Maximum",
    )
    alarm = cloudwatch.Alarm(
        scope,
        STUCK_DRAIN_ALARM_ID,
        alarm_description=f"ecs-drain-hook: A drain has lasted {threshold_seconds} s or more: "
        "its polls log the services holding it with their latest service event "
        "('Drain past half its deadline'); `ecs-drain-hook status` shows them too",
        metric=metric,
        threshold=threshold_seconds,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        # No datapoint in a period means no drain under way, which is healthy.
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    if topic is not None:
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
    return alarm
