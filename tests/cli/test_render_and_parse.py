"""The CLI without AWS: its formatter (a pure function of what was read), console links per
partition, the progress line, the argument checks, and what importing it loads."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ecs_drain_hook.cli import render
from ecs_drain_hook.cli.main import PROGRESS_FROM, _progress, parser
from ecs_drain_hook.cli.views import DrainView, Round, ServiceHold, TaskLeft
from ecs_drain_hook.console import execution_url

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:execution:loop:i-0123456789abcdef0-tok"


def _view(**overrides: object) -> DrainView:
    values: dict[str, object] = {
        "instance_id": "i-0123456789abcdef0",
        "cluster": "prod",
        "container_instance_arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/x",
        "container_instance_status": "DRAINING",
        "started_at": NOW - timedelta(minutes=42, seconds=5),
        "loop": "i-0123456789abcdef0-tok",
        "drain_record": "1767613075 i-0123456789abcdef0-tok",
        "action_hook": "ecs-drain-hook",
        "action_group": "web-asg",
        "group": "web-asg",
        "lifecycle_state": "Terminating:Wait",
        "hold_start_source": "scaling_activity",
        "deadline_at": NOW + timedelta(minutes=77, seconds=55),
        "at_deadline": "stop the tasks left, then CONTINUE 45 s later",
        "release_when": "drained",
        "tasks": [
            TaskLeft("t1", "service", "api", "RUNNING", "RUNNING"),
            TaskLeft("t2", "standalone", None, "RUNNING", "RUNNING"),
        ],
        "services": [
            ServiceHold(
                name="api",
                tasks_on_instance=1,
                running=3,
                desired=4,
                latest_event="service api was unable to place a task because ...",
                latest_event_at=NOW - timedelta(seconds=30),
            )
        ],
        "execution_arn": ARN,
        "execution_status": "RUNNING",
        "console_url": execution_url(ARN),
    }
    values.update(overrides)
    return DrainView(**values)  # type: ignore[arg-type]


def test_status_text_says_what_holds_each_drain() -> None:
    text = render.status_text([_view()], ["prod"], NOW)
    lines = text.splitlines()
    assert lines[0] == "1 drain(s) under way in prod (2026-01-05 12:00:00Z)"
    assert lines[2] == "i-0123456789abcdef0  web-asg  Terminating:Wait  cluster prod"
    assert "since          2026-01-05 11:17:55Z (42m05s ago, from Auto Scaling's scaling" in text
    assert "deadline       2026-01-05 13:17:55Z (in 1h17m55s): stop the tasks left" in text
    assert "tasks left     2 (1 service, 0 daemon, 1 standalone)" in text
    assert "service        api: 1 here, 3/4 running" in text
    assert "11:59:30Z service api was unable to place a task because ..." in text
    assert "standalone     1 task(s), RUNNING" in text
    assert f"#/v2/executions/details/{ARN}" in text


def test_nothing_draining_says_so() -> None:
    assert render.status_text([], ["prod"], NOW) == (
        "no drain under way in prod (2026-01-05 12:00:00Z)"
    )


def test_an_empty_instance_waiting_for_its_services() -> None:
    waited = ServiceHold("api", 0, 2, 4, status="ACTIVE", waited_for=True)
    text = render.status_text(
        [_view(tasks=[], services=[waited], release_when="services_steady")], ["prod"], NOW
    )
    assert "service        api: 2/4 running, waited for" in text
    assert "waiting for the services above to run their desired count" in text


def test_explain_adds_the_records_and_the_rounds_in_time_order() -> None:
    rounds = [
        Round(NOW - timedelta(minutes=40), "draining", 2, "2 unstopped task(s) hold", 120),
        Round(NOW - timedelta(minutes=38), "failed", None, "Lambda.ServiceException: boom"),
    ]
    text = render.explain_text(_view(rounds=rounds), NOW)
    assert "drain record   '1767613075 i-0123456789abcdef0-tok'" in text
    assert "action record  hook ecs-drain-hook, group web-asg" in text
    tail = text.split("oldest first:\n", 1)[1].splitlines()
    assert tail[0].split()[:4] == ["11:20:00Z", "draining", "2", "left,"]
    assert tail[1].strip() == "11:22:00Z failed: Lambda.ServiceException: boom"


def test_json_shape_is_stable() -> None:
    data = json.loads(render.status_json([_view()], ["prod"], NOW))
    assert set(data) == {"read_at", "clusters", "drains"}
    (drain,) = data["drains"]
    assert {
        "instance_id", "cluster", "group", "lifecycle_state", "started_at", "hold_start_source",
        "deadline_at", "at_deadline", "counts", "tasks", "services", "agent_connected",
        "agent_lost_since", "execution_arn", "execution_status", "console_url", "held",
        "drain_record", "action_hook", "action_group", "release_when", "release_services",
    } <= set(drain)  # fmt: skip
    assert drain["counts"] == {"service": 1, "daemon": 0, "standalone": 1}
    assert drain["started_at"] == "2026-01-05T11:17:55+00:00"
    assert drain["services"][0]["latest_event_at"] == "2026-01-05T11:59:30+00:00"


@pytest.mark.parametrize(
    ("partition", "region", "host"),
    [
        ("aws", "eu-west-1", "console.aws.amazon.com"),
        ("aws-cn", "cn-north-1", "console.amazonaws.cn"),
        ("aws-us-gov", "us-gov-west-1", "console.amazonaws-us-gov.com"),
    ],
)
def test_console_links_follow_the_partition(partition: str, region: str, host: str) -> None:
    arn = f"arn:{partition}:states:{region}:123456789012:execution:loop:run"
    assert execution_url(arn) == (
        f"https://{host}/states/home?region={region}#/v2/executions/details/{arn}"
    )


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_for_large_clusters_and_on_a_terminal() -> None:
    quiet = io.StringIO()
    report = _progress(quiet)
    for done in range(1, PROGRESS_FROM):
        report(done, PROGRESS_FROM - 1, "i-1")
    assert quiet.getvalue() == ""  # a handful of drains off a terminal: nothing
    many = io.StringIO()
    report = _progress(many)
    for done in range(1, 26):
        report(done, 25, f"i-{done}")
    assert many.getvalue().splitlines() == [
        "ecs-drain-hook: reading drain 10 of 25 (i-10)",
        "ecs-drain-hook: reading drain 20 of 25 (i-20)",
        "ecs-drain-hook: reading drain 25 of 25 (i-25)",
    ]
    tty = _Tty()
    report = _progress(tty)
    report(1, 2, "i-1")
    report(2, 2, "i-2")
    assert tty.getvalue() == (
        "\recs-drain-hook: reading drain 1 of 2 (i-1)\recs-drain-hook: reading drain 2 of 2 (i-2)\n"
    )


def test_arguments_are_checked_before_any_aws_call() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["explain", "not-an-instance"])
    with pytest.raises(SystemExit):
        parser().parse_args(["release", "i-0123456789abcdef0"])  # --result is required
    with pytest.raises(SystemExit):
        parser().parse_args(["release", "i-0123456789abcdef0", "--result", "terminate"])
    args = parser().parse_args(["status", "--cluster", "c", "--output", "json"])
    assert (args.cluster, args.output) == ("c", "json")


def test_the_command_starts_without_boto3_aws_cdk_or_pydantic() -> None:
    """`--help` imports nothing heavy; the Lambda never imports the CLI."""
    code = (
        "import json, sys\n"
        "from ecs_drain_hook.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(out.stderr.strip().splitlines()[-1]))
    heavy = ("boto3", "botocore", "aws_cdk", "jsii", "pydantic", "aws_lambda_powertools")
    assert not [m for m in loaded if m.startswith(heavy)]
    assert "usage: ecs-drain-hook" in out.stdout
    lambda_code = "\n".join(p.read_text() for p in (ROOT / "lambda").rglob("*.py"))
    assert "ecs_drain_hook.cli" not in lambda_code and "from ecs_drain_hook" not in lambda_code
