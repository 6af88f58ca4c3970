"""The newcomer path tells the truth: links resolve, the layout tables list real paths, the
Makefile has the targets the docs name, the README stays short and reaches every page in one
click, and the package ships every Lambda folder."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", "node_modules", "cdk.out", ".git", "build", ".pytest_cache", ".hypothesis"}
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


# The pages the README's sections moved to: each one click from the README.
MOVED_PAGES = (
    "docs/design.md",
    "docs/configuration.md",
    "docs/events.md",
    "docs/operations.md",
    "docs/architecture.md",
    "docs/development.md",
)
README_MAX_LINES = 250


def markdown_files() -> list[Path]:
    return sorted(p for p in REPO.rglob("*.md") if not SKIP_DIRS & set(p.relative_to(REPO).parts))


def _prose_lines(text: str) -> list[str]:
    lines, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found: set[str] = set()
    for line in _prose_lines(path.read_text()):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            base, n = slug, 1
            while slug in found:
                slug, n = f"{base}-{n}", n + 1
            found.add(slug)
    return found


def relative_links(path: Path) -> list[str]:
    links = []
    for line in _prose_lines(path.read_text()):
        line = re.sub(r"`[^`]*`", "", line)  # inline code is not a link
        links += [m.group(1) for m in LINK.finditer(line)]
    return [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:", link)]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path: Path) -> None:
    for link in relative_links(path):
        target, _, anchor = link.partition("#")
        resolved = (path.parent / target).resolve() if target else path
        assert resolved.exists(), f"{path.relative_to(REPO)}: {link} -> {resolved}"
        assert REPO in resolved.parents or resolved == REPO, link
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{path.relative_to(REPO)}: no #{anchor}"


def test_the_link_checker_sees_links() -> None:
    readme = REPO / "README.md"
    assert "#deploy" in relative_links(readme)
    assert "deploy" in anchors(readme)


def _section(title: str, page: str = "README.md") -> str:
    text = (REPO / page).read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


@pytest.mark.parametrize(
    ("page", "title"), [("README.md", "Layout"), ("docs/development.md", "Layout in full")]
)
def test_layout_table_lists_real_paths(page: str, title: str) -> None:
    rows = [line for line in _section(title, page).splitlines() if line.startswith("| `")]
    assert len(rows) >= 8
    for row in rows:
        for path in re.findall(r"`([^`]+)`", row.split("|")[1]):
            assert (REPO / path).exists(), path


def test_readme_make_targets_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = set(re.findall(r"\bmake ([a-z][a-z-]+)", (REPO / "README.md").read_text()))
    assert named, "the README names no make target"
    assert named <= targets, named - targets
    assert {"test", "test-fast", "demo", "synth", "cdk", "venv"} <= targets


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_make_target_a_page_names_exists(path: Path) -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = set(re.findall(r"\bmake ([a-z][a-z-]+)", path.read_text()))
    assert named <= targets, named - targets


def test_readme_is_short() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("page", MOVED_PAGES)
def test_every_moved_page_is_one_click_from_the_readme(page: str) -> None:
    assert (REPO / page).is_file(), page
    assert page in relative_links(REPO / "README.md"), f"README.md does not link {page}"


def _docs() -> list[Path]:
    pages = ("README.md", "benchmarks/README.md", "events/README.md")
    return [*(REPO / page for page in pages), *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", _docs(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_tracker_numbers_in_the_docs(path: Path) -> None:
    """A tracker's issue number means nothing to a reader of the repository."""
    found = re.findall(r".{0,30}\bissues? #?\d+.{0,30}", path.read_text(), re.I)
    assert not found, found


@pytest.mark.parametrize("path", _docs(), ids=lambda p: str(p.relative_to(REPO)))
def test_the_stack_mode_has_one_name(path: Path) -> None:
    """`make demo` is the local sandbox run; the stack mode is the sample cluster. The old key
    may be named only as what is refused."""
    text = path.read_text()
    for old in ("EcsDrainHookDemo", "demo mode", "demo stack", "Demo mode"):
        assert old not in text, f"{path.relative_to(REPO)}: {old}"
    for paragraph in text.split("\n\n"):
        if "demo=true" in paragraph:
            assert "sample_cluster=true" in paragraph and "refused" in paragraph, paragraph


