"""Scheduled feed of one allocation data source (EventBridge Scheduler input `{"source": ...}`).

`wms` mirrors every warehouse's stock into the Inventory table; `carrier`, `attendance` and `quality`
refresh the transit-time, staff-load and error-rate snapshots; `shipments` records what the warehouses
shipped since the last run (units deducted, orders shipped at the WMS's time, through allocation's
`record_shipment`; see `oms.services.feeds`). A source without an API in this deployment is reported
as not configured. A failed refresh raises, so the
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
from oms.services.feeds import FEEDS, FeedPorts, PartialFeedError, refresh_source
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
        if value not in FEEDS:
            raise ValueError(f"source {value!r} has no feed; known sources: {', '.join(FEEDS)}")
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
    elif source == "shipments":
        from functools import partial

        from oms.adapters.reservation_store import ReservationStore
        from oms.adapters.sources.wms import wms_client
        from oms.services.allocate import ShippingPorts, record_shipment

        ports.shipments = wms_client(settings, deadline=deadline)
        shipping = ShippingPorts(
            reservations=ReservationStore(settings.reservations_table, settings.inventory_table, settings.orders_table),
            clock=SystemClock())
        ports.record_shipment = partial(record_shipment, ports=shipping)
    elif source == "attendance":
        from oms.adapters.kpi_counters_table import KpiCountersTable
        from oms.adapters.sources.attendance import attendance_client

        ports.attendance = attendance_client(settings, deadline=deadline)
        ports.staff_days = KpiCountersTable(settings.kpi_table)
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
        _emit_metrics(request.source, refreshed=False, failed=True, outcome=error.outcome)
        raise
    except Exception:
        logger.exception("feed failed")
        _emit_metrics(request.source, refreshed=False, failed=True)
        raise
    if outcome.state == "not_configured":
        logger.warning("source not configured: no API URL in the settings or its secret", extra=outcome.as_dict())
    else:
        logger.info("feed refreshed", extra=outcome.as_dict())
    _emit_metrics(request.source, refreshed=outcome.state == "refreshed", failed=False, outcome=outcome)
    return outcome.as_dict()


def _emit_metrics(source: str, *, refreshed: bool, failed: bool, outcome=None) -> None:
    # One EMF document per run: a missing FeedRefreshed_<source> datapoint is what an alarm watches.
    metrics.clear_metrics()
    metrics.add_metric(name=f"FeedRefreshed_{source}", unit=MetricUnit.Count, value=int(refreshed))
    metrics.add_metric(name=f"FeedFailed_{source}", unit=MetricUnit.Count, value=int(failed))
    if source == "shipments" and outcome is not None:
        # Unmatched shipments are parcels the WMS sent for orders we do not hold: worth an alarm.
        metrics.add_metric(name="ShipmentsRecorded", unit=MetricUnit.Count, value=outcome.shipments_recorded)
        metrics.add_metric(name="ShipmentsUnmatched", unit=MetricUnit.Count, value=outcome.shipments_unmatched)
    metrics.flush_metrics()
