"""docs/aws-contract.md stays checkable: every row names a source that exists (an AWS page link of
the right form, or a shape botocore's loaded model has), says where the sandbox models it, and,
when the docs are silent (UNCONFIRMED), names the knob and the tests that run each answer; every
test, module and knob it names exists."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from urllib.parse import urlsplit

import botocore.session
import pytest

from tests.packaging.test_docs import LINK, REPO, _prose_lines

DOC = REPO / "docs" / "aws-contract.md"
SERVICES = (
    "ECS",
    "EC2 Auto Scaling",
    "EC2",
    "EventBridge",
    "Lambda",
    "SQS event source",
    "Step Functions",
    "CloudFormation/CDK",
)
COLUMNS = 5  # service, behaviour, stated by, sandbox, UNCONFIRMED answers and tests
NOTHING = "—"

BOTOCORE = re.compile(r"`bc:([a-z0-9-]+) ([A-Za-z0-9]+)(?:\.([A-Za-z0-9]+))?`")
TEST_REF = re.compile(r"`?(tests/[\w/]+\.py)::(\w+)`?")
MODULE = re.compile(r"`((?:local_aws|lambda|infra|tests|benchmarks)/[\w/]+\.py)`")
CODE = re.compile(r"`([^`]+)`")
IDENTIFIER = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
BOTOCORE_JSON = re.compile(
    r"https://github\.com/boto/botocore/blob/develop/botocore/data/[a-z0-9-]+/"
    r"\d{4}-\d{2}-\d{2}/service-2\.json"
)
# Where a knob may be defined: the sandbox, the Lambda, the construct and the tests.
KNOB_SOURCES = ("local_aws", "lambda", "infra", "tests", "benchmarks")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@functools.cache
def rows() -> list[list[str]]:
    """The contract table's rows (header and separator left out), each as its cells."""
    table = [line for line in _prose_lines(DOC.read_text()) if line.startswith("|")]
    assert len(table) > 2, "docs/aws-contract.md has no table"
    header, separator, *body = table
    assert _cells(header)[0] == "Service" and len(_cells(header)) == COLUMNS, header
    assert set(separator) <= set("|-: "), separator
    return [_cells(line) for line in body]


def _ids(row: list[str]) -> str:
    return f"{row[0]}: {row[1][:60]}"


@functools.cache
def _model(service: str):
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def _test_functions(path: str) -> frozenset[str]:
    tree = ast.parse((REPO / path).read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )


@functools.cache
def _code_words() -> frozenset[str]:
    """Every identifier that appears in the repository's code (knob names must be there)."""
    words: set[str] = set()
    for folder in KNOB_SOURCES:
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                words.update(re.findall(r"[A-Za-z_]\w*", path.read_text()))
    return frozenset(words)


def test_the_table_is_grouped_by_service_in_order() -> None:
    services = [row[0] for row in rows()]
    assert set(services) <= set(SERVICES), set(services) - set(SERVICES)
    groups = [service for i, service in enumerate(services) if i == 0 or services[i - 1] != service]
    assert groups == list(SERVICES), groups  # each service once, contiguous, in this order


@pytest.mark.parametrize("row", rows(), ids=_ids)
def test_every_row_has_a_behaviour_a_source_and_a_sandbox_column(row: list[str]) -> None:
    assert len(row) == COLUMNS, row
    _service, behaviour, stated_by, sandbox, unconfirmed = row
    assert len(behaviour) > 20, behaviour
    assert LINK.search(stated_by) or BOTOCORE.search(stated_by), f"no source: {behaviour}"
    assert sandbox, behaviour
    assert MODULE.search(sandbox) or "template test" in sandbox or "not modelled" in sandbox, (
        sandbox
    )
    if not behaviour.startswith("UNCONFIRMED"):
        assert "UNCONFIRMED" not in behaviour, behaviour
        assert unconfirmed == NOTHING, f"a documented row's last column is {NOTHING}: {behaviour}"


@pytest.mark.parametrize("row", rows(), ids=_ids)
def test_links_are_aws_pages_or_botocore_models_each_once_per_row(row: list[str]) -> None:
    links = [match.group(1) for cell in row for match in LINK.finditer(cell)]
    assert len(links) == len(set(links)), f"a link repeated in one row: {links}"
    for link in links:
        parts = urlsplit(link)
        assert parts.scheme == "https" and not parts.query and not parts.fragment, link
        if parts.netloc == "docs.aws.amazon.com":
            assert re.fullmatch(r"(/[\w.-]+)+\.html", parts.path), link
        else:
            assert BOTOCORE_JSON.fullmatch(link), f"neither an AWS page nor a service model: {link}"


@pytest.mark.parametrize("row", rows(), ids=_ids)
def test_botocore_shapes_exist_in_the_loaded_model(row: list[str]) -> None:
    for service, shape_name, member in BOTOCORE.findall(row[2]):
        shape = _model(service).shape_for(shape_name)
        if member:
            assert member in shape.members, f"bc:{service} {shape_name} has no {member}"


@pytest.mark.parametrize(
    "row", [row for row in rows() if row[1].startswith("UNCONFIRMED")], ids=_ids
)
def test_unconfirmed_rows_name_their_knob_and_the_tests_of_each_answer(row: list[str]) -> None:
    answers = row[4]
    assert TEST_REF.search(answers), f"no test runs any answer: {row[1]}"
    if "no knob" in answers:
        return  # the sandbox plays one answer: the cell says which
    assert "default" in answers, f"which answer is the default? {row[1]}"
    knobs = [
        code for code in CODE.findall(answers) if IDENTIFIER.fullmatch(code) and "::" not in code
    ]
    assert knobs, f"no knob named: {row[1]}"
    missing = [knob for knob in knobs if knob.rsplit(".", 1)[-1] not in _code_words()]
    assert not missing, f"knobs not found in the code: {missing}"


def test_every_test_reference_names_an_existing_test_function() -> None:
    references = TEST_REF.findall(DOC.read_text())
    assert len(references) > 50, len(references)
    for path, name in references:
        assert (REPO / path).is_file(), path
        assert name in _test_functions(path), f"{path} has no function {name}"


def test_every_module_named_exists() -> None:
    modules = MODULE.findall(DOC.read_text())
    assert modules
    for module in modules:
        assert Path(REPO / module).is_file(), module


def test_there_are_unconfirmed_rows_and_each_is_marked_in_its_behaviour() -> None:
    unconfirmed = [row for row in rows() if "UNCONFIRMED" in row[1]]
    assert unconfirmed
    assert all(row[1].startswith("UNCONFIRMED: ") for row in unconfirmed)
    assert all(row[4] != NOTHING for row in unconfirmed)
