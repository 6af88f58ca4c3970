"""Every bad or misleading input we have tried, and what the drain does with it.

Each case runs the real handler against moto (with local_aws's lifecycle hooks) on an instance
that really waits in Terminating:Wait with tasks on it, after a real first round, and asserts
that nothing was written. docs/bad-inputs.md is rendered from this list (`python -m
tests.drain_lambda.test_bad_inputs > docs/bad-inputs.md`) and a test keeps the two in step.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drain_hook import contract
from drain_hook.errors import ClusterNotFound, InputRejected
from tests.conftest import ACCOUNT, REGION, STATE_MACHINE_ARN
from tests.drain_lambda.conftest import HOOK, World, begin_termination
from tests.drain_lambda.sample_events import eventbridge

CLUSTER = "default-cluster"
DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-inputs.md"


@dataclass
class Held:
    """The world a case runs in: one instance held by the hook, its drain started."""

    world: World
    instance_id: str
    arn: str
    event: dict[str, Any]  # the lifecycle event that started the drain
    state: dict[str, Any]  # what the first round returned (the loop's first input)
    other_arn: str  # another, empty container instance in the cluster


@dataclass(frozen=True)
class Case:
    name: str
    given: str  # what was sent, in words
    outcome: str  # what happens, in words
    build: Callable[[Held], Any]
    raises: type[Exception] | None = InputRejected
    match: str = ""
    action: str | None = None  # when not raised: the action answered
    # The one call allowed to have been tried: the heartbeat that proves a token (it fails).
    tried_heartbeat: bool = False


def _detail(held: Held, **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(held.event)
    event["detail"].update(changes)
    for key, value in list(event["detail"].items()):
        if value is None:
            del event["detail"][key]
    return event


def _state(held: Held, **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(held.state), **changes}


def _queued(body: Any) -> dict[str, Any]:
    """An intake queue batch of one record (what the event source mapping sends)."""
    text = body if isinstance(body, str) else json.dumps(body)
    record = {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": text,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183"},
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ecs-drain-hook-intake",
        "awsRegion": REGION,
    }
    return {"Records": [record]}


def _manual(held: Held, **values: Any) -> dict[str, Any]:
    return {"instance_id": held.instance_id, "cluster": CLUSTER, **values}


def _task_event(held: Held, **detail: Any) -> dict[str, Any]:
    tasks = held.world.ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    body = {
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
        "containerInstanceArn": held.arn,
        "taskArn": tasks[0] if tasks else f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/x",
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "launchType": "EC2",
        "stoppedAt": "2026-12-06T09:00:00.000Z",
        **detail,
    }
    return eventbridge(
        body, source=contract.ECS_SOURCE, **{"detail-type": contract.TASK_DETAIL_TYPE}
    )


def _status_event(held: Held, **detail: Any) -> dict[str, Any]:
    [execution] = [e for e in held.world.executions() if e["name"] == held.state["execution_name"]]
    body = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": STATE_MACHINE_ARN,
        "name": execution["name"],
        "status": "FAILED",
        **detail,
    }
    return eventbridge(
        body,
        source=contract.STATES_SOURCE,
        **{"detail-type": contract.EXECUTION_STATUS_DETAIL_TYPE},
    )


def _spot(held: Held, **detail: Any) -> dict[str, Any]:
    body = {"instance-id": held.instance_id, "instance-action": "terminate", **detail}
    return eventbridge(
        body, source=contract.SPOT_SOURCE, **{"detail-type": contract.SPOT_DETAIL_TYPE}
    )


def _sweep_message(held: Held) -> dict[str, Any]:
    """The sweep's lifecycle message for the held instance: by instance id, no token."""
    event = _detail(held, LifecycleActionToken=None)
    return _queued({**event, "source": contract.SWEEP_SOURCE})


