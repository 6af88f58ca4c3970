"""Fixtures for the sandbox's own behaviour tests: moto in process, patched, on a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from local_aws import autoscaling, ecs_states
from local_aws.clock import RealClock, VirtualClock
from tests.e2e.conftest import sandbox  # noqa: F401  (the sandbox fixture, shared)

REGION = "us-east-1"


@pytest.fixture
def clock() -> Iterator[VirtualClock]:
    c = VirtualClock()
    autoscaling.install(clock=c)
    yield c
    autoscaling.set_clock(RealClock())


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, clock: VirtualClock) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        ecs_states.install()
        yield
