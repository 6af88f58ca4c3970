"""The drain flow: check the request against AWS, observe, ask the pure decision, act.

This is where adapters and decision meet for the lifecycle event (the first round) and each poll
of the wait loop. The order of calls is the only thing decided here: nothing is written before
the request agrees with AWS; the instance is set DRAINING before its tasks are counted (so no task
can be placed between counting and completing); the drain is recorded on the container instance
before the loop that owns it starts.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from drain_hook import clock
from drain_hook.adapters import autoscaling, ecs, stepfunctions
from drain_hook.errors import (
    ErrorsOutlastedRelease,
    InputRejected,
    TransientAwsError,
    classified,
)
from drain_hook.logic import outcomes
from drain_hook.logic.decision import (
    DRAINABLE_STATUSES,
    Observation,
    Plan,
    deadline_for,
    decide,
    failing_for_seconds,
    retry_policy,
)
from drain_hook.models.observations import (
    WARMED_PENDING_WAIT,
    ActionRecord,
    ContainerInstanceView,
    DrainRecord,
    HookView,
)
from drain_hook.models.requests import LifecycleRequest
from drain_hook.models.state import DrainState, HoldStartSource
from drain_hook.observability import logger
from drain_hook.settings import Settings

# A replayed event after a loop ended starts a fresh loop under the next free name.
LOOP_RESTARTS_MAX = 10
# Times in a state and in AWS's records agree to the second (attributes keep whole seconds).
TIME_TOLERANCE = timedelta(seconds=1)
LONGEST_DEADLINE_GRACE_SECONDS = 3600  # DEADLINE_STOP_GRACE_SECONDS' upper bound


def first_round(request: LifecycleRequest, settings: Settings, now: datetime) -> DrainState:
    """The round for a lifecycle event or manual invoke: check it against AWS, then drain."""
    cluster = request.cluster or settings.cluster_name
    if not cluster:
        raise InputRejected(
            "no ECS cluster for this drain: expected the hook's NotificationMetadata "
            '{"cluster": "<name>"}, "cluster" in the manual invoke, or CLUSTER_NAME'
        )
    write = not request.dry_run
    hook: HookView | None = None
    others: list[HookView] = []
    lifecycle_state: str | None = None
    heartbeat_at: datetime | None = None
    activity_start: datetime | None = None
    if request.asg_name and request.hook_name:
        lifecycle = autoscaling.describe_instance(request.instance_id)
        if lifecycle is not None and lifecycle.asg_name != request.asg_name:
            raise InputRejected(
                f"instance {request.instance_id} belongs to Auto Scaling group "
                f"{lifecycle.asg_name!r}, not {request.asg_name!r}: expected the group that "
                "holds the instance"
            )
        if lifecycle is None or not lifecycle.held_by_hook:
            where = lifecycle.lifecycle_state if lifecycle else "in no Auto Scaling group"
            return _ended_request(request, cluster, now, settings, f"the instance is {where}")
        hooks = autoscaling.lifecycle_hooks(request.asg_name)
        hook = next((h for h in hooks if h.name == request.hook_name), None)
        if hook is None or not hook.terminating:
            raise InputRejected(
                f"group {request.asg_name!r} has no lifecycle hook {request.hook_name!r} for "
                "autoscaling:EC2_INSTANCE_TERMINATING: expected the termination hook that holds "
                "the instance"
            )
        others = [h for h in hooks if h.terminating and h.name != hook.name]
        lifecycle_state = lifecycle.lifecycle_state
        if write:
            # Auto Scaling's heartbeat timer has run since the instance entered the wait, and
            # the event may have come late: restart it now. It also proves the token is known.
            if not autoscaling.record_heartbeat(
                request.asg_name, request.hook_name, request.instance_id, request.token
            ):
                # A made-up or stale token, or our action already ended while another hook
                # still holds the instance: nothing of ours waits, so nothing is written.
                _refused_too_soon(request, cluster, settings)
                what = f"token {request.token}" if request.token else "this instance"
                return _ended_request(
                    request,
                    cluster,
                    now,
                    settings,
                    f"Auto Scaling has no waiting lifecycle action for {what} on hook "
                    f"{request.hook_name!r} of group {request.asg_name!r}",
                )
            heartbeat_at = now
        activity_start = autoscaling.termination_started_at(
            request.asg_name, request.instance_id, now
        )
        if lifecycle_state == WARMED_PENDING_WAIT:
            logger.warning(
                "The instance is going back to a warm pool (ReuseOnScaleIn), which ECS does not "
                "support; draining it as for a termination",
                extra={"lifecycle_state": lifecycle_state},
            )

    instance = ecs.find_container_instance(cluster, request.instance_id)
    loop_prefix = _loop_prefix(request)
    started_at, source = _hold_start(activity_start, instance, loop_prefix, now)
    heartbeat_timeout = hook.heartbeat_timeout_seconds if hook else None
    state = DrainState(
        action="draining",
        instance_id=request.instance_id,
        cluster=cluster,
        container_instance_arn=instance.arn if instance else None,
        asg_name=request.asg_name,
        hook_name=request.hook_name,
        lifecycle_action_token=request.token,
        lifecycle_state=lifecycle_state,
        dry_run=request.dry_run,
        started_at=started_at,
        hold_start_source=source,
        deadline_at=deadline_for(
            started_at,
            settings.max_drain_seconds,
            heartbeat_timeout,
            settings.deadline_grace_seconds,
        ),
        max_drain_seconds=settings.max_drain_seconds,
        heartbeat_timeout_seconds=heartbeat_timeout,
        last_heartbeat_at=heartbeat_at,
    )
    state = state.model_copy(
        update={"retry": retry_policy(state, settings), "round_id": uuid.uuid4().hex}
    )
    observation, state = _observe(state, instance, held=True if hook else None, write=write)
    # This round built the hold start itself, from AWS's record or from now where AWS has none:
    # nothing passed in to check it against.
    plan = _verified(
        decide(state, observation, now, settings),
        state,
        observation,
        now,
        settings,
        hold_start_known=True,
    )
    if request.dry_run:
        planned = ["record lifecycle heartbeat"] if hook else []
        for write_ in plan.writes:
            if write_ == "start the wait loop":
                planned.append("record the drain on the container instance")
            planned.append(write_)
        return plan.state.model_copy(
            update={"action": "dry_run", "done": True, "wait_seconds": 0, "planned": planned}
        )
    result = _carry_out(plan, state, settings, now, loop_prefix=loop_prefix, instance=instance)
    if others and result.action != "duplicate":
        outcomes.other_hooks(request.asg_name or "", [h.name for h in others])
    return result


def poll_or_give_up(state: DrainState, settings: Settings, now: datetime) -> DrainState:
    """A poll; when it fails for a reason that may pass and polls have been failing for the
    release time by the clock, ErrorsOutlastedRelease instead, which ends the loop.

    The state machine also counts its retry waits against the release time, but a failing poll
    itself takes time (botocore's back-off, up to the function's timeout) that only a clock
    sees: without this, an outage would hold the instance up to three times as long."""
    try:
        with classified():
            return poll(state, settings, now)
    except TransientAwsError as error:
        failing = failing_for_seconds(state, clock.utc_now())
        if (
            state.retry is not None
            and failing is not None
            and failing >= state.retry.release_after_seconds
        ):
            raise ErrorsOutlastedRelease(
                f"polls have failed for {failing:.0f} s (release after "
                f"{state.retry.release_after_seconds} s), the last with: {error}"
            ) from error
        raise


def poll(state: DrainState, settings: Settings, now: datetime) -> DrainState:
    """One poll of the wait loop, with the state it passed back (checked against AWS)."""
    if state.dry_run:
        raise InputRejected(
            "a dry-run state is a report, not a drain: nothing polls it; invoke without dry_run "
            "to drain"
        )
    held: bool | None = None
    if state.completes_lifecycle:
        lifecycle = autoscaling.describe_instance(state.instance_id)
        if lifecycle is not None and lifecycle.asg_name != state.asg_name:
            raise InputRejected(
                f"the state names group {state.asg_name!r} but instance {state.instance_id} "
                f"belongs to {lifecycle.asg_name!r}: pass back the state this function returned"
            )
        held = lifecycle is not None and lifecycle.held_by_hook
        if not held:
            plan = decide(state, Observation(held=False, instance=None), now, settings)
            return plan.state
    if state.container_instance_arn:
        instance = ecs.describe_container_instance(state.cluster, state.container_instance_arn)
    else:
        instance = ecs.find_container_instance(state.cluster, state.instance_id)
    state = _agree_with_record(state, instance)
    observation, state = _observe(state, instance, held=held, write=True)
    plan = _verified(decide(state, observation, now, settings), state, observation, now, settings)
    return _carry_out(plan, state, settings, now, loop_prefix=None, instance=instance)


def _loop_prefix(request: LifecycleRequest) -> str:
    return stepfunctions.loop_name_prefix(
        request.instance_id, request.token, request.hook_name, request.asg_name
    )


def _ended_request(
    request: LifecycleRequest, cluster: str, now: datetime, settings: Settings, reason: str
) -> DrainState:
    """A request whose lifecycle action no longer waits on our hook: nothing to do or write."""
    if request.source != "manual" and _timed_out_before_drain(request, now, settings):
        outcomes.timed_out_before_drain(request.instance_id, request.asg_name or "")
    state = DrainState(
        action="lifecycle_ended",
        done=True,
        reason=f"{reason}: nothing to drain or complete",
        instance_id=request.instance_id,
        cluster=cluster,
        asg_name=request.asg_name,
        hook_name=request.hook_name,
        lifecycle_action_token=request.token,
        dry_run=request.dry_run,
        started_at=now,
        deadline_at=now + timedelta(seconds=settings.max_drain_seconds),
        max_drain_seconds=settings.max_drain_seconds,
    )
    logger.info("Nothing to drain", extra={"reason": state.reason})
    return state


def _refused_too_soon(request: LifecycleRequest, cluster: str, settings: Settings) -> None:
    """Raise TransientAwsError when a lifecycle event's token is refused while Auto Scaling
    shows the instance waiting and nothing of ours ever drained it (no loop for the action, no
    drain record on its container instance): Auto Scaling has answered "No active Lifecycle
    Action" for an action that had just begun (a public report; a retry seconds later
    succeeded). The intake queue takes the event again; answered ended instead, the instance
    would wait out the hook's timeout undrained. A stale or made-up token for an instance we
    drain is answered ended, as before."""
    if request.source == "manual" or not request.token:
        return
    loop = stepfunctions.execution_arn(settings.state_machine_arn, _loop_prefix(request))
    if stepfunctions.describe(loop) is not None:
        return
    instance = ecs.find_container_instance(cluster, request.instance_id)
    if instance is not None and instance.drain_record is not None:
        return
    raise TransientAwsError(
        f"Auto Scaling shows {request.instance_id} waiting on hook {request.hook_name!r} but "
        f"refused the heartbeat for token {request.token}, and nothing drained it yet: taken "
        "again later"
    )


def _timed_out_before_drain(request: LifecycleRequest, now: datetime, settings: Settings) -> bool:
    """Whether the hook's heartbeat timeout ended this action before any loop of ours ran: the
    event came too late (not a duplicate of a drain that finished). Read from AWS: the hook's
    timeout, the scaling activity's start, and Step Functions' record of the loop's name."""
    if not request.asg_name or not request.hook_name:
        return False
    hooks = autoscaling.lifecycle_hooks(request.asg_name)
    ours = next((h for h in hooks if h.name == request.hook_name), None)
    started = autoscaling.termination_started_at(request.asg_name, request.instance_id, now)
    if ours is None or started is None:
        return False
    if now < started + timedelta(seconds=ours.heartbeat_timeout_seconds):
        return False
    loop = stepfunctions.execution_arn(settings.state_machine_arn, _loop_prefix(request))
    return stepfunctions.describe(loop) is None


