"""Every AWS request checked against botocore's service model, as the service checks it.

botocore validates a request on the client before it sends it (botocore/validate.py,
`ParamValidator`): types, unknown members, required members, tagged unions, and the `min` of
strings, lists and numbers (plus the implicit min 1 of host labels). Everything else in the
model it leaves to AWS, and moto checks almost none of it: so `ListContainerInstances(status=
"INACTIVE")`, outside ECS's ContainerInstanceStatus enum, passed every test while ECS answers
InvalidParameterException. This module checks the rest, on the operation's input shape from
botocore's loaded model, recursively (structures, lists, maps, strings, numbers, blobs):

- `enum` of a string shape: the value must be one of the listed values, as written;
- `max` length of strings (in characters), lists and maps (in entries), blobs (in bytes);
  `min` length of maps and blobs (botocore range-checks neither);
- `max` of integers, longs, floats and doubles;
- `pattern` of strings. The model's patterns are Java regular expressions (AWS's services are
  Java; Smithy spec "pattern trait": ECMA-262 syntax, not implicitly anchored). They are
  matched with search semantics: a pattern that wants the whole value says so with `^...$`.
  (Lambda and IAM answers seen in the wild refuse values an unanchored pattern only partly
  matches, e.g. 'Not Installed' at Invoke's functionName, awslabs/aws-gov-cloud-import#21: so
  search semantics may let through a value AWS refuses, but never refuse one it accepts.)
  `java_to_python` translates what Python's `re` reads differently: surrogate-pair escapes
  (`\\uD800\\uDC00-\\uDBFF\\uDFFF` is U+10000..U+10FFFF in Java, a bad range in Python),
  `\\p{...}` Unicode general categories and the POSIX / `ASCII` classes (ASCII-only, as in
  Java), `\\Q...\\E`, `(?<name>...)`, `\\z`, Java's `.` (no line terminator) and Java's ASCII
  `\\w \\d \\s \\b` (`re.ASCII`). A pattern it can't translate, or that Python can't compile,
  is skipped and listed in `SKIPPED_PATTERNS` (`untranslatable_patterns` lists a service's);
  the value's other constraints still apply.
- required members and `min` (botocore's own checks) too, for clients built with
  `Config(parameter_validation=False)`, as moto's Step Functions interpreter builds its aws-sdk
  and lambda:invoke clients: AWS makes these checks again on its side. A client with botocore's
  validation on refuses such a request itself (ParamValidationError), before this answer could
  come, so the two never disagree. Types and unknown members stay botocore's (Step Functions
  checks an aws-sdk task's parameter names when the state machine is created).

A request that breaks any of these fails as AWS fails it: HTTP 400, the service's own code for
a parameter that breaks the model (`SERVICE_ERRORS`, with the source of each), and AWS's
wording ("1 validation error detected: Value 'INACTIVE' at 'status' failed to satisfy
constraint: Member must satisfy enum value set: [...]"), naming the parameter as the SDK
spells it. The answer is given on botocore's `before-call` event, so the request is never sent
(moto never sees it; faults, rate limits and `faults.Instrument`'s `calls` / `attempts` never
count it), botocore does not retry it (no attempt was made), `after-call` still reports it
(the sandbox's `record_calls` shows it failed with that code), and the client raises its
modeled exception class (a ClientError).

`install()` (run when `local_aws` is imported) adds the two handlers to
`botocore.handlers.BUILTIN_HANDLERS`, the list every botocore session registers when it is
created (moto hooks its `before-send` the same way), so every client of a session created from
then on is checked: plain boto3, `mock_aws`, the sandbox's and the drain Lambda's sessions, the
Step Functions interpreter's, and clients wrapped in botocore's Stubber (whose `before-call`
answer comes after this one: AWS refuses the request before anything else happens).
boto3's default session, if one already exists, gets them too.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS, REGISTER_FIRST, REGISTER_LAST
from botocore.model import OperationModel, Shape
from botocore.utils import is_json_value_header

_log = logging.getLogger(__name__)

# The error each service answers for a parameter that breaks its model: (code, source).
SERVICE_ERRORS: dict[str, tuple[str, str]] = {
    "ecs": (
        "InvalidParameterException",
        "ECS API Reference, each action's Errors and botocore's ecs error shape "
        "InvalidParameterException: 'The specified parameter isn't valid.'",
    ),
    "autoscaling": (
        "ValidationError",
        "EC2 Auto Scaling API Reference 'Common Errors': ValidationError, 400 (query API)",
    ),
    "stepfunctions": (
        "ValidationException",
        "Step Functions API Reference, StartExecution / ListExecutions ... Errors and the "
        "botocore error shape ValidationException; an execution name over 80 characters is "
        "answered ValidationException (AWS's answer quoted in getmoto/moto#6438). InvalidName "
        "is for the name's character rules, which local_aws/stepfunctions.py checks",
    ),
    "events": (
        "ValidationException",
        "EventBridge API Reference 'Common Errors' (ValidationException); a rule name over 64 "
        "characters is answered ValidationException (awslabs/aws-service-catalog-factory#53)",
    ),
    "lambda": (
        "ValidationException",
        "Lambda answers model violations ('1 validation error detected ... Member must satisfy "
        "regular expression pattern') as ValidationException (highsource/bitcoin-a-day#1, "
        "aarondfrancis/sidecar#147); InvalidParameterValueException is for values the model "
        "allows and Lambda still refuses",
    ),
    "sqs": (
        "InvalidParameterValue",
        "SQS API Reference 'Common Errors': InvalidParameterValue, 400 (aws/aws-sdk#267)",
    ),
    "cloudwatch": (
        "ValidationError",
        "CloudWatch API Reference 'Common Errors': ValidationError, 400",
    ),
    "ec2": (
        "InvalidParameterValue",
        "EC2 API Reference 'Error codes for the Amazon EC2 API': InvalidParameterValue",
    ),
    "iam": ("ValidationError", "IAM API Reference 'Common Errors': ValidationError, 400"),
}
# Services missing from the table: what AWS's query and JSON stacks answer.
_DEFAULT_BY_PROTOCOL = {"query": "ValidationError", "ec2": "InvalidParameterValue"}
_DEFAULT_CODE = "ValidationException"

REQUEST_ID = "00000000-0000-0000-0000-000000000000"
_CONTEXT_KEY = "local_aws.service_model.violations"
_QUERY_PROTOCOLS = ("query", "ec2")
_VALUE_SHOWN = 200  # characters of a value quoted in the message

# pattern -> why it is not applied (Python's re can't read it); filled as patterns are met.
SKIPPED_PATTERNS: dict[str, str] = {}


def error_code(service_name: str, protocol: str | None = None) -> str:
    """The code ``service_name`` answers for a request that breaks its model."""
    if service_name in SERVICE_ERRORS:
        return SERVICE_ERRORS[service_name][0]
    return _DEFAULT_BY_PROTOCOL.get(protocol or "", _DEFAULT_CODE)


@dataclass(frozen=True)
class Violation:
    """One constraint a request breaks: where, the value, and the constraint in AWS's words."""

    path: str  # as the SDK spells it: "attributes[0].targetType"
    value: Any
    constraint: str  # "Member must have length less than or equal to 255"

    def describe(self) -> str:
        shown = "null" if self.value is None else f"'{_show(self.value)}'"
        return f"Value {shown} at '{self.path}' failed to satisfy constraint: {self.constraint}"


