"""The invariants every soak run must keep, checked on the sandbox's own records (`RunData`).

Each check returns violations (never raises); `check` runs them all. Times compare with a
tolerance of one second (TOLERANCE): the drain records times on the container instance in whole
seconds (ECS attribute values), so a time it derives may be up to a second before the exact one.

- never_early: no lifecycle action of our hook is completed while a task on its instance is
  unstopped (lastStatus not STOPPED; daemon-service tasks left out when
  DAEMON_TASKS_HOLD_INSTANCE=false, as the settings define), unless (a) the deadline policy
  applies: the completion comes at or after the drain deadline, derived here from when the
  instance entered the wait (Auto Scaling's record) and the settings:
  min(MAX_DRAIN_SECONDS, global timeout - 60 s margin - the deadline stop grace); or (b) the
  agent-lost rule: the instance's ECS agent had been disconnected, without a reconnect, for at
  least AGENT_DISCONNECTED_GRACE_SECONDS; or (c) the error release: the completion is the
  loop-end release of the loop that owned the drain, and that loop ended because its polls
  failed (by injected faults only) for at least ERROR_RELEASE_SECONDS, or past the deadline.
- never_stuck: every action of our hook ends by CompleteLifecycleAction from the drain Lambda,
  not by the hook's heartbeat or global timeout, and none is still waiting when the run ends. A
  timeout is excused only where the scenario made the Lambda fail past every retry for that
  instance, on evidence in the records (`_why_timed_out`): the first round never succeeded
  before the timeout and every attempt failed by an injected fault or came late by an injected
  delay; or the loop was running and, in the last heartbeat window, its last poll / heartbeat
  failed by an injected fault with none failing for another reason; or the loop ended badly and
  its status-change event was lost by an injected best-effort loss, or every Lambda run of it
  failed by injection. Anything else is a violation, with the diagnosis.
- only_targets: every write of the Lambda and of the state machine (DRAINING, StopTask,
  Put/DeleteAttributes, heartbeats, completions, StartExecution) concerns an instance our hook
  holds (or held), made no earlier than when it entered the wait, and names our hook.
- service_minimum: a replica-service task that left the running set because of us (our StopTask,
  or lost with an instance we released) never leaves its service below
  ceil(desired x minimumHealthyPercent / 100) -- except a StopTask by the deadline policy, or a
  loss after a release that never_early allows.
- nothing_lost: no task is still unstopped when its instance terminates, except daemon tasks
  that don't hold the instance, after a release never_early allows, or after a timeout
  never_stuck excuses.
- errors_release (the release rule): a loop that ends FAILED, TIMED_OUT or ABORTED while
  its action waits gets the action completed within RELEASE_WITHIN_SECONDS (60 s) of its end,
  unless injected faults hit that release (then never_stuck judges the end). A loop whose polls
  fail keeps going until ERROR_RELEASE_SECONDS of failures and no longer than the ASL allows:
  ERROR_RELEASE_SECONDS + one retry wait + one failing poll (at most the function's timeout: the
  Lambda times the run of failures and gives up on the first poll failing past it) + the
  PollDrain task's own retries on each cycle.
- bounded_calls: the Lambda's AWS calls in one run stay within a ceiling derived from the
  product's code (`call_ceiling`), per operation and in total.
- stop_policy: every StopTask of ours follows the settings: a standalone task under
  STANDALONE_TASKS=stop after STANDALONE_GRACE_SECONDS from the start of the hold, or any task
  at the deadline under AT_DEADLINE=stop_tasks.
- spot_draining: a Spot instance of the group whose interruption warning was sent, registered and
  ACTIVE in the cluster, is DRAINING within SPOT_DRAINING_SECONDS of the warning (EC2 confirming
  it: its request marked), unless injected faults hit that Lambda run.
- retain_kept: with ON_DRAIN_FAILURE=retain and the group's retention policy, no instance with a
  task still holding it is terminated by a completion of ours on a failure path (the deadline,
  a lost agent, a loop-end release): it is retained instead. (EC2 taking a Spot instance is
  EC2's doing.)

Lifecycle events Auto Scaling never sent (`lifecycle_event_loss`, best effort) excuse no
timeout: the sweep must find the instance and its message's first round drain it, unless the
hook's heartbeat timeout is shorter than the sweep's recovery (the construct warns at synth) or
injected faults hit the sweep or its message. Token-less loops and runs (the sweep's messages
address the action by instance id) count for the action of that instance at that time. Where a
Spot instance is interrupted, the drain's deadline is the interruption's (its stop grace ending
at it) when earlier, and what EC2 takes with the instance is EC2's doing.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from drain_hook.contract import LOOP_BAD_ENDS
from drain_hook.logic.decision import GLOBAL_TIMEOUT_MARGIN_SECONDS
from drain_hook.settings import ERROR_RETRY_SECONDS, lifecycle_global_timeout
from local_aws.sandbox import HOOK_NAME
from local_aws.template import ASL_FILE
from soak.records import (
    ActionView,
    ExecutionView,
    HistoryEvent,
    InvocationView,
    RunData,
)

if TYPE_CHECKING:
    from drain_hook.settings import Tunables
    from soak.scenario import Scenario

INVARIANTS = (
    "never_early",
    "never_stuck",
    "only_targets",
    "service_minimum",
    "nothing_lost",
    "errors_release",
    "bounded_calls",
    "stop_policy",
    "spot_draining",
    "retain_kept",
)
# The one excuse that is not about a lifecycle action: a Spot warning's run hit by faults.
SPOT_DRAINING_FAULTED = "spot_draining_faulted"
# A Spot warning's Lambda run: bus latency, a cold start, retries of throttled calls.
SPOT_DRAINING_SECONDS = 10
TOLERANCE = timedelta(seconds=1)
# The release rule: a loop that ends badly has its action completed within a minute.
RELEASE_WITHIN_SECONDS = 60
DELIVERY_SLACK_SECONDS = 1  # the sandbox bus delivers 0.1 to 0.5 s after the event
BAD_ENDS = LOOP_BAD_ENDS


def _poll_task_retry_seconds() -> int:
    """The longest PollDrain's own retries of Lambda's errors wait in one cycle, from the ASL's
    Retry (each wait IntervalSeconds x BackoffRate^n, at most MaxDelaySeconds; ASL defaults)."""
    definition = json.loads(ASL_FILE.read_text())
    (retrier,) = [
        r
        for r in definition["States"]["PollDrain"]["Retry"]
        if any(name.startswith("Lambda.") for name in r["ErrorEquals"])
    ]
    interval, rate = retrier.get("IntervalSeconds", 1), retrier.get("BackoffRate", 2.0)
    cap = retrier.get("MaxDelaySeconds", math.inf)
    return math.ceil(
        sum(min(cap, interval * rate**n) for n in range(retrier.get("MaxAttempts", 3)))
    )


# The state machine retries a failed poll after $.retry.wait_seconds (ERROR_RETRY_SECONDS, or
# half the heartbeat timeout when shorter); within each cycle PollDrain first retries in place.
POLL_TASK_RETRY_SECONDS = _poll_task_retry_seconds()
# Texts of the sandbox's injected faults (local_aws/faults.py, lambda_runtime.py).
INJECTED_TEXTS = ("Rate exceeded", "Injected ")
# What a Spot interruption warning writes, before any lifecycle action.
SPOT_WRITES = ("ecs:UpdateContainerInstancesState", "ecs:PutAttributes")
WRITE_OPERATIONS = (
    "ecs:UpdateContainerInstancesState",
    "ecs:StopTask",
    "ecs:PutAttributes",
    "ecs:DeleteAttributes",
    "autoscaling:CompleteLifecycleAction",
    "autoscaling:RecordLifecycleActionHeartbeat",
    "stepfunctions:StartExecution",
)


@dataclass(frozen=True)
class Violation:
    invariant: str
    instance_id: str | None
    at: datetime | None
    message: str
    # A short tag for the cause when it is known (e.g. "missing_loop_end_rule").
    tag: str = ""

    def line(self, start: datetime) -> str:
        when = f"t+{(self.at - start).total_seconds():.1f}s" if self.at else "end"
        tag = f" [{self.tag}]" if self.tag else ""
        return f"{self.invariant}{tag} {self.instance_id or '-'} {when}: {self.message}"


def check(
    scenario: Scenario, tunables: Tunables, data: RunData
) -> tuple[list[Violation], list[str]]:
    """Every invariant on one run: (violations, excused timeouts as "kind: instance: why")."""
    ctx = _Context(scenario, tunables, data)
    violations: list[Violation] = []
    violations += ctx.never_early()
    violations += ctx.never_stuck()
    violations += ctx.only_targets()
    violations += ctx.service_minimum()
    violations += ctx.nothing_lost()
    violations += ctx.errors_release()
    violations += ctx.bounded_calls()
    violations += ctx.stop_policy()
    violations += ctx.spot_draining()
    violations += ctx.retain_kept()
    return violations, ctx.excused


# --- the call ceiling ---------------------------------------------------------------------


def pages(items: int, size: int = 100) -> int:
    return max(1, math.ceil(items / size))


def call_ceiling(tasks: int, services: int, container_instances: int) -> dict[str, int]:
    """Most calls one Lambda run may make, per operation, read from the product's code for an
    instance that ever had ``tasks`` tasks, in a cluster of ``services`` services and
    ``container_instances`` container instances. The first round (lifecycle event) is the
    largest; a poll, a task-stopped event and a loop-end release make a subset of these calls.

    - DescribeAutoScalingInstances once; DescribeLifecycleHooks and DescribeScalingActivities
      (ACTIVITY_PAGES_MAX = 3 pages, plus the newest page again for an instance the container's
      read did not reach) once more when a time-based step is checked against AWS, or when a
      first round finds the action over (was it a timeout?); one heartbeat; one completion.
    - find_container_instance lists once (filtered by EC2 id: one page) and describes what it
      found; one more describe after a refused DRAINING. A task-stopped event lists the
      cluster's instances being drained (at most once) and describes the task's instance.
    - list_unstopped_tasks: ListTasks for desiredStatus RUNNING and STOPPED, each paged by 100;
      DescribeTasks by 100; DescribeServices by 10 -- once, and once more when the daemon
      classification is checked before a release.
    - StopTask once per holding task; PutAttributes for each of LOOP_RESTARTS_MAX (10) loop
      names tried plus the agent-lost record; StartExecution and DescribeExecution per name.
    - The sweep: DescribeAutoScalingGroups once (one group), DescribeWarmPool by 50,
      ListExecutions by 1,000, GetQueueAttributes once, a heartbeat per instance it would send,
      SendMessageBatch by 10 (its ECS reads are within the lines above). A sweep message's
      round reads the group once more (is it being deleted?), as does a failure release under
      ON_DRAIN_FAILURE=retain (does it retain?). A Spot warning asks EC2 once
      (DescribeSpotInstanceRequests), as does the deadline before it stops or releases on the
      interruption's time.
    """
    task_pages = pages(tasks)
    return {
        "autoscaling:DescribeAutoScalingInstances": 1,
        "autoscaling:DescribeLifecycleHooks": 2,
        "autoscaling:DescribeScalingActivities": 2 * (3 + 1),
        # A round's one, or the sweep's probe of each instance it would send.
        "autoscaling:RecordLifecycleActionHeartbeat": max(1, container_instances),
        "autoscaling:CompleteLifecycleAction": 1,
        "ecs:ListContainerInstances": 2 * pages(container_instances),
        "ecs:DescribeContainerInstances": 2 * pages(container_instances) + 1,
        "ecs:UpdateContainerInstancesState": 1,
        "ecs:ListTasks": 2 * 2 * task_pages,
        "ecs:DescribeTasks": 2 * task_pages,
        "ecs:DescribeServices": 2 * pages(services, 10),
        "ecs:StopTask": tasks,
        "ecs:PutAttributes": 10 + 1,
        "ecs:DeleteAttributes": 1,
        "stepfunctions:StartExecution": 10,
        "stepfunctions:DescribeExecution": 10 + 1,
        # The sweep (one group here), its message's round, a failure release's policy check:
        "autoscaling:DescribeAutoScalingGroups": 1 + 1,
        "autoscaling:DescribeWarmPool": pages(container_instances, 50),
        "stepfunctions:ListExecutions": pages(10 * container_instances, 1000),
        "sqs:GetQueueAttributes": 1,
        "sqs:SendMessageBatch": pages(container_instances, 10),
        # A Spot warning's check, and the deadline's check of it before a stop or release.
        "ec2:DescribeSpotInstanceRequests": 1,
    }


# --- helpers ------------------------------------------------------------------------------


def injected(text: str | None) -> bool:
    """Whether an error text is one of the sandbox's injected faults (or Step Functions' and
    Lambda's service-side names, which only injected faults produce in the soak)."""
    if not text:
        return False
    if any(mark in text for mark in INJECTED_TEXTS):
        return True
    return text.startswith(("Lambda.", "States.TaskFailed", "AutoScaling.AutoScalingException"))


