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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from drain_hook import clock, contract
from drain_hook.adapters import autoscaling, ec2, ecs, stepfunctions
from drain_hook.errors import (
    ErrorsOutlastedRelease,
    InputRejected,
    TransientAwsError,
    classified,
)
from drain_hook.logic import outcomes, retention
from drain_hook.logic.decision import (
    Observation,
    Plan,
    Write,
    deadline_for,
    decide,
    failing_for_seconds,
    failure_kind,
    interrupted,
    is_first_round,
    past_half_deadline,
    retry_policy,
    settings_deadline,
)
from drain_hook.models.observations import (
    DRAINABLE_STATUSES,
    WARMED_PENDING_WAIT,
    ActionRecord,
    ContainerInstanceView,
    DrainRecord,
    HookView,
    holding_tasks,
    short_services,
)
from drain_hook.models.requests import LifecycleRequest
from drain_hook.models.state import DrainState, HoldStartSource
from drain_hook.observability import logger
from drain_hook.settings import Settings, Tunables

# A replayed event after a loop ended starts a fresh loop under the next free name.
LOOP_RESTARTS_MAX = 10
# Times in a state and in AWS's records agree to the second (attributes keep whole seconds).
TIME_TOLERANCE = timedelta(seconds=1)
# The longest grace the deadline policy takes: a state's deadline is no earlier than this allows.
_, LONGEST_DEADLINE_GRACE_SECONDS = Tunables.bounds("deadline_stop_grace_seconds")


@dataclass(frozen=True)
class CheckedAction:
    """What Auto Scaling says of the lifecycle action a first round is for (all empty for a
    manual drain with no hook)."""

    hook: HookView | None = None
    other_hooks: tuple[str, ...] = ()  # other termination hooks of the group
    lifecycle_state: str | None = None
    heartbeat_at: datetime | None = None  # the heartbeat this round recorded
    activity_start: datetime | None = None  # when the scaling activity began, if recorded


def first_round(request: LifecycleRequest, settings: Settings, now: datetime) -> DrainState:
    """The round for a lifecycle event or manual invoke: check it against AWS, then drain."""
    cluster = _cluster_of(request, settings)
    checked = _check_action(request, cluster, settings, now)
    if isinstance(checked, DrainState):  # nothing of ours waits, or the group goes
        return checked
    instance = ecs.find_container_instance(cluster, request.instance_id)
    state = _first_state(request, cluster, checked, instance, settings, now)
    observation, state = _observe(
        state,
        instance,
        held=True if checked.hook else None,
        write=not request.dry_run,
        settings=settings,
        now=now,
    )
    # This round built the hold start itself, from AWS's record or from now where AWS has none:
    # nothing passed in to check it against.
    decided = decide(state, observation, now, settings)
    plan = _verified(decided, state, observation, now, settings, hold_start_known=True)
    if request.dry_run:
        return _dry_run(plan, heartbeat_first=checked.hook is not None)
    result = _carry_out(plan, settings, now, loop_prefix=_loop_prefix(request), instance=instance)
    _report_first_round(request, checked, result)
    return result


def _cluster_of(request: LifecycleRequest, settings: Settings) -> str:
    cluster = request.cluster or settings.cluster_name
    if not cluster:
        raise InputRejected(
            "no ECS cluster for this drain: expected the hook's NotificationMetadata "
            '{"cluster": "<name>"}, "cluster" in the manual invoke, or CLUSTER_NAME'
        )
    return cluster


