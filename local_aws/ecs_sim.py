"""An ECS scheduler for moto, written to what AWS documents for container instance draining.

moto keeps ECS state but schedules nothing: services never place tasks, DRAINING has no effect,
and StopTask makes a task STOPPED at once. `EcsSimulator` drives the ECS state on the sandbox's
virtual clock, as the UpdateContainerInstancesState API reference and the developer guide
("Container instance draining", "Task lifecycle") describe:

- Services keep their desiredCount: the scheduler places service tasks on ACTIVE container
  instances (never DRAINING ones), spreading them over the instances with the fewest tasks.
  A placed task is PENDING, then RUNNING after ``start_seconds``.
- When an instance is DRAINING: PENDING service tasks on it stop at once; RUNNING service tasks
  are replaced within the service's deployment configuration. maximumPercent caps the tasks
  that are not STOPPED (so at 100% a replacement starts only once a drained task stopped);
  minimumHealthyPercent is the floor of RUNNING tasks (so at 100% a drained task is stopped only
  once its replacement is RUNNING). Stopping takes time: DEACTIVATING, then STOPPING after
  ``deactivate_seconds``, then STOPPED after ``stop_seconds`` more.
- Standalone tasks (not started by a service) are never touched: they run until they exit by
  themselves (``run_standalone(..., exits_after=...)``) or someone calls StopTask.
- Daemon-service tasks on a draining instance stop last, once no replica-service task is left
  on it; they are never replaced elsewhere (every ACTIVE instance already runs one).
- StopTask sets desiredStatus STOPPED and the task walks DEACTIVATING -> STOPPING -> STOPPED
  (the stop timeout) instead of moto's instant STOPPED. A service replaces a task stopped this
  way.
- When the EC2 instance terminates, its container instance goes INACTIVE and any task still on
  it is lost: it is marked STOPPED and recorded in ``lost_tasks``.

Every change is recorded in ``events`` (virtual time, kind, details) for the demo and the tests,
and moto's own task status progression is frozen so only this scheduler moves tasks.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.moto_api import state_manager

from local_aws import ecs_states
from local_aws.clock import VirtualClock

NOT_STOPPED = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING")
REPLICA_DEFAULTS = {"minimumHealthyPercent": 100, "maximumPercent": 200}
DAEMON_DEFAULTS = {"minimumHealthyPercent": 0, "maximumPercent": 100}

_installed = False


@dataclass(frozen=True)
class Timings:
    """Seconds a task takes to start and stop; each draw adds up to ``jitter`` x the base."""

    start_seconds: float = 20.0
    deactivate_seconds: float = 5.0
    stop_seconds: float = 25.0
    jitter: float = 0.5


@dataclass
class SimEvent:
    at: datetime
    kind: str
    cluster: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _TaskInfo:
    cluster: str
    service: str | None  # service name, None for standalone
    daemon: bool = False
    exits_after: float | None = None


def _service_key(cluster: str, name: str) -> str:
    return f"{cluster}:{name}"


class EcsSimulator:
    """Drives moto's ECS state for one account and region on a virtual clock."""

    def __init__(
        self,
        clock: VirtualClock,
        *,
        seed: int = 0,
        timings: Timings | None = None,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        install()
        self.clock = clock
        self.rng = random.Random(seed)
        self.timings = timings or Timings()
        self.region, self.account_id = region, account_id
        self.events: list[SimEvent] = []
        self.lost_tasks: list[str] = []
        self.listeners: list[Callable[[SimEvent], None]] = []
        self._tasks: dict[str, _TaskInfo] = {}
        self._timers: list[tuple[datetime, int, str, str]] = []  # (when, seq, task_arn, status)
        self._seq = 0
        self._lock = threading.RLock()
        self._min_healthy_seen: dict[str, int] = {}
        self.backend.__dict__["_sandbox_ecs_sim"] = self

    @property
    def backend(self) -> Any:
        return ecs_models.ecs_backends[self.account_id][self.region]

    # --- recording -------------------------------------------------------------------------

    def _record(self, kind: str, cluster: str, **details: Any) -> None:
        event = SimEvent(self.clock.now(), kind, cluster, details)
        self.events.append(event)
        for listener in self.listeners:
            listener(event)

    def _delay(self, base: float) -> timedelta:
        return timedelta(seconds=base * (1 + self.rng.random() * self.timings.jitter))

    def _at(self, when: datetime, task_arn: str, status: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, task_arn, status))

    # --- lookups ---------------------------------------------------------------------------

    def _task(self, task_arn: str) -> Any:
        info = self._tasks[task_arn]
        return self.backend.tasks[info.cluster][task_arn]

    def _instances(self, cluster: str) -> dict[str, Any]:
        return self.backend.container_instances.get(cluster, {})

    def _instance_of(self, task: Any) -> Any | None:
        if not task.container_instance_arn:
            return None
        return self._instances(task.cluster_name).get(task.container_instance_arn.split("/")[-1])

    def _service_tasks(self, cluster: str, name: str) -> list[Any]:
        return [
            self.backend.tasks[cluster][arn]
            for arn, info in self._tasks.items()
            if info.cluster == cluster and info.service == name
        ]

    def tasks_on(self, cluster: str, container_instance_arn: str) -> list[Any]:
        return [
            t
            for t in self.backend.tasks.get(cluster, {}).values()
            if t.container_instance_arn == container_instance_arn
        ]

    # --- placing and stopping --------------------------------------------------------------

    def _place(
        self, cluster: str, task_definition: str, instance: Any, info: _TaskInfo, started_by: str
    ) -> Any:
        group = f"service:{info.service}" if info.service else None
        [task] = self.backend.start_task(
            cluster, task_definition, [instance.container_instance_arn], {}, started_by, None, group
        )
        # moto counts a started task as running; ECS shows it pending until it runs.
        instance.running_tasks_count -= 1
        instance.pending_tasks_count += 1
        task.last_status = "PENDING"
        task.started_by = started_by
        self._tasks[task.task_arn] = info
        self._at(
            self.clock.now() + self._delay(self.timings.start_seconds), task.task_arn, "RUNNING"
        )
        self._record(
            "task_placed",
            cluster,
            task=task.task_arn,
            service=info.service,
            instance=instance.ec2_instance_id,
        )
        return task

    def run_standalone(
        self,
        cluster: str,
        task_definition: str,
        ec2_instance_id: str,
        *,
        exits_after: float | None = None,
        group: str | None = None,
    ) -> str:
        """Start a standalone task on an instance; it exits by itself after ``exits_after`` s."""
        with self._lock:
            instance = ecs_states.find_container_instance(self.backend, cluster, ec2_instance_id)
            info = _TaskInfo(cluster=cluster, service=None, exits_after=exits_after)
            [task] = self.backend.start_task(
                cluster, task_definition, [instance.container_instance_arn], {}, "", None, group
            )
            instance.running_tasks_count -= 1
            instance.pending_tasks_count += 1
            task.last_status = "PENDING"
            self._tasks[task.task_arn] = info
            when = self.clock.now() + self._delay(self.timings.start_seconds)
            self._at(when, task.task_arn, "RUNNING")
            self._record(
                "task_placed",
                cluster,
                task=task.task_arn,
                service=None,
                instance=instance.ec2_instance_id,
            )
            return task.task_arn

    def _begin_stop(self, task: Any, reason: str) -> None:
        """StopTask semantics: desiredStatus STOPPED, then the stop walks through its states."""
        if task.desired_status == "STOPPED" and task.last_status != "PENDING":
            return
        task.desired_status = "STOPPED"
        task.stopped_reason = reason
        if task.last_status in ("PROVISIONING", "PENDING", "ACTIVATING"):
            self._finish_stop(task)  # nothing is running yet: it stops at once
            return
        if task.last_status == "RUNNING":
            task.last_status = "DEACTIVATING"
            now = self.clock.now()
            to_stopping = now + self._delay(self.timings.deactivate_seconds)
            self._at(to_stopping, task.task_arn, "STOPPING")
            self._at(to_stopping + self._delay(self.timings.stop_seconds), task.task_arn, "STOPPED")
            self._record(
                "task_stopping",
                task.cluster_name,
                task=task.task_arn,
                reason=reason,
                service=self._tasks.get(task.task_arn, _TaskInfo("", None)).service,
            )

    def _finish_stop(self, task: Any) -> None:
        was = task.last_status
        if was == "STOPPED":
            return
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        instance = self._instance_of(task)
        if instance is not None:
            self.backend.update_container_instance_resources(
                instance, task.resource_requirements, removing=True
            )
            if was in ("PROVISIONING", "PENDING", "ACTIVATING"):
                # The resource update took one off the running count; it was pending.
                instance.running_tasks_count += 1
                instance.pending_tasks_count -= 1
        info = self._tasks.get(task.task_arn)
        self._record(
            "task_stopped",
            task.cluster_name,
            task=task.task_arn,
            service=info.service if info else None,
            reason=task.stopped_reason,
        )

    def stop_task(self, task: Any, reason: str) -> None:
        with self._lock:
            self._begin_stop(task, reason)

    # --- the clock -------------------------------------------------------------------------

    def next_time(self, *, include_exits: bool = True) -> datetime | None:
        """The next timer; without ``include_exits``, ignoring standalone tasks' own exits."""
        with self._lock:
            if include_exits:
                return self._timers[0][0] if self._timers else None
            return min((t[0] for t in self._timers if t[3] != "EXIT"), default=None)

    def run_due(self) -> bool:
        """Apply every timer due by now and reconcile; True if anything changed."""
        changed = False
        with self._lock:
            now = self.clock.now()
            while self._timers and self._timers[0][0] <= now:
                _, _, arn, status = heapq.heappop(self._timers)
                changed |= self._apply(arn, status)
            while self._reconcile():
                changed = True
        return changed

    def _apply(self, task_arn: str, status: str) -> bool:
        task = self._task(task_arn)
        if task.last_status == "STOPPED":
            return False
        if status == "RUNNING":
            if task.last_status != "PENDING" or task.desired_status != "RUNNING":
                return False
            task.last_status = "RUNNING"
            instance = self._instance_of(task)
            if instance is not None:
                instance.pending_tasks_count -= 1
                instance.running_tasks_count += 1
            info = self._tasks[task_arn]
            self._record("task_running", task.cluster_name, task=task_arn, service=info.service)
            if info.exits_after is not None:
                when = self.clock.now() + timedelta(seconds=info.exits_after)
                self._at(when, task_arn, "EXIT")
            return True
        if status == "EXIT":
            self._begin_stop(task, "Essential container in task exited")
            return True
        if status == "STOPPING":
            if task.last_status == "DEACTIVATING":
                task.last_status = "STOPPING"
                return True
            return False
        if status == "STOPPED":
            self._finish_stop(task)
            return True
        return False

    # --- the scheduler ---------------------------------------------------------------------

    def _reconcile(self) -> bool:
        changed = False
        for (cluster, name), service in self._services():
            if service.scheduling_strategy == "DAEMON":
                changed |= self._reconcile_daemon(cluster, service)
            else:
                changed |= self._reconcile_replica(cluster, name, service)
        for cluster, instances in self.backend.container_instances.items():
            for instance in instances.values():
                if instance.status == "DRAINING":
                    changed |= self._drain_daemons(cluster, instance)
        return changed

    def _services(self) -> list[tuple[tuple[str, str], Any]]:
        out = []
        for key, service in sorted(self.backend.services.items()):
            if service.status != "ACTIVE" or service.region_name != self.region:
                continue
            cluster, name = key.split(":", 1)
            out.append(((cluster, name), service))
        return out

    def _placeable(self, cluster: str, service: Any) -> list[Any]:
        td = self.backend.describe_task_definition(service.task_definition)
        needs = self.backend._calculate_task_resource_requirements(td)
        candidates = [
            ci
            for ci in self._instances(cluster).values()
            if ci.status == "ACTIVE" and self.backend._can_be_placed(ci, needs)
        ]
        # Spread: fewest tasks first, then a stable order.
        return sorted(
            candidates,
            key=lambda ci: (
                ci.running_tasks_count + ci.pending_tasks_count,
                ci.container_instance_arn,
            ),
        )

    def _reconcile_replica(self, cluster: str, name: str, service: Any) -> bool:
        config = {**REPLICA_DEFAULTS, **(getattr(service, "deployment_configuration", None) or {})}
        desired = int(service.desired_count or 0)
        max_total = math.floor(desired * config["maximumPercent"] / 100)
        min_healthy = math.ceil(desired * config["minimumHealthyPercent"] / 100)
        tasks = self._service_tasks(cluster, name)
        changed = False

        def on_active(t: Any) -> bool:
            ci = self._instance_of(t)
            return ci is not None and ci.status == "ACTIVE"

        # PENDING service tasks on a draining instance stop at once (API reference).
        for t in tasks:
            ci = self._instance_of(t)
            if (
                ci is not None
                and ci.status == "DRAINING"
                and t.desired_status == "RUNNING"
                and t.last_status == "PENDING"
            ):
                self._begin_stop(t, "Container instance is draining")
                changed = True

        # Start replacements on ACTIVE instances, under maximumPercent of tasks not STOPPED.
        wanted = [t for t in tasks if t.desired_status == "RUNNING"]
        settled = sum(1 for t in wanted if on_active(t))
        alive = sum(1 for t in tasks if t.last_status in NOT_STOPPED)
        room = min(desired - settled, max_total - alive)
        for _ in range(max(0, room)):
            targets = self._placeable(cluster, service)
            if not targets:
                break
            self._place(
                cluster,
                service.task_definition,
                targets[0],
                _TaskInfo(cluster, name),
                f"ecs-svc/{name}",
            )
            changed = True
        tasks = self._service_tasks(cluster, name)

        # Stop drained tasks while the RUNNING count stays at or above minimumHealthyPercent.
        healthy = sum(
            1 for t in tasks if t.last_status == "RUNNING" and t.desired_status == "RUNNING"
        )
        draining = [
            t
            for t in tasks
            if t.desired_status == "RUNNING"
            and t.last_status == "RUNNING"
            and (ci := self._instance_of(t)) is not None
            and ci.status == "DRAINING"
        ]
        for t in sorted(draining, key=lambda t: t.task_arn):
            if healthy - 1 < min_healthy:
                break
            self._begin_stop(t, "Container instance is draining")
            healthy -= 1
            changed = True

        running_now = sum(
            1 for t in tasks if t.last_status == "RUNNING" and t.desired_status == "RUNNING"
        )
        service.running_count = running_now
        service.pending_count = sum(1 for t in tasks if t.last_status == "PENDING")
        key = _service_key(cluster, name)
        self._min_healthy_seen[key] = min(self._min_healthy_seen.get(key, running_now), running_now)
        return changed

    def _reconcile_daemon(self, cluster: str, service: Any) -> bool:
        changed = False
        tasks = self._service_tasks(cluster, service.name)
        covered = {t.container_instance_arn for t in tasks if t.desired_status == "RUNNING"}
        td = self.backend.describe_task_definition(service.task_definition)
        needs = self.backend._calculate_task_resource_requirements(td)
        for ci in sorted(self._instances(cluster).values(), key=lambda c: c.container_instance_arn):
            if ci.status != "ACTIVE" or ci.container_instance_arn in covered:
                continue
            if self.backend._can_be_placed(ci, needs):
                info = _TaskInfo(cluster, service.name, daemon=True)
                self._place(cluster, service.task_definition, ci, info, f"ecs-svc/{service.name}")
                changed = True
        service.running_count = sum(1 for t in tasks if t.last_status == "RUNNING")
        return changed

    def _drain_daemons(self, cluster: str, instance: Any) -> bool:
        on_it = [
            (t, self._tasks.get(t.task_arn))
            for t in self.tasks_on(cluster, instance.container_instance_arn)
            if t.last_status != "STOPPED"
        ]
        replicas_left = any(
            info is not None and info.service and not info.daemon for _, info in on_it
        )
        if replicas_left:
            return False
        changed = False
        for task, info in on_it:
            if info is not None and info.daemon and task.desired_status == "RUNNING":
                self._begin_stop(task, "Container instance is draining")
                changed = True
        return changed

    # --- instance termination --------------------------------------------------------------

    def instance_terminated(self, ec2_instance_id: str) -> list[str]:
        """The EC2 instance is gone: its container instance goes INACTIVE, its tasks are lost."""
        lost = []
        with self._lock:
            for cluster, instances in self.backend.container_instances.items():
                for ci in instances.values():
                    if ci.ec2_instance_id != ec2_instance_id:
                        continue
                    for task in self.tasks_on(cluster, ci.container_instance_arn):
                        if task.last_status != "STOPPED":
                            lost.append(task.task_arn)
                            task.stopped_reason = "Host EC2 instance terminated"
                            self._finish_stop(task)
                            self._record("task_lost", cluster, task=task.task_arn)
                    ci.status = "INACTIVE"
                    ci.agent_connected = False
                    self._record("instance_inactive", cluster, instance=ec2_instance_id)
            self.lost_tasks.extend(lost)
            while self._reconcile():
                pass
        return lost

    def min_running_seen(self) -> dict[str, int]:
        """Lowest RUNNING count each service had at any reconcile (for the demo's summary)."""
        return dict(self._min_healthy_seen)

    def reset_min_running(self) -> None:
        self._min_healthy_seen.clear()


