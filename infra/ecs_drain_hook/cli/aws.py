"""What the CLI reads from AWS and the writes it makes, each a small function over boto3.

Which drains are under way is ECS's answer: the cluster's DRAINING container instances that carry
our drain record (ListContainerInstances status DRAINING, DescribeContainerInstances). The drain
record names the wait loop's execution and when the hold began; the action record names the
lifecycle hook and its group. The rest comes from the services themselves: the tasks left
(ListTasks, DescribeTasks), each service's counts and latest event (DescribeServices), where
Auto Scaling has the instance (DescribeAutoScalingInstances), the loop (DescribeExecution,
GetExecutionHistory). Nothing is cached between commands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from ecs_drain_hook.cli.views import DrainView, Round, ServiceHold, Target, TaskLeft
from ecs_drain_hook.console import execution_url
from ecs_drain_hook.runtime.drain_hook import contract
from ecs_drain_hook.runtime.drain_hook.models.observations import ActionRecord, DrainRecord
from ecs_drain_hook.runtime.drain_hook.settings import Tunables
from ecs_drain_hook.stack_names import (
    DEFAULT_ATTACH_STACK,
    DEFAULT_SAMPLE_CLUSTER_STACK,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_SAMPLE_CLUSTER,
    OUTPUT_STATE_MACHINE_ARN,
)

# API limits (botocore's models): DescribeContainerInstances and DescribeTasks take 100 items,
# DescribeServices 10, DescribeAutoScalingInstances 50.
DESCRIBE_MAX = 100
DESCRIBE_SERVICES_MAX = 10
DESCRIBE_ASG_INSTANCES_MAX = 50
ROUNDS_SHOWN = 8

Progress = Callable[[int, int, str], None]


class CliError(Exception):
    """Something the user can act on: said in one line, exit status 1."""


class Refused(CliError):
    """A write the CLI will not make (exit status 2)."""


class Aws:
    """boto3 clients from one session: the usual profile and Region resolution (--profile,
    --region, then AWS_PROFILE, AWS_REGION / AWS_DEFAULT_REGION and the config files)."""

    def __init__(
        self, session: Any = None, *, profile: str | None = None, region: str | None = None
    ) -> None:
        if session is None:
            import boto3  # here, so that `--help` never pays for importing it

            session = boto3.session.Session(profile_name=profile, region_name=region)
        self.session = session
        self._region = region or session.region_name
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str:
        if not self._region:
            raise CliError(
                "no AWS Region: pass --region, set AWS_REGION, or set one in your AWS config"
            )
        return self._region

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)
        return self._clients[service]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


# --- the deployment ---------------------------------------------------------------------------


def resolve_target(
    aws: Aws,
    *,
    stack_name: str | None,
    function: str | None,
    state_machine: str | None,
    cluster: str | None,
) -> Target:
    """The deployment the commands act on: explicit flags first, the rest from the stack's outputs
    (DescribeStacks) and the cluster from the function's CLUSTER_NAME (GetFunctionConfiguration)."""
    outputs: dict[str, str] = {}
    found_stack: str | None = None
    if not (function and state_machine and cluster):
        found_stack, outputs = _stack_outputs(aws, stack_name)
    function = function or stack_output(outputs, OUTPUT_FUNCTION_NAME, found_stack)
    state_machine = state_machine or stack_output(outputs, OUTPUT_STATE_MACHINE_ARN, found_stack)
    settings = function_settings(aws, function) if function else None
    clusters: tuple[str, ...] = ()
    named = cluster or outputs.get(OUTPUT_SAMPLE_CLUSTER) or (settings or {}).get("CLUSTER_NAME")
    if named:
        clusters = (named,)
    return Target(
        region=aws.region,
        function_name=function,
        state_machine_arn=state_machine,
        clusters=clusters,
        stack_name=found_stack,
        settings=settings,
    )


def stack_output(outputs: dict[str, str], output_id: str, stack: str | None) -> str | None:
    """One output of `EcsDrainHook(outputs=True)`: under its own id in this repository's stacks,
    under the construct's path, the id and CDK's 8-character hash in a stack of one's own."""
    if output_id in outputs:
        return outputs[output_id]
    pattern = re.compile(rf"^[A-Za-z0-9]*{output_id}[0-9A-F]{{8}}$")
    found = sorted(key for key in outputs if pattern.match(key))
    if len(found) > 1:
        raise CliError(
            f"stack {stack} has {len(found)} drain hooks ({', '.join(found)}): pass --function, "
            "--state-machine and --cluster"
        )
    return outputs[found[0]] if found else None


