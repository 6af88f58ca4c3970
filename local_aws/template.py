"""Where the sandbox takes the deployed pieces from: EventBridge rules, the ASL, the Lambda.

Two sources, one result (`DrainDefinition`):

- ``from_asl_file()``: the ASL file in infra/ and the rule pattern the CDK app is specified to
  build ("EC2 Instance-terminate Lifecycle Action" events of the given groups and hook). For
  sandbox tests of pieces that don't need the CDK app. Its integrations' ARNs
  (``${LambdaInvokeArn}``, ...) are left to `DrainDefinition.definition_for`, which makes them
  the ``aws`` partition's (a template's are resolved with its other substitutions).
- ``from_template(template)``: a synthesized CloudFormation template (a dict: a
  ``cdk.out/*.template.json`` file, or ``aws_cdk.assertions.Template.from_stack(stack).to_json()``).
  Read from it:

  - every ``AWS::Events::Rule`` with a target that is the drain function, or a queue the drain
    function reads (`RuleSpec`: name, EventPattern or ScheduleExpression, State, the target's
    RetryPolicy and DeadLetterConfig, the queue), whatever the pattern matches: the lifecycle
    rule, and any other (ECS task state changes, Step Functions execution status changes, Spot
    interruption warnings, the sweep's schedule, ...);
  - the drain function's ``AWS::Lambda::EventSourceMapping`` on an SQS queue (`IntakeSpec`:
    BatchSize, ScalingConfig.MaximumConcurrency, FunctionResponseTypes, and the queue's
    VisibilityTimeout and RedrivePolicy);
  - the drain function (the lifecycle rule's target; else the function whose Handler is the
    drain handler; else the only function): its Environment, Timeout, MemorySize,
    ReservedConcurrentExecutions, and its ``AWS::Lambda::EventInvokeConfig``
    (MaximumRetryAttempts, MaximumEventAgeInSeconds, on-failure / on-success destinations);
  - the ``AWS::StepFunctions::StateMachine`` (DefinitionString or Definition, with
    DefinitionSubstitutions; its TimeoutSeconds is in the ASL: `DrainDefinition.timeout_seconds`);
  - the ``AWS::SQS::Queue``s the rules and the invoke config send to (``queues``), named by
    their logical ids in the sandbox.

  Intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, the AWS:: pseudo parameters) are resolved
  with the names the sandbox gives. The drain function's and the state machine's ARNs are
  left as ``${DrainFunctionArn}`` / ``${DrainStateMachineArn}`` (also where the template
  spells the state machine's ARN out from its StateMachineName), filled in by
  `DrainDefinition.definition_for` and `DrainDefinition.rules_for`.

``load()`` synthesizes the CDK app's attach-mode stack in process (once) and reads it with
``from_template``: the sandbox runs what ``cdk deploy`` ships.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The Lambda's package lives in lambda/ (what is deployed); make it importable from a checkout.
if str(ROOT / "lambda") not in sys.path:
    sys.path.insert(0, str(ROOT / "lambda"))

from drain_hook import contract  # noqa: E402  (after the path above)

ASL_FILE = ROOT / "infra" / "state_machine" / "drain_loop.asl.json"
FUNCTION_ARN_PLACEHOLDER = "${" + contract.FUNCTION_ARN_SUBSTITUTION + "}"
# The sandbox's partition: its ARNs are all arn:aws:...
SANDBOX_PARTITION = "aws"
# The service integrations' ARNs, as the ASL file leaves them and as the sandbox fills them in.
INTEGRATION_ARNS = {
    "${" + name + "}": contract.integration_arn(SANDBOX_PARTITION, integration)
    for name, integration in contract.INTEGRATION_SUBSTITUTIONS.items()
}
STATE_MACHINE_ARN_PLACEHOLDER = "${DrainStateMachineArn}"
STATE_MACHINE_NAME_PLACEHOLDER = "${DrainStateMachineName}"
LIFECYCLE_DETAIL_TYPE = contract.LIFECYCLE_DETAIL_TYPE
DRAIN_HANDLER = "drain_hook.handler.lambda_handler"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"


@dataclass
class RuleSpec:
    """An EventBridge rule whose target is the drain function."""

    name: str
    pattern: dict[str, Any]
    retry_policy: dict[str, int] | None = None  # MaximumRetryAttempts, MaximumEventAgeInSeconds
    dead_letter_arn: str | None = None
    enabled: bool = True
    description: str = ""
    # The target is this queue (its sandbox name), which the function reads, not the function.
    target_queue: str | None = None
    # A scheduled rule's ScheduleExpression ("rate(2 minutes)"); its pattern is then empty.
    schedule: str | None = None

    @property
    def is_lifecycle(self) -> bool:
        return LIFECYCLE_DETAIL_TYPE in json.dumps(self.pattern.get("detail-type", []))


@dataclass
class InvokeConfigSpec:
    """The drain function's AWS::Lambda::EventInvokeConfig."""

    maximum_retry_attempts: int | None = None
    maximum_event_age_seconds: int | None = None
    on_failure: str | None = None
    on_success: str | None = None

    def as_api(self) -> dict[str, Any]:
        """Keyword arguments for PutFunctionEventInvokeConfig (the function name aside)."""
        kwargs: dict[str, Any] = {}
        if self.maximum_retry_attempts is not None:
            kwargs["MaximumRetryAttempts"] = self.maximum_retry_attempts
        if self.maximum_event_age_seconds is not None:
            kwargs["MaximumEventAgeInSeconds"] = self.maximum_event_age_seconds
        destinations = {}
        if self.on_failure:
            destinations["OnFailure"] = {"Destination": self.on_failure}
        if self.on_success:
            destinations["OnSuccess"] = {"Destination": self.on_success}
        if destinations:
            kwargs["DestinationConfig"] = destinations
        return kwargs


