"""The stack around EcsDrainHook: attach to existing resources, or build a sample cluster."""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import (
    Annotations,
    AspectPriority,
    Aspects,
    Aws,
    CfnOutput,
    CfnResource,
    Duration,
    Fn,
    IAspect,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct, IConstruct

from ecs_drain_hook import EcsDrainHook
from ecs_drain_hook.construct import stack_instance_id
from ecs_drain_hook.stack_names import OUTPUT_SAMPLE_CLUSTER, OUTPUT_SAMPLE_GROUP
from infra.config import LOG_RETENTION_DAYS, AppConfig
from infra.stacks.sample_cluster_findings import acknowledge_sample_cluster_findings

MANUAL_EVENT_FILE = "events/manual-dry-run.json"
# ECS refuses capacity provider names that begin with "aws", "ecs" or "fargate", in any case,
# and CloudFormation's generated one begins with the stack name (EcsDrainHookSample...):
# the sample cluster names its own, from a fixed prefix, the stack's id and the group's name.
SAMPLE_CAPACITY_PROVIDER_PREFIX = "drain-hook-sample"
# RetentionDays lists the same periods as CloudWatch Logs, in the same order (INFINITE last).
RETENTION = dict(zip(LOG_RETENTION_DAYS, list(logs.RetentionDays)[:-1], strict=True))


class DrainHookStack(Stack):
    """Attach mode: import the cluster and groups by name (no lookups). Sample cluster: build
    them."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any):
        mode = "sample cluster" if config.sample_cluster else "attach"
        super().__init__(
            scope,
            construct_id,
            description=f"ecs-drain-hook ({mode} mode): drain ECS instances before termination",
            **kwargs,
        )
        self.config = config
        self.sample_group: autoscaling.AutoScalingGroup | None = None
        if config.sample_cluster:
            cluster, groups = self._build_sample_cluster()
        else:
            cluster, groups = self._import_existing()

        topic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
            if config.alarm_topic_arn
            else None
        )
        self.drain_hook = EcsDrainHook(
            self,
            "DrainHook",
            cluster=cluster,
            auto_scaling_groups=groups,
            tunables=config.tunables,
            heartbeat_timeout_seconds=config.heartbeat_timeout_seconds,
            hook_name=config.hook_name,
            alarm_topic=topic,
            log_retention=RETENTION[config.log_retention_days],
            # A sample cluster is thrown away whole; attached stacks keep their logs for audits.
            log_removal_policy=(
                RemovalPolicy.DESTROY if config.sample_cluster else RemovalPolicy.RETAIN
            ),
            reserved_concurrency=config.reserved_concurrency,
            intake_concurrency=config.intake_concurrency,
            # The sample cluster disables managed draining itself; attach mode has only the
            # user's word.
            managed_draining=False if config.sample_cluster else config.managed_draining,
            powertools_layer_arn=config.powertools_layer_arn,
            lost_event_sweep_minutes=config.lost_event_sweep_minutes,
            set_retention_policy=config.set_retention_policy,
            stuck_drain_alarm_seconds=config.stuck_drain_alarm_seconds,
            outputs=True,
        )
        self._outputs()

    def _import_existing(self) -> tuple[ecs.ICluster, list[autoscaling.IAutoScalingGroup]]:
        assert self.config.cluster_name is not None
        cluster = ecs.Cluster.from_cluster_attributes(
            self,
            "Cluster",
            cluster_name=self.config.cluster_name,
            # The API wants a VPC; the drain hook never uses the cluster's network, so a
            # placeholder keeps synth free of lookups. It is not rendered into the template.
            vpc=ec2.Vpc.from_vpc_attributes(
                self, "UnusedVpc", vpc_id="vpc-unused", availability_zones=["unused"]
            ),
        )
        groups = [
            autoscaling.AutoScalingGroup.from_auto_scaling_group_name(self, f"Group{i}", name)
            for i, name in enumerate(self.config.asg_names)
        ]
        return cluster, groups

    def _build_sample_cluster(self) -> tuple[ecs.ICluster, list[autoscaling.IAutoScalingGroup]]:
        # Public subnets and no NAT gateway: cheap, and the instances reach ECS directly.
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)
            ],
        )
        vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(
                    self,
                    "FlowLogGroup",
                    retention=logs.RetentionDays.ONE_WEEK,
                    removal_policy=RemovalPolicy.DESTROY,
                )
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        # The recommended flag @aws-cdk/aws-ec2:restrictDefaultSecurityGroup adds a custom
        # resource that strips the default security group's rules; its handler lists its role in
        # DependsOn as well as in a GetAtt (cfn-lint W3005). The GetAtt alone orders them.
        provider = self.node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is not None:
            handler = provider.node.find_child("Handler")
            assert isinstance(handler, CfnResource)
            handler.add_deletion_override("DependsOn")
        cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=vpc,
            description="ecs-drain-hook sample instances: no inbound, outbound to ECS and ECR",
            allow_all_outbound=True,
        )
        instance_role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="ecs-drain-hook sample container instances (ECS agent)",
        )
        launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            instance_type=ec2.InstanceType("t4g.small"),
            machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.ARM),
            security_group=security_group,
            associate_public_ip_address=True,
            require_imdsv2=True,
            detailed_monitoring=True,
            # The capacity provider adds the ECS agent's permissions to this role.
            role=instance_role,
            user_data=ec2.UserData.for_linux(),
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(30, encrypted=True),
                )
            ],
        )
        group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            launch_template=launch_template,
            min_capacity=1,
            max_capacity=3,
            # Two instances, so a scale-in to one shows tasks moving before termination.
            desired_capacity=2,
        )
        Annotations.of(group).acknowledge_warning(
            "@aws-cdk/aws-autoscaling:desiredCapacitySet",
            "Sample cluster: a redeploy resetting the group to two instances is what it wants.",
        )
        capacity_provider = ecs.AsgCapacityProvider(
            self,
            "CapacityProvider",
            auto_scaling_group=group,
            # New for every stack created (one still being deleted keeps its name a while), and
            # for every group (a new group is the only change besides the name that replaces a
            # capacity provider): a replacement never meets the old name.
            capacity_provider_name=Fn.join(
                "-",
                [
                    SAMPLE_CAPACITY_PROVIDER_PREFIX,
                    stack_instance_id(),
                    group.auto_scaling_group_name,
                ],
            ),
            # Managed draining would add a second termination hook that fights this one.
            enable_managed_draining=False,
            enable_managed_termination_protection=False,
            # The group is scaled by hand (set-desired-capacity), not through ECS.
            enable_managed_scaling=False,
        )
        cluster.add_asg_capacity_provider(capacity_provider)
        # With managed draining off, aws-cdk-lib adds its own legacy drain hook (a second
        # termination hook, a Lambda and an SNS topic) that would race ours; the option that
        # turns it off (taskDrainTime=0) is not in the Python binding, so drop its constructs.
        for legacy in ("DrainECSHook", "LifecycleHookDrainHook"):
            if not group.node.try_remove_child(legacy):
                raise RuntimeError(f"aws-cdk-lib no longer adds {legacy}: revisit this removal")
        self._sample_service(cluster, capacity_provider)
        self.sample_group = group
        self.sample_cluster = cluster
        acknowledge_sample_cluster_findings(instance_role=instance_role, group=group)
        return cluster, [group]

    def _sample_service(
        self, cluster: ecs.Cluster, capacity_provider: ecs.AsgCapacityProvider
    ) -> None:
        task = ecs.Ec2TaskDefinition(self, "SampleTask", network_mode=ecs.NetworkMode.BRIDGE)
        task.add_container(
            "app",
            image=ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/busybox:1.37"),
            # Exits promptly on SIGTERM, like a well-behaved service.
            command=["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
            memory_reservation_mib=32,
            stop_timeout=Duration.seconds(30),
            logging=ecs.LogDriver.aws_logs(
                stream_prefix="sample",
                log_group=logs.LogGroup(
                    self,
                    "SampleLogGroup",
                    retention=logs.RetentionDays.ONE_WEEK,
                    removal_policy=RemovalPolicy.DESTROY,
                ),
            ),
        )
        service = ecs.Ec2Service(
            self,
            "SampleService",
            cluster=cluster,
            task_definition=task,
            desired_count=4,
            min_healthy_percent=50,
            max_healthy_percent=200,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(
                    capacity_provider=capacity_provider.capacity_provider_name, weight=1
                )
            ],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        # A service whose strategy names the capacity provider fails to create before the
        # cluster's capacity provider association exists, and CloudFormation sees no reference
        # between them (aws-cdk-lib creates the association late, in an aspect).
        Aspects.of(cluster).add(
            _DependOnCapacityProviderAssociation(cluster, service),
            priority=AspectPriority.READONLY,
        )

    def _outputs(self) -> None:
        hook = self.drain_hook
        # The construct's outputs keep their short ids as keys here: the runbook and the
        # ecs-drain-hook command read them by these names.
        for key, output in hook.outputs.items():
            output.override_logical_id(key)
        CfnOutput(
            self,
            "ManualInvokeCommand",
            description="Dry-run a drain by hand (edit the instance id in the event file first)",
            value=Fn.join(
                "",
                [
                    "aws lambda invoke --region ",
                    Aws.REGION,
                    " --function-name ",
                    hook.function.function_name,
                    " --cli-binary-format raw-in-base64-out",
                    f" --payload file://{MANUAL_EVENT_FILE} response.json",
                ],
            ),
        )
        if self.sample_group is not None:
            group_name = self.sample_group.auto_scaling_group_name
            CfnOutput(self, OUTPUT_SAMPLE_GROUP, value=group_name)
            CfnOutput(self, OUTPUT_SAMPLE_CLUSTER, value=self.sample_cluster.cluster_name)
            CfnOutput(
                self,
                "SampleScaleInCommand",
                description="Scale the sample group in and watch the drain",
                value=Fn.join(
                    "",
                    [
                        "aws autoscaling set-desired-capacity --region ",
                        Aws.REGION,
                        " --auto-scaling-group-name ",
                        group_name,
                        " --desired-capacity 1",
                    ],
                ),
            )


@jsii.implements(IAspect)
class _DependOnCapacityProviderAssociation:
    """Adds DependsOn from the service to the cluster's ClusterCapacityProviderAssociations."""

    def __init__(self, cluster: ecs.Cluster, service: ecs.Ec2Service) -> None:
        self._cluster = cluster
        self._service = service

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, ecs.CfnClusterCapacityProviderAssociations):
            self._service.node.add_dependency(node)