def _check_action(
    request: LifecycleRequest, cluster: str, settings: Settings, now: datetime
) -> CheckedAction | DrainState:
    """Check the request's lifecycle action against Auto Scaling: the group holds the instance,
    the hook is a termination hook of that group, and (for a real run) the action still waits,
    which its heartbeat proves. The ended round's state when nothing of ours waits."""
    if not (request.asg_name and request.hook_name):
        return CheckedAction()
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
    heartbeat_at: datetime | None = None
    if not request.dry_run:
        if request.source == "sweep":
            deleting = _deleting_group_round(request, cluster, now, settings)
            if deleting is not None:
                return deleting
        # Auto Scaling's heartbeat timer has run since the instance entered the wait, and the
        # event may have come late: restart it now. It also proves the token is known.
        if not autoscaling.record_heartbeat(
            request.asg_name, request.hook_name, request.instance_id, request.token
        ):
            # A made-up or stale token, or our action already ended while another hook still
            # holds the instance: nothing of ours waits, so nothing is written.
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
    activity_start = autoscaling.termination_started_at(request.asg_name, request.instance_id, now)
    if lifecycle.lifecycle_state == WARMED_PENDING_WAIT:
        logger.warning(
            "The instance is going back to a warm pool (ReuseOnScaleIn), which ECS does not "
            "support; draining it as for a termination",
            extra={"lifecycle_state": lifecycle.lifecycle_state},
        )
    return CheckedAction(
        hook=hook,
        other_hooks=tuple(h.name for h in hooks if h.terminating and h.name != hook.name),
        lifecycle_state=lifecycle.lifecycle_state,
        heartbeat_at=heartbeat_at,
        activity_start=activity_start,
    )


def _first_state(
    request: LifecycleRequest,
    cluster: str,
    checked: CheckedAction,
    instance: ContainerInstanceView | None,
    settings: Settings,
    now: datetime,
) -> DrainState:
    """The drain's state before the first decision: when the hold began, and its deadline."""
    started_at, source = _hold_start(checked.activity_start, instance, _loop_prefix(request), now)
    heartbeat_timeout = checked.hook.heartbeat_timeout_seconds if checked.hook else None
    state = _request_state(
        request,
        cluster,
        settings,
        container_instance_arn=instance.arn if instance else None,
        lifecycle_state=checked.lifecycle_state,
        started_at=started_at,
        hold_start_source=source,
        deadline_at=deadline_for(
            started_at,
            settings.max_drain_seconds,
            heartbeat_timeout,
            settings.deadline_grace_seconds,
        ),
        heartbeat_timeout_seconds=heartbeat_timeout,
        last_heartbeat_at=checked.heartbeat_at,
    )
    return state.model_copy(
        update={"retry": retry_policy(state, settings), "round_id": uuid.uuid4().hex}
    )


def _dry_run(plan: Plan, *, heartbeat_first: bool) -> DrainState:
    """A dry run's answer: the round's state, and the writes a real run would make, in words
    (a real run records the heartbeat first, and the drain on the instance before its loop)."""
    steps: list[Write] = ["record_heartbeat"] if heartbeat_first else []
    for step in plan.write_steps:
        if step == "start_loop":
            steps.append("record_drain")
        steps.append(step)
    planned = [plan.describe(step) for step in steps]
    return plan.state.finished("dry_run").model_copy(update={"planned": planned})


def _report_first_round(
    request: LifecycleRequest, checked: CheckedAction, result: DrainState
) -> None:
    if checked.other_hooks and result.action != "duplicate":
        outcomes.other_hooks(request.asg_name or "", list(checked.other_hooks))
    if request.source == "sweep" and result.action not in ("duplicate", "lifecycle_ended"):
        outcomes.lost_event_recovered(request.instance_id, request.asg_name or "", result.action)


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
    held = _still_held(state)
    if held is False:
        return decide(state, Observation(held=False, instance=None), now, settings).state
    instance = _find_instance(state)
    state = _agree_with_record(state, instance)
    observation, state = _observe(
        state, instance, held=held, write=True, settings=settings, now=now
    )
    plan = _verified(decide(state, observation, now, settings), state, observation, now, settings)
    _say_what_holds(plan.state, observation, now, settings)
    return _carry_out(plan, settings, now, loop_prefix=None, instance=instance)


def _still_held(state: DrainState) -> bool | None:
    """Whether our hook still holds the instance, per Auto Scaling (None: no lifecycle action)."""
    if not state.completes_lifecycle:
        return None
    lifecycle = autoscaling.describe_instance(state.instance_id)
    if lifecycle is not None and lifecycle.asg_name != state.asg_name:
        raise InputRejected(
            f"the state names group {state.asg_name!r} but instance {state.instance_id} "
            f"belongs to {lifecycle.asg_name!r}: pass back the state this function returned"
        )
    return lifecycle is not None and lifecycle.held_by_hook


