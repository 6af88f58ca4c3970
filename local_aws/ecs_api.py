"""ECS API paging, limits and errors where moto 5.2.5 differs from the ECS API reference.

Applies to a moto ECS backend that has an `EcsSimulator` (inside a Sandbox); anywhere else the
calls are moto's own. Limits and defaults are the API reference's (and botocore's ecs
service-2.json, which carries the same text); where the reference names a limit but not the
error text, the text is the one ECS answers in public issue reports, cited per item.

- ListTasks: pages of at most ``maxResults`` ARNs (1 to 100, default 100) with ``nextToken``;
  without ``desiredStatus`` only tasks whose desiredStatus is RUNNING ("The default status
  filter is RUNNING"); ``desiredStatus`` PENDING lists nothing ("Amazon ECS never sets the
  desired status of a task to that value"); ``cluster``, ``containerInstance``, ``family``,
  ``startedBy``, ``serviceName`` (moto ignores it; an unknown service is
  ServiceNotFoundException) and ``launchType`` filter exactly (moto matches the cluster name as
  a substring of the ARN, so cluster "c" listed every cluster's tasks). Stopped tasks are listed
  under desiredStatus STOPPED until the retention ends (`EcsOptions.stopped_task_retention`).
- ListContainerInstances: pages of at most 100 the same way; an unknown cluster is
  ClusterNotFoundException (moto answers an empty list); ``status`` and the default that hides
  INACTIVE (`ecs_states`), and ``filter`` ``ec2InstanceId == <id>`` (`ecs_query`) apply before
  paging.
- DescribeTasks: at most 100 tasks, else InvalidParameterException "taskIds can have at most 100
  items." (sil-org/ecs-deploy#266, gchq/sleeper#555); only the given cluster's tasks (moto
  searches every cluster and matches ids as substrings); a task ECS does not know, or no longer
  shows after the retention, is a ``failures`` entry with reason MISSING (developer guide "API
  failure reasons").
- DescribeContainerInstances: at most 100, else InvalidParameterException "instanceIds can have
  at most 100 items." (traefik/traefik#3625, mapbox/ecs-watchbot#81); an unknown instance is a
  MISSING failure (moto raised KeyError on a cluster with no instance).
- DescribeServices: at most 10, else InvalidParameterException "service names can have at most
  10 items." (structurely/ecs-autoscale#32).
- UpdateContainerInstancesState: at most 10 ("A list of up to 10 container instance IDs"), else
  InvalidParameterException "instanceIds can have at most 10 items." (minamijoyo/myaws#25).
- ClusterNotFoundException for an unknown cluster on every call above and on StopTask,
  PutAttributes and DeleteAttributes (API reference: each lists ClusterNotFoundException).
- PutAttributes / DeleteAttributes: `local_aws.ecs_attributes`.

Not documented, chosen here (UNCONFIRMED): a ``maxResults`` outside 1..100 is
InvalidParameterException "maxResults must be between 1 and 100."; a ``nextToken`` this API did
not hand out is InvalidParameterException "Invalid nextToken."; pages are in ARN order.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import (
    EcsClientException,
    InvalidParameterException,
    ServiceNotFoundException,
)

from local_aws import ecs_attributes, ecs_query
from local_aws.ecs_sim import EcsSimulator, find_task, sim_for

PAGE_MAX = 100
DESCRIBE_TASKS_MAX = 100
DESCRIBE_INSTANCES_MAX = 100
DESCRIBE_SERVICES_MAX = 10
UPDATE_INSTANCES_MAX = 10
DESIRED_STATUSES = ("RUNNING", "PENDING", "STOPPED")

_installed = False

Handler = Callable[[Any], Any]


# --- paging ---------------------------------------------------------------------------------


def _token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def _after(token: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidParameterException("Invalid nextToken.") from exc
    if not isinstance(after, str):
        raise InvalidParameterException("Invalid nextToken.")
    return after


def page(items: list[str], max_results: Any, next_token: str | None) -> dict[str, Any]:
    """One page of sorted ``items``: {"items": [...], "nextToken": ... when more follow}."""
    limit = PAGE_MAX if max_results is None else int(max_results)
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidParameterException(f"maxResults must be between 1 and {PAGE_MAX}.")
    ordered = sorted(items)
    start = 0
    if next_token:
        after = _after(next_token)
        start = next((i for i, item in enumerate(ordered) if item > after), len(ordered))
    chunk = ordered[start : start + limit]
    out: dict[str, Any] = {"items": chunk}
    if start + limit < len(ordered):
        out["nextToken"] = _token(chunk[-1])
    return out


def _listed(key: str, paged: dict[str, Any]) -> ActionResult:
    body: dict[str, Any] = {key: paged["items"]}
    if "nextToken" in paged:
        body["nextToken"] = paged["nextToken"]
    return ActionResult(body)


def _too_many(items: list[Any] | None, limit: int, what: str) -> None:
    if items and len(items) > limit:
        raise InvalidParameterException(f"{what} can have at most {limit} items.")


# --- the calls ------------------------------------------------------------------------------


def _family(task: Any) -> str:
    return str(task.task_definition_arn.split("/")[-1].rsplit(":", 1)[0])


def list_tasks(resp: Any, sim: EcsSimulator) -> ActionResult:
    backend = resp.ecs_backend
    cluster = backend._get_cluster(resp._get_param("cluster", "default"))
    sim.expire_stopped()
    desired = resp._get_param("desiredStatus") or "RUNNING"
    if desired not in DESIRED_STATUSES:
        raise InvalidParameterException(f"desiredStatus must be one of {list(DESIRED_STATUSES)}.")
    instance = resp._get_param("containerInstance")
    instance_id = instance.split("/")[-1] if instance else None
    family = resp._get_param("family")
    started_by = resp._get_param("startedBy")
    service = resp._get_param("serviceName")
    launch_type = resp._get_param("launchType")
    if service and f"{cluster.name}:{service.split('/')[-1]}" not in backend.services:
        raise ServiceNotFoundException()
    group = f"service:{service.split('/')[-1]}" if service else None

    def keep(task: Any) -> bool:
        return (
            task.desired_status == desired
            and (
                instance_id is None
                or (task.container_instance_arn or "").split("/")[-1] == instance_id
            )
            and (family is None or _family(task) == family)
            and (started_by is None or task.started_by == started_by)
            and (group is None or task.group == group)
            and (launch_type is None or (task.launch_type or "EC2") == launch_type)
        )

    if instance_id is not None:  # the simulator's index: no scan of the cluster's tasks
        candidates = sim.tasks_on_instance_id(cluster.name, instance_id)
    else:
        candidates = list(backend.tasks.get(cluster.name, {}).values())
    arns = [t.task_arn for t in candidates if keep(t)]
    paged = page(arns, resp._get_param("maxResults"), resp._get_param("nextToken"))
    return _listed("taskArns", paged)


def list_container_instances(resp: Any) -> ActionResult:
    backend = resp.ecs_backend
    cluster = backend._get_cluster(resp._get_param("cluster", "default"))
    arns = backend.list_container_instances(cluster.name, status=resp._get_param("status"))
    if ecs_query.installed():
        arns = ecs_query.matching(backend, cluster.name, resp._get_param("filter"), arns)
    paged = page(arns, resp._get_param("maxResults"), resp._get_param("nextToken"))
    return _listed("containerInstanceArns", paged)


def describe_tasks(resp: Any, sim: EcsSimulator) -> ActionResult:
    backend = resp.ecs_backend
    cluster = backend._get_cluster(resp._get_param("cluster", "default"))
    refs = resp._get_param("tasks", [])
    if not refs:
        raise InvalidParameterException("Tasks cannot be empty.")
    _too_many(refs, DESCRIBE_TASKS_MAX, "taskIds")
    sim.expire_stopped()
    tasks, failures = [], []
    for ref in refs:
        task = find_task(backend, cluster.name, ref)
        if task is not None:
            tasks.append(task)
        else:
            arn = ref if ref.startswith("arn:") else f"{_arn_prefix(sim)}:task/{cluster.name}/{ref}"
            failures.append({"arn": arn, "reason": "MISSING"})
    if "TAGS" in (resp._get_param("include") or []):
        resp._include_in_response(ecs_responses.DESCRIBE_TASKS_TAGS)
    else:
        resp._exclude_from_response(ecs_responses.DESCRIBE_TASKS_TAGS)
    return ActionResult({"tasks": tasks, "failures": failures})


def describe_container_instances(resp: Any, sim: EcsSimulator) -> ActionResult:
    backend = resp.ecs_backend
    cluster = backend._get_cluster(resp._get_param("cluster", "default"))
    refs = resp._get_param("containerInstances") or []
    if not refs:
        raise EcsClientException("Container Instances cannot be empty.")
    _too_many(refs, DESCRIBE_INSTANCES_MAX, "instanceIds")
    known = backend.container_instances.get(cluster.name, {})
    found, failures = [], []
    for ref in refs:
        ci = known.get(ref.split("/")[-1])
        if ci is not None:
            found.append(ci)
        else:
            arn = (
                ref
                if ref.startswith("arn:")
                else f"{_arn_prefix(sim)}:container-instance/{cluster.name}/{ref}"
            )
            failures.append({"arn": arn, "reason": "MISSING"})
    return ActionResult({"failures": failures, "containerInstances": found})


def _arn_prefix(sim: EcsSimulator) -> str:
    return f"arn:aws:ecs:{sim.region}:{sim.account_id}"


def _limit_then(original: Handler, param: str, limit: int, what: str) -> Callable[..., Any]:
    def call(resp: Any, sim: EcsSimulator) -> Any:  # noqa: ARG001  (a handler's signature)
        backend = resp.ecs_backend
        cluster = backend._get_cluster(resp._get_param("cluster", "default"))
        _too_many(resp._get_param(param), limit, what)
        backend.container_instances.setdefault(cluster.name, {})  # moto: KeyError on none
        return original(resp)

    return call


def _attributes(apply: Callable[[Any, str, Any], list[Any]]) -> Callable[..., Any]:
    def call(resp: Any, sim: EcsSimulator) -> ActionResult:
        backend = resp.ecs_backend
        cluster = backend._get_cluster(resp._get_param("cluster") or "default")
        attributes = resp._get_param("attributes")
        for ci in apply(backend, cluster.name, attributes):
            sim.on_attributes_changed(ci)
        return ActionResult({"attributes": attributes})

    return call


# --- installing -----------------------------------------------------------------------------


def _with_sim(original: Handler, impl: Callable[[Any, EcsSimulator], Any]) -> Handler:
    def method(self: Any) -> Any:
        sim = sim_for(self.ecs_backend)
        if sim is None:
            return original(self)
        with sim.lock:
            return impl(self, sim)

    method.__wrapped__ = original  # type: ignore[attr-defined]
    return method


def _list_instances_method(original: Handler) -> Handler:
    def method(self: Any) -> Any:
        sim = sim_for(self.ecs_backend)
        if sim is None and not ecs_query.installed():
            return original(self)  # moto's own, filter ignored
        if sim is None:
            return list_container_instances(self)
        with sim.lock:
            return list_container_instances(self)

    method.__wrapped__ = original  # type: ignore[attr-defined]
    return method


def install() -> None:
    """Patch moto's ECS responses once (idempotent); inert for a backend with no simulator."""
    global _installed
    if _installed:
        return
    cls = ecs_responses.EC2ContainerServiceResponse
    impls: dict[str, Callable[[Any, EcsSimulator], Any]] = {
        "list_tasks": list_tasks,
        "describe_tasks": describe_tasks,
        "describe_container_instances": describe_container_instances,
        "describe_services": _limit_then(
            cls.describe_services, "services", DESCRIBE_SERVICES_MAX, "service names"
        ),
        "update_container_instances_state": _limit_then(
            cls.update_container_instances_state,
            "containerInstances",
            UPDATE_INSTANCES_MAX,
            "instanceIds",
        ),
        "put_attributes": _attributes(ecs_attributes.put),
        "delete_attributes": _attributes(ecs_attributes.delete),
    }
    for name, impl in impls.items():
        setattr(cls, name, _with_sim(getattr(cls, name), impl))
    cls.list_container_instances = _list_instances_method(cls.list_container_instances)  # type: ignore[method-assign]
    _installed = True
