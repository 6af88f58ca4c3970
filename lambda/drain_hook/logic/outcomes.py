"""What a round tells the operator: one log line and the metrics for each outcome.

Metric names come from contract.py, where the CDK construct reads them for alarms and the
dashboard.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from drain_hook import contract
from drain_hook.observability import logger, metrics

if TYPE_CHECKING:  # the task-stopped path reports through here without loading pydantic
    from drain_hook.logic.decision import Finish
    from drain_hook.models.state import DrainState

_FINISH_METRIC = {
    "completed": contract.METRIC_DRAINS_COMPLETED,
    "forced": contract.METRIC_DRAINS_FORCED,
    "agent_lost": contract.METRIC_DRAINS_AGENT_LOST,
}


def deadline_policy_ran(state: DrainState) -> None:
    """The deadline policy stopped the remaining tasks: a forced drain, counted once."""
    _count(contract.METRIC_DRAINS_FORCED)
    logger.warning(
        "Drain deadline reached: stopping the remaining tasks", extra={"reason": state.reason}
    )


def _count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def released(
    state: DrainState, finish: Finish, now: datetime, last_stopped_at: datetime | None
) -> None:
    """The drain ended (lifecycle action completed, or a report-only drain finished)."""
    if finish == "none":
        logger.info("Completed the lifecycle action with CONTINUE", extra={"action": state.action})
        return
    if finish in _FINISH_METRIC:
        _count(_FINISH_METRIC[finish])
    metrics.add_metric(
        name=contract.METRIC_DRAIN_SECONDS,
        unit=MetricUnit.Seconds,
        value=max(0.0, state.elapsed_seconds(now)),
    )
    if last_stopped_at is not None and finish == "completed":
        release_latency(now, last_stopped_at)
    log = logger.warning if finish != "completed" else logger.info
    log(
        "Drain finished: lifecycle action completed with CONTINUE"
        if state.completes_lifecycle
        else "Drain finished",
        extra={"action": state.action, "reason": state.reason, "finish": finish},
    )


def release_latency(now: datetime, last_stopped_at: datetime) -> None:
    seconds = max(0.0, (now - last_stopped_at).total_seconds())
    metrics.add_metric(name=contract.METRIC_RELEASE_LATENCY, unit=MetricUnit.Seconds, value=seconds)


def finished(state: DrainState) -> None:
    _count(contract.METRIC_TASKS_REMAINING, state.tasks_remaining)


def tasks_remaining(count: int) -> None:
    _count(contract.METRIC_TASKS_REMAINING, count)


def tasks_stopped(arns: list[str], reason: str) -> None:
    logger.info("Stopped tasks", extra={"tasks": arns, "stop_reason": reason})
    _count(contract.METRIC_TASKS_STOPPED, len(arns))


def drain_refused(failure: str) -> None:
    logger.warning("ECS did not set the instance DRAINING", extra={"failure": failure})
    _count(contract.METRIC_DRAIN_FAILURES)


def record_refused(error: str) -> None:
    logger.warning(
        "ECS refused the drain record on the container instance: the drain goes on, polled "
        "by the wait loop only (no task-event fast path)",
        extra={"error": error},
    )


def ended(state: DrainState, reason: str) -> DrainState:
    logger.info("Lifecycle action over", extra={"reason": reason})
    return state.model_copy(
        update={"action": "lifecycle_ended", "done": True, "wait_seconds": 0, "reason": reason}
    )


def loop_started(name: str) -> None:
    _count(contract.METRIC_DRAINS_STARTED)
    logger.info("Started the wait loop", extra={"execution": name})


def duplicate(name: str) -> None:
    logger.info(
        "A wait loop for this lifecycle action is running already", extra={"execution": name}
    )


def other_hooks(asg_name: str, names: list[str]) -> None:
    """Another termination hook on the group holds the instance too: each must complete."""
    logger.warning(
        "Other termination lifecycle hooks hold this group's instances too; each must complete "
        "before the instance terminates, and one may release it early or hold it for up to 48 h "
        "(see the README: one termination hook per group)",
        extra={"asg_name": asg_name, "other_hooks": names},
    )
    _count(contract.METRIC_OTHER_TERMINATION_HOOKS, len(names))


def drain_done_by_event(
    started_at: datetime,
    now: datetime,
    last_stopped_at: datetime | None,
    *,
    after_deadline: bool = False,
) -> None:
    """A task-stopped event found the instance empty and completed its lifecycle action."""
    if not after_deadline:
        _count(contract.METRIC_DRAINS_COMPLETED)
    metrics.add_metric(
        name=contract.METRIC_DRAIN_SECONDS,
        unit=MetricUnit.Seconds,
        value=max(0.0, (now - started_at).total_seconds()),
    )
    if last_stopped_at is not None:
        release_latency(now, last_stopped_at)


def timed_out_before_drain(instance_id: str, asg_name: str) -> None:
    logger.error(
        "The lifecycle action had timed out before this first round: the instance was let go "
        "without a drain (raise heartbeat_timeout_seconds, or find what delayed the event)",
        extra={"instance_id": instance_id, "asg_name": asg_name},
    )
    _count(contract.METRIC_TIMED_OUT_BEFORE_DRAIN)


def loop_end_released(instance_id: str, execution: str, status: str, why: str) -> None:
    logger.warning(
        "The wait loop ended badly while its lifecycle action waited: completed it with CONTINUE",
        extra={"instance_id": instance_id, "execution": execution, "status": status, "why": why},
    )
    _count(contract.METRIC_LOOP_END_RELEASES)
