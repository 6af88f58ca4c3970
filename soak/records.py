"""What a soak run leaves behind: the sandbox's own records, copied out before it closes.

`Recorder` watches a running sandbox (lifecycle notifications, ECS simulator events, the call and
fault logs of `Sandbox.record_calls` / `record_faults`) and takes the few snapshots that only
exist at a moment: the tasks on an instance when our hook's action ended, and a service's healthy
count right after one of its tasks stopped or was lost. `RunData` is everything the invariants
read; nothing in it refers back to the sandbox.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local_aws import autoscaling
from local_aws.ecs_events import TASK_STATE_CHANGE
from local_aws.ecs_sim import SimEvent
from local_aws.sandbox import HOOK_NAME, CallRecord, FaultRecord, Sandbox
from local_aws.sqs_event_source import unqueued
from local_aws.stepfunctions import STATUS_CHANGE

# The events the sandbox puts on its bus, as AWS names them.
LIFECYCLE_DETAIL_TYPE = autoscaling.DETAIL_TYPE
TASK_DETAIL_TYPE = TASK_STATE_CHANGE
STATUS_DETAIL_TYPE = STATUS_CHANGE
USER_INITIATED = "UserInitiated"  # Task.stopCode of StopTask: only the drain Lambda calls it here


@dataclass(frozen=True)
class TaskSeen:
    arn: str
    kind: str  # "service", "daemon" or "standalone"
    service: str | None
    last_status: str
    desired_status: str


@dataclass(frozen=True)
class ActionEnd:
    """Our hook's lifecycle action as it ended, and the tasks on its instance at that moment."""

    token: str
    instance_id: str
    at: datetime
    ended_by: str
    unstopped: tuple[TaskSeen, ...]


@dataclass(frozen=True)
class TaskRemoval:
    """A task that left the running set because of a StopTask (ours) or its host's termination."""

    at: datetime
    task: str
    instance_id: str | None
    kind: str
    service: str | None
    cause: str  # "stop_task" or "lost"
    healthy_after: int  # the service's RUNNING tasks meant to run, right after
    floor: int  # ceil(desired x minimumHealthyPercent / 100)
    reason: str = ""


@dataclass(frozen=True)
class ActionView:
    token: str
    instance_id: str
    hook_name: str
    started_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    result: str | None
    heartbeats: int
    lifecycle_state: str
    heartbeat_timeout: int
    event: dict[str, Any]


@dataclass(frozen=True)
class HistoryEvent:
    at: datetime
    type: str
    error: str | None = None
    cause: str | None = None
    resource: str | None = None


@dataclass(frozen=True)
class ExecutionView:
    name: str
    arn: str
    status: str
    started_at: datetime
    stopped_at: datetime | None
    input: dict[str, Any]
    error: str | None
    cause: str | None
    history: tuple[HistoryEvent, ...]

    @property
    def instance_id(self) -> str | None:
        return self.input.get("instance_id")

    @property
    def token(self) -> str | None:
        return self.input.get("lifecycle_action_token")


@dataclass(frozen=True)
class InvocationView:
    index: int
    at: datetime
    kind: str  # "lifecycle", "poll", "ecs_event", "loop_end", "other"
    instance_id: str | None
    token: str | None
    event: Any
    result: Any
    error: str | None
    invocation_type: str


