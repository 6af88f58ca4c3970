"""cdk-nag acknowledgements, each scoped to one resource with the reason a reviewer needs.

cdk-nag 3 names each IAM5 finding after the policy resource it flags, rendered from the template
(Ref -> <Id>, GetAtt -> <Id.Attr>), and has no prefix matching: iam5_resource() renders the same
way, so each acknowledgement matches exactly one finding.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

PLUGIN = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (e.g. "AwsSolutions-L1") on scope only."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))


def iam5_resource(scope: IConstruct, resource: str) -> str:
    """The finding id cdk-nag gives a wildcard resource of a policy statement."""
    return f"AwsSolutions-IAM5[Resource::{_render(Stack.of(scope).resolve(resource))}]"


def acknowledge_wildcard_resource(policy: IConstruct, resource: str, reason: str) -> None:
    acknowledge(policy, iam5_resource(policy, resource), reason)


def default_policy(role: iam.IRole) -> IConstruct:
    """The role's DefaultPolicy: where add_to_principal_policy statements (and findings) land."""
    return role.node.find_child("DefaultPolicy")


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return f"<{arg}>"
        if key == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if key == "Fn::Join":
            return str(arg[0]).join(_render(part) for part in arg[1])
    return json.dumps(value, separators=(",", ":"))
