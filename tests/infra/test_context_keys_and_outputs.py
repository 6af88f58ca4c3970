"""The app's context keys (unknown ones refused, the old demo key renamed, no key: no stack) and
the construct's opt-in outputs, as the ecs-drain-hook command finds them."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions

from ecs_drain_hook import EcsDrainHook, Tunables
from ecs_drain_hook.cli.aws import CliError, stack_output
from ecs_drain_hook.stack_names import (
    OUTPUT_DASHBOARD_URL,
    OUTPUT_DEAD_LETTER_QUEUE_URL,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_INTAKE_QUEUE_URL,
    OUTPUT_STATE_MACHINE_ARN,
)
from infra.app import PICK_A_MODE, build_app, stacks_of
from infra.config import (
    RENAMED_KEYS,
    AppConfig,
    ContextError,
    check_keys,
    known_keys,
    sets_any_key,
)
from tests.infra.conftest import REPO, Synth, cdk_json_context
from tests.infra.small_stacks import imported, new_stack

CONSTRUCT_OUTPUTS = (
    OUTPUT_FUNCTION_NAME,
    OUTPUT_STATE_MACHINE_ARN,
    OUTPUT_INTAKE_QUEUE_URL,
    OUTPUT_DEAD_LETTER_QUEUE_URL,
    OUTPUT_DASHBOARD_URL,
)

# --- unknown and renamed keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "nearest"),
    [
        ("max_drain_second", "max_drain_seconds"),
        ("cluster", "cluster_name"),
        ("asg_name", "asg_names"),
        ("sample-cluster", "sample_cluster"),
        ("alarm_topic", "alarm_topic_arn"),
    ],
)
def test_an_unknown_key_stops_naming_the_nearest(key: str, nearest: str) -> None:
    with pytest.raises(ContextError, match=f"-c {key}: did you mean {nearest}\\?"):
        check_keys(["cluster_name", "asg_names", key])


def test_a_key_like_none_lists_them_all() -> None:
    with pytest.raises(ContextError, match="the keys: sample_cluster, cluster_name"):
        check_keys(["zzz"])


def test_the_demo_key_is_refused_naming_sample_cluster() -> None:
    assert RENAMED_KEYS == {"demo": "-c sample_cluster=true"}
    with pytest.raises(ContextError, match="-c demo is now -c sample_cluster=true"):
        check_keys(["demo"])
    with pytest.raises(ContextError, match="-c demo is now -c sample_cluster=true"):
        AppConfig.from_context({"demo": "true"}.get)


def test_cdk_keys_pass() -> None:
    check_keys(
        [
            *cdk_json_context(),
            # What the CDK CLI passes, and lookups cdk.context.json caches.
            "aws:cdk:enable-path-metadata",
            "aws:cdk:bundling-stacks",
            "availability-zones:account=111122223333:region=eu-west-1",
            "acknowledged-issue-numbers",
            "aws-cdk:enableDiffNoFail",
            "@aws-cdk/core:newStyleStackSynthesis",
        ]
    )


def test_every_tunable_and_setting_is_a_known_key() -> None:
    check_keys(known_keys())
    assert {spec.name for spec in fields(Tunables)} <= set(known_keys())


def recorded_reads(context: dict[str, Any]) -> set[str]:
    read: set[str] = set()

    def get(key: str) -> Any:
        read.add(key)
        return context.get(key)

    AppConfig.from_context(get)
    return read


def test_the_known_keys_are_the_keys_the_app_reads() -> None:
    """known_keys() is what check_keys lets through: every key from_context reads, no other."""
    read = recorded_reads({"cluster_name": "p", "asg_names": "a"}) | recorded_reads(
        {"sample_cluster": "true"}
    )
    assert read - set(RENAMED_KEYS) == set(known_keys())


def test_build_app_refuses_a_misspelled_key() -> None:
    context = {**cdk_json_context(), "cluster_name": "p", "asg_names": "a"}
    with pytest.raises(ContextError, match="did you mean max_drain_seconds"):
        build_app({**context, "max_drain_second": "1"})


# --- no mode: no stack ------------------------------------------------------------------------


def test_no_key_of_the_app_builds_no_stack(tmp_path) -> None:
    assert not sets_any_key(cdk_json_context().get)
    app = build_app(cdk_json_context(), outdir=str(tmp_path))
    assert stacks_of(app) == []
    assert app.synth().stacks == []


def test_a_setting_without_a_mode_names_the_mode_keys() -> None:
    context = {**cdk_json_context(), "max_drain_seconds": "3600"}
    with pytest.raises(ContextError, match="-c cluster_name, -c asg_names"):
        build_app(context)


@pytest.mark.synth
def test_app_py_without_keys_says_how_to_pick_a_mode(tmp_path) -> None:
    """What `cdk synth` (or `cdk ls`) runs with no -c key: exit 0, no stack, the guidance."""
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path)}
    env.pop("CDK_CONTEXT_JSON", None)
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert PICK_A_MODE in result.stderr
    assert "-c sample_cluster=true" in PICK_A_MODE and "-c cluster_name=" in PICK_A_MODE
    assert not list(tmp_path.glob("*.template.json"))


# --- outputs ----------------------------------------------------------------------------------


def hook_stack(*, outputs: bool) -> tuple[cdk.Stack, EcsDrainHook]:
    _, stack = new_stack("eu-west-1")
    cluster, groups = imported(stack, "prod-asg")
    hook = EcsDrainHook(
        stack, "Drains", cluster=cluster, auto_scaling_groups=groups, outputs=outputs
    )
    return stack, hook


def test_outputs_are_opt_in() -> None:
    stack, hook = hook_stack(outputs=False)
    assert hook.outputs == {}
    assert assertions.Template.from_stack(stack).find_outputs("*") == {}


def test_outputs_name_what_the_command_and_the_runbook_need() -> None:
    stack, hook = hook_stack(outputs=True)
    assert set(hook.outputs) == set(CONSTRUCT_OUTPUTS)
    found = assertions.Template.from_stack(stack).find_outputs("*")
    resolved = {key: stack.resolve(output["Value"]) for key, output in found.items()}
    # In a stack of one's own the key carries the construct's path and a hash: the command
    # finds each output under it.
    values = {name: stack_output(resolved, name, "Small") for name in CONSTRUCT_OUTPUTS}
    assert values[OUTPUT_FUNCTION_NAME] == stack.resolve(hook.function.function_name)
    assert values[OUTPUT_STATE_MACHINE_ARN] == stack.resolve(hook.state_machine.state_machine_arn)
    assert values[OUTPUT_INTAKE_QUEUE_URL] == stack.resolve(hook.intake_queue.queue_url)
    assert values[OUTPUT_DEAD_LETTER_QUEUE_URL] == stack.resolve(hook.dead_letter_queue.queue_url)
    assert values[OUTPUT_DASHBOARD_URL] == stack.resolve(hook.dashboard_url)


def test_two_hooks_in_one_stack_ask_for_the_names() -> None:
    outputs = {"AFunctionName1234ABCD": "a", "BFunctionName5678ABCD": "b"}
    with pytest.raises(CliError, match="2 drain hooks"):
        stack_output(outputs, OUTPUT_FUNCTION_NAME, "Two")
    assert stack_output({"FunctionName": "own"}, OUTPUT_FUNCTION_NAME, "Repo") == "own"
    assert stack_output({}, OUTPUT_FUNCTION_NAME, "None") is None


def test_the_repository_stacks_keep_short_output_keys(synth: Synth) -> None:
    assert set(CONSTRUCT_OUTPUTS) <= set(synth.template["Outputs"])
