"""How long the hook may hold an instance and how late its events may arrive, checked at synth.

Figures used here (each a documented AWS limit or a choice of this construct):
- A lifecycle hook's global timeout is min(48 h, 100 x HeartbeatTimeout) from the moment the
  instance enters Terminating:Wait; HeartbeatTimeout is 30..7200 s (EC2 Auto Scaling user guide,
  "Amazon EC2 Auto Scaling lifecycle hooks"; PutLifecycleHook API reference).
- EventBridge retries a target until MaximumRetryAttempts or MaximumEventAgeInSeconds (60..86400)
  runs out (EventBridge user guide, "Event retry policy and using dead-letter queues").
- Lambda retries an asynchronous invocation twice on a function error and keeps throttled events
  up to MaximumEventAgeInSeconds (60..21600) (Lambda developer guide, "How Lambda handles errors
  and retries with asynchronous invocation").
- Lifecycle events reach the Lambda through an SQS queue: a message whose run fails comes back
  after the queue's visibility timeout, at least the function's timeout; after maxReceiveCount
  receives it moves to the dead-letter queue (Lambda developer guide, "Using Lambda with Amazon
  SQS"; SQS developer guide, "Using dead-letter queues in Amazon SQS"). The event source
  mapping's maximum concurrency (2..1000) caps the runs taking them ("Configuring maximum
  concurrency for Amazon SQS event sources").

Auto Scaling's heartbeat timer runs from the entry into Terminating:Wait, and no heartbeat can be
recorded before the Lambda first runs: the event's longest delivery delay plus one Lambda run must
fit in the heartbeat timeout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ecs_drain_hook.runtime.drain_hook import contract
from ecs_drain_hook.runtime.drain_hook.settings import (
    HEARTBEAT_TIMEOUT_MAX_SECONDS,
    HEARTBEAT_TIMEOUT_MIN_SECONDS,
    LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS,
    SettingsError,
    Tunables,
    lifecycle_global_timeout,
)

# Slack for the last poll round, Lambda retries and Step Functions start-up on top of the deadline.
DRAIN_SLACK_SECONDS = 600
# One round: a few AWS calls, never a wait of its own; the room is for botocore's back-off when
# a burst of scale-ins meets AWS's rate limits (make bench: the burst's first rounds at 60 s
# timed out and retried whole, adding load).
LAMBDA_TIMEOUT_SECONDS = 120
# The hook's heartbeat timeout unless given or the hold needs more (100 x it must cover the hold).
DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 1200


@dataclass(frozen=True)
class Delivery:
    """The retry policy of one EventBridge rule's Lambda target."""

    retry_attempts: int
    max_event_age_seconds: int


# The intake queue: a burst of scale-ins queues its lifecycle events, and at most this many runs
# take them at once, one event each, so first rounds draw on Auto Scaling's API (about 10 calls
# a second, assumed) at a pace it allows instead of all at once (make bench: 1,000 at once lost
# 834 lifecycle events when each ran the moment it came).
INTAKE_MAX_CONCURRENCY = 10
INTAKE_CONCURRENCY_RANGE = (2, 1000)  # what an event source mapping's MaximumConcurrency takes
INTAKE_BATCH_SIZE = contract.INTAKE_BATCH_SIZE  # one first round per invoke
# A failed first round is taken again this long after its receive (at least the function's
# timeout, which Lambda requires); after INTAKE_MAX_RECEIVE_COUNT receives the event goes to the
# dead-letter queue, where an alarm fires. Lambda's guide suggests six times the function's
# timeout, room for its own retries of a throttled batch; that is 12 minutes per failed round,
# and four would not fit in the hook's heartbeat timeout. Shorter, a message may come again
# while Lambda still retries it: the drain answers such a duplicate "duplicate".
INTAKE_VISIBILITY_TIMEOUT_SECONDS = LAMBDA_TIMEOUT_SECONDS + 30
INTAKE_MAX_RECEIVE_COUNT = 4
# Alarm when the oldest queued lifecycle event waits this long: first rounds fall behind.
INTAKE_AGE_ALARM_SECONDS = 300

