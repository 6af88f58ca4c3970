"""The drain Lambda: code from the package's runtime folder, Powertools as a layer, scoped IAM."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ecs_drain_hook.acknowledgements import (
    acknowledge,
    acknowledge_wildcard_resource,
    default_policy,
)
from ecs_drain_hook.arns import cluster_resource_arn, execution_arn_pattern, group_arn
from ecs_drain_hook.cfn_tidy import depend_only_on_policy
from ecs_drain_hook.package_files import ASSET_EXCLUDES, HANDLER, lambda_code_dir
from ecs_drain_hook.powertools import POWERTOOLS_RUNTIME, POWERTOOLS_VERSION, powertools_layer
from ecs_drain_hook.runtime.drain_hook import contract
from ecs_drain_hook.runtime.drain_hook.settings import Tunables
from ecs_drain_hook.timing import (
    LAMBDA_ASYNC_MAX_EVENT_AGE_SECONDS,
    LAMBDA_ASYNC_RETRY_ATTEMPTS,
    LAMBDA_TIMEOUT_SECONDS,
)

# APIs without resource-level permissions (Service Authorization Reference, EC2 Auto Scaling).
AUTOSCALING_DESCRIBE_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLifecycleHooks",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeWarmPool",
)
# EC2's Describe actions have no resource-level permissions either.
EC2_DESCRIBE_ACTIONS = ("ec2:DescribeSpotInstanceRequests",)


class DrainFunction(Construct):
    """The Lambda that starts, polls, releases and completes drains, with its role and logs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        groups: Sequence[autoscaling.IAutoScalingGroup],
        tunables: Tunables,
        state_machine_name: str,
        state_machine_arn: str,
        dead_letter_queue: sqs.IQueue,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
        reserved_concurrency: int | None,
        powertools_layer_arn: str | None,
        powertools_version: str = POWERTOOLS_VERSION,
        hook_name: str = "",
    ) -> None:
        super().__init__(scope, construct_id)

        # No name: CloudFormation generates one, so a retained group never blocks a redeploy.
        self.log_group = logs.LogGroup(
            self, "LogGroup", retention=log_retention, removal_policy=log_removal_policy
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

        environment = {
            **tunables.environ(),
            "CLUSTER_NAME": cluster.cluster_name,
            "STATE_MACHINE_ARN": state_machine_arn,
            # The sweep and the Spot notices keep to these groups and this hook.
            "HOOKED_GROUPS": Stack.of(self).to_json_string(
                [group.auto_scaling_group_name for group in groups]
            ),
            "HOOK_NAME": hook_name,
            "POWERTOOLS_SERVICE_NAME": contract.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": contract.METRICS_NAMESPACE,
        }
        self.function = lambda_.Function(
            self,
            "Function",
            description="ecs-drain-hook: drain ECS container instances before ASG termination",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(lambda_code_dir()),
                exclude=list(ASSET_EXCLUDES),
                ignore_mode=IgnoreMode.GIT,
            ),
            layers=[
                powertools_layer(
                    self, "Powertools", layer_arn=powertools_layer_arn, version=powertools_version
                )
            ],
            role=self.role,
            # One round per invocation; room for throttling back-off (timing.py).
            timeout=Duration.seconds(LAMBDA_TIMEOUT_SECONDS),
            memory_size=256,
            environment=environment,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if tunables.tracing_enabled else None,
            reserved_concurrent_executions=reserved_concurrency,
        )
        # EventBridge invokes asynchronously: an event that fails every retry lands in the same
        # dead-letter queue as an undeliverable one, where its alarm fires.
        self.function.configure_async_invoke(
            retry_attempts=LAMBDA_ASYNC_RETRY_ATTEMPTS,
            max_event_age=Duration.seconds(LAMBDA_ASYNC_MAX_EVENT_AGE_SECONDS),
            on_failure=destinations.SqsDestination(dead_letter_queue),
        )

        self._grant_drain_permissions(cluster, groups, state_machine_name, state_machine_arn)
        depend_only_on_policy(self.function, self.role)
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"Runtime pinned to {POWERTOOLS_RUNTIME}: the Powertools layer is published and "
            "pinned per runtime; move both together.",
        )

    def _grant_drain_permissions(
        self,
        cluster: ecs.ICluster,
        groups: Sequence[autoscaling.IAutoScalingGroup],
        state_machine_name: str,
        state_machine_arn: str,
    ) -> None:
        container_instances = cluster_resource_arn(self, cluster, "container-instance")
        tasks = cluster_resource_arn(self, cluster, "task")
        services = cluster_resource_arn(self, cluster, "service")
        executions = execution_arn_pattern(self, state_machine_name)
        group_arns = [group_arn(self, group) for group in groups]
        statements = [
            iam.PolicyStatement(
                sid="EcsListContainerInstances",
                actions=["ecs:ListContainerInstances"],
                resources=[cluster.cluster_arn],
            ),
            # The drain marks the instances it drains with ECS attributes (the container
            # instance rule matches them) and removes them when it ends.
            iam.PolicyStatement(
                sid="EcsContainerInstances",
                actions=[
                    "ecs:DeleteAttributes",
                    "ecs:DescribeContainerInstances",
                    "ecs:PutAttributes",
                    "ecs:UpdateContainerInstancesState",
                ],
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
            # These Describe APIs have no resource-level permissions: "*" is the only form.
            iam.PolicyStatement(
                sid="AutoScalingDescribe",
                actions=list(AUTOSCALING_DESCRIBE_ACTIONS),
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="SpotNotices",
                actions=list(EC2_DESCRIBE_ACTIONS),
                resources=["*"],
            ),
            # The sweep: which loops run (a loop's name begins with its instance's id).
            iam.PolicyStatement(
                sid="ListDrainLoops",
                actions=["states:ListExecutions"],
                resources=[state_machine_arn],
            ),
            iam.PolicyStatement(
                sid="StartDrainLoop",
                actions=["states:StartExecution"],
                resources=[state_machine_arn],
            ),
            # Is the loop for this lifecycle action still running (a duplicate), or did it end?
            iam.PolicyStatement(
                sid="DescribeDrainLoop",
                actions=["states:DescribeExecution"],
                resources=[executions],
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
            (
                executions,
                "Execution names are per lifecycle action, known at run time; the ARN pattern is "
                "pinned to this drain loop's state machine.",
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
                "Auto Scaling's Describe* (groups, instances, hooks, activities, warm pool), "
                "ec2:DescribeSpotInstanceRequests and X-Ray's writes have no resource-level "
                "permissions.",
            ),
        ):
            acknowledge_wildcard_resource(policy, resource, reason)

    def allow_sweep_intake(self, queue: sqs.IQueue) -> None:
        """The sweep puts lifecycle messages in the intake queue and reads its backlog."""
        self.function.add_environment("INTAKE_QUEUE_URL", queue.queue_url)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SweepIntake",
                actions=["sqs:GetQueueAttributes", "sqs:SendMessage"],
                resources=[queue.queue_arn],
            )
        )
