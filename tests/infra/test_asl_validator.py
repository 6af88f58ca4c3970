"""The wait loop's definition, as deployed, checked by a validator we did not write.

asl-validator (npm, pinned in package.json) checks a definition against the Amazon States
Language's JSON schemas, its paths, and each Task's Resource ARN. It runs on the definition
exactly as synthesized (the template's DefinitionString) with the DefinitionSubstitutions
resolved as CloudFormation would, in each partition, and on the ASL file as stored (it takes a
Resource or FunctionName that is one whole "${...}" substitution).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ecs_drain_hook import contract
from ecs_drain_hook.package_files import asl_path
from tests.infra.cfn_eval import ACCOUNT, REGION, evaluate, pseudo
from tests.infra.conftest import REPO, Synth

VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def validator() -> Path:
    if not VALIDATOR.exists():
        pytest.fail(
            f"{VALIDATOR.relative_to(REPO)} is missing: run `make test` (it installs "
            "node_modules) or `npm ci`",
            pytrace=False,
        )
    return VALIDATOR


def deployed_definition(synth: Synth, partition: str) -> str:
    """The DefinitionString with its substitutions made, as CloudFormation would in a stack of
    this partition (the function's ARN as Lambda would give it)."""
    (function_id, _) = synth.drain_function()
    function_arn = (
        f"arn:{partition}:lambda:{REGION}:{ACCOUNT}:function:{synth.stack_name}-"
        "DrainHookDrainFunction-AbCdEf123456"
    )
    refs = {
        **pseudo(synth.stack_name),
        "AWS::Partition": partition,
        f"{function_id}.Arn": function_arn,
    }
    (_, machine) = synth.one("AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    definition = props["DefinitionString"]
    assert isinstance(definition, str)  # a plain string: what the console and cfn-lint see
    for name, value in props["DefinitionSubstitutions"].items():
        resolved = evaluate(value, refs)
        assert isinstance(resolved, str) and "<" not in resolved, (name, resolved)
        definition = definition.replace("${" + name + "}", resolved)
    assert not re.search(r"\$\{[^}]*\}", definition), "a substitution left unmade"
    return definition


def run_validator(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(validator()), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("partition", PARTITIONS)
def test_the_deployed_definition_passes_asl_validator(
    synth: Synth, partition: str, tmp_path: Path
) -> None:
    path = tmp_path / "definition.json"
    path.write_text(deployed_definition(synth, partition))
    result = run_validator(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_the_stored_asl_file_passes_asl_validator() -> None:
    result = run_validator(asl_path())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_refuses_what_it_should(synth: Synth, tmp_path: Path) -> None:
    """The check is not a formality: an integration in a partition that does not exist, or a
    Resource that is half a substitution, fails it."""
    path = tmp_path / "definition.json"
    path.write_text(
        deployed_definition(synth, "aws").replace("arn:aws:states:", "arn:aws-x:states:")
    )
    assert run_validator(path).returncode == 1
    some_integration = "${" + next(iter(contract.INTEGRATION_SUBSTITUTIONS)) + "}"
    path.write_text(asl_path().read_text().replace(some_integration, "arn:${Partition}:states:::x"))
    assert run_validator(path).returncode == 1


def test_a_missing_validator_fails_and_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Never a silent skip: without node_modules the validator's tests fail, saying what to run."""
    monkeypatch.setattr(
        "tests.infra.test_asl_validator.VALIDATOR", REPO / "node_modules" / ".bin" / "missing"
    )
    with pytest.raises(pytest.fail.Exception, match=r"make test.*npm ci"):
        validator()
