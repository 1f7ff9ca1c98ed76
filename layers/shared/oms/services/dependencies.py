"""Builds the ingestion services' ports from settings: the composition root shared by handlers."""

from __future__ import annotations

from datetime import timedelta

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
    return IngestPorts(
        orders=OrdersTable(settings.orders_table, settings.raw_payload_bucket),
        quarantine=QuarantineTable(settings.quarantine_table),
        normalizer=normalizer_for(channel),
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
