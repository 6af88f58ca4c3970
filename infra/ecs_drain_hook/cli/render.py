"""The CLI's output: drains as text for a terminal, or as JSON. Pure: no AWS, no clock."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ecs_drain_hook.cli.views import DrainView, Round, ServiceHold, to_json

INDENT = "  "
LABEL = 15  # width of the labels in a drain's block


def when(value: datetime | None) -> str:
    if value is None:
        return "unknown"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def clock(value: datetime | None) -> str:
    return "--:--:--" if value is None else value.astimezone(UTC).strftime("%H:%M:%SZ")


def span(seconds: float) -> str:
    """A duration as 1h02m03s, 4m05s or 6s."""
    total = int(abs(seconds))
    hours, minutes, secs = total // 3600, total // 60 % 60, total % 60
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _line(label: str, text: str) -> str:
    return f"{INDENT}{label:<{LABEL}}{text}"


def _more(text: str) -> str:
    return f"{INDENT}{'':<{LABEL}}{text}"


SOURCES = {
    "scaling_activity": "Auto Scaling's scaling activity",
    "drain_record": "the drain record of an earlier round",
    "first_seen": "the first round (no AWS record of the hold's start)",
}


def drain_block(view: DrainView, now: datetime, *, explain: bool = False) -> list[str]:
    """One drain: where it stands and what holds it."""
    where = f"{view.group or 'no group'}  {view.lifecycle_state or 'not in Auto Scaling'}"
    lines = [f"{view.instance_id}  {where}  cluster {view.cluster}"]
    if view.started_at is not None:
        source = SOURCES.get(view.hold_start_source or "", view.hold_start_source or "unknown")
        lines.append(
            _line(
                "since",
                f"{when(view.started_at)} ({span((now - view.started_at).total_seconds())} ago, "
                f"from {source})",
            )
        )
    if view.deadline_at is not None:
        left = (view.deadline_at - now).total_seconds()
        due = f"in {span(left)}" if left >= 0 else f"passed {span(left)} ago"
        then = f": {view.at_deadline}" if view.at_deadline else ""
        lines.append(_line("deadline", f"{when(view.deadline_at)} ({due}){then}"))
    counts = view.counts
    lines.append(
        _line(
            "tasks left",
            f"{len(view.tasks)} ({counts['service']} service, {counts['daemon']} daemon, "
            f"{counts['standalone']} standalone)",
        )
    )
    for hold in view.services:
        lines += _service_lines(hold)
    standalone = [t for t in view.tasks if t.kind == "standalone"]
    if standalone:
        states = ", ".join(sorted({t.last_status for t in standalone}))
        lines.append(_line("standalone", f"{len(standalone)} task(s), {states}"))
    if not view.tasks:
        waited = [h for h in view.services if h.waited_for]
        lines.append(
            _line(
                "empty",
                "waiting for the services above to run their desired count "
                "(RELEASE_WHEN=services_steady)"
                if waited
                else "no task left: the next task event or poll releases it",
            )
        )
    if view.agent_connected:
        lines.append(_line("agent", "connected"))
    else:
        since = f" since {when(view.agent_lost_since)}" if view.agent_lost_since else ""
        lines.append(_line("agent", f"DISCONNECTED{since}: its tasks can't stop until it is back"))
    loop = view.loop or "none recorded"
    status = f" {view.execution_status}" if view.execution_status else ""
    lines.append(_line("loop", f"{loop}{status}"))
    if view.console_url:
        lines.append(_more(view.console_url))
    if explain:
        lines += _explain_lines(view)
    for note in view.notes:
        lines.append(_line("note", note))
    return lines


def _service_lines(hold: ServiceHold) -> list[str]:
    counts = (
        f"{hold.running}/{hold.desired} running"
        if hold.running is not None and hold.desired is not None
        else "not found in the cluster"
    )
    here = f"{hold.tasks_on_instance} here, " if hold.tasks_on_instance else ""
    kind = " (daemon)" if hold.strategy == "DAEMON" else ""
    waited = ", waited for" if hold.waited_for else ""
    lines = [_line("service", f"{hold.name}{kind}: {here}{counts}{waited}")]
    if hold.latest_event:
        lines.append(_more(f"{clock(hold.latest_event_at)} {hold.latest_event}"))
    return lines


def _explain_lines(view: DrainView) -> list[str]:
    lines = [
        _line("drain record", f"{view.drain_record!r} (hold start, owner loop[, agent lost])"),
        _line(
            "action record",
            f"hook {view.action_hook}, group {view.action_group}"
            if view.action_group
            else "none (a report-only drain: no lifecycle action to complete)",
        ),
        _line(
            "release",
            f"RELEASE_WHEN={view.release_when or 'unknown'}"
            + (
                f"; services at the start: {', '.join(view.release_services)}"
                if view.release_services
                else ""
            ),
        ),
    ]
    if view.rounds:
        lines.append(_line("rounds", "the wait loop's last decisions, oldest first:"))
        lines += [_more(_round(r)) for r in view.rounds]
    return lines


def _round(r: Round) -> str:
    left = "" if r.tasks_remaining is None else f" {r.tasks_remaining} left"
    wait = f", next poll in {r.wait_seconds}s" if r.wait_seconds else ""
    return f"{clock(r.at)} {r.action}{left}{wait}: {r.reason}"


def status_text(views: Sequence[DrainView], clusters: Sequence[str], now: datetime) -> str:
    where = ", ".join(clusters) or "no cluster"
    if not views:
        return f"no drain under way in {where} ({when(now)})"
    lines = [f"{len(views)} drain(s) under way in {where} ({when(now)})"]
    for view in views:
        lines.append("")
        lines += drain_block(view, now)
    return "\n".join(lines)


def explain_text(view: DrainView, now: datetime) -> str:
    return "\n".join(drain_block(view, now, explain=True))


def release_text(done: dict[str, Any]) -> str:
    stopped = (
        f"stopped the wait loop {done['execution_arn']}"
        if done["loop_stopped"]
        else "the wait loop was not running"
    )
    record = (
        "took the drain record off the container instance"
        if done["drain_record"] == "cleared"
        else "the container instance is gone, and its drain record with it"
    )
    return (
        f"{done['instance_id']}: completed the lifecycle action with {done['result']}; {stopped}; "
        f"{record}"
    )


def drain_text(answer: dict[str, Any]) -> str:
    lines = [
        f"{answer.get('instance_id')}: {answer.get('action')} "
        f"({answer.get('tasks_remaining')} task(s) left): {answer.get('reason')}"
    ]
    for write in answer.get("planned") or []:
        lines.append(f"{INDENT}would: {write}")
    if answer.get("execution_name"):
        lines.append(f"{INDENT}wait loop: {answer['execution_name']}")
    return "\n".join(lines)


def as_json(value: Any) -> str:
    return json.dumps(to_json(value), indent=2, sort_keys=True)


def status_json(views: Sequence[DrainView], clusters: Sequence[str], now: datetime) -> str:
    return as_json({"read_at": now, "clusters": list(clusters), "drains": list(views)})