# --- moto patches -------------------------------------------------------------------------


def _sim_for(backend: Any) -> EcsSimulator | None:
    return backend.__dict__.get("_sandbox_ecs_sim")


def _wrap_stop_task(original: Callable[..., Any]) -> Callable[..., Any]:
    def stop_task(self: Any, cluster_str: str, task_str: str, reason: str) -> Any:
        sim = _sim_for(self)
        if sim is None:
            return original(self, cluster_str, task_str, reason)
        cluster = self._get_cluster(cluster_str)
        task_id = task_str.split("/")[-1]
        for arn, task in self.tasks.get(cluster.name, {}).items():
            if arn.endswith(task_id):
                sim.stop_task(task, reason or "Task stopped by the user")
                return task
        return original(self, cluster_str, task_str, reason)

    return stop_task


def _wrap_update_state(original: Callable[..., Any]) -> Callable[..., Any]:
    def update_container_instances_state(
        self: Any, cluster_str: str, ids: list[str], status: str
    ) -> Any:
        before = {}
        sim = _sim_for(self)
        cluster = cluster_str.split("/")[-1]
        for ci in self.container_instances.get(cluster, {}).values():
            before[ci.container_instance_arn] = ci.status
        result = original(self, cluster_str, ids, status)
        if sim is not None:
            for ci in result[0]:
                if before.get(ci.container_instance_arn) != ci.status:
                    sim._record(
                        "instance_" + ci.status.lower(), cluster, instance=ci.ec2_instance_id
                    )
        return result

    return update_container_instances_state


