"""The drain Lambda: code from lambda/, Powertools from the AWS-managed layer, scoped IAM."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.constructs.acknowledgements import (
    acknowledge,
    acknowledge_wildcard_resource,
    default_policy,
)
from infra.constructs.arns import cluster_resource_arn, group_arn
from infra.constructs.cfn_tidy import depend_only_on_policy
from infra.settings import DrainSettings

LAMBDA_SOURCE = Path(__file__).resolve().parents[2] / "lambda"
HANDLER = "drain_hook.handler.lambda_handler"
# Pinned like requirements.txt's aws-lambda-powertools, so every deploy gets the same layer.
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_RUNTIME = "python3.13"
SERVICE_NAME = "ecs-drain-hook"
METRICS_NAMESPACE = "EcsDrainHook"


def powertools_parameter_name(version: str = POWERTOOLS_VERSION) -> str:
    """AWS public SSM parameter holding the Powertools v3 layer ARN for this runtime and arch."""
    return f"/aws/service/powertools/python/arm64/{POWERTOOLS_RUNTIME}/{version}"


class DrainFunction(Construct):
    """The Lambda that starts, polls and completes drains, with its role and log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        groups: Sequence[autoscaling.IAutoScalingGroup],
        settings: DrainSettings,
        state_machine_arn: str,
        dead_letter_queue: sqs.IQueue,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
        reserved_concurrency: int | None,
        powertools_version: str,
    ) -> None:
        super().__init__(scope, construct_id)

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention,
            removal_policy=log_removal_policy,
        )
        # An own role instead of the default one: the default attaches the AWS managed
        # AWSLambdaBasicExecutionRole (logs:* on every log group).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ecs-drain-hook Lambda: drains one ECS cluster's instances",
        )
        self.log_group.grant_write(self.role)

        # Resolved by CloudFormation at deploy time: no lookup at synth, no Docker bundling.
        layer_arn = ssm.StringParameter.value_for_string_parameter(
            self, powertools_parameter_name(powertools_version)
        )
        powertools = lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)

        environment = {
            "CLUSTER_NAME": cluster.cluster_name,
            "STATE_MACHINE_ARN": state_machine_arn,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            **settings.lambda_environment(),
        }
        self.function = lambda_.Function(
            self,
            "Function",
            description="ecs-drain-hook: drain ECS container instances before ASG termination",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(LAMBDA_SOURCE), exclude=["**/__pycache__", "**/*.pyc", "tests"]
            ),
            layers=[powertools],
            role=self.role,
            # One poll per invocation: a few API calls, never a wait.
            timeout=Duration.seconds(60),
            memory_size=256,
            environment=environment,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if settings.tracing_enabled else None,
            reserved_concurrent_executions=reserved_concurrency,
        )
        # EventBridge invokes asynchronously: a lifecycle event that fails every retry lands in
        # the same dead-letter queue as an undeliverable one, where its alarm fires.
        self.function.configure_async_invoke(
            retry_attempts=2,
            max_event_age=Duration.hours(1),
            on_failure=destinations.SqsDestination(dead_letter_queue),
        )

        self._grant_drain_permissions(cluster, groups, state_machine_arn)
        depend_only_on_policy(self.function, self.role)
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"Runtime pinned to {POWERTOOLS_RUNTIME}: the AWS-managed Powertools layer is "
            "published and pinned per runtime; move both together.",
        )

    def _grant_drain_permissions(
        self,
        cluster: ecs.ICluster,
        groups: Sequence[autoscaling.IAutoScalingGroup],
        state_machine_arn: str,
    ) -> None:
        container_instances = cluster_resource_arn(self, cluster, "container-instance")
        tasks = cluster_resource_arn(self, cluster, "task")
        services = cluster_resource_arn(self, cluster, "service")
        group_arns = [group_arn(self, group) for group in groups]
        statements = [
            iam.PolicyStatement(
                sid="EcsListContainerInstances",
                actions=["ecs:ListContainerInstances"],
                resources=[cluster.cluster_arn],
            ),
            iam.PolicyStatement(
                sid="EcsContainerInstances",
                actions=["ecs:DescribeContainerInstances", "ecs:UpdateContainerInstancesState"],
                resources=[container_instances],
            ),
            # ListTasks is authorized on the container instance when one is given, else on the
            # cluster: both belong to this cluster only.
            iam.PolicyStatement(
                sid="EcsListTasks",
                actions=["ecs:ListTasks"],
                resources=[cluster.cluster_arn, container_instances],
            ),
            iam.PolicyStatement(
                sid="EcsTasks",
                actions=["ecs:DescribeTasks", "ecs:StopTask"],
                resources=[tasks],
            ),
            iam.PolicyStatement(
                sid="EcsServices",
                actions=["ecs:DescribeServices"],
                resources=[services],
            ),
            iam.PolicyStatement(
                sid="LifecycleActions",
                actions=[
                    "autoscaling:CompleteLifecycleAction",
                    "autoscaling:RecordLifecycleActionHeartbeat",
                ],
                resources=group_arns,
            ),
            # These two Describe APIs have no resource-level permissions: "*" is the only form.
            iam.PolicyStatement(
                sid="AutoScalingDescribe",
                actions=[
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLifecycleHooks",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="StartDrainLoop",
                actions=["states:StartExecution"],
                resources=[state_machine_arn],
            ),
        ]
        for statement in statements:
            self.role.add_to_principal_policy(statement)

        policy = default_policy(self.role)
        for resource, reason in (
            (
                container_instances,
                "Container instance ids are only known once instances register; the ARN pattern "
                "is pinned to this cluster's name.",
            ),
            (
                tasks,
                "Task ids on the draining instance are only known at run time; the ARN pattern is "
                "pinned to this cluster's name.",
            ),
            (
                services,
                "Reads (DescribeServices) whichever service of this cluster owns a task on the "
                "draining instance; pinned to this cluster's name.",
            ),
            *(
                (
                    arn,
                    "An Auto Scaling group ARN embeds a random id CloudFormation does not return; "
                    "the group name pins it to one hooked group.",
                )
                for arn in group_arns
            ),
            (
                "*",
                "autoscaling:DescribeAutoScalingInstances/DescribeLifecycleHooks and X-Ray "
                "PutTraceSegments/PutTelemetryRecords have no resource-level permissions.",
            ),
        ):
            acknowledge_wildcard_resource(policy, resource, reason)