# Lifecycle events and loop-end events must arrive while the action still waits. The event age
# is the binding limit (retries are spaced by an undocumented backoff), so attempts are the most
# EventBridge allows; a delivery still failing after 5 minutes goes to the dead-letter queue.
LIFECYCLE_DELIVERY = Delivery(retry_attempts=185, max_event_age_seconds=300)
LOOP_END_DELIVERY = LIFECYCLE_DELIVERY
# A task-stopped event is how an empty instance is released within seconds: even a late one
# beats the loop's next poll (up to the longest poll interval away), so it gets the same
# delivery as the others.
TASK_STOPPED_DELIVERY = LIFECYCLE_DELIVERY
# The function's own asynchronous invoke config (EventBridge invokes Lambda asynchronously): two
# retries on errors (1 min, then 2 min later), throttled events kept at most 5 minutes.
LAMBDA_ASYNC_RETRY_ATTEMPTS = 2
LAMBDA_ASYNC_MAX_EVENT_AGE_SECONDS = 300


def longest_delivery_seconds() -> int:
    """Worst-case delay from the lifecycle event to the start of the Lambda run that handles it,
    when no burst queues it: EventBridge's retries into the queue, then every receive but the
    last failing. A burst adds its backlog (README, "Limits of the design")."""
    return (
        LIFECYCLE_DELIVERY.max_event_age_seconds
        + (INTAKE_MAX_RECEIVE_COUNT - 1) * INTAKE_VISIBILITY_TIMEOUT_SECONDS
    )


def first_heartbeat_bound_seconds() -> int:
    """Latest time after the entry into Terminating:Wait at which the first heartbeat lands."""
    return longest_delivery_seconds() + LAMBDA_TIMEOUT_SECONDS


def delivery_figures() -> str:
    return (
        f"EventBridge maximum event age {LIFECYCLE_DELIVERY.max_event_age_seconds} s + "
        f"{INTAKE_MAX_RECEIVE_COUNT - 1} failed receives of the intake queue x its visibility "
        f"timeout {INTAKE_VISIBILITY_TIMEOUT_SECONDS} s + one Lambda run "
        f"{LAMBDA_TIMEOUT_SECONDS} s = {first_heartbeat_bound_seconds()} s"
    )


def hold_seconds(tunables: Tunables) -> int:
    """Longest hold: the deadline, its stop grace, one poll interval and the slack."""
    return (
        tunables.max_drain_seconds
        + tunables.deadline_grace_seconds
        + tunables.poll_interval_max_seconds
        + DRAIN_SLACK_SECONDS
    )


def heartbeat_timeout_bounds(tunables: Tunables) -> tuple[int, int]:
    """The heartbeat timeouts the construct accepts for these tunables, lowest and highest."""
    low = max(
        HEARTBEAT_TIMEOUT_MIN_SECONDS,
        # 100 x heartbeat (the global timeout) must cover the whole hold.
        math.ceil(hold_seconds(tunables) / 100),
        # The first heartbeat comes from the Lambda's first run.
        first_heartbeat_bound_seconds() + 1,
    )
    return min(low, HEARTBEAT_TIMEOUT_MAX_SECONDS), HEARTBEAT_TIMEOUT_MAX_SECONDS


