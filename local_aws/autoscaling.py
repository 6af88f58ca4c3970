"""Auto Scaling for moto as the sandbox needs it: lifecycle hooks, instance lifecycle, activities.

moto 5.2.5 stores lifecycle hooks but never honours them, launches and terminates at once,
records no scaling activity and keeps no warm pool instances. This module drives moto's Auto
Scaling state on the sandbox clock as the EC2 Auto Scaling user guide and API reference describe:

Lifecycle hooks ("Amazon EC2 Auto Scaling lifecycle hooks"; "Complete a lifecycle action"):

- A scale-in (SetDesiredCapacity lower, UpdateAutoScalingGroup, TerminateInstanceInAutoScalingGroup)
  of a group with an ``autoscaling:EC2_INSTANCE_TERMINATING`` hook puts each chosen instance in
  ``Terminating:Wait`` (DescribeAutoScalingInstances shows it) with a fresh LifecycleActionToken
  per hook, and emits the EventBridge "EC2 Instance-terminate Lifecycle Action" event.
- An ``autoscaling:EC2_INSTANCE_LAUNCHING`` hook holds a launched instance in ``Pending:Wait``
  ("EC2 Instance-launch Lifecycle Action"); CONTINUE puts it InService, ABANDON terminates it
  and the group launches a replacement (launch activity Cancelled).
- CompleteLifecycleAction and RecordLifecycleActionHeartbeat, by LifecycleActionToken or by
  InstanceId, for every wait state (the warmed ones included). Once the action is over they fail
  with ValidationError "No active Lifecycle Action found with instance ID i-..." (or "... with
  token ...").
- The heartbeat timeout (restarted by each heartbeat) and the global timeout
  (min(48 h, 100 x HeartbeatTimeout), never restarted) end the action with the hook's
  DefaultResult. Timers are checked against the sandbox clock on every lifecycle call, on
  DescribeAutoScalingInstances, and whenever `expire_due` is called.
- CONTINUE and ABANDON both let a terminating instance go: it leaves the group and its EC2
  instance is terminated. ABANDON also ends the instance's other pending hooks; each hook of an
  instance must otherwise complete or time out before it moves on.
- PutLifecycleHook keeps NotificationMetadata (moto drops it) and checks HeartbeatTimeout
  is within 30..7200 s.
- Lifecycle-action events are sent "on a best-effort basis" (user guide, "Amazon EC2 Auto Scaling
  event reference"): the knob ``event_drop_probability`` (seeded) loses some; the action still
  waits for its timeout.

Instance retention ("Control instance retention with instance lifecycle policies", "Configure
instance retention", "Manage retained instances"; API InstanceLifecyclePolicy, RetentionTriggers):

- Create/UpdateAutoScalingGroup keep InstanceLifecyclePolicy; DescribeAutoScalingGroups shows it.
- With RetentionTriggers.TerminateHookAbandon "retain", a termination whose hook ends with ABANDON
  (CompleteLifecycleAction ABANDON, or a timeout with DefaultResult ABANDON: the other hooks'
  actions end with it) goes Terminating:Proceed -> Terminating:Retained (from the warm pool
  Warmed:Terminating:Retained; on its way back to the pool Warmed:Pending:Retained) instead of
  terminating: the EC2 instance keeps running, it counts towards no capacity (the group
  launches a replacement) and stays until TerminateInstanceInAutoScalingGroup, which ends it
  (through its termination hooks again unless the knob ``retained_termination_runs_hooks`` is
  off: UNCONFIRMED). CONTINUE still terminates.

Group deletion (API reference DeleteAutoScalingGroup and AutoScalingGroup.Status; user guide
"Delete your Auto Scaling infrastructure"): without ForceDelete a group with instances is refused
(ResourceInUse). ForceDelete deletes the outstanding lifecycle actions (those instances go at
once); with the knob ``force_delete_holds`` (default, UNCONFIRMED) the group's Status is "Delete
in progress", its capacity 0, and every other instance is terminated through the termination
hooks; the group is deleted once the last is gone. Off: every instance goes at once.

Warm pools ("Warm pools for Amazon EC2 Auto Scaling", "Use lifecycle hooks with a warm pool in
Auto Scaling group", "Warm pool example events and patterns"; the API is in `warm_pools`):

- The pool holds max(MinSize, (MaxGroupPreparedCapacity or MaxSize) - desired capacity)
  instances. They enter through ``Warmed:Pending`` -> ``Warmed:Pending:Wait`` (only with a
  LAUNCHING hook; event Origin EC2, Destination WarmPool) -> ``Warmed:Pending:Proceed`` ->
  ``Warmed:Stopped|Running|Hibernated`` (PoolState; the EC2 instance is stopped for Stopped and
  Hibernated right away).
- A scale-out takes ready pooled instances first (``Pending`` -> ``Pending:Wait`` with a
  LAUNCHING hook, Origin WarmPool, Destination AutoScalingGroup -> InService); a cold launch
  (pool empty) has Origin EC2. A scale-in terminates and the pool launches a replacement; with
  InstanceReusePolicy.ReuseOnScaleIn the instance returns to the pool instead, held in
  ``Warmed:Pending:Wait`` by TERMINATING hooks (event Origin AutoScalingGroup, Destination
  WarmPool).
- An instance terminated while in the pool (the pool shrinks, DeleteWarmPool) goes
  ``Warmed:Terminating`` -> ``Warmed:Terminating:Wait`` when the group has a TERMINATING hook ->
  ``Warmed:Terminating:Proceed``. UNCONFIRMED: the user guide is silent; the state exists in the
  API's LifecycleState enum. Knobs: ``pooled_termination_waits`` (hooks hold it at all),
  ``pooled_termination_event`` (the event, Origin WarmPool, Destination EC2, is sent).
  TerminateInstanceInAutoScalingGroup "cannot be called on instances in a warm pool" (API
  reference): rejected with a ValidationError unless the knob ``terminate_pooled_instance`` is
  "allow".

Scaling activities ("Verify a scaling activity for an Auto Scaling group"; `scaling_activities`):
every launch (cold, into the pool, from the pool) and every termination (scale-in,
TerminateInstanceInAutoScalingGroup, pooled, EC2-side) records one. StartTime is when the instance
entered the transition (so for a held termination, when it entered Terminating:Wait); EndTime and
Successful when it is done. UNCONFIRMED: the StatusCode during a lifecycle wait; knob
``wait_status_code`` "MidLifecycleAction" (default; seen in the console by users) or "InProgress".
Knobs ``record_activities`` (False: none is recorded) and ``activity_drop_probability`` (seeded)
give an instance no activity; `drop_activities` hides the ones already recorded.

API (all functions take optional ``region`` / ``account_id``; defaults us-east-1 and moto's
default account):

- ``install(clock=None)``: patch moto; idempotent, call it before or inside ``mock_aws()``.
  ``clock`` is any object with ``now() -> datetime`` (default: real time).
- ``configure(**knobs) -> Knobs`` / ``knobs()``: the `Knobs` of this account and Region.
- ``begin_termination(asg_name, instance_id=None, hook_name=None, should_decrement=True)``:
  put one InService instance (the first unprotected one if not named) into Terminating:Wait,
  as a scale-in of one would, and return the EventBridge event (a dict) for the hook.
- ``emitted_events()`` / ``dropped_events()``: the lifecycle events sent / lost, oldest first.
- ``subscribe(callback)``: ``callback(kind, payload)`` with kinds ``"event"`` (event dict),
  ``"heartbeat"`` and ``"action_ended"`` (a `LifecycleAction`), ``"terminated"`` (the last
  `LifecycleAction` of a held instance that terminated), ``"instance_terminated"`` (a
  `Termination`, for every EC2 instance the group terminates), ``"in_service"`` (an
  `InServiceChange`) and ``"state"`` (a `StateChange`, every LifecycleState change).
- ``lifecycle_actions(instance_id=None)`` / ``active_action(instance_id)``: the recorded
  `LifecycleAction` objects (token, times, heartbeats, result, how it ended).
- ``activities(instance_id=None)``, ``drop_activities(instance_id=None)``.
- ``expire_due()``: end actions whose heartbeat or global timeout has passed.

Not modelled: the default termination policy (a scale-in takes the oldest InService unprotected
instance, moto's order), mixed instances policies (moto's own capacity code runs, without
hooks or activities), cooldowns, instance warm-up, Standby and detach hooks.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from moto.autoscaling import models as asg_models
from moto.autoscaling import responses as asg_responses
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult, EmptyResult

from local_aws import scaling_activities
from local_aws.clock import Clock, RealClock
from local_aws.scaling_activities import ScalingActivity, cause_time, log_for

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
DETAIL_TYPE = "EC2 Instance-terminate Lifecycle Action"
LAUNCH_DETAIL_TYPE = "EC2 Instance-launch Lifecycle Action"
GLOBAL_TIMEOUT_CAP = 48 * 3600
DEFAULT_REGION = "us-east-1"

# Instances that count towards the desired capacity.
GROUP_STATES = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "InService"})
POOL_READY_STATES = frozenset({"Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated"})
# Instances that count towards the warm pool's size.
POOL_STATES = POOL_READY_STATES | {
    "Warmed:Pending",
    "Warmed:Pending:Wait",
    "Warmed:Pending:Proceed",
}
# Retained instances (user guide, "Manage retained instances"): they count towards neither.
RETAINED_STATES = frozenset(
    {"Terminating:Retained", "Warmed:Terminating:Retained", "Warmed:Pending:Retained"}
)
# AutoScalingGroup.Status while DeleteAutoScalingGroup works (the value in AWS's examples).
DELETE_IN_PROGRESS = "Delete in progress"

Listener = Callable[[str, Any], None]

# One lock for every lifecycle mutation: the Step Functions interpreter calls in from its thread.
_lock = threading.RLock()
_clock: Clock = RealClock()
_installed = False
# Token namespace: tokens and event ids are derived from a counter, so runs are repeatable.
_NAMESPACE = uuid.UUID("5f0c2f4e-8a59-4d1c-9a43-2a0f6b1d7e10")
# The "At <time> a user request ..." opening of the Cause of the activities a request starts.
_request_cause: ContextVar[str | None] = ContextVar("_request_cause", default=None)


@dataclass(frozen=True)
class Knobs:
    """Switches for behaviour the docs leave open or describe as best effort."""

    # StatusCode of an activity while its instance waits for lifecycle hooks (UNCONFIRMED).
    wait_status_code: str = "MidLifecycleAction"
    # False: no activity is recorded at all (a caller then has no StartTime to count from).
    record_activities: bool = True
    # Chance that an activity is not recorded (seeded).
    activity_drop_probability: float = 0.0
    # Chance that a lifecycle-action event is never sent (best effort; seeded).
    event_drop_probability: float = 0.0
    # A pooled instance being terminated waits in Warmed:Terminating:Wait for TERMINATING hooks.
    pooled_termination_waits: bool = True
    # ... and its event (Origin WarmPool, Destination EC2) is sent.
    pooled_termination_event: bool = True
    # TerminateInstanceInAutoScalingGroup on a pooled instance: "reject" (API reference) or
    # "allow" (terminate it through Warmed:Terminating).
    terminate_pooled_instance: str = "reject"
    # For this many seconds after an action begins, Auto Scaling answers a heartbeat or a
    # completion by token "No active Lifecycle Action found", though DescribeAutoScalingInstances
    # already shows the wait. No doc says so; seen in a public report (PrairieLearn PR 15586, a
    # retry seconds later succeeded). 0: the documented behaviour, the action answers at once.
    token_ready_after_seconds: float = 0.0
    # DeleteAutoScalingGroup with ForceDelete: the API reference says it deletes the group's
    # outstanding lifecycle actions and does not wait for the instances to terminate; whether
    # the terminations it starts wait for the group's termination hooks is not said (the report
    # aws/aws-cdk#18179 has stack deletions held for hours by a drain hook). True: they wait, with
    # the group's Status "Delete in progress" meanwhile (the answer that holds a deletion
    # longest); False: every instance goes at once.
    force_delete_holds: bool = True
    # TerminateInstanceInAutoScalingGroup on a retained instance: whether its termination hooks
    # hold it again (the guide says only that it stays until that call). True: they do (a
    # drain hook then holds it once more); False: it terminates at once.
    retained_termination_runs_hooks: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.wait_status_code not in ("MidLifecycleAction", "InProgress"):
            raise ValueError("wait_status_code is MidLifecycleAction or InProgress")
        if self.terminate_pooled_instance not in ("reject", "allow"):
            raise ValueError("terminate_pooled_instance is reject or allow")


@dataclass
class LifecycleAction:
    token: str
    asg_name: str
    hook_name: str
    instance_id: str
    transition: str
    metadata: str | None
    heartbeat_timeout: int
    default_result: str
    started_at: datetime
    heartbeat_deadline: datetime
    global_deadline: datetime
    heartbeats: int = 0
    result: str | None = None
    ended_at: datetime | None = None
    # "complete", "heartbeat_timeout", "global_timeout", "abandoned_by_other_hook", or, with no
    # result, "instance_terminated" / "group_deleted" / "warm_pool_deleted" (forced ends).
    ended_by: str | None = None
    event: dict[str, Any] = field(default_factory=dict)
    # The wait state the action holds, and the event's Origin / Destination.
    lifecycle_state: str = "Terminating:Wait"
    origin: str = "AutoScalingGroup"
    destination: str = "EC2"
    # False when the event was not sent (dropped, or the pooled-termination knob).
    emitted: bool = True

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class StateChange:
    asg_name: str
    instance_id: str
    previous: str | None
    state: str
    at: datetime


@dataclass(frozen=True)
class Termination:
    """An EC2 instance the group terminated. ``ended_by``: "no_hook", "lifecycle_action",
    "launch_abandoned", "ec2", "group_deleted" or "warm_pool_deleted"."""

    asg_name: str
    instance_id: str
    at: datetime
    from_pool: bool
    ended_by: str
    result: str | None = None


@dataclass(frozen=True)
class InServiceChange:
    """An instance went InService; ``origin`` is "EC2" (cold launch) or "WarmPool"."""

    asg_name: str
    instance_id: str
    at: datetime
    origin: str


@dataclass
class _Wait:
    """One instance held in a wait state, by one action per hook."""

    state: str
    transition: str
    origin: str
    destination: str
    actions: list[LifecycleAction]
    activity: ScalingActivity | None


@dataclass
class _BackendState:
    actions: list[LifecycleAction] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    dropped_events: list[dict[str, Any]] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    waits: dict[str, _Wait] = field(default_factory=dict)
    knobs: Knobs = field(default_factory=Knobs)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    counter: int = 0


def _state(backend: Any) -> _BackendState:
    # Kept on the backend object, so moto's reset between mock_aws() contexts wipes it too.
    st = backend.__dict__.get("_sandbox_lifecycle")
    if st is None:
        st = _BackendState()
        backend.__dict__["_sandbox_lifecycle"] = st
    return st


def _backend(region: str | None, account_id: str | None) -> Any:
    return asg_models.autoscaling_backends[account_id or DEFAULT_ACCOUNT_ID][
        region or DEFAULT_REGION
    ]


def _now() -> datetime:
    return _clock.now()


def set_clock(clock: Clock) -> None:
    global _clock
    _clock = clock
    scaling_activities.set_now(clock.now)


def _hooks(backend: Any, group_name: str, transition: str) -> list[Any]:
    return [
        h
        for h in backend.describe_lifecycle_hooks(group_name)
        if h.lifecycle_transition == transition
    ]


def _termination_hooks(backend: Any, group_name: str) -> list[Any]:
    return _hooks(backend, group_name, TERMINATING)


def _notify(st: _BackendState, kind: str, payload: Any) -> None:
    for listener in list(st.listeners):
        listener(kind, payload)


def _chance(st: _BackendState, probability: float) -> bool:
    # Draw only when the knob is on, so switching it off leaves every other draw unchanged.
    return probability > 0 and st.rng.random() < probability


# --- events and activities ----------------------------------------------------------------


def _event_for(backend: Any, group: Any, action: LifecycleAction, event_id: str) -> dict:
    detail: dict[str, Any] = {
        "Origin": action.origin,
        "Destination": action.destination,
        "LifecycleActionToken": action.token,
        "AutoScalingGroupName": action.asg_name,
        "LifecycleHookName": action.hook_name,
        "EC2InstanceId": action.instance_id,
        "LifecycleTransition": action.transition,
    }
    if action.metadata is not None:
        detail["NotificationMetadata"] = action.metadata
    return {
        "version": "0",
        "id": event_id,
        "detail-type": DETAIL_TYPE if action.transition == TERMINATING else LAUNCH_DETAIL_TYPE,
        "source": "aws.autoscaling",
        "account": backend.account_id,
        "time": action.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": backend.region_name,
        "resources": [group.arn],
        "detail": detail,
    }


def _activity(
    backend: Any, group: Any, instance: Any, description: str, cause: str
) -> ScalingActivity:
    """Start the activity of one launch or termination (kept unless a knob drops it)."""
    st = _state(backend)
    record = st.knobs.record_activities and not _chance(st, st.knobs.activity_drop_probability)
    details = {"Availability Zone": instance.placement.zone}
    if group.vpc_zone_identifier and getattr(instance, "subnet_id", None):
        details = {"Subnet ID": instance.subnet_id, **details}
    request = _request_cause.get()
    return log_for(backend).start(
        asg_name=group.name,
        asg_arn=group.arn,
        description=f"{description}: {instance.id}",
        cause=f"{request}  {cause}" if request else cause,
        when=_now(),
        instance_id=instance.id,
        details=details,
        record=record,
    )


# --- lifecycle states ---------------------------------------------------------------------


def _set_state(backend: Any, group: Any, state: Any, new: str, *, initial: bool = False) -> None:
    previous = None if initial else state.lifecycle_state
    state.lifecycle_state = new
    change = StateChange(group.name, state.instance.id, previous, new, _now())
    _notify(_state(backend), "state", change)


def _enter_wait(
    backend: Any,
    group: Any,
    instance_state: Any,
    *,
    wait_state: str,
    transition: str,
    origin: str,
    destination: str,
    hooks: list[Any],
    activity: ScalingActivity | None,
    emit: bool = True,
) -> list[dict]:
    """Hold one instance in a wait state with one action (and one token) per hook."""
    st = _state(backend)
    now = _now()
    iid = instance_state.instance.id
    _set_state(backend, group, instance_state, wait_state)
    wait = _Wait(wait_state, transition, origin, destination, [], activity)
    st.waits[iid] = wait
    if activity is not None:
        activity.set_status(st.knobs.wait_status_code)
    sent = []
    for hook in hooks:
        st.counter += 1
        key = f"{backend.account_id}/{backend.region_name}/{iid}"
        token = str(uuid.uuid5(_NAMESPACE, f"{key}/{hook.name}/{st.counter}"))
        timeout = int(hook.heartbeat_timeout)
        action = LifecycleAction(
            token=token,
            asg_name=group.name,
            hook_name=hook.name,
            instance_id=iid,
            transition=transition,
            metadata=getattr(hook, "notification_metadata", None),
            heartbeat_timeout=timeout,
            default_result=hook.default_result or "ABANDON",
            started_at=now,
            heartbeat_deadline=now + timedelta(seconds=timeout),
            global_deadline=now + timedelta(seconds=min(GLOBAL_TIMEOUT_CAP, 100 * timeout)),
            lifecycle_state=wait_state,
            origin=origin,
            destination=destination,
        )
        event_id = str(uuid.uuid5(_NAMESPACE, f"event/{token}"))
        action.event = _event_for(backend, group, action, event_id)
        st.actions.append(action)
        wait.actions.append(action)
        if not emit or _chance(st, st.knobs.event_drop_probability):
            action.emitted = False
            st.dropped_events.append(action.event)
            continue
        st.events.append(action.event)
        sent.append(action.event)
    for event in sent:
        _notify(st, "event", event)
    return sent


def _find_group_state(backend: Any, instance_id: str) -> tuple[Any, Any] | tuple[None, None]:
    for group in backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return group, state
    return None, None


def _remove_and_terminate(backend: Any, group: Any, instance_state: Any) -> None:
    iid = instance_state.instance.id
    group.instance_states = [s for s in group.instance_states if s is not instance_state]
    backend.ec2_backend.delete_tags([iid], {asg_models.ASG_NAME_TAG: group.name})
    backend.ec2_backend.terminate_instances([iid])


def _finish_termination(
    backend: Any,
    group: Any,
    instance_state: Any,
    activity: ScalingActivity | None,
    *,
    ended_by: str,
    action: LifecycleAction | None = None,
) -> None:
    """Terminating[:Wait] -> Terminating:Proceed -> gone (or the Warmed: equivalents)."""
    st = _state(backend)
    from_pool = instance_state.lifecycle_state.startswith("Warmed:")
    _set_state(
        backend,
        group,
        instance_state,
        "Warmed:Terminating:Proceed" if from_pool else "Terminating:Proceed",
    )
    _remove_and_terminate(backend, group, instance_state)
    now = _now()
    if activity is not None:
        activity.finish(now)
    termination = Termination(
        group.name,
        instance_state.instance.id,
        now,
        from_pool,
        ended_by,
        action.result if action else None,
    )
    _notify(st, "instance_terminated", termination)
    if action is not None:
        _notify(st, "terminated", action)
    _drop_pool_if_deleted(group)
    _drop_group_if_deleted(backend, group)


def _start_termination(
    backend: Any, group: Any, instance_state: Any, cause: str, *, from_pool: bool = False
) -> ScalingActivity:
    st = _state(backend)
    activity = _activity(backend, group, instance_state.instance, "Terminating EC2 instance", cause)
    hooks = _termination_hooks(backend, group.name)
    if from_pool:
        if not st.knobs.pooled_termination_waits:
            hooks = []
        _set_state(backend, group, instance_state, "Warmed:Terminating")
        wait_state, origin = "Warmed:Terminating:Wait", "WarmPool"
    else:
        _set_state(backend, group, instance_state, "Terminating")
        wait_state, origin = "Terminating:Wait", "AutoScalingGroup"
    if hooks:
        _enter_wait(
            backend,
            group,
            instance_state,
            wait_state=wait_state,
            transition=TERMINATING,
            origin=origin,
            destination="EC2",
            hooks=hooks,
            activity=activity,
            emit=st.knobs.pooled_termination_event or not from_pool,
        )
    else:
        _finish_termination(backend, group, instance_state, activity, ended_by="no_hook")
    return activity


def _return_to_pool(backend: Any, group: Any, instance_state: Any, cause: str) -> None:
    """Scale-in with ReuseOnScaleIn: back to the pool, held by TERMINATING hooks."""
    activity = _activity(
        backend, group, instance_state.instance, "Moving EC2 instance to warm pool", cause
    )
    _set_state(backend, group, instance_state, "Warmed:Pending")
    hooks = _termination_hooks(backend, group.name)
    if hooks:
        _enter_wait(
            backend,
            group,
            instance_state,
            wait_state="Warmed:Pending:Wait",
            transition=TERMINATING,
            origin="AutoScalingGroup",
            destination="WarmPool",
            hooks=hooks,
            activity=activity,
        )
    else:
        _settle_in_pool(backend, group, instance_state, activity)


def _settle_in_pool(
    backend: Any, group: Any, instance_state: Any, activity: ScalingActivity | None
) -> None:
    """Warmed:Pending[:Wait] -> Warmed:Pending:Proceed -> Warmed:<PoolState>."""
    pool = getattr(group, "warm_pool", None)
    _set_state(backend, group, instance_state, "Warmed:Pending:Proceed")
    if activity is not None:
        activity.finish(_now())
    if pool is None or getattr(pool, "status", None) == "PendingDelete":
        # The pool went away meanwhile: the instance is terminated instead of kept.
        _start_termination(backend, group, instance_state, _pool_deletion_cause(), from_pool=True)
        return
    pool_state = pool.pool_state or "Stopped"
    if pool_state in ("Stopped", "Hibernated"):
        # Auto Scaling stops (or hibernates) it at once, not waiting for user data.
        backend.ec2_backend.stop_instances([instance_state.instance.id])
    _set_state(backend, group, instance_state, f"Warmed:{pool_state}")


def _put_in_service(
    backend: Any,
    group: Any,
    instance_state: Any,
    activity: ScalingActivity | None,
    origin: str,
) -> None:
    _set_state(backend, group, instance_state, "Pending:Proceed")
    _set_state(backend, group, instance_state, "InService")
    now = _now()
    if activity is not None:
        activity.finish(now)
    change = InServiceChange(group.name, instance_state.instance.id, now, origin)
    _notify(_state(backend), "in_service", change)


def _abandon_launch(
    backend: Any,
    group: Any,
    instance_state: Any,
    activity: ScalingActivity | None,
    action: LifecycleAction,
) -> None:
    """A launch whose LAUNCHING hook ended with ABANDON: the instance is terminated."""
    if activity is not None:
        activity.finish(
            _now(),
            "Cancelled",
            "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token "
            f"{action.token} was abandoned: Lifecycle Action Completed with ABANDON Result",
        )
    from_pool = instance_state.lifecycle_state.startswith("Warmed:")
    _remove_and_terminate(backend, group, instance_state)
    termination = Termination(
        group.name, instance_state.instance.id, _now(), from_pool, "launch_abandoned", "ABANDON"
    )
    _notify(_state(backend), "instance_terminated", termination)
    _drop_pool_if_deleted(group)


def _launch(backend: Any, group: Any, count: int, *, into_pool: bool) -> list[Any]:
    """Launch ``count`` new instances into the group (cold) or into its warm pool."""
    before = len(_pool_members(group) if into_pool else _group_members(group))
    known = {id(s) for s in group.instance_states}
    group.replace_autoscaling_group_instances(count, group.get_propagated_tags())
    new = [s for s in group.instance_states if id(s) not in known]
    first_state = "Warmed:Pending" if into_pool else "Pending"
    for s in new:
        s.lifecycle_state = first_state  # moto makes them InService at once
    hooks = _hooks(backend, group.name, LAUNCHING)
    now = cause_time(_now())
    if into_pool:
        description = "Launching a new EC2 instance into warm pool"
        cause = (
            f"At {now} an instance was launched into the warm pool in response to a difference "
            f"between desired and actual warm pool capacity, increasing the warm pool capacity "
            f"from {before} to {before + len(new)}."
        )
    else:
        description = "Launching a new EC2 instance"
        cause = (
            f"At {now} an instance was started in response to a difference between desired "
            f"and actual capacity, increasing the capacity from {before} to "
            f"{before + len(new)}."
        )
    for s in new:
        activity = _activity(backend, group, s.instance, description, cause)
        _set_state(backend, group, s, first_state, initial=True)
        if hooks:
            _enter_wait(
                backend,
                group,
                s,
                wait_state="Warmed:Pending:Wait" if into_pool else "Pending:Wait",
                transition=LAUNCHING,
                origin="EC2",
                destination="WarmPool" if into_pool else "AutoScalingGroup",
                hooks=hooks,
                activity=activity,
            )
        elif into_pool:
            _settle_in_pool(backend, group, s, activity)
        else:
            _put_in_service(backend, group, s, activity, origin="EC2")
    return new


def _leave_pool(backend: Any, group: Any, instance_state: Any, cause: str) -> None:
    """A scale-out served by a pooled instance: started, then Pending[:Wait] -> InService."""
    description = "Launching a new EC2 instance from warm pool"
    activity = _activity(backend, group, instance_state.instance, description, cause)
    if instance_state.instance.state != "running":
        backend.ec2_backend.start_instances([instance_state.instance.id])
    _set_state(backend, group, instance_state, "Pending")
    hooks = _hooks(backend, group.name, LAUNCHING)
    if hooks:
        _enter_wait(
            backend,
            group,
            instance_state,
            wait_state="Pending:Wait",
            transition=LAUNCHING,
            origin="WarmPool",
            destination="AutoScalingGroup",
            hooks=hooks,
            activity=activity,
        )
    else:
        _put_in_service(backend, group, instance_state, activity, origin="WarmPool")


def _after_wait(backend: Any, wait: _Wait | None, last: LifecycleAction) -> None:
    """Every action of the instance ended: move it on from its wait state."""
    group, instance_state = _find_group_state(backend, last.instance_id)
    if group is None:
        return  # the group (and its instances) went away meanwhile
    activity = wait.activity if wait else None
    abandoned = any(a.result == "ABANDON" for a in (wait.actions if wait else [last]))
    state = instance_state.lifecycle_state
    retain = abandoned and last.transition == TERMINATING and _retains_on_abandon(group)
    if retain and state in ("Terminating:Wait", "Warmed:Terminating:Wait", "Warmed:Pending:Wait"):
        _retain(backend, group, instance_state, activity, last)
    elif state in ("Terminating:Wait", "Warmed:Terminating:Wait"):
        # For a terminating instance CONTINUE and ABANDON both terminate it.
        _finish_termination(
            backend, group, instance_state, activity, ended_by="lifecycle_action", action=last
        )
    elif state == "Pending:Wait":
        if abandoned:
            _abandon_launch(backend, group, instance_state, activity, last)
            _reconcile(backend, group)  # the group launches a replacement
        else:
            origin = wait.origin if wait else "EC2"
            _put_in_service(backend, group, instance_state, activity, origin)
    elif state == "Warmed:Pending:Wait":
        if abandoned and last.transition == LAUNCHING:
            _abandon_launch(backend, group, instance_state, activity, last)
            reconcile_pool(backend, group)
        else:
            # A TERMINATING hook on the way back to the pool: ABANDON, like CONTINUE, lets
            # the transition go on (UNCONFIRMED: the guide only covers terminations).
            _settle_in_pool(backend, group, instance_state, activity)


def _retains_on_abandon(group: Any) -> bool:
    """The group's instance lifecycle policy retains on TerminateHookAbandon (user guide,
    "Control instance retention with instance lifecycle policies")."""
    policy = getattr(group, "instance_lifecycle_policy", None) or {}
    triggers = policy.get("RetentionTriggers") or {}
    return triggers.get("TerminateHookAbandon") == "retain"


def _retain(
    backend: Any,
    group: Any,
    instance_state: Any,
    activity: ScalingActivity | None,
    action: LifecycleAction,
) -> None:
    """A termination whose hook ended ABANDON in a group that retains (user guide, "Manage
    retained instances"): ...:Proceed, then ...:Retained. The instance keeps running, leaves the
    desired capacity (the group launches a replacement) and stays until
    TerminateInstanceInAutoScalingGroup. How the termination's activity ends is not said: it
    is ended here (UNCONFIRMED; the drain reads only its StartTime)."""
    state = instance_state.lifecycle_state
    stage = "Warmed:Pending" if state == "Warmed:Pending:Wait" else state.rsplit(":", 1)[0]
    _set_state(backend, group, instance_state, f"{stage}:Proceed")
    _set_state(backend, group, instance_state, f"{stage}:Retained")
    if activity is not None:
        activity.finish(_now())
    _notify(_state(backend), "retained", action)
    _reconcile(backend, group)


def _end(backend: Any, action: LifecycleAction, result: str, ended_by: str) -> None:
    st = _state(backend)
    now = _now()
    action.result, action.ended_at, action.ended_by = result, now, ended_by
    ended = [action]
    if result == "ABANDON":
        # ABANDON ends every other pending hook of this instance (user guide).
        for other in st.actions:
            if other.active and other.instance_id == action.instance_id:
                other.result, other.ended_at = "ABANDON", now
                other.ended_by = "abandoned_by_other_hook"
                ended.append(other)
    for done in ended:
        _notify(st, "action_ended", done)
    if any(a.active and a.instance_id == action.instance_id for a in st.actions):
        return
    wait = st.waits.pop(action.instance_id, None)
    _after_wait(backend, wait, action)


def _force_terminate(backend: Any, group: Any, instance_state: Any, ended_by: str) -> None:
    """Terminate now, deleting the instance's outstanding lifecycle actions (ForceDelete)."""
    iid = instance_state.instance.id
    _cancel_actions(backend, iid, ended_by)
    for activity in log_for(backend).for_instance(iid):
        if activity.in_progress:
            activity.finish(_now())
    from_pool = instance_state.lifecycle_state.startswith("Warmed:")
    _remove_and_terminate(backend, group, instance_state)
    termination = Termination(group.name, iid, _now(), from_pool, ended_by)
    _notify(_state(backend), "instance_terminated", termination)


def _drop_group_if_deleted(backend: Any, group: Any) -> None:
    """A group being deleted is gone once its last instance is (DeleteAutoScalingGroup)."""
    if getattr(group, "status", None) != DELETE_IN_PROGRESS or group.instance_states:
        return
    if group.name not in backend.autoscaling_groups:
        return
    log_for(backend).mark_deleted(group.arn)
    hooks = backend.lifecycle_hooks
    for key in [k for k, h in hooks.items() if h.auto_scaling_group_name == group.name]:
        hooks.pop(key)
    backend.delete_auto_scaling_group(group.name)


def _pool_deletion_cause() -> str:
    return (
        f"At {cause_time(_now())} an instance was taken out of the warm pool in response to a "
        "warm pool deletion."
    )


def delete_warm_pool(backend: Any, group: Any, *, force: bool) -> None:
    """DeleteWarmPool: PendingDelete until the pooled instances are gone; ForceDelete: now."""
    pool = getattr(group, "warm_pool", None)
    if pool is None:
        return
    pooled = [s for s in group.instance_states if s.lifecycle_state.startswith("Warmed:")]
    if force:
        for state in pooled:
            _force_terminate(backend, group, state, "warm_pool_deleted")
        group.warm_pool = None
        return
    pool.status = "PendingDelete"
    st = _state(backend)
    for state in pooled:
        # Instances still on their way into the pool are terminated once they settle.
        if state.lifecycle_state in POOL_STATES and state.instance.id not in st.waits:
            _start_termination(backend, group, state, _pool_deletion_cause(), from_pool=True)
    _drop_pool_if_deleted(group)


def _cancel_actions(backend: Any, instance_id: str, ended_by: str) -> None:
    """End an instance's actions without a result (the instance or its group went away)."""
    st = _state(backend)
    now = _now()
    for action in st.actions:
        if action.active and action.instance_id == instance_id:
            action.ended_at, action.ended_by = now, ended_by
            _notify(st, "action_ended", action)
    st.waits.pop(instance_id, None)


def _expire(backend: Any) -> list[LifecycleAction]:
    st = _state(backend)
    now = _now()
    expired = []
    for action in list(st.actions):
        if not action.active:
            continue
        if now >= action.global_deadline:
            _end(backend, action, action.default_result, "global_timeout")
            expired.append(action)
        elif now >= action.heartbeat_deadline:
            _end(backend, action, action.default_result, "heartbeat_timeout")
            expired.append(action)
    return expired


# --- capacity -----------------------------------------------------------------------------


def _group_members(group: Any) -> list[Any]:
    return [s for s in group.instance_states if s.lifecycle_state in GROUP_STATES]


def _pool_members(group: Any) -> list[Any]:
    return [s for s in group.instance_states if s.lifecycle_state in POOL_STATES]


def _active_pool(group: Any) -> Any | None:
    pool = getattr(group, "warm_pool", None)
    if pool is None or getattr(pool, "status", None) == "PendingDelete":
        return None
    return pool


def pool_target_size(group: Any) -> int:
    """max(MinSize, (MaxGroupPreparedCapacity, or MaxSize when unset) - desired capacity)."""
    pool = getattr(group, "warm_pool", None)
    if pool is None:
        return 0
    cap = pool.max_group_prepared_capacity
    if cap is None or int(cap) < 0:
        cap = group.max_size or 0
    return max(int(pool.min_size or 0), int(cap) - int(group.desired_capacity or 0), 0)


def _drop_pool_if_deleted(group: Any) -> None:
    pool = getattr(group, "warm_pool", None)
    if pool is None or getattr(pool, "status", None) != "PendingDelete":
        return
    if not any(s.lifecycle_state.startswith("Warmed:") for s in group.instance_states):
        group.warm_pool = None


def _reconcile(backend: Any, group: Any) -> None:
    """Bring the group to its desired capacity, then the warm pool to its size."""
    st = _state(backend)
    members = _group_members(group)
    desired = int(group.desired_capacity or 0)
    delta = desired - len(members)
    now = cause_time(_now())
    if delta > 0:
        pool = _active_pool(group)
        ready = [
            s
            for s in group.instance_states
            if pool is not None
            and s.lifecycle_state in POOL_READY_STATES
            and s.instance.id not in st.waits
        ][:delta]
        for taken, s in enumerate(ready, start=1):
            _leave_pool(
                backend,
                group,
                s,
                f"At {now} an instance was started in response to a difference between desired "
                f"and actual capacity, increasing the capacity from {len(members) + taken - 1} "
                f"to {len(members) + taken}.",
            )
        if delta > len(ready):
            _launch(backend, group, delta - len(ready), into_pool=False)
    elif delta < 0:
        victims = [
            s for s in members if s.lifecycle_state == "InService" and not s.protected_from_scale_in
        ][:-delta]
        pool = _active_pool(group)
        reuse = bool(pool and _reuse_on_scale_in(pool))
        for s in victims:
            cause = (
                f"At {now} an instance was taken out of service in response to a difference "
                f"between desired and actual capacity, shrinking the capacity from "
                f"{len(members)} to {desired}."
            )
            if reuse:
                _return_to_pool(backend, group, s, cause)
            else:
                _start_termination(backend, group, s, cause)
    reconcile_pool(backend, group)


def _reuse_on_scale_in(pool: Any) -> bool:
    policy = pool.instance_reuse_policy or {}
    value = policy.get("ReuseOnScaleIn") if isinstance(policy, dict) else None
    return value is True or str(value).lower() == "true"


def reconcile_pool(backend: Any, group: Any) -> None:
    """Launch into, or terminate from, the warm pool until it has its target size."""
    st = _state(backend)
    if _active_pool(group) is None:
        _drop_pool_if_deleted(group)
        return
    members = _pool_members(group)
    target = pool_target_size(group)
    if len(members) < target:
        _launch(backend, group, target - len(members), into_pool=True)
    elif len(members) > target:
        spare = [s for s in members if s.instance.id not in st.waits][: len(members) - target]
        for s in spare:
            _start_termination(
                backend,
                group,
                s,
                f"At {cause_time(_now())} an instance was taken out of the warm pool in response "
                f"to a difference between desired and actual warm pool capacity, shrinking the "
                f"warm pool capacity from {len(members)} to {target}.",
                from_pool=True,
            )


def reconcile(group_name: str, region: str | None = None, account_id: str | None = None) -> None:
    """Bring a group and its warm pool to their sizes now (after a change made outside the API)."""
    backend = _backend(region, account_id)
    with _lock:
        _reconcile(backend, backend.autoscaling_groups[group_name])


def _find_active(
    backend: Any, group_name: str, hook_name: str, token: str | None, instance_id: str | None
) -> LifecycleAction:
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId must be specified.")
    if group_name not in backend.autoscaling_groups:
        raise ValidationError(f"AutoScalingGroup name not found - {group_name}")
    if f"{group_name}_{hook_name}" not in backend.lifecycle_hooks:
        raise ValidationError(
            f"No Lifecycle Hook found with name {hook_name} for group {group_name}"
        )
    state = _state(backend)
    for action in state.actions:
        if (
            action.active
            and action.asg_name == group_name
            and action.hook_name == hook_name
            and (action.token == token if token else action.instance_id == instance_id)
        ):
            ready = action.started_at + timedelta(seconds=state.knobs.token_ready_after_seconds)
            if token and _now() < ready:
                break  # not yet known by its token (see Knobs.token_ready_after_seconds)
            return action
    if token:
        raise ValidationError(f"No active Lifecycle Action found with token {token}")
    raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")


# --- moto patches -------------------------------------------------------------------------


def _requested_action(self: Any) -> LifecycleAction:
    """The active action a Complete/Heartbeat request names (timeouts applied first)."""
    backend = self.autoscaling_backend
    _expire(backend)
    return _find_active(
        backend,
        self._get_param("AutoScalingGroupName"),
        self._get_param("LifecycleHookName"),
        self._get_param("LifecycleActionToken"),
        self._get_param("InstanceId"),
    )


def _complete_lifecycle_action(self: Any) -> ActionResult:
    backend = self.autoscaling_backend
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError("LifecycleActionResult must be CONTINUE or ABANDON")
    with _lock:
        action = _requested_action(self)
        _end(backend, action, result, "complete")
    return EmptyResult()


def _record_lifecycle_action_heartbeat(self: Any) -> ActionResult:
    backend = self.autoscaling_backend
    with _lock:
        action = _requested_action(self)
        # The heartbeat restarts the heartbeat timer only; the global timeout stands.
        action.heartbeats += 1
        action.heartbeat_deadline = _now() + timedelta(seconds=action.heartbeat_timeout)
    _notify(_state(backend), "heartbeat", action)
    return EmptyResult()


def _wrap_describe_instances(original: Callable[..., ActionResult]) -> Callable[..., Any]:
    def describe_auto_scaling_instances(self: Any) -> ActionResult:
        with _lock:
            _expire(self.autoscaling_backend)
            return original(self)

    return describe_auto_scaling_instances


def _wrap_put_hook(original: Callable[..., ActionResult]) -> Callable[..., Any]:
    def put_lifecycle_hook(self: Any) -> ActionResult:
        timeout = self._get_int_param("HeartbeatTimeout")
        if timeout is not None and not 30 <= timeout <= 7200:
            raise ValidationError("HeartbeatTimeout must be between 30 and 7200 seconds")
        response = original(self)
        key = f"{self._get_param('AutoScalingGroupName')}_{self._get_param('LifecycleHookName')}"
        hook = self.autoscaling_backend.lifecycle_hooks.get(key)
        if hook is not None:
            hook.notification_metadata = self._get_param("NotificationMetadata")
            hook.global_timeout = min(GLOBAL_TIMEOUT_CAP, 100 * int(hook.heartbeat_timeout))
        return response

    return put_lifecycle_hook


def _with_request_cause(
    original: Callable[..., ActionResult], describe: Callable[[Any, Any], str | None]
) -> Callable[..., Any]:
    """Run a request with the opening of the Cause its activities get."""

    def handler(self: Any) -> ActionResult:
        group = self.autoscaling_backend.autoscaling_groups.get(
            self._get_param("AutoScalingGroupName")
        )
        token = _request_cause.set(describe(self, group))
        try:
            with _lock:
                return original(self)
        finally:
            _request_cause.reset(token)

    return handler


def _cause_set_desired(request: Any, group: Any) -> str | None:
    if group is None:
        return None
    return (
        f"At {cause_time(_now())} a user request explicitly set group desired capacity "
        f"changing the desired capacity from {group.desired_capacity} to "
        f"{request._get_int_param('DesiredCapacity')}."
    )


def _cause_update(request: Any, group: Any) -> str | None:
    if group is None:
        return None
    min_size = request._get_int_param("MinSize")
    max_size = request._get_int_param("MaxSize")
    desired = request._get_int_param("DesiredCapacity")
    min_size = group.min_size if min_size is None else min_size
    max_size = group.max_size if max_size is None else max_size
    new_desired = group.desired_capacity if desired is None else desired
    return (
        f"At {cause_time(_now())} a user request update of AutoScalingGroup constraints to "
        f"min: {min_size}, max: {max_size}, desired: {new_desired} changing the desired "
        f"capacity from {group.desired_capacity} to {new_desired}."
    )


def _cause_create(request: Any, group: Any) -> str | None:  # noqa: ARG001  (a cause's signature)
    desired = request._get_int_param("DesiredCapacity")
    if desired is None:
        desired = request._get_int_param("MinSize") or 0
    return (
        f"At {cause_time(_now())} a user request created an AutoScalingGroup changing the "
        f"desired capacity from 0 to {desired}."
    )


def _wrap_group_set_desired(original: Callable[..., None]) -> Callable[..., None]:
    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        if self.mixed_instances_policy:
            original(self, new_capacity)  # moto's own weighting; no hooks, no activities
            return
        self.desired_capacity = self.min_size if new_capacity is None else new_capacity
        backend = self.autoscaling_backend
        with _lock:
            _reconcile(backend, self)
        if self.name in backend.autoscaling_groups:
            backend.update_attached_elbs(self.name)
            backend.update_attached_target_groups(self.name)

    return set_desired_capacity


def _wrap_group_update(original: Callable[..., None]) -> Callable[..., None]:
    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        if not args and kwargs.get("desired_capacity") is None:
            # UpdateAutoScalingGroup API reference: a MinSize above (MaxSize below) the group's
            # current size sets DesiredCapacity to it. moto counts pooled instances as "size".
            size = len(_group_members(self))
            min_size, max_size = kwargs.get("min_size"), kwargs.get("max_size")
            if min_size is not None and min_size > size:
                kwargs["desired_capacity"] = min_size
            elif max_size is not None and max_size < size:
                kwargs["desired_capacity"] = max_size
        original(self, *args, **kwargs)
        with _lock:
            # A new MaxSize changes the warm pool's size even when the desired capacity stays.
            reconcile_pool(self.autoscaling_backend, self)

    return update


def _request_termination(
    backend: Any,
    group: Any,
    state: Any,
    should_decrement: bool,
    check_min_size: bool = True,
) -> ScalingActivity:
    """TerminateInstanceInAutoScalingGroup for one instance: the activity it started."""
    st = _state(backend)
    iid = state.instance.id
    now = cause_time(_now())
    if state.lifecycle_state.startswith("Warmed:"):
        if st.knobs.terminate_pooled_instance == "reject":
            raise ValidationError(
                f"The instance {iid} is in a warm pool: TerminateInstanceInAutoScalingGroup "
                "cannot be called on instances in a warm pool."
            )
        if state.lifecycle_state in POOL_STATES and iid not in st.waits:
            activity = _start_termination(
                backend,
                group,
                state,
                f"At {now} instance {iid} was taken out of the warm pool in response to a "
                "user request.",
                from_pool=True,
            )
            reconcile_pool(backend, group)  # the pool launches a replacement
            return activity
    if state.lifecycle_state in RETAINED_STATES:
        # "Retained instances ... remain until you call TerminateInstanceInAutoScalingGroup":
        # the call ends them. They count towards no capacity, so nothing is decremented.
        cause = f"At {now} instance {iid} was taken out of service in response to a user request."
        from_pool = state.lifecycle_state.startswith("Warmed:")
        if st.knobs.retained_termination_runs_hooks:
            return _start_termination(backend, group, state, cause, from_pool=from_pool)
        activity = _activity(backend, group, state.instance, "Terminating EC2 instance", cause)
        _finish_termination(backend, group, state, activity, ended_by="retained_terminated")
        return activity
    if state.lifecycle_state != "InService":
        # Already on its way somewhere: nothing new starts (AWS reports the ongoing activity).
        ongoing = log_for(backend).for_instance(iid)
        if ongoing:
            return ongoing[-1]
        return log_for(backend).start(
            asg_name=group.name,
            asg_arn=group.arn,
            description=f"Terminating EC2 instance: {iid}",
            cause=f"At {now} instance {iid} was taken out of service in response to a user "
            "request.",
            when=_now(),
            instance_id=iid,
            record=False,
        )
    original_size = group.desired_capacity
    if should_decrement:
        if check_min_size and group.desired_capacity <= group.min_size:
            raise ValidationError(
                f"Currently, desiredSize equals minSize ({group.min_size}). Terminating "
                "instance without replacement will violate group's min size constraint. "
                "Either set shouldDecrementDesiredCapacity flag to false or lower group's "
                "min size."
            )
        group.desired_capacity = max(0, group.desired_capacity - 1)
    cause = f"At {now} instance {iid} was taken out of service in response to a user request"
    if should_decrement:
        cause += f", shrinking the capacity from {original_size} to {group.desired_capacity}."
    else:
        cause += "."
    token = _request_cause.set(None)
    try:
        activity = _start_termination(backend, group, state, cause)
        # Without the decrement the group launches a replacement (from the pool first);
        # with it, a lower desired capacity makes room in the warm pool.
        _reconcile(backend, group)
    finally:
        _request_cause.reset(token)
    return activity


def _terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> dict[str, Any]:
    """AutoScalingBackend.terminate_instance: returns the Activity the API answers with."""
    with _lock:
        group, state = _find_group_state(self, instance_id)
        if group is None:
            raise ValidationError(
                f"Instance Id not found - No managed instance found for instance ID: {instance_id}"
            )
        activity = _request_termination(self, group, state, should_decrement)
        # The request only starts the termination: the answer shows it in progress (AWS CLI
        # example of terminate-instance-in-auto-scaling-group).
        snapshot = replace(activity, status_code="InProgress", progress=0, end_time=None)
        return snapshot.to_api()


def _wrap_notify_terminate(original: Callable[..., None]) -> Callable[..., None]:
    def notify_terminate_instances(self: Any, instance_ids: list[str]) -> None:
        """EC2 TerminateInstances on a group's instance: the group notices and replaces it."""
        with _lock:
            touched = []
            for iid in instance_ids:
                group, state = _find_group_state(self, iid)
                if group is None:
                    continue
                _cancel_actions(self, iid, "instance_terminated")
                activity = _activity(
                    self,
                    group,
                    state.instance,
                    "Terminating EC2 instance",
                    f"At {cause_time(_now())} an instance was taken out of service in response "
                    "to an EC2 health check indicating it has been terminated or stopped.",
                )
                from_pool = state.lifecycle_state.startswith("Warmed:")
                group.instance_states = [s for s in group.instance_states if s is not state]
                activity.finish(_now())
                _notify(
                    _state(self),
                    "instance_terminated",
                    Termination(group.name, iid, _now(), from_pool, "ec2"),
                )
                if group not in touched:
                    touched.append(group)
            for group in touched:
                _reconcile(self, group)
                _drop_group_if_deleted(self, group)

    notify_terminate_instances.__wrapped__ = original  # type: ignore[attr-defined]
    return notify_terminate_instances


def _wrap_delete_group(original: Callable[..., ActionResult]) -> Callable[..., Any]:
    def delete_auto_scaling_group(self: Any) -> ActionResult:
        backend = self.autoscaling_backend
        name = self._get_param("AutoScalingGroupName")
        group = backend.autoscaling_groups.get(name)
        if group is None:
            return original(self)
        with _lock:
            if not self._get_bool_param("ForceDelete", False) and group.instance_states:
                raise AutoscalingClientError(
                    "ResourceInUse",
                    "You cannot delete an AutoScalingGroup while there are instances or "
                    "pending Spot instance request(s) still in the group.",
                )
            if _state(backend).knobs.force_delete_holds and group.instance_states:
                _delete_holding(backend, group)
                return EmptyResult()
            # ForceDelete: every instance goes now, outstanding lifecycle actions are deleted.
            for state in list(group.instance_states):
                _force_terminate(backend, group, state, "group_deleted")
            group.warm_pool = None
            log_for(backend).mark_deleted(group.arn)
            hooks = backend.lifecycle_hooks
            for key in [k for k, h in hooks.items() if h.auto_scaling_group_name == name]:
                hooks.pop(key)
            return original(self)

    return delete_auto_scaling_group


def _delete_holding(backend: Any, group: Any) -> None:
    """ForceDelete with `force_delete_holds`: Status "Delete in progress" and no capacity; the
    outstanding lifecycle actions are deleted (API reference, ForceDelete) and those instances
    go at once; every other instance is terminated through the termination hooks. The group is
    deleted when its last instance is gone."""
    group.status = DELETE_IN_PROGRESS
    group.min_size = group.max_size = group.desired_capacity = 0
    st = _state(backend)
    for state in list(group.instance_states):
        if state.instance.id in st.waits:
            _force_terminate(backend, group, state, "group_deleted")
    cause = (
        f"At {cause_time(_now())} an instance was taken out of service in response to a user "
        "request to delete the group."
    )
    for state in list(group.instance_states):
        if state.lifecycle_state in GROUP_STATES | POOL_STATES | RETAINED_STATES:
            warmed = state.lifecycle_state.startswith("Warmed:")
            _start_termination(backend, group, state, cause, from_pool=warmed)
    _drop_group_if_deleted(backend, group)


def _store_lifecycle_policy(original: Callable[..., ActionResult]) -> Callable[..., Any]:
    """Create/UpdateAutoScalingGroup keep InstanceLifecyclePolicy (moto drops it) and
    UpdateAutoScalingGroup keeps CapacityRebalance (moto takes it on create only), shown by
    DescribeAutoScalingGroups; Status stays unset until DeleteAutoScalingGroup."""

    def handler(self: Any) -> ActionResult:
        response = original(self)
        group = self.autoscaling_backend.autoscaling_groups.get(
            self._get_param("AutoScalingGroupName")
        )
        policy = self._get_params().get("InstanceLifecyclePolicy")
        rebalance = self._get_bool_param("CapacityRebalance", None)
        if group is not None:
            if policy is not None:
                group.instance_lifecycle_policy = policy
            if rebalance is not None:
                group.capacity_rebalance = rebalance
            group.__dict__.setdefault("status", None)
            group.__dict__.setdefault("instance_lifecycle_policy", None)
        return response

    return handler


def _instances_in_group(self: Any) -> list[Any]:
    # DescribeAutoScalingGroups lists the group's instances; pooled ones are DescribeWarmPool's.
    return [s for s in self.instance_states if not s.lifecycle_state.startswith("Warmed:")]


def _warm_pool_size(self: Any) -> int | None:
    if getattr(self, "warm_pool", None) is None:
        return None
    return sum(1 for s in self.instance_states if s.lifecycle_state.startswith("Warmed:"))


def install(clock: Clock | None = None) -> None:
    """Patch moto's Auto Scaling with lifecycle hook behaviour. Safe to call any number of times."""
    global _installed
    if clock is not None:
        set_clock(clock)
    if _installed:
        return
    scaling_activities.set_now(_now)
    scaling_activities.install()
    resp = asg_responses.AutoScalingResponse
    resp.complete_lifecycle_action = _complete_lifecycle_action  # type: ignore[attr-defined]
    resp.record_lifecycle_action_heartbeat = _record_lifecycle_action_heartbeat  # type: ignore[attr-defined]
    resp.describe_auto_scaling_instances = _wrap_describe_instances(  # type: ignore[method-assign]
        resp.describe_auto_scaling_instances
    )
    resp.put_lifecycle_hook = _wrap_put_hook(resp.put_lifecycle_hook)  # type: ignore[method-assign]
    resp.set_desired_capacity = _with_request_cause(  # type: ignore[method-assign]
        resp.set_desired_capacity, _cause_set_desired
    )
    resp.update_auto_scaling_group = _with_request_cause(  # type: ignore[method-assign]
        resp.update_auto_scaling_group, _cause_update
    )
    resp.create_auto_scaling_group = _with_request_cause(  # type: ignore[method-assign]
        resp.create_auto_scaling_group, _cause_create
    )
    resp.delete_auto_scaling_group = _wrap_delete_group(resp.delete_auto_scaling_group)  # type: ignore[method-assign]
    resp.create_auto_scaling_group = _store_lifecycle_policy(resp.create_auto_scaling_group)  # type: ignore[method-assign]
    resp.update_auto_scaling_group = _store_lifecycle_policy(resp.update_auto_scaling_group)  # type: ignore[method-assign]
    group_cls = asg_models.FakeAutoScalingGroup
    group_cls.set_desired_capacity = _wrap_group_set_desired(  # type: ignore[method-assign]
        group_cls.set_desired_capacity
    )
    group_cls.update = _wrap_group_update(group_cls.update)  # type: ignore[method-assign]
    group_cls.instances = property(_instances_in_group)  # type: ignore[assignment,method-assign]
    group_cls.warm_pool_size = property(_warm_pool_size)  # type: ignore[attr-defined]
    backend_cls = asg_models.AutoScalingBackend
    backend_cls.terminate_instance = _terminate_instance  # type: ignore[assignment,method-assign]
    backend_cls.notify_terminate_instances = _wrap_notify_terminate(  # type: ignore[method-assign]
        backend_cls.notify_terminate_instances
    )
    from local_aws import warm_pools  # the warm pool API builds on this module

    warm_pools.install()
    _installed = True


# --- public helpers -----------------------------------------------------------------------


def configure(region: str | None = None, account_id: str | None = None, **changes: Any) -> Knobs:
    """Change the knobs of this account and Region (see `Knobs`); returns the new knobs."""
    install()
    st = _state(_backend(region, account_id))
    with _lock:
        st.knobs = replace(st.knobs, **changes)
        if "seed" in changes:
            st.rng = random.Random(st.knobs.seed)
    return st.knobs


def knobs(region: str | None = None, account_id: str | None = None) -> Knobs:
    return _state(_backend(region, account_id)).knobs


def begin_termination(
    asg_name: str,
    instance_id: str | None = None,
    hook_name: str | None = None,
    *,
    should_decrement: bool = True,
    region: str | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    """Start terminating one instance of the group as a scale-in would; return the hook's event.

    The instance enters Terminating:Wait with a fresh token for each termination hook; the
    event returned is the one for ``hook_name`` (or the group's only termination hook).
    """
    install()
    backend = _backend(region, account_id)
    group = backend.autoscaling_groups.get(asg_name)
    if group is None:
        raise ValueError(f"no Auto Scaling group {asg_name}")
    hooks = _termination_hooks(backend, asg_name)
    if not hooks:
        raise ValueError(f"group {asg_name} has no EC2_INSTANCE_TERMINATING lifecycle hook")
    if hook_name is None and len(hooks) > 1:
        raise ValueError(f"group {asg_name} has several termination hooks: name one")
    candidates = [
        s
        for s in group.instance_states
        if s.lifecycle_state == "InService"
        and (s.instance.id == instance_id if instance_id else not s.protected_from_scale_in)
    ]
    if not candidates:
        raise ValueError(f"no InService instance {instance_id or ''} in group {asg_name}")
    state = candidates[0]
    with _lock:
        # A test helper: the scale-in "already happened", so min size is not in the way.
        _request_termination(backend, group, state, should_decrement, check_min_size=False)
        wanted = hook_name or hooks[0].name
        action = next(
            a
            for a in reversed(_state(backend).actions)
            if a.instance_id == state.instance.id and a.hook_name == wanted
        )
    return action.event


def replace_instance(
    instance_id: str, cause: str, region: str | None = None, account_id: str | None = None
) -> bool:
    """The group terminates an InService instance it was told is going (through its termination
    hooks) and launches a replacement: False when the instance is not InService in a group."""
    install()
    backend = _backend(region, account_id)
    with _lock:
        group, state = _find_group_state(backend, instance_id)
        if group is None or state.lifecycle_state != "InService":
            return False
        _start_termination(backend, group, state, f"At {cause_time(_now())} {cause}")
        _reconcile(backend, group)
    return True


def capacity_rebalancing(
    instance_id: str, region: str | None = None, account_id: str | None = None
) -> bool:
    """Whether the instance's group has Capacity Rebalancing on (False outside any group)."""
    install()
    backend = _backend(region, account_id)
    with _lock:
        group, _ = _find_group_state(backend, instance_id)
        return bool(group is not None and getattr(group, "capacity_rebalance", False))


def emitted_events(region: str | None = None, account_id: str | None = None) -> list[dict]:
    return list(_state(_backend(region, account_id)).events)


def dropped_events(region: str | None = None, account_id: str | None = None) -> list[dict]:
    """Lifecycle events that were never sent (best-effort loss, or the pooled-event knob)."""
    return list(_state(_backend(region, account_id)).dropped_events)


def subscribe(callback: Listener, region: str | None = None, account_id: str | None = None) -> None:
    """Call ``callback(kind, payload)`` on every lifecycle change (kinds: module docstring)."""
    _state(_backend(region, account_id)).listeners.append(callback)


def unsubscribe(
    callback: Listener, region: str | None = None, account_id: str | None = None
) -> None:
    listeners = _state(_backend(region, account_id)).listeners
    if callback in listeners:
        listeners.remove(callback)


def lifecycle_actions(
    instance_id: str | None = None, region: str | None = None, account_id: str | None = None
) -> list[LifecycleAction]:
    actions = _state(_backend(region, account_id)).actions
    return [a for a in actions if instance_id is None or a.instance_id == instance_id]


def active_action(
    instance_id: str, region: str | None = None, account_id: str | None = None
) -> LifecycleAction | None:
    return next((a for a in lifecycle_actions(instance_id, region, account_id) if a.active), None)


def expire_due(region: str | None = None, account_id: str | None = None) -> list[LifecycleAction]:
    """End the actions whose heartbeat or global timeout has passed, with the default result."""
    with _lock:
        return _expire(_backend(region, account_id))


def activities(
    instance_id: str | None = None, region: str | None = None, account_id: str | None = None
) -> list[ScalingActivity]:
    """The recorded scaling activities (dropped ones included, flagged), oldest first."""
    log = log_for(_backend(region, account_id))
    return [a for a in log.activities if instance_id is None or a.instance_id == instance_id]


def drop_activities(
    instance_id: str | None = None, region: str | None = None, account_id: str | None = None
) -> int:
    """Hide the activities of an instance (or all) from DescribeScalingActivities."""
    with _lock:
        return log_for(_backend(region, account_id)).drop(instance_id)
