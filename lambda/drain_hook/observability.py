"""Powertools Logger and Metrics, shared by the handler and the drain flow.

Tracing (X-Ray through Powertools Tracer) is imported only when TRACING_ENABLED is true, so a
function without tracing does not pay for the X-Ray SDK at cold start.
"""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools import Logger, Metrics

from drain_hook import contract

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", contract.SERVICE_NAME)
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", contract.METRICS_NAMESPACE)

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)

# Most polls find nothing to count; Powertools would warn on each (its documented filter).
warnings.filterwarnings("ignore", "No application metrics to publish*")
