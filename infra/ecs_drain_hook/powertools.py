"""The Powertools for AWS Lambda (Python) layer: looked up where AWS publishes it, or given.

Powertools publishes its v3 layer ARNs as public SSM parameters
(/aws/service/powertools/python/<arch>/<runtime>/<version>) in 30 commercial Regions only; China
and GovCloud get layer copies under other accounts and no parameter (powertools-lambda-python,
.github/workflows/update_ssm.yml and layers_partitions.yml). So:

- `powertools_layer_arn` given (CDK context key of the same name): that layer, no lookup.
- the stack's Region is known at synth: a Region with the parameter resolves it at deploy time;
  any other Region fails synth with a SettingsError that names `powertools_layer_arn`.
- an environment-agnostic stack (Region unknown until deploy): the same deploy-time lookup, plus a
  template Rule that refuses any Region without the parameter, its message naming the key.

The lookup is a `{{resolve:ssm:...}}` dynamic reference rather than an SSM-typed template
parameter: CloudFormation resolves parameters before it checks Rules (Rules validate parameter
values), and a missing parameter would fail the deploy with no hint; a dynamic reference is
resolved when the function is created, after the Rule has spoken. (That order is our reading of
the CloudFormation user guide, "Rules" and "Get values stored in other services using dynamic
references"; the guide does not state it outright.)
"""

from __future__ import annotations

import re

from aws_cdk import (
    Aws,
    CfnDynamicReference,
    CfnDynamicReferenceService,
    CfnRule,
    CfnRuleAssertion,
    Fn,
    Stack,
    Token,
)
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ecs_drain_hook.runtime.drain_hook.settings import SettingsError

# Pinned like requirements.txt's aws-lambda-powertools, so every deploy gets the same layer.
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_RUNTIME = "python3.13"
POWERTOOLS_ARCHITECTURE = "arm64"
CONTEXT_KEY = "powertools_layer_arn"
# Regions where /aws/service/powertools/... exists (update_ssm.yml's region list).
PUBLISHED_REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")
RULE_ID = "PowertoolsLayerRegion"


def parameter_name(version: str = POWERTOOLS_VERSION) -> str:
    """The public SSM parameter holding the Powertools v3 layer ARN for our runtime and arch."""
    return (
        f"/aws/service/powertools/python/{POWERTOOLS_ARCHITECTURE}/{POWERTOOLS_RUNTIME}/{version}"
    )


def missing_parameter_message(region: str) -> str:
    return (
        f"Powertools publishes no layer parameter ({parameter_name()}) in {region}: give the "
        f"layer ARN with {CONTEXT_KEY} (-c {CONTEXT_KEY}=arn:...:layer:<name>:<version>, a "
        f"Powertools v3 {POWERTOOLS_RUNTIME} {POWERTOOLS_ARCHITECTURE} layer in that Region)"
    )


def powertools_layer(
    scope: Construct,
    construct_id: str,
    *,
    layer_arn: str | None,
    version: str = POWERTOOLS_VERSION,
) -> lambda_.ILayerVersion:
    if layer_arn is not None:
        if not Token.is_unresolved(layer_arn) and not _LAYER_ARN.match(layer_arn):
            raise SettingsError(
                f"{CONTEXT_KEY} must be a Lambda layer version ARN "
                f"(arn:<partition>:lambda:<region>:<account>:layer:<name>:<version>), "
                f"got {layer_arn!r}"
            )
        return lambda_.LayerVersion.from_layer_version_arn(scope, construct_id, layer_arn)
    stack = Stack.of(scope)
    if not Token.is_unresolved(stack.region):
        if stack.region not in PUBLISHED_REGIONS:
            raise SettingsError(missing_parameter_message(stack.region))
    elif stack.node.try_find_child(RULE_ID) is None:
        CfnRule(
            stack,
            RULE_ID,
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(list(PUBLISHED_REGIONS), Aws.REGION),
                    assert_description=missing_parameter_message("this Region"),
                )
            ],
        )
    arn = CfnDynamicReference(CfnDynamicReferenceService.SSM, parameter_name(version)).to_string()
    return lambda_.LayerVersion.from_layer_version_arn(scope, construct_id, arn)
