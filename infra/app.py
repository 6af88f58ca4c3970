"""Builds the CDK app from context; shared by app.py, the tests and the local sandbox."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import AppConfig
from infra.stacks import DrainHookStack

PROGRESS_VARIABLE = "ECS_DRAIN_HOOK_PROGRESS"


def build_app(
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    *,
    progress: bool | None = None,
) -> cdk.App:
    """An App holding one DrainHookStack, checked by cdk-nag at synth.

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
    config = AppConfig.from_context(app.node.try_get_context)
    step(f"context read: {config.stack_name} ({'demo' if config.demo else 'attach'} mode)")
    DrainHookStack(app, config.stack_name, config=config)
    step("stack built; the synth that follows runs cdk-nag (AwsSolutions), a few seconds")
    # Unacknowledged AwsSolutions findings fail the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
