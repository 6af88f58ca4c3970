"""Synthesize each mode once per session: synth is slow (jsii + Node), assertions are cheap.

Every synth runs under cdk.json's context: the recommended feature flags of the pinned
aws-cdk-lib, as `cdk synth` would. Tests that synthesize are marked `synth` (here, from the
fixtures they use, or explicitly), so `make test-fast` can leave them out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "prod-cluster"
GROUPS = ("prod-asg-a", "prod-asg-b")
TOPIC_ARN = "arn:aws:sns:eu-west-1:111122223333:ops-alarms"


SYNTH_FIXTURES = {"attach", "sample_cluster", "synth"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents and SYNTH_FIXTURES & set(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.synth)


def cdk_json_context() -> dict[str, Any]:
    """The feature flags `cdk synth` would pass, so tests synthesize what the CLI does."""
    return dict(json.loads((REPO / "cdk.json").read_text())["context"])


@dataclass(frozen=True)
class Synth:
    outdir: Path
    stack_name: str
    template: dict[str, Any]
    metadata: dict[str, list[dict[str, Any]]]

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack_name}.template.json"

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def one(self, type_: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
        found = {k: v for k, v in self.resources(type_).items() if k.startswith(prefix)}
        assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
        return next(iter(found.items()))

    def drain_function(self) -> tuple[str, dict[str, Any]]:
        """The drain Lambda (the sample cluster has aws-cdk-lib's default-SG handler too)."""
        return self.one("AWS::Lambda::Function", "DrainHookDrainFunction")


def synthesize(context: Mapping[str, Any], outdir: Path) -> Synth:
    from infra.app import build_app

    app = build_app({**cdk_json_context(), **context}, outdir=str(outdir))
    assembly = app.synth()
    (stack,) = assembly.stacks
    metadata = json.loads((outdir / f"{stack.stack_name}.metadata.json").read_text())
    return Synth(outdir, stack.stack_name, stack.template, metadata)


@pytest.fixture(scope="session")
def attach(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(
        {
            "cluster_name": CLUSTER,
            "asg_names": ",".join(GROUPS),
            "alarm_topic_arn": TOPIC_ARN,
            "max_drain_seconds": "14400",
            "reserved_concurrency": "5",
        },
        tmp_path_factory.mktemp("attach"),
    )


@pytest.fixture(scope="session")
def sample_cluster(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize({"sample_cluster": "true"}, tmp_path_factory.mktemp("sample_cluster"))


@pytest.fixture(scope="session", params=["attach", "sample_cluster"])
def synth(request: pytest.FixtureRequest) -> Synth:
    """Both modes, for properties every deployment must have."""
    return request.getfixturevalue(request.param)
