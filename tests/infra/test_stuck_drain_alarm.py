"""The stuck-drain alarm: OldestDrainSeconds of the cluster (a dimension beside the service), its
Maximum over a period no drain under way goes without a datapoint, at a context-key threshold."""

from __future__ import annotations

import pytest

from ecs_drain_hook import Tunables, contract
from ecs_drain_hook.alarms import (
    check_stuck_drain_seconds,
    stuck_drain_default_seconds,
    stuck_drain_period_seconds,
)
from ecs_drain_hook.timing import LAMBDA_TIMEOUT_SECONDS
from infra.config import AppConfig, ContextError
from tests.infra.conftest import CLUSTER, TOPIC_ARN, Synth, synthesize
from tests.infra.test_drain_hook_resources import cluster_ref, tunables_for


def _stuck(synth: Synth) -> dict:
    alarms = synth.resources("AWS::CloudWatch::Alarm")
    (found,) = [v for k, v in alarms.items() if k.startswith("DrainHookAlarmsStuckDrain")]
    return found["Properties"]


def test_the_alarm_watches_the_oldest_drain_of_the_cluster(synth: Synth) -> None:
    alarm = _stuck(synth)
    tunables = tunables_for(synth)
    assert alarm["Namespace"] == contract.METRICS_NAMESPACE
    assert alarm["MetricName"] == contract.METRIC_OLDEST_DRAIN_SECONDS
    assert alarm["Dimensions"] == [
        {"Name": contract.CLUSTER_DIMENSION, "Value": cluster_ref(synth)},
        {"Name": "service", "Value": contract.SERVICE_NAME},
    ] or alarm["Dimensions"] == [
        {"Name": "service", "Value": contract.SERVICE_NAME},
        {"Name": contract.CLUSTER_DIMENSION, "Value": cluster_ref(synth)},
    ]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == tunables.max_drain_seconds // 2
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    # Every period of a drain under way holds a round: the longest wait plus one Lambda run.
    assert alarm["Period"] == stuck_drain_period_seconds(tunables)
    assert alarm["Period"] >= tunables.poll_interval_max_seconds + LAMBDA_TIMEOUT_SECONDS
    assert alarm["Period"] % 60 == 0
    if synth.stack_name == "EcsDrainHook":
        assert alarm["AlarmActions"] == [TOPIC_ARN]


def test_the_default_is_half_the_deadline_and_a_bad_threshold_is_refused() -> None:
    assert stuck_drain_default_seconds(Tunables()) == 3600
    assert stuck_drain_default_seconds(Tunables(max_drain_seconds=60)) == 60
    check_stuck_drain_seconds(7199, Tunables())
    for bad in (59, 7200, 10**6, True):
        with pytest.raises(ValueError, match="stuck_drain_alarm_seconds"):
            check_stuck_drain_seconds(bad, Tunables())  # type: ignore[arg-type]


def test_services_steady_shortens_the_period_with_the_waits() -> None:
    steady = Tunables(release_when="services_steady")
    assert stuck_drain_period_seconds(steady) == 240  # 120 s first interval + 120 s run
    assert stuck_drain_period_seconds(Tunables()) == 1920  # 1800 + 120 s, in whole minutes


def test_the_context_key_sets_the_threshold_and_is_checked() -> None:
    base = {"cluster_name": "c", "asg_names": "g"}
    config = AppConfig.from_context({**base, "stuck_drain_alarm_seconds": "900"}.get)
    assert config.stuck_drain_alarm_seconds == 900
    assert AppConfig.from_context(base.get).stuck_drain_alarm_seconds is None
    with pytest.raises(ContextError, match="stuck_drain_alarm_seconds"):
        AppConfig.from_context({**base, "stuck_drain_alarm_seconds": "7200"}.get)


@pytest.mark.synth
def test_a_context_threshold_reaches_the_alarm(tmp_path) -> None:
    synth = synthesize(
        {"cluster_name": CLUSTER, "asg_names": "g", "stuck_drain_alarm_seconds": "1234"},
        tmp_path,
    )
    assert _stuck(synth)["Threshold"] == 1234
