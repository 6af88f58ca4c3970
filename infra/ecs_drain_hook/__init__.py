"""ecs-drain-hook: an AWS CDK v2 construct that drains ECS container instances before their Auto
Scaling groups terminate them.

    from ecs_drain_hook import EcsDrainHook, Tunables

    EcsDrainHook(self, "DrainHook", cluster=cluster, auto_scaling_groups=[group],
                 tunables=Tunables(max_drain_seconds=3 * 3600))

The Lambda's code (`ecs_drain_hook.runtime`) and the wait loop's ASL
(`ecs_drain_hook.state_machine`) ship inside this package.
"""

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
