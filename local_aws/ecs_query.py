"""ListContainerInstances' ``filter`` (cluster query language), for the one form the drain uses.

Real ECS evaluates ``filter`` ("ec2InstanceId == i-0123456789abcdef0") and lists only the
matching container instances; moto 5.2.5 ignores the parameter and lists the whole cluster.
While installed (`install`, done by `local_aws.sandbox.Sandbox` on enter), an equality on
``ec2InstanceId`` is honoured, written with or without spaces around ``==``, before paging
(`local_aws.ecs_api`). Any other expression (other attributes, ``in``, ``=~``, ``and``/``or``,
...) is left unfiltered, as moto does: the caller gets every instance of the status asked for.

`uninstall` (the Sandbox's exit) restores moto's behaviour, so code outside a Sandbox (the
Lambda's own tests, which prove the Lambda is right when the filter is ignored) sees moto's.
Install and uninstall nest: only the outermost uninstall restores.
"""

from __future__ import annotations

import re
import threading
from typing import Any

_EC2_INSTANCE_ID_EQUALS = re.compile(r"^\s*ec2InstanceId\s*==\s*(\S+)\s*$")
_lock = threading.Lock()
_depth = 0


def parse_ec2_instance_id(expression: str | None) -> str | None:
    """The instance id of an ``ec2InstanceId == <id>`` expression; None for anything else."""
    if not expression:
        return None
    match = _EC2_INSTANCE_ID_EQUALS.match(expression)
    return match.group(1) if match else None


def matching(backend: Any, cluster_name: str, expression: str | None, arns: list[str]) -> list[str]:
    """The ARNs of ``arns`` the expression selects (all of them for a form not implemented)."""
    ec2_instance_id = parse_ec2_instance_id(expression)
    if ec2_instance_id is None:
        return arns  # no filter, or a form not implemented: unfiltered, as moto does
    selected = {
        ci.container_instance_arn
        for ci in backend.container_instances.get(cluster_name, {}).values()
        if ci.ec2_instance_id == ec2_instance_id
    }
    return [arn for arn in arns if arn in selected]


def install() -> None:
    """Honour ``ec2InstanceId == <id>`` in ListContainerInstances until `uninstall`."""
    global _depth
    from local_aws import ecs_api  # its ListContainerInstances reads `installed()`

    ecs_api.install()
    with _lock:
        _depth += 1


def uninstall() -> None:
    """Undo `install` (the outermost one): ListContainerInstances ignores ``filter`` again."""
    global _depth
    with _lock:
        if _depth > 0:
            _depth -= 1


def installed() -> bool:
    return _depth > 0
