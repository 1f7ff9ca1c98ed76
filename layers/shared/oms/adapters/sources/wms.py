"""WMS client: warehouse stock listings and shipments for the feeds, reservation confirmation and
release for picking for allocation.

The API (documented with its simulator, `omsdev.simulators.wms`): `GET /v1/warehouses/{id}/inventory`
(token paging, <= 500 per page), `GET /v1/warehouses/{id}/shipments?since=` (token paging, `since`
inclusive), `POST/GET/DELETE /v1/warehouses/{id}/reservations[/{reservation_id}]`, and
`POST /v1/warehouses/{id}/reservations/{reservation_id}/release` (the order may leave: a confirmed
reservation is only a hold until then, the warehouse ships nothing unreleased).
Reservation calls take `timeout_seconds`, the time the caller still has (allocation: what is left of
its 5 s): retries happen only inside it and running out raises `SourceTimeoutError`. Both POSTs are
safe to retry, the WMS is idempotent on `reservation_id`.

`InventoryMirror` is the feed's view of our Inventory table: set on hand, and which SKUs we still
count as on the shelf (to zero those the WMS stopped listing).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Literal
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from oms.adapters.sources import SourceError, SourceHttp, SourceNotFoundError, source_http, validation_problem
from oms.domain.order import format_utc
from oms.services.feeds import (
    ConfirmationStatus,
    InventoryPage,
    ShipmentLine,
    ShipmentPage,
    StockCount,
    WarehouseShipment,
)

__all__ = ["ConfirmationStatus", "InventoryMirror", "WmsClient", "wms_client"]

MAX_PAGE_SIZE = 500


class InventoryItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sku: str = Field(min_length=1)
    on_hand: int = Field(ge=0, strict=True)
    updated_at: AwareDatetime


class InventoryPageResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[InventoryItem]
    next_page_token: str | None = None
    as_of: AwareDatetime


class ShipmentLineItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sku: str = Field(min_length=1)
    quantity: int = Field(ge=1, strict=True)


class ShipmentItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reservation_id: str = Field(min_length=1)
    order_key: str = Field(min_length=1)
    shipped_at: AwareDatetime
    tracking_number: str | None = None
    carrier: str | None = None
    lines: list[ShipmentLineItem] = Field(min_length=1)


class ShipmentPageResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[ShipmentItem]
    next_page_token: str | None = None
    as_of: AwareDatetime


class ReservationLineItem(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(ge=1)


class ReservationRequest(BaseModel):
    reservation_id: str = Field(min_length=1)
    order_key: str = Field(min_length=1)
    lines: list[ReservationLineItem] = Field(min_length=1)


class ReservationResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reservation_id: str
    status: Literal["pending", "confirmed", "rejected"]
    reason: str | None = None


class ReleaseResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reservation_id: str
    status: Literal["confirmed"]
    released_at: AwareDatetime


def _parse(model: type[BaseModel], body: dict, what: str):
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise SourceError(f"wms {what}: unexpected answer, {validation_problem(error)}") from error


def _segment(value: str) -> str:
    return quote(value, safe="")


class WmsClient:
    def __init__(self, http: SourceHttp, *, page_size: int = MAX_PAGE_SIZE):
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.http = http
        self.page_size = page_size

    # Stock ----------------------------------------------------------------------------------------

    def inventory_page(self, warehouse_id: str, page_token: str | None = None) -> InventoryPage:
        params = {"page_size": self.page_size, **({"page_token": page_token} if page_token else {})}
        _, body = self.http.call("GET", f"/v1/warehouses/{_segment(warehouse_id)}/inventory", params=params)
        page = _parse(InventoryPageResponse, body, f"inventory of {warehouse_id}")
        return InventoryPage(tuple(StockCount(item.sku, item.on_hand) for item in page.items),
                             page.next_page_token or None, page.as_of)

    def inventory(self, warehouse_id: str) -> Iterator[InventoryPage]:
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = self.inventory_page(warehouse_id, token)
            yield page
            if page.next_page_token is None:
                return
            if page.next_page_token in seen:  # a WMS bug must not loop the feed until its timeout
                raise SourceError(f"wms inventory of {warehouse_id}: page token {page.next_page_token!r} repeated")
            seen.add(page.next_page_token)
            token = page.next_page_token

    # Shipments ------------------------------------------------------------------------------------

    def shipments_page(self, warehouse_id: str, since: datetime | None,
                       page_token: str | None = None) -> ShipmentPage:
        """One page of what the warehouse shipped at or after `since` (None: from its first shipment)."""
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        params = {"page_size": self.page_size, **({"since": format_utc(since)} if since is not None else {}),
                  **({"page_token": page_token} if page_token else {})}
        _, body = self.http.call("GET", f"/v1/warehouses/{_segment(warehouse_id)}/shipments", params=params)
        page = _parse(ShipmentPageResponse, body, f"shipments of {warehouse_id}")
        items = tuple(WarehouseShipment(warehouse_id, item.reservation_id, item.order_key, item.shipped_at,
                                        tuple(ShipmentLine(line.sku, line.quantity) for line in item.lines),
                                        item.tracking_number or None, item.carrier or None)
                      for item in page.items)
        return ShipmentPage(items, page.next_page_token or None, page.as_of)

    def shipments(self, warehouse_id: str, since: datetime | None) -> Iterator[ShipmentPage]:
        """Every page of the warehouse's shipments since `since` (inclusive), in (shipped_at, reservation_id) order."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = self.shipments_page(warehouse_id, since, token)
            yield page
            if page.next_page_token is None:
                return
            if page.next_page_token in seen:  # a WMS bug must not loop the feed until its timeout
                raise SourceError(f"wms shipments of {warehouse_id}: page token {page.next_page_token!r} repeated")
            seen.add(page.next_page_token)
            token = page.next_page_token

    # Reservation confirmation -----------------------------------------------------------------------

    def _reservation_path(self, warehouse_id: str, reservation_id: str | None = None) -> str:
        path = f"/v1/warehouses/{_segment(warehouse_id)}/reservations"
        return path if reservation_id is None else f"{path}/{_segment(reservation_id)}"

    def request_confirmation(self, warehouse_id: str, reservation_id: str, order_key: str,
                             lines: Mapping[str, int] | Iterable[tuple[str, int] | Mapping],
                             timeout_seconds: float | None = None) -> ConfirmationStatus:
        """Ask the warehouse to confirm our reservation (idempotent): its status right now.

        `lines`: {sku: quantity}, (sku, quantity) pairs or {"sku", "quantity"} dicts.
        """
        pairs = lines.items() if isinstance(lines, Mapping) else [
            (line["sku"], line["quantity"]) if isinstance(line, Mapping) else line for line in lines]
        request = ReservationRequest(reservation_id=reservation_id, order_key=order_key,
                                     lines=[ReservationLineItem(sku=sku, quantity=quantity) for sku, quantity in pairs])
        _, body = self.http.call("POST", self._reservation_path(warehouse_id), json=request.model_dump(),
                                 budget_seconds=timeout_seconds)
        return self._status(body, reservation_id)

    def confirmation_status(self, warehouse_id: str, reservation_id: str,
                            timeout_seconds: float | None = None) -> ConfirmationStatus:
        """The warehouse's answer so far; SourceNotFoundError if it never received the reservation."""
        _, body = self.http.call("GET", self._reservation_path(warehouse_id, reservation_id),
                                 budget_seconds=timeout_seconds)
        return self._status(body, reservation_id)

    def cancel(self, warehouse_id: str, reservation_id: str, timeout_seconds: float | None = None) -> None:
        """Withdraw the reservation; one the WMS never received is already as good as cancelled."""
        try:
            self.http.call("DELETE", self._reservation_path(warehouse_id, reservation_id),
                           budget_seconds=timeout_seconds)
        except SourceNotFoundError:
            return

    def release(self, warehouse_id: str, reservation_id: str, timeout_seconds: float | None = None) -> datetime:
        """Let the warehouse pick and ship the reservation (idempotent): when the WMS first took the release.

        Unlike `cancel`, a reservation the WMS does not know (or has cancelled) is an error
        (`SourceNotFoundError`): nothing would ship. One it has not confirmed is a `SourceRequestError` (409).
        """
        _, body = self.http.call("POST", self._reservation_path(warehouse_id, reservation_id) + "/release",
                                 budget_seconds=timeout_seconds)
        answer = _parse(ReleaseResponse, body, f"release of reservation {reservation_id}")
        if answer.reservation_id != reservation_id:
            raise SourceError(f"wms answered for reservation {answer.reservation_id!r}, asked about {reservation_id!r}")
        return answer.released_at

    @staticmethod
    def _status(body: dict, reservation_id: str) -> ConfirmationStatus:
        answer = _parse(ReservationResponse, body, f"reservation {reservation_id}")
        if answer.reservation_id != reservation_id:
            raise SourceError(f"wms answered for reservation {answer.reservation_id!r}, asked about {reservation_id!r}")
        return ConfirmationStatus(answer.status, answer.reason)


class InventoryMirror:
    """Our Inventory table as the WMS feed writes it (`oms.adapters.inventory_table.InventoryTable`)."""

    def __init__(self, inventory_table):
        self._table = inventory_table

    def set_on_hand(self, warehouse_id: str, sku: str, on_hand: int, counted_at: datetime | None = None) -> bool:
        return self._table.set_on_hand(warehouse_id, sku, on_hand, counted_at)

    def skus_in_stock(self, warehouse_id: str) -> set[str]:
        prefix = f"{warehouse_id}#"
        skus = [stock_id[len(prefix):] for stock_id in self._table.stock_ids_of(warehouse_id)
                if stock_id.startswith(prefix)]
        levels = self._table.levels((warehouse_id, sku) for sku in skus)
        return {sku for (_, sku), level in levels.items() if level.on_hand > 0}


def wms_client(settings, *, deadline: float | None = None) -> WmsClient | None:
    """This deployment's wms client (secret `<prefix>/sources/wms`, settings URL); None if not configured."""
    http = source_http(settings, "wms", deadline=deadline)
    return None if http is None else WmsClient(http)
