"""WMS simulator: the warehouses' stock, their confirmation of our reservations, our release of them
for picking, and their shipments.

API (our design; conventions in `omsdev.simulators.sources_common`: `X-Api-Key`, error envelopes,
token bucket of 50 requests/s with a burst of 50 per key, FaultPlan faults):

`GET /v1/warehouses/{warehouse_id}/inventory?page_token=&page_size=`
    page_size 1..500 (default 100). Every SKU the warehouse holds or held, zero on hand included,
    sorted by SKU, keyset-paged: `{"items": [{"sku", "on_hand", "updated_at"}], "next_page_token":
    str | null, "as_of": ISO}`. A token is opaque; a bad one is 400 `invalid_request`. An unknown
    warehouse is 404 `warehouse_not_found`.

`POST /v1/warehouses/{warehouse_id}/reservations`
    body `{"reservation_id", "order_key", "lines": [{"sku", "quantity"}]}` (1..100 lines, quantity a
    whole number >= 1) -> 202 `{"reservation_id", "status": "pending"|"confirmed"|"rejected",
    "reason"?}`. Idempotent on `reservation_id`: the same body again answers the reservation's current
    state; a different body under the same id (or a cancelled id) is 409 `conflict`.

`GET /v1/warehouses/{warehouse_id}/reservations/{reservation_id}`
    the same shape, 404 `reservation_not_found` for an unknown or cancelled one.

`POST /v1/warehouses/{warehouse_id}/reservations/{reservation_id}/release`
    (no body) the order may leave: the warehouse picks, packs and ships it. A confirmed reservation is
    only a hold; the warehouse ships nothing it was not released. -> 200 `{"reservation_id", "status":
    "confirmed", "released_at": ISO}`; idempotent: a repeat (also once shipped) answers the same
    `released_at`. 404 `reservation_not_found` for an unknown or cancelled one; 409 `conflict` for one
    that is not confirmed (pending or rejected).

`DELETE /v1/warehouses/{warehouse_id}/reservations/{reservation_id}`
    200 `{"reservation_id", "status": "cancelled"}`, again on a repeat; 404 for an id never created;
    409 `conflict` once the reservation has shipped (the parcel is gone). Released but not yet shipped
    is still cancellable (the order was cancelled before the parcel left). A shipped reservation still
    reads as `confirmed` above: shipping is reported by the shipments listing, not by the status.

`GET /v1/warehouses/{warehouse_id}/shipments?since=&page_token=&page_size=`
    page_size 1..500 (default 100). The reservations the warehouse has shipped, sorted by
    (`shipped_at`, `reservation_id`), keyset-paged: `{"items": [{"reservation_id", "order_key",
    "shipped_at", "tracking_number", "carrier", "lines": [{"sku", "quantity"}]}], "next_page_token":
    str | null, "as_of": ISO}`. `since` (ISO 8601 with a zone; absent: from the first shipment) is
    *inclusive*: a shipment at exactly `since` is listed again, so a consumer keeping the last
    `shipped_at` it saw as its cursor never loses one that shares that instant (it must be idempotent,
    and gets the repeats). `shipped_at` is given to the millisecond, truncated: a cursor taken from it
    is never after the shipment. A page token carries the position; pass the same `since` with it. A bad
    `since` or token is 400 `invalid_request`; an unknown warehouse is 404 `warehouse_not_found`.

How a warehouse confirms, per warehouse (`configure_warehouse`): a reservation is `rejected` with
`reject_reason` if one is set when it is created; otherwise `pending` until the simulator's wall clock
(injectable, `.now()`) passes its creation + `confirm_after` (default 0: confirmed at once), then
`confirmed`. An `unresponsive` warehouse keeps every reservation `pending` and, with
`unresponsive_delay_seconds`, also answers POST/GET that much later (a real wait, so a client's read
timeout fires; tests of the timeout path use the clock instead).

How a warehouse ships, per warehouse (`configure_warehouse`): with `ship_after` set (default None:
never by itself), a confirmed reservation that we released ships at max(its confirmation, its
release) + `ship_after` on the wall clock (as `confirm_after`, the value when the reservation was
created counts); an unreleased, cancelled, rejected or still pending one never ships.
`ship(warehouse_id, reservation_id, at=...)` is a test's hand: it ships one explicitly (a late or
early parcel) whether or not it was released - a warehouse that picked an order without our release
is what it stands for then - but never a cancelled or rejected one. Shipping takes the lines off the
warehouse's stock (never below zero) and gets a tracking number from the warehouse's `carrier`
(default "SF").
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count

from omsdev.simulators.base import FaultPlan, Reply, Request
from omsdev.simulators.sources_common import (
    ApiError,
    Route,
    SourceSimulator,
    WallClock,
    int_param,
    iso,
    json_body,
)

MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 500, 100
MAX_LINES = 100
_KEEP = object()  # configure_warehouse: "leave reject_reason as it is" (None clears it)


@dataclass
class WarehouseBehaviour:
    confirm_after: timedelta = timedelta(0)
    reject_reason: str | None = None
    unresponsive: bool = False
    unresponsive_delay_seconds: float = 0.0
    ship_after: timedelta | None = None  # None: ships only when a test calls `ship`
    carrier: str = "SF"


@dataclass
class _Stock:
    on_hand: int
    updated_at: datetime


@dataclass
class Reservation:
    warehouse_id: str
    reservation_id: str
    order_key: str
    lines: tuple[tuple[str, int], ...]
    created_at: datetime
    reject_reason: str | None
    confirm_after: timedelta
    cancelled: bool = False
    ship_after: timedelta | None = None
    released_at: datetime | None = None  # we told the warehouse the order may leave
    shipped_at: datetime | None = None
    tracking_number: str | None = None
    carrier: str | None = None

    @property
    def confirmed_at(self) -> datetime:
        """When the warehouse confirms it (unless it rejects it, or stops answering)."""
        return self.created_at + self.confirm_after

    @property
    def released(self) -> bool:
        return self.released_at is not None

    @property
    def shipped(self) -> bool:
        return self.shipped_at is not None


@dataclass
class _Warehouse:
    stock: dict[str, _Stock] = field(default_factory=dict)
    behaviour: WarehouseBehaviour = field(default_factory=WarehouseBehaviour)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    # Released reservations that will ship by themselves once due (their warehouse had a ship_after).
    to_ship: dict[str, Reservation] = field(default_factory=dict)
    shipped: list[Reservation] = field(default_factory=list)


def _encode_token(after_sku: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after_sku}).encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = state["after"]
        if not isinstance(after, str):
            raise ValueError(token)
        return after
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, "invalid_request", "page_token is not valid") from None


def _encode_shipment_token(shipped_at: datetime, reservation_id: str) -> str:
    # The exact time (not the millisecond shown): keyset order is on the exact value.
    state = {"after_at": shipped_at.isoformat(), "after_id": reservation_id}
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _decode_shipment_token(token: str) -> tuple[datetime, str]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after_at, after_id = datetime.fromisoformat(state["after_at"]), state["after_id"]
        if after_at.tzinfo is None or not isinstance(after_id, str):
            raise ValueError(token)
        return after_at, after_id
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise ApiError(400, "invalid_request", "page_token is not valid") from None


def _since_param(request: Request) -> datetime | None:
    text = request.param("since")
    if text in (None, ""):
        return None
    try:
        since = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise ApiError(400, "invalid_request", f"since must be an ISO 8601 time with its zone, got {text!r}")
    return since


class WmsSimulator(SourceSimulator):
    SOURCE = "wms"
    RATE, BURST = 50.0, 50

    def __init__(self, api_key: str | None = None, *, warehouses: tuple[str, ...] | list[str] = (),
                 faults: FaultPlan | None = None, rate_multiplier: float = 1.0, rate: float | None = None,
                 burst: float | None = None, clock: WallClock | None = None, **kwargs):
        super().__init__(api_key, faults=faults, rate_multiplier=rate_multiplier, rate=rate, burst=burst,
                         clock=clock, **kwargs)
        self._warehouses: dict[str, _Warehouse] = {}
        self._tracking_numbers = count(1)
        for warehouse_id in warehouses:
            self.add_warehouse(warehouse_id)

    # Test controls ------------------------------------------------------------------------------

    def add_warehouse(self, warehouse_id: str) -> None:
        with self.lock:
            self._warehouses.setdefault(warehouse_id, _Warehouse())

    def set_stock(self, warehouse_id: str, sku: str, on_hand: int, updated_at: datetime | None = None) -> None:
        if on_hand < 0:
            raise ValueError("on hand cannot be negative")
        with self.lock:
            self.add_warehouse(warehouse_id)
            self._warehouses[warehouse_id].stock[sku] = _Stock(on_hand, updated_at or self.now())

    def remove_stock(self, warehouse_id: str, sku: str) -> None:
        """The WMS forgets the SKU (no longer listed at all)."""
        with self.lock:
            self._warehouses[warehouse_id].stock.pop(sku, None)

    def stock(self, warehouse_id: str) -> dict[str, int]:
        with self.lock:
            warehouse = self._warehouses[warehouse_id]
            self._ship_due(warehouse)
            return {sku: entry.on_hand for sku, entry in warehouse.stock.items()}

    def configure_warehouse(
        self,
        warehouse_id: str,
        *,
        confirm_after: timedelta | None = None,
        reject_reason: str | None | object = _KEEP,
        unresponsive: bool | None = None,
        unresponsive_delay_seconds: float | None = None,
        ship_after: timedelta | None | object = _KEEP,
        carrier: str | None = None,
    ) -> WarehouseBehaviour:
        """Change how the warehouse confirms and ships (only the arguments given; `ship_after=None`
        stops shipping by itself for reservations created from now on); returns its behaviour."""
        with self.lock:
            self.add_warehouse(warehouse_id)
            behaviour = self._warehouses[warehouse_id].behaviour
            if confirm_after is not None:
                behaviour.confirm_after = confirm_after
            if reject_reason is not _KEEP:
                behaviour.reject_reason = reject_reason  # type: ignore[assignment]
            if unresponsive is not None:
                behaviour.unresponsive = unresponsive
            if unresponsive_delay_seconds is not None:
                behaviour.unresponsive_delay_seconds = unresponsive_delay_seconds
            if ship_after is not _KEEP:
                behaviour.ship_after = ship_after  # type: ignore[assignment]
            if carrier is not None:
                behaviour.carrier = carrier
            return behaviour

    def reservation(self, warehouse_id: str, reservation_id: str) -> Reservation | None:
        with self.lock:
            warehouse = self._warehouses.get(warehouse_id, _Warehouse())
            self._ship_due(warehouse)
            return warehouse.reservations.get(reservation_id)

    def reservations(self, warehouse_id: str) -> list[Reservation]:
        with self.lock:
            warehouse = self._warehouses.get(warehouse_id, _Warehouse())
            self._ship_due(warehouse)
            return list(warehouse.reservations.values())

    def shipments(self, warehouse_id: str) -> list[Reservation]:
        """The warehouse's shipped reservations, in the listing's order."""
        with self.lock:
            warehouse = self._warehouses.get(warehouse_id, _Warehouse())
            self._ship_due(warehouse)
            return sorted(warehouse.shipped, key=lambda r: (r.shipped_at, r.reservation_id))

    def ship(self, warehouse_id: str, reservation_id: str, at: datetime | None = None, *,
             tracking_number: str | None = None, carrier: str | None = None) -> Reservation:
        """Ship one reservation now (or `at`, which may be in the past: a parcel scanned late), released
        or not (the test stands in for the warehouse). Shipping it again changes nothing; a cancelled or
        rejected one cannot ship (ValueError)."""
        if at is not None and at.tzinfo is None:
            raise ValueError("the shipment time needs a zone")
        with self.lock:
            warehouse = self._warehouses[warehouse_id]
            self._ship_due(warehouse)
            reservation = warehouse.reservations.get(reservation_id)
            if reservation is None:
                raise KeyError(f"no reservation {reservation_id!r} in {warehouse_id!r}")
            if reservation.cancelled or reservation.reject_reason is not None:
                raise ValueError(f"reservation {reservation_id!r} was cancelled or rejected: it cannot ship")
            if not reservation.shipped:
                self._record_shipment(warehouse, reservation, at or self.now(), tracking_number, carrier)
            return reservation

    # Shipping -------------------------------------------------------------------------------------

    def _record_shipment(self, warehouse: _Warehouse, reservation: Reservation, shipped_at: datetime,
                         tracking_number: str | None = None, carrier: str | None = None) -> None:
        reservation.carrier = carrier or warehouse.behaviour.carrier
        reservation.tracking_number = tracking_number or f"{reservation.carrier}{next(self._tracking_numbers):012d}"
        reservation.shipped_at = shipped_at
        warehouse.to_ship.pop(reservation.reservation_id, None)
        warehouse.shipped.append(reservation)
        for sku, quantity in reservation.lines:  # the parcel's units leave the shelf
            entry = warehouse.stock.get(sku)
            if entry is not None:
                entry.on_hand, entry.updated_at = max(entry.on_hand - quantity, 0), max(entry.updated_at, shipped_at)

    def _ship_due(self, warehouse: _Warehouse) -> None:
        """Ship what is due by now, each at its own due time (called under the lock before any read)."""
        if warehouse.behaviour.unresponsive or not warehouse.to_ship:
            return  # an unresponsive warehouse confirms nothing, so ships nothing
        now = self.now()
        due = []
        for reservation in list(warehouse.to_ship.values()):
            if reservation.cancelled:
                del warehouse.to_ship[reservation.reservation_id]
                continue
            at = max(reservation.confirmed_at, reservation.released_at) + reservation.ship_after
            if at <= now:
                due.append((at, reservation.reservation_id, reservation))
        for at, _, reservation in sorted(due, key=lambda entry: entry[:2]):
            self._record_shipment(warehouse, reservation, at)

    # API -----------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v1/warehouses/{warehouse_id}/inventory", self._inventory),
            Route("POST", "/v1/warehouses/{warehouse_id}/reservations", self._create),
            Route("GET", "/v1/warehouses/{warehouse_id}/reservations/{reservation_id}", self._read),
            Route("POST", "/v1/warehouses/{warehouse_id}/reservations/{reservation_id}/release", self._release),
            Route("DELETE", "/v1/warehouses/{warehouse_id}/reservations/{reservation_id}", self._cancel),
            Route("GET", "/v1/warehouses/{warehouse_id}/shipments", self._shipments),
        ]

    def _warehouse(self, warehouse_id: str) -> _Warehouse:
        warehouse = self._warehouses.get(warehouse_id)
        if warehouse is None:
            raise ApiError(404, "warehouse_not_found", f"warehouse {warehouse_id!r} is not served by this WMS")
        self._ship_due(warehouse)  # every answer sees what has shipped by its as_of
        return warehouse

    def _inventory(self, request: Request, warehouse_id: str) -> Reply:
        page_size = int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        token = request.param("page_token")
        after = _decode_token(token) if token else None
        with self.lock:
            warehouse = self._warehouse(warehouse_id)
            skus = sorted(sku for sku in warehouse.stock if after is None or sku > after)
            page = skus[:page_size]
            items = [{"sku": sku, "on_hand": warehouse.stock[sku].on_hand,
                      "updated_at": iso(warehouse.stock[sku].updated_at)} for sku in page]
        next_token = _encode_token(page[-1]) if len(skus) > page_size else None
        return Reply(200, {"items": items, "next_page_token": next_token, "as_of": iso(self.now())})

    @staticmethod
    def _parse_reservation(body: dict) -> tuple[str, str, tuple[tuple[str, int], ...]]:
        reservation_id, order_key, lines = body.get("reservation_id"), body.get("order_key"), body.get("lines")
        if not isinstance(reservation_id, str) or not reservation_id.strip():
            raise ApiError(400, "invalid_request", "reservation_id must be a non-empty string")
        if not isinstance(order_key, str) or not order_key.strip():
            raise ApiError(400, "invalid_request", "order_key must be a non-empty string")
        if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_LINES:
            raise ApiError(400, "invalid_request", f"lines must be a list of 1..{MAX_LINES} lines")
        parsed = []
        for index, line in enumerate(lines):
            sku = line.get("sku") if isinstance(line, dict) else None
            quantity = line.get("quantity") if isinstance(line, dict) else None
            if not isinstance(sku, str) or not sku:
                raise ApiError(400, "invalid_request", f"lines[{index}].sku must be a non-empty string")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
                raise ApiError(400, "invalid_request", f"lines[{index}].quantity must be a whole number >= 1")
            parsed.append((sku, quantity))
        return reservation_id, order_key, tuple(parsed)

    def _status(self, reservation: Reservation, behaviour: WarehouseBehaviour) -> dict:
        answer: dict = {"reservation_id": reservation.reservation_id}
        if reservation.reject_reason is not None:
            return {**answer, "status": "rejected", "reason": reservation.reject_reason}
        if behaviour.unresponsive or self.now() < reservation.confirmed_at:
            return {**answer, "status": "pending"}
        return {**answer, "status": "confirmed"}

    def _stall_if_unresponsive(self, behaviour: WarehouseBehaviour) -> None:
        if behaviour.unresponsive and behaviour.unresponsive_delay_seconds > 0:
            self.sleep(behaviour.unresponsive_delay_seconds)

    def _create(self, request: Request, warehouse_id: str) -> Reply:
        reservation_id, order_key, lines = self._parse_reservation(json_body(request))
        with self.lock:
            warehouse = self._warehouse(warehouse_id)
            behaviour = warehouse.behaviour
            existing = warehouse.reservations.get(reservation_id)
            if existing is not None:
                if existing.cancelled:
                    raise ApiError(409, "conflict", f"reservation {reservation_id!r} was cancelled")
                if (existing.order_key, existing.lines) != (order_key, lines):
                    raise ApiError(409, "conflict", f"reservation {reservation_id!r} exists with another body")
                reservation = existing
            else:
                reservation = Reservation(warehouse_id, reservation_id, order_key, lines, self.now(),
                                          behaviour.reject_reason, behaviour.confirm_after,
                                          ship_after=behaviour.ship_after)
                warehouse.reservations[reservation_id] = reservation
            answer = self._status(reservation, behaviour)
        self._stall_if_unresponsive(behaviour)
        return Reply(202, answer)

    def _read(self, request: Request, warehouse_id: str, reservation_id: str) -> Reply:
        with self.lock:
            warehouse = self._warehouse(warehouse_id)
            reservation = warehouse.reservations.get(reservation_id)
            if reservation is None or reservation.cancelled:
                raise ApiError(404, "reservation_not_found", f"no reservation {reservation_id!r} in {warehouse_id!r}")
            behaviour = warehouse.behaviour
            answer = self._status(reservation, behaviour)
        self._stall_if_unresponsive(behaviour)
        return Reply(200, answer)

    def _release(self, request: Request, warehouse_id: str, reservation_id: str) -> Reply:
        with self.lock:
            warehouse = self._warehouse(warehouse_id)
            behaviour = warehouse.behaviour
            reservation = warehouse.reservations.get(reservation_id)
            if reservation is None or reservation.cancelled:
                raise ApiError(404, "reservation_not_found", f"no reservation {reservation_id!r} in {warehouse_id!r}")
            # A repeat answers as the first did, whatever the warehouse says of the hold since.
            status = "confirmed" if reservation.released else self._status(reservation, behaviour)["status"]
            if status == "confirmed" and not reservation.released:
                reservation.released_at = self.now()
                if reservation.ship_after is not None and not reservation.shipped:
                    warehouse.to_ship[reservation_id] = reservation
            released_at = reservation.released_at
        self._stall_if_unresponsive(behaviour)
        if status != "confirmed":
            raise ApiError(409, "conflict", f"reservation {reservation_id!r} is {status}: only a confirmed one "
                                            "can be released")
        return Reply(200, {"reservation_id": reservation_id, "status": "confirmed", "released_at": iso(released_at)})

    def _cancel(self, request: Request, warehouse_id: str, reservation_id: str) -> Reply:
        with self.lock:
            reservation = self._warehouse(warehouse_id).reservations.get(reservation_id)
            if reservation is None:
                raise ApiError(404, "reservation_not_found", f"no reservation {reservation_id!r} in {warehouse_id!r}")
            if reservation.shipped:
                raise ApiError(409, "conflict", f"reservation {reservation_id!r} has shipped; it cannot be cancelled")
            reservation.cancelled = True
        return Reply(200, {"reservation_id": reservation_id, "status": "cancelled"})

    def _shipments(self, request: Request, warehouse_id: str) -> Reply:
        page_size = int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        since = _since_param(request)
        token = request.param("page_token")
        after = _decode_shipment_token(token) if token else None
        with self.lock:
            warehouse = self._warehouse(warehouse_id)
            listed = sorted((r for r in warehouse.shipped
                             if (since is None or r.shipped_at >= since)
                             and (after is None or (r.shipped_at, r.reservation_id) > after)),
                            key=lambda r: (r.shipped_at, r.reservation_id))
            page = listed[:page_size]
            items = [{"reservation_id": r.reservation_id, "order_key": r.order_key, "shipped_at": iso(r.shipped_at),
                      "tracking_number": r.tracking_number, "carrier": r.carrier,
                      "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in r.lines]} for r in page]
            as_of = self.now()
        last = page[-1] if len(listed) > page_size else None
        next_token = None if last is None else _encode_shipment_token(last.shipped_at, last.reservation_id)
        return Reply(200, {"items": items, "next_page_token": next_token, "as_of": iso(as_of)})


def launch(warehouses: tuple[str, ...] | list[str] = (), *, faults: FaultPlan | None = None,
           rate_multiplier: float = 1.0, clock: WallClock | None = None):
    """A started WMS for these warehouses and the credentials secret (`oms/sources/wms`) our client needs."""
    simulator = WmsSimulator(warehouses=warehouses, faults=faults, rate_multiplier=rate_multiplier, clock=clock).start()
    return simulator, simulator.credentials()