@dataclass(frozen=True)
class IntakeSpec:
    """A queue the drain function reads through an event source mapping."""

    queue: str  # the sandbox's queue name (the template's logical id)
    batch_size: int = 10
    max_concurrency: int | None = None
    report_batch_item_failures: bool = False
    visibility_timeout_seconds: int = 30
    max_receive_count: int | None = None
    dead_letter_queue: str | None = None  # the redrive target's sandbox name


@dataclass
class DrainDefinition:
    """The rules, the state machine definition and the drain function's settings."""

    asl: str
    source: str
    rules: list[RuleSpec]
    lambda_environment: dict[str, Any] = field(default_factory=dict)
    event_invoke_config: InvokeConfigSpec | None = None
    reserved_concurrency: int | None = None
    function_timeout: int | None = None
    memory_size: int | None = None
    queues: list[str] = field(default_factory=list)  # SQS queue names the sandbox creates
    intake: IntakeSpec | None = None

    @property
    def rule_pattern(self) -> dict[str, Any]:
        """The lifecycle rule's pattern."""
        for rule in self.rules:
            if rule.is_lifecycle:
                return rule.pattern
        raise ValueError(f"no rule for {LIFECYCLE_DETAIL_TYPE}")

    @property
    def timeout_seconds(self) -> int | None:
        """The state machine's execution timeout (top-level TimeoutSeconds of the ASL)."""
        value = json.loads(self.asl).get("TimeoutSeconds")
        return None if value is None else int(value)

    def definition_for(self, function_arn: str) -> str:
        """The ASL with its substitutions made (a template's integrations are already)."""
        asl = self.asl.replace(FUNCTION_ARN_PLACEHOLDER, function_arn)
        for placeholder, arn in INTEGRATION_ARNS.items():
            asl = asl.replace(placeholder, arn)
        return asl

    def rules_for(
        self, function_arn: str, state_machine_arn: str, state_machine_name: str = ""
    ) -> list[RuleSpec]:
        """The rules with the drain function's and the state machine's ARNs filled in."""
        table = {
            FUNCTION_ARN_PLACEHOLDER: function_arn,
            STATE_MACHINE_ARN_PLACEHOLDER: state_machine_arn,
            STATE_MACHINE_NAME_PLACEHOLDER: state_machine_name or state_machine_arn.split(":")[-1],
        }
        return [replace(rule, pattern=_substitute(rule.pattern, table)) for rule in self.rules]

    def with_groups(
        self, asg_names: list[str], hook_names: list[str] | None = None
    ) -> DrainDefinition:
        """The same definition with the lifecycle rules matching these groups (sandbox names)."""
        rules = []
        for rule in self.rules:
            pattern = json.loads(json.dumps(rule.pattern))
            if rule.is_lifecycle:
                detail = pattern.setdefault("detail", {})
                detail["AutoScalingGroupName"] = list(asg_names)
                if hook_names is not None:
                    detail["LifecycleHookName"] = list(hook_names)
            rules.append(replace(rule, pattern=pattern))
        return replace(self, rules=rules, lambda_environment=dict(self.lambda_environment))

    def with_clusters(self, cluster_names: list[str], template_cluster: str) -> DrainDefinition:
        """Patterns naming the template's cluster (name or ARN) name the sandbox's clusters."""
        if not cluster_names:
            return self
        rules = [
            replace(rule, pattern=_expand_cluster(rule.pattern, cluster_names, template_cluster))
            for rule in self.rules
        ]
        return replace(self, rules=rules)


