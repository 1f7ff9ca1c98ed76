"""Shopify Admin REST order (one element of `orders` in orders.json) -> canonical order.

Mapping decisions (facts: shared/channels/CHANNELS.md sections 8 and 9):
- ids: `id` (int64) as text; line id `line_items[].id`; sku = `variant_id` (the stock-keeping
  unit Shopify identifies), seller_sku = the merchant's `sku` (blank -> None).
- buyer: `customer.id` as text; None for guest checkouts.
- money: shop money only (`currency`, `total_price`, `line_items[].price`), Decimal from the
  platform's string with its precision kept; presentment money is ignored.
- status, first match wins:
    cancelled_at set ................................ cancelled
    financial refunded .............................. refunded
    financial partially_refunded .................... refunding
    financial voided or expired ..................... cancelled
    financial pending ............................... pending_payment
    fulfillment fulfilled ........................... completed if closed_at is set, else shipped
    fulfillment partial ............................. shipped
    paid / authorized / partially_paid, otherwise ... paid  (unfulfilled or restocked)
  An unknown or missing financial_status, or an unknown fulfillment_status, is malformed.
- channel_status: "<financial>/<fulfillment>" with a null fulfillment shown as "unfulfilled",
  plus "/cancelled" when cancelled_at is set or else "/closed" when closed_at is set,
  e.g. "paid/unfulfilled", "paid/fulfilled/closed", "refunded/unfulfilled/cancelled".
- times: created_at, updated_at; paid_at = processed_at when money was taken or authorized
  (paid, partially_paid, authorized, partially_refunded, refunded), else None. Offsets -> UTC `Z`.
- ship_to: `shipping_address` in plain text (Shopify does not encrypt): country = country_code,
  address = address1 and address2 joined with ", ", postal_code = zip; none -> all nulls.
"""

from __future__ import annotations

from oms.domain.order import (
    CanonicalOrder,
    OrderStatus,
    build_order,
)
from oms.normalizers._fields import (
    as_dict,
    iso_time,
    joined,
    money,
    order_id_text,
    quantity,
    reading_order,
    required_text,
    text,
)
from oms.normalizers._order_parts import (
    ResponseShapeError,
    each_object,
    known_value,
    region,
    require_object,
    require_order_id,
)

CHANNEL = "shopify"

_PAID_FINANCIAL = {"paid", "partially_paid", "authorized", "partially_refunded", "refunded"}
_FINANCIAL_STATUS = {
    "refunded": OrderStatus.REFUNDED,
    "partially_refunded": OrderStatus.REFUNDING,
    "voided": OrderStatus.CANCELLED,
    "expired": OrderStatus.CANCELLED,
    "pending": OrderStatus.PENDING_PAYMENT,
}
_FULFILLMENT_STATUSES = {"unfulfilled", "partial", "fulfilled", "restocked"}


def split_response(document: object) -> list[dict]:
    """The orders of one orders.json response."""
    orders = document.get("orders") if isinstance(document, dict) else None
    if not isinstance(orders, list):
        raise ResponseShapeError("a Shopify orders.json response is an object with an `orders` list")
    return orders


def order_id_of(raw: object) -> str | None:
    """`id` as text, or None when absent or not an id (an int or a non-blank string)."""
    return order_id_text(raw.get("id")) if isinstance(raw, dict) else None


def _status(raw: dict) -> tuple[OrderStatus, str]:
    financial = required_text(raw, "financial_status", "")
    fulfillment = text(raw.get("fulfillment_status")) or "unfulfilled"
    known_value(financial, _PAID_FINANCIAL | _FINANCIAL_STATUS.keys(), "financial_status")
    known_value(fulfillment, _FULFILLMENT_STATUSES, "fulfillment_status")
    cancelled, closed = raw.get("cancelled_at") is not None, raw.get("closed_at") is not None
    channel_status = f"{financial}/{fulfillment}" + ("/cancelled" if cancelled else "/closed" if closed else "")
    if cancelled:
        return OrderStatus.CANCELLED, channel_status
    if financial in _FINANCIAL_STATUS:
        return _FINANCIAL_STATUS[financial], channel_status
    if fulfillment == "fulfilled":
        return (OrderStatus.COMPLETED if closed else OrderStatus.SHIPPED), channel_status
    if fulfillment == "partial":
        return OrderStatus.SHIPPED, channel_status
    return OrderStatus.PAID, channel_status


def _line(where: str, line: dict) -> dict:
    line_id = required_text(line, "id", f"{where}.")
    count = quantity(line.get("quantity"), f"{where}.quantity")
    return {
        "line_id": line_id,
        "sku": text(line.get("variant_id")),
        "seller_sku": text(line.get("sku")),
        "quantity": count,
        "unit_price": money(line.get("price"), f"{where}.price"),
    }


def _ship_to(raw: dict) -> dict:
    address = as_dict(raw.get("shipping_address"), "shipping_address")
    return {
        "country": text(address.get("country_code")),
        **region(address, "province", "city", district=None),
        "address": joined(address.get("address1"), address.get("address2")),
        "postal_code": text(address.get("zip")),
        "name": text(address.get("name")),
        "phone": text(address.get("phone")),
        "encrypted": False,
    }


def normalize(raw: dict, shop_id: str) -> CanonicalOrder:
    order_id = order_id_of(raw)
    with reading_order(order_id, raw):
        require_order_id(order_id, require_object(raw, "order").get("id"), "id")
        status, channel_status = _status(raw)
        financial = text(raw.get("financial_status"))
        return build_order(
            channel=CHANNEL,
            shop_id=shop_id,
            channel_order_id=order_id,
            status=status,
            channel_status=channel_status,
            buyer_id=text(as_dict(raw.get("customer"), "customer").get("id")),
            currency=required_text(raw, "currency", ""),
            total=money(raw.get("total_price"), "total_price"),
            lines=[_line(where, line) for where, line in each_object(raw.get("line_items"), "line_items")],
            ship_to=_ship_to(raw),
            created_at=iso_time(raw.get("created_at"), "created_at"),
            paid_at=iso_time(raw.get("processed_at"), "processed_at") if financial in _PAID_FINANCIAL else None,
            updated_at=iso_time(raw.get("updated_at"), "updated_at"),
        )
