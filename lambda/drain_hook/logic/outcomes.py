"""What a round tells the operator: one log line and the metrics for each outcome.

Metric names come from contract.py, where the CDK construct reads them for alarms and the
dashboard.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from drain_hook import contract
from drain_hook.observability import NAMESPACE, SERVICE, logger, metrics

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


def loop_end_released(
    instance_id: str, execution: str, status: str, why: str, result: str = "CONTINUE"
) -> None:
    logger.warning(
        f"The wait loop ended badly while its lifecycle action waited: completed it with {result}",
        extra={"instance_id": instance_id, "execution": execution, "status": status, "why": why},
    )
    _count(contract.METRIC_LOOP_END_RELEASES)


def drain_age(state: DrainState, now: datetime) -> None:
    """How old this drain still under way is, per cluster (its own dimension set, so an alarm
    can watch one cluster's Maximum). Emitted by each round that keeps waiting."""
    seconds = max(0.0, state.elapsed_seconds(now))
    # EphemeralMetrics: a metric set of its own, so the cluster dimension stays on this one.
    single = EphemeralMetrics(service=SERVICE, namespace=NAMESPACE)
    single.add_dimension(name=contract.CLUSTER_DIMENSION, value=cluster_name(state.cluster))
    single.add_metric(
        name=contract.METRIC_OLDEST_DRAIN_SECONDS, unit=MetricUnit.Seconds, value=seconds
    )
    single.flush_metrics()
    single.clear_metrics()  # flush keeps them when metrics are disabled (the sandbox)


def cluster_name(cluster: str) -> str:
    """A cluster's name, whether it was given by name or by ARN (.../cluster/<name>)."""
    return cluster.rsplit("/", 1)[-1]


def drain_blockers(
    state: DrainState,
    now: datetime,
    blockers: list[dict[str, object]],
    *,
    standalone: int,
    daemon: int,
    agent_connected: bool | None,
) -> None:
    """A drain past half its deadline: what still holds it, in one line per poll."""
    logger.warning(
        "Drain past half its deadline: what holds it",
        extra={
            "elapsed_seconds": int(state.elapsed_seconds(now)),
            "deadline_at": state.deadline_at.isoformat(),
            "services": blockers,
            "standalone_tasks": standalone,
            "daemon_tasks": daemon,
            "agent_connected": agent_connected,
            "reason": state.reason,
        },
    )


def lost_event_recovered(instance_id: str, asg_name: str, action: str) -> None:
    """The sweep's lifecycle message drained an action whose own event had not come."""
    logger.warning(
        "A lifecycle action whose event never reached us (or came after the sweep) is drained",
        extra={"instance_id": instance_id, "asg_name": asg_name, "action": action},
    )
    _count(contract.METRIC_LOST_EVENTS_RECOVERED)


def skipped_group_deleting(instance_id: str, asg_name: str, status: str) -> None:
    logger.warning(
        "The group is being deleted: completed its lifecycle action at once, without a drain",
        extra={"instance_id": instance_id, "asg_name": asg_name, "group_status": status},
    )
    _count(contract.METRIC_DRAINS_SKIPPED_GROUP_DELETING)


def retained(instance_id: str, asg_name: str, why: str) -> None:
    logger.warning(
        "The drain failed: completed with ABANDON, and the group's instance lifecycle policy "
        "retains the instance (Terminating:Retained) with its tasks; finish it with "
        "TerminateInstanceInAutoScalingGroup",
        extra={"instance_id": instance_id, "asg_name": asg_name, "failure": why},
    )
    _count(contract.METRIC_DRAINS_RETAINED)
