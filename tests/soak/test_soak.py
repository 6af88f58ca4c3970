"""The soak (soak/): its generator stays within bounds and repeats by seed, a fast size of it
passes every invariant, and each invariant catches a drain Lambda broken on purpose."""

from __future__ import annotations

from dataclasses import replace

import pytest

from soak.deployment import heartbeat_bounds, tunables_from_env
from soak.invariants import call_ceiling
from soak.runner import Outcome, run_scenario
from soak.scenario import (
    FaultSpec,
    ScaleInStep,
    Scenario,
    ServiceSpec,
    StandaloneSpec,
    generate,
)

FAST_SEEDS = range(10)


@pytest.mark.parametrize("profile", ["full", "fast"])
def test_scenarios_stay_within_their_bounds(profile: str) -> None:
    for seed in range(150):
        scenario = generate(seed, profile)  # type: ignore[arg-type]
        assert scenario == generate(seed, profile)  # type: ignore[arg-type]
        assert 2 <= scenario.instances <= (30 if profile == "full" else 6)
        assert 1 <= scenario.removed <= scenario.instances - 1
        tunables = tunables_from_env(scenario.env)  # the product's own validation
        low, high = heartbeat_bounds(tunables)
        assert low <= scenario.heartbeat_timeout <= high
        for service in scenario.services:
            if not service.daemon:
                assert 0 <= service.minimum_healthy_percent <= 100
                assert 100 <= service.maximum_percent <= 200
                assert service.maximum_percent > service.minimum_healthy_percent
        for fault in scenario.faults:
            assert 0 < fault.probability <= 1
    assert generate(1) != generate(2)


def test_the_fast_soak_keeps_every_invariant() -> None:
    outcomes = [run_scenario(generate(seed, "fast")) for seed in FAST_SEEDS]
    violations = [v for o in outcomes for v in o.violations]
    report = "\n".join(
        f"seed {o.scenario.seed}: {v.line(o.data.start)}" for o in outcomes for v in o.violations
    )
    assert sum(len(o.data.ours()) for o in outcomes) >= len(FAST_SEEDS)
    assert not violations, report


def test_polls_cut_by_the_timeout_while_faults_throttle_them_are_the_faults_doing() -> None:
    """Seed 208 (full): Auto Scaling throttled for 6 minutes, ERROR_RELEASE_SECONDS=60, 20
    attempts: the polls run into the function's timeout while botocore retries, the loop ends
    ErrorsOutlastedRelease and its release loses a standalone task, by the error-release rule."""
    outcome = run_scenario(generate(208, "full"))
    assert not outcome.violations, [v.line(outcome.data.start) for v in outcome.violations]
    failed = [e for e in outcome.data.executions if e.status == "FAILED"]
    assert failed and all(e.error == "ErrorsOutlastedRelease" for e in failed)
    timeouts = [
        h for e in failed for h in e.history if (h.error or "").startswith("Sandbox.Timedout")
    ]
    assert timeouts


def test_a_replay_repeats_the_run() -> None:
    def fingerprint(outcome: Outcome) -> tuple[object, ...]:
        data = outcome.data
        return (
            [(a.instance_id, a.started_at, a.ended_at, a.ended_by) for a in data.ours()],
            [(i.at, i.kind, i.error) for i in data.invocations],
            [(c.at, c.operation, c.ok) for c in data.calls],
            [(f.at, f.operation, f.kind) for f in data.faults],
            [v.line(data.start) for v in outcome.violations],
        )

    # Seed 7: an outage of the state machine's lambda:invoke, so Retry jitter is drawn too.
    scenario = generate(7, "fast")
    assert scenario.has_outage
    assert fingerprint(run_scenario(scenario)) == fingerprint(run_scenario(scenario))


def _plain_scenario(**changes: object) -> Scenario:
    """Three instances, a replica service and a standalone task on the one removed."""
    env = {
        "POLL_INTERVAL_FIRST_SECONDS": "10",
        "POLL_INTERVAL_MAX_SECONDS": "60",
        "MAX_DRAIN_SECONDS": "1800",
        "STANDALONE_TASKS": "wait",
    }
    scenario = Scenario(
        seed=5,
        profile="fast",
        instances=3,
        heartbeat_timeout=700,
        env=env,
        services=(ServiceSpec("web", 6, 100, 200),),
        standalone=(StandaloneSpec(True, 0, 600.0),),
        scale_ins=(ScaleInStep(0.0, "desired", 1),),
    )
    return replace(scenario, **changes)  # type: ignore[arg-type]


def _invariants(outcome: Outcome) -> set[str]:
    return {v.invariant for v in outcome.violations}


def test_the_real_lambda_passes_the_plain_scenario() -> None:
    outcome = run_scenario(_plain_scenario())
    assert outcome.ok, [v.line(outcome.data.start) for v in outcome.violations]
    [action] = outcome.data.ours()
    assert action.ended_by == "complete"


def test_an_early_completion_is_caught() -> None:
    outcome = run_scenario(_plain_scenario(), handler="tests.soak.bad_handlers.complete_at_once")
    assert {"never_early", "nothing_lost"} <= _invariants(outcome)


def test_draining_other_instances_is_caught() -> None:
    outcome = run_scenario(_plain_scenario(), handler="tests.soak.bad_handlers.drain_everything")
    assert "only_targets" in _invariants(outcome)


def test_a_hold_that_runs_out_is_caught_and_not_excused() -> None:
    outcome = run_scenario(
        _plain_scenario(), handler="tests.soak.bad_handlers.ignore_lifecycle_events"
    )
    stuck = [v for v in outcome.violations if v.invariant == "never_stuck"]
    assert stuck and not outcome.excused
    assert "nothing_lost" in _invariants(outcome)


def test_a_lambda_down_past_every_retry_is_excused_not_hidden() -> None:
    # The function fails every run from the start for good: the first round can't run, the
    # hook's timeout ends the hold. That is excused (with its evidence), never a completion.
    outage = FaultSpec("lambda:ecs-drain-hook", "function_error", 1.0, error="Exception", start=0.0)
    outcome = run_scenario(_plain_scenario(faults=(outage,)))
    [action] = outcome.data.ours()
    assert action.ended_by == "heartbeat_timeout"
    assert any(line.startswith("first_round_failed") for line in outcome.excused)
    assert "never_stuck" not in _invariants(outcome)


def test_the_call_ceiling_grows_with_the_pages() -> None:
    small, large = call_ceiling(10, 3, 5), call_ceiling(250, 25, 150)
    assert small["ecs:ListTasks"] == 4 and large["ecs:ListTasks"] == 12
    assert small["ecs:DescribeServices"] == 2 and large["ecs:DescribeServices"] == 6
    assert large["ecs:ListContainerInstances"] == 4
