"""Template assertions for the drain hook's resources: attach mode (two groups), sample cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from ecs_drain_hook import RESERVED_CONCURRENCY_WARNING_ID, HookTiming, Tunables, contract
from ecs_drain_hook.package_files import asl_path
from ecs_drain_hook.powertools import PUBLISHED_REGIONS, parameter_name
from ecs_drain_hook.timing import (
    INTAKE_AGE_ALARM_SECONDS,
    INTAKE_BATCH_SIZE,
    INTAKE_MAX_CONCURRENCY,
    INTAKE_MAX_RECEIVE_COUNT,
    INTAKE_VISIBILITY_TIMEOUT_SECONDS,
    LAMBDA_ASYNC_MAX_EVENT_AGE_SECONDS,
    LAMBDA_ASYNC_RETRY_ATTEMPTS,
    LAMBDA_TIMEOUT_SECONDS,
    LIFECYCLE_DELIVERY,
    LOOP_END_DELIVERY,
    TASK_STOPPED_DELIVERY,
    first_heartbeat_bound_seconds,
)
from local_aws.events import pattern_matches
from tests.infra.cfn_eval import STACK_UUID, evaluate, pseudo
from tests.infra.conftest import CLUSTER, GROUPS, TOPIC_ARN, Synth
from tests.infra.test_events_folder import load_event

ATTACH_TUNABLES = Tunables(max_drain_seconds=14400)
DEAD_LETTER_QUEUE = "DrainHookDeadLetterQueue"
INTAKE_QUEUE = "DrainHookIntakeQueue"
SAMPLE_CLUSTER_TUNABLES = Tunables()


def tunables_for(synth: Synth) -> Tunables:
    return SAMPLE_CLUSTER_TUNABLES if synth.stack_name == "EcsDrainHookSample" else ATTACH_TUNABLES


def timing_for(synth: Synth) -> HookTiming:
    return HookTiming.derive(tunables_for(synth))


def cluster_ref(synth: Synth) -> object:
    """How the template names the cluster: a literal (attach) or a Ref (sample cluster)."""
    if synth.stack_name == "EcsDrainHook":
        return CLUSTER
    (logical_id, _) = synth.one("AWS::ECS::Cluster")
    return {"Ref": logical_id}


def group_refs(synth: Synth) -> list[object]:
    if synth.stack_name == "EcsDrainHook":
        return list(GROUPS)
    (logical_id, _) = synth.one("AWS::AutoScaling::AutoScalingGroup")
    return [{"Ref": logical_id}]


def rule(synth: Synth, name: str) -> dict[str, Any]:
    (found,) = [
        r
        for k, r in synth.resources("AWS::Events::Rule").items()
        if k.startswith(f"DrainHookRules{name}")
    ]
    return found


def rendered(synth: Synth, value: Any) -> Any:
    """The value as CloudFormation would render it in a made-up account and Region."""
    refs = pseudo(synth.stack_name)
    if synth.stack_name == "EcsDrainHookSample":
        (cluster_id, _) = synth.one("AWS::ECS::Cluster")
        refs[cluster_id] = "sample-cluster"
        refs[f"{cluster_id}.Arn"] = "arn:aws:ecs:eu-west-1:111122223333:cluster/sample-cluster"
        (group_id, _) = synth.one("AWS::AutoScaling::AutoScalingGroup")
        refs[group_id] = "sample-asg"
    (intake_id, _) = synth.one("AWS::SQS::Queue", INTAKE_QUEUE)
    refs[intake_id] = f"https://sqs.eu-west-1.amazonaws.com/111122223333/{intake_id}"
    return evaluate(value, refs, synth.template.get("Mappings"))


def state_machine_name(synth: Synth) -> str:
    (_, sm) = synth.one("AWS::StepFunctions::StateMachine")
    return rendered(synth, sm["Properties"]["StateMachineName"])


# --- lifecycle hooks -----------------------------------------------------------------------


def test_one_terminating_hook_per_group(synth: Synth) -> None:
    hooks = synth.resources("AWS::AutoScaling::LifecycleHook")
    groups = group_refs(synth)
    assert sorted(json.dumps(h["Properties"]["AutoScalingGroupName"]) for h in hooks.values()) == (
        sorted(json.dumps(g) for g in groups)
    )
    heartbeat = timing_for(synth).heartbeat_timeout_seconds
    for hook in hooks.values():
        props = hook["Properties"]
        assert props["LifecycleHookName"] == "ecs-drain-hook"
        assert props["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
        assert props["DefaultResult"] == "CONTINUE"
        assert props["HeartbeatTimeout"] == heartbeat
        # No SNS/SQS target: the hook's events go through EventBridge.
        assert "NotificationTargetARN" not in props
        assert "RoleARN" not in props


def test_hook_metadata_names_the_cluster(attach: Synth, sample_cluster: Synth) -> None:
    for hook in attach.resources("AWS::AutoScaling::LifecycleHook").values():
        assert json.loads(hook["Properties"]["NotificationMetadata"]) == {"cluster": CLUSTER}
    (cluster_id, _) = sample_cluster.one("AWS::ECS::Cluster")
    (hook,) = sample_cluster.resources("AWS::AutoScaling::LifecycleHook").values()
    assert hook["Properties"]["NotificationMetadata"] == {
        "Fn::Join": ["", ['{"cluster":"', {"Ref": cluster_id}, '"}']]
    }


def test_heartbeat_fits_the_global_timeout_and_the_delivery_delay(synth: Synth) -> None:
    timing = timing_for(synth)
    (hook, *_) = synth.resources("AWS::AutoScaling::LifecycleHook").values()
    heartbeat = hook["Properties"]["HeartbeatTimeout"]
    assert 30 <= heartbeat <= 7200
    # Global timeout = min(48 h, 100 x heartbeat) must outlast the longest hold.
    max_drain = tunables_for(synth).max_drain_seconds
    assert min(48 * 3600, 100 * heartbeat) >= timing.hold_seconds > max_drain
    # The first heartbeat comes from the Lambda's first run, after the longest delivery.
    assert heartbeat > first_heartbeat_bound_seconds()


# --- EventBridge rules, targets, retry, DLQ ---------------------------------------------------


def test_lifecycle_rule_matches_only_these_groups_and_hook(synth: Synth) -> None:
    lifecycle = rule(synth, "LifecycleRule")
    assert lifecycle["Properties"]["State"] == "ENABLED"
    assert lifecycle["Properties"]["EventPattern"] == {
        "source": [contract.LIFECYCLE_SOURCE],
        "detail-type": [contract.LIFECYCLE_DETAIL_TYPE],
        "detail": {
            "AutoScalingGroupName": group_refs(synth),
            "LifecycleHookName": ["ecs-drain-hook"],
        },
    }


def test_task_stopped_rule_matches_stopped_ec2_tasks_of_the_cluster(synth: Synth) -> None:
    pattern = rendered(synth, rule(synth, "TaskStoppedRule")["Properties"]["EventPattern"])
    cluster_arn = pattern["detail"]["clusterArn"][0]
    assert pattern == {
        "source": [contract.ECS_SOURCE],
        "detail-type": [contract.TASK_DETAIL_TYPE],
        "detail": {
            "clusterArn": [cluster_arn],
            "lastStatus": [contract.TASK_STOPPED_STATUS],
            "containerInstanceArn": [{"exists": True}],
        },
    }
    assert cluster_arn.startswith("arn:aws:ecs:eu-west-1:111122223333:cluster/")
    event = {
        "source": "aws.ecs",
        "detail-type": contract.TASK_DETAIL_TYPE,
        "detail": {
            "clusterArn": cluster_arn,
            "containerInstanceArn": cluster_arn.replace(":cluster/", ":container-instance/")
            + "/0123456789abcdef",
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "launchType": "EC2",
        },
    }
    assert pattern_matches(pattern, event)
    # Run through a capacity provider strategy: no launchType, the instance still named.
    via_provider = {k: v for k, v in event["detail"].items() if k != "launchType"}
    assert pattern_matches(pattern, {**event, "detail": via_provider})
    for other in (
        {"lastStatus": "STOPPING"},
        {"clusterArn": cluster_arn + "-other"},
    ):
        assert not pattern_matches(pattern, {**event, "detail": {**event["detail"], **other}})
    fargate = {k: v for k, v in event["detail"].items() if k != "containerInstanceArn"}
    assert not pattern_matches(pattern, {**event, "detail": {**fargate, "launchType": "FARGATE"}})


def test_loop_end_rule_matches_bad_ends_of_this_state_machine(synth: Synth) -> None:
    pattern = rendered(synth, rule(synth, "LoopEndRule")["Properties"]["EventPattern"])
    arn = f"arn:aws:states:eu-west-1:111122223333:stateMachine:{state_machine_name(synth)}"
    assert pattern == {
        "source": [contract.STATES_SOURCE],
        "detail-type": [contract.EXECUTION_STATUS_DETAIL_TYPE],
        "detail": {"stateMachineArn": [arn], "status": list(contract.LOOP_BAD_ENDS)},
    }


def test_lifecycle_rule_pattern_matches_a_real_event(attach: Synth) -> None:
    from moto.events.models import EventPattern

    pattern = EventPattern.load(
        json.dumps(rule(attach, "LifecycleRule")["Properties"]["EventPattern"])
    )
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


@pytest.mark.parametrize(
    ("name", "delivery"),
    [
        ("LifecycleRule", LIFECYCLE_DELIVERY),
        ("TaskStoppedRule", TASK_STOPPED_DELIVERY),
        ("LoopEndRule", LOOP_END_DELIVERY),
    ],
)
def test_rules_target_the_function_with_retry_and_dlq(synth: Synth, name: str, delivery) -> None:
    (function_id, _) = synth.drain_function()
    (queue_id, _) = synth.one("AWS::SQS::Queue", DEAD_LETTER_QUEUE)
    (target,) = rule(synth, name)["Properties"]["Targets"]
    if name == "LifecycleRule":
        # Lifecycle events go to the intake queue, which paces the Lambda's first rounds.
        (intake_id, _) = synth.one("AWS::SQS::Queue", INTAKE_QUEUE)
        assert target["Arn"] == {"Fn::GetAtt": [intake_id, "Arn"]}
    else:
        assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {
        "MaximumEventAgeInSeconds": delivery.max_event_age_seconds,
        "MaximumRetryAttempts": delivery.retry_attempts,
    }
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    (rule_id,) = [
        k for k in synth.resources("AWS::Events::Rule") if k.startswith(f"DrainHookRules{name}")
    ]
    if name == "LifecycleRule":
        return  # the intake queue's policy lets the rule send (test_intake_queue_...)
    Template.from_json(synth.template).has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        },
    )


def test_delivery_figures_fit_the_heartbeat(synth: Synth) -> None:
    """Longest delivery (the rule's event age, then every receive of the intake queue but the
    last failing) plus one Lambda run < heartbeat, read from the template itself."""
    (_, fn) = synth.drain_function()
    (_, intake) = synth.one("AWS::SQS::Queue", INTAKE_QUEUE)
    lifecycle_age = rule(synth, "LifecycleRule")["Properties"]["Targets"][0]["RetryPolicy"][
        "MaximumEventAgeInSeconds"
    ]
    visibility = intake["Properties"]["VisibilityTimeout"]
    receives = intake["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    (hook, *_) = synth.resources("AWS::AutoScaling::LifecycleHook").values()
    timeout = fn["Properties"]["Timeout"]
    assert visibility >= timeout  # Lambda refuses an SQS source whose queue hides messages less
    assert (
        lifecycle_age + (receives - 1) * visibility + timeout
        < hook["Properties"]["HeartbeatTimeout"]
    )


def test_intake_queue_paces_first_rounds(synth: Synth) -> None:
    """EventBridge -> intake queue -> the drain Lambda, one event per run, at most
    INTAKE_MAX_CONCURRENCY runs; a failed run's record goes back and, after
    INTAKE_MAX_RECEIVE_COUNT receives, to the dead-letter queue."""
    (function_id, _) = synth.drain_function()
    (intake_id, intake) = synth.one("AWS::SQS::Queue", INTAKE_QUEUE)
    (dlq_id, _) = synth.one("AWS::SQS::Queue", DEAD_LETTER_QUEUE)
    props = intake["Properties"]
    assert props["SqsManagedSseEnabled"] is True
    assert props["VisibilityTimeout"] == INTAKE_VISIBILITY_TIMEOUT_SECONDS
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": INTAKE_MAX_RECEIVE_COUNT,
    }
    (_, mapping) = synth.one("AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"] == {
        "BatchSize": INTAKE_BATCH_SIZE,
        "EventSourceArn": {"Fn::GetAtt": [intake_id, "Arn"]},
        "FunctionName": {"Ref": function_id},
        "ScalingConfig": {"MaximumConcurrency": INTAKE_MAX_CONCURRENCY},
    }
    (_, policy) = synth.one("AWS::SQS::QueuePolicy", INTAKE_QUEUE)
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Effect"] for s in statements] == ["Deny", "Allow"]  # TLS only; the rule sends
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]
    (rule_id,) = [
        k for k in synth.resources("AWS::Events::Rule") if k.startswith("DrainHookRulesLifecycle")
    ]
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}


def test_dead_letter_queue_is_encrypted_and_ssl_only(synth: Synth) -> None:
    (queue_id, queue) = synth.one("AWS::SQS::Queue", DEAD_LETTER_QUEUE)
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    (_, policy) = synth.one("AWS::SQS::QueuePolicy", DEAD_LETTER_QUEUE)
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
    allows = [s for s in statements if s["Effect"] == "Allow"]
    rule_ids = sorted(synth.resources("AWS::Events::Rule"))
    # Every rule: lifecycle, task stopped, loop end, Spot interruption, the sweep's schedule.
    assert len(allows) == len(rule_ids) == 5
    for allow in allows:
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Action"] == "sqs:SendMessage"
    sources = sorted(a["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for a in allows)
    assert sources == rule_ids


def test_failed_async_invokes_land_in_the_dlq(synth: Synth) -> None:
    (queue_id, _) = synth.one("AWS::SQS::Queue", DEAD_LETTER_QUEUE)
    (_, config) = synth.one("AWS::Lambda::EventInvokeConfig")
    assert config["Properties"]["MaximumRetryAttempts"] == LAMBDA_ASYNC_RETRY_ATTEMPTS == 2
    assert config["Properties"]["MaximumEventAgeInSeconds"] == LAMBDA_ASYNC_MAX_EVENT_AGE_SECONDS
    assert config["Properties"]["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}
    }


# --- Lambda ---------------------------------------------------------------------------------


def test_function_settings(synth: Synth) -> None:
    (_, fn) = synth.drain_function()
    props = fn["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "drain_hook.handler.lambda_handler"
    assert props["Timeout"] == LAMBDA_TIMEOUT_SECONDS
    # One default for tracing: Tunables.tracing_enabled (false); no TracingConfig when off.
    assert Tunables().tracing_enabled is False
    assert "TracingConfig" not in props
    (log_group_id,) = [
        k for k in synth.resources("AWS::Logs::LogGroup") if k.startswith("DrainHookDrainLogGroup")
    ]
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}
    # Code from the package's runtime folder as a file asset: no Docker bundling.
    assert "S3Key" in props["Code"] and props["Code"]["S3Key"].endswith(".zip")


def test_function_code_asset_holds_only_the_lambda_code(synth: Synth) -> None:
    assets = json.loads((synth.outdir / f"{synth.stack_name}.assets.json").read_text())
    (_, fn) = synth.drain_function()
    lambda_asset = assets["files"][fn["Properties"]["Code"]["S3Key"].removesuffix(".zip")]
    assert lambda_asset["source"]["packaging"] == "zip"
    folder = synth.outdir / lambda_asset["source"]["path"]
    assert (folder / "drain_hook" / "handler.py").is_file()
    assert sorted(p.name for p in folder.iterdir()) == ["drain_hook"]
    for path in folder.rglob("*"):
        assert "__pycache__" not in path.parts and path.suffix != ".pyc", path
        assert not {"tests", ".pytest_cache", ".ruff_cache"} & set(path.parts), path


def test_powertools_layer_resolved_from_public_ssm_at_deploy(synth: Synth) -> None:
    (_, fn) = synth.drain_function()
    assert fn["Properties"]["Layers"] == [f"{{{{resolve:ssm:{parameter_name()}}}}}"]
    assert parameter_name() == "/aws/service/powertools/python/arm64/python3.13/3.37.0"
    # Environment-agnostic: a Rule refuses Regions without the parameter, naming the context key.
    ((_, region_rule),) = [
        (k, r) for k, r in synth.template["Rules"].items() if k.startswith("PowertoolsLayer")
    ]
    (assertion,) = region_rule["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Contains": [list(PUBLISHED_REGIONS), {"Ref": "AWS::Region"}]
    }
    assert "powertools_layer_arn" in assertion["AssertDescription"]
    assert "cn-north-1" not in PUBLISHED_REGIONS and "us-gov-west-1" not in PUBLISHED_REGIONS


def test_function_environment(synth: Synth) -> None:
    (_, fn) = synth.drain_function()
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["CLUSTER_NAME"] == cluster_ref(synth)
    assert rendered(synth, env["STATE_MACHINE_ARN"]) == (
        f"arn:aws:states:eu-west-1:111122223333:stateMachine:{state_machine_name(synth)}"
    )
    assert env["POWERTOOLS_SERVICE_NAME"] == contract.SERVICE_NAME
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == contract.METRICS_NAMESPACE
    # The sweep and the Spot notices: the hooked groups, our hook, the intake queue.
    groups = GROUPS if synth.stack_name == "EcsDrainHook" else ["sample-asg"]
    assert json.loads(rendered(synth, env["HOOKED_GROUPS"])) == list(groups)
    assert env["HOOK_NAME"] == "ecs-drain-hook"
    (intake_id, _) = synth.one("AWS::SQS::Queue", INTAKE_QUEUE)
    assert env["INTAKE_QUEUE_URL"] == {"Ref": intake_id}
    wiring = {"CLUSTER_NAME", "STATE_MACHINE_ARN", "HOOKED_GROUPS", "HOOK_NAME", "INTAKE_QUEUE_URL"}
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
    tunables = {k: v for k, v in env.items() if k not in wiring | powertools}
    assert tunables == tunables_for(synth).environ()
    assert env["MAX_DRAIN_SECONDS"] == str(tunables_for(synth).max_drain_seconds)
    assert env["TRACING_ENABLED"] == "false"


def test_function_env_is_what_the_lambda_reads(synth: Synth) -> None:
    """The Lambda's own settings reader accepts the environment the construct writes."""
    from drain_hook.settings import Settings

    (_, fn) = synth.drain_function()
    env = {
        k: str(rendered(synth, v)) for k, v in fn["Properties"]["Environment"]["Variables"].items()
    }
    settings = Settings.from_environ(env)
    assert settings.max_drain_seconds == tunables_for(synth).max_drain_seconds
    assert settings.state_machine_arn.endswith(state_machine_name(synth))
    assert settings.groups and settings.hook_name and settings.intake_queue_url


