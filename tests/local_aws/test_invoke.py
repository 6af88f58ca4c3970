"""`make invoke EVENT=...`: the Lambda's answer to a sample event file, on the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_aws import invoke

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("manual-dry-run.json", "dry_run"),
        ("lifecycle-terminate.json", "draining"),
        ("sns-test-notification.json", "ignored"),
    ],
)
def test_a_sample_event_gets_the_lambdas_answer(name: str, action: str, capsys) -> None:
    assert invoke.main([str(EVENTS / name)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["action"] == action
    if action != "ignored":
        assert answer["instance_id"] != invoke.SAMPLE_INSTANCE  # the sandbox's own instance
