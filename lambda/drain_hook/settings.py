"""Every tunable of the drain hook, once: its environment variable, default, bounds and meaning.

The Lambda reads its environment with `Settings.from_environ` at cold start. The CDK construct
builds `Tunables` from its props (each field is also a `-c <field>=<value>` context key of the
CDK app) and writes the Lambda's environment with `Tunables.environ()`, so a bad value fails at
synth with the same message it would give at cold start. Standard library only (and history.py,
which is too): the construct imports this module without the Lambda's dependencies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

# Relative: the CDK construct imports this module as ecs_drain_hook.runtime.drain_hook.settings.
from .history import (
    FAILED_POLLS_COUNTED_MAX,
    HISTORY_MARGIN,
    POLLS_PER_EXECUTION_MAX,
    ROUND_EVENTS_MAX,
)

# A lifecycle hook's global timeout is min(48 h, 100 x HeartbeatTimeout) and can't be extended
# (EC2 Auto Scaling user guide, "Amazon EC2 Auto Scaling lifecycle hooks"): no drain outlives it.
LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS = 48 * 3600
HEARTBEAT_TIMEOUT_MIN_SECONDS = 30  # PutLifecycleHook API reference
HEARTBEAT_TIMEOUT_MAX_SECONDS = 7200
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# While polls fail, the state machine tries again this often (and records a heartbeat each time).
ERROR_RETRY_SECONDS = 60
# Longest run of failing polls one execution's history holds beside its polls (history.py): a
# longer error-release time would end in Step Functions' history quota, not in a release.
ERROR_RELEASE_SECONDS_MAX = FAILED_POLLS_COUNTED_MAX * ERROR_RETRY_SECONDS
_STATE_MACHINE_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[\w-]+$")
_CLUSTER = re.compile(r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster/)?[A-Za-z0-9_-]{1,255}$")
_HOOK_NAME = re.compile(r"^[A-Za-z0-9\-_/]{1,255}$")  # PutLifecycleHook's LifecycleHookName
_QUEUE_URL = re.compile(r"^https://\S+/\d{12}/[\w-]{1,80}$")


def lifecycle_global_timeout(heartbeat_timeout_seconds: int) -> int:
    """The hook's global timeout for a given heartbeat timeout (never restarted by heartbeats)."""
    return min(LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS, 100 * heartbeat_timeout_seconds)


class SettingsError(ValueError):
    """A setting is missing, malformed, out of range or contradicts another one."""


def _setting(env: str, default: Any, doc: str, *, low: int = 0, high: int = 0, choices=()) -> Any:
    return field(
        default=default,
        metadata={"env": env, "low": low, "high": high, "choices": tuple(choices), "doc": doc},
    )


