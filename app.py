#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth --quiet -c sample_cluster=true` (a sample cluster of its own)
or `-c cluster_name=... -c asg_names=a,b` (attach mode). Without any key it synthesizes no stack
and says how to pick a mode.

cdk.json runs `python3 app.py`. Outside the repository's venv (`npx cdk ...` without
`source .venv/bin/activate`) this re-runs itself with .venv/bin/python when that venv exists,
instead of failing with ModuleNotFoundError: aws_cdk.
"""

import os
import sys
import time
from pathlib import Path

VENV_PYTHON = Path(__file__).resolve().parent / ".venv" / "bin" / "python"


def _use_repo_venv() -> None:
    try:
        import aws_cdk  # noqa: F401

        import ecs_drain_hook  # noqa: F401
    except ModuleNotFoundError as error:
        if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parents[1]:
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
        print(
            f"ecs-drain-hook: {error}. Run `make venv` (creates .venv with the pinned packages), "
            "then `source .venv/bin/activate` or use `make synth` / `make cdk ARGS=...`.",
            file=sys.stderr,
        )
        sys.exit(2)


if __name__ == "__main__":
    import infra  # noqa: F401  (quiets jsii's Node banners before aws-cdk-lib starts Node)

    _use_repo_venv()
    started = time.monotonic()
    # Importing aws-cdk-lib starts its Node runtime (jsii): say so, it takes seconds.
    print("ecs-drain-hook: loading aws-cdk-lib (jsii starts Node)...", file=sys.stderr)
    from ecs_drain_hook import SettingsError
    from infra.app import PICK_A_MODE, build_app, stacks_of
    from infra.config import ContextError

    try:
        app = build_app(progress=True)
    except (ContextError, SettingsError) as error:
        # A usage message, not a stack trace: it names the -c keys to set.
        print(f"ecs-drain-hook: {error}", file=sys.stderr)
        sys.exit(2)
    if not stacks_of(app):
        print(f"ecs-drain-hook: {PICK_A_MODE}", file=sys.stderr)
    app.synth()
    print(f"ecs-drain-hook: synthesized in {time.monotonic() - started:.1f} s", file=sys.stderr)
