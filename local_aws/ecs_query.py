"""ListContainerInstances' ``filter`` (cluster query language), for the one form the drain uses.

Real ECS evaluates ``filter`` ("ec2InstanceId == i-0123456789abcdef0") and lists only the
matching container instances; moto 5.2.5 ignores the parameter and lists the whole cluster.
While installed (`install`, done by `local_aws.sandbox.Sandbox` on enter), an equality on
``ec2InstanceId`` is honoured, written with or without spaces around ``==``. Any other
expression (other attributes, ``in``, ``=~``, ``and``/``or``, ...) is left unfiltered, as moto
does: the caller gets every instance of the status asked for.

`uninstall` (the Sandbox's exit) restores moto's behaviour, so code outside a Sandbox (the
Lambda's own tests, which prove the Lambda is right when the filter is ignored) sees moto's.
Install and uninstall nest: only the outermost uninstall restores.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from moto.ecs import responses as ecs_responses

_EC2_INSTANCE_ID_EQUALS = re.compile(r"^\s*ec2InstanceId\s*==\s*(\S+)\s*$")
_lock = threading.Lock()
_depth = 0
_original: Any = None


def parse_ec2_instance_id(expression: str | None) -> str | None:
    """The instance id of an ``ec2InstanceId == <id>`` expression; None for anything else."""
    if not expression:
        return None
    match = _EC2_INSTANCE_ID_EQUALS.match(expression)
    return match.group(1) if match else None


def _filtered(original: Any) -> Any:
    def list_container_instances(self: Any) -> Any:
        result = original(self)
        ec2_instance_id = parse_ec2_instance_id(self._get_param("filter"))
        if ec2_instance_id is None:
            return result  # no filter, or a form not implemented: unfiltered, as moto does
        cluster_name = self._get_param("cluster", "default").split("/")[-1]
        matching = {
            ci.container_instance_arn
            for ci in self.ecs_backend.container_instances.get(cluster_name, {}).values()
            if ci.ec2_instance_id == ec2_instance_id
        }
        body = result.result
        body["containerInstanceArns"] = [
            arn for arn in body["containerInstanceArns"] if arn in matching
        ]
        return result

    list_container_instances.__wrapped__ = original  # type: ignore[attr-defined]
    return list_container_instances


def install() -> None:
    """Honour ``ec2InstanceId == <id>`` in ListContainerInstances until `uninstall`."""
    global _depth, _original
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        cls = ecs_responses.EC2ContainerServiceResponse
        _original = cls.list_container_instances
        cls.list_container_instances = _filtered(_original)  # type: ignore[method-assign]


def uninstall() -> None:
    """Undo `install` (the outermost one): ListContainerInstances ignores ``filter`` again."""
    global _depth, _original
    with _lock:
        if _depth == 0:
            return
        _depth -= 1
        if _depth > 0:
            return
        ecs_responses.EC2ContainerServiceResponse.list_container_instances = _original  # type: ignore[method-assign]
        _original = None


def installed() -> bool:
    return _depth > 0
