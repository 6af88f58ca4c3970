"""The warm pool API for moto's Auto Scaling (moto 5.2.5 stores the configuration, no instances).

The pool's instances and their lifecycle live in `local_aws.autoscaling` (module docstring);
this module is the API side, as the EC2 Auto Scaling API reference ("PutWarmPool",
"DescribeWarmPool", "DeleteWarmPool", "WarmPoolConfiguration") and the user guide ("Warm pools
for Amazon EC2 Auto Scaling") describe it:

- PutWarmPool creates or updates the pool (MinSize >= 0, MaxGroupPreparedCapacity >= -1 where -1
  removes a value set before, PoolState Stopped | Running | Hibernated, default Stopped,
  InstanceReusePolicy.ReuseOnScaleIn) and fills it at once. Groups with a mixed instances
  policy can't have one (user guide, "Limitations").
- DescribeWarmPool answers WarmPoolConfiguration (with Status PendingDelete while a deletion
  runs) and the pooled instances with their Warmed:* LifecycleState; MaxRecords up to 50, paged
  by NextToken. DescribeAutoScalingGroups shows WarmPoolConfiguration and WarmPoolSize; its
  Instances leave the pooled ones out, DescribeAutoScalingInstances lists them.
- DeleteWarmPool marks the pool PendingDelete and terminates its instances (through
  Warmed:Terminating:Wait when the group has a TERMINATING hook); the pool is gone once the
  last one is. ForceDelete terminates them at once and deletes their outstanding lifecycle
  actions.

Pooled instances never register with ECS when the agent runs with ECS_WARM_POOLS_CHECK=true
(ECS guide "Configuring pre-initialized instances for your Amazon ECS Auto Scaling group"): the
sandbox registers a container instance only once an instance goes InService (the
``"in_service"`` notification of `autoscaling.subscribe`). `pooled_instances` tells which
instances are in the pool.
"""

from __future__ import annotations

from typing import Any

from moto.autoscaling import responses as asg_responses
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.core.responses import ActionResult, EmptyResult

from local_aws import autoscaling
from local_aws.scaling_activities import decode_token, encode_token

POOL_STATES = ("Stopped", "Running", "Hibernated")
DESCRIBE_MAX_RECORDS = 50

_installed = False


def _group(backend: Any, name: str) -> Any:
    group = backend.autoscaling_groups.get(name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {name}")
    return group


def _pooled(group: Any) -> list[Any]:
    return [s for s in group.instance_states if s.lifecycle_state.startswith("Warmed:")]


def _put_warm_pool(original: Any) -> Any:
    def put_warm_pool(self: Any) -> ActionResult:
        backend = self.autoscaling_backend
        group = _group(backend, self._get_param("AutoScalingGroupName"))
        min_size = self._get_int_param("MinSize")
        max_prepared = self._get_int_param("MaxGroupPreparedCapacity")
        pool_state = self._get_param("PoolState") or "Stopped"
        if min_size is not None and min_size < 0:
            raise ValidationError("MinSize must be greater than or equal to 0")
        if max_prepared is not None and max_prepared < -1:
            raise ValidationError("MaxGroupPreparedCapacity must be greater than or equal to -1")
        if pool_state not in POOL_STATES:
            raise ValidationError(f"PoolState must be one of {', '.join(POOL_STATES)}")
        if group.mixed_instances_policy:
            raise ValidationError(
                "You can't add a warm pool to an Auto Scaling group that has a mixed instances "
                "policy."
            )
        current = getattr(group, "warm_pool", None)
        if current is not None and getattr(current, "status", None) == "PendingDelete":
            raise AutoscalingClientError(
                "ResourceInUse", "The warm pool is being deleted: wait until it is gone."
            )
        with autoscaling._lock:
            original(self)
            pool = group.warm_pool
            # moto keeps the raw parameters: normalise them to what the API answers.
            pool.min_size = min_size or 0
            pool.max_group_prepared_capacity = (
                None if max_prepared is None or max_prepared == -1 else max_prepared
            )
            pool.pool_state = pool_state
            reuse = self._get_param("InstanceReusePolicy")
            if isinstance(reuse, dict) and "ReuseOnScaleIn" in reuse:
                value = reuse["ReuseOnScaleIn"]
                pool.instance_reuse_policy = {
                    "ReuseOnScaleIn": value is True or str(value).lower() == "true"
                }
            else:
                pool.instance_reuse_policy = None
            pool.status = None
            autoscaling.reconcile_pool(backend, group)
        return EmptyResult()

    return put_warm_pool


def _describe_warm_pool(self: Any) -> ActionResult:
    backend = self.autoscaling_backend
    group = _group(backend, self._get_param("AutoScalingGroupName"))
    limit = self._get_int_param("MaxRecords") or DESCRIBE_MAX_RECORDS
    if not 1 <= limit <= DESCRIBE_MAX_RECORDS:
        raise ValidationError(
            f"1 validation error detected: Value '{limit}' at 'maxRecords' failed to satisfy "
            f"constraint: Member must have value less than or equal to {DESCRIBE_MAX_RECORDS}"
        )
    with autoscaling._lock:
        autoscaling._expire(backend)
        pooled = _pooled(group)
    token = self._get_param("NextToken")
    start = decode_token(token) if token else 0
    page = pooled[start : start + limit]
    result: dict[str, Any] = {"WarmPoolConfiguration": group.warm_pool, "Instances": page}
    if start + limit < len(pooled):
        result["NextToken"] = encode_token(start + limit)
    return ActionResult(result)


def _delete_warm_pool(self: Any) -> ActionResult:
    backend = self.autoscaling_backend
    group = _group(backend, self._get_param("AutoScalingGroupName"))
    force = bool(self._get_bool_param("ForceDelete", False))
    with autoscaling._lock:
        autoscaling.delete_warm_pool(backend, group, force=force)
    return EmptyResult()


def install() -> None:
    """Patch PutWarmPool / DescribeWarmPool / DeleteWarmPool. Idempotent."""
    global _installed
    if _installed:
        return
    resp = asg_responses.AutoScalingResponse
    resp.put_warm_pool = _put_warm_pool(resp.put_warm_pool)  # type: ignore[method-assign]
    resp.describe_warm_pool = _describe_warm_pool  # type: ignore[method-assign]
    resp.delete_warm_pool = _delete_warm_pool  # type: ignore[method-assign]
    _installed = True


def pooled_instances(
    asg_name: str, region: str | None = None, account_id: str | None = None
) -> dict[str, str]:
    """The group's warm pool instances and their LifecycleState (Warmed:*), oldest first."""
    backend = autoscaling._backend(region, account_id)
    group = backend.autoscaling_groups.get(asg_name)
    if group is None:
        return {}
    with autoscaling._lock:
        return {s.instance.id: s.lifecycle_state for s in _pooled(group)}


def is_pooled(instance_id: str, region: str | None = None, account_id: str | None = None) -> bool:
    """Whether the instance is in a warm pool (so its ECS agent has not registered it)."""
    backend = autoscaling._backend(region, account_id)
    _, state = autoscaling._find_group_state(backend, instance_id)
    return state is not None and state.lifecycle_state.startswith("Warmed:")
