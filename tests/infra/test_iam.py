"""IAM statements, resource by resource: least privilege for the Lambda and the state machine.

Under the recommended feature flags (@aws-cdk/aws-iam:minimizePolicies merges statements without
a Sid), so every statement of ours carries a Sid and stays as written.
"""

from __future__ import annotations

import json
from typing import Any

from ecs_drain_hook import contract
from ecs_drain_hook.package_files import asl_path
from tests.infra.cfn_eval import evaluate, pseudo
from tests.infra.conftest import CLUSTER, GROUPS, Synth

PARTITION, REGION, ACCOUNT = (
    {"Ref": "AWS::Partition"},
    {"Ref": "AWS::Region"},
    {"Ref": "AWS::AccountId"},
)


def arn(service: str, rest: list[Any]) -> dict[str, Any]:
    return {"Fn::Join": ["", ["arn:", PARTITION, f":{service}:", REGION, ":", ACCOUNT, *rest]]}


def cluster_name(synth: Synth) -> Any:
    if synth.stack_name == "EcsDrainHook":
        return CLUSTER
    (logical_id, _) = synth.one("AWS::ECS::Cluster")
    return {"Ref": logical_id}


def ecs_arn(synth: Synth, resource: str) -> dict[str, Any]:
    name = cluster_name(synth)
    if isinstance(name, str):
        return arn("ecs", [f":{resource}/{name}/*"])
    return arn("ecs", [f":{resource}/", name, "/*"])


def cluster_arn(synth: Synth) -> Any:
    if synth.stack_name == "EcsDrainHook":
        return arn("ecs", [f":cluster/{CLUSTER}"])
    (logical_id, _) = synth.one("AWS::ECS::Cluster")
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def group_arns(synth: Synth) -> list[Any]:
    if synth.stack_name == "EcsDrainHook":
        return [
            arn("autoscaling", [f":autoScalingGroup:*:autoScalingGroupName/{g}"]) for g in GROUPS
        ]
    (logical_id, _) = synth.one("AWS::AutoScaling::AutoScalingGroup")
    return [arn("autoscaling", [":autoScalingGroup:*:autoScalingGroupName/", {"Ref": logical_id}])]


def policy_of(synth: Synth, role_prefix: str) -> dict[str, dict[str, Any]]:
    """Statements of the role's policy by Sid (or by action list for CDK-made statements)."""
    policies = [
        p for k, p in synth.resources("AWS::IAM::Policy").items() if k.startswith(role_prefix)
    ]
    (policy,) = policies
    out: dict[str, dict[str, Any]] = {}
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        actions = statement["Action"]
        key = statement.get("Sid") or ",".join(
            sorted(actions if isinstance(actions, list) else [actions])
        )
        out[key] = statement
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return sorted(actions if isinstance(actions, list) else [actions])