def message(violations: list[Violation]) -> str:
    """AWS's wording: "2 validation errors detected: Value ...; Value ..."."""
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(v.describe() for v in violations)


def check_request(operation: OperationModel, params: Mapping[str, Any]) -> list[Violation]:
    """What AWS would refuse in ``params`` for ``operation`` (empty: nothing). Values of the
    wrong type are left alone: botocore (or the serializer) deals with them."""
    shape = operation.input_shape
    if shape is None:
        return []
    checker = _Checker()
    checker.check(params, shape, "")
    return checker.violations


class _Checker:
    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def report(self, path: str, value: Any, constraint: str) -> None:
        self.violations.append(Violation(path or "input", value, constraint))

    def check(self, value: Any, shape: Shape, path: str) -> None:
        if value is None:
            return
        kind = shape.type_name
        if kind == "structure":
            self._structure(value, shape, path)
        elif kind == "list":
            if isinstance(value, (list, tuple)):
                self._length(value, len(value), shape, path)
                for index, item in enumerate(value):
                    self.check(item, shape.member, f"{path}[{index}]")  # type: ignore[attr-defined]
        elif kind == "map":
            if isinstance(value, Mapping):
                self._length(value, len(value), shape, path)
                for key, item in value.items():
                    self.check(key, shape.key, f"{path} (key: {key})")  # type: ignore[attr-defined]
                    self.check(item, shape.value, f"{path}.{key}")  # type: ignore[attr-defined]
        elif kind == "string":
            if isinstance(value, str) and not is_json_value_header(shape):
                self._string(value, shape, path)
        elif kind in ("integer", "long", "float", "double"):
            if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
                self._number(value, shape, path)
        elif kind == "blob":
            size = _blob_size(value)
            if size is not None:
                self._length(value, size, shape, path, unit="bytes")

    def _structure(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, Mapping) or getattr(shape, "is_document_type", False):
            return
        prefix = f"{path}." if path else ""
        for name in shape.required_members:  # type: ignore[attr-defined]
            if value.get(name) is None:
                self.report(f"{prefix}{name}", None, "Member must not be null")
        members = shape.members  # type: ignore[attr-defined]
        for name, item in value.items():
            if name in members:
                self.check(item, members[name], f"{prefix}{name}")

    def _length(self, value: Any, size: int, shape: Shape, path: str, unit: str = "") -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        suffix = f" {unit}" if unit else ""
        if high is not None and size > high:
            self.report(
                path, value, f"Member must have length less than or equal to {high}{suffix}"
            )
        if low is not None and size < low:
            self.report(
                path, value, f"Member must have length greater than or equal to {low}{suffix}"
            )

    def _string(self, value: str, shape: Shape, path: str) -> None:
        allowed = shape.enum
        if allowed and value not in allowed:
            self.report(path, value, f"Member must satisfy enum value set: [{', '.join(allowed)}]")
        self._length(value, len(value), shape, path)
        pattern = shape.metadata.get("pattern")
        if pattern is not None:
            regex = compiled_pattern(pattern)
            if regex is not None and regex.search(value) is None:
                self.report(
                    path, value, f"Member must satisfy regular expression pattern: {pattern}"
                )

    def _number(self, value: float | Decimal, shape: Shape, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if high is not None and value > high:
            self.report(path, value, f"Member must have value less than or equal to {high}")
        if low is not None and value < low:
            self.report(path, value, f"Member must have value greater than or equal to {low}")


def _blob_size(value: Any) -> int | None:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return None  # a file-like object: streamed, not measured here


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_show(item) for item in value) + "]"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, (bytes, bytearray)):
        text = f"<{len(value)} bytes>"
    else:
        text = str(value)
    if len(text) > _VALUE_SHOWN:
        return f"{text[:_VALUE_SHOWN]}... ({len(text)} characters)"
    return text


