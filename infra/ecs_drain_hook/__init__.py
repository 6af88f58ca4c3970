"""ecs-drain-hook: an AWS CDK v2 construct that drains ECS container instances before their Auto
Scaling groups terminate them.

    from ecs_drain_hook import EcsDrainHook, Tunables

    EcsDrainHook(self, "DrainHook", cluster=cluster, auto_scaling_groups=[group],
                 tunables=Tunables(max_drain_seconds=3 * 3600))

The Lambda's code (`ecs_drain_hook.runtime`) and the wait loop's ASL
(`ecs_drain_hook.state_machine`) ship inside this package, and so does the `ecs-drain-hook`
command-line tool (`ecs_drain_hook.cli`).

Names are loaded on first use (PEP 562): importing the package, or its CLI, does not load
aws-cdk-lib (whose import starts Node), so the CLI starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecs_drain_hook.construct import (
        DEFAULT_HOOK_NAME,
        RESERVED_CONCURRENCY_WARNING_ID,
        EcsDrainHook,
    )
    from ecs_drain_hook.other_hooks import (
        CDK_DRAIN_HOOK_WARNING_ID,
        MANAGED_DRAINING_WARNING_ID,
        ReuseOnScaleInError,
    )
    from ecs_drain_hook.powertools import POWERTOOLS_VERSION
    from ecs_drain_hook.runtime.drain_hook import contract
    from ecs_drain_hook.runtime.drain_hook.settings import (
        SettingsError,
        Tunables,
        lifecycle_global_timeout,
    )
    from ecs_drain_hook.timing import HookTiming

# Public name -> the module that defines it (a module itself when the name is the module's).
_EXPORTS = {
    "CDK_DRAIN_HOOK_WARNING_ID": "ecs_drain_hook.other_hooks",
    "DEFAULT_HOOK_NAME": "ecs_drain_hook.construct",
    "MANAGED_DRAINING_WARNING_ID": "ecs_drain_hook.other_hooks",
    "POWERTOOLS_VERSION": "ecs_drain_hook.powertools",
    "RESERVED_CONCURRENCY_WARNING_ID": "ecs_drain_hook.construct",
    "EcsDrainHook": "ecs_drain_hook.construct",
    "HookTiming": "ecs_drain_hook.timing",
    "ReuseOnScaleInError": "ecs_drain_hook.other_hooks",
    "SettingsError": "ecs_drain_hook.runtime.drain_hook.settings",
    "Tunables": "ecs_drain_hook.runtime.drain_hook.settings",
    "contract": "ecs_drain_hook.runtime.drain_hook.contract",
    "lifecycle_global_timeout": "ecs_drain_hook.runtime.drain_hook.settings",
}
__all__ = [
    "CDK_DRAIN_HOOK_WARNING_ID",
    "DEFAULT_HOOK_NAME",
    "MANAGED_DRAINING_WARNING_ID",
    "POWERTOOLS_VERSION",
    "RESERVED_CONCURRENCY_WARNING_ID",
    "EcsDrainHook",
    "HookTiming",
    "ReuseOnScaleInError",
    "SettingsError",
    "Tunables",
    "contract",
    "lifecycle_global_timeout",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'ecs_drain_hook' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith(f".{name}") else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