def _wrap_create_service(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_service(self: Any) -> Any:
        response = original(self)
        cluster = self._get_param("cluster", "default").split("/")[-1]
        service = self.ecs_backend.services.get(f"{cluster}:{self._get_param('serviceName')}")
        if service is not None:
            defaults = (
                DAEMON_DEFAULTS if service.scheduling_strategy == "DAEMON" else REPLICA_DEFAULTS
            )
            given = self._get_param("deploymentConfiguration") or {}
            # moto drops the deployment configuration; keep it (DescribeServices shows it).
            service.deployment_configuration = {**defaults, **given}
            if service.scheduling_strategy == "DAEMON":
                service.desired_count = 0
        return response

    return create_service


def install() -> None:
    """Patch moto's ECS (idempotent) and freeze moto's automatic task status progression."""
    global _installed
    ecs_states.install()
    # moto advances a task's lastStatus on each DescribeTasks; only the simulator may move it.
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    if _installed:
        return
    backend_cls = ecs_models.EC2ContainerServiceBackend
    backend_cls.stop_task = _wrap_stop_task(backend_cls.stop_task)  # type: ignore[method-assign]
    backend_cls.update_container_instances_state = _wrap_update_state(  # type: ignore[method-assign]
        backend_cls.update_container_instances_state
    )
    resp_cls = ecs_responses.EC2ContainerServiceResponse
    resp_cls.create_service = _wrap_create_service(resp_cls.create_service)  # type: ignore[method-assign]
    _installed = True
