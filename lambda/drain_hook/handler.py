"""Lambda entry point: parse the event, dispatch, log. The drain itself lives in logic/.

Lifecycle events arrive from the intake queue (SQS records, one per run and a capped number of
runs at once, so a burst of scale-ins draws on Auto Scaling's API at a pace it allows); polls
from the wait loop; task-stopped and loop-end events from EventBridge; manual invokes from
people.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drain_hook import clock, contract
from drain_hook.adapters import clients
from drain_hook.errors import ClusterNotFound, InputRejected, classified
from drain_hook.models.answer import Answer
from drain_hook.models.requests import (
    IgnoredRequest,
    LifecycleRequest,
    LoopEndedRequest,
    PollRequest,
    Request,
    SpotWarningRequest,
    SweepRequest,
    TaskStoppedRequest,
    is_queue_batch,
    parse_queued,
    parse_request,
)
from drain_hook.observability import logger, metrics
from drain_hook.settings import load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from drain_hook.models.state import DrainState

# Each kind of event imports its logic on first use (in the function below): the busiest one, a
# task that stopped, never loads pydantic or the drain decision, so a cold start stays close to
# boto3's own import.

# Read and validated once per container: a bad setting fails the cold start with a clear error.
settings = load_settings()
clients.configure(settings.retry_mode, settings.retry_max_attempts)


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        if is_queue_batch(event):
            return _queue_batch(event).to_json()
        return _handle(parse_request(event)).to_json()
    except InputRejected as error:
        logger.warning("Input rejected", extra={"error": str(error)})
        metrics.add_metric(name=contract.METRIC_INPUT_REJECTED, unit="Count", value=1)
        raise
    except ClusterNotFound as error:
        logger.error("ECS cluster not found", extra={"cluster": error.cluster})
        metrics.add_metric(name=contract.METRIC_CLUSTER_NOT_FOUND, unit="Count", value=1)
        raise


def _queue_batch(event: dict[str, Any]) -> Answer:
    """The intake queue's record: one first round (the event source mapping sends one record at
    a time; a batch of more is refused, not taken in a loop).

    An error fails the run, as for any other event: the record goes back to the queue, comes
    again after its visibility timeout and, after maxReceiveCount receives, moves to the
    dead-letter queue. Errors stay function errors, so the errors alarm sees them. Answers the
    round's result, as for the event sent straight."""
    records = event["Records"]
    if len(records) != contract.INTAKE_BATCH_SIZE:
        raise InputRejected(
            f"expected {contract.INTAKE_BATCH_SIZE} intake queue record per invoke (the event "
            f"source mapping's batch size), got {len(records)}"
        )
    [record] = records
    logger.append_keys(message_id=record.get("messageId"))
    return _handle(parse_queued(record.get("body")))


def _handle(request: Request) -> Answer:
    now = clock.utc_now()
    current = load_settings()
    if isinstance(request, IgnoredRequest):
        logger.info("Ignored event", extra={"reason": request.reason})
        return Answer.terminal("ignored", request.reason, tasks_remaining=0)
    with classified():
        if isinstance(request, TaskStoppedRequest):
            from drain_hook.logic import fast_path

            logger.append_keys(source="task-event", task=request.task_arn)
            # Logged at debug only: every stopped task of the cluster comes here.
            answer = fast_path.on_task_stopped(request, current, now)
            return _said(answer, "Task event handled", debug=True)
        if isinstance(request, LoopEndedRequest):
            from drain_hook.logic import loop_release

            logger.append_keys(source="loop-end", execution=request.name)
            answer = loop_release.on_loop_ended(request, current)
            return _said(answer, "Loop end handled", execution=request.execution_arn)
        if isinstance(request, SweepRequest):
            from drain_hook.logic import sweep

            logger.append_keys(source="sweep")
            return _said(sweep.on_sweep(current, now), "Sweep done")
        if isinstance(request, SpotWarningRequest):
            from drain_hook.logic import spot

            logger.append_keys(source="spot-warning", instance_id=request.instance_id)
            answer = spot.on_spot_warning(request, current, now)
            return _said(answer, "Spot interruption warning handled")
        from drain_hook.logic import drain_flow

        if isinstance(request, PollRequest):
            state = request.state
            _log_keys(state, "poll")
            if state.done:  # a finished state passed back again: nothing left to do
                return Answer.of_state(state)
            result = drain_flow.poll_or_give_up(state, current, now)
        else:
            assert isinstance(request, LifecycleRequest)
            logger.append_keys(
                source=request.source,
                instance_id=request.instance_id,
                asg_name=request.asg_name,
                hook_name=request.hook_name,
                lifecycle_action_token=request.token,
            )
            result = drain_flow.first_round(request, current, now)
    _log_keys(result, None)
    logger.info(
        "Drain round done",
        extra={
            "action": result.action,
            "done": result.done,
            "tasks_remaining": result.tasks_remaining,
            "tasks": result.tasks.model_dump(),
            "wait_seconds": result.wait_seconds,
            "reason": result.reason,
        },
    )
    return Answer.of_state(result)


def _said(answer: Answer, message: str, *, debug: bool = False, **extra: Any) -> Answer:
    """Log an event's answer in one line, and return it."""
    log = logger.debug if debug else logger.info
    log(
        message, extra={"action": answer.action, "reason": answer.reason, **answer.details, **extra}
    )
    return answer


def _log_keys(state: DrainState, source: str | None) -> None:
    keys: dict[str, Any] = {
        "instance_id": state.instance_id,
        "cluster": state.cluster,
        "asg_name": state.asg_name,
        "hook_name": state.hook_name,
        "lifecycle_action_token": state.lifecycle_action_token,
        "poll": state.polls,
    }
    if source:
        keys["source"] = source
    logger.append_keys(**keys)


if settings.tracing_enabled:  # pragma: no cover - X-Ray only runs in AWS
    # Imported here so a function without tracing never loads the X-Ray SDK at cold start.
    from aws_lambda_powertools import Tracer

    lambda_handler = Tracer(
        service=logger.service, patch_modules=["boto3", "botocore"]
    ).capture_lambda_handler(lambda_handler)
