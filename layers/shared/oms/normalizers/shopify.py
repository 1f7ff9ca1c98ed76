"""Shopify Admin REST order -> canonical order.

Mapping decisions (facts: shared/channels/CHANNELS.md sections 8 and 9):
- id: `id` (int64) as text; line id `line_items[].id`; sku = `variant_id`, seller_sku = `sku`.
- buyer: `customer.id` (None for guest checkouts).
- money: the shop currency (`currency`, `total_price`, `line_items[].price`), decimal strings as given.
- status, first match wins: `cancelled_at` set or financial `voided` -> cancelled; financial
  `refunded` -> refunded; `partially_refunded` -> refunding; `pending` -> pending_payment;
  fulfillment `fulfilled` -> completed when the order is closed, else shipped; `partial` -> shipped;
  otherwise (paid, authorized, partially_paid) -> paid.
- channel_status: "financial/fulfillment" plus "/cancelled" when cancelled, e.g. "paid/unfulfilled".
- times: created_at, updated_at; paid_at = processed_at once money is paid or authorized. All
  converted from their offsets to UTC.
- ship_to: shipping_address, plain text (Shopify does not encrypt); address1 and address2 joined.
"""

from __future__ import annotations

from oms.domain.order import CanonicalOrder, MalformedOrderError, build_order
from oms.normalizers._fields import (
    as_dict,
    as_list,
    iso_time,
    joined,
    money,
    required_text,
    text,
    whole_number,
)

CHANNEL = "shopify"
_PAID_FINANCIAL = {"paid", "partially_paid", "partially_refunded", "refunded", "authorized"}
_KNOWN_FINANCIAL = _PAID_FINANCIAL | {"pending", "voided", "expired"}


def split_response(document: dict) -> list[dict]:
    orders = document.get("orders") if isinstance(document, dict) else None
    if not isinstance(orders, list):
        raise ValueError("a Shopify orders.json response has an `orders` list")
    return orders


def order_id_of(raw: object) -> str | None:
    return text(raw.get("id")) if isinstance(raw, dict) else None


def _status(raw: dict) -> tuple[str, str]:
    financial = text(raw.get("financial_status")) or "pending"
    fulfillment = text(raw.get("fulfillment_status")) or "unfulfilled"
    if financial not in _KNOWN_FINANCIAL:
        raise MalformedOrderError(f"financial_status: unknown value {financial!r}")
    cancelled = raw.get("cancelled_at") is not None
    channel_status = f"{financial}/{fulfillment}" + ("/cancelled" if cancelled else "")
    if cancelled or financial in ("voided", "expired"):
        return "cancelled", channel_status
    if financial == "refunded":
        return "refunded", channel_status
    if financial == "partially_refunded":
        return "refunding", channel_status
    if financial == "pending":
        return "pending_payment", channel_status
    if fulfillment == "fulfilled":
        return ("completed" if raw.get("closed_at") else "shipped"), channel_status
    if fulfillment == "partial":
        return "shipped", channel_status
    return "paid", channel_status


def _lines(raw: dict) -> list[dict]:
    lines = []
    for index, line in enumerate(as_list(raw.get("line_items"), "line_items")):
        where = f"line_items[{index}]."
        line = as_dict(line, f"line_items[{index}]")
        lines.append(
            {
                "line_id": required_text(line, "id", where),
                "sku": text(line.get("variant_id")),
                "seller_sku": text(line.get("sku")),
                "quantity": whole_number(line.get("quantity"), f"{where}quantity"),
                "unit_price": money(line.get("price"), f"{where}price"),
            }
        )
    return lines


def _ship_to(raw: dict) -> dict:
    address = as_dict(raw.get("shipping_address"), "shipping_address")
    return {
        "country": text(address.get("country_code")),
        "province": text(address.get("province")),
        "city": text(address.get("city")),
        "district": None,
        "address": joined(address.get("address1"), address.get("address2")),
        "postal_code": text(address.get("zip")),
        "name": text(address.get("name")) or joined(address.get("first_name"), address.get("last_name")),
        "phone": text(address.get("phone")),
        "encrypted": False,
    }


def normalize(raw: dict, shop_id: str) -> CanonicalOrder:
    order_id = order_id_of(raw)
    try:
        if order_id is None:
            raise MalformedOrderError("id: missing")
        status, channel_status = _status(raw)
        financial = text(raw.get("financial_status")) or "pending"
        return build_order(
            channel=CHANNEL,
            shop_id=shop_id,
            channel_order_id=order_id,
            status=status,
            channel_status=channel_status,
            buyer_id=text(as_dict(raw.get("customer"), "customer").get("id")),
            currency=required_text(raw, "currency", ""),
            total=money(raw.get("total_price"), "total_price"),
            lines=_lines(raw),
            ship_to=_ship_to(raw),
            created_at=iso_time(raw.get("created_at"), "created_at"),
            paid_at=iso_time(raw.get("processed_at"), "processed_at") if financial in _PAID_FINANCIAL else None,
            updated_at=iso_time(raw.get("updated_at"), "updated_at"),
        )
    except MalformedOrderError as error:
        raise MalformedOrderError(error.reason, order_id) from error
    except (AttributeError, TypeError, ValueError) as error:
        raise MalformedOrderError(f"unreadable order: {error}", order_id) from error
