"""What app.py reads from CDK context (-c key=value), checked before anything is built."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from ecs_drain_hook import HookTiming, SettingsError, Tunables
from ecs_drain_hook.alarms import check_stuck_drain_seconds
from ecs_drain_hook.stack_names import DEFAULT_ATTACH_STACK, DEFAULT_SAMPLE_CLUSTER_STACK
from ecs_drain_hook.timing import (
    INTAKE_CONCURRENCY_RANGE,
    INTAKE_MAX_CONCURRENCY,
    SWEEP_MINUTES_DEFAULT,
    SWEEP_MINUTES_RANGE,
)

ATTACH_USAGE = "-c cluster_name=<ECS cluster> -c asg_names=<group>[,<group>...]"
SAMPLE_CLUSTER_USAGE = "-c sample_cluster=true"
# The keys that choose what the app builds.
MODE_KEYS = ("sample_cluster", "cluster_name", "asg_names")
# Every other key the app reads; each Tunables field is a key too (_tunables).
SETTING_KEYS = (
    "stack_name",
    "hook_name",
    "alarm_topic_arn",
    "log_retention_days",
    "reserved_concurrency",
    "intake_concurrency",
    "heartbeat_timeout_seconds",
    "lost_event_sweep_minutes",
    "managed_draining",
    "powertools_layer_arn",
    "set_retention_policy",
    "stuck_drain_alarm_seconds",
)
# Keys the app once read under another name: refused with the new one.
RENAMED_KEYS = {"demo": SAMPLE_CLUSTER_USAGE}
# Keys the CDK CLI may keep in context without a colon (cdk.context.json).
CDK_PLAIN_KEYS = ("acknowledged-issue-numbers",)
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_ASG_NAME = re.compile(r"^[^:]{1,255}$")
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


class ContextError(ValueError):
    """Missing, malformed or contradictory -c values; the message names the keys to set."""


def known_keys() -> tuple[str, ...]:
    """Every context key this app reads."""
    return (*MODE_KEYS, *SETTING_KEYS, *(spec.name for spec in fields(Tunables)))


def is_cdk_key(key: str) -> bool:
    """A key of the CDK itself: the CLI's own (aws:cdk:...), lookups cached in cdk.context.json
    (provider:account=...:region=...), feature flags (@aws-cdk/...) and the CLI's plain ones."""
    return ":" in key or key.startswith(("aws-cdk", "@aws-cdk")) or key in CDK_PLAIN_KEYS


def check_keys(keys: Iterable[str]) -> None:
    """Refuse a key this app does not read, naming the closest known one: a misspelled key would
    otherwise leave its default in place unnoticed. CDK's own keys pass."""
    known = known_keys()
    for key in sorted(keys):
        if key in known or is_cdk_key(key):
            continue
        if key in RENAMED_KEYS:
            raise ContextError(f"-c {key} is now {RENAMED_KEYS[key]}")
        nearest = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {nearest[0]}?" if nearest else f"the keys: {', '.join(known)}"
        raise ContextError(f"unknown context key -c {key}: {hint}")


def sets_any_key(get: Callable[[str], Any]) -> bool:
    """Whether the context sets any key of this app. Without one the app builds no stack (so
    `cdk ls` and the like run); with some but no mode, from_context names the keys missing."""
    return any(get(key) not in (None, "") for key in (*known_keys(), *RENAMED_KEYS))


