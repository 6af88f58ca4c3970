"""ListContainerInstances' ec2InstanceId filter: honoured inside a Sandbox, moto's outside it."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from moto.ec2.utils import generate_instance_identity_document

from local_aws import ecs_query
from local_aws.sandbox import Sandbox


def _arns_by_ec2_id(ecs: object, cluster: str) -> dict[str, str]:
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]  # type: ignore[attr-defined]
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)  # type: ignore[attr-defined]
    return {
        ci["ec2InstanceId"]: ci["containerInstanceArn"] for ci in described["containerInstances"]
    }


def _listed(ecs: object, cluster: str, expression: str, **extra: str) -> list[str]:
    return ecs.list_container_instances(cluster=cluster, filter=expression, **extra)[  # type: ignore[attr-defined]
        "containerInstanceArns"
    ]


@pytest.mark.parametrize("spacing", ["ec2InstanceId == {}", "ec2InstanceId=={}"])
def test_filter_honoured_in_sandbox_and_ignored_after(spacing: str) -> None:
    with Sandbox() as sb:
        sb.add_cluster("c1", instances=3)
        sb.add_cluster("c2", instances=2)
        ecs = sb.client("ecs")
        by_id = _arns_by_ec2_id(ecs, "c1")
        assert len(by_id) == 3
        target = sorted(by_id)[1]
        assert _listed(ecs, "c1", spacing.format(target)) == [by_id[target]]
        # Same filter, another cluster, or a status the instance is not in: nothing.
        assert _listed(ecs, "c2", spacing.format(target)) == []
        assert _listed(ecs, "c1", spacing.format(target), status="DRAINING") == []
        # Forms not implemented stay unfiltered, as moto leaves them.
        assert sorted(_listed(ecs, "c1", f"ec2InstanceId in ['{target}']")) == sorted(
            by_id.values()
        )
        assert sorted(_listed(ecs, "c1", "attribute:ecs.os-type == linux")) == sorted(
            by_id.values()
        )
    assert not ecs_query.installed()

    # After the Sandbox closed: moto's own behaviour, the filter ignored.
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        ec2 = boto3.resource("ec2", region_name="us-east-1")
        ecs.create_cluster(clusterName="c")
        for instance in ec2.create_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2):
            ecs.register_container_instance(
                cluster="c",
                instanceIdentityDocument=json.dumps(generate_instance_identity_document(instance)),
            )
        by_id = _arns_by_ec2_id(ecs, "c")
        target = sorted(by_id)[0]
        assert sorted(_listed(ecs, "c", spacing.format(target))) == sorted(by_id.values())


def test_install_nests() -> None:
    ecs_query.install()
    ecs_query.install()
    ecs_query.uninstall()
    assert ecs_query.installed()
    ecs_query.uninstall()
    assert not ecs_query.installed()
    ecs_query.uninstall()  # one too many: harmless
    assert not ecs_query.installed()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("ec2InstanceId == i-0123456789abcdef0", "i-0123456789abcdef0"),
        ("ec2InstanceId==i-0123abcd", "i-0123abcd"),
        ("  ec2InstanceId   ==  i-0123abcd  ", "i-0123abcd"),
        ("ec2InstanceId != i-0123abcd", None),
        ("ec2InstanceId == i-1 and runningTasksCount == 0", None),
        ("attribute:ecs.instance-type == t3.micro", None),
        ("", None),
        (None, None),
    ],
)
def test_parse(expression: str | None, expected: str | None) -> None:
    assert ecs_query.parse_ec2_instance_id(expression) == expected