def _sns(message: Any) -> dict[str, Any]:
    text = message if isinstance(message, str) else json.dumps(message)
    record = {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:hook:sub",
        "Sns": {
            "Type": "Notification",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:hook",
            "Subject": "Auto Scaling:  Lifecycle action 'TERMINATING'",
            "Message": text,
            "Timestamp": "2026-11-28T09:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": {},
        },
    }
    return {"Records": [record]}


def _other_group(held: Held) -> dict[str, Any]:
    held.world.group("other-asg", 1)
    return _detail(held, AutoScalingGroupName="other-asg")


def _launch_hook(held: Held) -> dict[str, Any]:
    held.world.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName="web-asg",
        LifecycleHookName="on-launch",
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout=300,
    )
    return _detail(held, LifecycleHookName="on-launch")


def _stray_execution(held: Held) -> dict[str, Any]:
    world = held.world
    stray = world.sfn.start_execution(
        stateMachineArn=STATE_MACHINE_ARN, name="by-hand", input=json.dumps(held.state)
    )
    world.sfn.stop_execution(executionArn=stray["executionArn"])
    return _status_event(held, executionArn=stray["executionArn"], name="by-hand", status="ABORTED")


def _missing_cluster(held: Held) -> dict[str, Any]:
    return _detail(held, NotificationMetadata=json.dumps({"cluster": "no-such-cluster"}))


