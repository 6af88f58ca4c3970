"""What the CDK app would deploy for a scenario's tunables, by the construct's own rules.

The sandbox deploys the synthesized stack (`local_aws.template.load`, synthesized once with the
default tunables). A scenario changes the Lambda's tunables, so the figures the construct derives
from them (`ecs_drain_hook.timing`: the state machine's TimeoutSeconds, the heartbeat timeouts it
accepts) are taken from the construct and applied to that one synthesized definition, as
`cdk deploy -c ...` with the same context keys would: synthesizing per scenario would cost
seconds each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import local_aws.sandbox  # noqa: F401  (puts lambda/ on sys.path for drain_hook)
from local_aws import template

if TYPE_CHECKING:
    from drain_hook.settings import Tunables

template.quiet_jsii()  # before anything here imports the construct (aws-cdk-lib)


def tunables_from_env(env: Mapping[str, str]) -> Tunables:
    """The product's own parsing and validation of the tunables (raises SettingsError)."""
    from drain_hook.settings import Tunables

    known = {row["env"]: row["field"] for row in Tunables.describe()}
    return Tunables.from_values({known[key]: value for key, value in env.items()})


def _construct_tunables(tunables: Tunables):
    # The construct imports the settings through its package path: same source, other module.
    from ecs_drain_hook import Tunables as PackageTunables

    return PackageTunables.from_values(
        {row["field"]: getattr(tunables, row["field"]) for row in tunables.describe()}
    )


def execution_timeout_seconds(tunables: Tunables) -> int:
    """The state machine's TimeoutSeconds for these tunables, as the construct sets it."""
    from ecs_drain_hook.timing import hold_seconds

    return hold_seconds(_construct_tunables(tunables))


def heartbeat_bounds(tunables: Tunables) -> tuple[int, int]:
    """The heartbeat timeouts the construct accepts for these tunables, lowest and highest."""
    from ecs_drain_hook.timing import heartbeat_timeout_bounds

    return heartbeat_timeout_bounds(_construct_tunables(tunables))


def definition_for(tunables: Tunables, asg_name: str, hook_name: str) -> template.DrainDefinition:
    """The synthesized stack's definition with the state machine's TimeoutSeconds set for these
    tunables, as `cdk deploy` with the same context keys would set it."""
    definition = template.load([asg_name], [hook_name])
    asl = json.loads(definition.asl)
    asl["TimeoutSeconds"] = execution_timeout_seconds(tunables)
    return replace(definition, asl=json.dumps(asl))