def test_reserved_concurrency_only_when_asked(attach: Synth, sample_cluster: Synth) -> None:
    (_, fn) = attach.drain_function()
    assert fn["Properties"]["ReservedConcurrentExecutions"] == 5
    (_, fn) = sample_cluster.drain_function()
    assert "ReservedConcurrentExecutions" not in fn["Properties"]

    def warnings(synth: Synth) -> list[str]:
        entries = [e for found in synth.metadata.values() for e in found]
        return [str(e["data"]) for e in entries if e["type"] == "aws:cdk:warning"]

    # Asked for, it is warned about: it throttles ECS events and polls, and at 5 (no more than
    # the intake queue's maximum concurrency) the intake queue's own runs.
    [warned] = [w for w in warnings(attach) if RESERVED_CONCURRENCY_WARNING_ID in w]
    assert "reserved_concurrency=5" in warned and "given up" in warned
    assert f"below {INTAKE_MAX_CONCURRENCY + 1} the intake queue's own runs" in warned
    assert not [w for w in warnings(sample_cluster) if RESERVED_CONCURRENCY_WARNING_ID in w]


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
    source = json.loads(asl_path().read_text())
    assert definition.pop("TimeoutSeconds") == timing_for(synth).execution_timeout_seconds
    assert definition == source
    assert definition["States"]["PollDrain"]["Parameters"]["FunctionName"] == "${DrainFunctionArn}"
    (function_id, _) = synth.drain_function()
    # The integrations' ARNs name the stack's partition (China, GovCloud), never a literal one.
    assert props["DefinitionSubstitutions"] == {
        contract.FUNCTION_ARN_SUBSTITUTION: {"Fn::GetAtt": [function_id, "Arn"]},
        **{
            name: {
                "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":states:::{integration}"]]
            }
            for name, integration in contract.INTEGRATION_SUBSTITUTIONS.items()
        },
    }


