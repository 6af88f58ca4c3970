"""The newcomer path tells the truth: links resolve, the layout table lists real paths, the
Makefile has the targets the README names, and the package ships every Lambda folder."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", "node_modules", "cdk.out", ".git", "build", ".pytest_cache", ".hypothesis"}
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


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


def _section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_layout_table_lists_real_paths() -> None:
    rows = [line for line in _section("Layout").splitlines() if line.startswith("| `")]
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


def test_ci_runs_the_full_test_target() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_tracing_default_is_false_wherever_the_readme_gives_one() -> None:
    from ecs_drain_hook import Tunables

    assert Tunables().tracing_enabled is False
    for line in (REPO / "README.md").read_text().splitlines():
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
