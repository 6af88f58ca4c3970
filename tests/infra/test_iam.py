"""IAM statements, resource by resource: least privilege for the Lambda and the state machine."""

from __future__ import annotations

from typing import Any

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
    sm = synth.one("AWS::StepFunctions::StateMachine")[1]["Properties"]["StateMachineName"]
    expected = {
        "EcsListContainerInstances": (["ecs:ListContainerInstances"], [cluster_arn(synth)]),
        "EcsContainerInstances": (
            ["ecs:DescribeContainerInstances", "ecs:UpdateContainerInstancesState"],
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
            ["autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeLifecycleHooks"],
            ["*"],
        ),
        "StartDrainLoop": (["states:StartExecution"], [arn("states", [f":stateMachine:{sm}"])]),
    }
    for sid, (actions, resources) in expected.items():
        statement = statements.pop(sid)
        assert statement["Effect"] == "Allow"
        assert _actions(statement) == sorted(actions), sid
        assert _resources(statement) == resources, sid
        assert "Condition" not in statement

    # What CDK adds: log writing to its own log group, X-Ray, the DLQ as on-failure destination.
    logs = statements.pop("logs:CreateLogStream,logs:PutLogEvents")
    (log_group_id,) = [
        k for k in synth.resources("AWS::Logs::LogGroup") if k.startswith("DrainHookDrainLogGroup")
    ]
    assert _resources(logs) == [{"Fn::GetAtt": [log_group_id, "Arn"]}]
    xray = statements.pop("xray:PutTelemetryRecords,xray:PutTraceSegments")
    assert _resources(xray) == ["*"]  # X-Ray has no resource-level permissions
    (queue_id, _) = synth.one("AWS::SQS::Queue")
    sqs = statements.pop("sqs:GetQueueAttributes,sqs:GetQueueUrl,sqs:SendMessage")
    assert _resources(sqs) == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    assert statements == {}, f"unexpected statements: {statements}"


def test_no_wildcard_actions(synth: Synth) -> None:
    for policy in synth.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in _actions(statement):
                if action == "ecs:Submit*" and synth.stack_name == "EcsDrainHookDemo":
                    continue  # the demo's ECS agent policy (aws-cdk-lib), acknowledged
                assert "*" not in action, action


def test_wildcard_resources_only_for_apis_without_resource_arns(synth: Synth) -> None:
    allowed = {
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeLifecycleHooks",
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
    (fn_id, _) = synth.one("AWS::Lambda::Function")
    invoke = statements.pop("InvokeDrainFunction")
    assert _actions(invoke) == ["lambda:InvokeFunction"]
    # The unqualified function only: no "<arn>:*" for versions or aliases.
    assert _resources(invoke) == [{"Fn::GetAtt": [fn_id, "Arn"]}]
    complete = statements.pop("CompleteLifecycleActionOnError")
    assert _actions(complete) == ["autoscaling:CompleteLifecycleAction"]
    assert _resources(complete) == group_arns(synth)
    # The rest is CDK's: vended log delivery and X-Ray, which need "*".
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
