"""Stacks app.py builds: attach mode (existing cluster and groups) and the sample cluster."""

from infra.stacks.drain_hook_stack import DrainHookStack

__all__ = ["DrainHookStack"]