# --- Java regular expressions in Python ---------------------------------------------------


class Untranslatable(ValueError):
    """A Java pattern construct Python's re has no equivalent for."""


# Java's POSIX classes are ASCII-only unless UNICODE_CHARACTER_CLASS is set ("all": any
# character; java.util.regex.Pattern).
_POSIX: dict[str, list[tuple[int, int]]] = {
    "all": [(0x00, sys.maxunicode)],
    "ASCII": [(0x00, 0x7F)],
    "Lower": [(0x61, 0x7A)],
    "Upper": [(0x41, 0x5A)],
    "Alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "Digit": [(0x30, 0x39)],
    "Alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "Punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "Graph": [(0x21, 0x7E)],
    "Print": [(0x20, 0x7E)],
    "Blank": [(0x09, 0x09), (0x20, 0x20)],
    "Cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "XDigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
    "Space": [(0x09, 0x0D), (0x20, 0x20)],
}
# Java's "." matches anything but a line terminator (\n, \r, \u0085, \u2028, \u2029).
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"
_CLASS_ESCAPES = "wWdDsSpP"  # escapes that stand for a set of characters


@functools.cache
def _categories() -> dict[str, tuple[tuple[int, int], ...]]:
    """Unicode general category ("Lu", "Nd", ...) -> code point ranges (Python's Unicode data;
    one pass over every code point, about a quarter of a second, only if a pattern needs it)."""
    found: dict[str, list[list[int]]] = {}
    for point in range(sys.maxunicode + 1):
        ranges = found.setdefault(unicodedata.category(chr(point)), [])
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    return {name: tuple((lo, hi) for lo, hi in ranges) for name, ranges in found.items()}


