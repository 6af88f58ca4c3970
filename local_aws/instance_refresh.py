"""Instance refresh for moto's Auto Scaling (moto 5.2.5 has none of its API).

EC2 Auto Scaling user guide, "How an instance refresh works in an Auto Scaling group" (rolling
strategy: "Terminates instances and launches new ones in batches according to your
preferences") and "Instance maintenance policies" (with the default maximum healthy percentage
of 100, "Terminate and launch": "New instances are provisioned at the same time your existing
instances are terminated"); API reference StartInstanceRefresh, DescribeInstanceRefreshes,
CancelInstanceRefresh, RefreshPreferences:

- StartInstanceRefresh takes the group's instances InService now as the ones to replace, answers
  an InstanceRefreshId, and refuses a second refresh while one is active
  (InstanceRefreshInProgress). Preferences: MinHealthyPercentage (default 90) and InstanceWarmup
  (default: the group's DefaultInstanceWarmup, else its HealthCheckGracePeriod).
  MaxHealthyPercentage other than 100 (launch before terminating) is not modelled: refused.
- A batch: at least ceil(desired x MinHealthyPercentage / 100) instances stay InService and
  healthy (an old one not taken yet, or a new one past its warmup); the rest of the old ones are
  terminated, at least one at a time ("Setting the minimum healthy percentage to 100 percent
  limits the rate of replacement to one instance at a time"). Each is terminated as any
  termination is, through the group's termination lifecycle hooks (Terminating:Wait), and its
  replacement is launched at the same time. The next batch comes once the replacements are
  InService and past the warmup.
- UNCONFIRMED (the guide does not say): whether the next batch also waits for the instances
  held by termination hooks to be terminated. Knob `Knobs.wait_for_terminations`: True
  (default; a batch ends when its instances are gone, so a hook's hold paces the refresh) /
  False (a held instance no longer counts; only the replacements' warmup paces it).
- DescribeInstanceRefreshes: Status Pending / InProgress / Successful / Cancelled, StartTime,
  EndTime, PercentageComplete (old instances terminated / taken at the start),
  InstancesToUpdate, Preferences; newest first. CancelInstanceRefresh stops new batches
  (ActiveInstanceRefreshNotFound when none is active).

The refresh moves on the sandbox's virtual clock (`use_timers`: the Sandbox wires its Timers).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.autoscaling import responses as asg_responses
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.core.responses import ActionResult

from local_aws import autoscaling
from local_aws.scaling_activities import cause_time
from local_aws.timers import Timers

DEFAULT_MIN_HEALTHY = 90
ACTIVE = ("Pending", "InProgress", "Cancelling")

_timers: Timers | None = None
_installed = False


@dataclass(frozen=True)
class Knobs:
    wait_for_terminations: bool = True


_knobs = Knobs()


def configure(**changes: Any) -> Knobs:
    """Set the knobs (see `Knobs`); returns them."""
    global _knobs
    _knobs = Knobs(**{**_knobs.__dict__, **changes})
    return _knobs


def use_timers(timers: Timers | None) -> None:
    """The scheduler the refreshes wait on (the Sandbox's); None resets the knobs too."""
    global _timers, _knobs
    _timers = timers
    if timers is None:
        _knobs = Knobs()


@dataclass
class Refresh:
    refresh_id: str
    asg_name: str
    region: str
    account_id: str
    min_healthy: int
    warmup: int
    started_at: datetime
    old: list[str]  # the instances to replace, oldest first
    status: str = "InProgress"
    ended_at: datetime | None = None
    taken: set[str] = field(default_factory=set)  # old instances whose termination began
    gone: set[str] = field(default_factory=set)  # ... and that are terminated
    new: dict[str, datetime | None] = field(default_factory=dict)  # launched -> warmed at

    @property
    def percentage(self) -> int:
        return math.floor(100 * len(self.gone) / len(self.old)) if self.old else 100

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "InstanceRefreshId": self.refresh_id,
            "AutoScalingGroupName": self.asg_name,
            "Status": self.status,
            "StartTime": self.started_at,
            "PercentageComplete": self.percentage,
            "InstancesToUpdate": len(self.old) - len(self.gone),
            "Preferences": {
                "MinHealthyPercentage": self.min_healthy,
                "InstanceWarmup": self.warmup,
                "MaxHealthyPercentage": 100,
            },
            "Strategy": "Rolling",
        }
        if self.ended_at is not None:
            item["EndTime"] = self.ended_at
        return item


def _refreshes(backend: Any) -> list[Refresh]:
    return backend.__dict__.setdefault("_sandbox_refreshes", [])


