"""Other termination hooks that can sit on the same Auto Scaling group, as sandbox actors.

A group drained by this project may also carry a drain hook of someone else. Each actor here
owns one EC2_INSTANCE_TERMINATING hook, reacts to its lifecycle events and works the ECS side
only through boto3 calls (so it runs against moto plus `local_aws.ecs_sim`, and against any
ECS simulator behind the same API). Polling is scheduled on the sandbox clock (`timers.Timers`),
never on threads. Several hooks on one instance each must complete or time out; an ABANDON from
one ends the others (`local_aws.autoscaling`).

`EcsManagedDraining`: Amazon ECS managed instance draining (ECS guide "Configuring Amazon ECS
capacity providers to safely shut down instances", "Safely stop Amazon ECS workloads running on
EC2 instances"): the capacity provider's hook ``ecs-managed-draining-termination-hook``; when it
fires ECS sets the container instance DRAINING and completes the hook with CONTINUE once no task
is left on the instance (no task whose lastStatus is not STOPPED), or once 48 hours have passed.
UNCONFIRMED (third-party notes only): the hook's HeartbeatTimeout 3600 s and DefaultResult
CONTINUE (parameters of `put_hook`); how often ECS looks (``poll_seconds``, default 30) and
heartbeats (``heartbeat_every``, default half the heartbeat timeout) to hold the instance past
the heartbeat timeout; that an instance with no container instance (never registered, e.g. a
pooled one) is completed at once.

`CdkDrainHook`: aws-cdk-lib's legacy drain hook (``InstanceDrainHook``, hook child
``LifecycleHookDrainHook``; aws-ecs/lib/drain-hook), reached through SNS by its Lambda: hook
DefaultResult CONTINUE with HeartbeatTimeout = drain time (default 300 s), Lambda timeout =
min(drain time + 10 s, 900 s). Its handler (behaviour read from the construct's Lambda source)
finds the container instance with ListContainerInstances ``filter='ec2InstanceId==<id>'`` (first
match; none: it returns and the hook times out), lists the instance's tasks once
(ListTasks, desiredStatus RUNNING), then every 10 s: an ACTIVE instance is set DRAINING;
otherwise it counts the listed tasks whose lastStatus is not STOPPED plus pendingTasksCount,
falling back to runningTasksCount + pendingTasksCount when that is 0. At zero it calls
CompleteLifecycleAction CONTINUE with the event's token (an error is printed and ignored).
When the drain time passes first, the hook's heartbeat timeout ends the action with CONTINUE;
the Lambda then times out and, as an asynchronous invocation, is retried twice (1 min, then
2 min later; Lambda DG "asynchronous invocation"; knob ``retry_on_timeout``).

Each actor keeps a `log` of what it did: (virtual time, instance id, message).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from local_aws import autoscaling
from local_aws.clock import Clock
from local_aws.timers import Timer

ECS_MANAGED_DRAINING_HOOK = "ecs-managed-draining-termination-hook"
MAX_MANAGED_DRAIN_SECONDS = 48 * 3600
CDK_POLL_SECONDS = 10
LAMBDA_MAX_TIMEOUT = 900
# Lambda DG, asynchronous invocation: two retries after a function error, 1 and 2 min apart.
ASYNC_RETRY_DELAYS = (60, 120)

ClientFactory = Callable[[str], Any]


class Scheduler(Protocol):
    def call_later(self, seconds: float, callback: Callable[[], None], name: str = "") -> Timer: ...


def _default_clients(region: str) -> ClientFactory:
    return lambda service: boto3.client(service, region_name=region)


@dataclass
class _Run:
    """One lifecycle action the actor works on."""

    token: str
    instance_id: str
    message: dict[str, Any]  # the lifecycle event's detail
    started_at: datetime
    timer: Timer | None = None
    container_instance_arn: str | None = None
    task_arns: list[str] = field(default_factory=list)
    last_heartbeat: datetime | None = None
    attempt: int = 0
    done: bool = False


class _HookActor:
    hook_name: str

    def __init__(
        self,
        *,
        asg_name: str,
        cluster: str,
        timers: Scheduler,
        clock: Clock,
        region: str = autoscaling.DEFAULT_REGION,
        clients: ClientFactory | None = None,
        start_delay: float = 0.0,
    ) -> None:
        self.asg_name, self.cluster = asg_name, cluster
        self.timers, self.clock, self.region = timers, clock, region
        self._clients = clients or _default_clients(region)
        self.start_delay = start_delay
        self.runs: dict[str, _Run] = {}
        self.log: list[tuple[datetime, str, str]] = []

    # --- wiring ----------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        return self._clients(service)

    def attach(self) -> None:
        """Listen to the group's lifecycle notifications."""
        autoscaling.subscribe(self.on_lifecycle, region=self.region)

    def detach(self) -> None:
        autoscaling.unsubscribe(self.on_lifecycle, region=self.region)
        for run in self.runs.values():
            if run.timer is not None:
                run.timer.cancel()

    def on_lifecycle(self, kind: str, payload: Any) -> None:
        if kind == "event":
            detail = payload.get("detail", {})
            if (
                detail.get("AutoScalingGroupName") == self.asg_name
                and detail.get("LifecycleHookName") == self.hook_name
                and detail.get("LifecycleTransition") == autoscaling.TERMINATING
            ):
                run = _Run(
                    token=detail["LifecycleActionToken"],
                    instance_id=detail["EC2InstanceId"],
                    message=dict(detail),
                    started_at=self.clock.now(),
                )
                self.runs[run.token] = run
                # Never call AWS from inside the notification: start on the next step.
                self._schedule(run, self.start_delay, self._begin)
        elif kind == "action_ended" and payload.hook_name == self.hook_name:
            run = self.runs.get(payload.token)
            if run is not None:
                self._on_action_ended(run)

    def _on_action_ended(self, run: _Run) -> None:
        """The action ended elsewhere (timeout, another hook's ABANDON)."""

    def _schedule(self, run: _Run, seconds: float, step: Callable[[_Run], None]) -> None:
        run.timer = self.timers.call_later(
            seconds, lambda: step(run), f"{self.hook_name}:{run.instance_id}"
        )

    def _say(self, run: _Run, message: str) -> None:
        self.log.append((self.clock.now(), run.instance_id, message))

    def _begin(self, run: _Run) -> None:
        raise NotImplementedError

    def put_hook(self, heartbeat_timeout: int, default_result: str = "CONTINUE") -> None:
        self.client("autoscaling").put_lifecycle_hook(
            AutoScalingGroupName=self.asg_name,
            LifecycleHookName=self.hook_name,
            LifecycleTransition=autoscaling.TERMINATING,
            HeartbeatTimeout=heartbeat_timeout,
            DefaultResult=default_result,
        )

    def _complete(self, run: _Run, result: str = "CONTINUE") -> bool:
        try:
            self.client("autoscaling").complete_lifecycle_action(
                AutoScalingGroupName=run.message["AutoScalingGroupName"],
                LifecycleHookName=run.message["LifecycleHookName"],
                LifecycleActionToken=run.token,
                LifecycleActionResult=result,
            )
        except ClientError as err:
            self._say(run, f"CompleteLifecycleAction failed: {err.response['Error']['Message']}")
            return False
        self._say(run, f"CompleteLifecycleAction {result}")
        return True


