"""An ECS scheduler for moto, written to what AWS documents for container instances and tasks.

moto keeps ECS state but schedules nothing: services never place tasks, DRAINING has no effect,
and StopTask makes a task STOPPED at once. `EcsSimulator` drives the ECS state on the sandbox's
virtual clock, as the UpdateContainerInstancesState API reference and the developer guide
("Container instance draining", "Task lifecycle") describe:

- Services keep their desiredCount: the scheduler places service tasks on ACTIVE container
  instances whose agent is connected (never DRAINING ones), spreading them over the instances
  with the fewest tasks. A placed task is PENDING, then RUNNING after ``start_seconds``.
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
  (the stop timeout) instead of moto's instant STOPPED; stopCode UserInitiated, or
  ServiceSchedulerInitiated / EssentialContainerExited for the scheduler's and a task's own
  stops (API reference Task.stopCode). A service replaces a task stopped this way. StopTask on
  a task ECS does not know (or no longer shows) is refused with InvalidParameterException "The
  referenced task was not found." (the text AWS answers, seen in public issue reports).
- runningTasksCount and pendingTasksCount are derived from the tasks, never kept by hand: the
  number of tasks on the instance whose desiredStatus is RUNNING, and whose lastStatus is
  PENDING (API reference ContainerInstance). A PENDING task counts in both; a task told to stop
  leaves runningTasksCount at once, while its containers still stop. `audit` checks that each
  instance's remainingResources equal its registered resources less its unstopped tasks'.
- Stopped tasks stay listed (ListTasks desiredStatus=STOPPED) and describable for
  ``EcsOptions.stopped_task_retention`` seconds (default 3600: DescribeTasks API reference,
  "stopped tasks appear in the returned results for at least one hour"), then are gone.
- Agent connectivity (API reference ContainerInstance.agentConnected: "Only instances connected
  to an agent can accept task placement requests"): `disconnect_agent` / `reconnect_agent`, and
  an optional seeded `AgentFlapping` (the developer guide, "Amazon ECS container instance state
  change events": the agent "disconnects and reconnects several times per hour as a part of its
  normal operation"). While an agent is away no task is placed on its instance and the tasks on
  it keep their last status: their pending transitions (start, stop steps, a container's own
  exit) wait for the reconnect. UNCONFIRMED (the docs are silent), assumed here: StopTask and
  draining set desiredStatus STOPPED at once (ECS's own record) but the task does not move
  towards STOPPED until the agent is back; then the deferred transitions run, in order.
- When the EC2 instance terminates, its container instance goes INACTIVE and any task still on
  it is lost: it is marked STOPPED (stopCode TerminationNotice: UNCONFIRMED, the docs name no
  code for it) and recorded in ``lost_tasks``.
- ECS events (`local_aws.ecs_events`), exactly as the developer guide lists their triggers:
  "ECS Task State Change" on every task state change (placed, RUNNING, told to stop, STOPPING,
  STOPPED, lost; "Amazon ECS task state change events"); "ECS Container Instance State Change"
  only on the triggers "Amazon ECS container instance state change events" lists: a task placed
  or told to stop (StartTask, RunTask, StopTask, the service scheduler: the instance's resources
  change at the request), the agent reporting STOPPED for a task still desired RUNNING (a task
  that exited by itself, or was lost with its host), registration, deregistration, agent
  connect and disconnect, and instance termination ("Amazon ECS events"). A task told to stop
  that later reaches STOPPED raises a task event only: no container instance event follows a
  drain's last task. Two changes the guide does not list are UNCONFIRMED knobs, off by default
  (the model the product must not need): UpdateContainerInstancesState's status change (e.g.
  DRAINING), ``EcsOptions.status_change_events``, and Put/DeleteAttributes,
  ``EcsOptions.attribute_change_events``. Each event raises the resource's ``version``, which
  DescribeTasks / DescribeContainerInstances show. ``event_sinks`` receive every event, through
  the `EventDelivery` faults.

Every change is also recorded in ``events`` (virtual time, kind, details) for the demo and the
tests, and moto's own task status progression is frozen so only this scheduler moves tasks.
The API-level behaviour (paging, limits, ClusterNotFoundException, retention, attributes) is
in `local_aws.ecs_api`; it applies to a moto backend that has an `EcsSimulator`.
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
from moto.ecs.exceptions import InvalidParameterException
from moto.moto_api import state_manager

from local_aws import ecs_states, service_events
from local_aws.clock import VirtualClock
from local_aws.ecs_events import (
    CONTAINER_INSTANCE_STATE_CHANGE,
    TASK_STATE_CHANGE,
    EcsEventStream,
    EventDelivery,
    EventSink,
    container_instance_detail,
    task_detail,
)

NOT_STOPPED = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING")
STARTING = ("PROVISIONING", "PENDING", "ACTIVATING")
REPLICA_DEFAULTS = {"minimumHealthyPercent": 100, "maximumPercent": 200}
DAEMON_DEFAULTS = {"minimumHealthyPercent": 0, "maximumPercent": 100}

# Stop codes (API reference TaskStopCode).
USER_INITIATED = "UserInitiated"
SCHEDULER_INITIATED = "ServiceSchedulerInitiated"
CONTAINER_EXITED = "EssentialContainerExited"
HOST_TERMINATED = "TerminationNotice"  # UNCONFIRMED: no doc names the code for a lost host
DRAINING_REASON = "Container instance is draining"
TASK_NOT_FOUND = "The referenced task was not found."

# Timer actions. Background ones go on forever by themselves: `settle` does not wait for them.
TASK_ACTIONS = ("RUNNING", "STOPPING", "STOPPED", "EXIT")
BACKGROUND_ACTIONS = ("EXIT", "DISCONNECT")

_installed = False


@dataclass(frozen=True)
class Timings:
    """Seconds a task takes to start and stop; each draw adds up to ``jitter`` x the base."""

    start_seconds: float = 20.0
    deactivate_seconds: float = 5.0
    stop_seconds: float = 25.0
    jitter: float = 0.5


@dataclass(frozen=True)
class AgentFlapping:
    """Seeded agent disconnect/reconnects: a Poisson process of ``per_hour`` outages per
    instance, each lasting a uniform ``min_outage_seconds``..``max_outage_seconds`` (the docs
    say "several times per hour" and give no outage length: the defaults are assumptions)."""

    per_hour: float = 4.0
    min_outage_seconds: float = 5.0
    max_outage_seconds: float = 90.0

    def __post_init__(self) -> None:
        if self.per_hour <= 0:
            raise ValueError("per_hour must be > 0")
        if not 0 <= self.min_outage_seconds <= self.max_outage_seconds:
            raise ValueError("need 0 <= min_outage_seconds <= max_outage_seconds")


@dataclass(frozen=True)
class EcsOptions:
    """Knobs of the ECS model (see the module docstring for the doc behind each)."""

    stopped_task_retention: float = 3600.0
    agent_flapping: AgentFlapping | None = None
    events: EventDelivery = field(default_factory=EventDelivery)
    # Not in the guide's list of container instance event triggers: UNCONFIRMED either way, so
    # not raised by default (an event the product would have to be given is the harder case).
    status_change_events: bool = False  # UpdateContainerInstancesState (e.g. DRAINING)
    attribute_change_events: bool = False  # Put/DeleteAttributes

    def __post_init__(self) -> None:
        if self.stopped_task_retention < 0:
            raise ValueError("stopped_task_retention must be >= 0")


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


def _last_status(task: Any) -> str:
    """A task's lastStatus. moto's property consults its state manager on every read; the
    simulator froze moto's own progression, so the stored value is the status."""
    return str(task.__dict__.get("_status") or task.last_status)


