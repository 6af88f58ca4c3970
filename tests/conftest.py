"""Shared test setup: fake AWS credentials and a complete Lambda environment.

Set before any test module imports drain_hook.handler, which reads its settings at import time
(as a Lambda cold start does).
"""

from __future__ import annotations

import os

import pytest

import infra  # noqa: F401  (quiets jsii's Node banners before any test imports aws-cdk-lib)

# Every botocore client made from here on has its requests checked against the service model
# as AWS checks them (local_aws.service_model; importing local_aws installs it too): no test
# session is made before this line.
from local_aws import service_model

service_model.install()

REGION = "us-east-1"
ACCOUNT = "123456789012"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:ecs-drain-hook-loop"

BASE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "MOTO_ACCOUNT_ID": ACCOUNT,
    "CLUSTER_NAME": "default-cluster",
    "STATE_MACHINE_ARN": STATE_MACHINE_ARN,
    "POWERTOOLS_METRICS_NAMESPACE": "EcsDrainHook",
    "POWERTOOLS_SERVICE_NAME": "ecs-drain-hook",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
os.environ.update(BASE_ENVIRONMENT)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch):
    """Set Lambda environment variables for one test; settings are re-read before and after."""
    from drain_hook.settings import reset_settings

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        reset_settings()

    reset_settings()
    yield set_env
    monkeypatch.undo()
    reset_settings()


@pytest.fixture(autouse=True)
def fresh_lambda_container():
    """Each test starts as a new Lambda container: nothing cached from another test's reads."""
    from drain_hook.adapters import container_cache

    container_cache.clear()
    yield
    container_cache.clear()