def _substitute(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, new in table.items():
            value = value.replace(key, new)
        return value
    if isinstance(value, list):
        return [_substitute(v, table) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, table) for k, v in value.items()}
    return value


def _expand_cluster(value: Any, clusters: list[str], template_cluster: str) -> Any:
    def names_cluster(text: Any) -> bool:
        return isinstance(text, str) and (
            text == template_cluster or text.endswith(f":cluster/{template_cluster}")
        )

    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if names_cluster(item):
                out.extend(item[: len(item) - len(template_cluster)] + c for c in clusters)
            else:
                out.append(_expand_cluster(item, clusters, template_cluster))
        return out
    if isinstance(value, dict):
        return {k: _expand_cluster(v, clusters, template_cluster) for k, v in value.items()}
    return value


def lifecycle_pattern(asg_names: list[str], hook_names: list[str]) -> dict[str, Any]:
    return {
        "source": ["aws.autoscaling"],
        "detail-type": [LIFECYCLE_DETAIL_TYPE],
        "detail": {"AutoScalingGroupName": list(asg_names), "LifecycleHookName": list(hook_names)},
    }


def from_asl_file(
    asg_names: list[str], hook_names: list[str], path: Path = ASL_FILE
) -> DrainDefinition:
    rule = RuleSpec("ecs-drain-hook-lifecycle", lifecycle_pattern(asg_names, hook_names))
    return DrainDefinition(path.read_text(), f"file:{path.name}", [rule])


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
    if set(value) == {"Fn::Select"}:
        index, items = value["Fn::Select"]
        return _resolve(items, names)[int(index)]
    if set(value) == {"Fn::Split"}:
        sep, text = value["Fn::Split"]
        return str(_resolve(text, names)).split(sep)
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


def _target_logical_id(target: dict[str, Any]) -> str | None:
    arn = target.get("Arn", {})
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        return str(arn["Fn::GetAtt"][0])
    if isinstance(arn, dict) and "Ref" in arn:
        return str(arn["Ref"])
    return None


