"""What the CDK app would deploy for a scenario's tunables: the figures the soak derives from them.

The sandbox deploys the synthesized stack (`local_aws.template.load`, synthesized once with the
default tunables). A scenario changes the Lambda's tunables, so the two figures the CDK app
derives from them are set to match, by the rules the README documents ("CDK context keys"):

- the state machine's TimeoutSeconds: the drain deadline plus the deadline stop grace, one poll
  interval and 10 minutes (`execution_timeout_seconds`);
- the hook's heartbeat timeout, drawn by the generator within `heartbeat_bounds`: the global
  timeout (min(48 h, 100 x heartbeat)) covers that whole hold, the timer outlasts the longest
  poll interval plus a minute, and it exceeds FIRST_HEARTBEAT_BOUND_SECONDS, the latest a
  first heartbeat can land when the lifecycle event is late (issue 7, item 2: EventBridge's
  5-minute maximum event age, Lambda's 5-minute asynchronous event age and one 60 s run).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import local_aws.sandbox  # noqa: F401  (puts lambda/ on sys.path for drain_hook)
from local_aws import template

if TYPE_CHECKING:
    from drain_hook.settings import Tunables

HEARTBEAT_TIMEOUT_MAX_SECONDS = 7200  # PutLifecycleHook API reference
LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS = 48 * 3600
# Slack the CDK app adds to the hold for the last poll round, retries and start-up (README).
DRAIN_SLACK_SECONDS = 600
# EventBridge maximum event age 300 s + Lambda async maximum event age 300 s + one 60 s run.
FIRST_HEARTBEAT_BOUND_SECONDS = 660


def tunables_from_env(env: Mapping[str, str]) -> Tunables:
    """The product's own parsing and validation of the tunables (raises SettingsError)."""
    from drain_hook.settings import Tunables

    known = {row["env"]: row["field"] for row in Tunables.describe()}
    return Tunables.from_values({known[key]: value for key, value in env.items()})


def hold_seconds(tunables: Tunables) -> int:
    """Longest hold: the deadline, its stop grace, one poll interval and the slack."""
    return (
        tunables.max_drain_seconds
        + tunables.deadline_grace_seconds
        + tunables.poll_interval_max_seconds
        + DRAIN_SLACK_SECONDS
    )


def execution_timeout_seconds(tunables: Tunables) -> int:
    """The state machine's TimeoutSeconds for these tunables (README: CDK context keys)."""
    return hold_seconds(tunables)


def heartbeat_bounds(tunables: Tunables) -> tuple[int, int]:
    """The heartbeat timeouts the CDK app accepts for these tunables, lowest and highest."""
    low = max(
        30,
        math.ceil(hold_seconds(tunables) / 100),
        tunables.poll_interval_max_seconds + 60,
        FIRST_HEARTBEAT_BOUND_SECONDS + 1,
    )
    return min(low, HEARTBEAT_TIMEOUT_MAX_SECONDS), HEARTBEAT_TIMEOUT_MAX_SECONDS


def definition_for(tunables: Tunables, asg_name: str, hook_name: str) -> template.DrainDefinition:
    """The synthesized stack's definition with the state machine's TimeoutSeconds set for these
    tunables, as `cdk deploy` with the same context keys would set it."""
    definition = template.load([asg_name], [hook_name])
    asl = json.loads(definition.asl)
    asl["TimeoutSeconds"] = execution_timeout_seconds(tunables)
    return replace(definition, asl=json.dumps(asl))
