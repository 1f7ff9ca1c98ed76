"""Allocation use-cases: choose the warehouse(s) for a paid order and hold its units; let the
warehouses ship it once it may leave; give the units back when the order is cancelled, take them off
the shelf when it ships.

- `allocate_order`: channel SKUs -> warehouse SKUs (unmapped -> review); the pure decision
  (`oms.domain.allocation.decide_allocation`) over fresh stock and the feeds' snapshots; all units
  held in one transaction - confirmed at once where no WMS confirms holds, else pending while the
  warehouse's WMS is asked to confirm within its timeout (5 s by
  default) - if it does not, or rejects, the units move to the next-best plan without that warehouse
  (one transaction again); confirmed -> the order is `allocated` with every candidate's scores.
  Anything undecidable -> `in_review` and a ReviewQueue message with a machine-readable reason.
- Idempotent: the order's reservation item is created once (conditional put). A redelivered record
  finds it and only finishes what a crash left undone (a pending confirmation).
- `release_to_warehouse`: a WMS-confirmed reservation is only a hold; the warehouses pick and ship
  the order once we release it to them, which happens when the order becomes `ready_to_ship`
  (allocated AND risk-cleared, SPEC C6: a held order never reaches fulfilment). Idempotent (the WMS
  answers a repeated release as the first); a WMS error raises, so the stream retries the record.
- `release_order` / `deduct_order`: cancellation or refund / shipment of an order's held units.
  `deduct_order` takes what is known of the shipment: from the warehouse (`record_shipment`, the WMS
  shipments feed) its time, tracking number and carrier, stored on the order (`shipped_at`, ISO UTC,
  and `shipment`) in the transaction that deducts the units; the channel's report (the Orders
  stream) may give only a time, or nothing (the order then has no `shipped_at`; the KPIs fall back
  to its `updated_at`). Whichever comes first deducts; the other finds the reservation deducted and
  changes nothing. A split order is deducted whole at its first warehouse's shipment (a reservation
  closes as one), which is also the shipment the first-shipment KPI counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from oms.domain.allocation import AllocationRules, Destination, decide_allocation
from oms.domain.inventory import UnmappedSkus, demand_for
from oms.domain.order import OrderLine
from oms.domain.reservation import (
    CONFIRMED,
    DEDUCTED,
    PENDING,
    REFUSED,
    RELEASED,
    InsufficientStockError,
    Reservation,
    ReservationChangedError,
)
from oms.observability import logger
from oms.ports import Clock, ReviewQueue, SkuCatalog, WaitingClock, WmsConfirmations
from oms.services.allocation_facts import AllocationFacts
from oms.services.feeds import ShipmentRecorded, WarehouseShipment
from oms.services.messages import ReviewMessage

# Another order taking the same units between our read and our reservation sends us round again; so
# does a warehouse that does not confirm. Past this many rounds the record is retried later.
MAX_ROUNDS = 8
CONFIRMATION_POLL_SECONDS = 0.2
RELEASE_TIMEOUT_SECONDS = 5.0  # per warehouse; a WMS slower than that is retried with the record


class AllocationContentionError(RuntimeError):
    """Stock kept changing under this order: the stream retries the record."""


@dataclass(frozen=True)
class OrderToAllocate:
    """What allocation needs of a stored order (from the stream's NewImage)."""

    order_key: str
    channel: str
    lines: tuple[OrderLine, ...]
    country: str | None
    province: str | None


@dataclass
class AllocationPorts:
    reservations: object  # oms.adapters.reservation_store.ReservationStore
    catalog: SkuCatalog
    facts: AllocationFacts
    review: ReviewQueue
    clock: WaitingClock
    rules: callable  # () -> AllocationRules (a bad configuration falls back to the defaults, reported)
    wms: WmsConfirmations | None = None  # None: this deployment has no WMS confirmation step
    confirm_timeout: timedelta = timedelta(seconds=5)


@dataclass
class ShippingPorts:
    """What closing an order's reservation needs: the shipments feed has no catalogue, rules or review queue."""

    reservations: object  # oms.adapters.reservation_store.ReservationStore
    clock: Clock
    wms: WmsConfirmations | None = None


@dataclass(frozen=True)
class ShipmentDetails:
    """What is known of an order's shipment. From the warehouse's WMS: all of it (`reservation_id` set);
    from the channel: at most its time."""

    shipped_at: datetime
    warehouse_id: str | None = None
    reservation_id: str | None = None  # the WMS's name of our hold (`Reservation.wms_reservation_id`)
    tracking_number: str | None = None
    carrier: str | None = None

    @property
    def from_warehouse(self) -> bool:
        return self.reservation_id is not None

    def order_fields(self) -> dict:
        """What the order keeps of it besides `shipped_at` (absent values left out)."""
        fields = {"warehouse_id": self.warehouse_id, "reservation_id": self.reservation_id,
                  "tracking_number": self.tracking_number, "carrier": self.carrier}
        return {name: value for name, value in fields.items() if value is not None}


@dataclass
class AllocationOutcome:
    order_key: str
    # allocated | review | already_decided | released | deducted | nothing_held | unmatched (a warehouse's
    # shipment of an order that holds nothing, or holds it under another reservation) | released_to_warehouse
    # | nothing_to_release (no WMS to tell, or the hold is not (any more) a confirmed one)
    state: str
    warehouses: list[str] = field(default_factory=list)
    reason: str | None = None

    def as_dict(self) -> dict:
        return {"order_key": self.order_key, "state": self.state, "warehouses": self.warehouses, "reason": self.reason}


def allocate_order(order: OrderToAllocate, ports: AllocationPorts) -> AllocationOutcome:
    # No look for an earlier reservation first: the reservation's (or refusal's) conditional put finds
    # one, and then `_finish` takes over. A first delivery, the common case, saves the read.
    demand = _demand_of(order, ports)
    if isinstance(demand, UnmappedSkus):
        detail = "no warehouse SKU is mapped for: " + ", ".join(demand.skus)
        return _refuse(order.order_key, "unmapped_sku", detail, {"unmapped_skus": list(demand.skus)}, ports)
    return _decide_and_hold(order, demand, None, (), ports)


def _demand_of(order: OrderToAllocate, ports: AllocationPorts):
    """Warehouse SKUs and units for the order's lines (one catalogue lookup for all of them), or UnmappedSkus."""
    ports.catalog.prefetch(order.channel, [code for line in order.lines for code in (line.seller_sku, line.sku) if code])
    return demand_for(order.channel, order.lines, ports.catalog.mapping_of)


def _decide_and_hold(order: OrderToAllocate, demand, held: Reservation | None, excluded: tuple[str, ...],
                     ports: AllocationPorts, *, reviewing: bool = False, only: str | None = None) -> AllocationOutcome:
    """Decide and hold (or move what `held` holds). `reviewing`: a reviewer's decision - a refusal goes
    back to the reviewer (state `refused`) instead of to the review queue, and a refused reservation
    `held` is replaced; `only` is the warehouse the reviewer chose, if any."""
    destination = Destination(order.country, order.province)
    rules: AllocationRules = ports.rules()
    refusal = held if held is not None and held.state == REFUSED else None
    if refusal is not None:
        held = None
    for _ in range(MAX_ROUNDS):
        facts = ports.facts.for_order(demand, destination)
        if only is not None:
            excluded = tuple(sorted({f.warehouse.warehouse_id for f in facts} - {only}))
        decision = decide_allocation(demand, destination, facts, rules, ports.clock.now(), exclude=frozenset(excluded))
        if decision.refusal is not None:
            if reviewing:
                return AllocationOutcome(order.order_key, "refused", reason=decision.refusal)
            return _refuse(order.order_key, decision.refusal, decision.detail, decision.as_dict(), ports, held=held)
        try:
            if held is None:
                # Without a WMS step there is nothing to wait for: held and confirmed in one write.
                version = 1 if refusal is None else refusal.version + 1
                confirmed = None if ports.wms is not None else _allocation_record(decision.shipments, excluded, version)
                held = ports.reservations.reserve(order.order_key, decision.shipments, decision.as_dict(),
                                                  ports.clock.now(), confirmed_allocation=confirmed, excluded=excluded,
                                                  replacing=refusal)
                if held is None:  # another delivery of this order (or another reviewer) got there first
                    if refusal is not None:
                        raise ReservationChangedError(order.order_key)
                    return _finish(order, ports.reservations.get(order.order_key), ports)
                if held.state == CONFIRMED:
                    return _allocated(held, ports)
            else:
                moved = ports.reservations.move(held, decision.shipments, excluded, decision.as_dict(), ports.clock.now())
                _withdraw_from_wms(held, ports)
                held = moved
        except InsufficientStockError:
            continue  # someone else took those units since we read the stock: decide again
        unconfirmed = _unconfirmed_warehouses(held, ports)
        if not unconfirmed:
            return _confirm(held, ports)
        excluded = tuple(sorted(set(excluded) | set(unconfirmed)))
    raise AllocationContentionError(f"{order.order_key}: no stable allocation after {MAX_ROUNDS} rounds")


def _confirm(held: Reservation, ports: AllocationPorts) -> AllocationOutcome:
    # The decision behind it (every candidate's scores) is on the order since the units were held.
    allocation = _allocation_record(held.shipments, held.excluded, held.version)
    if not ports.reservations.confirm(held, allocation, ports.clock.now()):
        return _finish(None, ports.reservations.get(held.order_key), ports)
    return _allocated(held, ports)


def _allocation_record(shipments, excluded: tuple[str, ...], version: int) -> dict:
    """What the order keeps of its confirmed allocation: what is held where."""
    return {"shipments": [{"warehouse_id": s.warehouse_id, "lines": [{"sku": sku, "units": units}
                                                                     for sku, units in s.lines]}
                          for s in shipments],
            "excluded": list(excluded), "reservation_version": version}


def _allocated(held: Reservation, ports: AllocationPorts) -> AllocationOutcome:
    warehouses = [shipment.warehouse_id for shipment in held.shipments]
    ports.facts.count_allocated(warehouses)
    return AllocationOutcome(held.order_key, "allocated", warehouses)


def _unconfirmed_warehouses(held: Reservation, ports: AllocationPorts) -> list[str]:
    """Ask each chosen warehouse's WMS to confirm; the ones that reject or stay silent past the timeout."""
    if ports.wms is None:
        return []
    reservation_id = held.wms_reservation_id
    deadline = ports.clock.now() + ports.confirm_timeout
    waiting, failed = {}, []
    for shipment in held.shipments:
        lines = [{"sku": sku, "quantity": quantity} for sku, quantity in shipment.lines]
        try:
            status = ports.wms.request_confirmation(shipment.warehouse_id, reservation_id, held.order_key, lines,
                                                    timeout_seconds=_left(deadline, ports))
        except Exception:  # noqa: BLE001 - an unreachable WMS is a warehouse that did not confirm
            failed.append(shipment.warehouse_id)
            continue
        if status.status == "rejected":
            failed.append(shipment.warehouse_id)
        elif status.status == "pending":
            waiting[shipment.warehouse_id] = status
    while waiting and ports.clock.now() < deadline:
        ports.clock.sleep(min(CONFIRMATION_POLL_SECONDS, _left(deadline, ports)))
        for warehouse_id in list(waiting):
            try:
                status = ports.wms.confirmation_status(warehouse_id, reservation_id, timeout_seconds=_left(deadline, ports))
            except Exception:  # noqa: BLE001 - keep waiting until the deadline
                continue
            if status.status != "pending":
                del waiting[warehouse_id]
                if status.status == "rejected":
                    failed.append(warehouse_id)
    _withdraw([*waiting, *failed], reservation_id, ports, timeout_seconds=1.0)  # tell them we went elsewhere
    return sorted(set(waiting) | set(failed))


def _withdraw_from_wms(held: Reservation, ports: AllocationPorts) -> None:
    """Our hold is gone (released, or moved to a new hold with a new WMS reservation id): tell its
    warehouses to drop it, or one that had confirmed it would keep the stock set aside for nobody."""
    if ports.wms is not None:
        _withdraw([s.warehouse_id for s in held.shipments], held.wms_reservation_id, ports, timeout_seconds=2.0)


def _withdraw(warehouse_ids: list[str], reservation_id: str, ports: AllocationPorts, *, timeout_seconds: float) -> None:
    """Cancel a reservation at these warehouses' WMS. Best effort: our own stock is already right, and a WMS
    that did not hear drops the hold when it expires."""
    for warehouse_id in warehouse_ids:
        try:
            ports.wms.cancel(warehouse_id, reservation_id, timeout_seconds=timeout_seconds)
        except Exception as error:  # noqa: BLE001 - best effort (see above)
            logger.warning("could not withdraw a WMS reservation", extra={
                "warehouse_id": warehouse_id, "reservation_id": reservation_id, "error": str(error)})


def _left(deadline: datetime, ports: AllocationPorts) -> float:
    return max((deadline - ports.clock.now()).total_seconds(), 0.05)


def _refuse(order_key: str, reason: str, detail: str, facts: dict, ports: AllocationPorts, *,
            held: Reservation | None = None) -> AllocationOutcome:
    """To review. The message goes first: a refusal is recorded only once its message is out, so a
    crash in between is redelivered and decided again (SQS is at-least-once anyway: review items are
    keyed by order)."""
    now = ports.clock.now()
    if held is None and (earlier := ports.reservations.get(order_key)) is not None:
        return _finish(None, earlier, ports)  # decided before: a redelivery sends nothing again
    ports.review.send(ReviewMessage(order_key=order_key, source="allocation", reason=reason, detail=detail,
                                    at=now, facts=facts))
    if held is not None and held.holding:  # give back what an earlier round held
        if not ports.reservations.close(held, REFUSED, reason, now, fulfillment_status="in_review", decision=facts):
            raise ReservationChangedError(order_key)
    elif not ports.reservations.refuse(order_key, reason, facts, now):
        return _finish(None, ports.reservations.get(order_key), ports)
    return AllocationOutcome(order_key, "review", reason=reason)


def _finish(order: OrderToAllocate | None, held: Reservation, ports: AllocationPorts) -> AllocationOutcome:
    """A redelivery (or a concurrent delivery) found the order's reservation: complete what is left."""
    if held.state == PENDING and order is not None:  # a crash between holding and confirming
        unconfirmed = _unconfirmed_warehouses(held, ports)
        if not unconfirmed:
            return _confirm(held, ports)
        demand = _demand_of(order, ports)
        excluded = tuple(sorted(set(held.excluded) | set(unconfirmed)))
        return _decide_and_hold(order, demand, held, excluded, ports)
    warehouses = [shipment.warehouse_id for shipment in held.shipments]
    return AllocationOutcome(held.order_key, "already_decided", warehouses, reason=held.state)


def reassign_order(order: OrderToAllocate, warehouse_id: str | None, ports: AllocationPorts) -> AllocationOutcome:
    """A reviewer's decision: hold the order's units at `warehouse_id` - or, None, wherever the engine
    now finds best - moving what the order holds, or replacing its refusal, in one transaction.
    `refused` (with the engine's reason) when that warehouse cannot take it: nothing changed."""
    held = ports.reservations.get(order.order_key)
    if held is not None and held.state in (RELEASED, DEDUCTED):
        return AllocationOutcome(order.order_key, "closed", reason=held.state)
    demand = _demand_of(order, ports)
    if isinstance(demand, UnmappedSkus):
        return AllocationOutcome(order.order_key, "refused", reason="unmapped_sku")
    if held is not None and held.holding and warehouse_id is None:
        return AllocationOutcome(order.order_key, "already_decided", [s.warehouse_id for s in held.shipments])
    return _decide_and_hold(order, demand, held, held.excluded if held is not None else (), ports,
                            reviewing=True, only=warehouse_id)


def release_to_warehouse(order_key: str, ports: AllocationPorts) -> AllocationOutcome:
    """The order may leave (it became `ready_to_ship`): tell each warehouse that confirmed its hold to
    pick and ship it (`released_to_warehouse`). Where nothing is to be told - no WMS in this
    deployment, no reservation, one still pending (a reassignment under way: its confirmation makes
    the order ready again), or one closed (released, refused, deducted) - `nothing_to_release` with
    the reason, and nothing changes. A redelivered record releases again, which the WMS answers as
    before; a WMS error raises (the stream retries the record)."""
    if ports.wms is None:
        return AllocationOutcome(order_key, "nothing_to_release", reason="no_wms")
    held = ports.reservations.get(order_key)
    if held is None:
        return AllocationOutcome(order_key, "nothing_to_release", reason="no_reservation")
    warehouses = [shipment.warehouse_id for shipment in held.shipments]
    if held.state != CONFIRMED:
        return AllocationOutcome(order_key, "nothing_to_release", warehouses, reason=held.state)
    for warehouse_id in warehouses:
        ports.wms.release(warehouse_id, held.wms_reservation_id, timeout_seconds=RELEASE_TIMEOUT_SECONDS)
    return AllocationOutcome(order_key, "released_to_warehouse", warehouses)


def release_order(order_key: str, reason: str, ports: AllocationPorts) -> AllocationOutcome:
    """Cancellation, refund or a reviewer's rejection: every held unit goes back to available."""
    return _close(order_key, RELEASED, reason, "released", ports)


def deduct_order(order_key: str, ports: AllocationPorts | ShippingPorts,
                 shipment: ShipmentDetails | None = None) -> AllocationOutcome:
    """Shipped: the held units leave the shelf (on hand and reserved both go down) and the order is
    `shipped`, at `shipment.shipped_at` when known. Idempotent: an order deducted before is
    `nothing_held` (reason `deducted`) and nothing changes. A warehouse's shipment (`reservation_id`
    set) of an order we hold nothing for, or hold under another reservation or at other warehouses, is
    `unmatched` (reason: `no_reservation`, the reservation's state, or `other_reservation`) and changes
    nothing - not even a tombstone, since we never held it."""
    return _close(order_key, DEDUCTED, "shipped", "shipped", ports, shipment=shipment)


def record_shipment(shipment: WarehouseShipment, ports: AllocationPorts | ShippingPorts) -> ShipmentRecorded:
    """The WMS shipments feed's step for one shipment: `deduct_order` with the warehouse's details."""
    outcome = deduct_order(shipment.order_key, ports, ShipmentDetails(
        shipped_at=shipment.shipped_at, warehouse_id=shipment.warehouse_id, reservation_id=shipment.reservation_id,
        tracking_number=shipment.tracking_number, carrier=shipment.carrier))
    if outcome.state == "deducted":
        return ShipmentRecorded("recorded")
    if outcome.state == "nothing_held" and outcome.reason == DEDUCTED:
        return ShipmentRecorded("already_recorded")
    return ShipmentRecorded("unmatched", outcome.reason)


def _matches(held: Reservation, shipment: ShipmentDetails) -> bool:
    """The warehouse shipped this very hold (a hold moved elsewhere, or an older version, is not ours to deduct)."""
    return (shipment.reservation_id == held.wms_reservation_id
            and shipment.warehouse_id in {s.warehouse_id for s in held.shipments})


def _close(order_key: str, state: str, reason: str, fulfillment_status: str, ports: AllocationPorts | ShippingPorts,
           *, shipment: ShipmentDetails | None = None) -> AllocationOutcome:
    from_warehouse = shipment is not None and shipment.from_warehouse
    for _ in range(MAX_ROUNDS):
        held = ports.reservations.get(order_key)
        if held is None:
            if from_warehouse:
                return AllocationOutcome(order_key, "unmatched", reason="no_reservation")
            # Closed before anything was held: remember it, so a stray later delivery holds nothing.
            if ports.reservations.tombstone(order_key, state, reason, ports.clock.now()):
                return AllocationOutcome(order_key, "nothing_held", reason=reason)
            continue
        if not held.holding:
            if from_warehouse and held.state != DEDUCTED:
                return AllocationOutcome(order_key, "unmatched", reason=held.state)
            return AllocationOutcome(order_key, "nothing_held", reason=held.state)
        if from_warehouse and not _matches(held, shipment):
            return AllocationOutcome(order_key, "unmatched", [s.warehouse_id for s in held.shipments],
                                     reason="other_reservation")
        shipped = {} if shipment is None else {"shipped_at": shipment.shipped_at,
                                               "shipment": shipment.order_fields() or None}
        if ports.reservations.close(held, state, reason, ports.clock.now(), fulfillment_status=fulfillment_status,
                                    **shipped):
            if state == RELEASED and held.state == CONFIRMED:
                _withdraw_from_wms(held, ports)
            return AllocationOutcome(order_key, "released" if state == RELEASED else "deducted",
                                     [s.warehouse_id for s in held.shipments], reason=reason)
    raise ReservationChangedError(order_key)


_CLOSED = ("cancelled", "refunded")
_SHIPPED = ("shipped", "completed")
_READY = "ready_to_ship"  # allocated and risk-cleared (`oms.adapters.risk_decisions.promote_ready`)


def stream_action(event_name: str, old_status: str | None, new_status: str | None, *,
                  old_fulfillment: str | None = None, new_fulfillment: str | None = None) -> str | None:
    """What an Orders stream change asks of allocation (statuses and `fulfillment_status` of the old
    and new images):

    | change                                                  | action                 |
    |---------------------------------------------------------|------------------------|
    | INSERT paid, or pending_payment (or none) -> paid       | `allocate`             |
    | -> cancelled / refunded, from anything else             | `release`              |
    | -> shipped / completed, from neither those nor closed   | `deduct`               |
    | fulfillment -> ready_to_ship, from anything else        | `release_to_warehouse` |
    | anything else                                           | None                   |

    The function's FilterCriteria pass only these changes; this repeats the rule so that a record
    that slips through (a wider filter, a replayed event) still does the right thing.
    """
    if new_status == "paid" and (event_name == "INSERT" or old_status in (None, "pending_payment")):
        return "allocate"
    if new_status in _CLOSED and old_status not in _CLOSED:
        return "release"
    if new_status in _SHIPPED and old_status not in _SHIPPED + _CLOSED:
        return "deduct"
    if event_name == "MODIFY" and new_fulfillment == _READY and old_fulfillment != _READY:
        return "release_to_warehouse"
    return None
