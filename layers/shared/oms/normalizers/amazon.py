"""Amazon SP-API Orders v0 (a getOrders Order + its getOrderItems) -> canonical order.

A raw record is `{"order": <Order>, "items": [<OrderItem>, ...]}`: `split_response` joins a saved
getOrders response with the getOrderItems responses keyed by order id (the poller does the same).
Mapping decisions (facts: shared/channels/CHANNELS.md sections 6 and 9):
- ids: `AmazonOrderId`; line id `OrderItemId`; sku = `ASIN`, seller_sku = `SellerSKU`.
- status (any other OrderStatus is malformed):
    Pending, PendingAvailability ...... pending_payment
    Unshipped, PartiallyShipped ....... paid
    Shipped, InvoiceUnconfirmed ....... shipped
    Canceled, Unfulfillable ........... cancelled
  Refunds live in the Finances API, so refunding/refunded never come from here.
  channel_status is the raw OrderStatus.
- money, Decimal from the platform's strings: `ItemPrice` prices the whole quantity, so
  unit_price = ItemPrice.Amount / QuantityOrdered, kept exact when the division is exact, else
  rounded half-even to 4 places (10.00 / 3 -> 3.3333); QuantityOrdered 0 -> the ItemPrice amount.
  No ItemPrice (pending and cancelled orders carry no prices) -> unit_price 0.
  total = OrderTotal.Amount, else the sum of the ItemPrice amounts, else 0.
  currency = OrderTotal.CurrencyCode, else the first item price's, else the marketplace's
  (MARKETPLACE_CURRENCY); none of these -> malformed.
- buyer: `BuyerInfo.BuyerEmail`, Amazon's anonymised relay address (there is no buyer id).
- times: created_at = PurchaseDate, updated_at = LastUpdateDate. Amazon gives no payment time, so
  paid_at = PurchaseDate once the order is paid or shipped (Amazon charges at purchase), else None.
- ship_to: `ShippingAddress` (absent before payment and for cancelled orders -> all nulls):
  province = StateOrRegion, district = District or County or Municipality, AddressLine1-3 joined.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, Inexact, localcontext

from oms.domain.order import (
    CanonicalOrder,
    MalformedOrderError,
    OrderStatus,
    build_order,
)
from oms.normalizers._fields import (
    MAX_DIGITS,
    as_dict,
    dig,
    iso_time,
    joined,
    money,
    order_id_text,
    quantity,
    reading_order,
    required_text,
    shown,
    text,
)
from oms.normalizers._order_parts import (
    ResponseShapeError,
    each_object,
    known_value,
    require_order_id,
)

CHANNEL = "amazon"

_STATUS = {
    "Pending": OrderStatus.PENDING_PAYMENT,
    "PendingAvailability": OrderStatus.PENDING_PAYMENT,
    "Unshipped": OrderStatus.PAID,
    "PartiallyShipped": OrderStatus.PAID,
    "Shipped": OrderStatus.SHIPPED,
    "InvoiceUnconfirmed": OrderStatus.SHIPPED,
    "Canceled": OrderStatus.CANCELLED,
    "Unfulfillable": OrderStatus.CANCELLED,
}
_PAID = {OrderStatus.PAID, OrderStatus.SHIPPED}

# Marketplace id -> currency (SP-API "Marketplace IDs" reference), for orders with no price at all.
MARKETPLACE_CURRENCY = {
    "ATVPDKIKX0DER": "USD",  # US
    "A2EUQ1WTGCTBG2": "CAD",  # CA
    "A1AM78C64UM0Y8": "MXN",  # MX
    "A2Q3Y263D00KWC": "BRL",  # BR
    "A1PA6795UKMFR9": "EUR",  # DE
    "A1RKKUPIHCS9HS": "EUR",  # ES
    "A13V1IB3VIYZZH": "EUR",  # FR
    "APJ6JRA9NG5V4": "EUR",  # IT
    "A1805IZSGTT6HS": "EUR",  # NL
    "AMEN7PMS3EDWL": "EUR",  # BE
    "A1F83G8C2ARO7P": "GBP",  # UK
    "A2NODRKZP88ZB9": "SEK",  # SE
    "A1C3SOZRARQ6R3": "PLN",  # PL
    "A33AVAJ2PDY3EV": "TRY",  # TR
    "A21TJRUUN4KGV": "INR",  # IN
    "A1VC38T7YXB528": "JPY",  # JP
    "A39IBJ37TRP1C6": "AUD",  # AU
    "A19VAU5U5O7RUS": "SGD",  # SG
    "A2VIGQ35RCS4UG": "AED",  # AE
    "A17E79C6D8DWNP": "SAR",  # SA
    "ARBP9OOSHTCHU": "EGP",  # EG
}
_PRICE_PLACES = Decimal("0.0001")


def split_response(document: object) -> list[dict]:
    """Join a saved getOrders response with its getOrderItems responses (keyed by order id)."""
    orders = dig(document, "getOrders", "payload", "Orders")
    items_by_order = dig(document, "getOrderItems")
    items_by_order = {} if items_by_order is None else items_by_order
    if not isinstance(orders, list) or not isinstance(items_by_order, dict):
        raise ResponseShapeError(
            "an Amazon file is {'getOrders': {'payload': {'Orders': [...]}}, "
            "'getOrderItems': {orderId: {'payload': {'OrderItems': [...]}}}}"
        )
    records = []
    for order in orders:
        order_id = order_id_of({"order": order})
        items = dig(items_by_order.get(order_id), "payload", "OrderItems") if order_id else None
        records.append({"order": order, "items": [] if items is None else items})
    return records


def order_id_of(raw: object) -> str | None:
    """`order.AmazonOrderId` (always a string: "028-4417392-5539521"), else None; also None when
    longer than any order id (MAX_ORDER_ID_CHARS: it could key neither an order nor a quarantine)."""
    order_id = dig(raw, "order", "AmazonOrderId")
    return order_id_text(order_id) if isinstance(order_id, str) else None


def _unit_price(amount: Decimal, quantity: int) -> Decimal:
    if quantity == 0:
        return amount
    with localcontext() as context:
        # Room for the largest amount (MAX_DIGITS) divided down to 4 places: at the default 28 digits
        # the rounding of a large amount raised InvalidOperation (an "unreadable order").
        context.prec = 2 * MAX_DIGITS
        context.traps[Inexact] = True
        try:
            return amount / quantity
        except Inexact:
            context.traps[Inexact] = False
            return (amount / quantity).quantize(_PRICE_PLACES, rounding=ROUND_HALF_EVEN)


def _item(where: str, item: dict) -> tuple[dict, Decimal | None, str | None]:
    """One OrderItem -> (line, ItemPrice amount or None, ItemPrice currency or None)."""
    line_id = required_text(item, "OrderItemId", f"{where}.")
    count = quantity(item.get("QuantityOrdered"), f"{where}.QuantityOrdered")
    price = item.get("ItemPrice")
    if price is not None:
        price = as_dict(price, f"{where}.ItemPrice")
    amount = None if price is None else money(price.get("Amount"), f"{where}.ItemPrice.Amount")
    line = {
        "line_id": line_id,
        "sku": text(item.get("ASIN")),
        "seller_sku": text(item.get("SellerSKU")),
        "quantity": count,
        "unit_price": Decimal(0) if amount is None else _unit_price(amount, count),
    }
    return line, amount, text(dig(price, "CurrencyCode"))


def _total_and_currency(order: dict, prices: list[Decimal], currencies: list[str]) -> tuple[Decimal, str]:
    order_total = order.get("OrderTotal")
    if order_total is None:
        total = sum(prices, Decimal(0))
    else:
        total = money(as_dict(order_total, "order.OrderTotal").get("Amount"), "order.OrderTotal.Amount")
    currency = (
        text(dig(order_total, "CurrencyCode"))
        or next(iter(currencies), None)
        or MARKETPLACE_CURRENCY.get(text(order.get("MarketplaceId")) or "")
    )
    if currency is None:
        raise MalformedOrderError(
            "currency: no OrderTotal.CurrencyCode, no ItemPrice.CurrencyCode and "
            f"MarketplaceId {shown(order.get('MarketplaceId'))} is not a known marketplace"
        )
    return total, currency


def _ship_to(order: dict) -> dict:
    address = as_dict(order.get("ShippingAddress"), "order.ShippingAddress")
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
    with reading_order(order_id, raw):
        require_order_id(order_id, dig(raw, "order", "AmazonOrderId"), "order.AmazonOrderId")
        order = raw["order"]  # a dict: order_id_of found an id in it
        channel_status = known_value(required_text(order, "OrderStatus", "order."), _STATUS, "order.OrderStatus")
        status = _STATUS[channel_status]
        items = [_item(where, item) for where, item in each_object(raw.get("items"), "items")]
        total, currency = _total_and_currency(
            order,
            prices=[amount for _, amount, _ in items if amount is not None],
            currencies=[code for _, _, code in items if code],
        )
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
            lines=[line for line, _, _ in items],
            ship_to=_ship_to(order),
            created_at=purchased,
            paid_at=purchased if status in _PAID else None,
            updated_at=iso_time(order.get("LastUpdateDate"), "order.LastUpdateDate"),
        )
