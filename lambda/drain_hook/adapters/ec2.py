"""EC2's own record of a Spot interruption: the instance's Spot request and its status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from drain_hook.adapters.clients import client

# A Spot request whose instance EC2 is about to interrupt carries one of these status codes
# while the instance still runs (EC2 user guide, "Get the status of a Spot Instance request",
# "State changes for a Spot request"): the window of the two-minute notice.
MARKED_PREFIX = "marked-for-"


@dataclass(frozen=True)
class SpotNotice:
    """A pending interruption as EC2 records it."""

    code: str
    noticed_at: datetime  # the request's Status.UpdateTime: when EC2 marked it
    interruption_at: datetime  # noticed_at plus the notice's two minutes


def pending_interruption(instance_id: str, notice_seconds: int) -> SpotNotice | None:
    """The interruption EC2 has scheduled for the instance, or None when EC2 shows none (not a
    Spot instance, or its request not marked for stop or termination)."""
    response = client("ec2").describe_spot_instance_requests(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )
    for request in response.get("SpotInstanceRequests", []):
        status = request.get("Status") or {}
        code, updated = str(status.get("Code", "")), status.get("UpdateTime")
        if request.get("InstanceId") != instance_id or not isinstance(updated, datetime):
            continue
        if code.startswith(MARKED_PREFIX):
            return SpotNotice(code, updated, updated + timedelta(seconds=notice_seconds))
    return None