@dataclass
class RunData:
    """Everything the invariants read about one run."""

    seed: int
    start: datetime  # t0: the first scale-in
    end: datetime
    virtual_seconds: float
    wall_seconds: float
    actions: list[ActionView]
    ends: dict[str, ActionEnd]  # token -> the end of our hook's action
    terminated: dict[str, datetime]  # EC2 instance -> when it terminated
    agent: dict[str, list[tuple[datetime, bool]]]  # EC2 instance -> (time, connected)
    removals: list[TaskRemoval]
    calls: list[CallRecord]
    faults: list[FaultRecord]
    invocations: list[InvocationView]
    rejections: list[tuple[datetime, str]]  # (time, outcome) of Lambda runs refused
    async_failures: list[tuple[datetime, Any, str]]  # (time, event, condition)
    dead_letters: list[tuple[datetime, dict[str, Any]]]
    lost_events: list[dict[str, Any]]  # lost on the bus (injected best-effort losses)
    unmatched_events: list[dict[str, Any]]  # put on the bus, no rule matched
    status_events: list[dict[str, Any]]
    executions: list[ExecutionView]
    task_instance: dict[str, str]  # task ARN -> EC2 instance it was placed on
    instance_of_container: dict[str, str]  # container instance ARN -> EC2 instance
    tasks_placed: Counter[str]  # EC2 instance -> tasks ever placed on it
    stopped_at: dict[str, datetime]  # task ARN -> when it reached STOPPED
    services: int
    container_instances: int
    # EventBridge deliveries to the Lambda: (time, event, attempt, error code or None).
    deliveries: list[tuple[datetime, dict[str, Any], int, str | None]] = field(default_factory=list)
    still_waiting: list[str] = field(default_factory=list)  # tokens of actions never ended
    # Lifecycle events the intake queue moved to the dead-letter queue: (time, event, receives).
    intake_dead_letters: list[tuple[datetime, dict[str, Any], int]] = field(default_factory=list)
    # Lifecycle events Auto Scaling never sent (lost at the source: the sweep's to recover).
    dropped_lifecycle_events: list[dict[str, Any]] = field(default_factory=list)
    # Spot interruptions: (instance, notice, interruption, warning event sent).
    spot_notices: list[tuple[str, datetime, datetime, bool]] = field(default_factory=list)
    # When each EC2 instance's container instance was first set DRAINING.
    draining_at: dict[str, datetime] = field(default_factory=dict)

    def ours(self) -> list[ActionView]:
        return [a for a in self.actions if a.hook_name == HOOK_NAME]