@dataclass(frozen=True)
class AppConfig:
    sample_cluster: bool
    stack_name: str
    cluster_name: str | None
    asg_names: tuple[str, ...]
    tunables: Tunables
    heartbeat_timeout_seconds: int | None
    timing: HookTiming
    hook_name: str
    alarm_topic_arn: str | None
    log_retention_days: int
    reserved_concurrency: int | None
    intake_concurrency: int
    managed_draining: bool | None
    powertools_layer_arn: str | None
    lost_event_sweep_minutes: int = SWEEP_MINUTES_DEFAULT
    set_retention_policy: bool = False
    stuck_drain_alarm_seconds: int | None = None  # None: the construct's default

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> AppConfig:
        """Build from a context getter (app.node.try_get_context)."""
        for old, new in RENAMED_KEYS.items():
            if get(old) is not None:
                raise ContextError(f"-c {old} is now {new}")
        sample_cluster = _bool(get, "sample_cluster", default=False)
        cluster_name = _str(get, "cluster_name")
        asg_names = tuple(n.strip() for n in (_str(get, "asg_names") or "").split(",") if n.strip())
        managed = _str(get, "managed_draining")
        if sample_cluster:
            given = [k for k, v in (("cluster_name", cluster_name), ("asg_names", asg_names)) if v]
            if given:
                raise ContextError(
                    f"{SAMPLE_CLUSTER_USAGE} builds its own cluster and group: drop "
                    f"{', '.join(given)} or drop sample_cluster (attach mode: {ATTACH_USAGE})"
                )
            if managed is not None:
                raise ContextError(
                    "-c managed_draining applies to attach mode only: the sample cluster always "
                    "disables managed draining on its capacity provider"
                )
        else:
            missing = [
                k for k, v in (("cluster_name", cluster_name), ("asg_names", asg_names)) if not v
            ]
            if missing:
                raise ContextError(
                    f"missing context: {', '.join('-c ' + k for k in missing)}. Attach to an "
                    f"existing cluster with {ATTACH_USAGE}, or build a sample cluster with "
                    f"{SAMPLE_CLUSTER_USAGE}"
                )
            assert cluster_name is not None
            if not _CLUSTER_NAME.match(cluster_name):
                raise ContextError(
                    f"-c cluster_name must be an ECS cluster name, not {cluster_name!r}"
                )
            bad = [n for n in asg_names if not _ASG_NAME.match(n)]
            if bad:
                raise ContextError(f"-c asg_names has invalid group names: {bad}")
            if len(set(asg_names)) != len(asg_names):
                raise ContextError(f"-c asg_names lists a group twice: {','.join(asg_names)}")
        if managed not in (None, "enabled", "disabled"):
            raise ContextError("-c managed_draining must be enabled or disabled")

        stack_name = _str(get, "stack_name") or (
            DEFAULT_SAMPLE_CLUSTER_STACK if sample_cluster else DEFAULT_ATTACH_STACK
        )
        if not _STACK_NAME.match(stack_name):
            raise ContextError(
                f"-c stack_name is not a valid CloudFormation stack name: {stack_name!r}"
            )
        alarm_topic_arn = _str(get, "alarm_topic_arn")
        if alarm_topic_arn is not None and not _TOPIC_ARN.match(alarm_topic_arn):
            raise ContextError(
                f"-c alarm_topic_arn must be an SNS topic ARN, not {alarm_topic_arn!r}"
            )
        retention = _int(get, "log_retention_days", default=30)
        if retention not in LOG_RETENTION_DAYS:
            raise ContextError(
                f"-c log_retention_days must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        reserved = _int(get, "reserved_concurrency", default=None)
        if reserved is not None and reserved < 1:
            raise ContextError("-c reserved_concurrency must be at least 1")
        intake = _int(get, "intake_concurrency", default=INTAKE_MAX_CONCURRENCY)
        low, high = INTAKE_CONCURRENCY_RANGE
        if intake is None or not low <= intake <= high:
            raise ContextError(f"-c intake_concurrency must be {low}..{high}")
        tunables = _tunables(get)
        heartbeat = _int(get, "heartbeat_timeout_seconds", default=None)
        sweep = _int(get, "lost_event_sweep_minutes", default=SWEEP_MINUTES_DEFAULT)
        low, high = SWEEP_MINUTES_RANGE
        if sweep is None or not low <= sweep <= high:
            raise ContextError(f"-c lost_event_sweep_minutes must be {low}..{high}")
        try:
            timing = HookTiming.derive(tunables, heartbeat, sweep_minutes=sweep)
        except SettingsError as error:
            raise ContextError(f"bad drain setting (-c <name>=<value>): {error}") from None

        return cls(
            sample_cluster=sample_cluster,
            stack_name=stack_name,
            cluster_name=cluster_name,
            asg_names=asg_names,
            tunables=tunables,
            heartbeat_timeout_seconds=heartbeat,
            timing=timing,
            hook_name=_str(get, "hook_name") or "ecs-drain-hook",
            alarm_topic_arn=alarm_topic_arn,
            log_retention_days=retention,
            reserved_concurrency=reserved,
            intake_concurrency=intake,
            managed_draining=None if managed is None else managed == "enabled",
            powertools_layer_arn=_str(get, "powertools_layer_arn"),
            lost_event_sweep_minutes=sweep,
            set_retention_policy=_bool(get, "set_retention_policy", default=False),
            stuck_drain_alarm_seconds=_stuck_drain_seconds(get, tunables),
        )


def _stuck_drain_seconds(get: Callable[[str], Any], tunables: Tunables) -> int | None:
    """-c stuck_drain_alarm_seconds: the age at which a drain's alarm fires (unset: half the
    drain deadline), checked here with the construct's own rule."""
    seconds = _int(get, "stuck_drain_alarm_seconds", default=None)
    if seconds is not None:
        try:
            check_stuck_drain_seconds(seconds, tunables)
        except ValueError as error:
            raise ContextError(f"-c {error}") from None
    return seconds


def _tunables(get: Callable[[str], Any]) -> Tunables:
    """The Lambda's tunables: each Tunables field is a context key of the same name."""
    values = {}
    for spec in fields(Tunables):
        raw = get(spec.name)
        if raw is not None and raw != "":
            values[spec.name] = raw
    try:
        return Tunables.from_values(values)
    except SettingsError as error:
        raise ContextError(f"bad drain setting (-c <name>=<value>): {error}") from None


def _str(get: Callable[[str], Any], key: str) -> str | None:
    value = get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _bool(get: Callable[[str], Any], key: str, *, default: bool) -> bool:
    value = get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ContextError(f"-c {key} must be true or false, got {value!r}")


def _int(get: Callable[[str], Any], key: str, *, default: int | None) -> int | None:
    value = get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ContextError(f"-c {key} must be an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ContextError(f"-c {key} must be an integer, got {value!r}") from None