def _find_instance(state: DrainState) -> ContainerInstanceView | None:
    if state.container_instance_arn:
        return ecs.describe_container_instance(state.cluster, state.container_instance_arn)
    return ecs.find_container_instance(state.cluster, state.instance_id)


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
    state = _request_state(
        request,
        cluster,
        settings,
        started_at=now,
        deadline_at=now + timedelta(seconds=settings.max_drain_seconds),
    ).finished("lifecycle_ended", f"{reason}: nothing to drain or complete")
    logger.info("Nothing to drain", extra={"reason": state.reason})
    return state


def _request_state(
    request: LifecycleRequest, cluster: str, settings: Settings, **fields: Any
) -> DrainState:
    """A first round's state: the request's names and dry-run flag, and `fields` (when the hold
    began and the deadline among them)."""
    return DrainState(
        action="draining",
        instance_id=request.instance_id,
        cluster=cluster,
        asg_name=request.asg_name,
        hook_name=request.hook_name,
        lifecycle_action_token=request.token,
        dry_run=request.dry_run,
        max_drain_seconds=settings.max_drain_seconds,
        **fields,
    )


def _deleting_group_round(
    request: LifecycleRequest, cluster: str, now: datetime, settings: Settings
) -> DrainState | None:
    """A sweep's lifecycle message for a group being deleted (AutoScalingGroup.Status is set
    only while DeleteAutoScalingGroup runs): the whole group goes, so draining would only hold
    the deletion. Completes the action at once, no drain; None when the group is not deleting.
    Read here and by the sweep (its DescribeAutoScalingGroups), never in the common path."""
    assert request.asg_name and request.hook_name
    group = autoscaling.describe_group(request.asg_name)
    if group is None or not group.deleting:
        return None
    completed = autoscaling.complete_lifecycle_action(
        request.asg_name, request.hook_name, request.instance_id, request.token
    )
    if not completed:
        return _ended_request(
            request, cluster, now, settings, "the lifecycle action was already over"
        )
    outcomes.skipped_group_deleting(request.instance_id, request.asg_name, group.status or "")
    return _request_state(request, cluster, settings, started_at=now, deadline_at=now).finished(
        "group_deleting",
        f"group {request.asg_name} is being deleted ({group.status}): completed at once",
    )


def _running_loop_of_action(
    state: DrainState,
    settings: Settings,
    instance: ContainerInstanceView | None,
    names: list[str],
) -> str | None:
    """The running loop of this same lifecycle action under another name: one started for the
    action's event (named by its token) when this round came from the sweep (by instance id),
    or the other way round. ECS's record names it; Step Functions says whether it runs."""
    record = instance.drain_record if instance else None
    action = instance.action_record if instance else None
    if record is None or not record.has_loop or record.loop in names or action is None:
        return None
    if (action.hook_name, action.asg_name) != (state.hook_name, state.asg_name):
        return None
    existing = stepfunctions.describe(
        stepfunctions.execution_arn(settings.state_machine_arn, record.loop)
    )
    return record.loop if existing is not None and existing.status == "RUNNING" else None


def _interruption_of(instance: ContainerInstanceView | None) -> datetime | None:
    record = instance.drain_record if instance else None
    return record.interruption_at if record else None


def _verified_interruption(
    state: DrainState, observation: Observation, settings: Settings
) -> Observation:
    """Before the deadline policy acts on a Spot interruption's time, EC2 must still show it
    (the instance's Spot request marked, DescribeSpotInstanceRequests): the record is ours, but
    ECS stores what anyone with PutAttributes writes. EC2's time wins when it is later; an
    interruption EC2 no longer shows is dropped (the settings' deadline applies)."""
    instance = observation.instance
    record = instance.drain_record if instance else None
    if instance is None or record is None or not interrupted(state, observation, settings):
        return observation
    notice = ec2.pending_interruption(state.instance_id, contract.SPOT_NOTICE_SECONDS)
    assert record.interruption_at is not None
    if notice is not None and notice.interruption_at <= record.interruption_at + TIME_TOLERANCE:
        return observation
    checked = replace(record, interruption_at=notice.interruption_at if notice else None)
    logger.warning(
        "EC2 does not confirm the Spot interruption recorded on the instance",
        extra={"recorded": record.interruption_at.isoformat(), "ec2": str(notice)},
    )
    return replace(observation, instance=replace(instance, drain_record=checked))


