"""Scheduled poller (one function per channel, EventBridge Scheduler input `{"channel": ...}`).

Polls every registered shop of the channel once: the window since its cursor, every page,
exactly-once storage; a failed window goes to the retry queue.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.availability import count_attempt
from oms.normalizers import SUPPORTED
from oms.observability import logger, metrics
from oms.services.dependencies import poll_ports, poll_settings
from oms.services.ingest import poll_shop
from oms.settings import get_settings
from pydantic import BaseModel, ConfigDict, field_validator

# Stop starting new work this long before the Lambda timeout.
SAFETY_MARGIN_SECONDS = 5
MAX_PARALLEL_SHOPS = 4


class ScheduledPollEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    channel: str

    @field_validator("channel")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value not in SUPPORTED:
            raise ValueError(f"channel {value!r} has no poller; supported: {', '.join(SUPPORTED)}")
        return value


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request = ScheduledPollEvent.model_validate(event)
    settings = get_settings()
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    ports = poll_ports(settings, request.channel, deadline=deadline)
    shops = ports.cursors.list_shops(request.channel)
    # Each shop has its own rate limit, so a channel's shops are polled side by side.
    with ThreadPoolExecutor(max_workers=max(min(len(shops), MAX_PARALLEL_SHOPS), 1)) as pool:
        outcomes = list(pool.map(lambda shop: poll_shop(request.channel, shop.shop_id, ports, poll_settings(settings)), shops))
    for outcome in outcomes:
        logger.info("shop polled", extra=outcome.as_dict())
        _emit_metrics(outcome)
        if outcome.state != "busy":  # a skipped poll (another holds the lease) is no attempt
            count_attempt(outcome.channel, failed=outcome.state == "failed")
    return {"channel": request.channel, "shops": [outcome.as_dict() for outcome in outcomes]}


def _emit_metrics(outcome) -> None:
    counts = outcome.counts.outcomes if outcome.counts else {}
    values = {
        "OrdersCreated": counts.get("created", 0),
        "OrdersUpdated": counts.get("updated", 0),
        "DuplicatesSuppressed": counts.get("duplicate", 0) + counts.get("stale", 0),
        "OrdersQuarantined": counts.get("quarantined", 0),
        "PollWindowsFailed": int(outcome.state == "failed"),
    }
    # One EMF document per shop poll, dimensioned by channel.
    metrics.clear_metrics()
    metrics.add_dimension(name="channel", value=outcome.channel)
    for name, value in values.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()
