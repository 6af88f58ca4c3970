"""CloudWatch alarms on the drain hook, optionally notifying an SNS topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

FORCED_METRIC_NAME = "DrainsForced"


class DrainAlarms(Construct):
    """Any failed, timed-out or aborted loop, Lambda error, dead letter or forced completion."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        state_machine: sfn.IStateMachine,
        dead_letter_queue: sqs.IQueue,
        metrics_namespace: str,
        service_name: str,
        topic: sns.ITopic | None,
    ) -> None:
        super().__init__(scope, construct_id)
        period = Duration.minutes(5)
        metrics: dict[str, tuple[cloudwatch.IMetric, str]] = {
            "ExecutionsFailed": (
                state_machine.metric_failed(period=period, statistic="Sum"),
                "A drain loop execution failed (its lifecycle action was completed early)",
            ),
            "ExecutionsTimedOut": (
                state_machine.metric_timed_out(period=period, statistic="Sum"),
                "A drain loop execution hit its timeout",
            ),
            "ExecutionsAborted": (
                state_machine.metric_aborted(period=period, statistic="Sum"),
                "A drain loop execution was aborted",
            ),
            "FunctionErrors": (
                function.metric_errors(period=period, statistic="Sum"),
                "The drain Lambda raised an error",
            ),
            "DeadLetters": (
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum"
                ),
                "A lifecycle event could not be delivered to or handled by the drain Lambda",
            ),
            "DrainsForced": (
                # Emitted by the Lambda through Powertools Metrics (EMF in its log).
                cloudwatch.Metric(
                    namespace=metrics_namespace,
                    metric_name=FORCED_METRIC_NAME,
                    dimensions_map={"service": service_name},
                    period=period,
                    statistic="Sum",
                ),
                "A drain hit its deadline and the instance was released with tasks left",
            ),
        }
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, (metric, description) in metrics.items():
            alarm = cloudwatch.Alarm(
                self,
                name,
                alarm_description=f"ecs-drain-hook: {description}",
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # No data means nothing happened, which is healthy.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            if topic is not None:
                alarm.add_alarm_action(cw_actions.SnsAction(topic))
            self.alarms[name] = alarm
