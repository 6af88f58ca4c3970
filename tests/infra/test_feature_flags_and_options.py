"""cdk.json carries the recommended feature flags of the pinned aws-cdk-lib (what `cdk init`
writes), and the app synthesizes clean under them with every option switched on."""

from __future__ import annotations

import json
import tarfile
from importlib import metadata, resources
from typing import Any

import pytest

from tests.infra.conftest import REPO, Synth, cdk_json_context, synthesize

LAYER_ARN = "arn:aws:lambda:eu-west-1:111122223333:layer:Powertools:3"


def recommended_flags() -> dict[str, Any]:
    """aws-cdk-lib's recommended-feature-flags.json, read from the installed jsii bundle."""
    version = metadata.version("aws-cdk-lib")
    bundle = resources.files("aws_cdk") / "_jsii" / f"aws-cdk-lib@{version}.jsii.tgz"
    with tarfile.open(str(bundle)) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        return json.load(member)


def test_aws_cdk_lib_is_the_pinned_one() -> None:
    pinned = [
        line.split("==")[1].strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.startswith("aws-cdk-lib==")
    ]
    assert pinned == [metadata.version("aws-cdk-lib")]


def test_cdk_json_has_exactly_the_recommended_flags() -> None:
    flags = recommended_flags()
    assert len(flags) > 80
    assert cdk_json_context() == flags


def test_cdk_json_runs_the_app() -> None:
    config = json.loads((REPO / "cdk.json").read_text())
    assert config["app"] == "python3 app.py"


# --- every option on, under the same flags ------------------------------------------------------


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(
        {
            "cluster_name": "prod",
            "asg_names": "a",
            "managed_draining": "enabled",
            "tracing_enabled": "true",
            "heartbeat_timeout_seconds": "1800",
            "powertools_layer_arn": LAYER_ARN,
            "log_level": "DEBUG",
        },
        tmp_path_factory.mktemp("options"),
    )


def _warnings(synth: Synth) -> list[str]:
    return [
        json.dumps(entry["data"])
        for entries in synth.metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:warning"
    ]


@pytest.mark.synth
def test_declared_managed_draining_warns(options: Synth) -> None:
    (warning,) = _warnings(options)
    assert "ecs-managed-draining-termination-hook" in warning


@pytest.mark.synth
def test_tracing_turns_x_ray_on_for_the_lambda_and_the_loop(options: Synth) -> None:
    (_, fn) = options.drain_function()
    assert fn["Properties"]["TracingConfig"] == {"Mode": "Active"}
    assert fn["Properties"]["Environment"]["Variables"]["TRACING_ENABLED"] == "true"
    (_, sm) = options.one("AWS::StepFunctions::StateMachine")
    assert sm["Properties"]["TracingConfiguration"] == {"Enabled": True}
    actions = {
        action
        for policy in options.resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} <= actions


@pytest.mark.synth
def test_explicit_heartbeat_and_layer(options: Synth) -> None:
    (hook,) = options.resources("AWS::AutoScaling::LifecycleHook").values()
    assert hook["Properties"]["HeartbeatTimeout"] == 1800
    (_, fn) = options.drain_function()
    assert fn["Properties"]["Layers"] == [LAYER_ARN]
    assert fn["Properties"]["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert not [k for k in options.template.get("Rules", {}) if k.startswith("PowertoolsLayer")]


@pytest.mark.synth
def test_options_stay_nag_and_lint_clean(options: Synth) -> None:
    from tests.infra.test_nag_and_lint import lint_findings, validation_findings

    expected = ("Annotation::ecs-drain-hook:managedDraining",)
    assert validation_findings(options, allow=expected) == []
    assert lint_findings(options.template_path) == []