def _completion(plan: Plan, state: DrainState, settings: Settings) -> str:
    """CONTINUE, or ABANDON for a failed drain where ON_DRAIN_FAILURE=retain and the group
    retains (`retention`). A Spot interruption is never retained: EC2 takes the instance."""
    if plan.failure not in ("deadline", "agent_lost") or not state.asg_name:
        return retention.CONTINUE
    return retention.failure_result(settings, state.asg_name, state.instance_id, plan.failure)


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
    ours = autoscaling.lifecycle_hook(request.asg_name, request.hook_name)
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
    recorded = instance.drain_record if instance else None
    if recorded is not None and recorded.interruption_at is not None:
        # A Spot interruption (checked against EC2 before it stops or releases) comes first.
        spot = recorded.interruption_at - timedelta(seconds=LONGEST_DEADLINE_GRACE_SECONDS)
        earliest = min(earliest, spot)
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
    state: DrainState,
    instance: ContainerInstanceView | None,
    *,
    held: bool | None,
    write: bool,
    settings: Settings,
    now: datetime,
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

    # Past half its deadline a poll says what holds the drain: every service on the instance
    # is described then (the same DescribeServices calls that classify the tasks).
    listing = ecs.list_unstopped_tasks(
        state.cluster,
        instance,
        dict(state.service_strategies),
        describe_all=past_half_deadline(state, settings_deadline(state, settings), now),
    )
    state = state.model_copy(update={"service_strategies": listing.strategies})
    if is_first_round(state):
        state = state.model_copy(update={"release_services": _services_here(listing)})
    services = dict(listing.services)
    if settings.release_when == "services_steady" and not holding_tasks(
        listing.tasks, settings.daemon_tasks_hold_instance
    ):
        unread = set(state.release_services) - set(services)
        if unread:
            services.update(ecs.describe_services(state.cluster, unread))
    observation = Observation(
        held=held,
        instance=instance,
        tasks=listing.tasks,
        drain_failure=failure,
        last_stopped_at=listing.last_stopped_at,
        services=services,
        stopped_services=listing.stopped_services,
    )
    return observation, state


def _say_what_holds(
    state: DrainState, observation: Observation, now: datetime, settings: Settings
) -> None:
    """Past half its deadline, a poll that keeps waiting logs what holds the drain: each
    service with tasks left on the instance (or, with RELEASE_WHEN=services_steady, short of
    its desired count) with its counts and the scheduler's latest event, from this poll's
    DescribeServices."""
    if state.done or not past_half_deadline(state, state.deadline_at, now):
        return
    holding = holding_tasks(observation.tasks, settings.daemon_tasks_hold_instance)
    on_instance: dict[str, int] = {}
    for task in holding:
        if task.kind == "service" and task.service:
            on_instance[task.service] = on_instance.get(task.service, 0) + 1
    waited_for: list[str] = []
    if not holding and settings.release_when == "services_steady":
        waited_for = [s.name for s in short_services(state.release_services, observation.services)]
    blockers = []
    for name in sorted(set(on_instance) | set(waited_for)):
        view = observation.services.get(name)
        blockers.append(
            {
                "service": name,
                "tasks_on_instance": on_instance.get(name, 0),
                "running": view.running if view else None,
                "desired": view.desired if view else None,
                "latest_event": view.event if view else None,
                "latest_event_at": view.event_at.isoformat() if view and view.event_at else None,
            }
        )
    outcomes.drain_blockers(
        state,
        now,
        blockers,
        standalone=sum(1 for t in holding if t.kind == "standalone"),
        daemon=sum(1 for t in holding if t.kind == "daemon"),
        agent_connected=observation.instance.agent_connected if observation.instance else None,
    )


