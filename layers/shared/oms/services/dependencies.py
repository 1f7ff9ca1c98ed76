"""Builds the ingestion services' ports from settings: the composition root shared by handlers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from oms.adapters.channels.registry import build_client
from oms.adapters.clock import SystemClock
from oms.adapters.cursors_table import CursorsTable
from oms.adapters.orders_table import OrdersTable
from oms.adapters.quarantine_table import QuarantineTable
from oms.adapters.reconciliation_table import ReconciliationTable
from oms.adapters.retry_queue import SqsRetryQueue
from oms.domain.polling import RetrySchedule
from oms.normalizers import normalizer_for
from oms.services.ingest import IngestPorts, PollPorts, PollSettings, RecentVersions
from oms.services.reconcile import ReconcilePorts
from oms.settings import Settings

if TYPE_CHECKING:
    from oms.services.allocate import AllocationPorts, OrderToAllocate

# A poll that outlives its Lambda timeout must not keep others out for long.
LEASE = timedelta(minutes=5)
# Kept by the warm container across invocations: the next poll's overlap re-read needs no lookups.
_recent_versions = RecentVersions()


def poll_settings(settings: Settings) -> PollSettings:
    return PollSettings(
        overlap=timedelta(seconds=settings.poll_overlap_seconds),
        initial_lookback=timedelta(seconds=settings.initial_lookback_seconds),
        lease=LEASE,
        retry_schedule=RetrySchedule(delays_seconds=settings.retry_backoff_seconds),
    )


def _client_factory(settings: Settings, deadline: float | None):
    def client_for(channel_name: str, shop_id: str):
        return build_client(
            channel_name,
            shop_id,
            secrets_prefix=settings.secrets_prefix,
            timeout_seconds=settings.channel_http_timeout_seconds,
            deadline=deadline,
        )

    return client_for


def _ingest_ports(settings: Settings, channel: str) -> IngestPorts:
    from oms.adapters.review_queue import SqsReviewQueue

    return IngestPorts(
        orders=OrdersTable(settings.orders_table, settings.raw_payload_bucket),
        quarantine=QuarantineTable(settings.quarantine_table, settings.raw_payload_bucket),
        normalizer=normalizer_for(channel),
        review=SqsReviewQueue(settings.review_queue_url),
    )


def reconcile_ports(settings: Settings, channel: str, *, deadline: float | None) -> tuple[ReconcilePorts, CursorsTable]:
    ports = ReconcilePorts(
        ingest=_ingest_ports(settings, channel),
        client_for=_client_factory(settings, deadline),
        log=ReconciliationTable(settings.reconciliation_table),
        clock=SystemClock(),
    )
    return ports, CursorsTable(settings.shop_cursors_table)


def poll_ports(settings: Settings, channel: str, *, deadline: float | None) -> PollPorts:
    client_for = _client_factory(settings, deadline)
    return PollPorts(
        ingest=_ingest_ports(settings, channel),
        cursors=CursorsTable(settings.shop_cursors_table),
        retry_queue=SqsRetryQueue(settings.retry_queue_url, settings.retry_dlq_url),
        clock=SystemClock(),
        client_for=client_for,
        recent=_recent_versions,
    )


def allocation_ports(settings: Settings, *, clock=None) -> AllocationPorts:
    """The allocation consumer's ports, built once per container (their caches live with them).
    `clock`: the system clock unless a test injects one that can wait without sleeping."""
    from oms.adapters.allocation_rules import AllocationRulesParameter
    from oms.adapters.facts_table import FactsTable
    from oms.adapters.inventory_table import InventoryTable
    from oms.adapters.reservation_store import ReservationStore
    from oms.adapters.review_queue import SqsReviewQueue
    from oms.adapters.sku_map_table import SkuMapTable
    from oms.adapters.warehouses_table import WarehousesTable
    from oms.domain.allocation import AllocationRules
    from oms.services.allocate import AllocationPorts
    from oms.services.allocation_facts import AllocationFacts

    clock = clock or SystemClock()
    defaults = AllocationRules(max_source_age=timedelta(seconds=settings.source_max_age_seconds))
    return AllocationPorts(
        reservations=ReservationStore(settings.reservations_table, settings.inventory_table, settings.orders_table),
        catalog=SkuMapTable(settings.sku_map_table),
        facts=AllocationFacts(WarehousesTable(settings.warehouses_table), InventoryTable(settings.inventory_table),
                              FactsTable(settings.allocation_facts_table), clock),
        review=SqsReviewQueue(settings.review_queue_url),
        clock=clock,
        rules=AllocationRulesParameter(settings.allocation_rules_parameter, defaults),
        wms=_wms_confirmations(settings),
        confirm_timeout=timedelta(seconds=settings.wms_confirm_timeout_seconds),
    )


def _wms_confirmations(settings: Settings):
    """The WMS client (its secret `<prefix>/sources/wms` or the settings URL), or None where no WMS is
    configured: allocation then holds units without asking a warehouse to confirm."""
    from oms.adapters.sources.wms import wms_client

    return wms_client(settings)


def order_to_allocate(image: dict) -> OrderToAllocate:
    """The fields allocation needs, from a stored order (a stream NewImage, deserialised)."""
    from oms.domain.order import OrderLine
    from oms.services.allocate import OrderToAllocate

    ship_to = image.get("ship_to") or {}
    return OrderToAllocate(
        order_key=image["order_key"],
        channel=image["channel"],
        lines=tuple(OrderLine.model_validate({**line, "quantity": int(line["quantity"]),
                                              "unit_price": str(line["unit_price"])})
                    for line in image.get("lines", [])),
        country=ship_to.get("country"),
        province=ship_to.get("province"),
    )
