"""`ecs-drain-hook`: the command line (argparse) over `aws` (reads and writes) and `render`."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from ecs_drain_hook.runtime.drain_hook.models.observations import INSTANCE_ID_PATTERN

PROG = "ecs-drain-hook"
# From this many drains on, reading them prints a progress line on stderr (always on a terminal).
PROGRESS_FROM = 10
EXIT_OK, EXIT_ERROR, EXIT_REFUSED = 0, 1, 2

DESCRIPTION = """\
See and steer the drains of an ecs-drain-hook deployment.

The deployment is found from its CloudFormation stack's outputs (--stack-name: any stack with an
EcsDrainHook(outputs=True); by default the repository app's EcsDrainHook, then
EcsDrainHookSample) or from --function, --state-machine and --cluster.
AWS credentials and Region come as for the AWS CLI: --profile / --region, AWS_PROFILE,
AWS_REGION, the config files."""


def _instance_id(text: str) -> str:
    if not re.fullmatch(INSTANCE_ID_PATTERN, text):
        raise argparse.ArgumentTypeError(f"not an EC2 instance id: {text!r} (i-0123456789abcdef0)")
    return text


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where")
    where.add_argument("--profile", help="AWS profile (default: AWS_PROFILE or the default one)")
    where.add_argument("--region", help="AWS Region (default: AWS_REGION or the profile's)")
    where.add_argument("--stack-name", help="the deployed stack whose outputs name the rest")
    where.add_argument("--function", help="the drain Lambda's name (instead of the stack output)")
    where.add_argument("--state-machine", help="the wait loop's state machine ARN")
    where.add_argument("--cluster", help="the ECS cluster (default: the function's CLUSTER_NAME)")
    common.add_argument(
        "--output", choices=("table", "json"), default="table", help="table (default) or json"
    )

    top = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser(
        "status",
        parents=[common],
        help="every drain under way: since when, deadline, what holds it",
        description="Every drain under way: instance, group, cluster, since when, the deadline "
        "and what happens at it, tasks left by kind, each service holding the instance with its "
        "counts and latest service event, the agent, the wait loop and its console link.",
    )
    status.add_argument("--group", help="only the drains of this Auto Scaling group")
    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="one instance's drain, its records and the loop's last decisions",
        description="The same as status for one instance, plus the drain record, the action "
        "record and the wait loop's last decisions from its execution history.",
    )
    explain.add_argument("instance", type=_instance_id, metavar="INSTANCE")
    release = commands.add_parser(
        "release",
        parents=[common],
        help="end a drain by hand: complete the lifecycle action, stop the loop",
        description="Complete the instance's lifecycle action with the result given, stop its "
        "wait loop and take the drain record off the container instance. Refuses an instance "
        "ecs-drain-hook does not hold, and asks first unless --yes (without a terminal to ask "
        "on, it refuses).",
    )
    release.add_argument("instance", type=_instance_id, metavar="INSTANCE")
    release.add_argument("--result", required=True, choices=("continue", "abandon"))
    release.add_argument("--yes", action="store_true", help="do not ask")
    drain = commands.add_parser(
        "drain",
        parents=[common],
        help="drain an instance by hand through the deployed Lambda (manual invoke)",
        description="Invoke the drain Lambda with the manual invoke shape. Without --group and "
        "--hook it drains and reports (the instance stays DRAINING); with both it completes "
        "that group's lifecycle action when drained.",
    )
    drain.add_argument("instance", type=_instance_id, metavar="INSTANCE")
    drain.add_argument("--dry-run", action="store_true", help="report the writes, make none")
    drain.add_argument("--group", help="the Auto Scaling group whose lifecycle action to complete")
    drain.add_argument("--hook", help="the lifecycle hook (with --group)")
    return top


def main(
    argv: Sequence[str] | None = None,
    *,
    session: Any = None,
    now: datetime | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    stdin: IO[str] | None = None,
) -> int:
    """Run one command; the exit status. `session` (a boto3 Session) and `now` let the sandbox
    and the tests run the same code on their own AWS and clock."""
    out, err, inp = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    args = parser().parse_args(argv)
    if args.command == "drain" and bool(args.group) != bool(args.hook):
        err.write(f"{PROG} drain: --group and --hook go together\n")
        return EXIT_REFUSED
    from ecs_drain_hook.cli import aws as reading  # boto3 is imported from here on

    try:
        client = reading.Aws(session, profile=args.profile, region=args.region)
        target = reading.resolve_target(
            client,
            stack_name=args.stack_name,
            function=args.function,
            state_machine=args.state_machine,
            cluster=args.cluster,
        )
        moment = now or datetime.now(UTC)
        return _run(args, client, target, moment, out, err, inp)
    except reading.Refused as error:
        err.write(f"{PROG} {args.command}: refused: {error}\n")
        return EXIT_REFUSED
    except reading.CliError as error:
        err.write(f"{PROG} {args.command}: {error}\n")
        return EXIT_ERROR
    except Exception as error:  # botocore's: no credentials, access denied, throttled...
        if type(error).__module__.startswith(("botocore", "boto3")):
            err.write(f"{PROG} {args.command}: {error}\n")
            return EXIT_ERROR
        raise


def _run(
    args: argparse.Namespace,
    client: Any,
    target: Any,
    now: datetime,
    out: IO[str],
    err: IO[str],
    inp: IO[str],
) -> int:
    from ecs_drain_hook.cli import aws as reading
    from ecs_drain_hook.cli import render

    json_out = args.output == "json"
    if args.command == "status":
        clusters = [args.cluster] if args.cluster else list(target.clusters)
        views = reading.list_drains(
            client, target, now=now, cluster=args.cluster, group=args.group,
            progress=_progress(err),
        )  # fmt: skip
        text = (render.status_json if json_out else render.status_text)(views, clusters, now)
        out.write(text + "\n")
        return EXIT_OK
    view = reading.read_drain(
        client, target, args.instance, rounds=reading.ROUNDS_SHOWN
        if args.command == "explain" else 0,
    )  # fmt: skip
    if args.command == "explain":
        if view is None:
            clusters = ", ".join(target.clusters) or "the cluster"
            raise reading.CliError(f"{args.instance} is not registered in {clusters}")
        out.write((render.as_json(view) if json_out else render.explain_text(view, now)) + "\n")
        return EXIT_OK
    if args.command == "release":
        if view is None or not view.held:
            raise reading.Refused(reading.why_not_held(view, args.instance))
        if not args.yes and not _confirmed(view, args.result, inp, err):
            return EXIT_REFUSED
        done = reading.release(client, view, args.result)
        out.write((render.as_json(done) if json_out else render.release_text(done)) + "\n")
        return EXIT_OK
    answer = reading.invoke_drain(
        client,
        target,
        args.instance,
        dry_run=args.dry_run,
        cluster=args.cluster,
        group=args.group,
        hook=args.hook,
    )
    out.write((render.as_json(answer) if json_out else render.drain_text(answer)) + "\n")
    return EXIT_OK


def _confirmed(view: Any, result: str, inp: IO[str], err: IO[str]) -> bool:
    """Ask on the terminal; without one (a pipe, a script) refuse: --yes says it."""
    if not (hasattr(inp, "isatty") and inp.isatty()):
        err.write(
            f"{PROG} release: refused: not confirmed (no terminal to ask on): pass --yes to "
            f"release {view.instance_id} with {result.upper()}\n"
        )
        return False
    err.write(
        f"Release {view.instance_id} ({len(view.tasks)} task(s) left) with {result.upper()}: "
        "complete its lifecycle action and stop its wait loop? [y/N] "
    )
    err.flush()
    answer = inp.readline().strip().lower()
    if answer in ("y", "yes"):
        return True
    err.write(f"{PROG} release: not released\n")
    return False


def _progress(err: IO[str]) -> Any:
    """A progress line on stderr while reading many drains: rewritten in place on a terminal,
    every tenth drain otherwise."""
    tty = hasattr(err, "isatty") and err.isatty()

    def report(done: int, total: int, instance_id: str) -> None:
        if total < PROGRESS_FROM and not tty:
            return
        line = f"{PROG}: reading drain {done} of {total} ({instance_id})"
        if tty:
            err.write("\r" + line + ("\n" if done == total else ""))
        elif done % 10 == 0 or done == total:
            err.write(line + "\n")
        err.flush()

    return report


if __name__ == "__main__":
    sys.exit(main())
