"""WMS simulator: the warehouses' stock and their confirmation of our reservations.

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

`DELETE /v1/warehouses/{warehouse_id}/reservations/{reservation_id}`
    200 `{"reservation_id", "status": "cancelled"}`, again on a repeat; 404 for an id never created.

How a warehouse confirms, per warehouse (`configure_warehouse`): a reservation is `rejected` with
`reject_reason` if one is set when it is created; otherwise `pending` until the simulator's wall clock
(injectable, `.now()`) passes its creation + `confirm_after` (default 0: confirmed at once), then
`confirmed`. An `unresponsive` warehouse keeps every reservation `pending` and, with
`unresponsive_delay_seconds`, also answers POST/GET that much later (a real wait, so a client's read
timeout fires; tests of the timeout path use the clock instead).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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


@dataclass
class _Warehouse:
    stock: dict[str, _Stock] = field(default_factory=dict)
    behaviour: WarehouseBehaviour = field(default_factory=WarehouseBehaviour)
    reservations: dict[str, Reservation] = field(default_factory=dict)


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


class WmsSimulator(SourceSimulator):
    SOURCE = "wms"
    RATE, BURST = 50.0, 50

    def __init__(self, api_key: str | None = None, *, warehouses: tuple[str, ...] | list[str] = (),
                 faults: FaultPlan | None = None, rate_multiplier: float = 1.0, rate: float | None = None,
                 burst: float | None = None, clock: WallClock | None = None, **kwargs):
        super().__init__(api_key, faults=faults, rate_multiplier=rate_multiplier, rate=rate, burst=burst,
                         clock=clock, **kwargs)
        self._warehouses: dict[str, _Warehouse] = {}
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
            return {sku: entry.on_hand for sku, entry in self._warehouses[warehouse_id].stock.items()}

    def configure_warehouse(
        self,
        warehouse_id: str,
        *,
        confirm_after: timedelta | None = None,
        reject_reason: str | None | object = _KEEP,
        unresponsive: bool | None = None,
        unresponsive_delay_seconds: float | None = None,
    ) -> WarehouseBehaviour:
        """Change how the warehouse confirms (only the arguments given); returns its behaviour."""
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
            return behaviour

    def reservation(self, warehouse_id: str, reservation_id: str) -> Reservation | None:
        with self.lock:
            return self._warehouses.get(warehouse_id, _Warehouse()).reservations.get(reservation_id)

    def reservations(self, warehouse_id: str) -> list[Reservation]:
        with self.lock:
            return list(self._warehouses.get(warehouse_id, _Warehouse()).reservations.values())

    # API -----------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v1/warehouses/{warehouse_id}/inventory", self._inventory),
            Route("POST", "/v1/warehouses/{warehouse_id}/reservations", self._create),
            Route("GET", "/v1/warehouses/{warehouse_id}/reservations/{reservation_id}", self._read),
            Route("DELETE", "/v1/warehouses/{warehouse_id}/reservations/{reservation_id}", self._cancel),
        ]

    def _warehouse(self, warehouse_id: str) -> _Warehouse:
        warehouse = self._warehouses.get(warehouse_id)
        if warehouse is None:
            raise ApiError(404, "warehouse_not_found", f"warehouse {warehouse_id!r} is not served by this WMS")
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
        if behaviour.unresponsive or self.now() < reservation.created_at + reservation.confirm_after:
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
                                          behaviour.reject_reason, behaviour.confirm_after)
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

    def _cancel(self, request: Request, warehouse_id: str, reservation_id: str) -> Reply:
        with self.lock:
            reservation = self._warehouse(warehouse_id).reservations.get(reservation_id)
            if reservation is None:
                raise ApiError(404, "reservation_not_found", f"no reservation {reservation_id!r} in {warehouse_id!r}")
            reservation.cancelled = True
        return Reply(200, {"reservation_id": reservation_id, "status": "cancelled"})


def launch(warehouses: tuple[str, ...] | list[str] = (), *, faults: FaultPlan | None = None,
           rate_multiplier: float = 1.0, clock: WallClock | None = None):
    """A started WMS for these warehouses and the credentials secret (`oms/sources/wms`) our client needs."""
    simulator = WmsSimulator(warehouses=warehouses, faults=faults, rate_multiplier=rate_multiplier, clock=clock).start()
    return simulator, simulator.credentials()
