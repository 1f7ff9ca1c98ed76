"""Scheduled feed of one allocation data source (EventBridge Scheduler input `{"source": ...}`).

`wms` mirrors every warehouse's stock into the Inventory table; `carrier`, `attendance` and `quality`
refresh the transit-time, staff-load and error-rate snapshots (see `oms.services.feeds`). A source
without an API in this deployment is reported as not configured. A failed refresh raises, so the
invocation fails and CloudWatch sees it (the schedule does not retry: the next run is the retry).
"""

from __future__ import annotations

import time

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.adapters.clock import SystemClock
from oms.adapters.facts_table import FactsTable
from oms.adapters.warehouses_table import WarehousesTable
from oms.observability import logger, metrics
from oms.services.feeds import SOURCES, FeedPorts, PartialFeedError, refresh_source
from oms.settings import Settings, get_settings
from pydantic import BaseModel, ConfigDict, field_validator

# Stop calling the source this long before the Lambda timeout.
SAFETY_MARGIN_SECONDS = 10


class FeedEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source: str

    @field_validator("source")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SOURCES:
            raise ValueError(f"source {value!r} has no feed; known sources: {', '.join(SOURCES)}")
        return value


def feed_ports(settings: Settings, source: str, *, deadline: float | None) -> FeedPorts:
    """Only the chosen source's client is built; None where the deployment has no such API."""
    ports = FeedPorts(facts=FactsTable(settings.allocation_facts_table),
                      warehouses=WarehousesTable(settings.warehouses_table))
    if source == "wms":
        from oms.adapters.inventory_table import InventoryTable
        from oms.adapters.sources.wms import InventoryMirror, wms_client

        ports.wms = wms_client(settings, deadline=deadline)
        ports.inventory = InventoryMirror(InventoryTable(settings.inventory_table))
    elif source == "carrier":
        from oms.adapters.sources.carrier import carrier_client

        ports.carrier = carrier_client(settings, deadline=deadline)
    elif source == "attendance":
        from oms.adapters.sources.attendance import attendance_client

        ports.attendance = attendance_client(settings, deadline=deadline)
    else:
        from oms.adapters.sources.quality import quality_client

        ports.quality = quality_client(settings, deadline=deadline)
    return ports


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request = FeedEvent.model_validate(event)
    logger.append_keys(source=request.source)
    settings = get_settings()
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    try:
        outcome = refresh_source(request.source, feed_ports(settings, request.source, deadline=deadline),
                                 SystemClock().now())
    except PartialFeedError as error:
        logger.error("feed partly failed", extra={**error.outcome.as_dict(), "failed": error.failed})
        _emit_metrics(request.source, refreshed=False, failed=True)
        raise
    except Exception:
        logger.exception("feed failed")
        _emit_metrics(request.source, refreshed=False, failed=True)
        raise
    if outcome.state == "not_configured":
        logger.warning("source not configured: no API URL in the settings or its secret", extra=outcome.as_dict())
    else:
        logger.info("feed refreshed", extra=outcome.as_dict())
    _emit_metrics(request.source, refreshed=outcome.state == "refreshed", failed=False)
    return outcome.as_dict()


def _emit_metrics(source: str, *, refreshed: bool, failed: bool) -> None:
    # One EMF document per run: a missing FeedRefreshed_<source> datapoint is what an alarm watches.
    metrics.clear_metrics()
    metrics.add_metric(name=f"FeedRefreshed_{source}", unit=MetricUnit.Count, value=int(refreshed))
    metrics.add_metric(name=f"FeedFailed_{source}", unit=MetricUnit.Count, value=int(failed))
    metrics.flush_metrics()
