"""Event builders shared by the Lambda tests."""

from __future__ import annotations

from typing import Any


def eventbridge(detail: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    """An EventBridge lifecycle event around `detail`; keyword arguments override the envelope."""
    return {
        "version": "0",
        "id": "7e3c8e2f-0000-0000-0000-000000000000",
        "detail-type": "EC2 Instance-terminate Lifecycle Action",
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": "2025-01-06T09:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x"],
        "detail": detail,
        **envelope,
    }