CASES = [
    # --- the shape of the event ------------------------------------------------------------
    Case("not an object", "a JSON array", "rejected: expected a JSON object",
         lambda h: [h.instance_id], match="JSON object"),
    Case("unknown shape", '`{"hello": "world"}`', "rejected, naming the accepted shapes",
         lambda h: {"hello": "world"}, match="unrecognised event"),
    Case("other event source", "an EventBridge event of another source/detail-type",
         "rejected, naming the accepted source/detail-type pairs",
         lambda h: {**h.event, "detail-type": "EC2 Instance State-change Notification"},
         match="source/detail-type"),
    Case("launch transition", "LifecycleTransition autoscaling:EC2_INSTANCE_LAUNCHING",
         "rejected: only termination hooks", lambda h: _detail(
             h, LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING"), match="TERMINATING"),
    Case("instance id not i-", 'EC2InstanceId "web-1"', "rejected: expected i-...",
         lambda h: _detail(h, EC2InstanceId="web-1"), match="EC2InstanceId"),
    Case("instance id a number", "EC2InstanceId as a JSON number", "rejected: expected a string",
         lambda h: _detail(h, EC2InstanceId=1234), match="EC2InstanceId"),
    Case("group missing", "no AutoScalingGroupName", "rejected, naming the key",
         lambda h: _detail(h, AutoScalingGroupName=None), match="AutoScalingGroupName"),
    Case("hook missing", "no LifecycleHookName", "rejected, naming the key",
         lambda h: _detail(h, LifecycleHookName=None), match="LifecycleHookName"),
    Case("token a number", "LifecycleActionToken as a JSON number", "rejected: expected a string",
         lambda h: _detail(h, LifecycleActionToken=5), match="LifecycleActionToken"),
    Case("metadata cluster not a string", 'NotificationMetadata `{"cluster": 5}`',
         "rejected: expected a non-empty string",
         lambda h: _detail(h, NotificationMetadata='{"cluster": 5}'),
         match="NotificationMetadata"),
    Case("metadata cluster empty", 'NotificationMetadata `{"cluster": " "}`',
         "rejected: expected a non-empty string",
         lambda h: _detail(h, NotificationMetadata='{"cluster": " "}'),
         match="NotificationMetadata"),
    Case("SNS with two records", "an SNS event with two Records", "rejected: exactly one record",
         lambda h: {"Records": _sns({})["Records"] * 2}, match="exactly one record"),
    Case("SNS message not JSON", "Records[0].Sns.Message is plain text", "rejected",
         lambda h: _sns("hello"), match="Message to be JSON"),
    Case("SNS detail broken", "an SNS lifecycle message without EC2InstanceId",
         "rejected, naming the key",
         lambda h: _sns({k: v for k, v in h.event["detail"].items() if k != "EC2InstanceId"}),
         match="EC2InstanceId"),
    # --- intake queue messages -------------------------------------------------------------
    Case("queue body not JSON", "an intake queue record whose body is plain text",
         "rejected: expected the lifecycle event", lambda h: _queued("hello"),
         match="intake queue's message body"),
    Case("queue body another event", "an intake queue record carrying an ECS event",
         "rejected: only lifecycle events belong in the intake queue",
         lambda h: _queued(_task_event(h)), match="intake queue's message body"),
    Case("queue body broken", "an intake queue record: lifecycle event without EC2InstanceId",
         "rejected, naming the key",
         lambda h: _queued(_detail(h, EC2InstanceId=None)), match="EC2InstanceId"),
    Case("queue made-up token", "an intake queue record with a token Auto Scaling never issued",
         "answered lifecycle_ended: the heartbeat that proves the token fails; nothing drained",
         lambda h: _queued(_detail(h, LifecycleActionToken="00000000-0000-0000-0000-000000000000")),
         raises=None, action="lifecycle_ended", tried_heartbeat=True),
    # --- manual invokes --------------------------------------------------------------------
    Case("manual instance id", 'manual `{"instance_id": "web-1"}`', "rejected: expected i-...",
         lambda h: {"instance_id": "web-1"}, match="instance_id"),
    Case("manual unknown key", 'manual with "asg" instead of "asg_name"',
         "rejected, listing the keys", lambda h: _manual(h, asg="web-asg"), match="asg"),
    Case("manual hook without group", "manual with hook_name but no asg_name",
         "rejected: both or neither", lambda h: _manual(h, hook_name=HOOK),
         match="both asg_name and hook_name"),
    Case('dry_run "no"', 'manual `"dry_run": "no"`', "rejected: true or false (no coercion)",
         lambda h: _manual(h, dry_run="no"), match="dry_run"),
    Case('dry_run "false"', 'manual `"dry_run": "false"`', "rejected: true or false",
         lambda h: _manual(h, dry_run="false"), match="dry_run"),
    Case("dry_run 0", 'manual `"dry_run": 0`', "rejected: true or false",
         lambda h: _manual(h, dry_run=0), match="dry_run"),
    Case("manual cluster a number", 'manual `"cluster": 7`', "rejected: expected a string",
         lambda h: _manual(h, cluster=7), match="cluster"),
    Case("manual empty group", 'manual `"asg_name": ""`', "rejected",
         lambda h: _manual(h, asg_name="", hook_name=HOOK), match="asg_name"),
    # --- a lifecycle event that disagrees with Auto Scaling -------------------------------
    Case("another group's name", "the held instance with another (real) group's name",
         "rejected: the instance belongs to its own group; no write", _other_group,
         match="belongs to Auto Scaling group"),
    Case("hook that does not exist", "LifecycleHookName of no hook on the group",
         "rejected: no such termination hook; no write",
         lambda h: _detail(h, LifecycleHookName="no-such-hook"), match="no lifecycle hook"),
    Case("a launch hook's name", "the name of the group's LAUNCHING hook",
         "rejected: not a termination hook; no write", _launch_hook,
         match="no lifecycle hook 'on-launch'"),
    Case("made-up token", "a token Auto Scaling never issued",
         "answered lifecycle_ended: the heartbeat that proves the token fails; nothing drained",
         lambda h: _detail(h, LifecycleActionToken="00000000-0000-0000-0000-000000000000"),
         raises=None, action="lifecycle_ended", tried_heartbeat=True),
    Case("manual hook of another group", "manual with another group's name and our hook",
         "rejected: the instance belongs to its own group; no write",
         lambda h: (h.world.group("other-asg", 1), _manual(h, asg_name="other-asg",
                                                           hook_name=HOOK))[1],
         match="belongs to Auto Scaling group"),
    Case("cluster that does not exist", 'NotificationMetadata `{"cluster": "no-such-cluster"}`',
         "error ClusterNotFound naming the cluster (metric and alarm ClusterNotFound); no write "
         "but the token-proving heartbeat", _missing_cluster, raises=ClusterNotFound,
         match="no-such-cluster", tried_heartbeat=True),
    # --- a state passed back ---------------------------------------------------------------
    Case("state_version true", '`"state_version": true`', "rejected: a JSON number",
         lambda h: _state(h, state_version=True), match="state_version"),
    Case("state_version 1", "a state of the previous release", "rejected: expected version 2",
         lambda h: _state(h, state_version=1), match="state_version"),
    Case("polls true", '`"polls": true`', "rejected: a number is a number",
         lambda h: _state(h, polls=True), match="polls"),
    Case("done \"no\"", '`"done": "no"`', "rejected: true or false",
         lambda h: _state(h, done="no"), match="done"),
    Case("time as epoch", "started_at as a JSON number", "rejected: an ISO 8601 string",
         lambda h: _state(h, started_at=1736154000), match="started_at"),
    Case("time without offset", 'started_at "2026-11-28T09:00:00"', "rejected: needs an offset",
         lambda h: _state(h, started_at="2026-11-28T09:00:00"), match="started_at"),
    Case("dry-run state polled", 'a state with `"dry_run": true` passed to the loop',
         "rejected: a dry run is a report, never polled", lambda h: _state(h, dry_run=True),
         match="dry-run state"),
    Case("unknown key in state", "a state with an extra key", "rejected, naming it",
         lambda h: _state(h, surprise=1), match="surprise"),
    Case("past deadline_at", "an old response.json: deadline_at in 2020",
         "rejected: deadline_at earlier than its started_at allows; no StopTask",
         lambda h: _state(h, deadline_at="2020-01-01T00:00:00Z"), match="deadline_at"),
    Case("start before the hold", "started_at and deadline_at moved back to 2020 together",
         "rejected: the hold began later per ECS's record of the drain",
         lambda h: _state(h, started_at="2020-01-01T00:00:00Z",
                          deadline_at="2020-01-01T02:00:00Z"), match="before ECS's record"),
    Case("another container instance", "container_instance_arn of another (empty) instance",
         "rejected: it is another EC2 instance",
         lambda h: _state(h, container_instance_arn=h.other_arn), match="is EC2 instance"),
    Case("another group in state", 'asg_name of a group the instance is not in',
         "rejected: the instance belongs to its own group",
         lambda h: _state(h, asg_name="other-asg"), match="belongs to 'web-asg'"),
    # --- events the fast path and the loop-end release take --------------------------------
    Case("task event status a number", '`"lastStatus": 3`', "rejected: a string",
         lambda h: _task_event(h, lastStatus=3), match="lastStatus"),
    Case("task event time as epoch", "stoppedAt as a JSON number", "rejected: an ISO 8601 time",
         lambda h: _task_event(h, stoppedAt=1736154000), match="stoppedAt"),
    Case("task event of another instance", "a task STOPPED on an empty instance nobody drains",
         "answered ignored: not an instance being drained; nothing completed",
         lambda h: _task_event(h, containerInstanceArn=h.other_arn), raises=None,
         action="ignored"),
    Case("task event while tasks stop", "a task STOPPED event while two tasks still stop",
         "answered ignored: ECS's own listing shows the tasks; nothing completed",
         lambda h: _task_event(h), raises=None, action="ignored"),
    Case("status event of a running loop", "FAILED for an execution that still runs",
         "answered ignored: Step Functions says RUNNING", lambda h: _status_event(h),
         raises=None, action="ignored"),
    Case("status event of a stray execution", "ABORTED for an execution started by hand with "
         "a copy of the state", "answered ignored: it does not own the drain", _stray_execution,
         raises=None, action="ignored"),
    Case("status event of another machine", "FAILED for another state machine's execution",
         "answered ignored",
         lambda h: _status_event(h, stateMachineArn=STATE_MACHINE_ARN + "-other"), raises=None,
         action="ignored"),
    # --- Spot interruption warnings and the sweep's messages -------------------------------
    Case("Spot warning instance id", 'a Spot warning with instance-id "web-1"',
         "rejected: expected i-...", lambda h: _spot(h, **{"instance-id": "web-1"}),
         match="instance-id"),
    Case("Spot warning action", 'a Spot warning with instance-action "reboot"',
         "rejected: terminate, stop or hibernate",
         lambda h: _spot(h, **{"instance-action": "reboot"}), match="instance-action"),
    Case("Spot warning of a group not hooked", "a Spot warning for the held instance, its group "
         "not in HOOKED_GROUPS", "answered ignored: not an instance we hook; EC2 not even asked",
         lambda h: _spot(h), raises=None, action="ignored"),
    Case("sweep message for a drain under way", "the sweep's message (by instance id, no token) "
         "for the held instance", "answered duplicate: its loop runs; only the heartbeat any "
         "first round records", _sweep_message, raises=None, action="duplicate",
         tried_heartbeat=True),
]  # fmt: skip


@pytest.fixture
def held(world: World, handler) -> Held:
    world.cluster(CLUSTER)
    [instance_id] = world.group("web-asg", 1)
    arn = world.register(CLUSTER, instance_id)
    tasks = world.run_tasks(CLUSTER, arn, 2)
    event = begin_termination("web-asg", instance_id)
    state = handler(event)
    for task in tasks:  # ECS is stopping them
        world.set_task(CLUSTER, task, last="STOPPING", desired="STOPPED")
    [other] = world.standalone_instances(1)
    other_arn = world.register(CLUSTER, other)
    world.calls.clear()
    return Held(world, instance_id, arn, event, state, other_arn)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_changes_nothing(held: Held, handler, case: Case) -> None:
    world = held.world
    executions = len(world.executions())
    event = case.build(held)
    world.calls.clear()
    if case.raises is not None:
        with pytest.raises(case.raises, match=case.match):
            handler(event)
    else:
        assert handler(event)["action"] == case.action
    allowed = ["autoscaling:RecordLifecycleActionHeartbeat"] if case.tried_heartbeat else []
    assert [w for w in world.writes() if w not in allowed] == []
    assert world.lifecycle_state(held.instance_id) == "Terminating:Wait"
    assert len(world.executions()) == executions + (1 if "stray" in case.name else 0)


def render_table() -> str:
    lines = [
        "# Bad and misleading inputs",
        "",
        "Every input below was sent to the real handler on an instance that really waits in",
        "`Terminating:Wait` with tasks on it, after its drain started. None of them wrote",
        "anything to AWS (the made-up token and the missing cluster only tried the heartbeat that",
        "proves a token, which Auto Scaling refused; the sweep's message recorded the heartbeat",
        "every first round records). Each row is a test:",
        "`tests/drain_lambda/test_bad_inputs.py`; this page is rendered from it",
        "(`python -m tests.drain_lambda.test_bad_inputs > docs/bad-inputs.md`).",
        "",
        "Rejected inputs raise `InputRejected` (a `ClusterNotFound` error for a missing",
        "cluster): an intake queue message is received up to 4 times in all and then moves to",
        "the dead-letter queue, as an event the Lambda is invoked with directly does after",
        "Lambda's two retries (alarm `DeadLetters`); the wait loop fails the execution, and its",
        "end releases the lifecycle action only if that execution owns the drain.",
        "",
        "| input | sent | what happens |",
        "|---|---|---|",
    ]
    lines += [f"| {c.name} | {c.given} | {c.outcome} |" for c in CASES]
    return "\n".join(lines) + "\n"


def test_the_doc_lists_every_case() -> None:
    assert DOC.read_text(encoding="utf-8") == render_table()


if __name__ == "__main__":
    print(render_table(), end="")
