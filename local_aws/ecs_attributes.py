"""PutAttributes / DeleteAttributes on container instances, to the ECS API reference.

moto 5.2.5 stores attributes but checks nothing: no name or value rules, no limit, a missing
``cluster`` crashes it, and DeleteAttributes removes an attribute only when the request repeats
its value. Here, per the API reference (PutAttributes, DeleteAttributes, Attribute, TargetType,
AttributeLimitExceededException, TargetNotFoundException):

- ``cluster`` defaults to "default"; an unknown cluster is ClusterNotFoundException.
- Up to 10 attributes a call ("You can specify up to 10 attributes in a single call"); more is
  InvalidParameterException (the exception and its text are not documented: UNCONFIRMED, the
  text follows ECS's other list limits, "... can have at most 10 items.").
- ``name``: 1 to 128 letters, digits, hyphens, underscores, forward slashes, back slashes or
  periods. ``value`` (optional on Put, ignored on Delete): 1 to 128 letters, digits, hyphens,
  underscores, periods, at signs, forward slashes, back slashes, colons or spaces, not starting
  or ending with a space. Anything else is InvalidParameterException (message text UNCONFIRMED).
- ``targetType``: the only type is "container-instance"; it is required when ``targetId`` is a
  short id instead of a full ARN. Another type, or a short id without it, is
  InvalidParameterException. A target not registered in the cluster is TargetNotFoundException.
- At most 10 custom attributes per resource: a Put that would leave more is
  AttributeLimitExceededException, and nothing in that call is applied. Put creates or replaces;
  Delete removes by name (a name the instance does not have is ignored: UNCONFIRMED).
- Custom attributes appear in DescribeContainerInstances' ``attributes`` (API reference
  ContainerInstance.attributes) beside the ones the agent set at registration, and so in the
  container instance state change events.
"""

from __future__ import annotations

import re
from typing import Any

from moto.ecs.exceptions import ECSException, InvalidParameterException

TARGET_TYPE = "container-instance"
MAX_PER_CALL = 10
MAX_CUSTOM_PER_RESOURCE = 10
_NAME = re.compile(r"[A-Za-z0-9_./\\-]{1,128}")
_VALUE = re.compile(r"[A-Za-z0-9_.@/\\: -]{1,128}")


class AttributeLimitExceededException(ECSException):
    def __init__(self) -> None:
        super().__init__(
            "AttributeLimitExceededException",
            f"You can apply up to {MAX_CUSTOM_PER_RESOURCE} custom attributes per resource.",
        )


class TargetNotFoundException(ECSException):
    def __init__(self, target: str) -> None:
        super().__init__("TargetNotFoundException", f"Could not find target {target}.")


def custom_names(ci: Any) -> set[str]:
    """The names of the attributes put on a container instance with PutAttributes."""
    names: set[str] = ci.__dict__.setdefault("_sandbox_custom_attributes", set())
    return names


def _check_list(attributes: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if not attributes:
        raise InvalidParameterException("attributes can not be empty.")
    if len(attributes) > MAX_PER_CALL:
        raise InvalidParameterException(f"attributes can have at most {MAX_PER_CALL} items.")
    return attributes


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidParameterException(
            f"Attribute name {name!r} is invalid: 1-128 letters, numbers, hyphens, underscores, "
            "forward slashes, back slashes or periods."
        )
    return name


def _check_value(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _VALUE.fullmatch(value) or value != value.strip(" "):
        raise InvalidParameterException(
            f"Attribute value {value!r} is invalid: 1-128 letters, numbers, hyphens, "
            "underscores, periods, at signs, forward slashes, back slashes, colons or spaces, "
            "not starting or ending with a space."
        )
    return value


def _target(backend: Any, cluster_name: str, attribute: dict[str, Any]) -> Any:
    target_id = attribute.get("targetId")
    target_type = attribute.get("targetType")
    if target_type is not None and target_type != TARGET_TYPE:
        raise InvalidParameterException(f"targetType must be {TARGET_TYPE}.")
    if not target_id:
        raise InvalidParameterException("targetId is required.")
    is_arn = target_id.startswith("arn:")
    if not is_arn and target_type is None:
        raise InvalidParameterException("targetType is required when targetId is not a full ARN.")
    if is_arn and ":container-instance/" not in target_id:
        raise TargetNotFoundException(target_id)
    ci = backend.container_instances.get(cluster_name, {}).get(target_id.split("/")[-1])
    if ci is None or ci.status == "INACTIVE":
        raise TargetNotFoundException(target_id)
    return ci


def put(backend: Any, cluster_name: str, attributes: list[dict[str, Any]] | None) -> list[Any]:
    """Validate the whole call, then apply it; returns the container instances changed."""
    planned: list[tuple[Any, str, str | None]] = []
    for attribute in _check_list(attributes):
        name = _check_name(attribute.get("name"))
        value = _check_value(attribute.get("value"))
        planned.append((_target(backend, cluster_name, attribute), name, value))
    after: dict[int, set[str]] = {}
    for ci, name, _ in planned:
        after.setdefault(id(ci), set(custom_names(ci))).add(name)
    if any(len(names) > MAX_CUSTOM_PER_RESOURCE for names in after.values()):
        raise AttributeLimitExceededException()
    changed: dict[int, Any] = {}
    for ci, name, value in planned:
        ci.attributes[name] = value
        custom_names(ci).add(name)
        changed[id(ci)] = ci
    return list(changed.values())


def delete(backend: Any, cluster_name: str, attributes: list[dict[str, Any]] | None) -> list[Any]:
    """Remove custom attributes by name; returns the container instances changed."""
    planned = [
        (_target(backend, cluster_name, attribute), _check_name(attribute.get("name")))
        for attribute in _check_list(attributes)
    ]
    changed: dict[int, Any] = {}
    for ci, name in planned:
        if name in custom_names(ci):
            custom_names(ci).discard(name)
            ci.attributes.pop(name, None)
            changed[id(ci)] = ci
    return list(changed.values())
