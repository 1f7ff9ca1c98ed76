"""A reservation: the units one order holds, where, and in which state (pure; stored by
`oms.adapters.reservation_store`).

States: pending (held, the warehouse's WMS has not confirmed yet) -> confirmed; pending/confirmed ->
released (cancelled, refunded, rejected) or deducted (shipped); refused: nothing held, the order
went to review.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from oms.domain.allocation import Shipment

PENDING, CONFIRMED, RELEASED, DEDUCTED, REFUSED = "pending", "confirmed", "released", "deducted", "refused"
HOLDING = (PENDING, CONFIRMED)


class InsufficientStockError(RuntimeError):
    """Another order took the units between the stock read and the reservation: decide again."""

    def __init__(self, short: list[tuple[str, str]]):
        super().__init__("not enough available: " + ", ".join(f"{w}/{s}" for w, s in short))
        self.short = short


class ReservationChangedError(RuntimeError):
    """The reservation changed under us (another delivery of the same order): read it again."""


@dataclass(frozen=True)
class Reservation:
    order_key: str
    state: str
    version: int
    shipments: tuple[Shipment, ...]
    reason: str | None = None
    excluded: tuple[str, ...] = ()

    @property
    def holding(self) -> bool:
        return self.state in HOLDING

    def units(self) -> dict[tuple[str, str], int]:
        return units_of(self.shipments)

    @property
    def wms_reservation_id(self) -> str:
        """How the warehouses' WMS knows this hold: a move to other warehouses is a new one."""
        return f"{self.order_key}#v{self.version}"


def units_of(shipments: tuple[Shipment, ...]) -> dict[tuple[str, str], int]:
    """Units per (warehouse, SKU) over the shipments."""
    units: dict[tuple[str, str], int] = defaultdict(int)
    for shipment in shipments:
        for sku, quantity in shipment.lines:
            units[(shipment.warehouse_id, sku)] += quantity
    return dict(units)
