"""The sample events in events/ are shapes the Lambda accepts (and that the rule matches)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def test_every_documented_event_exists() -> None:
    names = {p.name for p in EVENTS.glob("*.json")}
    assert names == {
        "lifecycle-terminate.json",
        "sns-lifecycle-terminate.json",
        "sns-test-notification.json",
        "manual-with-hook.json",
        "manual-without-hook.json",
        "manual-dry-run.json",
    }
    readme = (EVENTS / "README.md").read_text()
    for name in names:
        assert name in readme


@pytest.mark.parametrize(
    ("name", "kind", "dry_run"),
    [
        ("lifecycle-terminate.json", "LifecycleRequest", False),
        ("sns-lifecycle-terminate.json", "LifecycleRequest", False),
        ("sns-test-notification.json", "IgnoredRequest", False),
        ("manual-with-hook.json", "LifecycleRequest", False),
        ("manual-without-hook.json", "LifecycleRequest", False),
        ("manual-dry-run.json", "LifecycleRequest", True),
    ],
)
def test_the_lambda_parses_the_sample(name: str, kind: str, dry_run: bool) -> None:
    from drain_hook.models.requests import parse_request

    request = parse_request(load_event(name))
    assert type(request).__name__ == kind
    if kind == "LifecycleRequest":
        assert request.instance_id == "i-0123456789abcdef0"
        assert request.dry_run is dry_run


def test_the_with_hook_samples_name_the_hook() -> None:
    from drain_hook.models.requests import parse_request

    for name in (
        "lifecycle-terminate.json",
        "sns-lifecycle-terminate.json",
        "manual-with-hook.json",
    ):
        request = parse_request(load_event(name))
        assert (request.asg_name, request.hook_name) == ("prod-asg-a", "ecs-drain-hook")
    request = parse_request(load_event("manual-without-hook.json"))
    assert (request.asg_name, request.hook_name) == (None, None)
