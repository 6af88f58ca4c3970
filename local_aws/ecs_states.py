"""Container instance states moto lacks: REGISTERING, DEREGISTERING, REGISTRATION_FAILED, INACTIVE.

moto only knows ACTIVE and DRAINING and lets UpdateContainerInstancesState change any instance.
After `install()`:

- ``set_container_instance_status(cluster, instance, status)`` puts a registered container
  instance (given by container instance ARN, its id, or its EC2 instance id) in any status.
- UpdateContainerInstancesState answers, per the API reference, with a ``failures`` entry (not an
  exception) for an instance that is not ACTIVE or DRAINING: "A container instance can only be
  updated to DRAINING status once it has reached an ACTIVE state. If a container instance is in
  REGISTERING, DEREGISTERING, or REGISTRATION_FAILED state you can describe the container
  instance but can't update the container instance state." The failure reason is
  ``INVALID_STATUS`` (the exact reason text AWS uses is not documented).
- ListContainerInstances without ``status`` lists every status but INACTIVE (API reference:
  "the default is to include container instances set to all states other than INACTIVE").
"""

from __future__ import annotations

from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs import models as ecs_models

STATUSES = ("ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED", "INACTIVE")
_installed = False


def _backend(region: str | None, account_id: str | None) -> Any:
    return ecs_models.ecs_backends[account_id or DEFAULT_ACCOUNT_ID][region or "us-east-1"]


def find_container_instance(backend: Any, cluster: str, instance: str) -> Any:
    """The moto ContainerInstance for an ARN, container instance id or EC2 instance id."""
    cluster_name = cluster.split("/")[-1]
    for key, ci in backend.container_instances.get(cluster_name, {}).items():
        if instance in (key, ci.container_instance_arn, ci.ec2_instance_id):
            return ci
    raise KeyError(f"no container instance {instance} in cluster {cluster_name}")


def set_container_instance_status(
    cluster: str,
    instance: str,
    status: str,
    region: str | None = None,
    account_id: str | None = None,
) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    install()
    find_container_instance(_backend(region, account_id), cluster, instance).status = status


def _update_state(original: Any) -> Any:
    def update_container_instances_state(
        self: Any, cluster_str: str, list_container_instance_ids: list[str], status: str
    ) -> tuple[list[Any], list[Any]]:
        cluster_name = cluster_str.split("/")[-1]
        known = self.container_instances.get(cluster_name, {})
        blocked, allowed = [], []
        for ref in list_container_instance_ids:
            ci = known.get(ref.split("/")[-1])
            if ci is not None and ci.status not in ("ACTIVE", "DRAINING"):
                blocked.append(ref.split("/")[-1])
            else:
                allowed.append(ref)
        updated, failures = (
            ([], []) if not allowed else original(self, cluster_str, allowed, status)
        )
        for ci_id in blocked:
            failure = ecs_models.ContainerInstanceFailure(
                "INVALID_STATUS", ci_id, self.account_id, self.region_name
            )
            failure.arn = known[ci_id].container_instance_arn
            failure.detail = f"container instance is {known[ci_id].status}"
            failures.append(failure)
        if not allowed and status.upper() not in ("ACTIVE", "DRAINING"):
            original(self, cluster_str, [], status)  # raises moto's (and AWS's) status error
        return updated, failures

    return update_container_instances_state


def _list_instances(original: Any) -> Any:
    def list_container_instances(self: Any, cluster_str: str, status: str | None = None) -> Any:
        arns = original(self, cluster_str, status)
        if status is not None:
            return arns
        cluster_name = cluster_str.split("/")[-1]
        inactive = {
            ci.container_instance_arn
            for ci in self.container_instances.get(cluster_name, {}).values()
            if ci.status == "INACTIVE"
        }
        return [a for a in arns if a not in inactive]

    return list_container_instances


def install() -> None:
    """Patch moto's ECS backend; idempotent."""
    global _installed
    if _installed:
        return
    cls = ecs_models.EC2ContainerServiceBackend
    cls.update_container_instances_state = _update_state(  # type: ignore[method-assign]
        cls.update_container_instances_state
    )
    cls.list_container_instances = _list_instances(  # type: ignore[method-assign]
        cls.list_container_instances
    )
    _installed = True
