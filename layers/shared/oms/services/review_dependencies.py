"""Wiring of the reviewer use-cases to their adapters (the engines' ports are built on first use:
a listing never pays for the allocation or SMS clients)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from oms.adapters.clock import SystemClock
from oms.settings import Settings


def review_ports(settings: Settings, *, clock=None, allocation=None, verification=None):
    from oms.adapters.audit_log_table import AuditLogTable
    from oms.adapters.orders_table import OrdersTable
    from oms.adapters.quarantine_table import QuarantineTable
    from oms.adapters.reservation_store import ReservationStore
    from oms.adapters.review_items_table import ReviewItemsTable
    from oms.adapters.risk_decisions import RiskDecisionsTable
    from oms.services.review import ReviewPorts

    clock = clock or SystemClock()

    @lru_cache(maxsize=1)
    def allocation_ports():
        from oms.services.dependencies import allocation_ports as build

        return build(settings, clock=clock)

    @lru_cache(maxsize=1)
    def sms_verification():
        from oms.services.risk_dependencies import verification_ports
        from oms.services.verify import SmsVerification

        return SmsVerification(verification_ports(settings, clock=clock))

    return ReviewPorts(
        items=ReviewItemsTable(settings.review_items_table),
        audit=AuditLogTable(settings.audit_log_table),
        orders=OrdersTable(settings.orders_table, settings.raw_payload_bucket),
        reservations=ReservationStore(settings.reservations_table, settings.inventory_table, settings.orders_table),
        allocation=allocation or allocation_ports,
        risk=RiskDecisionsTable(settings.orders_table),
        verification=verification or sms_verification,
        quarantine=QuarantineTable(settings.quarantine_table, settings.raw_payload_bucket),
        clock=clock,
        claim_for=timedelta(minutes=settings.review_claim_minutes),
    )
