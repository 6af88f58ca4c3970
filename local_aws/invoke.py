"""`make invoke EVENT=events/<file>`: run the drain Lambda once on the local sandbox with an event
file and print its answer, as `aws lambda invoke` would against a deployed stack.

    python -m local_aws.invoke events/manual-dry-run.json [--seed 7]

The sandbox builds what the samples name: cluster `prod-cluster`, group `prod-asg-a` with the
hook `ecs-drain-hook`, two instances running a web service. The samples' instance id
(`i-0123456789abcdef0`) is replaced by the instance a scale-in would pick. For a lifecycle event
(EventBridge or SNS shape) or a manual invoke naming the hook, that instance is first scaled in,
so Auto Scaling really holds it, and the sample's token is replaced by the real one; the event
Auto Scaling sends itself is not delivered, so the answer printed is the one to the file given.
Exit status 0 when the Lambda answered, 1 when it raised (its error is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from local_aws import autoscaling
from local_aws.sandbox import FUNCTION_NAME, HOOK_NAME, Sandbox

# After local_aws.sandbox: it puts lambda/ on the import path, as the Lambda runtime has it.
from drain_hook import contract  # isort: skip

SAMPLE_INSTANCE = "i-0123456789abcdef0"
SAMPLE_TOKEN = "87654321-4321-4321-4321-210987654321"
CLUSTER, GROUP = "prod-cluster", "prod-asg-a"


def _held_by_the_hook(event: dict) -> bool:
    """Whether the event names a lifecycle action (so the instance must really wait on it)."""
    if event.get("detail-type") == contract.LIFECYCLE_DETAIL_TYPE:
        return True
    if "Records" in event:
        return "LifecycleActionToken" in json.dumps(event)
    return bool(event.get("asg_name") and event.get("hook_name"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_aws.invoke", description=__doc__.split("\n")[0]
    )
    parser.add_argument("event", type=Path, help="an event file, e.g. events/manual-dry-run.json")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    text = args.event.read_text(encoding="utf-8")
    event = json.loads(text)

    with Sandbox(seed=args.seed) as sb:
        asg = sb.add_cluster(CLUSTER, instances=2, asg_name=GROUP, heartbeat_timeout=1200)
        sb.register_task_definition("web")
        sb.create_service(CLUSTER, "web", "web", 4, minimum_healthy_percent=50)
        sb.settle()
        sb.deploy()
        [instance] = sb.scale_in_candidates(asg, 1)
        text = text.replace(SAMPLE_INSTANCE, instance)
        print(f"sandbox: cluster {CLUSTER}, group {GROUP}, instance {instance}", file=sys.stderr)
        if _held_by_the_hook(event):
            sb.lose_events({"detail-type": [contract.LIFECYCLE_DETAIL_TYPE]}, 1.0)
            sb.scale_in(asg, 1)
            [action] = [
                a for a in autoscaling.lifecycle_actions(instance) if a.hook_name == HOOK_NAME
            ]
            text = text.replace(SAMPLE_TOKEN, action.token)
            print(f"sandbox: {instance} scaled in, held by {HOOK_NAME}", file=sys.stderr)
        answer = sb.client("lambda").invoke(FunctionName=FUNCTION_NAME, Payload=text.encode())
        payload = json.loads(answer["Payload"].read() or b"null")
        print(json.dumps(payload, indent=2))
        return 1 if answer.get("FunctionError") else 0


if __name__ == "__main__":
    sys.exit(main())
