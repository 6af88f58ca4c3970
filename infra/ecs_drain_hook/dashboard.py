"""A CloudWatch dashboard: what the drains do, what the loop does, and what went wrong."""

from __future__ import annotations

from aws_cdk import Aws, CfnMapping, Duration, Fn
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ecs_drain_hook.alarms import PERIOD, drain_metric
from ecs_drain_hook.console import CONSOLE_HOSTS
from ecs_drain_hook.runtime.drain_hook import contract

WIDTH = 12
HEIGHT = 6


class DrainDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        state_machine: sfn.IStateMachine,
        dead_letter_queue: sqs.IQueue,
        intake_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        # No name: CloudFormation generates one (no collision between stacks or redeploys).
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", default_interval=Duration.hours(24)
        )
        started = state_machine.metric_started(period=PERIOD, statistic="Sum", label="started")
        succeeded = state_machine.metric_succeeded(period=PERIOD, statistic="Sum")
        bad_ends = [
            state_machine.metric_failed(period=PERIOD, statistic="Sum", label="failed"),
            state_machine.metric_timed_out(period=PERIOD, statistic="Sum", label="timed out"),
            state_machine.metric_aborted(period=PERIOD, statistic="Sum", label="aborted"),
        ]
        # AWS/States has no "running" metric: started minus ended, summed over the shown range
        # (exact when the range starts with no loop running).
        in_flight = cloudwatch.MathExpression(
            expression="RUNNING_SUM(s - (ok + f + t + a))",
            using_metrics=dict(
                zip(("s", "ok", "f", "t", "a"), [started, succeeded, *bad_ends], strict=True)
            ),
            label="running (started - ended over the range)",
            period=PERIOD,
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Drains",
                left=[
                    drain_metric(contract.METRIC_DRAINS_STARTED).with_(label="started"),
                    drain_metric(contract.METRIC_DRAINS_COMPLETED).with_(label="completed"),
                    drain_metric(contract.METRIC_DRAINS_FORCED).with_(label="forced (deadline)"),
                    drain_metric(contract.METRIC_DRAINS_AGENT_LOST).with_(label="agent lost"),
                    drain_metric(contract.METRIC_LOOP_END_RELEASES).with_(
                        label="released after a bad loop end"
                    ),
                    drain_metric(contract.METRIC_DRAIN_FAILURES).with_(label="DRAINING refused"),
                    drain_metric(contract.METRIC_DRAINS_RETAINED).with_(label="failed, retained"),
                    drain_metric(contract.METRIC_LOST_EVENTS_RECOVERED).with_(
                        label="lost events recovered"
                    ),
                    drain_metric(contract.METRIC_DRAINS_SKIPPED_GROUP_DELETING).with_(
                        label="skipped: group deleting"
                    ),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Tasks left on draining instances",
                left=[
                    drain_metric(contract.METRIC_TASKS_REMAINING, "Maximum").with_(
                        label="tasks remaining (max)"
                    ),
                    drain_metric(contract.METRIC_TASKS_STOPPED).with_(label="tasks stopped"),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Drain loop executions",
                left=[started, *bad_ends],
                right=[in_flight],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Drain Lambda and dead letters",
                left=[
                    function.metric_errors(period=PERIOD, statistic="Sum", label="errors"),
                    function.metric_throttles(period=PERIOD, statistic="Sum", label="throttles"),
                ],
                right=[
                    dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum", label="dead letters"
                    )
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Release latency and drain time (s)",
                left=[
                    drain_metric(contract.METRIC_RELEASE_LATENCY, "p95").with_(
                        label="last task stopped -> release (p95)"
                    ),
                ],
                right=[
                    drain_metric(contract.METRIC_DRAIN_SECONDS, "Maximum").with_(
                        label="drain time (max)"
                    )
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Intake queue: lifecycle events waiting for their first round",
                left=[
                    intake_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum", label="waiting"
                    ),
                    intake_queue.metric_approximate_number_of_messages_not_visible(
                        period=PERIOD, statistic="Maximum", label="in a first round"
                    ),
                ],
                right=[
                    intake_queue.metric_approximate_age_of_oldest_message(
                        period=PERIOD, statistic="Maximum", label="oldest (s)"
                    )
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.SingleValueWidget(
                title="Other termination hooks seen (last 24 h)",
                metrics=[drain_metric(contract.METRIC_OTHER_TERMINATION_HOOKS)],
                set_period_to_time_range=True,
                width=WIDTH,
                height=HEIGHT,
            ),
        )
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The dashboard's console URL (the host mapping is added only when someone asks)."""
        if self._url is None:
            hosts = CfnMapping(
                self, "ConsoleHosts", mapping={p: {"host": h} for p, h in CONSOLE_HOSTS.items()}
            )
            self._url = Fn.join(
                "",
                [
                    "https://",
                    hosts.find_in_map(Aws.PARTITION, "host"),
                    "/cloudwatch/home?region=",
                    Aws.REGION,
                    "#dashboards:name=",
                    self.dashboard.dashboard_name,
                ],
            )
        return self._url
