"""Template tidying for cfn-lint: no redundant DependsOn (W3005)."""

from __future__ import annotations

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct


def depend_only_on_policy(resource: IConstruct, role: iam.IRole) -> None:
    """Keep DependsOn on the role's DefaultPolicy only.

    CDK also lists the role, which the resource already references through GetAtt (W3005).
    The policy dependency stays: the role must hold its permissions before the resource runs.
    """
    cfn = resource.node.default_child
    policy = role.node.find_child("DefaultPolicy").node.default_child
    assert isinstance(cfn, CfnResource)
    assert isinstance(policy, CfnResource)
    cfn.add_override("DependsOn", [Stack.of(resource).get_logical_id(policy)])
