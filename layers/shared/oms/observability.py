"""Powertools Logger, Tracer and Metrics shared by every handler (service name from the environment)."""

from __future__ import annotations

from collections import Counter

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def mask_phone(phone: str | None) -> str | None:
    """Keep only the last four digits of a phone number for logs."""
    if not phone:
        return phone
    digits = [c for c in phone if c.isdigit()]
    return "*" * max(len(digits) - 4, 0) + "".join(digits[-4:])


def publish_counts(prefix: str, counts: Counter) -> None:
    """One EMF document for one invocation's outcomes (`{prefix}_{outcome}` counts). Per invocation,
    not the shared `metrics`: the local cloud runs several invocations of a function at once."""
    invocation = EphemeralMetrics()
    for outcome, count in counts.items():
        if count:
            invocation.add_metric(name=f"{prefix}_{outcome}", unit=MetricUnit.Count, value=count)
    if any(counts.values()):
        invocation.flush_metrics()
