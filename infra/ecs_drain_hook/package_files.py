"""Where the package keeps the Lambda code and the drain loop's ASL (installed or editable).

Both are found through importlib.resources, never relative to a checkout: the same code runs from
this repository (editable install) and from a wheel in someone else's CDK app.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

RUNTIME_PACKAGE = "ecs_drain_hook.runtime"  # lambda/ in the repository
STATE_MACHINE_PACKAGE = "ecs_drain_hook.state_machine"  # infra/state_machine/
ASL_NAME = "drain_loop.asl.json"
# The Lambda handler, relative to the asset's root (the runtime folder).
HANDLER = "drain_hook.handler.lambda_handler"
# Never part of the Lambda asset (gitignore syntax): byte code, tests and tool caches, and the
# empty package marker that only makes the folder importable as ecs_drain_hook.runtime.
ASSET_EXCLUDES = (
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    "tests/",
    "*.egg-info/",
    "/__init__.py",
)


def lambda_code_dir() -> Path:
    """The folder holding the Lambda's `drain_hook` package (the function's asset)."""
    return _folder(RUNTIME_PACKAGE)


def asl_path() -> Path:
    return _folder(STATE_MACHINE_PACKAGE) / ASL_NAME


def load_definition(timeout_seconds: int) -> dict[str, Any]:
    """The ASL with TimeoutSeconds set, its ${...} substitutions (contract.py) still in place."""
    definition: dict[str, Any] = json.loads(asl_path().read_text(encoding="utf-8"))
    definition["TimeoutSeconds"] = timeout_seconds
    return definition


def _folder(package: str) -> Path:
    root = resources.files(package)
    # Code.from_asset needs a real folder; pip installs (wheel or editable) always give one.
    if not isinstance(root, Path) or not root.is_dir():
        raise RuntimeError(
            f"ecs_drain_hook: {package} is not a folder on disk ({root!r}); install the package "
            "with pip (not as a zip) so the Lambda asset and the ASL can be read"
        )
    return root