@dataclass(frozen=True)
class HookTiming:
    """The hook's heartbeat timeout and the loop's timeout, derived from the tunables."""

    hold_seconds: int
    heartbeat_timeout_seconds: int

    @property
    def execution_timeout_seconds(self) -> int:
        """State machine TimeoutSeconds: just above the longest hold, so a stuck loop ends."""
        return self.hold_seconds

    @property
    def global_timeout_seconds(self) -> int:
        return lifecycle_global_timeout(self.heartbeat_timeout_seconds)

    @classmethod
    def derive(
        cls,
        tunables: Tunables,
        heartbeat_timeout_seconds: int | None = None,
        *,
        sweep_minutes: int | None = None,
    ) -> HookTiming:
        """Raises SettingsError naming the key when the figures can't hold an instance safely.
        A derived heartbeat timeout also outlasts the sweep's recovery of a lost event."""
        hold = hold_seconds(tunables)
        if hold > LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS:
            limit = LIFECYCLE_GLOBAL_TIMEOUT_MAX_SECONDS - (hold - tunables.max_drain_seconds)
            raise SettingsError(
                f"max_drain_seconds={tunables.max_drain_seconds} plus the deadline grace, one "
                f"poll interval and {DRAIN_SLACK_SECONDS} s of slack exceeds the lifecycle "
                f"hook's 48 h global timeout; use at most {limit}"
            )
        low, _ = heartbeat_timeout_bounds(tunables)
        if heartbeat_timeout_seconds is None:
            # Heartbeats stay at most half this apart (the Lambda at polls, the state machine
            # between them and while polls fail), whatever the poll interval; the default is
            # well above the first heartbeat's worst case.
            sweep = sweep_first_heartbeat_bound_seconds(sweep_minutes or SWEEP_MINUTES_DEFAULT)
            derived = max(DEFAULT_HEARTBEAT_TIMEOUT_SECONDS, low, sweep + 1)
            return cls(hold, min(derived, HEARTBEAT_TIMEOUT_MAX_SECONDS))
        value = heartbeat_timeout_seconds
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"heartbeat_timeout_seconds must be an integer, got {value!r}")
        if value <= first_heartbeat_bound_seconds():
            raise SettingsError(
                f"heartbeat_timeout_seconds={value} is too short: a lifecycle event may reach "
                f"the drain Lambda late and no heartbeat comes before its first run ("
                f"{delivery_figures()}); use more than {first_heartbeat_bound_seconds()}"
            )
        if not low <= value <= HEARTBEAT_TIMEOUT_MAX_SECONDS:
            raise SettingsError(
                f"heartbeat_timeout_seconds must be in {low}..{HEARTBEAT_TIMEOUT_MAX_SECONDS} "
                f"for these drain settings (the global timeout, 100 x heartbeat, must cover "
                f"the {hold} s hold), got {value}"
            )
        return cls(hold, value)


# --- the sweep for lost lifecycle events, and Spot interruption warnings -------------------
# A scheduled rule runs the sweep (lambda/drain_hook/logic/sweep.py) every few minutes: a construct
# prop and a context key. A lost event's instance is found once it has waited the sweep's grace,
# then its lifecycle message takes the intake queue's path.
SWEEP_MINUTES_DEFAULT = 2
SWEEP_MINUTES_RANGE = (1, 10)
# A sweep run that fails is worth little later: the next run comes within minutes anyway.
SWEEP_DELIVERY = Delivery(retry_attempts=2, max_event_age_seconds=60)
# A Spot warning is worth something only within its two minutes (EventBridge's least age, 60 s).
SPOT_DELIVERY = Delivery(retry_attempts=185, max_event_age_seconds=60)


def sweep_first_heartbeat_bound_seconds(sweep_minutes: int) -> int:
    """Latest first heartbeat for an instance whose lifecycle event was lost: its wait reaches
    the sweep's grace, the next run finds it (one period), that run sends it (one Lambda run),
    every receive of the intake queue but the last fails, and the last run heartbeats."""
    return (
        contract.SWEEP_GRACE_SECONDS
        + sweep_minutes * 60
        + LAMBDA_TIMEOUT_SECONDS
        + (INTAKE_MAX_RECEIVE_COUNT - 1) * INTAKE_VISIBILITY_TIMEOUT_SECONDS
        + LAMBDA_TIMEOUT_SECONDS
    )


def check_sweep_minutes(sweep_minutes: int) -> None:
    low, high = SWEEP_MINUTES_RANGE
    if isinstance(sweep_minutes, bool) or not isinstance(sweep_minutes, int):
        raise SettingsError(f"lost_event_sweep_minutes must be an integer, got {sweep_minutes!r}")
    if not low <= sweep_minutes <= high:
        raise SettingsError(
            f"lost_event_sweep_minutes must be {low}..{high} (minutes between sweeps for lost "
            f"lifecycle events), got {sweep_minutes}"
        )