class Recorder:
    """Attach to a sandbox before the run; `collect` after it."""

    def __init__(self, sb: Sandbox, cluster: str, daemons: set[str]) -> None:
        self.sb = sb
        self.cluster = cluster
        self.daemons = daemons
        self.calls = sb.record_calls()
        self.faults = sb.record_faults()
        self.ends: dict[str, ActionEnd] = {}
        self.terminated: dict[str, datetime] = {}
        self.agent: dict[str, list[tuple[datetime, bool]]] = {}
        self.removals: list[TaskRemoval] = []
        self._stopped_by_us: set[str] = set()
        sb.listeners.append(self._on_lifecycle)
        sb.sim.listeners.append(self._on_ecs)

    # --- snapshots ----------------------------------------------------------------------------

    def _kind(self, task: Any) -> tuple[str, str | None]:
        group = task.group or ""
        if not group.startswith("service:"):
            return "standalone", None
        service = group.split(":", 1)[1]
        return ("daemon" if service in self.daemons else "service"), service

    def _containers_of(self, ec2_instance_id: str) -> set[str]:
        instances = self.sb.sim.backend.container_instances.get(self.cluster, {})
        return {
            ci.container_instance_arn
            for ci in instances.values()
            if ci.ec2_instance_id == ec2_instance_id
        }

    def unstopped_on(self, ec2_instance_id: str) -> tuple[TaskSeen, ...]:
        arns = self._containers_of(ec2_instance_id)
        seen = []
        for task in self.sb.sim.backend.tasks.get(self.cluster, {}).values():
            if task.container_instance_arn in arns and task.last_status != "STOPPED":
                kind, service = self._kind(task)
                seen.append(
                    TaskSeen(task.task_arn, kind, service, task.last_status, task.desired_status)
                )
        return tuple(sorted(seen, key=lambda t: t.arn))

    def _healthy(self, service: str) -> tuple[int, int]:
        backend = self.sb.sim.backend
        svc = backend.services.get(f"{self.cluster}:{service}")
        if svc is None:
            return 0, 0
        config = getattr(svc, "deployment_configuration", None) or {}
        floor = math.ceil(
            int(svc.desired_count or 0) * int(config.get("minimumHealthyPercent", 100)) / 100
        )
        healthy = sum(
            1
            for t in backend.tasks.get(self.cluster, {}).values()
            if t.group == f"service:{service}"
            and t.last_status == "RUNNING"
            and t.desired_status == "RUNNING"
        )
        return healthy, floor

    def _on_lifecycle(self, kind: str, payload: Any) -> None:
        if kind == "action_ended" and payload.hook_name == HOOK_NAME:
            with self.sb.sim.lock:
                unstopped = self.unstopped_on(payload.instance_id)
            self.ends[payload.token] = ActionEnd(
                payload.token,
                payload.instance_id,
                payload.ended_at,
                payload.ended_by or "",
                unstopped,
            )
        elif kind == "instance_terminated":
            self.terminated.setdefault(payload.instance_id, payload.at)

    def _on_ecs(self, event: SimEvent) -> None:
        details = event.details
        if event.kind in ("agent_disconnected", "agent_connected"):
            timeline = self.agent.setdefault(details["instance"], [])
            timeline.append((event.at, event.kind == "agent_connected"))
            return
        if event.kind not in ("task_stopping", "task_stop_deferred", "task_stopped", "task_lost"):
            return
        arn = details["task"]
        task = self.sb.sim.backend.tasks.get(self.cluster, {}).get(arn)
        if task is None:
            return
        if event.kind == "task_lost":
            cause = "lost"
        elif task.stop_code == USER_INITIATED and arn not in self._stopped_by_us:
            cause = "stop_task"
            self._stopped_by_us.add(arn)
        else:
            return
        kind, service = self._kind(task)
        healthy, floor = self._healthy(service) if kind == "service" and service else (0, 0)
        instance = None
        if task.container_instance_arn:
            for ci in self.sb.sim.backend.container_instances.get(self.cluster, {}).values():
                if ci.container_instance_arn == task.container_instance_arn:
                    instance = ci.ec2_instance_id
        self.removals.append(
            TaskRemoval(
                event.at,
                arn,
                instance,
                kind,
                service,
                cause,
                healthy,
                floor,
                task.stopped_reason or "",
            )
        )

    # --- after the run ------------------------------------------------------------------------

    def collect(self, start: datetime, wall_seconds: float) -> RunData:
        sb = self.sb
        actions = [
            ActionView(
                a.token,
                a.instance_id,
                a.hook_name,
                a.started_at,
                a.ended_at,
                a.ended_by,
                a.result,
                a.heartbeats,
                a.lifecycle_state,
                a.heartbeat_timeout,
                dict(a.event),
            )
            for a in autoscaling.lifecycle_actions(region=sb.region)
        ]
        executions = _executions(sb)
        by_name = {e.name: e for e in executions}
        task_instance: dict[str, str] = {}
        placed: Counter[str] = Counter()
        stopped_at: dict[str, datetime] = {}
        draining_at: dict[str, datetime] = {}
        for event in sb.sim.events:
            if event.kind == "instance_draining":
                draining_at.setdefault(event.details["instance"], event.at)
            if event.kind == "task_placed":
                task_instance[event.details["task"]] = event.details["instance"]
                placed[event.details["instance"]] += 1
            elif event.kind == "task_stopped":
                stopped_at.setdefault(event.details["task"], event.at)
        containers = {
            ci.container_instance_arn: ci.ec2_instance_id
            for ci in sb.sim.backend.container_instances.get(self.cluster, {}).values()
        }
        return RunData(
            seed=sb.seed,
            start=start,
            end=sb.clock.now(),
            virtual_seconds=(sb.clock.now() - start).total_seconds(),
            wall_seconds=wall_seconds,
            actions=actions,
            ends=dict(self.ends),
            terminated=dict(self.terminated),
            agent={k: list(v) for k, v in self.agent.items()},
            removals=list(self.removals),
            calls=list(self.calls),
            faults=list(self.faults),
            invocations=[_invocation(n, i, by_name) for n, i in enumerate(sb.runtime.invocations)],
            rejections=[(r.at, r.outcome) for r in sb.runtime.rejections],
            async_failures=[(f.at, f.event, f.condition) for f in sb.runtime.async_failures],
            dead_letters=[(d.at, d.event) for d in sb.bus.dead_letters],
            lost_events=list(sb.bus.lost),
            unmatched_events=list(sb.bus.unmatched),
            status_events=list(sb.status_events),
            executions=executions,
            task_instance=task_instance,
            instance_of_container=containers,
            tasks_placed=placed,
            stopped_at=stopped_at,
            services=len(sb.sim.backend.services),
            container_instances=len(containers),
            deliveries=[
                (d.at, d.event, d.attempt, d.error.code if d.error else None)
                for d in sb.bus.deliveries
            ],
            still_waiting=[a.token for a in actions if a.ended_at is None],
            intake_dead_letters=[
                (d.at, json.loads(d.body), d.receive_count)
                for d in (sb.intake.dead_lettered if sb.intake is not None else [])
            ],
            dropped_lifecycle_events=autoscaling.dropped_events(region=sb.region),
            spot_notices=[
                (i.instance_id, i.noticed_at, i.interrupt_at, i.warned)
                for i in sb.spot.interruptions
            ],
            draining_at=draining_at,
        )


