"""Release the lifecycle action of a wait loop that ended FAILED, TIMED_OUT or ABORTED.

A loop that fails (input rejected, permanent error, errors outlasting ERROR_RELEASE_SECONDS),
hits its TimeoutSeconds or is stopped by an operator ends without completing its lifecycle
action; Step Functions emits an "Execution Status Change" event for it. Nothing in the event is
taken on its word: the execution's end and input come from DescribeExecution, the ownership of
the drain from ECS's record on the container instance, the wait from Auto Scaling. Only the loop
that owns the drain releases it, so a stray execution started by hand can't end someone else's.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from drain_hook import contract
from drain_hook.adapters import autoscaling, ecs, stepfunctions
from drain_hook.errors import ClusterNotFound
from drain_hook.logic import outcomes, retention
from drain_hook.models.answer import Answer, AnswerAction
from drain_hook.models.requests import LoopEndedRequest
from drain_hook.models.state import DrainState
from drain_hook.settings import Settings


def on_loop_ended(request: LoopEndedRequest, settings: Settings) -> Answer:
    if request.state_machine_arn != settings.state_machine_arn:
        return Answer.terminal("ignored", "an execution of another state machine")
    execution = stepfunctions.describe(request.execution_arn)
    if (
        execution is None
        or execution.state_machine_arn != settings.state_machine_arn
        or execution.status not in contract.LOOP_BAD_ENDS
    ):
        status = execution.status if execution else "unknown"
        return Answer.terminal("ignored", f"Step Functions reports this execution {status}")
    try:
        state = DrainState.model_validate_json(execution.input or "")
    except ValidationError:
        return Answer.terminal(
            "ignored", "the execution's input is not a drain state of this function"
        )
    instance_id = state.instance_id

    def answer(action: AnswerAction, reason: str) -> Answer:
        return Answer.terminal(action, reason, instance_id=instance_id)

    if not state.completes_lifecycle or state.asg_name is None or state.hook_name is None:
        return answer("ignored", "a report-only drain: no lifecycle action to release")

    owner = _owner(state)
    prefix = stepfunctions.loop_name_prefix(
        state.instance_id, state.lifecycle_action_token, state.hook_name, state.asg_name
    )
    owns = execution.name == owner if owner else execution.name.startswith(prefix)
    if not owns:
        return answer(
            "ignored", f"execution {execution.name} does not own this drain (owner: {owner})"
        )
    lifecycle = autoscaling.describe_instance(state.instance_id)
    if lifecycle is None or not lifecycle.held_by_hook or lifecycle.asg_name != state.asg_name:
        return answer("lifecycle_ended", "the lifecycle action no longer waits")
    completion = retention.failure_result(settings, state.asg_name, state.instance_id, "loop_end")
    if not autoscaling.complete_lifecycle_action(
        state.asg_name, state.hook_name, state.instance_id, None, completion
    ):
        return answer("lifecycle_ended", "the lifecycle action was already over")
    why = ": ".join(part for part in (execution.error, execution.cause) if part)
    outcomes.loop_end_released(state.instance_id, execution.name, execution.status, why, completion)
    if completion == retention.ABANDON:
        outcomes.retained(state.instance_id, state.asg_name, "loop_end")
    return answer(
        "released",
        f"the wait loop ended {execution.status} ({why or 'no cause'}): completed with "
        f"{completion}",
    )


def _owner(state: DrainState) -> str | None:
    """The loop that owns the drain, per ECS's record on the container instance."""
    if not state.container_instance_arn:
        return None
    try:
        instance = ecs.describe_container_instance(state.cluster, state.container_instance_arn)
    except (ClusterNotFound, ClientError, BotoCoreError):
        # ECS can't say (gone, throttled past retries): ownership falls back to the name.
        return None
    if instance is None or instance.ec2_instance_id != state.instance_id:
        return None
    return instance.drain_record.loop if instance.drain_record else None