def _hold_start(
    activity_start: datetime | None,
    instance: ContainerInstanceView | None,
    loop_prefix: str,
    now: datetime,
) -> tuple[datetime, HoldStartSource]:
    """When the hold began: Auto Scaling's scaling activity; else our earlier record of this same
    lifecycle action's drain on the container instance; else now."""
    if activity_start is not None:
        return activity_start, "scaling_activity"
    record = instance.drain_record if instance else None
    if record is not None and record.loop.startswith(loop_prefix) and record.started_at <= now:
        return record.started_at, "drain_record"
    return now, "first_seen"


def _agree_with_record(state: DrainState, instance: ContainerInstanceView | None) -> DrainState:
    """A state passed back must agree with ECS's record of the drain before it counts."""
    if instance is not None and instance.ec2_instance_id != state.instance_id:
        raise InputRejected(
            f"container instance {instance.arn} is EC2 instance {instance.ec2_instance_id}, not "
            f"{state.instance_id}: pass back the state this function returned"
        )
    earliest = deadline_for(
        state.started_at,
        state.max_drain_seconds,
        state.heartbeat_timeout_seconds,
        LONGEST_DEADLINE_GRACE_SECONDS,
    )
    if state.deadline_at < earliest - TIME_TOLERANCE:
        raise InputRejected(
            f"the state's deadline_at {state.deadline_at:%Y-%m-%dT%H:%M:%SZ} is earlier than its "
            f"started_at and max_drain_seconds allow ({earliest:%Y-%m-%dT%H:%M:%SZ}): expected "
            "the state this function returned, passed back unchanged"
        )
    record = instance.drain_record if instance else None
    if record is None:
        return state
    if state.started_at < record.started_at - TIME_TOLERANCE:
        raise InputRejected(
            f"the state says the hold began at {state.started_at:%Y-%m-%dT%H:%M:%SZ}, before "
            f"ECS's record of this drain ({record.started_at:%Y-%m-%dT%H:%M:%SZ}): refusing to "
            "act on an earlier start than AWS recorded"
        )
    if state.started_at > record.started_at + TIME_TOLERANCE:
        return state.model_copy(
            update={"started_at": record.started_at, "hold_start_source": "drain_record"}
        )
    return state