def _executions(sb: Sandbox) -> list[ExecutionView]:
    if not sb.state_machine_arn:
        return []
    sfn = sb.client("stepfunctions")
    out = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=sb.state_machine_arn):
        for item in page["executions"]:
            described = sfn.describe_execution(executionArn=item["executionArn"])
            history = [_history_event(event) for event in _history(sb, item["executionArn"])]
            try:
                payload = json.loads(described.get("input") or "{}")
            except ValueError:
                payload = {}
            out.append(
                ExecutionView(
                    name=item["name"],
                    arn=item["executionArn"],
                    status=item["status"],
                    started_at=item["startDate"],
                    stopped_at=item.get("stopDate"),
                    input=payload if isinstance(payload, dict) else {},
                    error=described.get("error"),
                    cause=described.get("cause"),
                    history=tuple(history),
                )
            )
    return out


def _history(sb: Sandbox, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's history events, read from moto's interpreter (GetExecutionHistory would
    serialize every state's input and output: slow on long drains, and no different)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[sb.account_id][sb.region]
    return list(backend.get_execution_history(execution_arn).get("events", []))


def _history_event(event: dict[str, Any]) -> HistoryEvent:
    details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
    at = event["timestamp"]
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    kind = event["type"]
    return HistoryEvent(
        at=at,
        type=str(getattr(kind, "value", kind)),
        error=details.get("error"),
        cause=details.get("cause"),
        resource=details.get("resource"),
    )


def _invocation(index: int, record: Any, executions: dict[str, ExecutionView]) -> InvocationView:
    event = unqueued(record.event)
    kind, instance, token = "other", None, None
    if isinstance(event, dict):
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        detail_type = event.get("detail-type")
        if "state_version" in event:
            kind, instance = "poll", event.get("instance_id")
            token = event.get("lifecycle_action_token")
        elif detail_type == LIFECYCLE_DETAIL_TYPE:
            kind, instance = "lifecycle", detail.get("EC2InstanceId")
            token = detail.get("LifecycleActionToken")
        elif detail_type == TASK_DETAIL_TYPE:
            # A task event names no EC2 instance: the run's answer does, once it found one.
            result = record.result if isinstance(record.result, dict) else {}
            kind, instance = "ecs_event", result.get("instance_id")
        elif detail_type == STATUS_DETAIL_TYPE:
            kind = "loop_end"
            execution = executions.get(detail.get("name", ""))
            if execution is not None:
                instance, token = execution.instance_id, execution.token
    return InvocationView(
        index=index,
        at=record.at,
        kind=kind,
        instance_id=instance,
        token=token,
        event=event,
        result=record.result,
        error=record.error,
        invocation_type=record.invocation_type,
    )
