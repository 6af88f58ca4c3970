"""PutAttributes / DeleteAttributes on container instances, against the API reference
(PutAttributes, DeleteAttributes, Attribute, TargetType, AttributeLimitExceededException,
TargetNotFoundException, ContainerInstance.attributes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.sandbox import Sandbox

CI = "container-instance"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=7) as box:
        box.add_cluster("c", instances=2)
        yield box


def _arns(sb: Sandbox) -> list[str]:
    return sorted(sb.client("ecs").list_container_instances(cluster="c")["containerInstanceArns"])


def _attributes(sb: Sandbox, arn: str) -> dict[str, str | None]:
    ci = sb.client("ecs").describe_container_instances(cluster="c", containerInstances=[arn])[
        "containerInstances"
    ][0]
    return {a["name"]: a.get("value") for a in ci["attributes"]}


def _error(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


def test_custom_attributes_show_in_describe_beside_the_agents(sb: Sandbox) -> None:
    ecs = sb.client("ecs")
    arn, other = _arns(sb)
    resp = ecs.put_attributes(
        cluster="c",
        attributes=[
            {"name": "stack", "value": "blue", "targetId": arn},
            {"name": "drain-hook/ok", "targetId": arn.split("/")[-1], "targetType": CI},
        ],
    )
    assert [a["name"] for a in resp["attributes"]] == ["stack", "drain-hook/ok"]
    attributes = _attributes(sb, arn)
    assert attributes["stack"] == "blue" and attributes["drain-hook/ok"] is None
    assert "ecs.instance-type" in attributes  # the agent's own stay
    assert "stack" not in _attributes(sb, other)
    ecs.put_attributes(
        cluster="c", attributes=[{"name": "stack", "value": "green", "targetId": arn}]
    )
    assert _attributes(sb, arn)["stack"] == "green"  # Put replaces
    ecs.delete_attributes(cluster="c", attributes=[{"name": "stack", "targetId": arn}])
    assert "stack" not in _attributes(sb, arn)  # Delete by name, no value needed
    ecs.delete_attributes(cluster="c", attributes=[{"name": "never-set", "targetId": arn}])


def test_at_most_ten_custom_attributes_per_instance(sb: Sandbox) -> None:
    ecs = sb.client("ecs")
    arn, other = _arns(sb)
    ten = [{"name": f"a{i}", "value": "v", "targetId": arn} for i in range(10)]
    ecs.put_attributes(cluster="c", attributes=ten)
    ecs.put_attributes(cluster="c", attributes=ten[:1])  # replacing one is not an eleventh
    eleventh = [
        {"name": "b0", "value": "v", "targetId": other},
        {"name": "a10", "value": "v", "targetId": arn},
    ]
    assert _error(lambda: ecs.put_attributes(cluster="c", attributes=eleventh)) == (
        "AttributeLimitExceededException"
    )
    assert "b0" not in _attributes(sb, other)  # nothing of a refused call is applied
    ecs.delete_attributes(cluster="c", attributes=[{"name": "a0", "targetId": arn}])
    ecs.put_attributes(cluster="c", attributes=eleventh)
    assert "a10" in _attributes(sb, arn)


def test_at_most_ten_attributes_a_call(sb: Sandbox) -> None:
    arn = _arns(sb)[0]
    eleven = [{"name": f"a{i}", "value": "v", "targetId": arn} for i in range(11)]
    ecs = sb.client("ecs")
    assert _error(lambda: ecs.put_attributes(cluster="c", attributes=eleven)) == (
        "InvalidParameterException"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("has space", "v"),
        ("x" * 129, "v"),
        ("ok", "x" * 129),
        ("ok", " leading"),
        ("ok", "trailing "),
        ("ok", "hash#"),
        ("star*", "v"),
    ],
)
def test_invalid_names_and_values_are_refused(sb: Sandbox, name: str, value: str) -> None:
    arn = _arns(sb)[0]
    ecs = sb.client("ecs")
    attributes = [{"name": name, "value": value, "targetId": arn}]
    assert _error(lambda: ecs.put_attributes(cluster="c", attributes=attributes)) == (
        "InvalidParameterException"
    )


def test_every_documented_character_is_accepted(sb: Sandbox) -> None:
    arn = _arns(sb)[0]
    name, value = "Az09-_/\\." + "n" * 119, "Az09-_.@/\\: x" + "v" * 115
    assert (len(name), len(value)) == (128, 128)
    sb.client("ecs").put_attributes(
        cluster="c", attributes=[{"name": name, "value": value, "targetId": arn}]
    )
    assert _attributes(sb, arn)[name] == value


def test_targets(sb: Sandbox) -> None:
    arn = _arns(sb)[0]
    short = arn.split("/")[-1]
    ecs = sb.client("ecs")

    def put(**target: str) -> Callable[[], Any]:
        return lambda: ecs.put_attributes(cluster="c", attributes=[{"name": "a", **target}])

    assert _error(put(targetId=short)) == "InvalidParameterException"  # short id needs the type
    assert _error(put(targetId=arn, targetType="task")) == "InvalidParameterException"
    assert _error(put(targetId="0123abcd", targetType=CI)) == "TargetNotFoundException"
    sb.add_cluster("other", instances=1)
    elsewhere = sb.client("ecs").list_container_instances(cluster="other")
    assert _error(put(targetId=elsewhere["containerInstanceArns"][0])) == "TargetNotFoundException"
    put(targetId=short, targetType=CI)()
    assert "a" in _attributes(sb, arn)


def test_cluster_defaults_to_default_and_must_exist(sb: Sandbox) -> None:
    ecs = sb.client("ecs")
    attributes = [{"name": "a", "targetId": _arns(sb)[0]}]
    assert _error(lambda: ecs.put_attributes(attributes=attributes)) == "ClusterNotFoundException"
    assert (
        _error(lambda: ecs.delete_attributes(attributes=attributes)) == "ClusterNotFoundException"
    )
