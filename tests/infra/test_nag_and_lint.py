"""cdk-nag AwsSolutions (zero unacknowledged findings) and cfn-lint (no errors, no warnings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint, lint_file

from ecs_drain_hook import RESERVED_CONCURRENCY_WARNING_ID
from tests.infra.conftest import Synth

REGIONS = ["us-east-1", "eu-west-1"]


def validation_findings(synth: Synth, allow: tuple[str, ...] = ()) -> list[Any]:
    """Violations of every validation plugin (cdk-nag; CloudFormation Validate and construct
    annotations under the recommended flags), but for the rule names in `allow`."""
    report_path = synth.outdir / "validation-report.json"
    if not report_path.exists():
        return []
    report = json.loads(report_path.read_text())
    return [
        (plugin.get("pluginName"), violation)
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        if violation["ruleName"] not in allow
    ]


def test_validation_reports_no_unacknowledged_finding(synth: Synth) -> None:
    # build_app adds AwsSolutionsChecks: a finding would have failed the fixture's synth. The
    # attach fixture asks for reserved concurrency, which the construct warns about on purpose.
    asked = ("Annotation::" + RESERVED_CONCURRENCY_WARNING_ID,)
    assert validation_findings(synth, allow=asked) == []


def test_acknowledgements_are_scoped_to_resources_and_give_reasons(synth: Synth) -> None:
    found = 0
    for path, entries in synth.metadata.items():
        for entry in entries:
            if entry["type"] != "aws:cdk:acknowledged-rules":
                continue
            for rule, reason in entry["data"].items():
                if not rule.startswith("AwsSolutions::"):
                    continue
                found += 1
                assert path.count("/") >= 2, f"{rule} acknowledged on the whole stack ({path})"
                assert 30 <= len(reason) <= 200 and "\n" not in reason, (rule, reason)
    assert found >= 5


def test_acknowledgements_name_awssolutions_rules(synth: Synth) -> None:
    ids = [
        rule
        for entries in synth.metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule in entry["data"]
        if rule.startswith("AwsSolutions::")
    ]
    for rule in ids:
        assert rule.split("::", 1)[1].startswith("AwsSolutions-")


def lint_findings(path: Path) -> list[str]:
    matches = lint_file(path, config=ManualArgs(regions=REGIONS))
    return [f"{m.rule.id} {m.message} ({m.path})" for m in matches]


def test_cfn_lint_clean(synth: Synth) -> None:
    assert lint_findings(synth.template_path) == []


def test_cfn_lint_validates_the_state_machine_definition(synth: Synth) -> None:
    """E3601 only checks a literal DefinitionString: prove it really runs on our template."""
    template = json.loads(synth.template_path.read_text())
    (sm_id, sm) = synth.one("AWS::StepFunctions::StateMachine")
    assert isinstance(sm["Properties"]["DefinitionString"], str)
    definition = json.loads(sm["Properties"]["DefinitionString"])
    definition["States"]["IsDrainDone"]["Default"] = "NoSuchState"
    definition["States"]["PollDrain"]["Type"] = "Tusk"
    template["Resources"][sm_id]["Properties"]["DefinitionString"] = json.dumps(definition)
    matches = lint(json.dumps(template), config=ManualArgs(regions=REGIONS))
    assert any(m.rule.id == "E3601" for m in matches), [str(m) for m in matches]


@pytest.mark.parametrize("mode", ["attach", "sample_cluster"])
def test_synth_writes_one_stack(mode: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(mode)
    assert synth.template_path.is_file()
    assert (
        synth.stack_name == {"attach": "EcsDrainHook", "sample_cluster": "EcsDrainHookSample"}[mode]
    )