def _observe(
    state: DrainState, instance: ContainerInstanceView | None, *, held: bool | None, write: bool
) -> tuple[Observation, DrainState]:
    if instance is None:
        return Observation(held=held, instance=None), state
    state = state.model_copy(update={"container_instance_arn": instance.arn})
    if instance.status not in DRAINABLE_STATUSES:
        return Observation(held=held, instance=instance), state

    failure = None
    if instance.status == "ACTIVE" and write:
        failure = ecs.set_draining(state.cluster, instance.arn)
        if failure:
            # Handled, not ignored: log it and look again; the next poll retries the drain.
            outcomes.drain_refused(failure)
            again = ecs.describe_container_instance(state.cluster, instance.arn)
            instance = again or replace(instance, status="INACTIVE")
        else:
            instance = replace(instance, status="DRAINING")
        if instance.status not in DRAINABLE_STATUSES:
            return Observation(held=held, instance=instance, drain_failure=failure), state

    listing = ecs.list_unstopped_tasks(state.cluster, instance, dict(state.service_strategies))
    state = state.model_copy(update={"service_strategies": listing.strategies})
    observation = Observation(
        held=held,
        instance=instance,
        tasks=listing.tasks,
        drain_failure=failure,
        last_stopped_at=listing.last_stopped_at,
    )
    return observation, state


