"""Builds the CDK app from context; shared by app.py and the tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import AppConfig
from infra.stacks import DrainHookStack


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """An App holding one DrainHookStack, checked by cdk-nag at synth.

    With context=None the CDK CLI's context (cdk.json and -c flags) is used.
    """
    app = cdk.App(context=dict(context) if context is not None else None, outdir=outdir)
    config = AppConfig.from_context(app.node.try_get_context)
    DrainHookStack(app, config.stack_name, config=config)
    # Unacknowledged AwsSolutions findings fail the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
