"""The drain Lambda's tunables as the CDK app sees them, and the timeouts derived from them.

The bounds mirror lambda/drain_hook/config.py so a bad value fails at synth, not at cold start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

# A lifecycle hook's global timeout is min(48 h, 100 x HeartbeatTimeout): no drain outlives it.
LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS = 48 * 3600
HEARTBEAT_TIMEOUT_MIN_SECONDS = 30
HEARTBEAT_TIMEOUT_MAX_SECONDS = 7200
# Slack for the last poll round, Lambda retries and Step Functions start-up on top of the deadline.
DRAIN_SLACK_SECONDS = 600


class SettingsError(ValueError):
    """A tunable is out of range or contradicts another one."""


@dataclass(frozen=True)
class DrainSettings:
    """Lambda tunables (docs/lambda-contract.md) plus the hook's heartbeat timeout."""

    poll_interval_first_seconds: int = 15
    poll_interval_max_seconds: int = 120
    max_drain_seconds: int = 7200
    standalone_tasks: Literal["wait", "stop"] = "wait"
    standalone_grace_seconds: int = 600
    daemon_tasks_hold_instance: bool = True
    at_deadline: Literal["stop_tasks", "continue"] = "stop_tasks"
    deadline_stop_grace_seconds: int = 45
    polls_per_execution: int = 1000
    retry_mode: Literal["standard", "adaptive"] = "adaptive"
    retry_max_attempts: int = 8
    tracing_enabled: bool = True
    log_level: str = "INFO"
    # None: derived from the drain settings (see heartbeat_timeout_seconds()).
    heartbeat_timeout_seconds: int | None = None

    def __post_init__(self) -> None:
        self._check_range("poll_interval_first_seconds", 1, 3600)
        self._check_range("poll_interval_max_seconds", 1, 3600)
        self._check_range("max_drain_seconds", 60, LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS)
        self._check_range("standalone_grace_seconds", 0, LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS)
        self._check_range("deadline_stop_grace_seconds", 0, 3600)
        self._check_range("polls_per_execution", 10, 2500)
        self._check_range("retry_max_attempts", 1, 20)
        self._check_choice("standalone_tasks", ("wait", "stop"))
        self._check_choice("at_deadline", ("stop_tasks", "continue"))
        self._check_choice("retry_mode", ("standard", "adaptive"))
        self._check_choice("log_level", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
        if self.poll_interval_first_seconds > self.poll_interval_max_seconds:
            raise SettingsError(
                "poll_interval_first_seconds must not exceed poll_interval_max_seconds "
                f"({self.poll_interval_first_seconds} > {self.poll_interval_max_seconds})"
            )
        if self.hold_seconds > LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS:
            limit = (
                LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS
                - DRAIN_SLACK_SECONDS
                - self.poll_interval_max_seconds
                - self._deadline_grace
            )
            raise SettingsError(
                f"max_drain_seconds={self.max_drain_seconds} plus the deadline grace and slack "
                f"exceeds the lifecycle hook's 48 h global timeout; use at most {limit}"
            )
        if self.heartbeat_timeout_seconds is not None:
            self._check_heartbeat(self.heartbeat_timeout_seconds)

    @property
    def _deadline_grace(self) -> int:
        return self.deadline_stop_grace_seconds if self.at_deadline == "stop_tasks" else 0

    @property
    def hold_seconds(self) -> int:
        """Longest time an instance may be held: deadline + stop grace + one poll + slack."""
        return (
            self.max_drain_seconds
            + self._deadline_grace
            + self.poll_interval_max_seconds
            + DRAIN_SLACK_SECONDS
        )

    @property
    def execution_timeout_seconds(self) -> int:
        """State machine TimeoutSeconds: just above the longest drain, so a stuck loop ends."""
        return self.hold_seconds

    def heartbeat_timeout(self) -> int:
        """HeartbeatTimeout for the hook.

        The Lambda keeps its heartbeats at most half this timeout apart, and this default leaves
        that half at least two of the longest poll intervals (room for Lambda retries); and
        100 x heartbeat (the global timeout) must cover the whole hold.
        """
        if self.heartbeat_timeout_seconds is not None:
            return self.heartbeat_timeout_seconds
        derived = max(
            600,
            4 * self.poll_interval_max_seconds,
            math.ceil(self.hold_seconds / 100),
        )
        return min(derived, HEARTBEAT_TIMEOUT_MAX_SECONDS)

    def lambda_environment(self) -> dict[str, str]:
        """The tunables as the Lambda's environment variables (names from the contract)."""
        return {
            "POLL_INTERVAL_FIRST_SECONDS": str(self.poll_interval_first_seconds),
            "POLL_INTERVAL_MAX_SECONDS": str(self.poll_interval_max_seconds),
            "MAX_DRAIN_SECONDS": str(self.max_drain_seconds),
            "STANDALONE_TASKS": self.standalone_tasks,
            "STANDALONE_GRACE_SECONDS": str(self.standalone_grace_seconds),
            "DAEMON_TASKS_HOLD_INSTANCE": _bool(self.daemon_tasks_hold_instance),
            "AT_DEADLINE": self.at_deadline,
            "DEADLINE_STOP_GRACE_SECONDS": str(self.deadline_stop_grace_seconds),
            "POLLS_PER_EXECUTION": str(self.polls_per_execution),
            "RETRY_MODE": self.retry_mode,
            "RETRY_MAX_ATTEMPTS": str(self.retry_max_attempts),
            "TRACING_ENABLED": _bool(self.tracing_enabled),
            "POWERTOOLS_LOG_LEVEL": self.log_level,
        }

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def _check_range(self, name: str, low: int, high: int) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingsError(f"{name} must be an integer in {low}..{high}, got {value!r}")

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}")

    def _check_heartbeat(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"heartbeat_timeout_seconds must be an integer, got {value!r}")
        # Global timeout = 100 x heartbeat: it must cover the whole hold.
        low = max(
            HEARTBEAT_TIMEOUT_MIN_SECONDS,
            math.ceil(self.hold_seconds / 100),
            # A heartbeat is recorded once per poll: the timer must outlast the longest wait.
            self.poll_interval_max_seconds + 60,
        )
        if not low <= value <= HEARTBEAT_TIMEOUT_MAX_SECONDS:
            raise SettingsError(
                f"heartbeat_timeout_seconds must be in {low}..{HEARTBEAT_TIMEOUT_MAX_SECONDS} "
                f"for these drain settings, got {value}"
            )


def _bool(value: bool) -> str:
    return "true" if value else "false"
