"""The deployed stack's outputs, as CloudFormation's DescribeStacks answers them.

moto's CloudFormation needs packages the sandbox does not install (it imports its API Gateway
model), and the sandbox never deploys through CloudFormation anyway: `Sandbox.deploy` creates
the template's resources itself. What a client of the deployment reads from CloudFormation is
the stack's outputs, so that is what this answers: a stack published with `publish` is
described as DescribeStacks does (API reference DescribeStacks, Stack, Output: StackName,
StackId, CreationTime, StackStatus CREATE_COMPLETE, Outputs of OutputKey / OutputValue /
Description), and any other stack name gets CloudFormation's answer for a stack that does not
exist: HTTP 400 ValidationError "Stack with id <name> does not exist" (the text the AWS CLI
prints for it). Only DescribeStacks is answered; the request still passes the service-model
check first (`local_aws.service_model`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse

NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Stack:
    name: str
    region: str
    outputs: dict[str, str]
    created: datetime
    stack_id: str


_stacks: dict[tuple[str, str], Stack] = {}


def publish(name: str, outputs: dict[str, str], region: str) -> Stack:
    """A stack named `name` in `region` whose DescribeStacks shows these outputs."""
    stack = Stack(
        name=name,
        region=region,
        outputs=dict(outputs),
        created=datetime.now(UTC),
        stack_id=f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{name}/{uuid.uuid4()}",
    )
    _stacks[(region, name)] = stack
    return stack


def clear() -> None:
    _stacks.clear()


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _answer(request: Any, **_: Any) -> AWSResponse | None:
    """before-send of DescribeStacks: the published stack, or "does not exist"."""
    if not _stacks:
        return None  # no stack published: leave the request to moto
    body = request.body
    text = body.decode() if isinstance(body, bytes) else str(body or "")
    params = parse_qs(text)
    name = (params.get("StackName") or [""])[0]
    region = request.url.split("cloudformation.", 1)[-1].split(".", 1)[0]
    stack = next(
        (s for s in _stacks.values() if s.region == region and name in (s.name, s.stack_id)), None
    )
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    if stack is None:
        xml = (
            f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type>'
            f"<Code>ValidationError</Code><Message>Stack with id {escape(name)} does not exist"
            f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return AWSResponse(request.url, 400, headers, _Body(xml.encode()))  # type: ignore[arg-type]
    outputs = "".join(
        f"<member><OutputKey>{escape(k)}</OutputKey><OutputValue>{escape(v)}</OutputValue></member>"
        for k, v in stack.outputs.items()
    )
    xml = (
        f'<DescribeStacksResponse xmlns="{NAMESPACE}"><DescribeStacksResult><Stacks><member>'
        f"<StackName>{escape(stack.name)}</StackName><StackId>{escape(stack.stack_id)}</StackId>"
        f"<CreationTime>{stack.created.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}</CreationTime>"
        f"<StackStatus>CREATE_COMPLETE</StackStatus><Outputs>{outputs}</Outputs>"
        "</member></Stacks></DescribeStacksResult>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        "</DescribeStacksResponse>"
    )
    return AWSResponse(request.url, 200, headers, _Body(xml.encode()))  # type: ignore[arg-type]


_EVENT = "before-send.cloudformation.DescribeStacks"
_installed = False


def install() -> None:
    """Answer DescribeStacks in moto's place (its request handler, as `rate_limits` gates it),
    for every client; other CloudFormation calls still go to moto. Idempotent."""
    global _installed
    if _installed:
        return
    from moto.core.botocore_stubber import BotocoreStubber

    original_call = BotocoreStubber.__call__

    def __call__(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if self.enabled and event_name == _EVENT:
            answer = _answer(request)
            if answer is not None:
                return answer
        return original_call(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = __call__  # type: ignore[method-assign]
    _installed = True