def _stack_outputs(aws: Aws, stack_name: str | None) -> tuple[str | None, dict[str, str]]:
    names = [stack_name] if stack_name else [DEFAULT_ATTACH_STACK, DEFAULT_SAMPLE_CLUSTER_STACK]
    cloudformation = aws.client("cloudformation")
    for name in names:
        try:
            stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except Exception as error:
            if _error_code(error) == "ValidationError":  # "Stack with id ... does not exist"
                continue
            raise
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        return name, outputs
    if stack_name is None:
        return None, {}
    raise CliError(
        f"no stack {stack_name!r} in {aws.region}: pass --stack-name, or --function, "
        "--state-machine and --cluster"
    )


def function_settings(aws: Aws, function: str) -> dict[str, str] | None:
    """The drain Lambda's settings, every one (defaults from Tunables, then its environment);
    None when the function can't be read (no permission, gone)."""
    try:
        config = aws.client("lambda").get_function_configuration(FunctionName=function)
    except Exception as error:
        if _error_code(error) in ("ResourceNotFoundException", "AccessDeniedException"):
            return None
        raise
    environment = (config.get("Environment") or {}).get("Variables") or {}
    defaults = {row["env"]: _text(row["default"]) for row in Tunables.describe()}
    return {**defaults, **environment}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- drains under way -------------------------------------------------------------------------


def list_drains(
    aws: Aws,
    target: Target,
    *,
    now: datetime,
    cluster: str | None = None,
    group: str | None = None,
    progress: Progress | None = None,
) -> list[DrainView]:
    """Every drain under way: the DRAINING container instances with our drain record."""
    clusters = (cluster,) if cluster else target.clusters
    if not clusters:
        raise CliError("no cluster to read: pass --cluster (or deploy with a stack the CLI finds)")
    views: list[DrainView] = []
    for name in clusters:
        views += _drains_of(aws, target, name, group=group, progress=progress)
    return sorted(views, key=lambda v: (v.started_at or now, v.instance_id))


def _drains_of(
    aws: Aws,
    target: Target,
    cluster: str,
    *,
    group: str | None,
    progress: Progress | None,
) -> list[DrainView]:
    ecs = aws.client("ecs")
    arns = [
        arn
        for page in ecs.get_paginator("list_container_instances").paginate(
            cluster=cluster, status="DRAINING"
        )
        for arn in page["containerInstanceArns"]
    ]
    items = _describe_instances(aws, cluster, arns)
    ours = [item for item in items if _attribute(item, contract.DRAIN_ATTRIBUTE)]
    views = [_view(cluster, item) for item in ours]
    _add_lifecycle(aws, views)
    if group:
        views = [v for v in views if group in (v.group, v.action_group)]
    for done, view in enumerate(views, start=1):
        if progress is not None:
            progress(done, len(views), view.instance_id)
        _add_tasks(aws, view)
        _add_loop(aws, target, view)
        _add_deadline(target, view)
    _add_services(aws, cluster, views)
    return views


def read_drain(
    aws: Aws, target: Target, instance_id: str, *, rounds: int = ROUNDS_SHOWN
) -> DrainView | None:
    """One instance's drain (None: not registered in any of the target's clusters), with the
    wait loop's last rounds when `rounds`."""
    for cluster in target.clusters:
        item = _find_instance(aws, cluster, instance_id)
        if item is None:
            continue
        view = _view(cluster, item)
        _add_lifecycle(aws, [view])
        _add_tasks(aws, view)
        _add_loop(aws, target, view)
        _add_deadline(target, view)
        _add_services(aws, cluster, [view])
        if rounds and view.execution_arn:
            view.rounds = last_rounds(aws, view.execution_arn, rounds)
        return view
    return None


def _find_instance(aws: Aws, cluster: str, instance_id: str) -> dict[str, Any] | None:
    """The container instance of an EC2 instance (the cluster query language's ec2InstanceId
    filter, confirmed by DescribeContainerInstances)."""
    ecs = aws.client("ecs")
    arns = [
        arn
        for page in ecs.get_paginator("list_container_instances").paginate(
            cluster=cluster, filter=f"ec2InstanceId == {instance_id}"
        )
        for arn in page["containerInstanceArns"]
    ]
    for item in _describe_instances(aws, cluster, arns):
        if item.get("ec2InstanceId") == instance_id:
            return item
    return None