def _property_ranges(name: str) -> list[tuple[int, int]]:
    """The code points of ``\\p{name}``: a general category (one or two letters, optionally
    "Is"-prefixed) or a POSIX class."""
    if name in _POSIX:
        return _POSIX[name]
    category = name[2:] if name.startswith("Is") else name
    table = _categories()
    if len(category) == 1 and category.isupper():
        parts = [r for full, ranges in table.items() if full[0] == category for r in ranges]
        if parts:
            return sorted(parts)
    elif category in table:
        return list(table[category])
    raise Untranslatable(f"\\p{{{name}}} (not a general category or POSIX class)")


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    result, start = [], 0
    for lo, hi in sorted(ranges):
        if lo > start:
            result.append((start, lo - 1))
        start = max(start, hi + 1)
    if start <= sys.maxunicode:
        result.append((start, sys.maxunicode))
    return result


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)


def java_to_python(pattern: str) -> str:
    """The Python `re` spelling of a Java pattern (raises `Untranslatable`); see the module
    docstring for what is translated."""
    out: list[str] = []
    in_class = False
    class_opened = -1  # index in `out` of the class's "[": a "]" right after it is literal
    dotall = "(?s" in pattern
    i, end = 0, len(pattern)
    while i < end:
        char = pattern[i]
        if "\ud800" <= char <= "\udbff" and "\udc00" <= pattern[i + 1 : i + 2] <= "\udfff":
            # A surrogate pair written out (not escaped) is one code point too.
            out.append(
                f"\\U{0x10000 + ((ord(char) - 0xD800) << 10) + (ord(pattern[i + 1]) - 0xDC00):08x}"
            )
            i += 2
            continue
        if char == "\\":
            if i + 1 >= end:
                raise Untranslatable("trailing backslash")
            letter = pattern[i + 1]
            token, i = _escape(pattern, i, in_class)
            out.append(token)
            if in_class and letter in _CLASS_ESCAPES and pattern[i : i + 1] == "-":
                # Java reads a "-" after a class escape ("[\\w-_]") as a literal; Python, a range.
                out.append("\\-")
                i += 1
            continue
        if in_class:
            if char == "[":
                raise Untranslatable("nested character class (Java's class union)")
            if char == "&" and pattern.startswith("&&", i):
                raise Untranslatable("character class intersection (&&)")
            if char == "]" and len(out) - 1 != class_opened:
                in_class = False
            # Literal in a Java class; Python warns of a future set operation on "||", "~~".
            out.append("\\" + char if char in "|~" else char)
        elif char == "[":
            in_class = True
            out.append(char)
            if pattern.startswith("[^", i):
                out.append("^")
                i += 1
            class_opened = len(out) - 1
        elif char == "(" and pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in "=!":
            out.append("(?P<")  # a named group (Java: (?<name>X); Python: (?P<name>X))
            i += 3
            continue
        elif char == "." and not dotall:
            out.append(_JAVA_DOT)
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """The Python spelling of the escape at ``pattern[i]`` and the index after it."""
    letter = pattern[i + 1]
    if letter == "u":
        high = _hex(pattern[i + 2 : i + 6])
        low = _hex(pattern[i + 8 : i + 12]) if pattern.startswith("\\u", i + 6) else None
        # Java reads a high + low surrogate pair as the one code point it encodes.
        if 0xD800 <= high <= 0xDBFF and low is not None and 0xDC00 <= low <= 0xDFFF:
            point = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            return f"\\U{point:08x}", i + 12
        return f"\\u{high:04x}", i + 6
    if letter == "x" and pattern.startswith("{", i + 2):
        close = pattern.find("}", i + 3)
        if close < 0:
            raise Untranslatable("unclosed \\x{")
        return f"\\U{_hex(pattern[i + 3 : close]):08x}", close + 1
    if letter in "pP":
        if pattern.startswith("{", i + 2):
            close = pattern.find("}", i + 3)
            if close < 0:
                raise Untranslatable("unclosed \\p{")
            name, after = pattern[i + 3 : close], close + 1
        else:
            name, after = pattern[i + 2 : i + 3], i + 3
        ranges = _property_ranges(name)
        if letter == "P" and in_class:
            ranges = _complement(ranges)  # a negated set can't be nested in a Python class
        body = _class_body(ranges)
        if in_class:
            return body, after
        return (f"[^{body}]" if letter == "P" else f"[{body}]"), after
    if letter == "Q":  # a quoted literal, to \\E or the end
        close = pattern.find("\\E", i + 2)
        stop = len(pattern) if close < 0 else close
        literal = "".join(c if c.isalnum() else re.escape(c) for c in pattern[i + 2 : stop])
        return literal, (stop if close < 0 else close + 2)
    if letter == "z" and not in_class:
        return "\\Z", i + 2
    if letter == "Z" and not in_class:
        return "(?=[\\n\\r\\u0085\\u2028\\u2029]?\\Z)", i + 2  # before a final line terminator
    if letter in "hHvVRXkKGe":
        # Java classes and escapes Python reads differently or not at all.
        raise Untranslatable(f"\\{letter}")
    return pattern[i : i + 2], i + 2


