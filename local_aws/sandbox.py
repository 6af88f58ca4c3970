"""The whole drain flow with no AWS account: moto in process plus the behaviour it lacks.

    with Sandbox(seed=7) as sb:
        sb.add_cluster("demo", instances=3)            # ASG + termination hook + ECS instances
        sb.register_task_definition("web", cpu=256, memory=512)
        sb.create_service("demo", "web", "web", desired=4)
        sb.settle()                                    # services reach their desired count
        sb.scale_in("demo-asg", 2)                     # hook fires, instance waits
        report = sb.run()                              # drains on virtual time
        assert report.all_completed and not report.lost_tasks

Pieces (each usable alone, see their modules): `autoscaling` (lifecycle hooks), `ecs_sim` (the
ECS scheduler), `events` (EventBridge rules, retries and DLQs -> Lambda or a queue),
`sqs_event_source` (the intake queue and the event source mapping that paces the Lambda),
`lambda_runtime` (the real handler in process, sync and async invocation), `stepfunctions` (the
real ASL on virtual time), `faults` (call counts and fault injection on the handler's boto3
session), `template` (rules, ASL and Lambda settings from the ASL file or a synthesized
template), `ecs_query` (ListContainerInstances' ec2InstanceId filter, while a Sandbox is open).

The loop (`run`): wait until every Step Functions execution is parked in a Wait or done; apply
what is due now (ECS timers and reconciliation, lifecycle timeouts, event deliveries, waking
executions); when nothing more is due, move the virtual clock to the next timer. It ends when
no execution runs, no delivery is pending and no lifecycle action is waiting.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.awslambda.utils import get_backend as lambda_backend
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.utils import generate_instance_identity_document
from moto.moto_api._internal import mock_random

from ecs_drain_hook.stack_names import (
    DEFAULT_ATTACH_STACK,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_STATE_MACHINE_ARN,
)
from local_aws import (
    autoscaling,
    cloudformation,
    ecs_query,
    events,
    faults,
    instance_refresh,
    lambda_runtime,
    other_hooks,
    rate_limits,
    sqs_event_source,
    stepfunctions,
    template,
    warm_pools,
)
from local_aws.clock import RealClock, VirtualClock
from local_aws.ecs_sim import EcsOptions, EcsSimulator, Timings
from local_aws.events import DeliveryError, EventBus
from local_aws.faults import FaultRule, Instrument
from local_aws.lambda_runtime import EnvironmentSession, LambdaRuntime, current_environment
from local_aws.rate_limits import AccountLimiter, RateLimits
from local_aws.spot import SpotMarket
from local_aws.sqs_event_source import SqsEventSource
from local_aws.timers import Timers

# The Lambda's package lives in lambda/ (what is deployed); make it importable from a checkout.
_LAMBDA_DIR = str(template.ROOT / "lambda")
if _LAMBDA_DIR not in sys.path:
    sys.path.insert(0, _LAMBDA_DIR)

REGION = "us-east-1"
FUNCTION_NAME = "ecs-drain-hook"
STATE_MACHINE_NAME = "ecs-drain-hook-loop"
HOOK_NAME = "ecs-drain-hook"
HANDLER = template.DRAIN_HANDLER
TERMINATING = autoscaling.TERMINATING

# The Lambda's environment in the sandbox, besides what the template sets: quiet logs, no EMF.
# The tunables come from the synthesized stack (what `cdk deploy` ships); only logging is quieter.
DEFAULT_LAMBDA_ENV = {
    "POWERTOOLS_SERVICE_NAME": template.contract.SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": template.contract.METRICS_NAMESPACE,
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
# AWS's documented rate limits are on unless a Sandbox is made with rate_limits=None.
DEFAULT_RATE_LIMITS = RateLimits()


@dataclass
class RunReport:
    virtual_seconds: float
    wall_seconds: float
    executions: int
    polls: int
    lifecycle_actions: list[autoscaling.LifecycleAction]
    lost_tasks: list[str]
    calls: dict[str, int]
    attempts: dict[str, int]
    failed_executions: list[str] = field(default_factory=list)
    # Attempts the account's buckets refused, by operation ("ecs:DescribeTasks"), all callers.
    throttled: dict[str, int] = field(default_factory=dict)

    @property
    def all_completed(self) -> bool:
        """Every lifecycle action ended by CompleteLifecycleAction (not by a timeout)."""
        return bool(self.lifecycle_actions) and all(
            a.ended_by == "complete" for a in self.lifecycle_actions
        )


def _cold_start() -> None:
    """What a new Lambda container does: read settings from the environment, configure clients."""
    from drain_hook.adapters import clients
    from drain_hook.settings import load_settings, reset_settings

    reset_settings()
    settings = load_settings()
    clients.configure(settings.retry_mode, settings.retry_max_attempts)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("drain_hook/__init__.py", "")
    return buf.getvalue()


class Sandbox:
    def __init__(
        self,
        *,
        seed: int = 0,
        timings: Timings | None = None,
        lambda_env: dict[str, str] | None = None,
        definition: template.DrainDefinition | None = None,
        handler: str = HANDLER,
        region: str = REGION,
        ecs: EcsOptions | None = None,
        context: dict[str, str] | None = None,
        rate_limits: RateLimits | None = DEFAULT_RATE_LIMITS,
    ) -> None:
        self.seed = seed
        # CDK context keys for the synthesized stack (e.g. tunables): what `cdk deploy -c` sets.
        self._context = dict(context or {})
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self.clock = VirtualClock()
        self.keeper = stepfunctions.TimeKeeper(self.clock, seed=seed)
        self.instrument = Instrument(seed=seed)
        # --- rate limits (local_aws/rate_limits.py): None switches every API bucket off.
        self.rate_limits = rate_limits
        limits = rate_limits or RateLimits.off()
        self.limiter = AccountLimiter(limits, self.clock, region)
        self.runtime = LambdaRuntime(
            clock=self.clock,
            instrument=self.instrument,
            seed=seed,
            scheduler=self.keeper,
            account_concurrency=limits.lambda_account_concurrency,
            scaling=limits.lambda_scaling,
        )
        self.bus = EventBus(self.clock, seed=seed)
        # "Step Functions Execution Status Change" events, as they were put on the bus.
        self.status_events: list[dict[str, Any]] = []
        self._clients: dict[str, Any] = {}
        self._timings = timings
        self._ecs_options = ecs
        self._lambda_env = {**DEFAULT_LAMBDA_ENV, **(lambda_env or {})}
        self._definition = definition
        self._handler = handler
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_utc_now: Any = None
        self.lambda_session: Any = None  # set on enter: the session the Lambda's clients use
        self.groups: dict[str, str] = {}  # asg name -> cluster
        self.sim: EcsSimulator
        self.function_arn = ""
        self.state_machine_arn = ""
        self.terminated: list[tuple[datetime, str]] = []
        self.listeners: list[Callable[[str, Any], None]] = []
        # Auto Scaling extras (activities, warm pools, other hooks): see the block below.
        self.timers = Timers(self.clock)
        self.in_service_listeners: list[Callable[[str, str], None]] = [
            self._register_when_in_service
        ]
        self._instance_resources: dict[str, tuple[int, int]] = {}
        self.hook_actors: list[other_hooks.EcsManagedDraining | other_hooks.CdkDrainHook] = []
        self._routed_queue: str | None = None
        # Spot instances and their interruptions (local_aws/spot.py), made on enter.
        self.spot: SpotMarket
        # The queue lifecycle events reach the Lambda through, when the template has one.
        self.intake: SqsEventSource | None = None
        self._container_caches: dict[Any, dict[str, Any]] = {}
        # Soak conveniences (see the block at the end): off until asked for.
        self._call_log: list[CallRecord] | None = None
        self._fault_log: list[FaultRecord] | None = None

    # --- set-up and tear-down --------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ.pop(key, None)
        self._mock = mock_aws(
            config={
                "lambda": {"use_docker": False},
                "stepfunctions": {"execute_state_machine": True},
            }
        )
        self._mock.start()
        # moto's ids (instances, tasks, container instances) follow the seed: the drain spreads
        # its first wait by instance id, so the same seed must give the same ids.
        mock_random.seed(f"sandbox/{self.seed}")
        autoscaling.install(clock=self.clock)
        stepfunctions.install()
        lambda_runtime.install()
        faults.install()
        # Rate limits: the gate in front of moto, and botocore's waits on the virtual clock.
        rate_limits.install()
        rate_limits.install_virtual_time(self.clock, self.runtime.park, self.seed)
        stepfunctions.use_limiter(self.limiter if self.rate_limits is not None else None)
        ecs_query.install()  # ListContainerInstances honours `ec2InstanceId == <id>`
        stepfunctions.use_timekeeper(self.keeper)
        lambda_runtime.use_runtime(self.runtime)
        self._wire_delivery()
        self.sim = EcsSimulator(
            self.clock,
            seed=self.seed,
            timings=self._timings,
            options=self._ecs_options,
            region=self.region,
        )
        self._wire_ecs()
        autoscaling.subscribe(self._on_lifecycle, region=self.region)
        autoscaling.configure(region=self.region, seed=self.seed)  # knob draws follow the seed
        self.spot = SpotMarket(
            clock=self.clock,
            timers=self.timers,
            put_event=self.bus.put,
            terminate=lambda iid: self.client("ec2").terminate_instances(InstanceIds=[iid]),
            begin_group_termination=self._spot_group_termination,
            capacity_rebalancing=lambda iid: autoscaling.capacity_rebalancing(
                iid, region=self.region
            ),
            region=self.region,
            account_id=self.account_id,
            seed=self.seed,
        )
        instance_refresh.install()  # StartInstanceRefresh, on this sandbox's virtual clock
        instance_refresh.use_timers(self.timers)
        cloudformation.install()  # DescribeStacks of the stacks `publish_stack` publishes
        self._patch_lambda_seams()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._mock is None:
            return  # already closed
        try:
            # Let parked executions finish, so no interpreter thread outlives moto.
            self._abandon_executions()
        finally:
            self.runtime.restore_environment()
            self._unpatch_lambda_seams()
            instance_refresh.use_timers(None)
            cloudformation.clear()
            if self._routed_queue is not None:
                sqs_event_source.route(self._routed_queue, None)
            stepfunctions.use_timekeeper(None)
            stepfunctions.use_instrument(None)
            events.use_bus(None)
            lambda_runtime.use_runtime(None)
            autoscaling.set_clock(RealClock())
            stepfunctions.use_limiter(None)
            rate_limits.uninstall_virtual_time()
            faults.uninstall()
            ecs_query.uninstall()
            self._mock.stop()
            self._mock = None
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _patch_lambda_seams(self) -> None:
        from drain_hook import clock as lambda_clock
        from drain_hook.adapters import clients, container_cache

        self._saved_utc_now = lambda_clock.utc_now
        lambda_clock.utc_now = self.clock.now  # the handler's only source of time
        # The Lambda's own session: every call it makes is counted (and faults injected) here,
        # and counts against the account's buckets; each execution environment gets its own
        # clients from it (lambda_runtime.EnvironmentSession).
        self.lambda_session = self.instrument.session(self.region)
        if self.rate_limits is not None:
            self.limiter.attach(self.lambda_session, "lambda")
        self.environment_session = EnvironmentSession(self.lambda_session)
        clients.use_session(self.environment_session)  # type: ignore[arg-type]
        # Each execution environment keeps its own reads, as separate containers do.
        container_cache.use_store(
            lambda: self._container_caches.setdefault(current_environment(), {})
        )
        # With POWERTOOLS_METRICS_DISABLED, Powertools keeps every metric instead of dropping
        # it at the end of a run, and prints the set each time one reaches 100 values: drop them.
        from drain_hook.observability import metrics

        flush = type(metrics).flush_metrics

        def flush_and_forget(raise_on_empty_metrics: bool = False) -> None:
            flush(metrics, raise_on_empty_metrics=raise_on_empty_metrics)
            metrics.clear_metrics()

        metrics.flush_metrics = flush_and_forget  # type: ignore[method-assign]

    def _unpatch_lambda_seams(self) -> None:
        from drain_hook import clock as lambda_clock
        from drain_hook.adapters import clients, container_cache

        if self._saved_utc_now is not None:
            lambda_clock.utc_now = self._saved_utc_now
        clients.use_session(None)
        container_cache.use_store(None)
        from drain_hook.observability import metrics

        metrics.__dict__.pop("flush_metrics", None)

    def _abandon_executions(self) -> None:
        if self.keeper.running == 0:
            return
        sfn = self.client("stepfunctions")
        # Every state machine's, not only the drain loop's (tests create their own).
        for machine in sfn.list_state_machines()["stateMachines"]:
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            ):
                for ex in page["executions"]:
                    sfn.stop_execution(executionArn=ex["executionArn"], cause="sandbox closed")
        # Wake parked Waits so their threads see the stop and end.
        for _ in range(100):
            if self.keeper.running == 0:
                break
            next_wake = self.keeper.next_wake()
            if next_wake is not None:
                self.clock.advance_to(next_wake)
                self.keeper.wake_due()
            time.sleep(0.01)

    def client(self, service: str) -> Any:
        """A plain boto3 client (not counted: only the handler's calls are measured)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    def account_client(self, service: str, config: Config | None = None) -> Any:
        """A boto3 client whose calls count against the account's rate limits, like any other
        caller in the account (not against the Lambda's call counts)."""
        session = boto3.session.Session(region_name=self.region)
        if self.rate_limits is not None:
            self.limiter.attach(session, "account")
        return session.client(service, config=config)

    # --- building the world ----------------------------------------------------------------

    def deploy(self, asg_names: list[str] | None = None, cluster_name: str | None = None) -> None:
        """Create what the template deploys: the Lambda (with its EventInvokeConfig and reserved
        concurrency), the state machine, every EventBridge rule that targets the Lambda (with
        its retry policy and dead-letter queue) and the queues they send to."""
        names = asg_names or list(self.groups)
        definition = self._definition or template.load(
            names,
            [HOOK_NAME],
            region=self.region,
            account_id=self.account_id,
            context=self._context,
        )
        clusters = sorted(set(self.groups.values()))
        definition = definition.with_groups(names, [HOOK_NAME]).with_clusters(
            clusters, template.SANDBOX_CONTEXT["cluster_name"]
        )
        iam = self.client("iam")
        role = iam.create_role(
            RoleName="ecs-drain-hook-sandbox",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        for queue in definition.queues:
            self.client("sqs").create_queue(QueueName=queue)
        self.state_machine_arn = (
            f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{STATE_MACHINE_NAME}"
        )
        env = {
            **{k: str(v) for k, v in definition.lambda_environment.items() if isinstance(v, str)},
            **self._lambda_env,
            "STATE_MACHINE_ARN": self.state_machine_arn,
        }
        if cluster_name or self.groups:
            env.setdefault("CLUSTER_NAME", cluster_name or next(iter(self.groups.values())))
        # What the construct wires in for the sweep and the Spot notices, with sandbox names.
        env.setdefault("HOOKED_GROUPS", json.dumps(names))
        env.setdefault("HOOK_NAME", HOOK_NAME)
        if definition.intake is not None:
            env.setdefault("INTAKE_QUEUE_URL", self._queue_url(definition.intake.queue))
        lam = self.client("lambda")
        fn = lam.create_function(
            FunctionName=FUNCTION_NAME,
            Runtime="python3.12",
            Role=role,
            Handler=HANDLER,
            Code={"ZipFile": _zip()},
            Timeout=definition.function_timeout or 60,
            MemorySize=definition.memory_size or 256,
            Environment={"Variables": env},
        )
        self.function_arn = fn["FunctionArn"]
        if definition.reserved_concurrency is not None:
            lam.put_function_concurrency(
                FunctionName=FUNCTION_NAME,
                ReservedConcurrentExecutions=definition.reserved_concurrency,
            )
        if definition.event_invoke_config is not None:
            lam.put_function_event_invoke_config(
                FunctionName=FUNCTION_NAME, **definition.event_invoke_config.as_api()
            )
        self.runtime.register(FUNCTION_NAME, self._handler, on_cold_start=_cold_start)
        self.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE_NAME,
            definition=definition.definition_for(self.function_arn),
            roleArn=role,
        )
        if definition.intake is not None:
            self.intake = self._intake_source(definition.intake)
            # The Lambda's own calls naming the intake queue (the sweep) reach it too.
            sqs_event_source.route(definition.intake.queue, self.intake)
            self._routed_queue = definition.intake.queue
        for rule in definition.rules_for(self.function_arn, self.state_machine_arn):
            self.put_rule(rule)
        self.definition = definition

    def publish_stack(self, stack_name: str = DEFAULT_ATTACH_STACK) -> None:
        """Describe the deployment as its CloudFormation stack would (DescribeStacks outputs
        the function's name and the state machine's ARN, as EcsDrainHook(outputs=True) adds
        them), so a client that finds the deployment by its stack (the ecs-drain-hook CLI)
        finds this one."""
        outputs = {
            OUTPUT_FUNCTION_NAME: FUNCTION_NAME,
            OUTPUT_STATE_MACHINE_ARN: self.state_machine_arn,
        }
        cloudformation.publish(stack_name, outputs, self.region)

    def _intake_source(self, spec: template.IntakeSpec) -> SqsEventSource:
        """The intake queue and its event source mapping on the drain function."""

        def invoke(function_name: str, payload: bytes) -> tuple[str, bytes]:
            backend = lambda_backend(self.account_id, self.region)
            return self.runtime.run_for_event_source(backend, function_name, payload)

        prefix = f"arn:aws:sqs:{self.region}:{self.account_id}"
        return SqsEventSource(
            queue_arn=f"{prefix}:{spec.queue}",
            function_name=FUNCTION_NAME,
            clock=self.clock,
            invoke=invoke,
            batch_size=spec.batch_size,
            max_concurrency=spec.max_concurrency,
            visibility_timeout_seconds=spec.visibility_timeout_seconds,
            max_receive_count=spec.max_receive_count,
            dead_letter_arn=f"{prefix}:{spec.dead_letter_queue}"
            if spec.dead_letter_queue
            else None,
            report_batch_item_failures=spec.report_batch_item_failures,
            seed=self.seed,
            scheduler=self.keeper,
            dead_letter_sink=lambda arn, body: events.send_to_sqs(arn, body),
        )

    def set_lambda_env(self, **values: str) -> None:
        """Change the function's environment (the next invocation is a cold start)."""
        lam = self.client("lambda")
        env = lam.get_function_configuration(FunctionName=FUNCTION_NAME)["Environment"]["Variables"]
        env.update(values)
        lam.update_function_configuration(
            FunctionName=FUNCTION_NAME, Environment={"Variables": env}
        )

    def add_cluster(
        self,
        cluster: str,
        instances: int = 3,
        *,
        asg_name: str | None = None,
        heartbeat_timeout: int = 300,
        default_result: str = "CONTINUE",
        cpu: int = 2048,
        memory: int = 4096,
        metadata: bool = True,
    ) -> str:
        """An ECS cluster backed by an Auto Scaling group with a termination hook."""
        asg_name = asg_name or f"{cluster}-asg"
        self.client("ecs").create_cluster(clusterName=cluster)
        asg = self.client("autoscaling")
        asg.create_launch_configuration(
            LaunchConfigurationName=f"{asg_name}-lc",
            ImageId="ami-12c6146b",
            InstanceType="m5.large",
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=asg_name,
            LaunchConfigurationName=f"{asg_name}-lc",
            MinSize=0,
            MaxSize=max(10, instances * 2),
            DesiredCapacity=instances,
            AvailabilityZones=[f"{self.region}a"],
        )
        hook: dict[str, Any] = {
            "AutoScalingGroupName": asg_name,
            "LifecycleHookName": HOOK_NAME,
            "LifecycleTransition": TERMINATING,
            "HeartbeatTimeout": heartbeat_timeout,
            "DefaultResult": default_result,
        }
        if metadata:
            hook["NotificationMetadata"] = json.dumps({"cluster": cluster})
        asg.put_lifecycle_hook(**hook)
        self.groups[asg_name] = cluster
        self._instance_resources[asg_name] = (cpu, memory)
        for iid in self.group_instances(asg_name):
            self.register_instance(cluster, iid, cpu=cpu, memory=memory)
        return asg_name

    def _register_when_in_service(self, asg_name: str, ec2_instance_id: str) -> None:
        """The ECS agent registers an instance once Auto Scaling reports it InService (with
        ECS_WARM_POOLS_CHECK=true, never while it sits in a warm pool): replacements and
        instances leaving the pool join the cluster this way."""
        cluster = self.groups.get(asg_name)
        if cluster is None:
            return
        known = self.sim.backend.container_instances.get(cluster, {}).values()
        if any(ci.ec2_instance_id == ec2_instance_id for ci in known):
            return
        cpu, memory = self._instance_resources.get(asg_name, (2048, 4096))
        self.register_instance(cluster, ec2_instance_id, cpu=cpu, memory=memory)

    def group_instances(self, asg_name: str, state: str | None = "InService") -> list[str]:
        group = self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[asg_name]
        )["AutoScalingGroups"][0]
        return sorted(
            i["InstanceId"]
            for i in group["Instances"]
            if state is None or i["LifecycleState"] == state
        )

    def register_instance(
        self, cluster: str, ec2_instance_id: str, cpu: int = 2048, memory: int = 4096
    ) -> str:
        if "ec2-resource" not in self._clients:  # one resource: building it costs ~50 ms
            self._clients["ec2-resource"] = boto3.resource("ec2", region_name=self.region)
        instance = self._clients["ec2-resource"].Instance(ec2_instance_id)
        doc = generate_instance_identity_document(instance)
        resources = [
            {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
        ]
        ci = self.client("ecs").register_container_instance(
            cluster=cluster,
            instanceIdentityDocument=json.dumps(doc),
            totalResources=resources,
        )["containerInstance"]
        return ci["containerInstanceArn"]

    def register_task_definition(self, family: str, cpu: int = 256, memory: int = 512) -> str:
        return self.client("ecs").register_task_definition(
            family=family,
            containerDefinitions=[
                {
                    "name": family,
                    "image": f"public.ecr.aws/sandbox/{family}:1",
                    "cpu": cpu,
                    "memory": memory,
                    "essential": True,
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]

    def create_service(
        self,
        cluster: str,
        name: str,
        family: str,
        desired: int = 2,
        *,
        minimum_healthy_percent: int = 100,
        maximum_percent: int = 200,
        daemon: bool = False,
    ) -> None:
        kwargs: dict[str, Any] = {
            "cluster": cluster,
            "serviceName": name,
            "taskDefinition": family,
            "launchType": "EC2",
        }
        if daemon:
            kwargs["schedulingStrategy"] = "DAEMON"
        else:
            kwargs["desiredCount"] = desired
            kwargs["deploymentConfiguration"] = {
                "minimumHealthyPercent": minimum_healthy_percent,
                "maximumPercent": maximum_percent,
            }
        self.client("ecs").create_service(**kwargs)

    def run_standalone(
        self, cluster: str, family: str, ec2_instance_id: str, exits_after: float | None = None
    ) -> str:
        return self.sim.run_standalone(cluster, family, ec2_instance_id, exits_after=exits_after)

    def add_fault(self, operation: str, kind: faults.FaultKind, **kwargs: Any) -> FaultRule:
        return self.instrument.add(FaultRule(operation, kind, **kwargs))

    # --- acting ----------------------------------------------------------------------------

    def scale_in_candidates(self, asg_name: str, count: int) -> list[str]:
        """The instances a scale-in by ``count`` will pick (InService, unprotected, oldest)."""
        group = autoscaling._backend(self.region, self.account_id).autoscaling_groups[asg_name]
        states = [
            s
            for s in group.instance_states
            if s.lifecycle_state == "InService" and not s.protected_from_scale_in
        ]
        return [s.instance.id for s in states[:count]]

    def scale_in(self, asg_name: str, desired: int) -> None:
        self.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=asg_name, DesiredCapacity=desired
        )

    def terminate(self, ec2_instance_id: str, decrement: bool = True) -> None:
        self.client("autoscaling").terminate_instance_in_auto_scaling_group(
            InstanceId=ec2_instance_id, ShouldDecrementDesiredCapacity=decrement
        )

    def put_event(self, event: dict[str, Any]) -> int:
        """Send an event to the bus (e.g. a duplicate delivery of a lifecycle event)."""
        return self.bus.put(event)

    def _on_lifecycle(self, kind: str, payload: Any) -> None:
        if kind == "event":
            self.bus.put(payload)
        elif kind == "instance_terminated":
            # Every EC2 instance the group terminates (held by hooks or not, pooled or not).
            self.terminated.append((self.clock.now(), payload.instance_id))
            self.sim.instance_terminated(payload.instance_id)
        elif kind == "in_service":
            for callback in list(self.in_service_listeners):
                callback(payload.asg_name, payload.instance_id)
        for listener in self.listeners:
            listener(kind, payload)

    def _deliver(self, function: str, event: dict[str, Any]) -> DeliveryError | None:
        """EventBridge invokes a Lambda target asynchronously; only the call itself can fail.
        A queue target (the intake queue) gets the event as its message body."""
        if self.intake is not None and function == self.intake.queue_arn:
            self.intake.send(json.dumps(event))
            return None
        if "lambda-delivery" not in self._clients:
            # One call per delivery attempt: EventBridge's retries are the bus's, not botocore's.
            self._clients["lambda-delivery"] = boto3.client(
                "lambda", region_name=self.region, config=Config(retries={"total_max_attempts": 1})
            )
        try:
            self._clients["lambda-delivery"].invoke(
                FunctionName=function, InvocationType="Event", Payload=json.dumps(event)
            )
        except ClientError as error:
            info = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            return DeliveryError(info.get("Code", "Unknown"), info.get("Message", ""), status)
        return None

    # --- ECS: events into EventBridge, agent connectivity (local_aws/ecs_sim.py) -------------

    def _wire_ecs(self) -> None:
        # ECS events go to EventBridge as AWS sends them ("Amazon ECS events").
        self.sim.event_sinks.append(self.bus.put)

    def disconnect_agent(self, ec2_instance_id: str) -> None:
        """The ECS agent on the instance loses its connection until `reconnect_agent`."""
        self.sim.disconnect_agent(ec2_instance_id)

    def reconnect_agent(self, ec2_instance_id: str) -> None:
        self.sim.reconnect_agent(ec2_instance_id)

    # --- the loop --------------------------------------------------------------------------

    def _step(self) -> bool:
        self.keeper.wait_quiet()
        progressed = self.sim.run_due()
        progressed |= bool(autoscaling.expire_due(region=self.region))
        progressed |= self.timers.run_due()
        progressed |= self._put_status_events()
        progressed |= self.bus.deliver_due(self._deliver)
        progressed |= self.runtime.run_due()
        if self.intake is not None:
            progressed |= self.intake.run_due()
        # Threads just started (executions, Lambda runs) park first: only then is the order of
        # the parked ones complete, and one of them (the earliest due) runs.
        self.keeper.wait_quiet()
        progressed |= self.keeper.wake_one() > 0
        return progressed

    def _waiting_actions(self) -> list[autoscaling.LifecycleAction]:
        return [a for a in autoscaling.lifecycle_actions(region=self.region) if a.active]

    def _next_time(self, include_ecs: bool) -> datetime | None:
        times = [
            self.keeper.next_wake(),
            self.bus.next_time(),
            self.runtime.next_time(),
            self.timers.next_time(),
            self.intake.next_time() if self.intake is not None else None,
        ]
        times += [min(a.heartbeat_deadline, a.global_deadline) for a in self._waiting_actions()]
        if include_ecs:
            times.append(self.sim.next_time())
        present = [t for t in times if t is not None]
        return min(present) if present else None

    def run(
        self,
        *,
        max_virtual_seconds: float = 72 * 3600,
        until: Callable[[], bool] | None = None,
        settle: bool = True,
    ) -> RunReport:
        """Run until no drain is in flight (or ``until()``), then let ECS settle."""
        wall0, virt0 = time.monotonic(), self.clock.elapsed()
        polls0 = len(self.runtime.invocations)
        while True:
            while self._step():
                pass
            if until is not None and until():
                break
            busy = (
                self.keeper.running
                or self.bus.pending
                or self.runtime.pending
                or (self.intake is not None and self.intake.pending)
                or self._waiting_actions()
            )
            if not busy:
                break
            nxt = self._next_time(include_ecs=True)
            if nxt is None or self.clock.elapsed() - virt0 > max_virtual_seconds:
                break
            self.clock.advance_to(nxt)
        if settle:
            self.settle()
        return self.report(wall0, virt0, polls0)

    def settle(self, max_virtual_seconds: float = 3600) -> None:
        """Advance until ECS has nothing left to do (tasks started, stops finished)."""
        start = self.clock.elapsed()
        while True:
            while self._step():
                pass
            # Standalone tasks exiting on their own are not "settling": don't wait for them.
            nxt = self.sim.next_time(include_exits=False)
            if nxt is None or self.clock.elapsed() - start > max_virtual_seconds:
                return
            self.clock.advance_to(nxt)

    def report(self, wall0: float = 0.0, virt0: float = 0.0, polls0: int = 0) -> RunReport:
        sfn = self.client("stepfunctions")
        executions, failed = 0, []
        if self.state_machine_arn:
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.state_machine_arn
            ):
                for ex in page["executions"]:
                    executions += 1
                    if ex["status"] in ("FAILED", "TIMED_OUT", "ABORTED"):
                        failed.append(ex["executionArn"])
        return RunReport(
            virtual_seconds=self.clock.elapsed() - virt0,
            wall_seconds=time.monotonic() - wall0,
            executions=executions,
            polls=len(self.runtime.invocations) - polls0,
            lifecycle_actions=autoscaling.lifecycle_actions(region=self.region),
            lost_tasks=list(self.sim.lost_tasks),
            calls=dict(self.instrument.calls),
            attempts=dict(self.instrument.attempts),
            failed_executions=failed,
            throttled=dict(self.limiter.throttled),
        )

    # --- EventBridge, Lambda async and Step Functions wiring (sandbox-sfn) -------------------
    # Rules live in moto (put_rule / put_targets, as CloudFormation would create them); the bus
    # delivers them on virtual time. Status-change events of Step Functions reach the bus
    # through the loop, in a repeatable order.

    def _wire_delivery(self) -> None:
        events.install()
        events.use_bus(self.bus)
        stepfunctions.use_instrument(self.instrument)
        self.bus.rule_source = lambda: events.moto_rules(self.region, self.account_id)
        self.bus.schedule_enabled = lambda name: events.rule_enabled(
            name, self.region, self.account_id
        )
        self.bus.dead_letter_sink = events.send_to_sqs
        self.runtime.destination_sink = lambda arn, body: events.send_to_sqs(arn, body)

    def put_rule(self, rule: template.RuleSpec, function_arn: str | None = None) -> None:
        """Create an EventBridge rule targeting the function (default: the drain Lambda)."""
        client = self.client("events")
        name = rule.name[:64]
        if rule.schedule:
            self._put_schedule(rule, name, function_arn or self.function_arn)
            return
        client.put_rule(
            Name=name,
            EventPattern=json.dumps(rule.pattern),
            State="ENABLED" if rule.enabled else "DISABLED",
            Description=rule.description,
        )
        arn = function_arn or self.function_arn
        if rule.target_queue is not None and self.intake is not None:
            arn = self.intake.queue_arn
        target: dict[str, Any] = {"Id": "Target0", "Arn": arn}
        if rule.retry_policy:
            target["RetryPolicy"] = rule.retry_policy
        if rule.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": rule.dead_letter_arn}
        client.put_targets(Rule=name, Targets=[target])

    def _put_status_events(self) -> bool:
        emitted = self.keeper.drain_status_events()
        for event in emitted:
            self.status_events.append(event)
            self.bus.put(event)
        return bool(emitted)

    def delay_events(self, pattern: dict[str, Any], seconds: float, count: int | None = 1) -> None:
        """Deliver the next ``count`` events matching ``pattern`` ``seconds`` late."""
        self.bus.delay_events(pattern, seconds, count)

    def lose_events(self, pattern: dict[str, Any], probability: float) -> None:
        """Lose this share of the events matching ``pattern`` (a best-effort source)."""
        self.bus.lose_events(pattern, probability)

    def create_function(
        self,
        name: str,
        handler: str,
        *,
        environment: dict[str, str] | None = None,
        timeout: int = 60,
        reserved_concurrency: int | None = None,
        invoke_config: dict[str, Any] | None = None,
    ) -> str:
        """Create a Lambda function (boto3) that runs ``handler`` ("package.module.function").

        ``invoke_config``: PutFunctionEventInvokeConfig arguments (MaximumRetryAttempts, ...).
        Returns the function's ARN.
        """
        lam = self.client("lambda")
        iam = self.client("iam")
        try:
            role = iam.get_role(RoleName="sandbox-functions")["Role"]["Arn"]
        except ClientError:
            role = iam.create_role(
                RoleName="sandbox-functions",
                AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
            )["Role"]["Arn"]
        arn = lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler=handler,
            Code={"ZipFile": _zip()},
            Timeout=timeout,
            Environment={"Variables": dict(environment or {})},
        )["FunctionArn"]
        if reserved_concurrency is not None:
            lam.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=reserved_concurrency
            )
        if invoke_config is not None:
            lam.put_function_event_invoke_config(FunctionName=name, **invoke_config)
        self.runtime.register(name, handler)
        return str(arn)

    # --- Auto Scaling: activities, warm pools, other termination hooks ---------------------
    # Modelled in local_aws's autoscaling, scaling_activities, warm_pools and other_hooks.

    def configure_autoscaling(self, **knobs: Any) -> autoscaling.Knobs:
        """Set Auto Scaling knobs (`autoscaling.Knobs`); the seed defaults to the sandbox's."""
        knobs.setdefault("seed", self.seed)
        return autoscaling.configure(region=self.region, **knobs)

    def scaling_activities(self, asg_name: str | None = None) -> list[dict[str, Any]]:
        """DescribeScalingActivities, every page (newest first, in-progress ones ahead)."""
        kwargs = {"AutoScalingGroupName": asg_name} if asg_name else {}
        pages = self.client("autoscaling").get_paginator("describe_scaling_activities")
        return [a for page in pages.paginate(**kwargs) for a in page["Activities"]]

    def drop_activities(self, instance_id: str | None = None) -> int:
        """Hide an instance's scaling activities (as if AWS had none); returns how many."""
        return autoscaling.drop_activities(instance_id, region=self.region)

    def put_warm_pool(
        self,
        asg_name: str,
        *,
        min_size: int = 0,
        max_group_prepared_capacity: int | None = None,
        pool_state: str = "Stopped",
        reuse_on_scale_in: bool = False,
    ) -> None:
        kwargs: dict[str, Any] = {
            "AutoScalingGroupName": asg_name,
            "MinSize": min_size,
            "PoolState": pool_state,
            "InstanceReusePolicy": {"ReuseOnScaleIn": reuse_on_scale_in},
        }
        if max_group_prepared_capacity is not None:
            kwargs["MaxGroupPreparedCapacity"] = max_group_prepared_capacity
        self.client("autoscaling").put_warm_pool(**kwargs)

    def pooled_instances(self, asg_name: str) -> dict[str, str]:
        """The group's warm pool instances -> Warmed:* state. Their ECS agent never registers."""
        return warm_pools.pooled_instances(asg_name, region=self.region)

    def on_in_service(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(asg_name, instance_id)`` when an instance goes InService.

        The hook point for ECS registration: with ECS_WARM_POOLS_CHECK=true the agent registers
        only once Auto Scaling reports the instance InService (never while it is pooled).
        """
        self.in_service_listeners.append(callback)

    def add_ecs_managed_draining(
        self,
        asg_name: str,
        cluster: str | None = None,
        *,
        heartbeat_timeout: int = 3600,
        default_result: str = "CONTINUE",
        **options: Any,
    ) -> other_hooks.EcsManagedDraining:
        """ECS managed instance draining's hook on the group, with ECS acting on it."""
        actor = other_hooks.EcsManagedDraining(
            asg_name=asg_name,
            cluster=cluster or self.groups[asg_name],
            timers=self.timers,
            clock=self.clock,
            region=self.region,
            **{"clients": self.client, **options},
        )
        actor.put_hook(heartbeat_timeout, default_result)
        actor.attach()
        self.hook_actors.append(actor)
        return actor

    def add_cdk_drain_hook(
        self,
        asg_name: str,
        cluster: str | None = None,
        *,
        drain_seconds: int = 300,
        **options: Any,
    ) -> other_hooks.CdkDrainHook:
        """aws-cdk-lib's legacy LifecycleHookDrainHook on the group, with its Lambda acting."""
        actor = other_hooks.CdkDrainHook(
            asg_name=asg_name,
            cluster=cluster or self.groups[asg_name],
            timers=self.timers,
            clock=self.clock,
            region=self.region,
            drain_seconds=drain_seconds,
            **{"clients": self.client, **options},
        )
        actor.put_hook()
        actor.attach()
        self.hook_actors.append(actor)
        return actor

    # --- Lost events, Spot interruptions, group deletion, instance retention -----------------
    # (local_aws/autoscaling.py knobs, local_aws/spot.py, local_aws/events.py schedules)

    def _queue_url(self, queue: str) -> str:
        return f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{queue}"

    def _put_schedule(self, rule: template.RuleSpec, name: str, function_arn: str) -> None:
        """A scheduled rule (the sweep's): created in moto, run by the bus on virtual time."""
        client = self.client("events")
        assert rule.schedule is not None
        arn = client.put_rule(
            Name=name,
            ScheduleExpression=rule.schedule,
            State="ENABLED" if rule.enabled else "DISABLED",
            Description=rule.description,
        )["RuleArn"]
        target: dict[str, Any] = {"Id": "Target0", "Arn": function_arn}
        if rule.retry_policy:
            target["RetryPolicy"] = rule.retry_policy
        if rule.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": rule.dead_letter_arn}
        client.put_targets(Rule=name, Targets=[target])
        if rule.enabled:
            self.bus.add_schedule(
                events.Rule(
                    name=name,
                    pattern={},
                    target_function=function_arn.split(":function:", 1)[-1].split(":")[0],
                    retry_policy=events.RetryPolicy.from_api(rule.retry_policy),
                    dead_letter_arn=rule.dead_letter_arn,
                    arn=arn,
                    target_arn=function_arn,
                ),
                rule.schedule,
            )

    def disable_sweep(self) -> None:
        """DisableRule on the scheduled rules the deployment made (the sweep's): as an operator
        could, so a test sees a path the sweep would otherwise cut short."""
        client = self.client("events")
        for rule in client.list_rules()["Rules"]:
            if rule.get("ScheduleExpression"):
                client.disable_rule(Name=rule["Name"])

    def lose_lifecycle_events(self, probability: float) -> None:
        """Auto Scaling sends this share of its lifecycle events nowhere (best effort; seeded)."""
        self.configure_autoscaling(event_drop_probability=probability)

    def make_spot(self, ec2_instance_id: str) -> str:
        """The instance runs as a Spot instance (a fulfilled Spot request); returns its id."""
        return self.spot.make_spot(ec2_instance_id)

    def interrupt_spot(self, ec2_instance_id: str, action: str = "terminate") -> Any:
        """EC2's interruption notice for a Spot instance now; EC2 takes it two minutes on."""
        return self.spot.interrupt(ec2_instance_id, action)

    def rebalance_capacity(self, asg_name: str, on: bool = True) -> None:
        """UpdateAutoScalingGroup CapacityRebalance: only such a group acts on a Spot notice
        before EC2 takes the instance (local_aws.spot)."""
        self.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=asg_name, CapacityRebalance=on
        )

    def _spot_group_termination(self, ec2_instance_id: str) -> None:
        """A group with Capacity Rebalancing starts terminating an instance it was told is going
        (SpotOptions): a replacement is launched, the termination hooks hold it."""
        autoscaling.replace_instance(
            ec2_instance_id,
            "an instance was taken out of service in response to an EC2 Spot interruption notice.",
            region=self.region,
        )

    def delete_group(self, asg_name: str, *, force: bool = True) -> None:
        """DeleteAutoScalingGroup (with ForceDelete by default, as a stack deletion needs)."""
        self.client("autoscaling").delete_auto_scaling_group(
            AutoScalingGroupName=asg_name, ForceDelete=force
        )

    def retain_on_abandon(self, asg_name: str) -> None:
        """Give the group the instance lifecycle policy that retains on TerminateHookAbandon."""
        self.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=asg_name,
            InstanceLifecyclePolicy={"RetentionTriggers": {"TerminateHookAbandon": "retain"}},
        )

    def lifecycle_state(self, ec2_instance_id: str) -> str | None:
        found = self.client("autoscaling").describe_auto_scaling_instances(
            InstanceIds=[ec2_instance_id]
        )["AutoScalingInstances"]
        return found[0]["LifecycleState"] if found else None

    # --- Soak conveniences (soak/): call and fault logs, fault windows, running to a time ------
    # Records the randomized soak (soak/) checks its invariants on. Nothing here changes what
    # AWS does: the logs only watch, and fault windows add / remove ordinary FaultRules on the
    # virtual clock.

    def record_calls(self) -> list[CallRecord]:
        """Log every AWS call of the Lambda (scope "lambda") and of the state machine's own
        aws-sdk / lambda:invoke calls (scope "states"): time, operation, parameters, the index
        of the Lambda run it belongs to (`runtime.invocations`), and how it ended after
        botocore's retries. Idempotent; returns the live list."""
        if self._call_log is not None:
            return self._call_log
        log: list[CallRecord] = []
        self._call_log = log
        self._watch_session(self.lambda_session, "lambda")
        from drain_hook.adapters import clients

        clients.client.cache_clear()  # clients made from now on carry the handlers
        original = self.instrument.session

        def session(region: str = self.region, scope: str = "lambda") -> Any:
            made = original(region, scope)
            self._watch_session(made, scope)
            return made

        self.instrument.session = session  # type: ignore[method-assign]
        stepfunctions.use_instrument(self.instrument)  # the state machine's sessions, afresh
        return log

    def _watch_session(self, session: Any, scope: str) -> None:
        def before(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            invocation = lambda_runtime.current_invocation() if scope == "lambda" else None
            record = CallRecord(
                at=self.clock.now(),
                scope=scope,
                operation=f"{model.service_model.service_name}:{model.name}",
                params=dict(params),
                invocation=invocation,
            )
            context["sandbox_call"] = record
            assert self._call_log is not None
            self._call_log.append(record)

        def after(http_response: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
            record = context.get("sandbox_call")
            if record is None:
                return
            record.ok = http_response.status_code < 300
            record.ended_at = self.clock.now()
            if not record.ok:
                record.error = str((parsed or {}).get("Error", {}).get("Code", "Unknown"))

        def failed(context: dict[str, Any], exception: Exception, **_: Any) -> None:
            record = context.get("sandbox_call")
            if record is not None and record.ok is None:
                record.ok, record.error = False, type(exception).__name__
                record.ended_at = self.clock.now()

        session.events.register("provide-client-params", before)
        session.events.register("after-call", after)
        session.events.register("after-call-error", failed)

    def record_faults(self) -> list[FaultRecord]:
        """Log every fault the instrument injects (time, operation, kind, error name).
        Idempotent; returns the live list."""
        if self._fault_log is not None:
            return self._fault_log
        log: list[FaultRecord] = []
        self._fault_log = log
        original = self.instrument.decide

        def decide(operation: str, kinds: tuple[str, ...]) -> FaultRule | None:
            rule = original(operation, kinds)
            if rule is not None:
                log.append(FaultRecord(self.clock.now(), operation, rule.kind, rule.error))
            return rule

        self.instrument.decide = decide  # type: ignore[method-assign]
        return log

    def add_fault_window(
        self, operation: str, kind: faults.FaultKind, start: float, end: float | None, **kwargs: Any
    ) -> FaultRule:
        """A FaultRule in force from ``start`` to ``end`` virtual seconds from now (None: for
        good): an outage of that operation, e.g. the Lambda failing past every retry."""
        rule = FaultRule(operation, kind, **kwargs)

        def begin() -> None:
            with self.instrument._lock:
                self.instrument.rules.append(rule)

        def finish() -> None:
            with self.instrument._lock:
                if rule in self.instrument.rules:
                    self.instrument.rules.remove(rule)

        self.timers.call_later(start, begin, name=f"fault window on {operation}")
        if end is not None:
            self.timers.call_later(end, finish, name=f"fault window off {operation}")
        return rule

    def advance(self, until: datetime) -> None:
        """Run everything (ECS, deliveries, executions, lifecycle timers, actor timers) until
        the virtual clock reaches ``until``, even while no drain is in flight."""
        while True:
            while self._step():
                pass
            now = self.clock.now()
            if now >= until:
                return
            nxt = self._next_time(include_ecs=True)
            self.clock.advance_to(until if nxt is None else min(nxt, until))


@dataclass
class CallRecord:
    """One AWS API call (`Sandbox.record_calls`); ok/error once botocore's retries are over."""

    at: datetime
    scope: str  # "lambda": the drain Lambda; "states": the state machine's own calls
    operation: str  # "<service>:<Operation>", e.g. "ecs:StopTask"
    params: dict[str, Any]
    invocation: int | None  # index in runtime.invocations of the Lambda run making the call
    ok: bool | None = None
    error: str | None = None
    # When the last attempt answered: back-off and call latency pass on virtual time.
    ended_at: datetime | None = None


@dataclass(frozen=True)
class FaultRecord:
    """One injected fault (`Sandbox.record_faults`)."""

    at: datetime
    operation: str
    kind: str
    error: str | None