def _describe_instances(aws: Aws, cluster: str, arns: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for chunk in _chunks(arns, DESCRIBE_MAX):
        response = aws.client("ecs").describe_container_instances(
            cluster=cluster, containerInstances=chunk
        )
        found += response.get("containerInstances", [])
    return found


def _attribute(item: dict[str, Any], name: str) -> str | None:
    for attribute in item.get("attributes", []):
        if attribute.get("name") == name:
            return attribute.get("value")
    return None


def _view(cluster: str, item: dict[str, Any]) -> DrainView:
    raw = _attribute(item, contract.DRAIN_ATTRIBUTE)
    record = DrainRecord.decode(raw)
    action = ActionRecord.decode(_attribute(item, contract.ACTION_ATTRIBUTE))
    return DrainView(
        instance_id=item.get("ec2InstanceId", ""),
        cluster=cluster,
        container_instance_arn=item["containerInstanceArn"],
        container_instance_status=item.get("status", "UNKNOWN"),
        started_at=record.started_at if record else None,
        loop=record.loop if record else None,
        drain_record=raw,
        action_hook=action.hook_name if action else None,
        action_group=action.asg_name if action else None,
        agent_connected=bool(item.get("agentConnected", True)),
        agent_lost_since=record.agent_lost_since if record else None,
    )


def _add_lifecycle(aws: Aws, views: list[DrainView]) -> None:
    ids = [v.instance_id for v in views if v.instance_id]
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(ids, DESCRIBE_ASG_INSTANCES_MAX):
        response = aws.client("autoscaling").describe_auto_scaling_instances(InstanceIds=chunk)
        for item in response.get("AutoScalingInstances", []):
            found[item["InstanceId"]] = item
    for view in views:
        item = found.get(view.instance_id)
        if item is not None:
            view.group = item.get("AutoScalingGroupName")
            view.lifecycle_state = item.get("LifecycleState")


def _add_tasks(aws: Aws, view: DrainView) -> None:
    """The instance's tasks not STOPPED yet, of both desired statuses (a task told to stop holds
    the instance until it has stopped)."""
    ecs = aws.client("ecs")
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(
            cluster=view.cluster,
            containerInstance=view.container_instance_arn,
            desiredStatus=desired,
        ):
            arns += page["taskArns"]
    tasks: list[dict[str, Any]] = []
    for chunk in _chunks(list(dict.fromkeys(arns)), DESCRIBE_MAX):
        tasks += ecs.describe_tasks(cluster=view.cluster, tasks=chunk).get("tasks", [])
    view.tasks = [
        TaskLeft(
            arn=task["taskArn"],
            kind="service" if _service(task) else "standalone",
            service=_service(task),
            last_status=task.get("lastStatus", "UNKNOWN"),
            desired_status=task.get("desiredStatus", "UNKNOWN"),
        )
        for task in tasks
        if task.get("lastStatus") != "STOPPED"
    ]


def _service(task: dict[str, Any]) -> str | None:
    group = task.get("group") or ""
    return group.split(":", 1)[1] if group.startswith("service:") else None


def _add_loop(aws: Aws, target: Target, view: DrainView) -> None:
    """The wait loop the drain record names, and what its input (the first round's state) says."""
    if not view.loop or not target.state_machine_arn:
        return
    prefix, machine = target.state_machine_arn.split(":stateMachine:", 1)
    view.execution_arn = f"{prefix}:execution:{machine}:{view.loop}"
    view.console_url = execution_url(view.execution_arn)
    sfn = aws.client("stepfunctions")
    try:
        execution = sfn.describe_execution(executionArn=view.execution_arn)
    except Exception as error:
        if _error_code(error) == "ExecutionDoesNotExist":
            view.notes.append(f"the wait loop {view.loop} is not in {target.state_machine_arn}")
            return
        raise
    view.execution_status = execution.get("status")
    try:
        state = json.loads(execution.get("input") or "{}")
    except ValueError:
        state = {}
    if not isinstance(state, dict):
        return
    view.hold_start_source = state.get("hold_start_source")
    view.deadline_at = _time(state.get("deadline_at"))
    services = state.get("release_services")
    if isinstance(services, list):
        view.release_services = [s for s in services if isinstance(s, str)]


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else None


def _add_services(aws: Aws, cluster: str, views: list[DrainView]) -> None:
    """Each service holding an instance (or waited for): its counts and the scheduler's latest
    event, one DescribeServices for every ten services of the cluster."""
    steady = {
        v.instance_id: v.release_services
        for v in views
        if _setting_is(v, "services_steady") and not v.tasks
    }
    names = sorted(
        {t.service for v in views for t in v.tasks if t.service}
        | {name for wanted in steady.values() for name in wanted}
    )
    described: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(names, DESCRIBE_SERVICES_MAX):
        response = aws.client("ecs").describe_services(cluster=cluster, services=chunk)
        for service in response.get("services", []):
            described[service["serviceName"]] = service
    for view in views:
        on_instance: dict[str, int] = {}
        for task in view.tasks:
            if task.service:
                on_instance[task.service] = on_instance.get(task.service, 0) + 1
        view.tasks = [_with_kind(task, described.get(task.service or "")) for task in view.tasks]
        holds = []
        for name in sorted(set(on_instance) | set(steady.get(view.instance_id, ()))):
            service = described.get(name)
            hold = _hold(name, on_instance.get(name, 0), service)
            if name in steady.get(view.instance_id, ()):
                hold = _waited_for(hold)
                if not hold.waited_for:
                    continue  # steady already: it holds nothing
            holds.append(hold)
        view.services = holds


def _setting_is(view: DrainView, value: str) -> bool:
    return view.release_when == value


def _with_kind(task: TaskLeft, service: dict[str, Any] | None) -> TaskLeft:
    if task.service and service and service.get("schedulingStrategy") == "DAEMON":
        return TaskLeft(task.arn, "daemon", task.service, task.last_status, task.desired_status)
    return task


def _hold(name: str, tasks: int, service: dict[str, Any] | None) -> ServiceHold:
    if service is None:
        return ServiceHold(name=name, tasks_on_instance=tasks, running=None, desired=None)
    events = service.get("events") or []
    latest = events[0] if events else {}
    return ServiceHold(
        name=name,
        tasks_on_instance=tasks,
        running=service.get("runningCount"),
        desired=service.get("desiredCount"),
        pending=service.get("pendingCount"),
        strategy=service.get("schedulingStrategy"),
        status=service.get("status"),
        latest_event=latest.get("message"),
        latest_event_at=latest.get("createdAt"),
    )


def _waited_for(hold: ServiceHold) -> ServiceHold:
    short = (
        hold.status == "ACTIVE"
        and hold.strategy != "DAEMON"
        and hold.running is not None
        and hold.desired is not None
        and hold.running < hold.desired
    )
    return ServiceHold(**{**hold.__dict__, "waited_for": short})


def _add_deadline(target: Target, view: DrainView) -> None:
    view.release_when = target.setting("RELEASE_WHEN") or view.release_when
    if view.deadline_at is None and view.started_at is not None:
        seconds = target.setting("MAX_DRAIN_SECONDS")
        if seconds and seconds.isdigit():
            view.deadline_at = view.started_at + timedelta(seconds=int(seconds))
    policy = target.setting("AT_DEADLINE")
    if policy == "stop_tasks":
        grace = target.setting("DEADLINE_STOP_GRACE_SECONDS") or "?"
        view.at_deadline = f"stop the tasks left, then CONTINUE {grace} s later"
    elif policy == "continue":
        view.at_deadline = "CONTINUE with the tasks left"


def last_rounds(aws: Aws, execution_arn: str, count: int) -> list[Round]:
    """The wait loop's last decisions, oldest first: each poll's answer (a TaskSucceeded of the
    Lambda invoke), each failed poll, and the first round's (the execution's input)."""
    sfn = aws.client("stepfunctions")
    found: list[Round] = []
    started: dict[str, Any] | None = None
    for page in sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, reverseOrder=True, includeExecutionData=True
    ):
        for event in page["events"]:
            kind = event.get("type", "")
            if kind == "TaskSucceeded":
                details = event.get("taskSucceededEventDetails") or {}
                answer = _payload(details.get("output"))
                if answer is not None and "action" in answer:
                    found.append(_round(event["timestamp"], answer))
            elif kind == "TaskFailed":
                details = event.get("taskFailedEventDetails") or {}
                reason = ": ".join(p for p in (details.get("error"), details.get("cause")) if p)
                found.append(Round(event["timestamp"], "failed", None, reason[:300]))
            elif kind == "ExecutionStarted":
                details = event.get("executionStartedEventDetails") or {}
                started = _payload(details.get("input"))
                if started is not None and "action" in started:
                    found.append(_round(event["timestamp"], started))
            if len(found) >= count:
                break
        if len(found) >= count:
            break
    return sorted(found[:count], key=lambda r: r.at)