def _resources(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def test_lambda_role_statements(synth: Synth) -> None:
    statements = policy_of(synth, "DrainHookDrainRoleDefaultPolicy")
    refs = pseudo(synth.stack_name)
    sm = evaluate(
        synth.one("AWS::StepFunctions::StateMachine")[1]["Properties"]["StateMachineName"], refs
    )
    expected = {
        "EcsListContainerInstances": (["ecs:ListContainerInstances"], [cluster_arn(synth)]),
        "EcsContainerInstances": (
            [
                "ecs:DeleteAttributes",
                "ecs:DescribeContainerInstances",
                "ecs:PutAttributes",
                "ecs:UpdateContainerInstancesState",
            ],
            [ecs_arn(synth, "container-instance")],
        ),
        "EcsListTasks": (
            ["ecs:ListTasks"],
            [cluster_arn(synth), ecs_arn(synth, "container-instance")],
        ),
        "EcsTasks": (["ecs:DescribeTasks", "ecs:StopTask"], [ecs_arn(synth, "task")]),
        "EcsServices": (["ecs:DescribeServices"], [ecs_arn(synth, "service")]),
        "LifecycleActions": (
            ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
            group_arns(synth),
        ),
        "AutoScalingDescribe": (
            [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLifecycleHooks",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeWarmPool",
            ],
            ["*"],
        ),
        # EC2's record of a Spot interruption (DescribeSpotInstanceRequests).
        "SpotNotices": (["ec2:DescribeSpotInstanceRequests"], ["*"]),
    }
    for sid, (actions, resources) in expected.items():
        statement = statements.pop(sid)
        assert statement["Effect"] == "Allow"
        assert _actions(statement) == sorted(actions), sid
        assert _resources(statement) == resources, sid
        assert "Condition" not in statement
    # The state machine's name carries the stack's id: compare the rendered ARNs.
    region, account = refs["AWS::Region"], refs["AWS::AccountId"]
    for sid, action, resource in (
        ("StartDrainLoop", "states:StartExecution", f"stateMachine:{sm}"),
        ("DescribeDrainLoop", "states:DescribeExecution", f"execution:{sm}:*"),
        ("ListDrainLoops", "states:ListExecutions", f"stateMachine:{sm}"),
    ):
        statement = statements.pop(sid)
        assert _actions(statement) == [action]
        (rendered,) = [evaluate(r, refs) for r in _resources(statement)]
        assert rendered == f"arn:aws:states:{region}:{account}:{resource}"

    # What CDK adds: log writing to its own log group, X-Ray, the DLQ as on-failure destination.
    logs = statements.pop("logs:CreateLogStream,logs:PutLogEvents")
    (log_group_id,) = [
        k for k in synth.resources("AWS::Logs::LogGroup") if k.startswith("DrainHookDrainLogGroup")
    ]
    assert _resources(logs) == [{"Fn::GetAtt": [log_group_id, "Arn"]}]
    # Tracing is off by default (Tunables.tracing_enabled): no X-Ray statement.
    (queue_id, _) = synth.one("AWS::SQS::Queue", "DrainHookDeadLetterQueue")
    sqs = statements.pop("sqs:GetQueueAttributes,sqs:GetQueueUrl,sqs:SendMessage")
    assert _resources(sqs) == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    # The intake queue's event source mapping reads and deletes as the function's role.
    (intake_id, _) = synth.one("AWS::SQS::Queue", "DrainHookIntakeQueue")
    intake = statements.pop(
        "sqs:ChangeMessageVisibility,sqs:DeleteMessage,sqs:GetQueueAttributes,sqs:GetQueueUrl,"
        "sqs:ReceiveMessage"
    )
    assert _resources(intake) == [{"Fn::GetAtt": [intake_id, "Arn"]}]
    # The sweep sends lifecycle messages to it and reads its backlog: nothing else.
    sweep = statements.pop("SweepIntake")
    assert _actions(sweep) == ["sqs:GetQueueAttributes", "sqs:SendMessage"]
    assert _resources(sweep) == [{"Fn::GetAtt": [intake_id, "Arn"]}]
    assert "Condition" not in sweep
    assert statements == {}, f"unexpected statements: {statements}"


def test_no_wildcard_actions(synth: Synth) -> None:
    for policy in synth.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in _actions(statement):
                if action == "ecs:Submit*" and synth.stack_name == "EcsDrainHookSample":
                    continue  # the sample cluster's ECS agent policy (aws-cdk-lib), acknowledged
                assert "*" not in action, action


def test_wildcard_resources_only_for_apis_without_resource_arns(synth: Synth) -> None:
    allowed = {
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeLifecycleHooks",
        "autoscaling:DescribeScalingActivities",
        "autoscaling:DescribeWarmPool",
        "ec2:DescribeSpotInstanceRequests",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        if not logical_id.startswith("DrainHook"):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "*" in _resources(statement):
                assert set(_actions(statement)) <= allowed, statement


def test_state_machine_role_statements(synth: Synth) -> None:
    statements = policy_of(synth, "DrainHookLoopStateMachineRoleDefaultPolicy")
    (fn_id, _) = synth.drain_function()
    invoke = statements.pop("InvokeDrainFunction")
    assert _actions(invoke) == ["lambda:InvokeFunction"]
    # The unqualified function only: no "<arn>:*" for versions or aliases.
    assert _resources(invoke) == [{"Fn::GetAtt": [fn_id, "Arn"]}]
    heartbeat = statements.pop("HeartbeatWhileFailing")
    assert _actions(heartbeat) == ["autoscaling:RecordLifecycleActionHeartbeat"]
    assert _resources(heartbeat) == group_arns(synth)
    # The rest is CDK's: vended log delivery (and X-Ray when tracing is on), which need "*".
    for statement in statements.values():
        assert _resources(statement) == ["*"]
        assert all(a.startswith(("logs:", "xray:")) for a in _actions(statement)), statement


def test_roles_trust_only_their_service(synth: Synth) -> None:
    for logical_id, role in synth.resources("AWS::IAM::Role").items():
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        service = statement["Principal"]["Service"]
        if logical_id.startswith("DrainHookDrainRole"):
            assert service == "lambda.amazonaws.com"
        elif logical_id.startswith("DrainHookLoopStateMachineRole"):
            assert service == "states.amazonaws.com"
        # No AWS managed policies on the drain hook's roles.
        if logical_id.startswith("DrainHook"):
            assert "ManagedPolicyArns" not in role["Properties"]


def test_state_machine_may_call_exactly_the_sdk_actions_its_definition_uses(synth: Synth) -> None:
    """Every aws-sdk integration in the ASL has its IAM action, and nothing else is granted."""
    definition = json.loads(asl_path().read_text())
    integrations = {"${" + k + "}": v for k, v in contract.INTEGRATION_SUBSTITUTIONS.items()}
    used = set()
    for state in definition["States"].values():
        integration = integrations.get(state.get("Resource", ""), "")
        if integration.startswith("aws-sdk:"):
            service, action = integration.removeprefix("aws-sdk:").split(":")
            used.add(f"{service}:{action[0].upper()}{action[1:]}")
    assert used == {"autoscaling:RecordLifecycleActionHeartbeat"}
    granted = {
        action
        for statement in policy_of(synth, "DrainHookLoopStateMachineRoleDefaultPolicy").values()
        for action in _actions(statement)
        if not action.startswith(("logs:", "xray:", "lambda:"))
    }
    assert granted == used
    assert "autoscaling:CompleteLifecycleAction" not in granted
