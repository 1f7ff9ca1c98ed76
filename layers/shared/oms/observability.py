"""Powertools Logger, Tracer and Metrics shared by every handler (service name from the environment)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def mask_phone(phone: str | None) -> str | None:
    """Keep only the last four digits of a phone number for logs."""
    if not phone:
        return phone
    digits = [c for c in phone if c.isdigit()]
    return "*" * max(len(digits) - 4, 0) + "".join(digits[-4:])
