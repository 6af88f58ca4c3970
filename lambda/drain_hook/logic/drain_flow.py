"""The drain flow: observe what AWS reports, ask the pure decision what to do, do it.

This is the only module that combines adapters and decision. It never decides anything itself
beyond the order of calls: the instance is set to DRAINING before its tasks are counted, so no
task can be placed between counting and completing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from drain_hook.adapters import autoscaling, ecs, stepfunctions
from drain_hook.config import Settings
from drain_hook.logic.decision import (
    DRAINABLE_STATUSES,
    LIFECYCLE_WAIT_STATE,
    Observation,
    Plan,
    decide,
)
from drain_hook.models.requests import LifecycleRequest
from drain_hook.models.state import DrainState
from drain_hook.observability import logger, metrics

# Finish the drain this long before the hook's global timeout would end it for us.
GLOBAL_TIMEOUT_MARGIN_SECONDS = 60


class MissingClusterError(ValueError):
    """No cluster was named by the event, the hook's metadata or CLUSTER_NAME."""


def begin(request: LifecycleRequest, settings: Settings, now: datetime) -> DrainState:
    """The state for a new drain: cluster, deadline and heartbeat cadence fixed up front."""
    cluster = request.cluster or settings.cluster_name
    if not cluster:
        raise MissingClusterError(
            "no ECS cluster for this drain: expected the hook's NotificationMetadata "
            '{"cluster": "<name>"}, "cluster" in the manual invoke, or CLUSTER_NAME'
        )
    deadline = now + timedelta(seconds=settings.max_drain_seconds)
    heartbeat_every = None
    if request.asg_name and request.hook_name and not request.dry_run:
        timeouts = autoscaling.hook_timeouts(request.asg_name, request.hook_name)
        if timeouts:
            heartbeat_every = max(1, timeouts.heartbeat_seconds // 2)
            # The hook's global timeout runs from when the instance entered Terminating:Wait
            # and can't be extended: finish (and apply the deadline policy) before it.
            entered_wait = min(request.event_time or now, now)
            margin = GLOBAL_TIMEOUT_MARGIN_SECONDS
            if settings.at_deadline == "stop_tasks":
                margin += settings.deadline_stop_grace_seconds
            hard_end = entered_wait + timedelta(seconds=timeouts.global_seconds - margin)
            if hard_end < deadline:
                logger.warning(
                    "MAX_DRAIN_SECONDS exceeds the lifecycle hook's global timeout; "
                    "the drain deadline is brought forward",
                    extra={"global_timeout_seconds": timeouts.global_seconds},
                )
                deadline = max(now, hard_end)
    return DrainState(
        action="draining",
        instance_id=request.instance_id,
        cluster=cluster,
        asg_name=request.asg_name,
        hook_name=request.hook_name,
        lifecycle_action_token=request.token,
        dry_run=request.dry_run,
        started_at=now,
        deadline_at=deadline,
        heartbeat_every_seconds=heartbeat_every,
    )


def run_round(state: DrainState, settings: Settings, now: datetime) -> DrainState:
    """One round of the drain (the lifecycle event, or one poll of the wait loop)."""
    observation, state = _observe(state, write=not state.dry_run)
    plan = decide(state, observation, now, settings)
    if state.dry_run:
        return plan.state.model_copy(
            update={"action": "dry_run", "done": True, "wait_seconds": 0, "planned": plan.writes}
        )
    return _carry_out(plan, state, settings, now)


def _observe(state: DrainState, write: bool) -> tuple[Observation, DrainState]:
    waiting = None
    if state.completes_lifecycle:
        waiting = autoscaling.lifecycle_state(state.instance_id) == LIFECYCLE_WAIT_STATE
        if not waiting:
            return Observation(lifecycle_waiting=False, instance_status=None), state

    if state.container_instance_arn:
        instance = ecs.describe_container_instance(state.cluster, state.container_instance_arn)
    else:
        instance = ecs.find_container_instance(state.cluster, state.instance_id)
    if instance is None:
        return Observation(lifecycle_waiting=waiting, instance_status=None), state
    state = state.model_copy(update={"container_instance_arn": instance.arn})
    if instance.status not in DRAINABLE_STATUSES:
        return Observation(lifecycle_waiting=waiting, instance_status=instance.status), state

    status, failure = instance.status, None
    if status == "ACTIVE" and write:
        failure = ecs.set_draining(state.cluster, instance.arn)
        if failure:
            # Handled, not ignored: log it and look again; the next poll retries the drain.
            logger.warning("ECS did not set the instance DRAINING", extra={"failure": failure})
            metrics.add_metric(name="DrainFailures", unit=MetricUnit.Count, value=1)
            again = ecs.describe_container_instance(state.cluster, instance.arn)
            status = again.status if again else "INACTIVE"
        else:
            status = "DRAINING"
        if status not in DRAINABLE_STATUSES:
            return Observation(lifecycle_waiting=waiting, instance_status=status), state

    tasks, strategies = ecs.list_unstopped_tasks(
        state.cluster, instance.arn, dict(state.service_strategies)
    )
    state = state.model_copy(update={"service_strategies": strategies})
    observation = Observation(
        lifecycle_waiting=waiting, instance_status=status, tasks=tasks, drain_failure=failure
    )
    return observation, state


def _carry_out(plan: Plan, state: DrainState, settings: Settings, now: datetime) -> DrainState:
    result = plan.state
    target = (
        result.asg_name or "",
        result.hook_name or "",
        result.instance_id,
        result.lifecycle_action_token,
    )

    if plan.stop_tasks:
        stopped = ecs.stop_tasks(result.cluster, plan.stop_tasks, plan.stop_reason)
        logger.info("Stopped tasks", extra={"tasks": stopped, "reason": plan.stop_reason})
        metrics.add_metric(name="TasksStopped", unit=MetricUnit.Count, value=len(stopped))

    if plan.record_heartbeat and not autoscaling.record_heartbeat(*target):
        return _ended(result, "the lifecycle action ended while we were draining")

    if plan.complete_lifecycle:
        if autoscaling.complete_lifecycle_action(*target):
            logger.info(
                "Completed the lifecycle action with CONTINUE", extra={"action": result.action}
            )
        else:
            logger.info("The lifecycle action was already over; nothing to complete")

    if result.done:
        _record_finish(result, plan, now)
        return result

    metrics.add_metric(name="TasksRemaining", unit=MetricUnit.Count, value=result.tasks_remaining)
    if plan.start_loop:
        return _start_loop(result, settings)
    if plan.continue_in_new_execution:
        return _continue_in_new_execution(result, settings)
    return result


def _start_loop(state: DrainState, settings: Settings) -> DrainState:
    name = stepfunctions.execution_name(
        state.instance_id,
        state.lifecycle_action_token or f"manual-{int(state.started_at.timestamp())}",
    )
    state = state.model_copy(update={"execution_name": name})
    execution_arn = stepfunctions.start_loop(settings.state_machine_arn, name, _as_input(state))
    if execution_arn is None:
        logger.info("A wait loop for this lifecycle action already runs", extra={"execution": name})
        return state.model_copy(update={"action": "duplicate", "done": True, "wait_seconds": 0})
    metrics.add_metric(name="DrainsStarted", unit=MetricUnit.Count, value=1)
    logger.info("Started the wait loop", extra={"execution_arn": execution_arn})
    return state


def _continue_in_new_execution(state: DrainState, settings: Settings) -> DrainState:
    # Step Functions caps an execution's history at 25,000 events: hand the state on.
    name = stepfunctions.execution_name(
        state.execution_name or state.instance_id, f"g{state.execution_generation}"
    )
    execution_arn = stepfunctions.start_loop(settings.state_machine_arn, name, _as_input(state))
    logger.info("Carrying on in a fresh execution", extra={"execution": name, "arn": execution_arn})
    return state.model_copy(update={"action": "continued", "done": True})


def _ended(state: DrainState, reason: str) -> DrainState:
    return state.model_copy(
        update={"action": "lifecycle_ended", "done": True, "wait_seconds": 0, "reason": reason}
    )


def _record_finish(state: DrainState, plan: Plan, now: datetime) -> None:
    if plan.forced:
        metrics.add_metric(name="DrainsForced", unit=MetricUnit.Count, value=1)
    elif state.action in ("completed", "drained"):
        metrics.add_metric(name="DrainsCompleted", unit=MetricUnit.Count, value=1)
    if state.action in ("completed", "drained", "deadline"):
        metrics.add_metric(
            name="DrainSeconds", unit=MetricUnit.Seconds, value=state.elapsed_seconds(now)
        )
        metrics.add_metric(
            name="TasksRemaining", unit=MetricUnit.Count, value=state.tasks_remaining
        )
    logger.info("Drain finished", extra={"action": state.action, "reason": state.reason})


def _as_input(state: DrainState) -> dict[str, Any]:
    return state.model_dump(mode="json")