def _drain_function(
    template: dict[str, Any], functions: list[tuple[str, dict[str, Any]]]
) -> str | None:
    fn_ids = {logical for logical, _ in functions}
    for _, props in _resources(template, "AWS::Events::Rule"):
        if LIFECYCLE_DETAIL_TYPE not in json.dumps(props.get("EventPattern", {})):
            continue
        for target in props.get("Targets", []):
            logical = _target_logical_id(target)
            if logical in fn_ids:
                return logical
    by_handler = [logical for logical, props in functions if props.get("Handler") == DRAIN_HANDLER]
    if len(by_handler) == 1:
        return by_handler[0]
    return functions[0][0] if len(functions) == 1 else None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def from_template(
    template: dict[str, Any],
    names: dict[str, str] | None = None,
    *,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> DrainDefinition:
    """The drain definition from a synthesized template (see the module docstring)."""
    names = {
        "AWS::Partition": SANDBOX_PARTITION,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::URLSuffix": "amazonaws.com",
        # Names derived from the stack id (the state machine's) resolve to a fixed, valid id.
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/sandbox/"
        "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "AWS::StackName": "sandbox",
        **(names or {}),
    }
    functions = _resources(template, "AWS::Lambda::Function")
    machines = _resources(template, "AWS::StepFunctions::StateMachine")
    if not machines:
        raise ValueError("the template has no AWS::StepFunctions::StateMachine")
    drain_fn = _drain_function(template, functions)
    sm_logical, sm = machines[0]
    if drain_fn is not None:
        names.setdefault(f"{drain_fn}.Arn", FUNCTION_ARN_PLACEHOLDER)
        names.setdefault(drain_fn, FUNCTION_ARN_PLACEHOLDER)
    names.setdefault(sm_logical, STATE_MACHINE_ARN_PLACEHOLDER)
    names.setdefault(f"{sm_logical}.Arn", STATE_MACHINE_ARN_PLACEHOLDER)
    names.setdefault(f"{sm_logical}.Name", STATE_MACHINE_NAME_PLACEHOLDER)
    # Queues are created by the sandbox under their logical ids.
    queue_ids = [logical for logical, _ in _resources(template, "AWS::SQS::Queue")]
    for logical in queue_ids:
        names.setdefault(f"{logical}.Arn", f"arn:aws:sqs:{region}:{account_id}:{logical}")
        names.setdefault(f"{logical}.QueueName", logical)
    # Where the template spells the state machine's ARN out from its name.
    literal_arns: dict[str, str] = {}
    machine_name = _resolve(sm.get("StateMachineName"), names)
    if isinstance(machine_name, str):
        literal = f"arn:aws:states:{region}:{account_id}:stateMachine:{machine_name}"
        literal_arns[literal] = STATE_MACHINE_ARN_PLACEHOLDER

    intake = _intake(template, drain_fn, queue_ids)
    rules = _rules(template, drain_fn, names, literal_arns, intake)
    if not rules:
        raise ValueError(f"the template has no rule for {LIFECYCLE_DETAIL_TYPE}")

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

    definition = DrainDefinition(asl, "template", rules, intake=intake)
    for logical, props in functions:
        if logical != drain_fn:
            continue
        definition.lambda_environment = _resolve(
            props.get("Environment", {}).get("Variables", {}), names
        )
        definition.reserved_concurrency = _int_or_none(props.get("ReservedConcurrentExecutions"))
        definition.function_timeout = _int_or_none(props.get("Timeout"))
        definition.memory_size = _int_or_none(props.get("MemorySize"))
    for _, props in _resources(template, "AWS::Lambda::EventInvokeConfig"):
        if drain_fn is None or _target_logical_id({"Arn": props.get("FunctionName")}) != drain_fn:
            continue
        destinations = _resolve(props.get("DestinationConfig") or {}, names)
        definition.event_invoke_config = InvokeConfigSpec(
            _int_or_none(props.get("MaximumRetryAttempts")),
            _int_or_none(props.get("MaximumEventAgeInSeconds")),
            (destinations.get("OnFailure") or {}).get("Destination"),
            (destinations.get("OnSuccess") or {}).get("Destination"),
        )
    used = json.dumps([definition.rules, definition.event_invoke_config], default=vars)
    definition.queues = [q for q in queue_ids if f':{q}"' in used]
    if (
        intake is not None
        and intake.dead_letter_queue
        and intake.dead_letter_queue not in (definition.queues)
    ):
        definition.queues.append(intake.dead_letter_queue)
    return definition


def _intake(
    template: dict[str, Any], drain_fn: str | None, queue_ids: list[str]
) -> IntakeSpec | None:
    """The drain function's event source mapping on one of the template's queues, if any."""
    for _, props in _resources(template, "AWS::Lambda::EventSourceMapping"):
        function = props.get("FunctionName")
        if drain_fn is None or _target_logical_id({"Arn": function}) != drain_fn:
            continue
        queue = _target_logical_id({"Arn": props.get("EventSourceArn")})
        if queue not in queue_ids:
            continue
        queue_props = template["Resources"][queue].get("Properties", {})
        redrive = queue_props.get("RedrivePolicy") or {}
        scaling = props.get("ScalingConfig") or {}
        return IntakeSpec(
            queue=queue,
            batch_size=int(props.get("BatchSize", 10)),
            max_concurrency=_int_or_none(scaling.get("MaximumConcurrency")),
            report_batch_item_failures="ReportBatchItemFailures"
            in (props.get("FunctionResponseTypes") or []),
            visibility_timeout_seconds=int(queue_props.get("VisibilityTimeout", 30)),
            max_receive_count=_int_or_none(redrive.get("maxReceiveCount")),
            dead_letter_queue=_target_logical_id({"Arn": redrive.get("deadLetterTargetArn")}),
        )
    return None


def _rules(
    template: dict[str, Any],
    drain_fn: str | None,
    names: dict[str, str],
    literal_arns: dict[str, str],
    intake: IntakeSpec | None = None,
) -> list[RuleSpec]:
    rules: list[RuleSpec] = []
    for logical, props in _resources(template, "AWS::Events::Rule"):
        schedule = props.get("ScheduleExpression")
        if "EventPattern" not in props and not schedule:
            continue
        for target in props.get("Targets", []):
            target_id = _target_logical_id(target)
            queue = intake.queue if intake is not None and target_id == intake.queue else None
            if drain_fn is None or (target_id != drain_fn and queue is None):
                continue
            retry = target.get("RetryPolicy")
            rules.append(
                RuleSpec(
                    name=str(props.get("Name") or logical),
                    pattern=_substitute(
                        _resolve(props.get("EventPattern", {}), names), literal_arns
                    ),
                    retry_policy=_resolve(retry, names) if retry else None,
                    dead_letter_arn=_resolve(
                        (target.get("DeadLetterConfig") or {}).get("Arn"), names
                    ),
                    enabled=props.get("State", "ENABLED") == "ENABLED",
                    description=str(props.get("Description", "")),
                    target_queue=queue,
                    schedule=schedule,
                )
            )
    return rules


# The attach-mode stack the sandbox synthesizes; the sandbox swaps in its own group names.
SANDBOX_CONTEXT = {"cluster_name": "sandbox-cluster", "asg_names": "sandbox-asg"}
# Settings the sandbox owns: the cluster and state machine it creates, and no X-Ray locally.
SANDBOX_OWNED_ENVIRONMENT = (
    "CLUSTER_NAME",
    "STATE_MACHINE_ARN",
    "TRACING_ENABLED",
    "HOOKED_GROUPS",
    "HOOK_NAME",
    "INTAKE_QUEUE_URL",
)


def synthesized_template(context: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The attach-mode stack as `cdk synth` builds it (cdk.json's flags), synthesized in process.

    Synthesized, not read from cdk.out, so the sandbox never runs a stale template. ``context``
    adds `-c` keys (e.g. ``{"max_drain_seconds": "90000"}``): the Lambda's settings and what the
    CDK app derives from them (the heartbeat timeout, the state machine's TimeoutSeconds) stay
    consistent, as in a real deploy. Cached per context: a synth costs a few seconds.
    """
    return _synthesized(tuple(sorted((context or {}).items())))


def quiet_jsii() -> None:
    """Before aws-cdk-lib's first import: jsii's Node-version banner is noise here (the Makefile
    sets the same for its targets)."""

    import infra  # noqa: F401  (quiets jsii's Node banners)


@cache
def _synthesized(extra: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    import tempfile

    quiet_jsii()
    from infra.app import PROGRESS_VARIABLE, build_app

    if os.environ.get(PROGRESS_VARIABLE) == "1":
        # build_app's own progress names the stack's mode: say where it is going.
        print(
            "ecs-drain-hook: the local sandbox run deploys the attach-mode stack on the "
            "embedded local AWS; synthesizing it",
            file=sys.stderr,
        )
    context = {
        **json.loads((ROOT / "cdk.json").read_text())["context"],
        **SANDBOX_CONTEXT,
        **dict(extra),
    }
    with tempfile.TemporaryDirectory() as outdir:
        (stack,) = build_app(context, outdir=outdir).synth().stacks
        return stack.template


def load(
    asg_names: list[str],
    hook_names: list[str],
    *,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
    context: Mapping[str, str] | None = None,
) -> DrainDefinition:
    """The rules, ASL and Lambda settings of the synthesized stack, for these groups."""
    definition = from_template(
        synthesized_template(context), region=region, account_id=account_id
    ).with_groups(asg_names, hook_names)
    for name in SANDBOX_OWNED_ENVIRONMENT:
        definition.lambda_environment.pop(name, None)
    return definition
