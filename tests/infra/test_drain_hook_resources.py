"""Template assertions for the drain hook's resources, in attach mode (two groups) and demo mode."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from infra.constructs.drain_function import powertools_parameter_name
from infra.constructs.drain_state_machine import ASL_FILE
from infra.settings import DrainSettings
from tests.infra.conftest import CLUSTER, GROUPS, TOPIC_ARN, Synth
from tests.infra.test_events_folder import load_event

ATTACH_SETTINGS = DrainSettings(max_drain_seconds=14400)
DEMO_SETTINGS = DrainSettings()


def settings_for(synth: Synth) -> DrainSettings:
    return DEMO_SETTINGS if synth.stack_name == "EcsDrainHookDemo" else ATTACH_SETTINGS


def cluster_ref(synth: Synth) -> object:
    """How the template names the cluster: a literal (attach) or a Ref (demo)."""
    if synth.stack_name == "EcsDrainHook":
        return CLUSTER
    (logical_id, _) = synth.one("AWS::ECS::Cluster")
    return {"Ref": logical_id}


def group_refs(synth: Synth) -> list[object]:
    if synth.stack_name == "EcsDrainHook":
        return list(GROUPS)
    (logical_id, _) = synth.one("AWS::AutoScaling::AutoScalingGroup")
    return [{"Ref": logical_id}]


# --- lifecycle hooks -----------------------------------------------------------------------


def test_one_terminating_hook_per_group(synth: Synth) -> None:
    hooks = synth.resources("AWS::AutoScaling::LifecycleHook")
    groups = group_refs(synth)
    assert sorted(json.dumps(h["Properties"]["AutoScalingGroupName"]) for h in hooks.values()) == (
        sorted(json.dumps(g) for g in groups)
    )
    heartbeat = settings_for(synth).heartbeat_timeout()
    for hook in hooks.values():
        props = hook["Properties"]
        assert props["LifecycleHookName"] == "ecs-drain-hook"
        assert props["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
        assert props["DefaultResult"] == "CONTINUE"
        assert props["HeartbeatTimeout"] == heartbeat
        # No SNS/SQS target: the hook's events go through EventBridge.
        assert "NotificationTargetARN" not in props
        assert "RoleARN" not in props


def test_hook_metadata_names_the_cluster(attach: Synth, demo: Synth) -> None:
    for hook in attach.resources("AWS::AutoScaling::LifecycleHook").values():
        assert json.loads(hook["Properties"]["NotificationMetadata"]) == {"cluster": CLUSTER}
    (cluster_id, _) = demo.one("AWS::ECS::Cluster")
    (hook,) = demo.resources("AWS::AutoScaling::LifecycleHook").values()
    assert hook["Properties"]["NotificationMetadata"] == {
        "Fn::Join": ["", ['{"cluster":"', {"Ref": cluster_id}, '"}']]
    }


def test_heartbeat_fits_the_global_timeout(synth: Synth) -> None:
    settings = settings_for(synth)
    (hook, *_) = synth.resources("AWS::AutoScaling::LifecycleHook").values()
    heartbeat = hook["Properties"]["HeartbeatTimeout"]
    assert 30 <= heartbeat <= 7200
    # Global timeout = min(48 h, 100 x heartbeat) must outlast the longest drain.
    assert min(48 * 3600, 100 * heartbeat) >= settings.hold_seconds > settings.max_drain_seconds
    # A heartbeat is recorded on every poll: the timer must outlast the longest wait.
    assert heartbeat > settings.poll_interval_max_seconds


# --- EventBridge rule, target, retry, DLQ -------------------------------------------------------


def test_rule_matches_only_these_groups_and_hook(synth: Synth) -> None:
    (_, rule) = synth.one("AWS::Events::Rule")
    assert rule["Properties"]["State"] == "ENABLED"
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
        "detail": {
            "AutoScalingGroupName": group_refs(synth),
            "LifecycleHookName": ["ecs-drain-hook"],
        },
    }


def test_rule_pattern_matches_a_real_event(attach: Synth) -> None:
    from moto.events.models import EventPattern

    (_, rule) = attach.one("AWS::Events::Rule")
    pattern = EventPattern.load(json.dumps(rule["Properties"]["EventPattern"]))
    event = load_event("lifecycle-terminate.json")
    event["detail"]["AutoScalingGroupName"] = GROUPS[1]
    assert pattern.matches_event(event)
    assert not pattern.matches_event(
        {**event, "detail": {**event["detail"], "LifecycleHookName": "x"}}
    )
    other_group = {**event, "detail": {**event["detail"], "AutoScalingGroupName": "other"}}
    assert not pattern.matches_event(other_group)
    launch = {**event, "detail-type": "EC2 Instance-launch Lifecycle Action"}
    assert not pattern.matches_event(launch)


def test_rule_targets_the_function_with_retry_and_dlq(synth: Synth) -> None:
    (_, rule) = synth.one("AWS::Events::Rule")
    (function_id, _) = synth.one("AWS::Lambda::Function")
    (queue_id, _) = synth.one("AWS::SQS::Queue")
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {
        "MaximumEventAgeInSeconds": settings_for(synth).heartbeat_timeout(),
        "MaximumRetryAttempts": 8,
    }
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    Template.from_json(synth.template).has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
            "SourceArn": {"Fn::GetAtt": [next(iter(synth.resources("AWS::Events::Rule"))), "Arn"]},
        },
    )


def test_dead_letter_queue_is_encrypted_and_ssl_only(synth: Synth) -> None:
    (queue_id, queue) = synth.one("AWS::SQS::Queue")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    (_, policy) = synth.one("AWS::SQS::QueuePolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny == [
        {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        }
    ]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    (rule_id, _) = synth.one("AWS::Events::Rule")
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}


def test_failed_async_invokes_land_in_the_dlq(synth: Synth) -> None:
    (queue_id, _) = synth.one("AWS::SQS::Queue")
    (_, config) = synth.one("AWS::Lambda::EventInvokeConfig")
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    assert config["Properties"]["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}
    }


# --- Lambda ---------------------------------------------------------------------------------


def test_function_settings(synth: Synth) -> None:
    (_, fn) = synth.one("AWS::Lambda::Function")
    props = fn["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "drain_hook.handler.lambda_handler"
    assert props["Timeout"] == 60
    assert props["TracingConfig"] == {"Mode": "Active"}
    (log_group_id, _) = next(
        (k, v)
        for k, v in synth.resources("AWS::Logs::LogGroup").items()
        if k.startswith("DrainHookDrainLogGroup")
    )
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}
    # Code from lambda/ as a file asset: no Docker bundling.
    assert "S3Key" in props["Code"] and props["Code"]["S3Key"].endswith(".zip")


def test_function_code_asset_is_the_lambda_folder(synth: Synth) -> None:
    assets = json.loads((synth.outdir / f"{synth.stack_name}.assets.json").read_text())
    (lambda_asset,) = [a for a in assets["files"].values() if a["source"].get("packaging") == "zip"]
    folder = synth.outdir / lambda_asset["source"]["path"]
    assert (folder / "drain_hook" / "handler.py").is_file()
    assert not list(folder.rglob("__pycache__"))


def test_powertools_layer_resolved_from_public_ssm_at_deploy(synth: Synth) -> None:
    (_, fn) = synth.one("AWS::Lambda::Function")
    (layer,) = fn["Properties"]["Layers"]
    parameter = synth.template["Parameters"][layer["Ref"]]
    assert parameter == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": "/aws/service/powertools/python/arm64/python3.13/3.37.0",
    }
    assert parameter["Default"] == powertools_parameter_name()


def test_function_environment(synth: Synth) -> None:
    (_, fn) = synth.one("AWS::Lambda::Function")
    env = fn["Properties"]["Environment"]["Variables"]
    (_sm_id, sm) = synth.one("AWS::StepFunctions::StateMachine")
    name = sm["Properties"]["StateMachineName"]
    expected = {
        "CLUSTER_NAME": cluster_ref(synth),
        "STATE_MACHINE_ARN": {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":states:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    f":stateMachine:{name}",
                ],
            ]
        },
        "POWERTOOLS_SERVICE_NAME": "ecs-drain-hook",
        "POWERTOOLS_METRICS_NAMESPACE": "EcsDrainHook",
        **settings_for(synth).lambda_environment(),
    }
    assert env == expected
    assert env["MAX_DRAIN_SECONDS"] == str(settings_for(synth).max_drain_seconds)
    assert env["TRACING_ENABLED"] == "true"


def test_function_env_matches_the_lambda_config(synth: Synth) -> None:
    """Every variable the CDK sets is one the Lambda reads, and validates."""
    from drain_hook.config import ENVIRONMENT, settings_from

    (_, fn) = synth.one("AWS::Lambda::Function")
    env = dict(fn["Properties"]["Environment"]["Variables"])
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    assert set(env) - powertools <= set(ENVIRONMENT)
    env["CLUSTER_NAME"] = "c"
    env["STATE_MACHINE_ARN"] = "arn:aws:states:eu-west-1:111122223333:stateMachine:x"
    settings = settings_from(env)
    assert settings.max_drain_seconds == settings_for(synth).max_drain_seconds


def test_reserved_concurrency_only_when_asked(attach: Synth, demo: Synth) -> None:
    (_, fn) = attach.one("AWS::Lambda::Function")
    assert fn["Properties"]["ReservedConcurrentExecutions"] == 5
    (_, fn) = demo.one("AWS::Lambda::Function")
    assert "ReservedConcurrentExecutions" not in fn["Properties"]


def test_log_groups_have_retention(synth: Synth) -> None:
    for log_group in synth.resources("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] in (7, 30)
    retain = "Retain" if synth.stack_name == "EcsDrainHook" else "Delete"
    for logical_id, log_group in synth.resources("AWS::Logs::LogGroup").items():
        if logical_id.startswith("DrainHook"):
            assert log_group["DeletionPolicy"] == retain
            assert log_group["Properties"]["RetentionInDays"] == 30


# --- state machine ------------------------------------------------------------------------


def test_state_machine_definition_is_the_asl_file(synth: Synth) -> None:
    (_, sm) = synth.one("AWS::StepFunctions::StateMachine")
    props = sm["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    # A plain string, not Fn::Join: cfn-lint (E3601) validates only that form.
    assert isinstance(props["DefinitionString"], str)
    definition = json.loads(props["DefinitionString"])
    source = json.loads(ASL_FILE.read_text())
    assert definition.pop("TimeoutSeconds") == settings_for(synth).execution_timeout_seconds
    assert definition == source
    assert definition["States"]["PollDrain"]["Parameters"]["FunctionName"] == "${DrainFunctionArn}"
    (function_id, _) = synth.one("AWS::Lambda::Function")
    assert props["DefinitionSubstitutions"] == {
        "DrainFunctionArn": {"Fn::GetAtt": [function_id, "Arn"]}
    }


def test_execution_timeout_just_above_max_drain(synth: Synth) -> None:
    settings = settings_for(synth)
    (_, sm) = synth.one("AWS::StepFunctions::StateMachine")
    timeout = json.loads(sm["Properties"]["DefinitionString"])["TimeoutSeconds"]
    assert settings.max_drain_seconds < timeout <= settings.max_drain_seconds + 3600


def test_state_machine_logging_and_tracing(synth: Synth) -> None:
    (_, sm) = synth.one("AWS::StepFunctions::StateMachine")
    props = sm["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    (destination,) = props["LoggingConfiguration"]["Destinations"]
    log_group_arn = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]
    (log_group_id, _) = log_group_arn["Fn::GetAtt"]
    log_group = synth.template["Resources"][log_group_id]
    assert log_group["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True


def test_state_machine_name_is_fixed_and_valid(synth: Synth) -> None:
    (_, sm) = synth.one("AWS::StepFunctions::StateMachine")
    name = sm["Properties"]["StateMachineName"]
    assert isinstance(name, str) and 1 <= len(name) <= 80
    assert name.startswith(synth.stack_name)


def test_no_dependency_cycle_and_no_custom_resources(synth: Synth) -> None:
    types = {r["Type"] for r in synth.template["Resources"].values()}
    assert not any(
        t.startswith("Custom::") or t == "AWS::CloudFormation::CustomResource" for t in types
    )
    # The Lambda learns the state machine ARN by name, not by Ref/GetAtt.
    (sm_id, _) = synth.one("AWS::StepFunctions::StateMachine")
    (_, fn) = synth.one("AWS::Lambda::Function")
    assert sm_id not in json.dumps(fn)


# --- alarms and outputs -----------------------------------------------------------------------


def _alarms(synth: Synth) -> dict[str, dict]:
    alarms = synth.resources("AWS::CloudWatch::Alarm")
    return {k: v["Properties"] for k, v in alarms.items() if k.startswith("DrainHookAlarms")}


@pytest.mark.parametrize(
    ("name", "namespace", "metric"),
    [
        ("ExecutionsFailed", "AWS/States", "ExecutionsFailed"),
        ("ExecutionsTimedOut", "AWS/States", "ExecutionsTimedOut"),
        ("ExecutionsAborted", "AWS/States", "ExecutionsAborted"),
        ("FunctionErrors", "AWS/Lambda", "Errors"),
        ("DeadLetters", "AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("DrainsForced", "EcsDrainHook", "DrainsForced"),
    ],
)
def test_alarm(synth: Synth, name: str, namespace: str, metric: str) -> None:
    (alarm,) = [v for k, v in _alarms(synth).items() if k.startswith(f"DrainHookAlarms{name}")]
    assert alarm["Namespace"] == namespace
    assert alarm["MetricName"] == metric
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    if name == "DrainsForced":
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "ecs-drain-hook"}]
        assert alarm["Statistic"] == "Sum"
    if synth.stack_name == "EcsDrainHook":
        assert alarm["AlarmActions"] == [TOPIC_ARN]
    else:
        assert "AlarmActions" not in alarm


def test_outputs(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    (function_id, _) = synth.one("AWS::Lambda::Function")
    (sm_id, _) = synth.one("AWS::StepFunctions::StateMachine")
    assert outputs["FunctionName"]["Value"] == {"Ref": function_id}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": sm_id}
    command = outputs["ManualInvokeCommand"]["Value"]["Fn::Join"]
    assert command[0] == ""
    parts = command[1]
    assert {"Ref": function_id} in parts
    text = "".join(p if isinstance(p, str) else "X" for p in parts)
    assert text.startswith("aws lambda invoke --region X --function-name X ")
    assert "--cli-binary-format raw-in-base64-out" in text
    assert "--payload file://events/manual-dry-run.json" in text


def test_template_assertions_api(attach: Synth) -> None:
    """The same checks through aws_cdk.assertions, as a second pair of eyes on the JSON."""
    template = Template.from_json(attach.template)
    template.resource_count_is("AWS::AutoScaling::LifecycleHook", 2)
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.resource_count_is("AWS::StepFunctions::StateMachine", 1)
    template.resource_count_is("AWS::CloudWatch::Alarm", 6)
    template.has_resource_properties(
        "AWS::AutoScaling::LifecycleHook",
        {
            "AutoScalingGroupName": GROUPS[0],
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "DefaultResult": "CONTINUE",
            "HeartbeatTimeout": Match.any_value(),
            "NotificationMetadata": json.dumps({"cluster": CLUSTER}, separators=(",", ":")),
        },
    )
    template.has_output("ManualInvokeCommand", Match.object_like({"Value": Match.any_value()}))