def _verified(
    plan: Plan,
    state: DrainState,
    observation: Observation,
    now: datetime,
    settings: Settings,
    *,
    hold_start_known: bool = False,
) -> Plan:
    """Check what a destructive step rests on against AWS's own record, and decide again."""
    if not plan.rests_on or state.dry_run:
        return plan
    instance = observation.instance
    if "daemon_kinds" in plan.rests_on and instance is not None:
        # Which tasks are daemon tasks decides the release: read the services afresh.
        listing = ecs.list_unstopped_tasks(state.cluster, instance, {})
        state = state.model_copy(update={"service_strategies": listing.strategies})
        observation = replace(observation, tasks=listing.tasks)
    if "hold_start" in plan.rests_on and not hold_start_known:
        state = _verified_hold_start(state, instance, now)
    if "agent_lost_since" in plan.rests_on:
        record = instance.drain_record if instance else None
        if record is None or record.agent_lost_since is None:
            state = state.model_copy(update={"agent_disconnected_since": None})
    again = decide(state, observation, now, settings)
    return replace(again, rests_on=())


def _verified_hold_start(
    state: DrainState, instance: ContainerInstanceView | None, now: datetime
) -> DrainState:
    """started_at and the hook's heartbeat timeout from AWS, before a time-based stop or release."""
    record = instance.drain_record if instance else None
    trusted: datetime | None = record.started_at if record else None
    heartbeat = state.heartbeat_timeout_seconds
    if state.completes_lifecycle and state.asg_name:
        hooks = autoscaling.lifecycle_hooks(state.asg_name, fresh=True)
        ours = next((h for h in hooks if h.name == state.hook_name), None)
        heartbeat = ours.heartbeat_timeout_seconds if ours else heartbeat
        activity = autoscaling.termination_started_at(state.asg_name, state.instance_id, now)
        trusted = activity or trusted
    if trusted is None:
        raise InputRejected(
            f"no AWS record of when the drain of {state.instance_id} began (no scaling activity, "
            "no drain record on the container instance): refusing a time-based stop or release "
            "on the word of the state passed in"
        )
    if state.started_at < trusted - TIME_TOLERANCE:
        raise InputRejected(
            f"the state says the hold began at {state.started_at:%Y-%m-%dT%H:%M:%SZ}, before "
            f"AWS's record ({trusted:%Y-%m-%dT%H:%M:%SZ}): refusing to act on an earlier start"
        )
    return state.model_copy(update={"started_at": trusted, "heartbeat_timeout_seconds": heartbeat})


