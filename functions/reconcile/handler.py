"""Scheduled reconciliation (EventBridge Scheduler input `{"channel": ...}`), also run by `oms reconcile`.

Event: `channel`, and optionally `shop_id` (default: every registered shop of the channel),
`since` and `until` (ISO 8601; default: the last RECONCILE_LOOKBACK_SECONDS). Never past a shop's
cursor: polling has not reached that part yet.
"""

from __future__ import annotations

import time
from datetime import timedelta

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.normalizers import SUPPORTED
from oms.observability import logger, metrics
from oms.services.dependencies import reconcile_ports
from oms.services.reconcile import reconcile_shop
from oms.settings import get_settings
from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator

SAFETY_MARGIN_SECONDS = 10


class ReconcileEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    channel: str
    shop_id: str | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None

    @field_validator("channel")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value not in SUPPORTED:
            raise ValueError(f"channel {value!r} is not supported; supported: {', '.join(SUPPORTED)}")
        return value


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request = ReconcileEvent.model_validate(event)
    settings = get_settings()
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    ports, cursors = reconcile_ports(settings, request.channel, deadline=deadline)
    now = ports.clock.now()
    since = request.since or now - timedelta(seconds=settings.reconcile_lookback_seconds)
    reports = []
    for shop in cursors.list_shops(request.channel):
        if request.shop_id not in (None, shop.shop_id) or shop.updated_through is None:
            continue
        until = min(request.until or now, shop.updated_through)
        report = reconcile_shop(request.channel, shop.shop_id, since, until, ports)
        logger.info("shop reconciled", extra={k: v for k, v in report.as_dict().items() if k != "slices"})
        _emit_metrics(report)
        reports.append(report.as_dict())
    return {"channel": request.channel, "since": since.isoformat(), "shops": reports}


def _emit_metrics(report) -> None:
    metrics.clear_metrics()
    metrics.add_dimension(name="channel", value=report.channel)
    metrics.add_metric(name="OrdersBackfilled", unit=MetricUnit.Count, value=report.total("backfilled"))
    metrics.add_metric(name="OrdersRefreshedByReconcile", unit=MetricUnit.Count, value=report.total("refreshed"))
    metrics.add_metric(name="ReconcileFailed", unit=MetricUnit.Count, value=int(report.state == "failed"))
    metrics.flush_metrics()
