"""The stack's EventBridge rules against AWS's own sample events, with a matcher we did not write.

The samples in events/aws-samples/ are the examples of the AWS guides (sources and the one
adaptation: events/README.md). The stack is synthesized with the names the samples use (cluster
FargateCluster, group my-asg, hook my-lifecycle-hook), so they match without edits; only the
Step Functions samples get this stack's state machine ARN, which no -c key sets. Each rule's
pattern is resolved as CloudFormation would in the account and Region of the event (a rule only
sees its own bus's events), then matched by moto's EventBridge pattern matcher; the sandbox's
matcher (local_aws/events.py) must agree on every row.

moto's matcher knows every operator the rules use (plain values and exists): no row needs the
sandbox's matcher in its place.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from ecs_drain_hook import contract
from local_aws.events import pattern_matches
from tests.infra.cfn_eval import STACK_UUID, evaluate, pseudo
from tests.infra.conftest import REPO, Synth, synthesize

pytestmark = pytest.mark.synth

SAMPLES = REPO / "events" / "aws-samples"
# The names in the samples, used as the stack's own.
CONTEXT = {
    "cluster_name": "FargateCluster",
    "asg_names": "my-asg",
    "hook_name": "my-lifecycle-hook",
}

# Each rule is named by the one detail-type it matches.
LIFECYCLE = contract.LIFECYCLE_DETAIL_TYPE
TASK = contract.TASK_DETAIL_TYPE
LOOP_END = contract.EXECUTION_STATUS_DETAIL_TYPE
SPOT = contract.SPOT_DETAIL_TYPE


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(CONTEXT, tmp_path_factory.mktemp("aws-samples"))


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return event


def state_machine_arn(stack: Synth, event: dict[str, Any]) -> str:
    (_, machine) = stack.one("AWS::StepFunctions::StateMachine")
    refs = refs_for(stack, event)
    name = evaluate(machine["Properties"]["StateMachineName"], refs)
    return f"arn:aws:states:{event['region']}:{event['account']}:stateMachine:{name}"


def refs_for(stack: Synth, event: dict[str, Any]) -> dict[str, str]:
    """CloudFormation's pseudo parameters for this stack deployed where the event happens."""
    region, account = event["region"], event["account"]
    return {
        **pseudo(stack.stack_name),
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::StackId": (
            f"arn:aws:cloudformation:{region}:{account}:stack/{stack.stack_name}/{STACK_UUID}"
        ),
    }


def ours(stack: Synth, event: dict[str, Any]) -> dict[str, Any]:
    """A Step Functions sample of this stack's state machine (the only substitution)."""
    event = copy.deepcopy(event)
    event["detail"]["stateMachineArn"] = state_machine_arn(stack, event)
    return event


def rules_matching(stack: Synth, event: dict[str, Any]) -> set[str]:
    """The detail-type each matching rule is written for (one rule per detail-type)."""
    matched = set()
    for logical_id, rule in stack.resources("AWS::Events::Rule").items():
        if "EventPattern" not in rule["Properties"]:
            continue  # the sweep's schedule: no event matches it
        pattern = evaluate(rule["Properties"]["EventPattern"], refs_for(stack, event))
        by_moto = EventPattern.load(json.dumps(pattern)).matches_event(event)
        assert by_moto == pattern_matches(pattern, event), (
            f"moto's matcher and the sandbox's disagree on {logical_id}: {pattern}"
        )
        if by_moto:
            (detail_type,) = pattern["detail-type"]
            matched.add(detail_type)
    return matched


def test_one_rule_per_event_the_lambda_takes(stack: Synth) -> None:
    rules = stack.resources("AWS::Events::Rule").values()
    detail_types = [
        rule["Properties"]["EventPattern"]["detail-type"]
        for rule in rules
        if "EventPattern" in rule["Properties"]
    ]
    assert sorted(detail_types) == sorted([[LIFECYCLE], [TASK], [LOOP_END], [SPOT]])
    # And one schedule: the sweep for lost lifecycle events.
    schedules = [
        r["Properties"]["ScheduleExpression"]
        for r in rules
        if "EventPattern" not in r["Properties"]
    ]
    assert schedules == ["rate(2 minutes)"]


# (sample, the rules that must match it: by their detail-type). Samples used as published.
VERBATIM = [
    ("autoscaling-ec2-instance-terminate-lifecycle-action.json", {LIFECYCLE}),
    # A container instance event wakes nothing: the task rule replaced that rule.
    ("ecs-container-instance-state-change.json", set()),
    # A Fargate task, RUNNING, in the stack's cluster.
    ("ecs-task-state-change.json", set()),
    # Any Spot instance's: the Lambda tells the hooked groups' instances apart.
    ("ec2-spot-instance-interruption-warning.json", {SPOT}),
]
# Samples adapted from a published one (events/README.md says how).
ADAPTED = [("ecs-task-state-change-stopped-ec2.json", {TASK})]


@pytest.mark.parametrize(("name", "expected"), VERBATIM + ADAPTED)
def test_ecs_and_auto_scaling_samples(stack: Synth, name: str, expected: set[str]) -> None:
    assert rules_matching(stack, sample(name)) == expected


def test_a_task_stopped_in_another_cluster_wakes_nothing(stack: Synth) -> None:
    event = sample("ecs-task-state-change-stopped-ec2.json")
    event["detail"]["clusterArn"] = event["detail"]["clusterArn"].replace(
        "cluster/FargateCluster", "cluster/other"
    )
    assert rules_matching(stack, event) == set()


def test_a_fargate_task_stopped_in_the_cluster_wakes_nothing(stack: Synth) -> None:
    """No container instance to drain: the published Fargate sample, stopped."""
    event = sample("ecs-task-state-change.json")
    event["detail"]["lastStatus"] = event["detail"]["desiredStatus"] = "STOPPED"
    assert "containerInstanceArn" not in event["detail"]
    assert rules_matching(stack, event) == set()


# Step Functions samples, as published but for the state machine's ARN: this stack's.
STEP_FUNCTIONS = [
    ("sfn-execution-status-change-failed.json", {LOOP_END}),
    ("sfn-execution-status-change-timed-out.json", {LOOP_END}),
    ("sfn-execution-status-change-aborted.json", {LOOP_END}),
    ("sfn-execution-status-change-succeeded.json", set()),
    ("sfn-execution-status-change-running.json", set()),
]


def test_every_sample_is_checked() -> None:
    checked = {name for name, _ in VERBATIM + ADAPTED + STEP_FUNCTIONS}
    assert {p.name for p in SAMPLES.glob("*.json")} == checked


@pytest.mark.parametrize(("name", "expected"), STEP_FUNCTIONS)
def test_step_functions_samples_of_our_loop(stack: Synth, name: str, expected: set[str]) -> None:
    assert rules_matching(stack, ours(stack, sample(name))) == expected


def test_another_state_machine_ending_badly_wakes_nothing(stack: Synth) -> None:
    """The published FAILED sample as is: its state machine is not ours."""
    assert rules_matching(stack, sample("sfn-execution-status-change-failed.json")) == set()


def test_the_readme_names_each_sample_and_its_page() -> None:
    readme = (REPO / "events" / "README.md").read_text()
    for path in SAMPLES.glob("*.json"):
        (row,) = [line for line in readme.splitlines() if f"aws-samples/{path.name}" in line]
        assert "https://docs.aws.amazon.com/" in row, row
