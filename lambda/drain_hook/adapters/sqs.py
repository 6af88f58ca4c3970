"""The intake queue, as the sweep uses it: how much waits in it, and lifecycle messages put in."""

from __future__ import annotations

import json
from typing import Any

from drain_hook.adapters.clients import client
from drain_hook.errors import TransientAwsError

# Waiting for a receive, or received and not deleted yet (being handled, or failed and coming
# back after the visibility timeout): either way a first round will come for it.
BACKLOG_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
SEND_BATCH_MAX = 10  # SendMessageBatch takes at most 10 entries


def backlog(queue_url: str) -> int:
    """Messages in the queue, visible or not: an approximate count, which may lag a minute
    behind the senders (GetQueueAttributes API reference)."""
    response = client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=list(BACKLOG_ATTRIBUTES)
    )
    attributes = response.get("Attributes", {})
    return sum(int(attributes.get(name, 0)) for name in BACKLOG_ATTRIBUTES)


def send_batch(queue_url: str, bodies: list[dict[str, Any]]) -> list[str]:
    """Send each body as a message; the ids SQS gave them. An entry SQS refuses fails the run
    (the sweep's next run sends it again)."""
    sent: list[str] = []
    for start in range(0, len(bodies), SEND_BATCH_MAX):
        chunk = bodies[start : start + SEND_BATCH_MAX]
        entries = [{"Id": str(n), "MessageBody": json.dumps(body)} for n, body in enumerate(chunk)]
        response = client("sqs").send_message_batch(QueueUrl=queue_url, Entries=entries)
        failed = response.get("Failed") or []
        if failed:
            codes = ", ".join(str(f.get("Code")) for f in failed)
            raise TransientAwsError(f"SQS refused {len(failed)} of the sweep's messages: {codes}")
        sent += [str(entry.get("MessageId", "")) for entry in response.get("Successful", [])]
    return sent