def _history_injected(event: HistoryEvent) -> bool:
    return injected(event.error) or injected(event.cause)


def _seconds(delta: timedelta) -> float:
    return round(delta.total_seconds(), 1)


class _Context:
    def __init__(self, scenario: Scenario, tunables: Tunables, data: RunData) -> None:
        self.scenario = scenario
        self.t = tunables
        self.data = data
        self.excused: list[str] = []
        self._excused_tokens: set[str] = set()
        self.ours = data.ours()
        self.by_token = {a.token: a for a in self.ours}
        self.by_instance: dict[str, list[ActionView]] = defaultdict(list)
        for action in sorted(self.ours, key=lambda a: a.started_at):
            self.by_instance[action.instance_id].append(action)
        self.executions_of: dict[str, list[ExecutionView]] = defaultdict(list)
        for execution in sorted(data.executions, key=lambda e: e.started_at):
            if execution.token:
                self.executions_of[execution.token].append(execution)
            elif (owner := self.action_at(execution.instance_id, execution.started_at)) is not None:
                # A loop the sweep's message started (the action addressed by instance id).
                self.executions_of[owner.token].append(execution)
        self.spot = {notice[0]: notice for notice in data.spot_notices}
        self.complete_calls = [
            c
            for c in data.calls
            if c.scope == "lambda" and c.operation == "autoscaling:CompleteLifecycleAction" and c.ok
        ]
        # The timeout judgement feeds nothing_lost and service_minimum: compute it first.
        self._timeouts: dict[str, tuple[bool, str, str]] = {}
        for action in self.ours:
            if action.ended_by in ("heartbeat_timeout", "global_timeout"):
                self._timeouts[action.token] = self._why_timed_out(action)

    # --- derived facts ----------------------------------------------------------------------

    def deadline(self, action: ActionView) -> datetime:
        """Entry into the wait + min(MAX_DRAIN_SECONDS, global timeout - margin - grace)."""
        global_timeout = lifecycle_global_timeout(action.heartbeat_timeout)
        limit = min(
            self.t.max_drain_seconds,
            max(
                0,
                global_timeout - GLOBAL_TIMEOUT_MARGIN_SECONDS - self.t.deadline_grace_seconds,
            ),
        )
        return action.started_at + timedelta(seconds=limit)

    def action_at(self, instance_id: str | None, when: datetime) -> ActionView | None:
        """Our action that held the instance at (or last before) this time."""
        found = None
        for action in self.by_instance.get(instance_id or "", []):
            if action.started_at <= when + TOLERANCE:
                found = action
        return found

    def disconnected_since(self, instance_id: str, when: datetime) -> datetime | None:
        """Since when the agent had been disconnected without a reconnect, at this time."""
        since = None
        for at, connected in self.data.agent.get(instance_id, []):
            if at > when:
                break
            since = None if connected else (since or at)
        return since

    def agent_lost(self, instance_id: str, when: datetime) -> bool:
        """Disconnected without a reconnect for at least the agent grace, at this time."""
        since = self.disconnected_since(instance_id, when)
        grace = timedelta(seconds=self.t.agent_disconnected_grace_seconds)
        return since is not None and when - since >= grace - TOLERANCE

    def completing_invocation(self, action: ActionView) -> InvocationView | None:
        """The Lambda run whose CompleteLifecycleAction ended this action."""
        for call in self.complete_calls:
            params = call.params
            if params.get("LifecycleHookName") != HOOK_NAME:
                continue
            mine = params.get("LifecycleActionToken") == action.token or (
                "LifecycleActionToken" not in params
                and params.get("InstanceId") == action.instance_id
            )
            if (
                mine
                and action.ended_at
                # The call ends the action when its last attempt lands: after any back-off.
                and call.at - TOLERANCE <= action.ended_at <= (call.ended_at or call.at) + TOLERANCE
                and call.invocation is not None
                and call.invocation < len(self.data.invocations)
            ):
                return self.data.invocations[call.invocation]
        return None

    def failure_streaks(self, execution: ExecutionView) -> list[tuple[datetime, datetime, bool]]:
        """(first failure, last failure or end, all injected) of each run of failed polls."""
        streaks = []
        first: datetime | None = None
        last: datetime | None = None
        clean = True
        for event in execution.history:
            if event.resource != "invoke":
                continue
            if event.type == "TaskSucceeded":
                if first is not None and last is not None:
                    streaks.append((first, last, clean))
                first, last, clean = None, None, True
            elif event.type in ("TaskFailed", "TaskTimedOut"):
                first = first or event.at
                last = event.at
                clean = clean and (_history_injected(event) or self._timed_out_while_faulted(event))
        if first is not None:
            end = execution.stopped_at or self.data.end
            streaks.append((first, end, clean))
        return streaks

    def _timed_out_while_faulted(self, event: HistoryEvent) -> bool:
        """A poll that failed because the run hit the function's timeout while botocore was
        still retrying injected faults (`cut_while_faulted`): the faults' doing."""
        if event.error != "Sandbox.Timedout" or not event.cause:
            return False
        for run in self.data.invocations:
            error = run.error or ""
            if error.startswith("Sandbox.Timedout") and error.split(": ", 1)[-1] in event.cause:
                return self.cut_while_faulted(run)
        return False

    def ended_by_errors(self, execution: ExecutionView) -> bool:
        """The loop ended because its polls failed, by injected faults only, for at least
        ERROR_RELEASE_SECONDS (or until past the deadline)."""
        if execution.status != "FAILED":
            return False
        streaks = self.failure_streaks(execution)
        if not streaks:
            return False
        first, last, clean = streaks[-1]
        if not clean:
            return False
        if execution.error == "ErrorsOutlastedRelease":
            return last - first >= timedelta(seconds=self.t.error_release_seconds) - TOLERANCE
        if execution.error == "DeadlinePassedWhileFailing":
            action = self.by_token.get(execution.token or "")
            return action is not None and last >= self.deadline(action) - TOLERANCE
        return False

    def error_release(self, action: ActionView, when: datetime) -> bool:
        invocation = self.completing_invocation(action)
        if invocation is None or invocation.kind != "loop_end":
            return False
        detail = invocation.event.get("detail", {}) if isinstance(invocation.event, dict) else {}
        for execution in self.executions_of.get(action.token, []):
            if execution.name == detail.get("name") and execution.stopped_at is not None:
                return execution.stopped_at <= when and self.ended_by_errors(execution)
        return False

    def released_by_rule(self, action: ActionView) -> str | None:
        """Which rule let our completion leave tasks behind, if one did."""
        if action.ended_at is None:
            return None
        if action.ended_at >= self.deadline(action) - TOLERANCE:
            return "deadline"
        if self.interrupted_by(action.instance_id, action.ended_at):
            return "interruption"
        if self.agent_lost(action.instance_id, action.ended_at):
            return "agent_lost"
        if self.error_release(action, action.ended_at):
            return "error_release"
        return None

    def interruption_deadline(self, instance_id: str | None) -> datetime | None:
        """When the deadline policy may act for a Spot instance EC2 interrupts: its stop grace
        ends at the interruption."""
        notice = self.spot.get(instance_id or "")
        if notice is None:
            return None
        return notice[2] - timedelta(seconds=self.t.deadline_grace_seconds)

    def interrupted_by(self, instance_id: str | None, when: datetime) -> bool:
        deadline = self.interruption_deadline(instance_id)
        return deadline is not None and when >= deadline - TOLERANCE

    def taken_by_ec2(self, instance_id: str | None, when: datetime) -> bool:
        """EC2 interrupted the (Spot) instance: what went with it is EC2's doing."""
        notice = self.spot.get(instance_id or "")
        return notice is not None and when >= notice[2] - TOLERANCE

    def timeout_excused(self, action: ActionView) -> bool:
        return self._timeouts.get(action.token, (False, "", ""))[0]

    # --- never_early ------------------------------------------------------------------------

    def never_early(self) -> list[Violation]:
        out = []
        for end in self.data.ends.values():
            if end.ended_by != "complete":
                continue
            holding = [
                t for t in end.unstopped if t.kind != "daemon" or self.t.daemon_tasks_hold_instance
            ]
            action = self.by_token.get(end.token)
            if not holding or action is None or self.released_by_rule(action):
                continue
            kinds = Counter(t.kind for t in holding)
            since = self.disconnected_since(end.instance_id, end.at)
            agent = (
                "agent connected"
                if since is None
                else f"agent disconnected for {_seconds(end.at - since)} s only (grace "
                f"{self.t.agent_disconnected_grace_seconds} s)"
            )
            out.append(
                Violation(
                    "never_early",
                    end.instance_id,
                    end.at,
                    f"completed with {len(holding)} unstopped task(s) ({dict(kinds)}, e.g. "
                    f"{holding[0].last_status}/{holding[0].desired_status}) "
                    f"{_seconds(self.deadline(action) - end.at)} s before the deadline, {agent}, "
                    "not an error release" + self._completion_note(action),
                )
            )
        return out

    def _completion_note(self, action: ActionView) -> str:
        invocation = self.completing_invocation(action)
        if invocation is None:
            return ""
        result = invocation.result if isinstance(invocation.result, dict) else {}
        return (
            f"; completed by a {invocation.kind} run (action {result.get('action')!r}: "
            f"{result.get('reason', '')})"
        )

    # --- never_stuck ------------------------------------------------------------------------

    def never_stuck(self) -> list[Violation]:
        out = []
        for action in self.ours:
            if action.ended_at is None:
                out.append(
                    Violation(
                        "never_stuck",
                        action.instance_id,
                        None,
                        "still waiting when the run ended",
                    )
                )
                continue
            if action.ended_by == "complete":
                if self.completing_invocation(action) is None:
                    out.append(
                        Violation(
                            "never_stuck",
                            action.instance_id,
                            action.ended_at,
                            "completed, but by no CompleteLifecycleAction of the drain Lambda",
                        )
                    )
                continue
            if action.token not in self._timeouts:
                # Ended by Auto Scaling itself (instance or group gone, another hook's ABANDON).
                self._excuse(action, f"ended_by_{action.ended_by}", "not a timeout of ours")
                continue
            excused, tag, why = self._timeouts[action.token]
            if excused:
                self._excuse(action, tag, why)
                continue
            out.append(
                Violation(
                    "never_stuck",
                    action.instance_id,
                    action.ended_at,
                    f"ended by the hook's {action.ended_by} "
                    f"{_seconds(action.ended_at - action.started_at)} s after the wait began: "
                    f"{why}",
                    tag,
                )
            )
        return out

    def _excuse(self, action: ActionView, tag: str, why: str) -> None:
        if action.token not in self._excused_tokens:
            self._excused_tokens.add(action.token)
            self.excused.append(f"{tag}: {action.instance_id}: {why}")

    def _runs_for(self, action: ActionView, kinds: tuple[str, ...]) -> list[InvocationView]:
        end = action.ended_at or self.data.end
        return [
            i
            for i in self.data.invocations
            if i.kind in kinds
            and (
                i.token == action.token
                # The sweep's messages and their loops' polls: by instance id, no token.
                or (
                    i.token is None
                    and i.instance_id == action.instance_id
                    and action.started_at - TOLERANCE <= i.at <= end
                )
            )
        ]

    def _why_timed_out(self, action: ActionView) -> tuple[bool, str, str]:
        """(excused, tag, diagnosis) for an action that ended by the hook's timeout."""
        assert action.ended_at is not None
        end = action.ended_at
        first = [i for i in self._runs_for(action, ("lifecycle",)) if i.at <= end]
        succeeded = [i for i in first if i.error is None]
        if not succeeded:
            return self._first_round_never_ran(action, first)
        executions = [e for e in self.executions_of.get(action.token, []) if e.started_at <= end]
        running = [e for e in executions if e.stopped_at is None or e.stopped_at >= end]
        if running:
            return self._loop_lost_hold(action, running[-1])
        if executions:
            last = max(executions, key=lambda e: e.stopped_at or e.started_at)
            if last.status in BAD_ENDS:
                return self._release_missing(last)
            result = self._last_result(action)
            return (
                False,
                "loop_ended_without_completion",
                f"loop {last.name} ended {last.status} at "
                f"t+{_seconds(last.stopped_at - self.data.start) if last.stopped_at else '?'} s "
                f"without completing (last round: {result})",
            )
        return (
            False,
            "no_loop",
            f"the first round neither completed nor started a loop "
            f"(result: {self._summary(succeeded[-1].result)})",
        )

    def _sweep_missed(
        self, action: ActionView, runs: list[InvocationView]
    ) -> tuple[bool, str, str]:
        """A lifecycle event Auto Scaling never sent, and no first round before the timeout:
        the sweep's to recover. Excused only on evidence that it could not."""
        from ecs_drain_hook.timing import sweep_first_heartbeat_bound_seconds

        assert action.ended_at is not None
        bound = sweep_first_heartbeat_bound_seconds(2)
        if action.heartbeat_timeout <= bound:
            return (
                True,
                "lifecycle_event_lost_sweep_too_slow",
                f"event never sent; the hook's {action.heartbeat_timeout} s heartbeat timeout is "
                f"within the sweep's {bound} s recovery (the construct warns at synth)",
            )
        window = (action.started_at, action.ended_at)
        sweeps = [
            i
            for i in self.data.invocations
            if isinstance(i.event, dict)
            and i.event.get("source") == "aws.events"
            and window[0] <= i.at <= window[1]
        ]
        evidence = []
        faulted = [
            i for i in sweeps if i.error and (injected(i.error) or self.cut_while_faulted(i))
        ]
        if faulted:
            evidence.append(f"{len(faulted)} sweep run(s) failed by injection")
        failed_rounds = [i for i in runs if i.error and injected(i.error)]
        if failed_rounds:
            evidence.append(
                f"{len(failed_rounds)} first round(s) of its message failed by injection"
            )
        refused = [r for r in self.data.rejections if window[0] <= r[0] <= window[1]]
        if refused:
            evidence.append(f"{len(refused)} Lambda run(s) refused (injected)")
        lost = [f for f in self.data.async_failures if window[0] <= f[0] <= window[1]]
        if lost:
            evidence.append(f"Lambda gave up on {len(lost)} event(s)")
        held = [
            i
            for i in sweeps
            if isinstance(i.result, dict) and "intake queue holds" in str(i.result.get("reason"))
        ]
        if held and any(window[0] <= f.at <= window[1] for f in self.data.faults):
            evidence.append(
                f"{len(held)} sweep(s) held back by intake queue messages while faults hit"
            )
        if evidence:
            return True, "lifecycle_event_lost_sweep_faulted", "; ".join(evidence)
        sent = [
            i
            for i in sweeps
            if isinstance(i.result, dict) and action.instance_id in (i.result.get("sent") or [])
        ]
        return (
            False,
            "lifecycle_event_lost_not_recovered",
            f"event never sent and the sweep did not recover it: {len(sweeps)} sweep run(s) in "
            f"the wait, {len(sent)} sent it, {len(runs)} first round(s) ran"
            + (f"; last sweep: {self._summary(sweeps[-1].result)}" if sweeps else ""),
        )

    def cut_while_faulted(self, run: InvocationView) -> bool:
        """A run stopped at the function's timeout while botocore was still retrying a call
        that injected faults kept failing: the faults' doing, not the product's."""
        if not (run.error or "").startswith("Sandbox.Timedout"):
            return False
        calls = [c for c in self.data.calls if c.invocation == run.index]
        if not calls or calls[-1].ok is True:
            return False
        last = calls[-1]
        return any(
            f.operation == last.operation and f.at >= last.at - TOLERANCE for f in self.data.faults
        )

    def _first_round_never_ran(
        self, action: ActionView, runs: list[InvocationView]
    ) -> tuple[bool, str, str]:
        assert action.ended_at is not None
        own_errors = [
            i for i in runs if i.error and not injected(i.error) and not self.cut_while_faulted(i)
        ]
        if own_errors:
            return (
                False,
                "first_round_error",
                f"the first round failed with the product's own error: {own_errors[0].error}",
            )
        event_id = action.event.get("id")
        if any(e.get("id") == event_id for e in self.data.dropped_lifecycle_events):
            return self._sweep_missed(action, runs)
        deliveries = [d for d in self.data.deliveries if d[1].get("id") == event_id]
        if any(e.get("id") == event_id for e in self.data.lost_events):
            return True, "lifecycle_event_lost", "the lifecycle event was lost (injected)"
        if not deliveries and not any(e.get("id") == event_id for e in self.data.unmatched_events):
            return (
                False,
                "lifecycle_event_not_delivered",
                "the lifecycle event was never delivered",
            )
        if not deliveries:
            return False, "no_lifecycle_rule", "the lifecycle event matched no EventBridge rule"
        evidence = []
        first_delivery = min(d[0] for d in deliveries)
        late = _seconds(first_delivery - action.started_at)
        if late > DELIVERY_SLACK_SECONDS:
            evidence.append(f"first delivered {late} s late (injected delay)")
        failed = [i for i in runs if i.error]
        if failed:
            evidence.append(f"{len(failed)} run(s) failed by injection")
        gave_up = [f for f in self.data.async_failures if _event_id(f[1]) == event_id]
        if gave_up:
            evidence.append(f"Lambda gave up on it ({gave_up[0][2]})")
        if any(_event_id(d[1]) == event_id for d in self.data.dead_letters):
            evidence.append("EventBridge sent it to the dead-letter queue")
        moved = [d for d in self.data.intake_dead_letters if _event_id(d[1]) == event_id]
        if moved:
            evidence.append(
                f"the intake queue moved it to the dead-letter queue after {moved[0][2]} receives"
            )
        rejected = [r for r in self.data.rejections if action.started_at <= r[0] <= action.ended_at]
        if rejected:
            evidence.append(f"{len(rejected)} Lambda run(s) refused (injected)")
        if evidence:
            return True, "first_round_failed", "; ".join(evidence)
        return (
            False,
            "first_round_missing",
            f"delivered {len(deliveries)} time(s) but no first round ran before the timeout",
        )

    def _loop_lost_hold(
        self, action: ActionView, execution: ExecutionView
    ) -> tuple[bool, str, str]:
        """The loop was running at the timeout: was the last heartbeat window all injected
        failures?"""
        assert action.ended_at is not None
        window_start = action.ended_at - timedelta(seconds=action.heartbeat_timeout)
        events = [
            e
            for e in execution.history
            if window_start <= e.at <= action.ended_at
            and e.resource in ("invoke", "recordLifecycleActionHeartbeat")
            and e.type in ("TaskSucceeded", "TaskFailed", "TaskTimedOut")
        ]
        failures = [e for e in events if e.type != "TaskSucceeded"]
        own = [e for e in failures if not _history_injected(e)]
        if own:
            return (
                False,
                "loop_error",
                f"loop {execution.name}: a poll or heartbeat failed with the product's own "
                f"error {own[0].error}: {str(own[0].cause)[:160]}",
            )
        if failures and events[-1].type != "TaskSucceeded":
            return (
                True,
                "loop_failed_past_retries",
                f"loop {execution.name}: {len(failures)} injected poll/heartbeat failure(s) in "
                f"the last {action.heartbeat_timeout} s before the timeout",
            )
        last = max((e.at for e in events if e.type == "TaskSucceeded"), default=None)
        return (
            False,
            "no_heartbeat",
            f"loop {execution.name} was running but no heartbeat kept the hold (last successful "
            f"task at {f't+{_seconds(last - self.data.start)} s' if last else 'none'} in the "
            f"window; heartbeats recorded: {action.heartbeats})",
        )

    def _status_event(self, execution: ExecutionView) -> dict[str, Any] | None:
        for event in self.data.status_events:
            detail = event.get("detail", {})
            if detail.get("name") == execution.name and detail.get("status") == execution.status:
                return event
        return None

    def _release_missing(self, execution: ExecutionView) -> tuple[bool, str, str]:
        """The loop ended badly and nothing released the action: why?"""
        where = (
            f"loop {execution.name} ended {execution.status} ({execution.error}) at "
            f"t+{_seconds(execution.stopped_at - self.data.start) if execution.stopped_at else '?'}"
            " s"
        )
        event = self._status_event(execution)
        if event is None:
            return False, "no_status_event", f"{where}; Step Functions emitted no status event"
        event_id = event.get("id")
        if any(e.get("id") == event_id for e in self.data.lost_events):
            return True, "status_event_lost", f"{where}; its status event was lost (injected)"
        if any(e.get("id") == event_id for e in self.data.unmatched_events):
            return (
                False,
                "missing_loop_end_rule",
                f"{where}; its status event matched no EventBridge rule, so nothing released "
                "the action",
            )
        runs = [
            i
            for i in self.data.invocations
            if i.kind == "loop_end" and isinstance(i.event, dict) and i.event.get("id") == event_id
        ]
        if runs and all(i.error and injected(i.error) for i in runs):
            return (
                True,
                "release_failed_past_retries",
                f"{where}; {len(runs)} release run(s) failed (injected)",
            )
        if any(_event_id(f[1]) == event_id for f in self.data.async_failures):
            return True, "release_failed_past_retries", f"{where}; Lambda gave up on the release"
        results = [self._summary(i.result) if i.error is None else i.error for i in runs]
        return False, "release_not_done", f"{where}; release runs: {results or 'none'}"

    def _release_path_hit(self, execution: ExecutionView, since: datetime, until: datetime) -> bool:
        """Whether injected faults hit the loop-end release between these times: a release run
        failed, a Lambda run was refused, or EventBridge's Invoke call failed."""
        event = self._status_event(execution)
        event_id = event.get("id") if event else None
        for invocation in self.data.invocations:
            if (
                invocation.kind == "loop_end"
                and isinstance(invocation.event, dict)
                and invocation.event.get("id") == event_id
                and invocation.error
                and injected(invocation.error)
            ):
                return True
        if any(since <= at <= until for at, _ in self.data.rejections):
            return True
        return any(
            since <= f.at <= until and f.operation.startswith("lambda:") for f in self.data.faults
        )

    def _last_result(self, action: ActionView) -> str:
        runs = [i for i in self._runs_for(action, ("poll", "lifecycle")) if i.result is not None]
        return self._summary(runs[-1].result) if runs else "none"

    @staticmethod
    def _summary(result: Any) -> str:
        if not isinstance(result, dict):
            return repr(result)
        return f"{result.get('action')}: {str(result.get('reason', ''))[:160]}"

    # --- only_targets -----------------------------------------------------------------------

    def _instance_of_container(self, ref: str) -> str | None:
        if ref in self.data.instance_of_container:
            return self.data.instance_of_container[ref]
        for arn, instance in self.data.instance_of_container.items():
            if arn.endswith("/" + ref.split("/")[-1]):
                return instance
        return None

    def _written_instances(self, operation: str, params: dict[str, Any]) -> list[str | None]:
        if operation == "ecs:UpdateContainerInstancesState":
            if params.get("status") != "DRAINING":
                return []
            return [self._instance_of_container(r) for r in params.get("containerInstances", [])]
        if operation == "ecs:StopTask":
            task = str(params.get("task", ""))
            found = self.data.task_instance.get(task)
            if found is None:
                for arn, instance in self.data.task_instance.items():
                    if arn.endswith("/" + task.split("/")[-1]):
                        found = instance
            return [found]
        if operation in ("ecs:PutAttributes", "ecs:DeleteAttributes"):
            return [
                self._instance_of_container(str(a.get("targetId", "")))
                for a in params.get("attributes", [])
            ]
        if operation.startswith("autoscaling:"):
            token = params.get("LifecycleActionToken")
            if token:
                action = self.by_token.get(token)
                return [action.instance_id if action else None]
            return [params.get("InstanceId")]
        if operation == "stepfunctions:StartExecution":
            try:
                return [json.loads(params.get("input") or "{}").get("instance_id")]
            except ValueError:
                return [None]
        return []

    def only_targets(self) -> list[Violation]:
        out = []
        for call in self.data.calls:
            if not call.ok or call.operation not in WRITE_OPERATIONS:
                continue
            if (
                call.scope == "states"
                and call.operation != "autoscaling:RecordLifecycleActionHeartbeat"
            ):
                continue
            who = "the state machine" if call.scope == "states" else "the Lambda"
            if call.operation.startswith("autoscaling:"):
                hook = call.params.get("LifecycleHookName")
                if hook != HOOK_NAME:
                    out.append(
                        Violation(
                            "only_targets",
                            call.params.get("InstanceId"),
                            call.at,
                            f"{who} called {call.operation} on hook {hook!r}, not ours",
                        )
                    )
                    continue
            for instance in self._written_instances(call.operation, call.params):
                first = self.by_instance.get(instance or "")
                notice = self.spot.get(instance or "")
                if (
                    notice is not None
                    and call.operation in SPOT_WRITES
                    and call.at >= notice[1] - TOLERANCE
                ):
                    continue  # DRAINING and the record on EC2's interruption notice
                if instance is None or not first:
                    out.append(
                        Violation(
                            "only_targets",
                            instance,
                            call.at,
                            f"{who} called {call.operation} on an instance no scale-in picked "
                            f"({json.dumps(call.params, default=str)[:200]})",
                        )
                    )
                elif call.at < first[0].started_at - TOLERANCE:
                    out.append(
                        Violation(
                            "only_targets",
                            instance,
                            call.at,
                            f"{who} called {call.operation} "
                            f"{_seconds(first[0].started_at - call.at)} s before the instance "
                            "entered the wait",
                        )
                    )
        return out

    # --- service_minimum, nothing_lost, stop_policy -----------------------------------------

    def service_minimum(self) -> list[Violation]:
        out = []
        for removal in self.data.removals:
            if removal.kind != "service" or removal.healthy_after >= removal.floor:
                continue
            action = self.action_at(removal.instance_id, removal.at)
            if removal.cause == "stop_task":
                allowed = (
                    action is not None
                    and self.t.at_deadline == "stop_tasks"
                    and (
                        removal.at >= self.deadline(action) - TOLERANCE
                        or self.interrupted_by(removal.instance_id, removal.at)
                    )
                )
            else:
                allowed = (action is not None and self._loss_allowed(action)) or (
                    self.taken_by_ec2(removal.instance_id, removal.at)
                )
            if allowed:
                continue
            how = "our StopTask" if removal.cause == "stop_task" else "the instance's termination"
            tag = self._timeouts.get(action.token, (False, "", ""))[1] if action else ""
            out.append(
                Violation(
                    "service_minimum",
                    removal.instance_id,
                    removal.at,
                    f"service {removal.service} down to {removal.healthy_after} running, below "
                    f"its minimum {removal.floor}, after {how} of a task",
                    tag,
                )
            )
        return out

    def _loss_allowed(self, action: ActionView) -> bool:
        if action.ended_by == "complete":
            return self.released_by_rule(action) is not None
        if action.ended_by in ("heartbeat_timeout", "global_timeout"):
            return self.timeout_excused(action)
        return True  # ended by Auto Scaling itself (not ours): not because of us

    def nothing_lost(self) -> list[Violation]:
        out = []
        for removal in self.data.removals:
            if removal.cause != "lost":
                continue
            if removal.kind == "daemon" and not self.t.daemon_tasks_hold_instance:
                continue
            action = self.action_at(removal.instance_id, removal.at)
            if action is not None and self._loss_allowed(action):
                continue
            if self.taken_by_ec2(removal.instance_id, removal.at):
                continue  # EC2 interrupted the Spot instance, whatever the hooks said
            if action is None:
                why = "on an instance our hook never held"
            elif action.ended_by == "complete":
                why = "after our completion, with no rule allowing it"
            else:
                why = f"after the hook's {action.ended_by} ({self._timeouts[action.token][1]})"
            out.append(
                Violation(
                    "nothing_lost",
                    removal.instance_id,
                    removal.at,
                    f"{removal.kind} task {removal.task.split('/')[-1]}"
                    f"{' of ' + removal.service if removal.service else ''} lost {why}",
                    self._timeouts.get(action.token, (False, "", ""))[1] if action else "",
                )
            )
        return out

    def stop_policy(self) -> list[Violation]:
        out = []
        kinds = {r.task: r.kind for r in self.data.removals}
        for call in self.data.calls:
            if call.scope != "lambda" or call.operation != "ecs:StopTask" or not call.ok:
                continue
            [instance] = self._written_instances(call.operation, call.params) or [None]
            action = self.action_at(instance, call.at)
            if action is None:
                continue  # only_targets reports it
            task = str(call.params.get("task", ""))
            kind = kinds.get(task, "unknown")
            at_deadline = self.t.at_deadline == "stop_tasks" and (
                call.at >= self.deadline(action) - TOLERANCE
                or self.interrupted_by(instance, call.at)
            )
            grace_over = (
                call.at
                >= action.started_at
                + timedelta(seconds=self.t.standalone_grace_seconds)
                - TOLERANCE
            )
            standalone_ok = (
                kind == "standalone" and self.t.standalone_tasks == "stop" and grace_over
            )
            if at_deadline or standalone_ok:
                continue
            out.append(
                Violation(
                    "stop_policy",
                    instance,
                    call.at,
                    f"StopTask of a {kind} task {_seconds(call.at - action.started_at)} s into the "
                    f"hold (deadline at {_seconds(self.deadline(action) - action.started_at)} s, "
                    f"STANDALONE_TASKS={self.t.standalone_tasks}, grace "
                    f"{self.t.standalone_grace_seconds} s)",
                )
            )
        return out

    # --- errors_release ---------------------------------------------------------------------

    def errors_release(self) -> list[Violation]:
        # A failing poll lasts up to the function's Timeout (botocore's back-off runs in it).
        # Imported here: the construct's package loads the CDK.
        from ecs_drain_hook.timing import LAMBDA_TIMEOUT_SECONDS

        out = []
        ers = self.t.error_release_seconds
        for token, executions in self.executions_of.items():
            action = self.by_token.get(token)
            if action is None:
                continue
            wait = min(ERROR_RETRY_SECONDS, max(1, action.heartbeat_timeout // 2))
            cycles = math.ceil(ers / wait) + 1
            longest = timedelta(
                seconds=ers
                + wait
                + LAMBDA_TIMEOUT_SECONDS
                + cycles * POLL_TASK_RETRY_SECONDS
                + DELIVERY_SLACK_SECONDS
            )
            for execution in executions:
                for first, last, _clean in self.failure_streaks(execution):
                    if last - first > longest:
                        out.append(
                            Violation(
                                "errors_release",
                                action.instance_id,
                                last,
                                f"loop {execution.name}: polls failed for "
                                f"{_seconds(last - first)} s, longer than ERROR_RELEASE_SECONDS="
                                f"{ers} allows ({_seconds(longest)} s with the retry waits)",
                            )
                        )
                if (
                    execution.status == "FAILED"
                    and execution.error == "ErrorsOutlastedRelease"
                    and not self._outlasted(execution, ers)
                ):
                    out.append(
                        Violation(
                            "errors_release",
                            action.instance_id,
                            execution.stopped_at,
                            f"loop {execution.name} gave up (ErrorsOutlastedRelease) before polls "
                            f"had failed for ERROR_RELEASE_SECONDS={ers}",
                        )
                    )
                out += self._released_in_time(action, execution)
        return out

    def _outlasted(self, execution: ExecutionView, ers: int) -> bool:
        streaks = self.failure_streaks(execution)
        if not streaks:
            return False
        first, last, _ = streaks[-1]
        return last - first >= timedelta(seconds=ers) - TOLERANCE

    def _released_in_time(self, action: ActionView, execution: ExecutionView) -> list[Violation]:
        stopped = execution.stopped_at
        if execution.status not in BAD_ENDS or stopped is None:
            return []
        if action.ended_at is not None and action.ended_at <= stopped:
            return []  # the action was over before the loop ended: nothing to release
        limit = stopped + timedelta(seconds=RELEASE_WITHIN_SECONDS + DELIVERY_SLACK_SECONDS)
        if action.ended_by == "complete" and action.ended_at is not None:
            if action.ended_at <= limit:
                return []
            if self._release_path_hit(execution, stopped, action.ended_at):
                return []  # injected faults delayed the release; it still came
        excused, tag, why = self._release_missing(execution)
        if excused:
            return []
        if action.ended_by == "complete" and action.ended_at is not None:
            late = f"completed {_seconds(action.ended_at - stopped)} s after it ended"
        elif action.ended_at is not None:
            late = f"not released: ended by the hook's {action.ended_by}"
        else:
            late = "not released"
        return [
            Violation(
                "errors_release",
                action.instance_id,
                stopped,
                f"loop {execution.name} ended {execution.status} ({execution.error}) while the "
                f"action waited; {late} (rule: within {RELEASE_WITHIN_SECONDS} s); {why}",
                tag,
            )
        ]

    # --- spot_draining, retain_kept -----------------------------------------------------------

    def spot_draining(self) -> list[Violation]:
        out = []
        if not self.scenario.spot_market.mark_request:
            return out  # EC2 confirms nothing: the Lambda rightly writes nothing
        for instance, noticed, _interrupt, warned in self.data.spot_notices:
            if not warned:
                continue  # the notice's event was lost (best effort)
            drained = self.data.draining_at.get(instance)
            window_end = noticed + timedelta(seconds=SPOT_DRAINING_SECONDS)
            if drained is not None and drained <= window_end:
                continue
            runs = [
                i
                for i in self.data.invocations
                if isinstance(i.event, dict)
                and i.event.get("source") == "aws.ec2"
                and i.event.get("detail", {}).get("instance-id") == instance
            ]
            result = runs[0].result if runs and isinstance(runs[0].result, dict) else {}
            if result.get("action") == "ignored":
                continue  # not registered / not ACTIVE / EC2 silent: nothing to drain
            faulted = [
                f for f in self.data.faults if noticed - TOLERANCE <= f.at <= window_end
            ] or [r for r in self.data.rejections if noticed <= r[0] <= window_end]
            if faulted or any(i.error and injected(i.error) for i in runs):
                self.excused.append(f"{SPOT_DRAINING_FAULTED}: {instance}: injected faults")
                continue
            since = "never" if drained is None else f"{_seconds(drained - noticed)} s after"
            out.append(
                Violation(
                    "spot_draining",
                    instance,
                    noticed,
                    f"Spot warning at t+{_seconds(noticed - self.data.start)} s, DRAINING {since}"
                    f" (runs: {[self._summary(r.result) for r in runs]})",
                )
            )
        return out

    def retain_kept(self) -> list[Violation]:
        out = []
        if not (self.scenario.retain_policy and self.t.on_drain_failure == "retain"):
            return out
        for end in self.data.ends.values():
            action = self.by_token.get(end.token)
            if action is None or end.ended_by != "complete" or action.result == "ABANDON":
                continue
            holding = [
                t for t in end.unstopped if t.kind != "daemon" or self.t.daemon_tasks_hold_instance
            ]
            rule = self.released_by_rule(action)
            if not holding or rule in (None, "interruption"):
                continue
            terminated = self.data.terminated.get(end.instance_id)
            if terminated is None or self.taken_by_ec2(end.instance_id, terminated):
                continue
            out.append(
                Violation(
                    "retain_kept",
                    end.instance_id,
                    end.at,
                    f"released on a failure path ({rule}) with {len(holding)} task(s) holding it, "
                    f"completed {action.result}: terminated, not retained"
                    + self._completion_note(action),
                )
            )
        return out

    # --- bounded_calls ----------------------------------------------------------------------

    def bounded_calls(self) -> list[Violation]:
        out = []
        per_run: dict[int, Counter[str]] = defaultdict(Counter)
        for call in self.data.calls:
            if call.scope == "lambda" and call.invocation is not None:
                per_run[call.invocation][call.operation] += 1
        most = max(self.data.tasks_placed.values(), default=0)
        for index, counts in sorted(per_run.items()):
            invocation = (
                self.data.invocations[index] if index < len(self.data.invocations) else None
            )
            instance = invocation.instance_id if invocation else None
            tasks = self.data.tasks_placed.get(instance or "", most) if instance else most
            ceiling = call_ceiling(tasks, self.data.services, self.data.container_instances)
            over = {op: n for op, n in counts.items() if n > ceiling.get(op, 0)}
            total, limit = sum(counts.values()), sum(ceiling.values())
            if over or total > limit:
                out.append(
                    Violation(
                        "bounded_calls",
                        instance,
                        invocation.at if invocation else None,
                        f"run {index} ({invocation.kind if invocation else '?'}) made {total} "
                        f"calls (ceiling {limit}); over the ceiling: "
                        + ", ".join(f"{op} {n} > {ceiling.get(op, 0)}" for op, n in over.items()),
                    )
                )
        return out


def _event_id(event: Any) -> Any:
    return event.get("id") if isinstance(event, dict) else None


def calls_per_run(data: RunData) -> Counter[int]:
    """The Lambda's AWS calls in each run (index in data.invocations)."""
    counts: Counter[int] = Counter()
    for call in data.calls:
        if call.scope == "lambda" and call.invocation is not None:
            counts[call.invocation] += 1
    return counts


def max_ceiling(data: RunData) -> int:
    most = max(data.tasks_placed.values(), default=0)
    return sum(call_ceiling(most, data.services, data.container_instances).values())
