"""Container instance states moto lacks, against the ECS API reference."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.ec2.utils import generate_instance_identity_document

from local_aws.ecs_states import set_container_instance_status

pytestmark = pytest.mark.usefixtures("aws")


def _register(ecs: object, cluster: str) -> str:
    ec2 = boto3.resource("ec2", region_name="us-east-1")
    instance = ec2.create_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)[0]
    doc = generate_instance_identity_document(instance)
    resp = ecs.register_container_instance(  # type: ignore[attr-defined]
        cluster=cluster, instanceIdentityDocument=json.dumps(doc)
    )
    return resp["containerInstance"]["containerInstanceArn"]


@pytest.mark.parametrize("status", ["REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED"])
def test_non_active_instance_cannot_be_drained(status: str) -> None:
    ecs = boto3.client("ecs", region_name="us-east-1")
    ecs.create_cluster(clusterName="c")
    arn = _register(ecs, "c")
    ok = _register(ecs, "c")
    set_container_instance_status("c", arn, status)
    resp = ecs.update_container_instances_state(
        cluster="c", containerInstances=[arn, ok], status="DRAINING"
    )
    assert [ci["containerInstanceArn"] for ci in resp["containerInstances"]] == [ok]
    assert [f["arn"] for f in resp["failures"]] == [arn]
    desc = ecs.describe_container_instances(cluster="c", containerInstances=[arn])
    assert desc["containerInstances"][0]["status"] == status


def test_status_by_ec2_instance_id_and_inactive_hidden_from_default_list() -> None:
    ecs = boto3.client("ecs", region_name="us-east-1")
    ecs.create_cluster(clusterName="c")
    arn = _register(ecs, "c")
    ec2_id = ecs.describe_container_instances(cluster="c", containerInstances=[arn])[
        "containerInstances"
    ][0]["ec2InstanceId"]
    set_container_instance_status("c", ec2_id, "INACTIVE")
    assert ecs.list_container_instances(cluster="c")["containerInstanceArns"] == []
    # Still describable; and INACTIVE is no status ListContainerInstances takes (API reference,
    # ListContainerInstances `status`; botocore shape ContainerInstanceStatus).
    described = ecs.describe_container_instances(cluster="c", containerInstances=[arn])
    assert described["containerInstances"][0]["status"] == "INACTIVE"
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_container_instances(cluster="c", status="INACTIVE")
