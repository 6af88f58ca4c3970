"""The Standard state machine that waits and re-invokes the drain Lambda (ASL from a file)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ecs_drain_hook.acknowledgements import (
    acknowledge,
    acknowledge_wildcard_resource,
    default_policy,
)
from ecs_drain_hook.arns import group_arn
from ecs_drain_hook.cfn_tidy import depend_only_on_policy
from ecs_drain_hook.package_files import load_definition
from ecs_drain_hook.runtime.drain_hook.contract import (
    FUNCTION_ARN_SUBSTITUTION,
    INTEGRATION_SUBSTITUTIONS,
    integration_arn,
)


class DrainStateMachine(Construct):
    """Wait loop around the drain Lambda.

    The definition stays a plain string with DefinitionSubstitutions (never a CDK-built Fn::Join),
    so cfn-lint can validate it and the ASL file shipped in the package is exactly what runs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine_name: str,
        log_group_name: str,
        function: lambda_.IFunction,
        groups: Sequence[autoscaling.IAutoScalingGroup],
        timeout_seconds: int,
        tracing_enabled: bool,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        # The vended-logs prefix keeps the account's CloudWatch Logs resource policy small; the
        # name carries the stack's id, so a retained group never collides with a redeploy.
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=log_group_name,
            retention=log_retention,
            removal_policy=log_removal_policy,
        )
        definition = load_definition(timeout_seconds)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            # Known before it exists: the Lambda gets this ARN in its environment without a
            # reference cycle (the definition already references the Lambda).
            state_machine_name=state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition, indent=2)),
            definition_substitutions={
                FUNCTION_ARN_SUBSTITUTION: function.function_arn,
                # The integrations' ARNs in the stack's partition (China, GovCloud too).
                **{
                    name: integration_arn(Aws.PARTITION, integration)
                    for name, integration in INTEGRATION_SUBSTITUTIONS.items()
                },
            },
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=tracing_enabled,
            comment="ecs-drain-hook wait loop",
        )
        role = self.state_machine.role
        # The unqualified ARN only: the definition invokes $LATEST, never a version or alias.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeDrainFunction",
                actions=["lambda:InvokeFunction"],
                resources=[function.function_arn],
            )
        )
        # While polls fail for transient reasons the loop keeps the hold alive itself (aws-sdk
        # integration); it never completes a lifecycle action.
        group_arns = [group_arn(self, group) for group in groups]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="HeartbeatWhileFailing",
                actions=["autoscaling:RecordLifecycleActionHeartbeat"],
                resources=group_arns,
            )
        )
        depend_only_on_policy(self.state_machine, role)
        policy = default_policy(role)
        for arn in group_arns:
            acknowledge_wildcard_resource(
                policy,
                arn,
                "An Auto Scaling group ARN embeds a random id CloudFormation does not return; the "
                "group name pins it to one hooked group.",
            )
        acknowledge_wildcard_resource(
            policy,
            "*",
            "CloudWatch Logs vended log delivery (logs:*LogDelivery*, resource policies) and X-Ray "
            "tracing APIs have no resource-level permissions.",
        )
        if not tracing_enabled:
            acknowledge(
                self.state_machine,
                "AwsSolutions-SF2",
                "X-Ray follows the drain hook's one tracing setting (tracing_enabled, off by "
                "default); execution history and ALL-level logs record every poll.",
            )