def test_execution_timeout_just_above_max_drain(synth: Synth) -> None:
    max_drain = tunables_for(synth).max_drain_seconds
    (_, sm) = synth.one("AWS::StepFunctions::StateMachine")
    timeout = json.loads(sm["Properties"]["DefinitionString"])["TimeoutSeconds"]
    assert max_drain < timeout <= max_drain + 3600


def test_state_machine_logging_and_tracing(synth: Synth) -> None:
    (_, sm) = synth.one("AWS::StepFunctions::StateMachine")
    props = sm["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": False}  # follows tracing_enabled
    (destination,) = props["LoggingConfiguration"]["Destinations"]
    log_group_arn = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]
    (log_group_id, _) = log_group_arn["Fn::GetAtt"]
    log_group = synth.template["Resources"][log_group_id]
    name = rendered(synth, log_group["Properties"]["LogGroupName"])
    assert name.startswith("/aws/vendedlogs/states/") and name.endswith(STACK_UUID)
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True


def test_state_machine_name_is_valid_and_unique_per_stack_instance(synth: Synth) -> None:
    name = state_machine_name(synth)
    assert 1 <= len(name) <= 80
    assert name.startswith(synth.stack_name)
    assert name.endswith(STACK_UUID)


def test_no_dependency_cycle_and_no_custom_resources_of_ours(synth: Synth) -> None:
    for logical_id, resource in synth.template["Resources"].items():
        if logical_id.startswith("DrainHook"):
            kind = resource["Type"]
            assert not kind.startswith("Custom::") and kind != "AWS::CloudFormation::CustomResource"
    # The Lambda learns the state machine ARN by name, not by Ref/GetAtt.
    (sm_id, _) = synth.one("AWS::StepFunctions::StateMachine")
    (_, fn) = synth.drain_function()
    assert sm_id not in json.dumps(fn)