def test_runbook_commands_take_the_stack_name() -> None:
    """Every command of the runbook that finds the deployment by its stack is given the stack
    (STACK), never one stack name assumed."""
    text = (REPO / "docs" / "operations.md").read_text()
    prose = " ".join(_prose_lines(text))
    code = [line for line in text.splitlines() if line not in set(_prose_lines(text))]
    finds_stack = re.compile(r"ecs-drain-hook (status|explain|release|drain)\b|describe-stack")
    commands = [c for c in [*code, *re.findall(r"`([^`]+)`", prose)] if finds_stack.search(c)]
    assert len(commands) >= 5, commands
    for command in commands:
        assert '--stack-name "$STACK"' in command, command


def test_ci_runs_the_full_test_target() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_tracing_default_is_false_wherever_the_readme_gives_one() -> None:
    from ecs_drain_hook import Tunables

    assert Tunables().tracing_enabled is False
    pages = ("README.md", "docs/configuration.md")
    for line in "\n".join((REPO / page).read_text() for page in pages).splitlines():
        if re.search(r"tracing_enabled|TRACING_ENABLED", line) and line.startswith("|"):
            assert "`true`" not in line.split("|")[2], line


def test_every_lambda_folder_is_a_package_of_the_wheel() -> None:
    """pyproject lists packages by hand (package-dir mapping): a new Lambda folder needs a line."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    for folder in {p.parent for p in (REPO / "lambda").rglob("*.py")}:
        if "__pycache__" in folder.parts:
            continue
        relative = folder.relative_to(REPO / "lambda").parts
        assert ".".join(("ecs_drain_hook", "runtime", *relative)) in listed, folder
    mapping = config["package-dir"]
    assert mapping == {
        "ecs_drain_hook": "infra/ecs_drain_hook",
        "ecs_drain_hook.state_machine": "infra/state_machine",
        "ecs_drain_hook.runtime": "lambda",
    }


def test_the_repository_uses_the_installed_package() -> None:
    """app.py and the tests import ecs_drain_hook as a user would (editable install)."""
    import ecs_drain_hook

    assert Path(ecs_drain_hook.__file__).parent == REPO / "infra" / "ecs_drain_hook"
    for path in [REPO / "app.py", *(REPO / "infra").rglob("*.py")]:
        text = path.read_text()
        assert "infra.constructs" not in text and "infra.settings" not in text, path


def tunables_table() -> str:
    """The README's table of setting keys, from Tunables (the one source of names and defaults)."""
    from ecs_drain_hook import Tunables

    rows = []
    for row in Tunables.describe():
        default = row["default"]
        shown = ("true" if default else "false") if isinstance(default, bool) else default
        if row["bounds"]:
            allowed = "{}..{}".format(*row["bounds"])
        elif row["choices"]:
            allowed = " / ".join(f"`{c}`" for c in row["choices"])
        else:
            allowed = "`true` / `false`"
        rows.append(f"| `{row['field']}` | `{row['env']}` | `{shown}` | {allowed} |")
    return "\n".join(rows)


def test_readme_settings_table_is_the_tunables() -> None:
    text = (REPO / "README.md").read_text()
    start = text.index("<!-- tunables-table:start -->")
    end = text.index("<!-- tunables-table:end -->")
    rows = [line for line in text[start:end].splitlines() if line.startswith("| `")]
    assert "\n".join(rows) == tunables_table(), (
        "regenerate: .venv/bin/python -c 'from tests.packaging.test_docs import tunables_table; "
        "print(tunables_table())'"
    )


def test_readme_context_key_table_is_the_apps_keys() -> None:
    """The README's table of the app's own keys lists every key the app reads besides the
    Tunables fields (which have their own table), and no other."""
    from infra.config import MODE_KEYS, SETTING_KEYS

    table = _section("Deploy").split("### Context keys", 1)[1].split("<!-- tunables-table")[0]
    listed = {
        key
        for row in table.splitlines()
        if row.startswith("| `")
        for key in re.findall(r"`([a-z_]+)`", row.split("|")[1])
    }
    assert listed == {*MODE_KEYS, *SETTING_KEYS}, listed ^ {*MODE_KEYS, *SETTING_KEYS}
