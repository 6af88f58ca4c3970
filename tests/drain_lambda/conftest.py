"""A moto world for the drain Lambda: a cluster, an Auto Scaling group with a termination hook,
container instances, tasks, and the wait-loop state machine.

moto lacks lifecycle actions and non-ACTIVE container instance states: local_aws adds them,
written to the AWS docs. moto also advances a task's lastStatus on every DescribeTasks, which
would make "a task that is still STOPPING" impossible to hold still, so that is frozen here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import boto3
import pytest
from moto import mock_aws
from moto.ecs import models as ecs_models
from moto.moto_api import state_manager

from local_aws import autoscaling as lifecycle
from local_aws import ecs_states, template
from local_aws.clock import RealClock, VirtualClock
from local_aws.ecs_sim import EcsSimulator
from tests.conftest import ACCOUNT, REGION, STATE_MACHINE_ARN

HOOK = "drain-hook"


class FakeContext:
    function_name = "ecs-drain-hook"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecs-drain-hook"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


@dataclass
class World:
    ecs: Any
    autoscaling: Any
    ec2: Any
    sfn: Any
    clock: VirtualClock
    calls: list[str]
    lambda_session: Any
    task_definition: str = ""
    services: dict[str, str] = field(default_factory=dict)

    # --- building -------------------------------------------------------------------------
    def cluster(self, name: str) -> str:
        return self.ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]

    def group(
        self, name: str, size: int, *, cluster: str | None = None, heartbeat: int = 300
    ) -> list[str]:
        """An Auto Scaling group with a termination hook; returns its EC2 instance ids."""
        self.autoscaling.create_launch_configuration(
            LaunchConfigurationName=f"{name}-lc", ImageId="ami-12c6146b", InstanceType="t3.micro"
        )
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchConfigurationName=f"{name}-lc",
            MinSize=0,
            MaxSize=max(size, 1) * 2,
            DesiredCapacity=size,
            AvailabilityZones=[f"{REGION}a"],
        )
        metadata = {"NotificationMetadata": json.dumps({"cluster": cluster})} if cluster else {}
        self.autoscaling.put_lifecycle_hook(
            AutoScalingGroupName=name,
            LifecycleHookName=HOOK,
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            HeartbeatTimeout=heartbeat,
            DefaultResult="CONTINUE",
            **metadata,
        )
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        return [i["InstanceId"] for i in groups["AutoScalingGroups"][0]["Instances"]]

    def register(self, cluster: str, instance_id: str) -> str:
        """Register the EC2 instance as a container instance (as the ECS agent would)."""
        from moto.ec2.utils import generate_instance_identity_document

        reservation = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
        item = reservation["Instances"][0]

        class _Instance:
            id = instance_id
            placement = item["Placement"]
            private_ip_address = item.get("PrivateIpAddress")
            instance_type = item["InstanceType"]
            image_id = item["ImageId"]
            kernel_id = None
            ramdisk_id = None
            architecture = "x86_64"

        document = json.dumps(generate_instance_identity_document(_Instance))
        response = self.ecs.register_container_instance(
            cluster=cluster, instanceIdentityDocument=document
        )
        return response["containerInstance"]["containerInstanceArn"]

    def standalone_instances(self, count: int) -> list[str]:
        """Plain EC2 instances (not in any group), e.g. to fill a cluster."""
        response = self.ec2.run_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count)
        return [i["InstanceId"] for i in response["Instances"]]

    def service(self, cluster: str, name: str, daemon: bool = False) -> None:
        self.ecs.create_service(
            cluster=cluster,
            serviceName=name,
            taskDefinition=self.task_definition,
            desiredCount=0 if daemon else 2,
            schedulingStrategy="DAEMON" if daemon else "REPLICA",
        )

    def run_tasks(
        self, cluster: str, container_instance: str, count: int, *, group: str = "family:batch"
    ) -> list[str]:
        """Place tasks on one container instance. group "service:NAME" marks service tasks."""
        arns: list[str] = []
        while len(arns) < count:
            batch = min(10, count - len(arns))
            response = self.ecs.start_task(
                cluster=cluster,
                taskDefinition=self.task_definition,
                containerInstances=[container_instance] * batch,
                group=group,
                startedBy="ecs-svc/1234" if group.startswith("service:") else "tests",
            )
            arns.extend(task["taskArn"] for task in response["tasks"])
        for arn in arns:
            self.set_task(cluster, arn, last="RUNNING", desired="RUNNING")
        return arns

    def set_task(self, cluster: str, arn: str, *, last: str, desired: str) -> None:
        """Put a task in a given state (ECS would get there through its own lifecycle)."""
        task = ecs_models.ecs_backends[ACCOUNT][REGION].tasks[cluster][arn]
        task.last_status = last
        task.desired_status = desired

    def instance_status(self, cluster: str, arn: str) -> str:
        response = self.ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])
        return response["containerInstances"][0]["status"]

    def answer_once(self, service: str, operation: str, parsed: dict[str, Any]) -> None:
        """The Lambda's next `operation` call gets this answer instead of moto's (used for
        answers moto never gives, e.g. a `failures` entry from UpdateContainerInstancesState)."""
        from drain_hook.adapters import clients

        events = clients.client(service).meta.events  # the very client the Lambda uses
        event = f"before-call.{service}.{operation}"

        class _Http:
            status_code = 200
            headers: ClassVar[dict[str, str]] = {}

        def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
            events.unregister(event, answer)
            return _Http(), parsed

        events.register(event, answer)

    def writes(self) -> list[str]:
        """The Lambda's calls that change something (anything but Describe/List/Get)."""
        reads = ("Describe", "List", "Get")
        return [call for call in self.calls if not call.split(":")[1].startswith(reads)]

    def executions(self) -> list[dict[str, Any]]:
        return self.sfn.list_executions(stateMachineArn=STATE_MACHINE_ARN)["executions"]

    def lifecycle_state(self, instance_id: str) -> str | None:
        found = self.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
        instances = found["AutoScalingInstances"]
        return instances[0]["LifecycleState"] if instances else None