def _carry_out(
    plan: Plan,
    state: DrainState,
    settings: Settings,
    now: datetime,
    *,
    loop_prefix: str | None,
    instance: ContainerInstanceView | None,
) -> DrainState:
    result = plan.state
    if plan.stop_tasks:
        stopped = ecs.stop_tasks(result.cluster, plan.stop_tasks, plan.stop_reason)
        outcomes.tasks_stopped(stopped, plan.stop_reason)
    if not result.done and plan.finish == "forced":
        outcomes.deadline_policy_ran(result)

    if plan.record_agent_lost is not None and result.container_instance_arn:
        lost = None if plan.record_agent_lost == "clear" else plan.record_agent_lost
        version = instance.version if lost is not None and instance is not None else None
        _record_drain(result, result.execution_name or loop_prefix or "", lost, version)

    if plan.record_heartbeat and not autoscaling.record_heartbeat(*_target(result)):
        return outcomes.ended(result, "the lifecycle action ended while we were draining")

    if plan.complete_lifecycle:
        if autoscaling.complete_lifecycle_action(*_target(result)):
            outcomes.released(result, plan.finish, now, plan.last_stopped_at)
        else:
            logger.info("The lifecycle action was already over; nothing to complete")
            result = result.model_copy(update={"action": "lifecycle_ended"})
    elif result.done:
        outcomes.released(result, plan.finish, now, plan.last_stopped_at)

    if result.done:
        recorded = instance is not None and (instance.drain_record or result.execution_name)
        if not result.completes_lifecycle and result.container_instance_arn and recorded:
            # A report-only drain leaves the instance DRAINING but takes its record off.
            ecs.delete_drain_record(result.cluster, result.container_instance_arn)
        outcomes.finished(result)
        return result

    outcomes.tasks_remaining(result.tasks_remaining)
    if plan.start_loop:
        assert loop_prefix is not None
        return _start_loop(result, settings, loop_prefix, instance)
    if plan.continue_in_new_execution:
        return _continue_in_new_execution(result, settings, instance)
    return result