def _ci_id_of(task: Any) -> str:
    """The id of the task's container instance ("" for none), cached on the task: tasks never
    move, and the ARN's id is the key of moto's container instance dict."""
    cached = task.__dict__.get("_sandbox_ci_id")
    if cached is None:
        cached = task.__dict__["_sandbox_ci_id"] = (task.container_instance_arn or "").split("/")[
            -1
        ]
    return str(cached)


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
        options: EcsOptions | None = None,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        install()
        self.clock = clock
        self.rng = random.Random(seed)
        self.timings = timings or Timings()
        self.options = options or EcsOptions()
        self.region, self.account_id = region, account_id
        self.events: list[SimEvent] = []
        self.lost_tasks: list[str] = []
        self.listeners: list[Callable[[SimEvent], None]] = []
        self.stream = EcsEventStream(
            clock, account_id=account_id, region=region, seed=seed, delivery=self.options.events
        )
        self._tasks: dict[str, _TaskInfo] = {}
        # Timers (when, seq, action, key); background ones (standalone exits, agent flapping)
        # apart, so `next_time(include_exits=False)` reads a heap top instead of a scan.
        self._timers: list[tuple[datetime, int, str, str]] = []
        self._bg_timers: list[tuple[datetime, int, str, str]] = []
        self._seq = 0
        # --- indexes (a 1,000-instance cluster with 10,000 tasks must not be scanned per step):
        self._backend: Any = None
        self._by_instance: dict[str, dict[str, Any]] = {}  # container instance id -> tasks
        self._by_service: dict[tuple[str, str], dict[str, Any]] = {}  # (cluster, service)
        self._unstopped: dict[str, int] = {}  # container instance id -> tasks not STOPPED
        self._stopped_heap: list[tuple[datetime, str, str]] = []  # (stoppedAt, task, cluster)
        # What the scheduler must look at again (everything after a change it can't scope).
        self._dirty_all = True
        self._dirty_services: set[tuple[str, str]] = set()
        self._dirty_instances: set[str] = set()  # container instance ids (daemon draining)
        self._starved: set[tuple[str, str]] = set()  # services that found no room to place
        self._lock = threading.RLock()
        self._min_healthy_seen: dict[str, int] = {}
        # Agent connectivity: what waits for an absent agent, and why it is absent.
        self._deferred: dict[str, list[tuple[str, str]]] = {}  # instance ARN -> (action, task)
        self._stop_deferred: set[str] = set()  # tasks told to stop while their agent was away
        self._disconnected_by: dict[str, str] = {}  # instance ARN -> "manual" | "flap"
        self._flap_scheduled: set[str] = set()
        self._flap_rng = random.Random(f"{seed}:agent-flapping")
        self.service_events = service_events.ServiceEvents()
        self.backend.__dict__["_sandbox_ecs_sim"] = self

    @property
    def backend(self) -> Any:
        if self._backend is None:  # moto's BackendDict lookup is slow; the backend never changes
            self._backend = ecs_models.ecs_backends[self.account_id][self.region]
        return self._backend

    @property
    def lock(self) -> threading.RLock:
        """Held while the simulator or an ECS API call changes ECS state (threads call ECS)."""
        return self._lock

    @property
    def event_sinks(self) -> list[EventSink]:
        """Callbacks called with each delivered ECS event dict (e.g. an EventBridge bus's put)."""
        return self.stream.sinks

    @property
    def ecs_events(self) -> list[dict[str, Any]]:
        """Every ECS event raised so far, in the order raised (before delivery faults)."""
        return self.stream.emitted

    # --- recording -------------------------------------------------------------------------

    def _record(self, kind: str, cluster: str, **details: Any) -> None:
        event = SimEvent(self.clock.now(), kind, cluster, details)
        self.events.append(event)
        for listener in self.listeners:
            listener(event)

    def _delay(self, base: float) -> timedelta:
        return timedelta(seconds=base * (1 + self.rng.random() * self.timings.jitter))

    def _at(self, when: datetime, action: str, key: str) -> None:
        self._seq += 1
        heap = self._bg_timers if action in BACKGROUND_ACTIONS else self._timers
        heapq.heappush(heap, (when, self._seq, action, key))

    def _pop_due(self, now: datetime) -> tuple[datetime, int, str, str] | None:
        """The earliest due timer of both heaps (time, then scheduling order), or None."""
        heads = [h for h in (self._timers, self._bg_timers) if h and h[0][0] <= now]
        if not heads:
            return None
        return heapq.heappop(min(heads, key=lambda h: h[0][:2]))

    # --- indexes ---------------------------------------------------------------------------

    def _index(self, task: Any) -> None:
        """Index a task by instance and service (idempotent; RunTask's tasks come here too)."""
        ci_id = _ci_id_of(task)
        on_instance = self._by_instance.setdefault(ci_id, {})
        if task.task_arn in on_instance:
            return
        on_instance[task.task_arn] = task
        group = task.group or ""
        if group.startswith("service:"):
            key = (task.cluster_name, group.split(":", 1)[1])
            self._by_service.setdefault(key, {})[task.task_arn] = task
            self._dirty_services.add(key)
        if task.last_status != "STOPPED":
            if ci_id:
                self._unstopped[ci_id] = self._unstopped.get(ci_id, 0) + 1
        elif getattr(task, "stopped_at", None) is None:
            task.stopped_at = self.clock.now()  # stopped outside the simulator: keep it from now
            heapq.heappush(self._stopped_heap, (task.stopped_at, task.task_arn, task.cluster_name))
        self._dirty_instances.add(ci_id)

    def _unindex(self, task: Any) -> None:
        ci_id = _ci_id_of(task)
        self._by_instance.get(ci_id, {}).pop(task.task_arn, None)
        group = task.group or ""
        if group.startswith("service:"):
            key = (task.cluster_name, group.split(":", 1)[1])
            self._by_service.get(key, {}).pop(task.task_arn, None)

    def mark_changed(self) -> None:
        """Something outside the simulator changed ECS (an API call): reconcile everything."""
        self._dirty_all = True

    def _cluster_arn(self, cluster: str) -> str:
        known = self.backend.clusters.get(cluster)
        if known is not None:
            return str(known.arn)
        return f"arn:aws:ecs:{self.region}:{self.account_id}:cluster/{cluster}"

    def _task_changed(self, task: Any) -> None:
        """A change ECS raises an event for: the task's version rises, its event goes out."""
        group = task.group or ""
        if group.startswith("service:"):
            self._dirty_services.add((task.cluster_name, group.split(":", 1)[1]))
        self._dirty_instances.add(_ci_id_of(task))
        task.version = getattr(task, "version", 0) + 1
        task.updated_at = self.clock.now()
        ci = self._instance_of(task)
        zone = (ci.attributes or {}).get("ecs.availability-zone") if ci is not None else None
        self.stream.emit(TASK_STATE_CHANGE, task.task_arn, task_detail(task, zone))

    def _instance_changed(self, ci: Any) -> None:
        ci.version = getattr(ci, "version", 0) + 1
        ci.updated_at = self.clock.now()
        detail = container_instance_detail(ci, self._cluster_arn(ci.cluster_name))
        self.stream.emit(CONTAINER_INSTANCE_STATE_CHANGE, ci.container_instance_arn, detail)

    # --- lookups ---------------------------------------------------------------------------

    def _task_by_arn(self, task_arn: str) -> Any | None:
        info = self._tasks.get(task_arn)
        if info is None:
            return None
        return self.backend.tasks.get(info.cluster, {}).get(task_arn)

    def _adopt(self, task: Any) -> _TaskInfo:
        """The simulator's record of a task, made for one started outside it (RunTask)."""
        info = self._tasks.get(task.task_arn)
        if info is None:
            group = task.group or ""
            service = group.split(":", 1)[1] if group.startswith("service:") else None
            info = self._tasks[task.task_arn] = _TaskInfo(task.cluster_name, service)
            self._index(task)
        return info

    def _instances(self, cluster: str) -> dict[str, Any]:
        return self.backend.container_instances.get(cluster, {})

    def _instance_of(self, task: Any) -> Any | None:
        ci_id = _ci_id_of(task)
        if not ci_id:
            return None
        return self._instances(task.cluster_name).get(ci_id)

    def _instance_by_arn(self, arn: str) -> Any | None:
        ci_id = arn.split("/")[-1]
        for instances in self.backend.container_instances.values():
            if ci_id in instances:
                return instances[ci_id]
        return None

    def _find_instances(self, ec2_instance_id: str) -> list[Any]:
        return [
            ci
            for instances in self.backend.container_instances.values()
            for ci in instances.values()
            if ci.ec2_instance_id == ec2_instance_id
        ]

    def _service_tasks(self, cluster: str, name: str) -> list[Any]:
        return list(self._by_service.get((cluster, name), {}).values())

    # The cluster, as ListTasks takes it: an instance's ARN alone names it.
    def tasks_on(self, cluster: str, container_instance_arn: str) -> list[Any]:  # noqa: ARG002
        ci_id = container_instance_arn.split("/")[-1]
        return [
            t
            for t in self._by_instance.get(ci_id, {}).values()
            if t.container_instance_arn == container_instance_arn
        ]

    def tasks_on_instance_id(self, cluster: str, ci_id: str) -> list[Any]:
        """The tasks (any status, until expired) on the container instance with this id."""
        return [t for t in self._by_instance.get(ci_id, {}).values() if t.cluster_name == cluster]

    def task_counts(self, ci: Any) -> tuple[int, int]:
        """(runningTasksCount, pendingTasksCount) of a container instance, from its tasks."""
        running = pending = 0
        for t in self.tasks_on_instance_id(ci.cluster_name, ci.id):
            running += t.desired_status == "RUNNING"
            pending += t.last_status == "PENDING"
        return running, pending

    @staticmethod
    def _held(ci: Any | None) -> bool:
        """True if the instance's agent is away, so its tasks' transitions wait for it."""
        return ci is not None and not ci.agent_connected and ci.status != "INACTIVE"

    # --- placing and stopping --------------------------------------------------------------

    def _new_task(
        self,
        cluster: str,
        task_definition: str,
        instance: Any,
        info: _TaskInfo,
        started_by: str,
        group: str | None,
    ) -> Any:
        [task] = self.backend.start_task(
            cluster, task_definition, [instance.container_instance_arn], {}, started_by, None, group
        )
        task.last_status = "PENDING"  # moto starts tasks RUNNING; ECS shows PENDING first
        self._index(task)
        task.started_by = started_by
        task.created_at = self.clock.now()
        for container in task.containers:
            container.last_status = "PENDING"
        self._tasks[task.task_arn] = info
        self._at(
            self.clock.now() + self._delay(self.timings.start_seconds), "RUNNING", task.task_arn
        )
        self._record(
            "task_placed",
            cluster,
            task=task.task_arn,
            service=info.service,
            instance=instance.ec2_instance_id,
        )
        self._task_changed(task)
        self._instance_changed(instance)
        return task

    def _place(
        self, cluster: str, task_definition: str, instance: Any, info: _TaskInfo, started_by: str
    ) -> Any:
        group = f"service:{info.service}" if info.service else None
        return self._new_task(cluster, task_definition, instance, info, started_by, group)

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
            if not instance.agent_connected:
                # API failure reasons: "TaskFailedToStart: AGENT" for a disconnected agent.
                raise RuntimeError(f"AGENT: the agent of {ec2_instance_id} is disconnected")
            info = _TaskInfo(cluster=cluster, service=None, exits_after=exits_after)
            task = self._new_task(cluster, task_definition, instance, info, "", group)
            return str(task.task_arn)

    def _begin_stop(self, task: Any, reason: str, code: str = SCHEDULER_INITIATED) -> None:
        """StopTask semantics: desiredStatus STOPPED, then the stop walks through its states.

        Telling a task to stop changes the instance's resources: ECS raises a container
        instance event for it now ("Amazon ECS container instance state change events"), and
        none when the task later reaches STOPPED."""
        if task.last_status == "STOPPED" or task.task_arn in self._stop_deferred:
            return
        if task.desired_status == "STOPPED" and task.last_status not in STARTING:
            return  # already stopping
        info = self._adopt(task)
        task.desired_status = "STOPPED"
        task.stopped_reason = reason
        task.stop_code = code
        ci = self._instance_of(task)
        if self._held(ci):
            # ECS records the desired status; the agent acts on it once it is back.
            self._stop_deferred.add(task.task_arn)
            self._record(
                "task_stop_deferred",
                task.cluster_name,
                task=task.task_arn,
                reason=reason,
                service=info.service,
            )
            self._task_changed(task)
        else:
            self._walk_stop(task)
        if ci is not None:
            self._instance_changed(ci)  # told to stop: runningTasksCount dropped

    def _exit_by_itself(self, task: Any) -> None:
        """An essential container exited: the agent stops the task while ECS still wants it
        RUNNING, and reports STOPPED for a task whose desired status is RUNNING, which raises
        a container instance event ("Amazon ECS container instance state change events")."""
        if task.last_status != "RUNNING" or task.desired_status != "RUNNING":
            return
        task.stopped_reason = "Essential container in task exited"
        task.stop_code = CONTAINER_EXITED
        self._walk_stop(task)

    def _walk_stop(self, task: Any) -> None:
        if task.last_status in STARTING:
            self._finish_stop(task)  # nothing is running yet: it stops at once
            return
        if task.last_status != "RUNNING":
            return
        now = self.clock.now()
        task.last_status = "DEACTIVATING"
        task.stopping_at = now
        to_stopping = now + self._delay(self.timings.deactivate_seconds)
        self._at(to_stopping, "STOPPING", task.task_arn)
        self._at(to_stopping + self._delay(self.timings.stop_seconds), "STOPPED", task.task_arn)
        self._record(
            "task_stopping",
            task.cluster_name,
            task=task.task_arn,
            reason=task.stopped_reason,
            service=self._adopt(task).service,
        )
        self._task_changed(task)

    def _finish_stop(self, task: Any) -> None:
        if task.last_status == "STOPPED":
            return
        now = self.clock.now()
        # A task told to stop reaching STOPPED raises a task event only; one still desired
        # RUNNING (it exited, or its host went) is in the container instance event's list.
        unexpected = task.desired_status == "RUNNING"
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_at = now
        task.execution_stopped_at = now
        if getattr(task, "stopping_at", None) is None:
            task.stopping_at = now
        for container in task.containers:
            container.last_status = "STOPPED"
        self._stop_deferred.discard(task.task_arn)
        ci_id = _ci_id_of(task)
        if ci_id and self._unstopped.get(ci_id, 0) > 0:
            self._unstopped[ci_id] -= 1
        heapq.heappush(self._stopped_heap, (now, task.task_arn, task.cluster_name))
        # Resources were freed: services that found no room may place now.
        self._dirty_services |= self._starved
        instance = self._instance_of(task)
        if instance is not None:
            # The agent releases the task's CPU, memory and ports (moto's own bookkeeping).
            self.backend.update_container_instance_resources(
                instance, task.resource_requirements, removing=True
            )
        info = self._tasks.get(task.task_arn)
        self._record(
            "task_stopped",
            task.cluster_name,
            task=task.task_arn,
            service=info.service if info else None,
            reason=task.stopped_reason,
        )
        self._task_changed(task)
        if instance is not None and unexpected:
            self._instance_changed(instance)

    def stop_task(self, task: Any, reason: str, code: str = USER_INITIATED) -> None:
        with self._lock:
            self._begin_stop(task, reason, code)

    # --- agent connectivity ----------------------------------------------------------------

    def disconnect_agent(self, ec2_instance_id: str) -> list[str]:
        """The instance's agent loses its connection (until `reconnect_agent`); ARNs touched."""
        with self._lock:
            instances = self._find_instances(ec2_instance_id)
            for ci in instances:
                self._disconnect(ci, "manual")
            return [ci.container_instance_arn for ci in instances]

    def reconnect_agent(self, ec2_instance_id: str) -> list[str]:
        """The agent is back: deferred transitions and stops continue from now."""
        with self._lock:
            instances = self._find_instances(ec2_instance_id)
            for ci in instances:
                self._reconnect(ci)
            return [ci.container_instance_arn for ci in instances]

    def _disconnect(self, ci: Any, by: str) -> bool:
        if not ci.agent_connected or ci.status == "INACTIVE":
            return False
        ci.agent_connected = False
        self._dirty_all = True
        self._disconnected_by[ci.container_instance_arn] = by
        self._record("agent_disconnected", ci.cluster_name, instance=ci.ec2_instance_id, by=by)
        self._instance_changed(ci)
        return True

    def _reconnect(self, ci: Any) -> bool:
        if ci.agent_connected or ci.status == "INACTIVE":
            return False
        arn = ci.container_instance_arn
        ci.agent_connected = True
        self._dirty_all = True
        by = self._disconnected_by.pop(arn, "manual")
        self._record("agent_connected", ci.cluster_name, instance=ci.ec2_instance_id, by=by)
        self._instance_changed(ci)
        # Stops the agent missed first (a PENDING task told to stop never starts) ...
        for task in self.tasks_on(ci.cluster_name, arn):
            if task.task_arn in self._stop_deferred:
                self._stop_deferred.discard(task.task_arn)
                self._walk_stop(task)
        # ... then what it would have reported meanwhile, in the original order.
        now = self.clock.now()
        for action, key in self._deferred.pop(arn, []):
            self._at(now, action, key)
        self._schedule_flap(ci)
        return True

    def _schedule_flap(self, ci: Any) -> None:
        flapping = self.options.agent_flapping
        arn = ci.container_instance_arn
        if flapping is None or arn in self._flap_scheduled or ci.status == "INACTIVE":
            return
        self._flap_scheduled.add(arn)
        gap = self._flap_rng.expovariate(flapping.per_hour / 3600.0)
        self._at(self.clock.now() + timedelta(seconds=gap), "DISCONNECT", arn)

    def _apply_flap(self, action: str, arn: str) -> bool:
        flapping = self.options.agent_flapping
        ci = self._instance_by_arn(arn)
        if action == "DISCONNECT":
            self._flap_scheduled.discard(arn)
            if flapping is None or ci is None or ci.status == "INACTIVE":
                return False
            if not self._disconnect(ci, "flap"):
                self._schedule_flap(ci)  # already away (by hand): the next outage comes later
                return False
            outage = self._flap_rng.uniform(
                flapping.min_outage_seconds, flapping.max_outage_seconds
            )
            self._at(self.clock.now() + timedelta(seconds=outage), "RECONNECT", arn)
            return True
        if ci is None or self._disconnected_by.get(arn) != "flap":
            return False  # reconnected by hand meanwhile
        return self._reconnect(ci)

    # --- registration, status, attributes (called by the moto patches) ----------------------

    def on_registered(self, ci: Any) -> None:
        with self._lock:
            self._dirty_all = True
            ci.registered_at = self.clock.now()
            self._record("instance_registered", ci.cluster_name, instance=ci.ec2_instance_id)
            self._instance_changed(ci)
            self._schedule_flap(ci)

    def on_deregistered(self, ci: Any) -> None:
        with self._lock:
            self._dirty_all = True
            ci.status = "INACTIVE"
            ci.agent_connected = False
            self._deferred.pop(ci.container_instance_arn, None)
            self._record("instance_deregistered", ci.cluster_name, instance=ci.ec2_instance_id)
            self._instance_changed(ci)

    def on_status_changed(self, ci: Any) -> None:
        with self._lock:
            self._dirty_all = True
            self._record(
                "instance_" + ci.status.lower(), ci.cluster_name, instance=ci.ec2_instance_id
            )
            if self.options.status_change_events:
                self._instance_changed(ci)

    def on_attributes_changed(self, ci: Any) -> None:
        with self._lock:
            if self.options.attribute_change_events:
                self._instance_changed(ci)

    # --- stopped-task retention and consistency ---------------------------------------------

    def expire_stopped(self) -> list[str]:
        """Forget tasks STOPPED longer than the retention (DescribeTasks: at least an hour)."""
        with self._lock:
            now = self.clock.now()
            retention = timedelta(seconds=self.options.stopped_task_retention)
            gone = []
            while self._stopped_heap and now - self._stopped_heap[0][0] > retention:
                stopped_at, arn, cluster = heapq.heappop(self._stopped_heap)
                tasks = self.backend.tasks.get(cluster, {})
                task = tasks.get(arn)
                if task is None or task.last_status != "STOPPED":
                    continue
                if getattr(task, "stopped_at", None) != stopped_at:
                    continue  # stopped again later (a later entry covers it)
                del tasks[arn]
                self._tasks.pop(arn, None)
                self._unindex(task)
                gone.append(arn)
            return gone

    def audit(self) -> list[str]:
        """Each container instance's remaining CPU and memory against its unstopped tasks;
        the problems found (none when consistent). The task counts need no audit: they are
        derived from the tasks on every read."""
        problems = []
        with self._lock:
            for cluster, instances in self.backend.container_instances.items():
                for ci in instances.values():
                    used = {"CPU": 0, "MEMORY": 0}
                    for t in self.tasks_on(cluster, ci.container_instance_arn):
                        if t.last_status != "STOPPED":
                            for name in used:
                                used[name] += int((t.resource_requirements or {}).get(name, 0))
                    registered = {r["name"]: r.get("integerValue") for r in ci.registered_resources}
                    remaining = {r["name"]: r.get("integerValue") for r in ci.remaining_resources}
                    for name, amount in used.items():
                        if registered[name] - amount != remaining[name]:
                            problems.append(
                                f"{ci.ec2_instance_id} {name}: registered {registered[name]}, "
                                f"unstopped tasks use {amount}, remaining {remaining[name]}"
                            )
        return problems

    # --- the clock -------------------------------------------------------------------------

    def next_time(self, *, include_exits: bool = True) -> datetime | None:
        """The next timer; without ``include_exits``, ignoring what goes on by itself forever
        (standalone tasks' own exits, agent flapping's next outage)."""
        with self._lock:
            times = [self._timers[0][0]] if self._timers else []
            if include_exits and self._bg_timers:
                times.append(self._bg_timers[0][0])
            delivery = self.stream.next_time()
            if delivery is not None:
                times.append(delivery)
            return min(times, default=None)

    def run_due(self) -> bool:
        """Apply every timer due by now and reconcile; True if anything changed."""
        changed = False
        with self._lock:
            now = self.clock.now()
            while (due := self._pop_due(now)) is not None:
                _, _, action, key = due
                changed |= self._apply(action, key)
            while self._reconcile():
                changed = True
            self.expire_stopped()
            changed |= self.stream.deliver_due()
        return changed

    def _apply(self, action: str, key: str) -> bool:
        if action not in TASK_ACTIONS:
            return self._apply_flap(action, key)
        task = self._task_by_arn(key)
        if task is None or task.last_status == "STOPPED":
            return False
        ci = self._instance_of(task)
        if self._held(ci):
            # The agent is away: what it would report waits for the reconnect.
            self._deferred.setdefault(ci.container_instance_arn, []).append((action, key))
            return False
        if action == "RUNNING":
            if task.last_status != "PENDING" or task.desired_status != "RUNNING":
                return False
            task.last_status = "RUNNING"
            task.started_at = self.clock.now()
            for container in task.containers:
                container.last_status = "RUNNING"
            info = self._tasks[key]
            self._record("task_running", task.cluster_name, task=key, service=info.service)
            self._task_changed(task)
            if info.exits_after is not None:
                self._at(self.clock.now() + timedelta(seconds=info.exits_after), "EXIT", key)
            return True
        if action == "EXIT":
            self._exit_by_itself(task)
            return True
        if action == "STOPPING":
            if task.last_status == "DEACTIVATING":
                task.last_status = "STOPPING"
                self._task_changed(task)
                return True
            return False
        self._finish_stop(task)  # STOPPED
        return True

    # --- the scheduler ---------------------------------------------------------------------

    def _reconcile(self) -> bool:
        """One pass of the scheduler over what changed since the last pass (everything after
        a change it can't scope: registration, a status or agent change, an API call)."""
        everything = self._dirty_all
        services, instances = self._dirty_services, self._dirty_instances
        if not (everything or services or instances):
            return False
        self._dirty_all = False
        self._dirty_services, self._dirty_instances = set(), set()
        changed = False
        for (cluster, name), service in self._services():
            if not everything and (cluster, name) not in services:
                continue
            if service.scheduling_strategy == "DAEMON":
                changed |= self._reconcile_daemon(cluster, service)
            else:
                changed |= self._reconcile_replica(cluster, name, service)
        for cluster, known in self.backend.container_instances.items():
            ids = known.keys() if everything else [i for i in instances if i in known]
            for ci_id in ids:
                instance = known[ci_id]
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

    def _place_spread(self, cluster: str, name: str, service: Any, count: int) -> int:
        """Place up to ``count`` tasks of the service, each on the ACTIVE, connected instance
        with room that has the fewest unstopped tasks (then a stable order); how many placed.
        The service's events say what was started, or why a task found no room."""
        td = self.backend.describe_task_definition(service.task_definition)
        needs = self.backend._calculate_task_resource_requirements(td)
        candidates = [
            ci
            for ci in self._instances(cluster).values()
            if ci.status == "ACTIVE"
            and ci.agent_connected  # only connected agents accept placements (API reference)
        ]
        heap = [(self._unstopped.get(ci.id, 0), ci.id, ci) for ci in candidates]
        heapq.heapify(heap)
        started: list[str] = []
        while len(started) < count and heap:
            _, ci_id, ci = heapq.heappop(heap)
            if not self.backend._can_be_placed(ci, needs):
                continue  # resources only shrink while placing: never a candidate again
            task = self._place(
                cluster, service.task_definition, ci, _TaskInfo(cluster, name), f"ecs-svc/{name}"
            )
            started.append(task.task_arn)
            heapq.heappush(heap, (self._unstopped.get(ci_id, 0), ci_id, ci))
        key, now = _service_key(cluster, name), self.clock.now()
        if started:
            self.service_events.started(key, service, started, now)
        if len(started) < count:
            closest = service_events.closest_match(candidates, needs)
            self.service_events.unplaced(key, service, closest, now)
        return len(started)

    def _rows(self, tasks: list[Any]) -> list[tuple[Any, str, str, str | None]]:
        """(task, lastStatus, desiredStatus, its instance's status) for one pass over a service."""
        rows = []
        for t in tasks:
            ci = self._instance_of(t)
            rows.append((t, _last_status(t), t.desired_status, ci.status if ci else None))
        return rows

    def _reconcile_replica(self, cluster: str, name: str, service: Any) -> bool:
        config = {**REPLICA_DEFAULTS, **(getattr(service, "deployment_configuration", None) or {})}
        desired = int(service.desired_count or 0)
        max_total = math.floor(desired * config["maximumPercent"] / 100)
        min_healthy = math.ceil(desired * config["minimumHealthyPercent"] / 100)
        rows = self._rows(self._service_tasks(cluster, name))
        changed = False

        # PENDING service tasks on a draining instance stop at once (API reference).
        for t, last, want, ci_status in rows:
            if ci_status == "DRAINING" and want == "RUNNING" and last == "PENDING":
                self._begin_stop(t, DRAINING_REASON)
                changed = True
        if changed:
            rows = self._rows([row[0] for row in rows])

        # Start replacements on ACTIVE instances, under maximumPercent of tasks not STOPPED.
        settled = sum(1 for _, _, want, ci in rows if want == "RUNNING" and ci == "ACTIVE")
        alive = sum(1 for _, last, _, _ in rows if last in NOT_STOPPED)
        room = min(desired - settled, max_total - alive)
        key = (cluster, name)
        self._starved.discard(key)
        placed = 0
        if room > 0:
            placed = self._place_spread(cluster, name, service, room)
            changed |= placed > 0
            if placed < room:
                self._starved.add(key)  # look again when resources are freed

        # Stop drained tasks while the RUNNING count stays at or above minimumHealthyPercent.
        # (Tasks just placed are PENDING on ACTIVE instances: they change none of these counts.)
        healthy = sum(1 for _, last, want, _ in rows if last == "RUNNING" and want == "RUNNING")
        draining = [
            t
            for t, last, want, ci in rows
            if want == "RUNNING" and last == "RUNNING" and ci == "DRAINING"
        ]
        stopped: list[str] = []
        for t in sorted(draining, key=lambda t: t.task_arn):
            if healthy - 1 < min_healthy:
                break
            self._begin_stop(t, DRAINING_REASON)
            stopped.append(t.task_arn)
            healthy -= 1
            changed = True

        running_now = healthy
        service.running_count = running_now
        service.pending_count = placed + sum(1 for _, last, _, _ in rows if last == "PENDING")
        now = self.clock.now()
        if stopped:
            self.service_events.stopped(_service_key(cluster, name), service, stopped, now)
        # Steady: the desired count RUNNING on ACTIVE instances, nothing else starting or stopping.
        settled_running = sum(
            1
            for _, last, want, ci in rows
            if last == "RUNNING" and want == "RUNNING" and ci == "ACTIVE"
        )
        steady = placed == 0 and not stopped and settled_running == desired == alive
        self.service_events.steady(_service_key(cluster, name), service, steady, now)
        key_text = _service_key(cluster, name)
        self._min_healthy_seen[key_text] = min(
            self._min_healthy_seen.get(key_text, running_now), running_now
        )
        return changed

    def _reconcile_daemon(self, cluster: str, service: Any) -> bool:
        changed = False
        tasks = self._service_tasks(cluster, service.name)
        covered = {t.container_instance_arn for t in tasks if t.desired_status == "RUNNING"}
        td = self.backend.describe_task_definition(service.task_definition)
        needs = self.backend._calculate_task_resource_requirements(td)
        for ci in sorted(self._instances(cluster).values(), key=lambda c: c.container_instance_arn):
            if (
                ci.status != "ACTIVE"
                or not ci.agent_connected
                or ci.container_instance_arn in covered
            ):
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
            for t in self.tasks_on_instance_id(cluster, instance.id)
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
                self._begin_stop(task, DRAINING_REASON)
                changed = True
        return changed

    # --- instance termination --------------------------------------------------------------

    def instance_terminated(self, ec2_instance_id: str) -> list[str]:
        """The EC2 instance is gone: its container instance goes INACTIVE, its tasks are lost.

        Events ("Amazon ECS events"): one per task on it, one for its agent connection and
        one for the instance itself."""
        lost = []
        with self._lock:
            self._dirty_all = True
            for ci in self._find_instances(ec2_instance_id):
                cluster, arn = ci.cluster_name, ci.container_instance_arn
                for task in self.tasks_on(cluster, arn):
                    if task.last_status != "STOPPED":
                        lost.append(task.task_arn)
                        task.stopped_reason = "Host EC2 instance terminated"
                        task.stop_code = HOST_TERMINATED
                        self._finish_stop(task)
                        self._record("task_lost", cluster, task=task.task_arn)
                self._deferred.pop(arn, None)
                if ci.agent_connected:
                    ci.agent_connected = False
                    self._record("agent_disconnected", cluster, instance=ec2_instance_id, by="gone")
                    self._instance_changed(ci)
                self._disconnected_by.pop(arn, None)
                if ci.status != "INACTIVE":
                    ci.status = "INACTIVE"
                    self._record("instance_inactive", cluster, instance=ec2_instance_id)
                    self._instance_changed(ci)
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