# --- alarms, dashboard and outputs ------------------------------------------------------------


def _alarms(synth: Synth) -> dict[str, dict]:
    alarms = synth.resources("AWS::CloudWatch::Alarm")
    return {k: v["Properties"] for k, v in alarms.items() if k.startswith("DrainHookAlarms")}


ALARMS = [
    ("ExecutionsFailed", "AWS/States", "ExecutionsFailed"),
    ("ExecutionsTimedOut", "AWS/States", "ExecutionsTimedOut"),
    ("ExecutionsAborted", "AWS/States", "ExecutionsAborted"),
    ("FunctionErrors", "AWS/Lambda", "Errors"),
    ("FunctionThrottles", "AWS/Lambda", "Throttles"),
    ("DeadLetters", "AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    ("IntakeBacklog", "AWS/SQS", "ApproximateAgeOfOldestMessage"),
    *((name, contract.METRICS_NAMESPACE, name) for name in contract.ALARMED_METRICS),
]


@pytest.mark.parametrize(("name", "namespace", "metric"), ALARMS)
def test_alarm(synth: Synth, name: str, namespace: str, metric: str) -> None:
    (alarm,) = [v for k, v in _alarms(synth).items() if k.startswith(f"DrainHookAlarms{name}")]
    assert alarm["Namespace"] == namespace
    assert alarm["MetricName"] == metric
    assert alarm["Threshold"] == (INTAKE_AGE_ALARM_SECONDS if name == "IntakeBacklog" else 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    if namespace == contract.METRICS_NAMESPACE:
        assert alarm["Dimensions"] == [{"Name": "service", "Value": contract.SERVICE_NAME}]
        assert alarm["Statistic"] == "Sum"
    if synth.stack_name == "EcsDrainHook":
        assert alarm["AlarmActions"] == [TOPIC_ARN]
    else:
        assert "AlarmActions" not in alarm


# Alarms with tests of their own (tests/infra/test_stuck_drain_alarm.py).
OTHER_ALARMS = ("StuckDrain",)


def test_every_alarm_is_listed(synth: Synth) -> None:
    assert len(_alarms(synth)) == len(ALARMS) + len(OTHER_ALARMS)
    assert contract.METRIC_LOOP_END_RELEASES in contract.ALARMED_METRICS


def test_dashboard_shows_drains_loop_lambda_and_dead_letters(synth: Synth) -> None:
    (dashboard_id, dashboard) = synth.one("AWS::CloudWatch::Dashboard")
    assert "DashboardName" not in dashboard["Properties"]  # generated: never collides
    body = json.loads(rendered(synth, dashboard["Properties"]["DashboardBody"]))
    text = json.dumps(body)
    for metric in (
        contract.METRIC_DRAINS_STARTED,
        contract.METRIC_DRAINS_COMPLETED,
        contract.METRIC_DRAINS_FORCED,
        contract.METRIC_DRAINS_AGENT_LOST,
        contract.METRIC_LOOP_END_RELEASES,
        contract.METRIC_TASKS_REMAINING,
        "ExecutionsStarted",
        "ExecutionsFailed",
        "Errors",
        "Throttles",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
    ):
        assert f'"{metric}"' in text, metric
    assert "RUNNING_SUM" in text  # running executions: AWS/States has no such metric
    assert contract.METRICS_NAMESPACE in text
    url = rendered(synth, synth.template["Outputs"]["DashboardUrl"]["Value"])
    assert url == (
        "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        f"#dashboards:name=<{dashboard_id}>"
    )


def test_outputs(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    (function_id, _) = synth.drain_function()
    (sm_id, _) = synth.one("AWS::StepFunctions::StateMachine")
    assert outputs["FunctionName"]["Value"] == {"Ref": function_id}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": sm_id}
    (intake_id, _) = synth.one("AWS::SQS::Queue", INTAKE_QUEUE)
    assert outputs["IntakeQueueUrl"]["Value"] == {"Ref": intake_id}
    assert "DashboardUrl" in outputs
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
    template.resource_count_is("AWS::Events::Rule", 5)
    template.resource_count_is("AWS::CloudWatch::Alarm", len(ALARMS) + len(OTHER_ALARMS))
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
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
