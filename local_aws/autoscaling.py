"""Termination lifecycle hooks for moto's Auto Scaling (moto stores hooks but never honours them).

What this adds, as the EC2 Auto Scaling user guide ("Amazon EC2 Auto Scaling lifecycle hooks")
and API reference describe it:

- A scale-in (SetDesiredCapacity lower, UpdateAutoScalingGroup, TerminateInstanceInAutoScalingGroup)
  of a group with an ``autoscaling:EC2_INSTANCE_TERMINATING`` hook puts each chosen instance in
  ``Terminating:Wait`` (DescribeAutoScalingInstances shows it) with a fresh LifecycleActionToken
  per hook, and emits the EventBridge "EC2 Instance-terminate Lifecycle Action" event.
- CompleteLifecycleAction and RecordLifecycleActionHeartbeat, by LifecycleActionToken or by
  InstanceId. Once the action is over they fail with ValidationError
  "No active Lifecycle Action found with instance ID i-..." (or "... with token ...").
- The heartbeat timeout (restarted by each heartbeat) and the global timeout
  (min(48 h, 100 x HeartbeatTimeout), never restarted) end the action with the hook's
  DefaultResult. Timers are checked against the sandbox clock on every lifecycle call, on
  DescribeAutoScalingInstances, and whenever `expire_due` is called.
- CONTINUE and ABANDON both let a terminating instance go: it leaves the group and its EC2
  instance is terminated. ABANDON also ends the instance's other pending hooks.
- PutLifecycleHook keeps NotificationMetadata (moto drops it) and checks HeartbeatTimeout
  is within 30..7200 s.

API (all functions take optional ``region`` / ``account_id``; defaults us-east-1 and moto's
default account):

- ``install(clock=None)``: patch moto; idempotent, call it before or inside ``mock_aws()``.
  ``clock`` is any object with ``now() -> datetime`` (default: real time).
- ``begin_termination(asg_name, instance_id=None, hook_name=None, should_decrement=True)``:
  put one InService instance (the first unprotected one if not named) into Terminating:Wait,
  as a scale-in of one would, and return the EventBridge event (a dict) for the hook.
- ``emitted_events()``: every event emitted so far, oldest first.
- ``subscribe(callback)``: ``callback(kind, payload)`` is called with ``("event", event_dict)``
  when an instance enters Terminating:Wait, ``("heartbeat", action)`` on each heartbeat and
  ``("terminated", action)`` when the instance terminates.
- ``lifecycle_actions(instance_id=None)`` / ``active_action(instance_id)``: the recorded
  `LifecycleAction` objects (token, times, heartbeats, result, how it ended).
- ``expire_due()``: end actions whose heartbeat or global timeout has passed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.autoscaling import models as asg_models
from moto.autoscaling import responses as asg_responses
from moto.autoscaling.exceptions import ValidationError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult, EmptyResult

from local_aws.clock import Clock, RealClock

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
DETAIL_TYPE = "EC2 Instance-terminate Lifecycle Action"
GLOBAL_TIMEOUT_CAP = 48 * 3600
DEFAULT_REGION = "us-east-1"

Listener = Callable[[str, Any], None]

# One lock for every lifecycle mutation: the Step Functions interpreter calls in from its thread.
_lock = threading.RLock()
_clock: Clock = RealClock()
_installed = False
# Token namespace: tokens and event ids are derived from a counter, so runs are repeatable.
_NAMESPACE = uuid.UUID("5f0c2f4e-8a59-4d1c-9a43-2a0f6b1d7e10")


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
    # "complete", "heartbeat_timeout", "global_timeout" or "abandoned_by_other_hook"
    ended_by: str | None = None
    event: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass
class _BackendState:
    actions: list[LifecycleAction] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
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


def _termination_hooks(backend: Any, group_name: str) -> list[Any]:
    return [
        h
        for h in backend.describe_lifecycle_hooks(group_name)
        if h.lifecycle_transition == TERMINATING
    ]


def _event_for(backend: Any, group: Any, action: LifecycleAction, event_id: str) -> dict:
    detail: dict[str, Any] = {
        "Origin": "AutoScalingGroup",
        "Destination": "EC2",
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
        "detail-type": DETAIL_TYPE,
        "source": "aws.autoscaling",
        "account": backend.account_id,
        "time": action.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": backend.region_name,
        "resources": [group.arn],
        "detail": detail,
    }


def _notify(st: _BackendState, kind: str, payload: Any) -> None:
    for listener in list(st.listeners):
        listener(kind, payload)


def _begin_wait(backend: Any, group: Any, instance_state: Any, hooks: list[Any]) -> list[dict]:
    """Move one instance into Terminating:Wait with one action (and one token) per hook."""
    st = _state(backend)
    now = _now()
    instance_state.lifecycle_state = "Terminating:Wait"
    events = []
    for hook in hooks:
        st.counter += 1
        key = f"{backend.account_id}/{backend.region_name}/{instance_state.instance.id}"
        token = str(uuid.uuid5(_NAMESPACE, f"{key}/{hook.name}/{st.counter}"))
        timeout = int(hook.heartbeat_timeout)
        action = LifecycleAction(
            token=token,
            asg_name=group.name,
            hook_name=hook.name,
            instance_id=instance_state.instance.id,
            transition=TERMINATING,
            metadata=getattr(hook, "notification_metadata", None),
            heartbeat_timeout=timeout,
            default_result=hook.default_result or "ABANDON",
            started_at=now,
            heartbeat_deadline=now + timedelta(seconds=timeout),
            global_deadline=now + timedelta(seconds=min(GLOBAL_TIMEOUT_CAP, 100 * timeout)),
        )
        event_id = str(uuid.uuid5(_NAMESPACE, f"event/{token}"))
        action.event = _event_for(backend, group, action, event_id)
        st.actions.append(action)
        st.events.append(action.event)
        events.append(action.event)
    for event in events:
        _notify(st, "event", event)
    return events


def _find_group_state(backend: Any, instance_id: str) -> tuple[Any, Any] | tuple[None, None]:
    for group in backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return group, state
    return None, None


def _end(backend: Any, action: LifecycleAction, result: str, ended_by: str) -> None:
    st = _state(backend)
    now = _now()
    action.result, action.ended_at, action.ended_by = result, now, ended_by
    if result == "ABANDON":
        # ABANDON ends every other pending hook of this instance (user guide).
        for other in st.actions:
            if other.active and other.instance_id == action.instance_id:
                other.result, other.ended_at = "ABANDON", now
                other.ended_by = "abandoned_by_other_hook"
    if any(a.active and a.instance_id == action.instance_id for a in st.actions):
        return
    # For a terminating instance CONTINUE and ABANDON both terminate it.
    group, instance_state = _find_group_state(backend, action.instance_id)
    if group is not None:
        instance_state.lifecycle_state = "Terminating:Proceed"
        group.instance_states = [s for s in group.instance_states if s is not instance_state]
        backend.ec2_backend.delete_tags([action.instance_id], {asg_models.ASG_NAME_TAG: group.name})
        backend.ec2_backend.terminate_instances([action.instance_id])
    _notify(st, "terminated", action)


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
    for action in _state(backend).actions:
        if (
            action.active
            and action.asg_name == group_name
            and action.hook_name == hook_name
            and (action.token == token if token else action.instance_id == instance_id)
        ):
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


def _wrap_group_set_desired(original: Callable[..., None]) -> Callable[..., None]:
    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        backend = self.autoscaling_backend
        hooks = _termination_hooks(backend, self.name)
        desired = self.min_size if new_capacity is None else new_capacity
        active = self.active_instances()
        if not hooks or desired >= len(active) or self.mixed_instances_policy:
            original(self, new_capacity)
            return
        # Scale-in with a termination hook: hold the chosen instances instead of terminating.
        self.desired_capacity = desired
        victims = [s for s in active if not s.protected_from_scale_in][: len(active) - desired]
        with _lock:
            for state in victims:
                _begin_wait(backend, self, state, hooks)

    return set_desired_capacity


def _wrap_terminate_instance(original: Callable[..., Any]) -> Callable[..., Any]:
    def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
        group, state = _find_group_state(self, instance_id)
        hooks = _termination_hooks(self, group.name) if group is not None else []
        if group is None or not hooks:
            return original(self, instance_id, should_decrement)
        return _terminate_with_hooks(self, group, state, hooks, should_decrement)

    return terminate_instance


def _terminate_with_hooks(
    backend: Any,
    group: Any,
    state: Any,
    hooks: list[Any],
    should_decrement: bool,
    check_min_size: bool = True,
) -> Any:
    original_size = group.desired_capacity
    if state.lifecycle_state != "InService":
        # Already on its way out: nothing new starts (AWS reports the ongoing activity).
        return asg_models.TerminateInstanceActivity(state.instance, original_size)
    if should_decrement:
        if check_min_size and group.desired_capacity <= group.min_size:
            raise ValidationError(
                f"Currently, desiredSize equals minSize ({group.min_size}). Terminating "
                "instance without replacement will violate group's min size constraint. "
                "Either set shouldDecrementDesiredCapacity flag to false or lower group's "
                "min size."
            )
        group.desired_capacity = max(0, group.desired_capacity - 1)
    with _lock:
        _begin_wait(backend, group, state, hooks)
    if not should_decrement:
        # Without the decrement the group launches a replacement right away.
        group.set_desired_capacity(group.desired_capacity)
    return asg_models.TerminateInstanceActivity(state.instance, original_size)


def install(clock: Clock | None = None) -> None:
    """Patch moto's Auto Scaling with lifecycle hook behaviour. Safe to call any number of times."""
    global _installed
    if clock is not None:
        set_clock(clock)
    if _installed:
        return
    resp = asg_responses.AutoScalingResponse
    resp.complete_lifecycle_action = _complete_lifecycle_action  # type: ignore[attr-defined]
    resp.record_lifecycle_action_heartbeat = _record_lifecycle_action_heartbeat  # type: ignore[attr-defined]
    resp.describe_auto_scaling_instances = _wrap_describe_instances(  # type: ignore[method-assign]
        resp.describe_auto_scaling_instances
    )
    resp.put_lifecycle_hook = _wrap_put_hook(resp.put_lifecycle_hook)  # type: ignore[method-assign]
    group_cls = asg_models.FakeAutoScalingGroup
    group_cls.set_desired_capacity = _wrap_group_set_desired(  # type: ignore[method-assign]
        group_cls.set_desired_capacity
    )
    backend_cls = asg_models.AutoScalingBackend
    backend_cls.terminate_instance = _wrap_terminate_instance(  # type: ignore[method-assign]
        backend_cls.terminate_instance
    )
    _installed = True


# --- public helpers -----------------------------------------------------------------------


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
        _terminate_with_hooks(backend, group, state, hooks, should_decrement, check_min_size=False)
        wanted = hook_name or hooks[0].name
        action = next(
            a
            for a in reversed(_state(backend).actions)
            if a.instance_id == state.instance.id and a.hook_name == wanted
        )
    return action.event


def emitted_events(region: str | None = None, account_id: str | None = None) -> list[dict]:
    return list(_state(_backend(region, account_id)).events)


def subscribe(callback: Listener, region: str | None = None, account_id: str | None = None) -> None:
    """Call ``callback(kind, payload)`` on ("event", event) and ("terminated", action)."""
    _state(_backend(region, account_id)).listeners.append(callback)


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
