"""Evaluate the intrinsics CDK emits (Ref, Fn::Join/Select/Split/GetAtt/FindInMap) as
CloudFormation would in one made-up deployment, so tests can compare rendered strings."""

from __future__ import annotations

from typing import Any

PARTITION, REGION, ACCOUNT = "aws", "eu-west-1", "111122223333"
STACK_UUID = "51af3dc0-da77-11e4-872e-1234567db123"


def pseudo(stack_name: str) -> dict[str, str]:
    return {
        "AWS::Partition": PARTITION,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": stack_name,
        "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack_name}/"
        + STACK_UUID,
        "AWS::URLSuffix": "amazonaws.com",
    }


def evaluate(value: Any, refs: dict[str, str], mappings: dict[str, Any] | None = None) -> Any:
    if isinstance(value, list):
        return [evaluate(v, refs, mappings) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return refs.get(arg, f"<{arg}>")
        if key == "Fn::GetAtt":
            return refs.get(f"{arg[0]}.{arg[1]}", f"<{arg[0]}.{arg[1]}>")
        if key == "Fn::Join":
            return arg[0].join(str(evaluate(part, refs, mappings)) for part in arg[1])
        if key == "Fn::Split":
            return str(evaluate(arg[1], refs, mappings)).split(arg[0])
        if key == "Fn::Select":
            return evaluate(arg[1], refs, mappings)[int(arg[0])]
        if key == "Fn::FindInMap":
            name, first, second = (evaluate(a, refs, mappings) for a in arg)
            return (mappings or {})[name][first][second]
    return {k: evaluate(v, refs, mappings) for k, v in value.items()}
