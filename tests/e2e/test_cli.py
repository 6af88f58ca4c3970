"""The ecs-drain-hook command on the sandbox, end to end: the CLI's own code (`main`) with a boto3
session of the sandbox's AWS and its virtual clock. It finds the deployment by its stack's outputs
(`Sandbox.publish_stack`), and every call it makes passes the sandbox's service-model check."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from ecs_drain_hook.cli.main import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, main
from local_aws import autoscaling
from local_aws.sandbox import Sandbox
from tests.e2e.conftest import SandboxFactory

CLUSTER = "c1"
BIG_MEMORY = 4000  # one task of it per instance: moto registers 7482 MiB whatever is asked


class Tty(io.StringIO):
    """A terminal the user answers on."""

    def isatty(self) -> bool:
        return True


def cli(sb: Sandbox, *argv: str, stdin: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        list(argv),
        session=boto3.session.Session(region_name=sb.region),
        now=sb.clock.now(),
        stdout=out,
        stderr=err,
        stdin=stdin or io.StringIO(),
    )
    return code, out.getvalue(), err.getvalue()


def _stuck_world(sb: Sandbox) -> tuple[str, str, str]:
    """Two instances, each full with one task of `big` (its replacement can't be placed: no
    room on the other), a web task each and a standalone batch task on the one scaled in."""
    asg = sb.add_cluster(CLUSTER, instances=2, heartbeat_timeout=1200)
    sb.register_task_definition("big", memory=BIG_MEMORY)
    sb.register_task_definition("web")
    sb.register_task_definition("batch")
    sb.create_service(CLUSTER, "big", "big", 2, minimum_healthy_percent=100, maximum_percent=200)
    sb.create_service(CLUSTER, "web", "web", 2, minimum_healthy_percent=50, maximum_percent=200)
    [victim] = sb.scale_in_candidates(asg, 1)
    [other] = [i for i in sb.group_instances(asg) if i != victim]
    sb.run_standalone(CLUSTER, "batch", victim, exits_after=3 * 3600)
    sb.settle()
    sb.deploy()
    sb.publish_stack()
    sb.scale_in(asg, 1)
    sb.advance(sb.clock.now() + timedelta(minutes=10))
    return asg, victim, other


def test_status_names_the_stuck_service_the_standalone_task_and_the_loop(
    sandbox: SandboxFactory,
) -> None:
    sb = sandbox(seed=5)
    asg, victim, _ = _stuck_world(sb)
    code, out, err = cli(sb, "status")
    assert code == EXIT_OK, err
    assert out.startswith(f"1 drain(s) under way in {CLUSTER}")
    assert f"{victim}  {asg}  Terminating:Wait  cluster {CLUSTER}" in out
    assert "from Auto Scaling's scaling activity" in out
    assert "stop the tasks left, then CONTINUE 45 s later" in out
    assert "tasks left     2 (1 service, 0 daemon, 1 standalone)" in out
    # The scheduler's own sentence: why the replacement of big's task has nowhere to go.
    assert "service        big: 1 here, 2/2 running" in out
    assert (
        "service big was unable to place a task because no container instance met all of its" in out
    )
    assert "has insufficient memory available" in out
    assert "standalone     1 task(s), RUNNING" in out
    assert "agent          connected" in out
    assert (
        "https://console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/" in out
    )
    assert "RUNNING" in out.split("loop", 1)[1]
    code, out, _ = cli(sb, "status", "--group", "another-asg")
    assert code == EXIT_OK and out.startswith(f"no drain under way in {CLUSTER}")
    code, out, _ = cli(sb, "status", "--group", asg, "--output", "json")
    assert [d["instance_id"] for d in json.loads(out)["drains"]] == [victim]


def test_status_as_json_and_explain_show_the_records_and_the_last_rounds(
    sandbox: SandboxFactory,
) -> None:
    sb = sandbox(seed=5)
    asg, victim, _ = _stuck_world(sb)
    code, out, _ = cli(sb, "status", "--output", "json")
    assert code == EXIT_OK
    data = json.loads(out)
    assert set(data) == {"read_at", "clusters", "drains"} and data["clusters"] == [CLUSTER]
    (drain,) = data["drains"]
    assert drain["instance_id"] == victim and drain["held"] is True
    assert drain["counts"] == {"service": 1, "daemon": 0, "standalone": 1}
    assert drain["group"] == drain["action_group"] == asg
    assert drain["hold_start_source"] == "scaling_activity"
    assert drain["release_services"] == ["big", "web"]
    (big,) = [s for s in drain["services"] if s["name"] == "big"]
    assert (big["running"], big["desired"], big["tasks_on_instance"]) == (2, 2, 1)
    assert "unable to place a task" in big["latest_event"]
    for key in ("started_at", "deadline_at", "latest_event_at"):
        value = drain[key] if key in drain else big[key]
        assert value.endswith("+00:00"), key

    code, out, _ = cli(sb, "explain", victim)
    assert code == EXIT_OK
    assert f"drain record   '{drain['drain_record']}'" in out
    assert f"action record  hook ecs-drain-hook, group {asg}" in out
    assert "RELEASE_WHEN=drained; services at the start: big, web" in out
    rounds = out.split("oldest first:\n", 1)[1].splitlines()
    assert rounds[0].split()[1] == "draining" and "next poll in" in rounds[0]
    assert len(rounds) >= 3  # the first round and the polls of ten minutes
    times = [line.split()[0] for line in rounds]
    assert times == sorted(times)


def test_status_shows_an_agent_away(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=5)
    _, victim, _ = _stuck_world(sb)
    sb.disconnect_agent(victim)
    sb.advance(sb.clock.now() + timedelta(minutes=5))  # a poll records when it went
    code, out, _ = cli(sb, "status")
    assert code == EXIT_OK
    assert "agent          DISCONNECTED since " in out
    assert "its tasks can't stop until it is back" in out


def test_nothing_draining_says_so_and_explain_of_an_unknown_instance_fails(
    sandbox: SandboxFactory,
) -> None:
    sb = sandbox(seed=2)
    sb.add_cluster(CLUSTER, instances=2)
    sb.deploy()
    sb.publish_stack()
    code, out, _ = cli(sb, "status")
    assert (code, out.split(" (")[0]) == (EXIT_OK, f"no drain under way in {CLUSTER}")
    code, out, _ = cli(sb, "status", "--output", "json")
    assert json.loads(out)["drains"] == []
    code, _, err = cli(sb, "explain", "i-0123456789abcdef0")
    assert code == EXIT_ERROR and "is not registered in c1" in err
    code, _, err = cli(sb, "status", "--stack-name", "NoSuchStack")
    assert code == EXIT_ERROR and "no stack 'NoSuchStack'" in err


def test_release_refuses_without_yes_off_a_terminal_and_an_instance_we_do_not_hold(
    sandbox: SandboxFactory,
) -> None:
    sb = sandbox(seed=5)
    _, victim, other = _stuck_world(sb)
    code, _, err = cli(sb, "release", victim, "--result", "continue")
    assert code == EXIT_REFUSED and "no terminal to ask on" in err
    code, _, err = cli(sb, "release", victim, "--result", "continue", stdin=Tty("n\n"))
    assert code == EXIT_REFUSED and "not released" in err
    # InService, never drained: no drain record of ours.
    code, _, err = cli(sb, "release", other, "--result", "continue", "--yes")
    assert code == EXIT_REFUSED and "carries no drain record of ecs-drain-hook" in err
    code, _, err = cli(sb, "release", "i-0123456789abcdef0", "--result", "abandon", "--yes")
    assert code == EXIT_REFUSED and "is not registered" in err
    assert autoscaling.active_action(victim) is not None  # nothing was released


def test_release_refuses_a_record_auto_scaling_does_not_hold(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=5)
    asg, _, other = _stuck_world(sb)
    # Our records on an instance Auto Scaling shows InService (copied there by hand): no wait.
    ecs = sb.client("ecs")
    [arn] = ecs.list_container_instances(cluster=CLUSTER, filter=f"ec2InstanceId == {other}")[
        "containerInstanceArns"
    ]
    ecs.put_attributes(
        cluster=CLUSTER,
        attributes=[
            {"name": "ecs-drain-hook", "value": "1736154026 some-loop", "targetId": arn},
            {"name": "ecs-drain-hook.action", "value": f"ecs-drain-hook {asg}", "targetId": arn},
        ],
    )
    code, _, err = cli(sb, "release", other, "--result", "continue", "--yes")
    assert code == EXIT_REFUSED
    assert f"Auto Scaling shows {other} InService, not waiting on a termination hook" in err


@pytest.mark.parametrize(("result", "confirm"), [("continue", None), ("abandon", "y\n")])
def test_release_completes_stops_the_loop_and_clears_the_record(
    sandbox: SandboxFactory, result: str, confirm: str | None
) -> None:
    sb = sandbox(seed=5)
    _, victim, _ = _stuck_world(sb)
    args = ["release", victim, "--result", result, "--output", "json"]
    if confirm is None:
        args.append("--yes")
    code, out, err = cli(sb, *args, stdin=Tty(confirm) if confirm else None)
    assert code == EXIT_OK, err
    done = json.loads(out)
    assert done["result"] == result.upper()
    assert done["lifecycle_action_completed"] and done["loop_stopped"]
    # The instance terminates as soon as its action completes: its record goes with it.
    assert done["drain_record"] in ("cleared", "gone with the container instance")
    actions = autoscaling.lifecycle_actions(victim)
    assert [(a.result, a.ended_by) for a in actions] == [(result.upper(), "complete")]
    sb.run()
    # The loop's end (ABORTED) is released by the Lambda, which finds the action over.
    loop_ends = [
        inv.result
        for inv in sb.runtime.invocations
        if isinstance(inv.event, dict) and inv.event.get("source") == "aws.states"
    ]
    assert loop_ends and all(r is not None and r["action"] == "lifecycle_ended" for r in loop_ends)
    assert not [inv for inv in sb.runtime.invocations if inv.error]
    code, out, _ = cli(sb, "status")
    assert out.startswith("no drain under way")


def test_drain_invokes_the_deployed_lambda(sandbox: SandboxFactory) -> None:
    sb = sandbox(seed=2)
    asg = sb.add_cluster(CLUSTER, instances=2)
    sb.register_task_definition("web")
    sb.create_service(CLUSTER, "web", "web", 2)
    sb.settle()
    sb.deploy()
    sb.publish_stack()
    instance = sb.group_instances(asg)[0]
    code, out, err = cli(sb, "drain", instance, "--dry-run")
    assert code == EXIT_OK, err
    assert f"{instance}: dry_run" in out and "would: set container instance DRAINING" in out
    status = sb.client("ecs").describe_container_instances(
        cluster=CLUSTER,
        containerInstances=sb.client("ecs").list_container_instances(cluster=CLUSTER)[
            "containerInstanceArns"
        ],
    )["containerInstances"]
    assert {ci["status"] for ci in status} == {"ACTIVE"}  # a dry run writes nothing
    code, out, _ = cli(sb, "drain", instance, "--output", "json")
    assert code == EXIT_OK and json.loads(out)["action"] == "draining"
    code, _, err = cli(sb, "drain", instance, "--group", asg)
    assert code == EXIT_REFUSED and "--group and --hook go together" in err


def _shown_output(text: str, command: str) -> list[str]:
    """The lines a doc shows under `$ ecs-drain-hook <command> ...` in a text block."""
    block = text.split(f"$ ecs-drain-hook {command}", 1)[1].split("\n", 1)[1]
    return block.split("```", 1)[0].rstrip("\n").splitlines()


def test_the_output_the_docs_show_is_the_commands_own(sandbox: SandboxFactory) -> None:
    """README.md and docs/operations.md show status and explain on this world: the same lines."""
    repo = Path(__file__).resolve().parents[2]
    sb = sandbox(seed=5)
    _, victim, _ = _stuck_world(sb)
    status = cli(sb, "status")[1].rstrip("\n").splitlines()
    explain = cli(sb, "explain", victim)[1].rstrip("\n").splitlines()
    runbook = (repo / "docs" / "operations.md").read_text()
    assert _shown_output(runbook, "status") == status
    assert _shown_output(runbook, "explain") == explain
    # The README shows the status up to the loop's line (the console link left out).
    readme = _shown_output((repo / "README.md").read_text(), "status")
    assert readme == status[: len(readme)] and len(readme) >= 10