def sim_for(backend: Any) -> EcsSimulator | None:
    """The simulator driving a moto ECS backend (None outside a Sandbox)."""
    return backend.__dict__.get("_sandbox_ecs_sim")


_sim_for = sim_for


def find_task(backend: Any, cluster_name: str, ref: str) -> Any | None:
    """The task of a cluster by full ARN or task id (exactly, unlike moto's suffix match)."""
    tasks = backend.tasks.get(cluster_name, {})
    if ref in tasks:
        return tasks[ref]
    task_id = ref.split("/")[-1]
    for arn, task in tasks.items():
        if arn.split("/")[-1] == task_id:
            return task
    return None


def _wrap_stop_task(original: Callable[..., Any]) -> Callable[..., Any]:
    def stop_task(self: Any, cluster_str: str, task_str: str, reason: str) -> Any:
        sim = _sim_for(self)
        if sim is None:
            return original(self, cluster_str, task_str, reason)
        cluster = self._get_cluster(cluster_str)  # ClusterNotFoundException
        sim.expire_stopped()
        task = find_task(self, cluster.name, task_str)
        if task is None:
            raise InvalidParameterException(TASK_NOT_FOUND)
        sim.stop_task(task, reason or "Task stopped by the user")
        return task

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
                    sim.on_status_changed(ci)
        return result

    return update_container_instances_state


