"""Stacks app.py builds: attach mode (existing cluster and groups) and demo mode."""

from infra.stacks.drain_hook_stack import DrainHookStack

__all__ = ["DrainHookStack"]
