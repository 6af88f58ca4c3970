"""The wait loop's execution history: how many events each of its states writes, at worst.

A Standard workflow execution's history holds at most 25,000 events; reaching the quota fails the
execution (States.Runtime, "The execution reached the maximum number of history events (25000).")
and no Retry or Catch matches that error (Step Functions developer guide, "Step Functions service
quotas" and "Starting new executions to avoid reaching the history quota"). The drain Lambda keeps
an upper bound of the events the current execution has written in the state it returns
(`DrainState.history_events`) and carries the loop on in a fresh execution before the next round
could reach the quota (`logic/decision.py`).

Events per state, by history event type (Step Functions API reference, "HistoryEvent"; the counts
are those of recorded executions, and moto's interpreter writes the same):

- a Task on `lambda:invoke` or an `aws-sdk:*` integration: TaskStateEntered, TaskScheduled,
  TaskStarted, TaskSucceeded or TaskFailed, TaskStateExited (5); each retry adds TaskScheduled,
  TaskStarted, TaskSucceeded or TaskFailed (3; no AWS page gives it);
- Wait, Choice, Pass and Succeed: entered, exited (2); Fail: FailStateEntered (1);
- the execution: ExecutionStarted, and one closing event (ExecutionSucceeded, ExecutionFailed...).

The round counts below follow `infra/state_machine/drain_loop.asl.json`, counting every retry its
Retry fields allow; `tests/infra/test_state_machine_asl.py` derives them from the definition.
Standard library only: `settings.py`, which the CDK construct imports, reads this module.
"""

from __future__ import annotations

HISTORY_EVENTS_MAX = 25_000
# Room kept free below the quota for what the counts can't see (an event type AWS adds, a retry
# writing more than 3 events): about 50 rounds at their worst.
HISTORY_MARGIN = 1_000
HISTORY_BUDGET = HISTORY_EVENTS_MAX - HISTORY_MARGIN

# Per state.
TASK_EVENTS = 5
TASK_RETRY_EVENTS = 3
STATE_EVENTS = 2  # Wait, Choice, Pass, Succeed
FAIL_STATE_EVENTS = 1
EXECUTION_STARTED_EVENTS = 1
EXECUTION_CLOSED_EVENTS = 1

# Retries each Task of the loop may make: the sum of MaxAttempts over its Retry list.
POLL_RETRIES_MAX = 3  # PollDrain: Lambda's transient service errors
HEARTBEAT_RETRIES_MAX = 3  # HeartbeatBetweenPolls, HeartbeatWhileFailing: ResourceContention

POLL_TASK_EVENTS_MAX = TASK_EVENTS + POLL_RETRIES_MAX * TASK_RETRY_EVENTS
HEARTBEAT_TASK_EVENTS_MAX = TASK_EVENTS + HEARTBEAT_RETRIES_MAX * TASK_RETRY_EVENTS

# A round: ChooseWait, WaitBeforePoll (or, after heartbeats, WaitRestBeforePoll), PollDrain,
# IsDrainDone.
ROUND_EVENTS_MAX = 3 * STATE_EVENTS + POLL_TASK_EVENTS_MAX
# Each heartbeat between polls: WaitForHeartbeat, HeartbeatBetweenPolls, CountHeartbeat,
# MoreHeartbeats.
HEARTBEAT_EVENTS_MAX = 3 * STATE_EVENTS + HEARTBEAT_TASK_EVENTS_MAX
# Each failed poll the loop tries again: PollDrain failing, then FailingSinceKnown,
# CountFirstFailure or CountFailure, KeepTrying, DeadlineCountKnown, DeadlineCountIsNumber,
# DeadlinePassed, HeartbeatOrWait, HeartbeatWhileFailing, WaitAfterFailure.
FAILED_POLL_EVENTS_MAX = POLL_TASK_EVENTS_MAX + 8 * STATE_EVENTS + HEARTBEAT_TASK_EVENTS_MAX
# From the end of a round's poll to the end of the execution, by its longest path: the deadline
# passing while polls fail (six Choice and Pass states, DeadlinePassedWhileFailing,
# ExecutionFailed). Ending well (IsDrainDone, DrainFinished, ExecutionSucceeded) writes fewer.
CLOSING_EVENTS_MAX = 6 * STATE_EVENTS + FAIL_STATE_EVENTS + EXECUTION_CLOSED_EVENTS

# POLLS_PER_EXECUTION's upper bound: the polls an execution holds when every round is at its
# worst (no heartbeats, every retry taken) and the margin is kept.
POLLS_PER_EXECUTION_MAX = (
    HISTORY_BUDGET - EXECUTION_STARTED_EVENTS - CLOSING_EVENTS_MAX
) // ROUND_EVENTS_MAX

# A run of failing polls is counted up to the error-release time, but never for more than half an
# execution: a longer run could never fit beside the polls, and carrying on would not make room.
FAILED_POLLS_COUNTED_MAX = HISTORY_BUDGET // 2 // FAILED_POLL_EVENTS_MAX


def round_events(heartbeats: int, failed_polls: int) -> int:
    """At most how many events one round writes: its heartbeats between polls, its failed polls
    (each tried again after a retry wait) and the poll that ends it, retries included."""
    return (
        ROUND_EVENTS_MAX + heartbeats * HEARTBEAT_EVENTS_MAX + failed_polls * FAILED_POLL_EVENTS_MAX
    )