def _hex(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise Untranslatable(f"bad hex escape {text!r}") from None


@functools.cache
def compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    """The model's pattern compiled for Python, or None (then listed in `SKIPPED_PATTERNS`)."""
    try:
        translated = java_to_python(pattern)
        with warnings.catch_warnings():
            # Python warns where it reads a class differently from other engines (nested sets).
            warnings.simplefilter("error")
            return re.compile(translated, re.ASCII)
    except (Untranslatable, re.error, FutureWarning) as error:
        SKIPPED_PATTERNS[pattern] = str(error)
        _log.warning("service model pattern not applied (%s): %s", error, pattern)
        return None


def untranslatable_patterns(service_names: Iterable[str]) -> dict[str, str]:
    """Every pattern of these services' models that is not applied, and why."""
    session = botocore.session.get_session()
    skipped: dict[str, str] = {}
    for name in service_names:
        model = session.get_service_model(name)
        for shape_name in model.shape_names:
            pattern = model.shape_for(shape_name).metadata.get("pattern")
            if pattern is not None and compiled_pattern(pattern) is None:
                skipped[pattern] = SKIPPED_PATTERNS[pattern]
    return skipped


# --- botocore handlers --------------------------------------------------------------------


def _check_parameters(
    params: Mapping[str, Any], model: OperationModel, context: dict[str, Any], **_: Any
) -> None:
    """before-parameter-build (registered last: the parameters as they will be sent)."""
    violations = check_request(model, params)
    if violations:
        context[_CONTEXT_KEY] = violations


def _answer_violation(
    model: OperationModel, context: dict[str, Any], **_: Any
) -> tuple[AWSResponse, dict[str, Any]] | None:
    """before-call (first): AWS's answer to a request that breaks the model, else nothing."""
    violations = context.get(_CONTEXT_KEY)
    if not violations:
        return None
    return rejection(model, violations)


def rejection(
    operation: OperationModel, violations: list[Violation]
) -> tuple[AWSResponse, dict[str, Any]]:
    """The HTTP response and its parsed form for a request AWS refuses on its model."""
    service = operation.service_model
    protocol = service.metadata.get("protocol")
    code = error_code(service.service_name, protocol)
    text = message(violations)
    http = _http_answer(protocol, code, text)
    error: dict[str, Any] = {"Code": code, "Message": text}
    if protocol in _QUERY_PROTOCOLS:
        error["Type"] = "Sender"
    parsed = {
        "Error": error,
        "ResponseMetadata": {
            "RequestId": REQUEST_ID,
            "HTTPStatusCode": 400,
            "HTTPHeaders": {k.lower(): v for k, v in http.headers.items()},
            "RetryAttempts": 0,
        },
    }
    return http, parsed


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _http_answer(protocol: str | None, code: str, text: str) -> AWSResponse:
    """What goes over the wire (never parsed: the parsed answer goes with it), in the
    protocol's shape, with a request id as every AWS answer has."""
    if protocol in _QUERY_PROTOCOLS:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(text)}</Message></Error><RequestId>{REQUEST_ID}</RequestId>"
            "</ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": REQUEST_ID}
    else:
        body = json.dumps({"__type": code, "message": text}).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "x-amzn-ErrorType": code,
            "x-amzn-RequestId": REQUEST_ID,
        }
    return AWSResponse("https://rejected.invalid/", 400, headers, _Body(body))  # type: ignore[arg-type]


_HANDLERS = (
    ("before-parameter-build", _check_parameters, REGISTER_LAST),
    ("before-call.*.*", _answer_violation, REGISTER_FIRST),
)


def install() -> None:
    """Check every botocore client made from now on (idempotent); see the module docstring."""
    for spec in _HANDLERS:
        if spec not in BUILTIN_HANDLERS:
            BUILTIN_HANDLERS.append(spec)
    import boto3

    default = boto3.DEFAULT_SESSION
    if default is not None:  # made before the install: register on it directly
        events = default.events
        events.register_last(_HANDLERS[0][0], _check_parameters, unique_id=_CONTEXT_KEY + "/check")
        events.register_first(
            _HANDLERS[1][0], _answer_violation, unique_id=_CONTEXT_KEY + "/answer"
        )
