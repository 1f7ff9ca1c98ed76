"""Amazon SP-API Orders v0 (getOrders order + its getOrderItems) -> canonical order.

A raw record is `{"order": <Order>, "items": [<OrderItem>, ...]}`: the poller joins the two calls.
Mapping decisions (facts: shared/channels/CHANNELS.md sections 6 and 9):
- id: `AmazonOrderId`; line id `OrderItemId`; sku = `ASIN`, seller_sku = `SellerSKU`.
- status: Pending/PendingAvailability -> pending_payment; Unshipped/PartiallyShipped -> paid;
  Shipped/InvoiceUnconfirmed -> shipped; Canceled/Unfulfillable -> cancelled. Refunds are not in
  the Orders API (Finances API), so they never appear here.
- money: `ItemPrice` is the price of the whole quantity, so unit_price = ItemPrice / QuantityOrdered,
  exact when it divides, else rounded half-even to 4 places. Pending and cancelled orders carry no
  prices: unit_price 0. total = OrderTotal, else the sum of ItemPrice, else 0; currency from
  OrderTotal, else the items, else the marketplace's currency.
- buyer: `BuyerInfo.BuyerEmail`, Amazon's stable anonymised relay address (no buyer id exists).
- times: PurchaseDate -> created_at, LastUpdateDate -> updated_at. Amazon gives no payment time;
  paid_at = PurchaseDate once the order is paid or shipped.
- ship_to: `ShippingAddress` (absent for pending and cancelled orders): AddressLine1-3 joined.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from oms.domain.order import CanonicalOrder, MalformedOrderError, build_order
from oms.normalizers._fields import as_dict, as_list, iso_time, joined, money, required_text, text, whole_number

CHANNEL = "amazon"

_STATUS = {
    "Pending": "pending_payment",
    "PendingAvailability": "pending_payment",
    "Unshipped": "paid",
    "PartiallyShipped": "paid",
    "Shipped": "shipped",
    "InvoiceUnconfirmed": "shipped",
    "Canceled": "cancelled",
    "Unfulfillable": "cancelled",
}

# Marketplace id -> currency (SP-API "Marketplace IDs" reference).
MARKETPLACE_CURRENCY = {
    "ATVPDKIKX0DER": "USD", "A2EUQ1WTGCTBG2": "CAD", "A1AM78C64UM0Y8": "MXN", "A2Q3Y263D00KWC": "BRL",
    "A1PA6795UKMFR9": "EUR", "A1RKKUPIHCS9HS": "EUR", "A13V1IB3VIYZZH": "EUR", "APJ6JRA9NG5V4": "EUR",
    "A1805IZSGTT6HS": "EUR", "AMEN7PMS3EDWL": "EUR", "A1F83G8C2ARO7P": "GBP", "A2NODRKZP88ZB9": "SEK",
    "A1C3SOZRARQ6R3": "PLN", "A33AVAJ2PDY3EV": "TRY", "A21TJRUUN4KGV": "INR", "A1VC38T7YXB528": "JPY",
    "A39IBJ37TRP1C6": "AUD", "A19VAU5U5O7RUS": "SGD", "A2VIGQ35RCS4UG": "AED", "A17E79C6D8DWNP": "SAR",
    "ARBP9OOSHTCHU": "EGP",
}
_PRICE_PLACES = Decimal("0.0001")


def split_response(document: dict) -> list[dict]:
    """Join a saved getOrders response with its getOrderItems responses (keyed by order id)."""
    if not isinstance(document, dict) or "getOrders" not in document:
        raise ValueError("an Amazon file holds {'getOrders': ..., 'getOrderItems': {orderId: ...}}")
    orders = document["getOrders"].get("payload", {}).get("Orders", [])
    items_by_order = document.get("getOrderItems") or {}
    records = []
    for order in orders:
        order_id = order.get("AmazonOrderId") if isinstance(order, dict) else None
        items = (items_by_order.get(order_id) or {}).get("payload", {}).get("OrderItems", [])
        records.append({"order": order, "items": items})
    return records


def order_id_of(raw: object) -> str | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("order"), dict):
        return None
    return text(raw["order"].get("AmazonOrderId"))


def _unit_price(item: dict, quantity: int, where: str) -> Decimal:
    price = item.get("ItemPrice")
    if price is None:
        return Decimal("0")
    amount = money(as_dict(price, f"{where}ItemPrice").get("Amount"), f"{where}ItemPrice.Amount")
    if quantity == 0:
        return amount
    unit = amount / quantity
    return unit if unit * quantity == amount and unit == unit.quantize(_PRICE_PLACES) else unit.quantize(
        _PRICE_PLACES, rounding=ROUND_HALF_EVEN
    )


def _lines(items: list) -> list[dict]:
    lines = []
    for index, item in enumerate(items):
        where = f"items[{index}]."
        item = as_dict(item, f"items[{index}]")
        quantity = whole_number(item.get("QuantityOrdered"), f"{where}QuantityOrdered")
        lines.append(
            {
                "line_id": required_text(item, "OrderItemId", where),
                "sku": text(item.get("ASIN")),
                "seller_sku": text(item.get("SellerSKU")),
                "quantity": quantity,
                "unit_price": _unit_price(item, quantity, where),
            }
        )
    return lines


def _total_and_currency(order: dict, items: list[dict]) -> tuple[Decimal, str]:
    total = order.get("OrderTotal")
    if total is not None:
        total = as_dict(total, "OrderTotal")
        amount = money(total.get("Amount"), "OrderTotal.Amount")
        currency = text(total.get("CurrencyCode"))
    else:
        prices = [as_dict(item.get("ItemPrice"), "ItemPrice") for item in items if item.get("ItemPrice")]
        amount = sum((money(p.get("Amount"), "ItemPrice.Amount") for p in prices), Decimal("0"))
        currency = next((text(p.get("CurrencyCode")) for p in prices if p.get("CurrencyCode")), None)
    currency = currency or MARKETPLACE_CURRENCY.get(text(order.get("MarketplaceId")) or "")
    if currency is None:
        raise MalformedOrderError("currency: no OrderTotal, item price or known MarketplaceId to read it from")
    return amount, currency


def _ship_to(order: dict) -> dict:
    address = as_dict(order.get("ShippingAddress"), "ShippingAddress")
    return {
        "country": text(address.get("CountryCode")),
        "province": text(address.get("StateOrRegion")),
        "city": text(address.get("City")),
        "district": text(address.get("District")) or text(address.get("County")) or text(address.get("Municipality")),
        "address": joined(address.get("AddressLine1"), address.get("AddressLine2"), address.get("AddressLine3")),
        "postal_code": text(address.get("PostalCode")),
        "name": text(address.get("Name")),
        "phone": text(address.get("Phone")),
        "encrypted": False,
    }


def normalize(raw: dict, shop_id: str) -> CanonicalOrder:
    order_id = order_id_of(raw)
    try:
        if order_id is None:
            raise MalformedOrderError("order.AmazonOrderId: missing")
        order = raw["order"]
        items = as_list(raw.get("items"), "items")
        channel_status = required_text(order, "OrderStatus", "order.")
        if channel_status not in _STATUS:
            raise MalformedOrderError(f"order.OrderStatus: unknown value {channel_status!r}")
        status = _STATUS[channel_status]
        total, currency = _total_and_currency(order, items)
        purchased = iso_time(order.get("PurchaseDate"), "order.PurchaseDate")
        return build_order(
            channel=CHANNEL,
            shop_id=shop_id,
            channel_order_id=order_id,
            status=status,
            channel_status=channel_status,
            buyer_id=text(as_dict(order.get("BuyerInfo"), "order.BuyerInfo").get("BuyerEmail")),
            currency=currency,
            total=total,
            lines=_lines(items),
            ship_to=_ship_to(order),
            created_at=purchased,
            paid_at=purchased if status in ("paid", "shipped") else None,
            updated_at=iso_time(order.get("LastUpdateDate"), "order.LastUpdateDate"),
        )
    except MalformedOrderError as error:
        raise MalformedOrderError(error.reason, order_id) from error
    except (AttributeError, TypeError, ValueError, KeyError) as error:
        raise MalformedOrderError(f"unreadable order: {error}", order_id) from error