def _wrap_register(original: Callable[..., Any]) -> Callable[..., Any]:
    def register_container_instance(self: Any, cluster_str: str, ec2_instance_id: str) -> Any:
        ci = original(self, cluster_str, ec2_instance_id)
        sim = _sim_for(self)
        if sim is not None:
            sim.on_registered(ci)
        return ci

    return register_container_instance


def _wrap_deregister(original: Callable[..., Any]) -> Callable[..., Any]:
    def deregister_container_instance(
        self: Any, cluster_str: str, container_instance_str: str, force: bool
    ) -> Any:
        ci = original(self, cluster_str, container_instance_str, force)
        sim = _sim_for(self)
        if sim is not None:
            sim.on_deregistered(ci)
        return ci

    return deregister_container_instance


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


def _wrap_start(original: Callable[..., Any]) -> Callable[..., Any]:
    """RunTask / StartTask (and the scheduler's own placements): index the new tasks."""

    def start(self: Any, *args: Any, **kwargs: Any) -> Any:
        tasks = original(self, *args, **kwargs)
        sim = _sim_for(self)
        if sim is not None:
            with sim.lock:
                for task in tasks:
                    sim._index(task)
        return tasks

    return start


_READ_ACTIONS = ("Describe", "List", "Get")


def _wrap_call_action(original: Callable[..., Any]) -> Callable[..., Any]:
    """Any ECS API call that may change what the scheduler sees makes it look again."""

    def call_action(self: Any) -> Any:
        action = self._get_action()
        if not action.startswith(_READ_ACTIONS):
            sim = _sim_for(self.ecs_backend)
            if sim is not None:
                sim.mark_changed()
        return original(self)

    return call_action