def _group(backend: Any, name: str) -> Any:
    group = backend.autoscaling_groups.get(name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {name}")
    return group


def _start(self: Any) -> ActionResult:
    backend = self.autoscaling_backend
    name = self._get_param("AutoScalingGroupName")
    group = _group(backend, name)
    prefs = self._get_param("Preferences") or {}
    if any(r.asg_name == name and r.status in ACTIVE for r in _refreshes(backend)):
        raise AutoscalingClientError(
            "InstanceRefreshInProgress",
            f"An Instance Refresh is already in progress and blocks the execution of this "
            f"Instance Refresh for group {name}.",
        )
    max_healthy = prefs.get("MaxHealthyPercentage")
    if max_healthy not in (None, 100, "100"):
        raise ValidationError(
            "sandbox: MaxHealthyPercentage other than 100 (launch before terminating) is not "
            "modelled"
        )
    min_healthy = int(prefs.get("MinHealthyPercentage", DEFAULT_MIN_HEALTHY))
    warmup = prefs.get("InstanceWarmup")
    if warmup is None:
        warmup = (
            getattr(group, "default_instance_warmup", None)
            or getattr(group, "health_check_period", None)
            or 0
        )
    if _timers is None:
        raise ValidationError("sandbox: instance refresh needs a Sandbox (its virtual clock)")
    with autoscaling._lock:
        old = [s.instance.id for s in group.instance_states if s.lifecycle_state == "InService"]
        refresh = Refresh(
            refresh_id=str(uuid.uuid4()),
            asg_name=name,
            region=backend.region_name,
            account_id=backend.account_id,
            min_healthy=min_healthy,
            warmup=int(warmup),
            started_at=autoscaling._now(),
            old=old,
        )
        _refreshes(backend).append(refresh)
        autoscaling.subscribe(
            _listener(refresh), region=refresh.region, account_id=refresh.account_id
        )
    _timers.call_later(0, lambda: _step(refresh), name=f"instance refresh {name}")
    return ActionResult({"InstanceRefreshId": refresh.refresh_id})


def _describe(self: Any) -> ActionResult:
    backend = self.autoscaling_backend
    name = self._get_param("AutoScalingGroupName")
    ids = set(self._get_param("InstanceRefreshIds", []) or [])
    found = [
        r.to_api()
        for r in reversed(_refreshes(backend))
        if r.asg_name == name and (not ids or r.refresh_id in ids)
    ]
    return ActionResult({"InstanceRefreshes": found})


def _cancel(self: Any) -> ActionResult:
    backend = self.autoscaling_backend
    name = self._get_param("AutoScalingGroupName")
    active = [r for r in _refreshes(backend) if r.asg_name == name and r.status in ACTIVE]
    if not active:
        raise AutoscalingClientError(
            "ActiveInstanceRefreshNotFound",
            f"No in progress or pending Instance Refresh found for Auto Scaling group {name}",
        )
    refresh = active[-1]
    refresh.status, refresh.ended_at = "Cancelled", autoscaling._now()
    return ActionResult({"InstanceRefreshId": refresh.refresh_id})


def _listener(refresh: Refresh) -> Any:
    def on_change(kind: str, payload: Any) -> None:
        if refresh.status not in ACTIVE or _timers is None:
            return
        if kind == "instance_terminated" and payload.instance_id in refresh.taken:
            refresh.gone.add(payload.instance_id)
            _timers.call_later(0, lambda: _step(refresh), name="instance refresh: terminated")
        elif kind == "in_service" and payload.asg_name == refresh.asg_name:
            if payload.instance_id in refresh.old:
                return
            refresh.new[payload.instance_id] = None
            instance_id = payload.instance_id

            def warmed() -> None:
                refresh.new[instance_id] = autoscaling._now()
                _step(refresh)

            _timers.call_later(refresh.warmup, warmed, name="instance refresh: warmup")

    return on_change


def _step(refresh: Refresh) -> None:
    """Start the next batch when the last one is done, or finish."""
    if refresh.status not in ACTIVE:
        return
    backend = autoscaling._backend(refresh.region, refresh.account_id)
    with autoscaling._lock:
        group = backend.autoscaling_groups.get(refresh.asg_name)
        if group is None:
            refresh.status, refresh.ended_at = "Cancelled", autoscaling._now()
            return
        warming = [i for i, at in refresh.new.items() if at is None]
        terminating = refresh.taken - refresh.gone
        left = [i for i in refresh.old if i not in refresh.taken and _in_service(group, i)]
        if not left and not terminating and not warming:
            refresh.status, refresh.ended_at = "Successful", autoscaling._now()
            return
        if warming or (terminating and _knobs.wait_for_terminations):
            return  # the batch under way is not done yet
        desired = int(group.desired_capacity or 0)
        floor = math.ceil(desired * refresh.min_healthy / 100)
        healthy = sum(
            1
            for s in group.instance_states
            if s.lifecycle_state == "InService"
            and (s.instance.id in left or refresh.new.get(s.instance.id) is not None)
        )
        batch = left[: max(1, healthy - floor)]
        cause = (
            f"At {cause_time(autoscaling._now())} an instance was taken out of service in "
            "response to an instance refresh."
        )
        for instance_id in batch:
            state = next(s for s in group.instance_states if s.instance.id == instance_id)
            refresh.taken.add(instance_id)
            autoscaling._start_termination(backend, group, state, cause)
        # Terminate and launch: the replacements are launched as the terminations begin.
        autoscaling._reconcile(backend, group)


def _in_service(group: Any, instance_id: str) -> bool:
    return any(
        s.instance.id == instance_id and s.lifecycle_state == "InService"
        for s in group.instance_states
    )


def install() -> None:
    """Patch StartInstanceRefresh / DescribeInstanceRefreshes / CancelInstanceRefresh."""
    global _installed
    if _installed:
        return
    resp = asg_responses.AutoScalingResponse
    resp.start_instance_refresh = _start  # type: ignore[attr-defined]
    resp.describe_instance_refreshes = _describe  # type: ignore[attr-defined]
    resp.cancel_instance_refresh = _cancel  # type: ignore[attr-defined]
    _installed = True


def refreshes(
    asg_name: str, region: str | None = None, account_id: str | None = None
) -> list[Refresh]:
    """The group's refreshes, oldest first (for tests and benchmarks)."""
    backend = autoscaling._backend(region, account_id)
    return [r for r in _refreshes(backend) if r.asg_name == asg_name]