def _services_here(listing: ecs.TaskListing) -> list[str]:
    """The services that have tasks on the instance, unstopped or stopped and still listed: when
    the drain begins, those whose tasks it moves (RELEASE_WHEN=services_steady waits for them)."""
    return sorted({t.service for t in listing.tasks if t.service} | listing.stopped_services)


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
    if "release_services" in plan.rests_on:
        state, observation = _widened_release_services(state, observation, instance, settings)
    if "hold_start" in plan.rests_on:
        observation = _verified_interruption(state, observation, settings)
    again = decide(state, observation, now, settings)
    return replace(again, rests_on=(), failure=failure_kind(again, state, observation, settings))


def _widened_release_services(
    state: DrainState,
    observation: Observation,
    instance: ContainerInstanceView | None,
    settings: Settings,
) -> tuple[DrainState, Observation]:
    """RELEASE_WHEN=services_steady is about to release: which services had tasks on the
    instance is the state's list widened by what AWS records, never narrowed: the services of
    the instance's tasks ECS still lists (stopped ones for at least an hour) and the list the
    owning loop was started with (Step Functions keeps an execution's input). A state passed
    back with fewer services can only make the release wait for services it left out."""
    names = set(state.release_services) | set(observation.stopped_services)
    names |= {t.service for t in observation.tasks if t.service}
    record = instance.drain_record if instance else None
    if record is not None and settings.state_machine_arn:
        names |= stepfunctions.recorded_release_services(settings.state_machine_arn, record.loop)
    unread = names - set(observation.services)
    services = dict(observation.services)
    if unread:
        services.update(ecs.describe_services(state.cluster, unread))
    widened = state.model_copy(update={"release_services": sorted(names)})
    return widened, replace(observation, services=services)


def _verified_hold_start(
    state: DrainState, instance: ContainerInstanceView | None, now: datetime
) -> DrainState:
    """started_at and the hook's heartbeat timeout from AWS, before a time-based stop or release."""
    record = instance.drain_record if instance else None
    trusted: datetime | None = record.started_at if record else None
    heartbeat = state.heartbeat_timeout_seconds
    if state.completes_lifecycle and state.asg_name:
        ours = autoscaling.lifecycle_hook(state.asg_name, state.hook_name, fresh=True)
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
        _record_drain(
            result,
            result.execution_name or loop_prefix or "",
            lost,
            version,
            interruption_at=_interruption_of(instance),
        )

    if plan.record_heartbeat and not autoscaling.record_heartbeat(*_target(result)):
        reason = "the lifecycle action ended while we were draining"
        logger.info("Lifecycle action over", extra={"reason": reason})
        return result.finished("lifecycle_ended", reason)

    if plan.complete_lifecycle:
        completion = _completion(plan, result, settings)
        if autoscaling.complete_lifecycle_action(*_target(result), completion):
            outcomes.released(result, plan.finish, now, plan.last_stopped_at)
            if completion == retention.ABANDON:
                outcomes.retained(result.instance_id, result.asg_name or "", plan.failure)
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
    outcomes.drain_age(result, now)
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
    *,
    interruption_at: datetime | None = None,
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
        interruption_at=interruption_at,
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
    interruption = _interruption_of(instance)
    running = _running_loop_of_action(state, settings, instance, names)
    if running is not None:
        outcomes.duplicate(running)
        return state.model_copy(update={"execution_name": running}).finished("duplicate")
    if record is not None and record.loop in names:
        names = names[names.index(record.loop) :]  # the current owner first
    for name in names:
        candidate = state.model_copy(update={"execution_name": name})
        if record is None or record.loop != name or record.started_at != state.started_at:
            _record_drain(candidate, name, None, interruption_at=interruption)
        if stepfunctions.start(settings.state_machine_arn, name, candidate.model_dump(mode="json")):
            outcomes.loop_started(name)
            return candidate
        existing = stepfunctions.describe(
            stepfunctions.execution_arn(settings.state_machine_arn, name)
        )
        if existing is None or existing.status == "RUNNING":
            outcomes.duplicate(name)
            return candidate.finished("duplicate")
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
            interruption_at=record.interruption_at if record else None,
        )
    stepfunctions.start(settings.state_machine_arn, name, handed.model_dump(mode="json"))
    logger.info("Carrying on in a fresh execution", extra={"execution": name})
    # Done here; the fresh execution waits as planned (its wait stays in the answer).
    return state.finished("continued", wait_seconds=state.wait_seconds)