@dataclass(frozen=True)
class Tunables:
    """What an operator may tune. Field name = CDK context key; metadata env = Lambda variable."""

    poll_interval_first_seconds: int = _setting(
        "POLL_INTERVAL_FIRST_SECONDS",
        120,
        "wait before the first poll of the wait loop; waits double from here",
        low=1,
        high=3600,
    )
    poll_interval_max_seconds: int = _setting(
        "POLL_INTERVAL_MAX_SECONDS",
        1800,
        "longest wait between polls (ECS events end a drain sooner; the loop is the safety net "
        "and records heartbeats between polls itself)",
        low=1,
        high=3600,
    )
    max_drain_seconds: int = _setting(
        "MAX_DRAIN_SECONDS",
        7200,
        "drain deadline, counted from when the instance entered Terminating:Wait",
        low=60,
        high=LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS,
    )
    standalone_tasks: Literal["wait", "stop"] = _setting(
        "STANDALONE_TASKS",
        "wait",
        "tasks of no service (ECS draining never stops them): wait for them, or stop them "
        "after the grace",
        choices=("wait", "stop"),
    )
    standalone_grace_seconds: int = _setting(
        "STANDALONE_GRACE_SECONDS",
        600,
        "with STANDALONE_TASKS=stop: how long standalone tasks get to finish on their own",
        low=0,
        high=LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS,
    )
    daemon_tasks_hold_instance: bool = _setting(
        "DAEMON_TASKS_HOLD_INSTANCE",
        True,
        "whether daemon-service tasks (stopped last by ECS) hold the instance like any task",
    )
    release_when: Literal["drained", "services_steady"] = _setting(
        "RELEASE_WHEN",
        "drained",
        "release an empty instance at once, or only once every service that had tasks on it "
        "when the drain began runs its desired count (or the deadline comes)",
        choices=("drained", "services_steady"),
    )
    at_deadline: Literal["stop_tasks", "continue"] = _setting(
        "AT_DEADLINE",
        "stop_tasks",
        "at the deadline: stop what remains and complete after the grace, or complete at once",
        choices=("stop_tasks", "continue"),
    )
    deadline_stop_grace_seconds: int = _setting(
        "DEADLINE_STOP_GRACE_SECONDS",
        45,
        "with AT_DEADLINE=stop_tasks: time between stopping tasks and completing",
        low=0,
        high=3600,
    )
    # The failure releases (the deadline, a lost agent, a loop that ended badly) and what they
    # end the lifecycle action with. ABANDON retains the host only where the group's instance
    # lifecycle policy says so; elsewhere it would terminate it like CONTINUE (and end every
    # other termination hook's action too), so the Lambda checks the policy first.
    on_drain_failure: Literal["terminate", "retain"] = _setting(
        "ON_DRAIN_FAILURE",
        "terminate",
        "when a drain fails (deadline, agent lost, loop end): complete with CONTINUE, or with "
        "ABANDON where the group retains instances on TerminateHookAbandon (the host stays, "
        "Retained, tasks and all)",
        choices=("terminate", "retain"),
    )
    agent_disconnected_grace_seconds: int = _setting(
        "AGENT_DISCONNECTED_GRACE_SECONDS",
        600,
        "continuous ECS agent disconnection while draining after which the instance is released",
        low=60,
        high=LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS,
    )
    error_release_seconds: int = _setting(
        "ERROR_RELEASE_SECONDS",
        900,
        "how long polls may keep failing for transient reasons before the instance is released; "
        f"at most {ERROR_RELEASE_SECONDS_MAX}, the failures one execution's history holds",
        low=60,
        high=ERROR_RELEASE_SECONDS_MAX,
    )
    # A cap on top of the Lambda's count of history events (history.py), which carries the loop
    # on by itself; a higher cap than the bound could never be reached.
    polls_per_execution: int = _setting(
        "POLLS_PER_EXECUTION",
        1000,
        "polls in one execution at most before the loop carries on in a fresh one (sooner when the "
        "history events it counts could reach Step Functions' 25,000); at most "
        f"{POLLS_PER_EXECUTION_MAX}: what one execution's history holds, less a margin of "
        f"{HISTORY_MARGIN}, at {ROUND_EVENTS_MAX} events a poll, a poll's worst",
        low=10,
        high=POLLS_PER_EXECUTION_MAX,
    )
    retry_mode: Literal["standard", "adaptive"] = _setting(
        "RETRY_MODE",
        "adaptive",
        "botocore retry mode (adaptive adds client-side rate limiting after throttling)",
        choices=("standard", "adaptive"),
    )
    retry_max_attempts: int = _setting(
        "RETRY_MAX_ATTEMPTS",
        12,
        "total attempts per AWS call, the first included",
        low=1,
        high=20,
    )
    tracing_enabled: bool = _setting(
        "TRACING_ENABLED",
        False,
        "X-Ray tracing (Powertools Tracer); off, the X-Ray SDK is never imported",
    )
    log_level: str = _setting(
        "POWERTOOLS_LOG_LEVEL", "INFO", "Powertools log level", choices=LOG_LEVELS
    )

    def __post_init__(self) -> None:
        for spec in fields(self):
            if spec.metadata.get("env"):
                _check(spec, getattr(self, spec.name))
        if self.poll_interval_first_seconds > self.poll_interval_max_seconds:
            raise SettingsError(
                "POLL_INTERVAL_FIRST_SECONDS (poll_interval_first_seconds) must not exceed "
                "POLL_INTERVAL_MAX_SECONDS (poll_interval_max_seconds): "
                f"{self.poll_interval_first_seconds} > {self.poll_interval_max_seconds}"
            )

    @property
    def deadline_grace_seconds(self) -> int:
        """Time the deadline policy needs after the deadline before the instance is released."""
        return self.deadline_stop_grace_seconds if self.at_deadline == "stop_tasks" else 0

    def environ(self) -> dict[str, str]:
        """The tunables as the Lambda's environment variables."""
        return {
            spec.metadata["env"]: _render(getattr(self, spec.name))
            for spec in fields(self)
            if spec.metadata.get("env")
        }

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """Name, environment variable, default, bounds and meaning of every tunable (docs)."""
        rows = []
        for spec in fields(cls):
            if not spec.metadata.get("env"):
                continue
            meta = spec.metadata
            rows.append(
                {
                    "field": spec.name,
                    "env": meta["env"],
                    "default": spec.default if spec.default is not MISSING else None,
                    "bounds": (meta["low"], meta["high"]) if meta["high"] else None,
                    "choices": meta["choices"] or None,
                    "doc": meta["doc"],
                }
            )
        return rows

    @classmethod
    def bounds(cls, name: str) -> tuple[int, int]:
        """The lowest and highest value the whole-number tunable `name` takes."""
        meta = next(spec.metadata for spec in fields(cls) if spec.name == name)
        return meta["low"], meta["high"]

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Tunables:
        """From field name -> value, where values may be strings (CDK -c context) or typed."""
        known = {spec.name: spec for spec in fields(cls) if spec.metadata.get("env")}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**{name: _parse(known[name], value) for name, value in values.items()})


