"""The Lambda's settings, read from its environment once per container and validated up front."""

from __future__ import annotations

import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(RuntimeError):
    """The Lambda's environment is missing or has a bad setting."""


# Environment variable name -> field name. Everything the operator can tune is listed here.
ENVIRONMENT = {
    "CLUSTER_NAME": "cluster_name",
    "STATE_MACHINE_ARN": "state_machine_arn",
    "POLL_INTERVAL_FIRST_SECONDS": "poll_interval_first_seconds",
    "POLL_INTERVAL_MAX_SECONDS": "poll_interval_max_seconds",
    "MAX_DRAIN_SECONDS": "max_drain_seconds",
    "STANDALONE_TASKS": "standalone_tasks",
    "STANDALONE_GRACE_SECONDS": "standalone_grace_seconds",
    "DAEMON_TASKS_HOLD_INSTANCE": "daemon_tasks_hold_instance",
    "AT_DEADLINE": "at_deadline",
    "DEADLINE_STOP_GRACE_SECONDS": "deadline_stop_grace_seconds",
    "POLLS_PER_EXECUTION": "polls_per_execution",
    "RETRY_MODE": "retry_mode",
    "RETRY_MAX_ATTEMPTS": "retry_max_attempts",
    "TRACING_ENABLED": "tracing_enabled",
}

# The lifecycle hook's global timeout can never exceed 48 hours, so neither can a drain.
LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS = 48 * 3600


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster_name: str | None = Field(default=None, min_length=1)
    state_machine_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:"
    )
    poll_interval_first_seconds: int = Field(default=15, ge=1, le=3600)
    poll_interval_max_seconds: int = Field(default=120, ge=1, le=3600)
    max_drain_seconds: int = Field(default=7200, ge=60, le=LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS)
    standalone_tasks: Literal["wait", "stop"] = "wait"
    standalone_grace_seconds: int = Field(
        default=600, ge=0, le=LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS
    )
    daemon_tasks_hold_instance: bool = True
    at_deadline: Literal["stop_tasks", "continue"] = "stop_tasks"
    deadline_stop_grace_seconds: int = Field(default=45, ge=0, le=3600)
    # Step Functions caps an execution at 25,000 history events; a poll round costs about 8.
    polls_per_execution: int = Field(default=1000, ge=10, le=2500)
    retry_mode: Literal["standard", "adaptive"] = "adaptive"
    retry_max_attempts: int = Field(default=8, ge=1, le=20)
    tracing_enabled: bool = False

    @model_validator(mode="after")
    def _intervals_in_order(self) -> Settings:
        if self.poll_interval_first_seconds > self.poll_interval_max_seconds:
            raise ValueError(
                "POLL_INTERVAL_FIRST_SECONDS must not exceed POLL_INTERVAL_MAX_SECONDS "
                f"({self.poll_interval_first_seconds} > {self.poll_interval_max_seconds})"
            )
        return self


def settings_from(environ: dict[str, str]) -> Settings:
    """Settings from environment variables; errors name the variables at fault."""
    values = {
        field: environ[name] for name, field in ENVIRONMENT.items() if environ.get(name, "") != ""
    }
    try:
        return Settings(**values)
    except ValidationError as error:
        by_field = {field: name for name, field in ENVIRONMENT.items()}
        problems = []
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else ""
            name = by_field.get(field, "environment")
            problems.append(f"{name}: {problem['msg']}")
        raise ConfigError("ecs-drain-hook configuration error: " + "; ".join(problems)) from None


@cache
def load_settings() -> Settings:
    """Settings for this container, read once (call load_settings.cache_clear() to re-read)."""
    return settings_from(dict(os.environ))