class EcsManagedDraining(_HookActor):
    """ECS managed instance draining's hook on an Auto Scaling group capacity provider."""

    hook_name = ECS_MANAGED_DRAINING_HOOK

    def __init__(
        self,
        *,
        poll_seconds: float = 30.0,
        heartbeat_every: float | None = None,
        max_drain_seconds: float = MAX_MANAGED_DRAIN_SECONDS,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.poll_seconds = poll_seconds
        self.heartbeat_every = heartbeat_every
        self.max_drain_seconds = max_drain_seconds

    def put_hook(self, heartbeat_timeout: int = 3600, default_result: str = "CONTINUE") -> None:
        super().put_hook(heartbeat_timeout, default_result)
        if self.heartbeat_every is None:
            self.heartbeat_every = heartbeat_timeout / 2

    def _on_action_ended(self, run: _Run) -> None:
        run.done = True
        if run.timer is not None:
            run.timer.cancel()

    def _container_instance(self, instance_id: str) -> dict[str, Any] | None:
        ecs = self.client("ecs")
        arns = ecs.list_container_instances(
            cluster=self.cluster, filter=f"ec2InstanceId == {instance_id}"
        )["containerInstanceArns"]
        if not arns:
            return None
        described = ecs.describe_container_instances(cluster=self.cluster, containerInstances=arns)
        # Confirm the match: a filter may be ignored (moto without the sandbox's ecs_query).
        return next(
            (ci for ci in described["containerInstances"] if ci["ec2InstanceId"] == instance_id),
            None,
        )

    def _begin(self, run: _Run) -> None:
        if run.done:
            return
        instance = self._container_instance(run.instance_id)
        if instance is None:
            self._say(run, "no container instance: nothing to drain")
            self._complete(run)
            run.done = True
            return
        run.container_instance_arn = instance["containerInstanceArn"]
        if instance["status"] == "ACTIVE":
            self.client("ecs").update_container_instances_state(
                cluster=self.cluster,
                containerInstances=[run.container_instance_arn],
                status="DRAINING",
            )
            self._say(run, "container instance DRAINING")
        run.last_heartbeat = self.clock.now()
        self._poll(run)

    def _unstopped_tasks(self, container_instance_arn: str) -> int:
        ecs = self.client("ecs")
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            pages = ecs.get_paginator("list_tasks").paginate(
                cluster=self.cluster,
                containerInstance=container_instance_arn,
                desiredStatus=desired,
            )
            for page in pages:
                arns += page["taskArns"]
        unstopped = 0
        for i in range(0, len(arns), 100):
            tasks = ecs.describe_tasks(cluster=self.cluster, tasks=arns[i : i + 100])["tasks"]
            unstopped += sum(1 for t in tasks if t.get("lastStatus") != "STOPPED")
        return unstopped

    def _poll(self, run: _Run) -> None:
        if run.done:
            return
        now = self.clock.now()
        elapsed = (now - run.started_at).total_seconds()
        assert run.container_instance_arn is not None
        left = self._unstopped_tasks(run.container_instance_arn)
        if left == 0 or elapsed >= self.max_drain_seconds:
            self._say(run, "no task left" if left == 0 else f"48 h passed with {left} tasks")
            self._complete(run)
            run.done = True
            return
        since_beat = (now - (run.last_heartbeat or now)).total_seconds()
        if self.heartbeat_every and since_beat >= self.heartbeat_every:
            self._heartbeat(run)
        wait = min(self.poll_seconds, self.max_drain_seconds - elapsed)
        self._schedule(run, max(wait, 0.0), self._poll)

    def _heartbeat(self, run: _Run) -> None:
        try:
            self.client("autoscaling").record_lifecycle_action_heartbeat(
                AutoScalingGroupName=self.asg_name,
                LifecycleHookName=self.hook_name,
                LifecycleActionToken=run.token,
            )
            run.last_heartbeat = self.clock.now()
        except ClientError as err:
            self._say(run, f"heartbeat failed: {err.response['Error']['Message']}")


class CdkDrainHook(_HookActor):
    """aws-cdk-lib's InstanceDrainHook: SNS -> its Lambda, polling every 10 s."""

    def __init__(
        self,
        *,
        hook_name: str | None = None,
        drain_seconds: int = 300,
        retry_on_timeout: bool = True,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if not 30 <= drain_seconds <= LAMBDA_MAX_TIMEOUT:
            raise ValueError("drain_seconds: 30 s (the hook's minimum heartbeat) to 15 min")
        self.hook_name = hook_name or f"{self.asg_name}-LifecycleHookDrainHook"
        self.drain_seconds = drain_seconds
        self.function_timeout = min(drain_seconds + 10, LAMBDA_MAX_TIMEOUT)
        self.retry_on_timeout = retry_on_timeout
        self.invocations = 0

    def put_hook(
        self, heartbeat_timeout: int | None = None, default_result: str = "CONTINUE"
    ) -> None:
        super().put_hook(heartbeat_timeout or self.drain_seconds, default_result)

    def sns_message(self, run: _Run) -> str:
        """The SNS notification's Message: the lifecycle keys as a JSON string."""
        return json.dumps(run.message)

    def _begin(self, run: _Run) -> None:
        """One Lambda invocation: from the top of the handler."""
        self.invocations += 1
        run.attempt += 1
        run.started_at = self.clock.now()
        message = json.loads(self.sns_message(run))
        instance_id = message.get("EC2InstanceId")
        ecs = self.client("ecs")
        arns = ecs.list_container_instances(
            cluster=self.cluster, filter="ec2InstanceId==" + instance_id
        )["containerInstanceArns"]
        if not arns:
            self._say(run, "no container instance: the Lambda returns")
            return
        run.container_instance_arn = arns[0]
        run.task_arns = ecs.list_tasks(cluster=self.cluster, containerInstance=arns[0])["taskArns"]
        self._loop(run)

    def _has_tasks(self, run: _Run) -> bool:
        ecs = self.client("ecs")
        instances = ecs.describe_container_instances(
            cluster=self.cluster, containerInstances=[run.container_instance_arn]
        )["containerInstances"]
        if not instances:
            return False
        instance = instances[0]
        if instance["status"] == "ACTIVE":
            ecs.update_container_instances_state(
                cluster=self.cluster,
                containerInstances=[run.container_instance_arn],
                status="DRAINING",
            )
            self._say(run, "container instance DRAINING")
            return True
        count = None
        if run.task_arns:
            tasks = ecs.describe_tasks(cluster=self.cluster, tasks=run.task_arns)["tasks"]
            if tasks:
                count = sum(t["lastStatus"] != "STOPPED" for t in tasks)
                count += instance["pendingTasksCount"]
        if not count:
            count = instance["runningTasksCount"] + instance["pendingTasksCount"]
        return count > 0

    def _loop(self, run: _Run) -> None:
        if not self._has_tasks(run):
            self._complete(run)
            return
        deadline = run.started_at + timedelta(seconds=self.function_timeout)
        if self.clock.now() + timedelta(seconds=CDK_POLL_SECONDS) > deadline:
            # The Lambda is killed mid-sleep at its timeout: a function error.
            left = (deadline - self.clock.now()).total_seconds()
            self._schedule(run, max(left, 0.0), self._timed_out)
            return
        self._schedule(run, CDK_POLL_SECONDS, self._loop)

    def _timed_out(self, run: _Run) -> None:
        self._say(run, f"Lambda timed out after {self.function_timeout} s")
        if self.retry_on_timeout and run.attempt <= len(ASYNC_RETRY_DELAYS):
            self._schedule(run, ASYNC_RETRY_DELAYS[run.attempt - 1], self._begin)
