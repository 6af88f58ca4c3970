"""Spot instances and their interruption, on the sandbox's virtual clock.

moto launches no Spot instance for an Auto Scaling group and never interrupts one. This plays
what the EC2 user guide describes:

- "Spot Instance interruption notices": two minutes before EC2 stops or terminates a Spot
  instance (hibernation: no two minutes) it emits "EC2 Spot Instance Interruption Warning"
  (source aws.ec2, detail instance-id and instance-action, resources the instance's ARN; "on a
  best effort basis": `SpotOptions.warning_loss_probability`, seeded), and at the two minutes it
  interrupts the instance whatever its lifecycle hooks say. An instance of a group is
  terminated through EC2 (TerminateInstances): the group notices, ends the instance's lifecycle
  actions (they can't be completed any more) and replaces it (`local_aws.autoscaling`).
- "Get the status of a Spot Instance request", "State changes for a Spot request": the
  instance's Spot request carries status code marked-for-termination (marked-for-stop for a
  stop) while the instance still runs, its Status.UpdateTime when it was marked
  (DescribeSpotInstanceRequests, filter instance-id). UNCONFIRMED: that the marking comes with
  the notice (`SpotOptions.mark_request`; off, the request stays fulfilled).
- Auto Scaling user guide, "Capacity Rebalancing in Auto Scaling to replace at-risk Spot
  Instances": without Capacity Rebalancing the group does not replace a Spot instance until EC2
  has interrupted it (nothing happens in the group during the two minutes); EC2 always sends a
  rebalance recommendation no later than the notice, and with Capacity Rebalancing the group
  launches a replacement and then terminates the at-risk instance through its termination hooks.
  When, within the two minutes, is not documented (UNCONFIRMED):
  `SpotOptions.group_termination_after_seconds` starts the termination (Terminating:Wait and the
  lifecycle event) that many seconds after the notice in a group with CapacityRebalance on;
  None: even such a group does nothing before EC2 takes the instance. Rebalance
  recommendations themselves (their event, an earlier time) are not modelled.

`SpotMarket.make_spot(instance_id)` gives an instance of a group a Spot request (moto's own
model, fulfilled by that instance); `interrupt(instance_id, action)` runs the notice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.spot_requests import SpotInstanceRequest

from local_aws.clock import Clock
from local_aws.timers import Timers

NOTICE_SECONDS = 120
DETAIL_TYPE = "EC2 Spot Instance Interruption Warning"
MARKED = {"terminate": "marked-for-termination", "stop": "marked-for-stop"}


@dataclass
class SpotOptions:
    warning_loss_probability: float = 0.0  # the notice's event is best effort
    # UNCONFIRMED: the request is marked at the notice. Default off, the answer less favourable
    # to the product: the Lambda then believes no warning, and the termination round alone drains.
    mark_request: bool = False
    # UNCONFIRMED: seconds from the notice until a group with Capacity Rebalancing starts the
    # instance's termination (its hooks then hold it); None: it waits for EC2 to take it. The
    # default leaves half of the two minutes to the termination round. A group without
    # Capacity Rebalancing never acts before EC2 (documented).
    group_termination_after_seconds: float | None = 60.0


@dataclass(frozen=True)
class Interruption:
    instance_id: str
    action: str
    noticed_at: datetime
    interrupt_at: datetime
    warned: bool  # False when the notice's event was lost


class _GroupSpotRequest(SpotInstanceRequest):
    """A Spot request fulfilled by an instance the group launched (moto's model, without its own
    launch), whose status the interruption changes."""

    def __init__(self, backend: Any, request_id: str, instance: Any, clock: Clock) -> None:
        self._given = instance
        self._clock = clock
        super().__init__(
            backend,
            request_id,
            price="",
            image_id=instance.image_id,
            spot_instance_type="one-time",
            valid_from=None,
            valid_until=None,
            launch_group=None,
            availability_zone_group=None,
            key_name="",
            security_groups=[],
            user_data=None,
            instance_type=instance.instance_type,
            placement=None,
            kernel_id=None,
            ramdisk_id=None,
            monitoring_enabled=False,
            subnet_id=getattr(instance, "subnet_id", "") or "",
            tags={},
            spot_fleet_id=None,
            instance_interruption_behaviour="terminate",
        )
        self.updated_at = clock.now()

    def launch_instance(self) -> Any:
        return self._given

    def mark(self, code: str, message: str) -> None:
        self._status_code, self.status_message = code, message
        self.updated_at = self._clock.now()

    @property
    def status(self) -> dict[str, Any]:
        return {
            "Code": self._status_code,
            "Message": self.status_message,
            "UpdateTime": self.updated_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }

    def get_filter_value(self, filter_name: str, method_name: str | None = None) -> Any:
        # DescribeSpotInstanceRequests' filter "instance-id" (EC2 API reference).
        if filter_name == "instance-id":
            return self._given.id
        return super().get_filter_value(filter_name, method_name)


@dataclass
class SpotMarket:
    clock: Clock
    timers: Timers
    put_event: Callable[[dict[str, Any]], Any]
    terminate: Callable[[str], None]  # EC2 TerminateInstances of one instance
    begin_group_termination: Callable[[str], None]
    # Whether the instance's group has Capacity Rebalancing on (only such a group acts early).
    capacity_rebalancing: Callable[[str], bool] = lambda _instance_id: False
    region: str = "us-east-1"
    account_id: str = DEFAULT_ACCOUNT_ID
    seed: int = 0
    options: SpotOptions = field(default_factory=SpotOptions)
    interruptions: list[Interruption] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"spot/{self.seed}")
        self._requests: dict[str, _GroupSpotRequest] = {}

    def make_spot(self, instance_id: str) -> str:
        """Give the instance a fulfilled Spot request; returns the request's id."""
        backend = ec2_backends[self.account_id][self.region]
        instance = backend.get_instance(instance_id)
        request_id = f"sir-{len(self._requests) + 1:08x}"
        request = _GroupSpotRequest(backend, request_id, instance, self.clock)
        backend.spot_instance_requests[request_id] = request
        instance.lifecycle = "spot"
        instance.spot_instance_request_id = request_id
        self._requests[instance_id] = request
        return request_id

    def interrupt(self, instance_id: str, action: str = "terminate") -> Interruption:
        """EC2's interruption notice now; the interruption itself two minutes on."""
        if action not in MARKED:
            raise ValueError(f"the sandbox interrupts with terminate or stop, not {action!r}")
        request = self._requests.get(instance_id)
        if request is None:
            raise ValueError(f"{instance_id} is not a Spot instance: make_spot it first")
        now = self.clock.now()
        if self.options.mark_request:
            request.mark(MARKED[action], f"Spot Instance {action} notice issued")
        warned = not (
            self.options.warning_loss_probability > 0
            and self._rng.random() < self.options.warning_loss_probability
        )
        if warned:
            self.put_event(self._event(instance_id, action, now))
        interruption = Interruption(
            instance_id, action, now, now + timedelta(seconds=NOTICE_SECONDS), warned
        )
        self.interruptions.append(interruption)
        after = self.options.group_termination_after_seconds
        if after is not None and after < NOTICE_SECONDS and self.capacity_rebalancing(instance_id):
            self.timers.call_later(
                after,
                lambda: self.begin_group_termination(instance_id),
                name=f"group terminates Spot {instance_id}",
            )
        self.timers.call_later(
            NOTICE_SECONDS,
            lambda: self.terminate(instance_id),
            name=f"EC2 interrupts Spot {instance_id}",
        )
        return interruption

    def _event(self, instance_id: str, action: str, now: datetime) -> dict[str, Any]:
        return {
            "version": "0",
            "id": f"spot-{len(self.interruptions) + 1}-{instance_id}",
            "detail-type": DETAIL_TYPE,
            "source": "aws.ec2",
            "account": self.account_id,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:ec2:{self.region}:{self.account_id}:instance/{instance_id}"],
            "detail": {"instance-id": instance_id, "instance-action": action},
        }