def _payload(text: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("Payload"), dict):
        value = value["Payload"]  # the lambda:invoke integration's answer
    return value if isinstance(value, dict) else None


def _round(at: datetime, answer: dict[str, Any]) -> Round:
    tasks = answer.get("tasks")
    return Round(
        at=at,
        action=str(answer.get("action")),
        tasks_remaining=answer.get("tasks_remaining"),
        reason=str(answer.get("reason", "")),
        wait_seconds=answer.get("wait_seconds"),
        tasks=tasks if isinstance(tasks, dict) else None,
    )


# --- writes -----------------------------------------------------------------------------------


def release(aws: Aws, view: DrainView, result: str) -> dict[str, Any]:
    """End a drain by hand: complete the lifecycle action (by instance id, with the hook and
    group of the action record), stop the wait loop, take the drain record off the instance.
    In that order: once the action is over, the loop's end (its release of what it held) finds
    nothing waiting, and a poll or task event meanwhile finds the action ended."""
    if not view.held:
        raise Refused(why_not_held(view))
    assert view.action_group is not None and view.action_hook is not None
    try:
        aws.client("autoscaling").complete_lifecycle_action(
            AutoScalingGroupName=view.action_group,
            LifecycleHookName=view.action_hook,
            InstanceId=view.instance_id,
            LifecycleActionResult=result.upper(),
        )
    except Exception as error:
        # Another hook may hold the instance in the wait state after ours is over.
        if _error_code(error) == "ValidationError" and "No active Lifecycle Action" in str(error):
            raise Refused(
                f"hook {view.action_hook}'s lifecycle action for {view.instance_id} is already "
                "over (another hook holds the instance): nothing of ours to release"
            ) from error
        raise
    stopped = False
    if view.execution_arn and view.execution_status == "RUNNING":
        try:
            aws.client("stepfunctions").stop_execution(
                executionArn=view.execution_arn,
                error="ManualRelease",
                cause=f"released by hand with ecs-drain-hook release ({result.upper()})",
            )
            stopped = True
        except Exception as error:
            if _error_code(error) != "ExecutionDoesNotExist":
                raise
    try:
        aws.client("ecs").delete_attributes(
            cluster=view.cluster,
            attributes=[
                {"name": name, "targetId": view.container_instance_arn}
                for name in (contract.DRAIN_ATTRIBUTE, contract.ACTION_ATTRIBUTE)
            ],
        )
        cleared = "cleared"
    except Exception as error:
        # Terminated already: its container instance, and the record with it, is gone.
        if _error_code(error) != "TargetNotFoundException":
            raise
        cleared = "gone with the container instance"
    return {
        "instance_id": view.instance_id,
        "result": result.upper(),
        "lifecycle_action_completed": True,
        "loop_stopped": stopped,
        "execution_arn": view.execution_arn,
        "drain_record": cleared,
    }