@pytest.fixture
def world(lambda_env, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    lambda_env()
    clock = VirtualClock()
    # One virtual clock for the Lambda and for Auto Scaling's hook timers.
    monkeypatch.setattr("drain_hook.clock.utc_now", clock.now)
    with mock_aws():
        lifecycle.install(clock=clock)
        ecs_states.install()
        # ECS's API as documented (paging, limits, ClusterNotFoundException, task counts),
        # with no scheduler running: tasks move only when a test moves them.
        EcsSimulator(clock, region=REGION, account_id=ACCOUNT)
        # Hold task statuses still: they change only when a test (or ECS in the sandbox) says so.
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
        from drain_hook.adapters import clients

        # The Lambda's own clients come from a session that records every call it makes.
        calls: list[str] = []
        lambda_session = boto3.session.Session(region_name=REGION)
        lambda_session.events.register(
            "before-call.*.*",
            lambda model, **_: calls.append(f"{model.service_model.service_name}:{model.name}"),
        )
        clients.use_session(lambda_session)
        session = boto3.session.Session(region_name=REGION)
        iam = session.client("iam")
        role = iam.create_role(
            RoleName="sfn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
        )["Role"]["Arn"]
        sfn = session.client("stepfunctions")
        # The ASL file with its substitutions made as the sandbox makes them.
        definition = template.from_asl_file([], []).definition_for(
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecs-drain-hook"
        )
        sfn.create_state_machine(name="ecs-drain-hook-loop", definition=definition, roleArn=role)
        world = World(
            ecs=session.client("ecs"),
            autoscaling=session.client("autoscaling"),
            ec2=session.client("ec2"),
            sfn=sfn,
            clock=clock,
            calls=calls,
            lambda_session=lambda_session,
        )
        world.task_definition = world.ecs.register_task_definition(
            family="app",
            containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
        )["taskDefinition"]["taskDefinitionArn"]
        yield world
        clients.use_session(None)
        state_manager.unset_transition("ecs::task")
        lifecycle.set_clock(RealClock())


@pytest.fixture
def handler():
    """The real Lambda entry point, called as Lambda would call it."""
    from drain_hook.handler import lambda_handler

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return lambda_handler(event, FakeContext())

    return invoke


def begin_termination(asg_name: str, instance_id: str) -> dict[str, Any]:
    """Put the instance in Terminating:Wait; return the EventBridge event Auto Scaling emits."""
    return lifecycle.begin_termination(asg_name, instance_id, HOOK)


def wait_as_the_loop_does(world: World, state: dict[str, Any]) -> None:
    """What the state machine does between two polls: wait `wait_seconds`, recording a lifecycle
    heartbeat every `heartbeat_plan.every` seconds when the state asks for it (its ASL)."""
    plan = state.get("heartbeat_plan")
    if not plan or not state.get("asg_name"):
        world.clock.advance(state["wait_seconds"])
        return
    for _ in range(plan["count"]):
        world.clock.advance(plan["every"])
        try:
            world.autoscaling.record_lifecycle_action_heartbeat(
                AutoScalingGroupName=state["asg_name"],
                LifecycleHookName=state["hook_name"],
                InstanceId=state["instance_id"],
            )
        except world.autoscaling.exceptions.ClientError:
            return  # the action is over: the state machine polls at once
    world.clock.advance(plan["then"])
