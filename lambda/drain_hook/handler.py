"""Lambda entry point: parse the event, dispatch, log. The drain itself lives in logic/."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from drain_hook import clock
from drain_hook.adapters import clients
from drain_hook.config import load_settings
from drain_hook.logic import drain_flow
from drain_hook.models.requests import (
    IgnoredRequest,
    LifecycleRequest,
    PollRequest,
    parse_request,
)
from drain_hook.observability import logger, metrics

# Read and validated once per container: a bad setting fails the cold start with a clear error.
settings = load_settings()
clients.configure(settings.retry_mode, settings.retry_max_attempts)


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    now = clock.utc_now()

    if isinstance(request, IgnoredRequest):
        logger.info("Ignored event", extra={"reason": request.reason})
        return {
            "done": True,
            "instance_id": None,
            "tasks_remaining": 0,
            "action": "ignored",
            "wait_seconds": 0,
            "reason": request.reason,
        }

    if isinstance(request, PollRequest):
        state = request.state
        if state.done:  # a finished state passed back again: nothing left to do
            return state.model_dump(mode="json")
    else:
        assert isinstance(request, LifecycleRequest)
        logger.append_keys(source=request.source)
        state = drain_flow.begin(request, load_settings(), now)

    logger.append_keys(
        instance_id=state.instance_id,
        cluster=state.cluster,
        asg_name=state.asg_name,
        hook_name=state.hook_name,
        lifecycle_action_token=state.lifecycle_action_token,
        poll=state.polls,
    )
    result = drain_flow.run_round(state, load_settings(), now)
    logger.info(
        "Drain round done",
        extra={
            "action": result.action,
            "done": result.done,
            "tasks_remaining": result.tasks_remaining,
            "tasks": result.tasks.model_dump(),
            "wait_seconds": result.wait_seconds,
        },
    )
    return result.model_dump(mode="json")


if settings.tracing_enabled:  # pragma: no cover - X-Ray only runs in AWS
    # Imported here so a function without tracing never loads the X-Ray SDK at cold start.
    from aws_lambda_powertools import Tracer

    lambda_handler = Tracer(
        service=logger.service, patch_modules=["boto3", "botocore"]
    ).capture_lambda_handler(lambda_handler)