def why_not_held(view: DrainView | None, instance_id: str | None = None) -> str:
    """Why `release` refuses the instance: which of our records or Auto Scaling's says no."""
    if view is None:
        return f"{instance_id} is not registered in the cluster: no drain of ours to release"
    if view.loop is None:
        return f"{view.instance_id} carries no drain record of ecs-drain-hook: not our drain"
    if view.action_group is None:
        return (
            f"{view.instance_id} has no lifecycle action recorded by ecs-drain-hook (a report-"
            "only drain): nothing to complete"
        )
    if view.group != view.action_group:
        where = f"group {view.group}" if view.group else "no Auto Scaling group"
        return (
            f"Auto Scaling shows {view.instance_id} in {where}, not {view.action_group}: not held "
            "by our hook"
        )
    return (
        f"Auto Scaling shows {view.instance_id} {view.lifecycle_state}, not waiting on a "
        "termination hook: nothing to release"
    )


def invoke_drain(
    aws: Aws,
    target: Target,
    instance_id: str,
    *,
    dry_run: bool,
    cluster: str | None = None,
    group: str | None = None,
    hook: str | None = None,
) -> dict[str, Any]:
    """The manual invoke (README "Events", shape 3) through the deployed Lambda, synchronously."""
    if not target.function_name:
        raise CliError("no drain function: pass --function or --stack-name")
    event: dict[str, Any] = {"instance_id": instance_id, "dry_run": dry_run}
    if cluster:
        event["cluster"] = cluster
    if group and hook:
        event["asg_name"], event["hook_name"] = group, hook
    response = aws.client("lambda").invoke(
        FunctionName=target.function_name,
        InvocationType="RequestResponse",
        Payload=json.dumps(event).encode(),
    )
    body = response["Payload"].read()
    answer = json.loads(body) if body else {}
    if response.get("FunctionError"):
        message = answer.get("errorMessage") if isinstance(answer, dict) else None
        raise CliError(f"the drain function failed: {message or body.decode(errors='replace')}")
    return answer if isinstance(answer, dict) else {"answer": answer}
