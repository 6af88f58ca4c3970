"""The default stack names of this repository's CDK app, which the CLI also looks for when it
finds a deployment by its stack (standard library only)."""

from __future__ import annotations

DEFAULT_ATTACH_STACK = "EcsDrainHook"
DEFAULT_DEMO_STACK = "EcsDrainHookDemo"
