"""Builds the CDK app from context; shared by app.py, the tests and the local sandbox."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import (
    ATTACH_USAGE,
    SAMPLE_CLUSTER_USAGE,
    AppConfig,
    check_keys,
    sets_any_key,
)
from infra.stacks import DrainHookStack

PROGRESS_VARIABLE = "ECS_DRAIN_HOOK_PROGRESS"
# What app.py prints when the context picks no mode (it then synthesizes no stack).
PICK_A_MODE = (
    "no stack to synthesize: pick a mode with -c keys. Attach to an existing cluster and its "
    f"groups: {ATTACH_USAGE}; or build a sample cluster of its own: {SAMPLE_CLUSTER_USAGE}. "
    "cdk bootstrap reads the environment from a stack too: `make bootstrap`, or "
    f"`npx cdk bootstrap {SAMPLE_CLUSTER_USAGE}` (nothing of the stack is deployed)."
)


def build_app(
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    *,
    progress: bool | None = None,
) -> cdk.App:
    """An App holding one DrainHookStack, checked by cdk-nag at synth; none when the context
    sets no key of this app (see PICK_A_MODE). A key the app does not know stops it (ContextError).

    With context=None the CDK CLI's context (cdk.json and -c flags) is used. progress=True (or
    ECS_DRAIN_HOOK_PROGRESS=1, which `make demo` and `make bench` set) prints each step to stderr:
    a synth is otherwise silent for seconds.
    """
    if progress is None:
        progress = os.environ.get(PROGRESS_VARIABLE) == "1"
    started = time.monotonic()

    def step(message: str) -> None:
        if progress:
            print(
                f"ecs-drain-hook: {message} ({time.monotonic() - started:.1f} s)", file=sys.stderr
            )

    app = cdk.App(context=dict(context) if context is not None else None, outdir=outdir)
    check_keys(app.node.get_all_context())
    if not sets_any_key(app.node.try_get_context):
        return app
    config = AppConfig.from_context(app.node.try_get_context)
    mode = "sample cluster" if config.sample_cluster else "attach"
    step(f"context read: {config.stack_name} ({mode} mode)")
    DrainHookStack(app, config.stack_name, config=config)
    step("stack built; the synth that follows runs cdk-nag (AwsSolutions), a few seconds")
    # Unacknowledged AwsSolutions findings fail the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def stacks_of(app: cdk.App) -> list[cdk.Stack]:
    """The stacks build_app put in the app (none when the context picks no mode)."""
    return [child for child in app.node.children if isinstance(child, cdk.Stack)]
