"""Where the sandbox takes the deployed pieces from: the EventBridge rule pattern and the ASL.

Two sources, one result (`DrainDefinition`):

- ``from_asl_file()``: the ASL file in infra/ and the rule pattern the CDK app is specified to
  build ("EC2 Instance-terminate Lifecycle Action" events of the given groups and hook). For
  sandbox tests of pieces that don't need the CDK app.
- ``from_template(template)``: a synthesized CloudFormation template (a dict: a
  ``cdk.out/*.template.json`` file, or ``aws_cdk.assertions.Template.from_stack(stack).to_json()``).
  The rule pattern comes from the ``AWS::Events::Rule`` that targets the function, the ASL from
  the ``AWS::StepFunctions::StateMachine`` (DefinitionString or Definition, with
  DefinitionSubstitutions), and the function's environment from the ``AWS::Lambda::Function``.
  Intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub) are resolved with the names the sandbox gives.

``load()`` synthesizes the CDK app's attach-mode stack in process (once) and reads it with
``from_template``: the sandbox runs what ``cdk deploy`` ships.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ASL_FILE = ROOT / "infra" / "state_machine" / "drain_loop.asl.json"
FUNCTION_ARN_PLACEHOLDER = "${DrainFunctionArn}"


@dataclass
class DrainDefinition:
    """The rule pattern and the state machine definition (``${DrainFunctionArn}`` left open)."""

    rule_pattern: dict[str, Any]
    asl: str
    source: str
    lambda_environment: dict[str, Any] = field(default_factory=dict)

    def definition_for(self, function_arn: str) -> str:
        return self.asl.replace(FUNCTION_ARN_PLACEHOLDER, function_arn)

    def with_groups(
        self, asg_names: list[str], hook_names: list[str] | None = None
    ) -> DrainDefinition:
        """The same definition with the rule matching these groups (the sandbox's names)."""
        pattern = json.loads(json.dumps(self.rule_pattern))
        detail = pattern.setdefault("detail", {})
        detail["AutoScalingGroupName"] = list(asg_names)
        if hook_names is not None:
            detail["LifecycleHookName"] = list(hook_names)
        return DrainDefinition(pattern, self.asl, self.source, dict(self.lambda_environment))


def lifecycle_pattern(asg_names: list[str], hook_names: list[str]) -> dict[str, Any]:
    return {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
        "detail": {"AutoScalingGroupName": list(asg_names), "LifecycleHookName": list(hook_names)},
    }


def from_asl_file(
    asg_names: list[str], hook_names: list[str], path: Path = ASL_FILE
) -> DrainDefinition:
    return DrainDefinition(
        lifecycle_pattern(asg_names, hook_names), path.read_text(), f"file:{path.name}"
    )


def _resolve(value: Any, names: dict[str, str]) -> Any:
    """Resolve the intrinsics CDK emits; ``names`` maps logical ids (or "Id.Attr") to values."""
    if isinstance(value, list):
        return [_resolve(v, names) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return names.get(value["Ref"], f"<{value['Ref']}>")
    if set(value) == {"Fn::GetAtt"}:
        logical, attr = value["Fn::GetAtt"]
        return names.get(f"{logical}.{attr}", names.get(logical, f"<{logical}.{attr}>"))
    if set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return sep.join(str(_resolve(p, names)) for p in parts)
    if set(value) == {"Fn::Sub"}:
        arg = value["Fn::Sub"]
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], _resolve(arg[1], names))
        table = {**names, **local}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(table.get(m.group(1), m.group(0))), text)
    return {k: _resolve(v, names) for k, v in value.items()}


def _resources(template: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical, res.get("Properties", {}))
        for logical, res in template.get("Resources", {}).items()
        if res.get("Type") == kind
    ]


def from_template(template: dict[str, Any], names: dict[str, str] | None = None) -> DrainDefinition:
    """The drain definition from a synthesized template (see the module docstring)."""
    names = dict(names or {})
    functions = _resources(template, "AWS::Lambda::Function")
    machines = _resources(template, "AWS::StepFunctions::StateMachine")
    if not machines:
        raise ValueError("the template has no AWS::StepFunctions::StateMachine")
    fn_ids = {logical for logical, _ in functions}
    # The drain function is the one the lifecycle rule targets.
    rule_pattern: dict[str, Any] | None = None
    drain_fn: str | None = None
    for _, props in _resources(template, "AWS::Events::Rule"):
        pattern = props.get("EventPattern", {})
        if "EC2 Instance-terminate Lifecycle Action" not in json.dumps(pattern):
            continue
        for target in props.get("Targets", []):
            arn = target.get("Arn", {})
            if isinstance(arn, dict) and "Fn::GetAtt" in arn and arn["Fn::GetAtt"][0] in fn_ids:
                drain_fn = arn["Fn::GetAtt"][0]
        rule_pattern = _resolve(pattern, names)
    if rule_pattern is None:
        raise ValueError("the template has no rule for EC2 Instance-terminate Lifecycle Action")
    placeholder = FUNCTION_ARN_PLACEHOLDER
    if drain_fn is not None:
        names.setdefault(f"{drain_fn}.Arn", placeholder)
        names.setdefault(drain_fn, placeholder)
    _, sm = machines[0]
    substitutions = {
        k: _resolve(v, names) for k, v in (sm.get("DefinitionSubstitutions") or {}).items()
    }
    if "DefinitionString" in sm:
        raw = _resolve(sm["DefinitionString"], {**names, **substitutions})
        asl = raw if isinstance(raw, str) else json.dumps(raw)
    else:
        asl = json.dumps(_resolve(sm.get("Definition", {}), names))
    for key, val in substitutions.items():
        asl = asl.replace("${" + key + "}", str(val))
    env: dict[str, Any] = {}
    for logical, props in functions:
        if logical == drain_fn:
            env = _resolve(props.get("Environment", {}).get("Variables", {}), names)
    return DrainDefinition(rule_pattern, asl, "template", env)


# The attach-mode stack the sandbox synthesizes; the sandbox swaps in its own group names.
SANDBOX_CONTEXT = {"cluster_name": "sandbox-cluster", "asg_names": "sandbox-asg"}
# Settings the sandbox owns: the cluster and state machine it creates, and no X-Ray locally.
SANDBOX_OWNED_ENVIRONMENT = ("CLUSTER_NAME", "STATE_MACHINE_ARN", "TRACING_ENABLED")


@cache
def synthesized_template() -> dict[str, Any]:
    """The attach-mode stack as `cdk synth` builds it (cdk.json's flags), synthesized in process.

    Synthesized, not read from cdk.out, so the sandbox never runs a stale template. Cached: the
    CDK synth costs a few seconds (jsii starts Node) and the result depends only on the code.
    """
    import os
    import tempfile

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,19,20,21")
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    from infra.app import build_app

    context = {**json.loads((ROOT / "cdk.json").read_text())["context"], **SANDBOX_CONTEXT}
    with tempfile.TemporaryDirectory() as outdir:
        (stack,) = build_app(context, outdir=outdir).synth().stacks
        return stack.template


def load(asg_names: list[str], hook_names: list[str]) -> DrainDefinition:
    """The rule pattern, ASL and Lambda environment of the synthesized stack, for these groups."""
    definition = from_template(synthesized_template()).with_groups(asg_names, hook_names)
    for name in SANDBOX_OWNED_ENVIRONMENT:
        definition.lambda_environment.pop(name, None)
    return definition