def _derived_count(index: int, name: str) -> property:
    """runningTasksCount (0) / pendingTasksCount (1) derived from the tasks under a simulator;
    moto's own counter (kept in the instance dict) elsewhere."""

    def get(self: Any) -> int:
        backend = self.__dict__.get("_backend")
        sim = _sim_for(backend) if backend is not None else None
        if sim is None:
            return int(self.__dict__.get(name, 0))
        return sim.task_counts(self)[index]

    def set_(self: Any, value: int) -> None:
        self.__dict__[name] = value  # moto's bookkeeping; ignored while derived

    return property(get, set_)


def install() -> None:
    """Patch moto's ECS (idempotent) and freeze moto's automatic task status progression."""
    global _installed
    ecs_states.install()
    # moto advances a task's lastStatus on each DescribeTasks; only the simulator may move it.
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    if _installed:
        return
    from local_aws import ecs_api  # the API-level behaviour (imports this module)

    backend_cls = ecs_models.EC2ContainerServiceBackend
    backend_cls.stop_task = _wrap_stop_task(backend_cls.stop_task)  # type: ignore[method-assign]
    backend_cls.start_task = _wrap_start(backend_cls.start_task)  # type: ignore[method-assign]
    backend_cls.run_task = _wrap_start(backend_cls.run_task)  # type: ignore[method-assign]
    backend_cls.update_container_instances_state = _wrap_update_state(  # type: ignore[method-assign]
        backend_cls.update_container_instances_state
    )
    backend_cls.register_container_instance = _wrap_register(  # type: ignore[method-assign]
        backend_cls.register_container_instance
    )
    backend_cls.deregister_container_instance = _wrap_deregister(  # type: ignore[method-assign]
        backend_cls.deregister_container_instance
    )
    instance_cls = ecs_models.ContainerInstance
    instance_cls.running_tasks_count = _derived_count(0, "running_tasks_count")  # type: ignore[attr-defined]
    instance_cls.pending_tasks_count = _derived_count(1, "pending_tasks_count")  # type: ignore[attr-defined]
    resp_cls = ecs_responses.EC2ContainerServiceResponse
    resp_cls.create_service = _wrap_create_service(resp_cls.create_service)  # type: ignore[method-assign]
    resp_cls.call_action = _wrap_call_action(resp_cls.call_action)  # type: ignore[method-assign]
    ecs_api.install()
    _installed = True