def _target(state: DrainState) -> tuple[str, str, str, str | None]:
    return (
        state.asg_name or "",
        state.hook_name or "",
        state.instance_id,
        state.lifecycle_action_token,
    )


def _record_drain(
    state: DrainState,
    loop: str,
    agent_lost_since: datetime | None,
    agent_lost_version: int | None = None,
) -> None:
    assert state.container_instance_arn is not None
    action = (
        ActionRecord(hook_name=state.hook_name, asg_name=state.asg_name)
        if state.hook_name and state.asg_name
        else None
    )
    record = DrainRecord(
        started_at=state.started_at,
        loop=loop,
        agent_lost_since=agent_lost_since,
        agent_lost_version=agent_lost_version,
    )
    refused = ecs.put_drain_record(state.cluster, state.container_instance_arn, record, action)
    if refused:
        # The loop still drains; only the task-event fast path and the record's checks are lost.
        outcomes.record_refused(refused)
    else:
        ecs.note_drain(state.cluster, state.container_instance_arn, under_way=True)


def _start_loop(
    state: DrainState,
    settings: Settings,
    prefix: str,
    instance: ContainerInstanceView | None,
) -> DrainState:
    """One loop per lifecycle action: a RUNNING one is a duplicate; after a loop ended (its name
    stays taken for 90 days) a replay starts the next name and resumes the drain."""
    names = [prefix] + [f"{prefix}-r{n}" for n in range(1, LOOP_RESTARTS_MAX)]
    record = instance.drain_record if instance else None
    if record is not None and record.loop in names:
        names = names[names.index(record.loop) :]  # the current owner first
    for name in names:
        candidate = state.model_copy(update={"execution_name": name})
        if record is None or record.loop != name or record.started_at != state.started_at:
            _record_drain(candidate, name, None)
        if stepfunctions.start(settings.state_machine_arn, name, candidate.model_dump(mode="json")):
            outcomes.loop_started(name)
            return candidate
        existing = stepfunctions.describe(
            stepfunctions.execution_arn(settings.state_machine_arn, name)
        )
        if existing is None or existing.status == "RUNNING":
            outcomes.duplicate(name)
            return candidate.model_copy(
                update={"action": "duplicate", "done": True, "wait_seconds": 0}
            )
        logger.info(
            "The loop under this name has ended while the action still waits: starting the next",
            extra={"execution": name, "status": existing.status},
        )
        record = None
    raise InputRejected(
        f"the lifecycle action of {state.instance_id} has had {LOOP_RESTARTS_MAX} loops already"
    )


def _continue_in_new_execution(
    state: DrainState, settings: Settings, instance: ContainerInstanceView | None
) -> DrainState:
    # Step Functions caps an execution's history at 25,000 events: hand the state on.
    base = re.sub(r"-g\d+$", "", state.execution_name or state.instance_id)
    name = f"{base[: stepfunctions.PREFIX_LENGTH_MAX]}-g{state.execution_generation}"
    handed = state.model_copy(update={"execution_name": name})
    if state.container_instance_arn:
        # The new owner, and whatever the record knows of a disconnected agent, unchanged.
        record = instance.drain_record if instance else None
        _record_drain(
            handed,
            name,
            record.agent_lost_since if record else None,
            record.agent_lost_version if record else None,
        )
    stepfunctions.start(settings.state_machine_arn, name, handed.model_dump(mode="json"))
    logger.info("Carrying on in a fresh execution", extra={"execution": name})
    return state.model_copy(update={"action": "continued", "done": True})
