"""Counts over many soak runs, and the summary `python -m soak run` prints."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from soak.invariants import INVARIANTS, SPOT_DRAINING_FAULTED, calls_per_run, max_ceiling
from soak.runner import Outcome, replay_command


@dataclass
class Totals:
    profile: str
    scenarios: int = 0
    instances: int = 0
    actions: int = 0  # lifecycle actions of our hook
    completed: int = 0  # ... ended by the drain's CompleteLifecycleAction
    lambda_runs: int = 0
    executions: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # injected, by kind
    violations: Counter[str] = field(default_factory=Counter)  # by invariant
    failing: Counter[str] = field(default_factory=Counter)  # scenarios failing, by invariant
    tags: Counter[str] = field(default_factory=Counter)  # "invariant [tag]"
    excused: Counter[str] = field(default_factory=Counter)  # excused actions, by kind
    spot_excused: int = 0  # Spot warnings whose run injected faults hit
    failing_seeds: list[int] = field(default_factory=list)
    calls_max: int = 0
    ceiling_max: int = 0
    release_latency: list[float] = field(default_factory=list)  # last task stopped -> release
    virtual_seconds: float = 0.0
    scenario_wall: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    features: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        data, scenario = outcome.data, outcome.scenario
        self.scenarios += 1
        self.instances += scenario.instances
        ours = data.ours()
        self.actions += len(ours)
        self.completed += sum(1 for a in ours if a.ended_by == "complete")
        self.lambda_runs += len(data.invocations)
        self.executions += len(data.executions)
        self.faults.update(f.kind for f in data.faults)
        for violation in outcome.violations:
            self.violations[violation.invariant] += 1
            if violation.tag:
                self.tags[f"{violation.invariant} [{violation.tag}]"] += 1
        self.failing.update({v.invariant for v in outcome.violations})
        if outcome.violations:
            self.failing_seeds.append(scenario.seed)
        kinds = [line.split(":", 1)[0] for line in outcome.excused]
        self.spot_excused += kinds.count(SPOT_DRAINING_FAULTED)
        self.excused.update(k for k in kinds if k != SPOT_DRAINING_FAULTED)
        per_run = calls_per_run(data)
        self.calls_max = max(self.calls_max, max(per_run.values(), default=0))
        self.ceiling_max = max(self.ceiling_max, max_ceiling(data))
        self.release_latency += _release_latencies(outcome)
        self.virtual_seconds += data.virtual_seconds
        self.scenario_wall.append(data.wall_seconds)
        self.features.update(_features(scenario))

    def lines(self) -> list[str]:
        out = [
            f"soak ({self.profile}): {self.scenarios} scenarios, {self.instances} instances, "
            f"{self.actions} lifecycle actions of our hook ({self.completed} completed by the "
            f"drain, {sum(self.excused.values())} excused, "
            f"{self.actions - self.completed - sum(self.excused.values())} not)",
            f"  Lambda runs {self.lambda_runs}, wait-loop executions {self.executions}, "
            f"virtual time {self.virtual_seconds / 3600:.1f} h",
            "  scenario features: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.features.items())),
            "  faults injected by kind: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"),
            "  excused actions (the Lambda failed past every retry, or EC2 took the instance): "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.excused.items())) or "none"),
            f"  Spot warnings excused from spot_draining (injected faults hit the run): "
            f"{self.spot_excused}",
            f"  most AWS calls in one Lambda run: {self.calls_max} (ceiling at most "
            f"{self.ceiling_max})",
        ]
        if self.release_latency:
            latencies = sorted(self.release_latency)
            out.append(
                f"  release latency, last task STOPPED -> completion: p50 "
                f"{_rank(latencies, 0.5):.1f} s, p95 {_rank(latencies, 0.95):.1f} s, max "
                f"{latencies[-1]:.1f} s"
            )
        out.append("  violations per invariant (violations / scenarios):")
        for name in INVARIANTS:
            out.append(f"    {name:16} {self.violations[name]:5} / {self.failing[name]}")
        for tag, count in sorted(self.tags.items()):
            out.append(f"      {tag}: {count}")
        walls = sorted(self.scenario_wall) or [0.0]
        out.append(
            f"  wall time {self.wall_seconds:.0f} s (per scenario: median "
            f"{statistics.median(walls):.1f} s, max {walls[-1]:.1f} s)"
        )
        if self.failing_seeds:
            shown = ", ".join(str(s) for s in self.failing_seeds[:40])
            more = "" if len(self.failing_seeds) <= 40 else f" (+{len(self.failing_seeds) - 40})"
            out.append(f"  failing seeds: {shown}{more}")
            out.append(f"  replay one: {replay_command(self.failing_seeds[0], self.profile)}")
        return out


def _rank(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of an ordered list."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _features(scenario: object) -> list[str]:
    from soak.scenario import Scenario

    assert isinstance(scenario, Scenario)
    found = []
    if len(scenario.scale_ins) > 1:
        found.append("staggered")
    if scenario.has_outage:
        found.append("outage")
    if scenario.warm_pool:
        found.append("warm_pool")
    if scenario.other_hooks:
        found.append("other_hooks")
    if scenario.agent_outages:
        found.append("agent_outages")
    if scenario.flapping:
        found.append("flapping")
    if scenario.delivery.lifecycle_delayed:
        found.append("late_lifecycle")
    if scenario.delivery.replays:
        found.append("replays")
    if scenario.delivery.states_loss:
        found.append("status_loss")
    return found


def _release_latencies(outcome: Outcome) -> list[float]:
    """For each action our drain completed: seconds from its instance's last task STOPPED (or
    from the entry into the wait when it had none) to the completion."""
    data = outcome.data
    out = []
    for action in data.ours():
        if action.ended_by == "complete" and action.ended_at is not None:
            end = data.ends.get(action.token)
            if end is not None and not end.unstopped:
                out.append(max(0.0, _last_stop(outcome, action.instance_id, action.ended_at)))
    return out


def _last_stop(outcome: Outcome, instance_id: str, ended_at: datetime) -> float:
    """Seconds between the last task on the instance reaching STOPPED and ``ended_at``."""
    data = outcome.data
    last = None
    for task, instance in data.task_instance.items():
        if instance != instance_id:
            continue
        at = data.stopped_at.get(task)
        if at is not None and at <= ended_at and (last is None or at > last):
            last = at
    start = next(a.started_at for a in data.ours() if a.instance_id == instance_id)
    reference = max(last, start) if last else start
    return (ended_at - reference).total_seconds()


def failure_lines(outcome: Outcome) -> list[str]:
    scenario = outcome.scenario
    lines = [
        f"seed {scenario.seed} ({scenario.profile}): {len(outcome.violations)} violation(s); "
        f"replay: {replay_command(scenario.seed, scenario.profile)}"
    ]
    for violation in outcome.violations[:12]:
        lines.append("  " + violation.line(outcome.data.start))
    if len(outcome.violations) > 12:
        lines.append(f"  ... {len(outcome.violations) - 12} more")
    return lines
