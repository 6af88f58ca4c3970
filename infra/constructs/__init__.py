"""Constructs of the drain hook, one per concern, and EcsDrainHook that wires them together."""

from infra.constructs.ecs_drain_hook import EcsDrainHook

__all__ = ["EcsDrainHook"]