@dataclass(frozen=True)
class Settings(Tunables):
    """The Lambda's whole configuration: the tunables plus what the deployment wires in."""

    cluster_name: str | None = field(default=None, metadata={"wiring": "CLUSTER_NAME"})
    state_machine_arn: str = field(default="", metadata={"wiring": "STATE_MACHINE_ARN"})
    # What the sweep and the Spot notices need: the hooked groups (a JSON list of names), our
    # hook's name on them, and the intake queue the sweep puts lifecycle messages in.
    hooked_groups: str = field(default="", metadata={"wiring": "HOOKED_GROUPS"})
    hook_name: str = field(default="", metadata={"wiring": "HOOK_NAME"})
    intake_queue_url: str = field(default="", metadata={"wiring": "INTAKE_QUEUE_URL"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_wiring()
        if not _STATE_MACHINE_ARN.match(self.state_machine_arn):
            raise SettingsError(
                "STATE_MACHINE_ARN must be a Step Functions state machine ARN "
                f"(arn:aws:states:<region>:<account>:stateMachine:<name>), got "
                f"{self.state_machine_arn!r}"
            )
        if self.cluster_name is not None and not _CLUSTER.match(self.cluster_name):
            raise SettingsError(
                f"CLUSTER_NAME must be an ECS cluster name or ARN, got {self.cluster_name!r}"
            )

    def _check_wiring(self) -> None:
        groups = _group_names(self.hooked_groups)
        if groups is None:
            raise SettingsError(
                "HOOKED_GROUPS must be a JSON list of Auto Scaling group names (1 to 255 "
                f"characters each), got {self.hooked_groups!r}"
            )
        if self.hook_name and not _HOOK_NAME.match(self.hook_name):
            raise SettingsError(f"HOOK_NAME must be a lifecycle hook name, got {self.hook_name!r}")
        if self.intake_queue_url and not _QUEUE_URL.match(self.intake_queue_url):
            raise SettingsError(
                f"INTAKE_QUEUE_URL must be an SQS queue URL, got {self.intake_queue_url!r}"
            )

    @property
    def groups(self) -> tuple[str, ...]:
        """The hooked groups' names (HOOKED_GROUPS); empty when the deployment gives none."""
        return _group_names(self.hooked_groups) or ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from environment variables (unset or empty: the default)."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = spec.metadata.get("env") or spec.metadata.get("wiring")
            raw = environ.get(name, "") if name else ""
            if raw == "":
                continue
            values[spec.name] = raw if spec.metadata.get("wiring") else _parse(spec, raw)
        return cls(**values)


def _group_names(text: str) -> tuple[str, ...] | None:
    """HOOKED_GROUPS parsed; None when it is not a JSON list of group names."""
    if not text:
        return ()
    try:
        names = json.loads(text)
    except ValueError:
        return None
    if not isinstance(names, list) or not all(
        isinstance(n, str) and 1 <= len(n) <= 255 for n in names
    ):
        return None
    return tuple(names)


def _label(spec: Any) -> str:
    return f"{spec.metadata['env']} ({spec.name})"


def _parse(spec: Any, value: Any) -> Any:
    """A string from the environment or CDK context, strictly: '15', 'true'/'false', a choice."""
    if not isinstance(value, str):
        return value  # typed already; __post_init__ checks it
    text = value.strip()
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
    if kind == "int":
        if not re.fullmatch(r"\d+", text):
            raise SettingsError(f"{_label(spec)} must be a whole number, got {value!r}")
        return int(text)
    if kind == "bool":
        if text not in ("true", "false"):
            raise SettingsError(f"{_label(spec)} must be true or false, got {value!r}")
        return text == "true"
    return text


def _check(spec: Any, value: Any) -> None:
    meta = spec.metadata
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{_label(spec)} must be an integer, got {value!r}")
        if not meta["low"] <= value <= meta["high"]:
            raise SettingsError(
                f"{_label(spec)} must be in {meta['low']}..{meta['high']}, got {value}"
            )
    elif kind == "bool":
        if not isinstance(value, bool):
            raise SettingsError(f"{_label(spec)} must be true or false, got {value!r}")
    elif meta["choices"] and value not in meta["choices"]:
        raise SettingsError(
            f"{_label(spec)} must be one of {', '.join(meta['choices'])}, got {value!r}"
        )


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ConfigError(SettingsError):
    """The Lambda's environment has a bad setting (raised at cold start)."""


_loaded: Settings | None = None


def load_settings() -> Settings:
    """Settings for this container, read from os.environ once (reset_settings() to re-read)."""
    global _loaded
    if _loaded is None:
        import os

        try:
            _loaded = Settings.from_environ(os.environ)
        except SettingsError as error:
            raise ConfigError(f"ecs-drain-hook configuration error: {error}") from None
    return _loaded


def reset_settings() -> None:
    global _loaded
    _loaded = None
