"""Pinduoduo POP order (one element of `order_sn_list` in pdd.order.number.list.increment.get) -> canonical order.

The increment call returns the full order, so a raw record is that element as served; there is
no detail call to join. Mapping decisions (facts: shared/channels/CHANNELS.md sections 3 and 9; field
meanings from the official Java SDK `PddOrderNumberListIncrementGetResponse` and the open-pdd
`OrderSn` model):
- ids: `order_sn` (text such as "260314-517384962018445"); PDD has no line id, so line_id =
  `sku_id` as text (a second line with the same sku gets "#<index>" appended); sku = `sku_id`,
  seller_sku = the merchant's `outer_id` (sku code), else `outer_goods_id` (goods code).
- buyer: PDD exposes no buyer id -> None. The stable handle it does give, `open_address_id`
  (the merge-shipment key of one receiver address), goes to `ship_to.address_handle`.
- status, first match wins (unknown values of order_status, refund_status or confirm_status are
  malformed; they are the platform's closed enums):
    confirm_status 2 (cancelled before the sale was made) ............ cancelled
    refund_status 4 (refund succeeded) ................................ refunded
    refund_status 2 or 3 (after-sales open / refunding), unless the
      after-sales case is an exchange or repair (after_sales_status
      14-18, 21-27, 32), which refunds nothing ........................ refunding
    confirm_status 0 (group not formed yet: not a sale yet) ........... pending_payment
    order_status 1 awaiting shipment .................................. paid
    order_status 2 shipped, awaiting receipt .......................... shipped
    order_status 3 received ........................................... completed
  Refunds per line: PDD reports refunds per order (`refund_status` / `after_sales_status`), and an
  order's lines share them; refund_status 4 means every line is refunded (-> refunded), 2/3 means
  an open refund on the order (-> refunding).
  channel_status: "order_status=<n>,refund_status=<n>,confirm_status=<n>".
- money: yuan, sent as JSON numbers (the SDKs model them as Double/f64; some older TypeScript
  types say string, so decimal strings are read too), kept exact through their shortest
  round-trip text; currency CNY. total = `pay_amount` (goods - discounts + postage: what the
  buyer paid); unit_price = `goods_price`.
- times: `yyyy-MM-dd HH:mm:ss` in GMT+8 -> UTC. created_at = created_time, paid_at = pay_time
  (else confirm_time) while the order is no longer pending payment, updated_at = updated_at
  (required: it is the version every dedup compare uses). Blank strings are absent.
- ship_to: country from the Chinese name (中国 -> CN; an unknown name -> None), province, city,
  district = town, no postal code. Receiver name/phone/address are ciphertext only while the
  order awaits shipment (and is not risk-flagged), else "": the ciphertext is kept as received;
  without it the platform's masked values (`*_mask`) are kept. Either way the data is not plain,
  so encrypted = true. address = receiver_address (no province/city/district), else address.
"""

from __future__ import annotations

from oms.domain.order import (
    CanonicalOrder,
    MalformedOrderError,
    OrderStatus,
    build_order,
)
from oms.normalizers._fields import (
    china_time,
    id_text,
    money,
    order_id_text,
    quantity,
    reading_order,
    text,
    whole_number,
)
from oms.normalizers._order_parts import (
    ResponseShapeError,
    each_object,
    region,
    require_object,
    require_order_id,
)

CHANNEL = "pdd"
CURRENCY = "CNY"
RESPONSE_KEY = "order_sn_increment_get_response"

ORDER_STATUSES = {1: "awaiting shipment", 2: "shipped", 3: "received"}
REFUND_STATUSES = {1: "no after-sales or closed", 2: "after-sales open", 3: "refunding", 4: "refunded"}
CONFIRM_STATUSES = {0: "not yet a sale", 1: "sale made", 2: "cancelled"}
# after_sales_status values of exchanges, re-sends and repairs: nothing is refunded.
NON_REFUND_AFTER_SALES = frozenset({14, 15, 16, 17, 18, 21, 22, 24, 25, 27, 32})
_BY_ORDER_STATUS = {1: OrderStatus.PAID, 2: OrderStatus.SHIPPED, 3: OrderStatus.COMPLETED}
_COUNTRIES = {"中国": "CN", "中国大陆": "CN", "中国香港": "HK", "中国澳门": "MO", "中国台湾": "TW"}


def split_response(document: object) -> list[dict]:
    """The orders of one saved increment response."""
    body = document.get(RESPONSE_KEY) if isinstance(document, dict) else None
    orders = body.get("order_sn_list") if isinstance(body, dict) else None
    if orders is None and isinstance(body, dict):
        return []  # PDD may leave the list out when the window is empty
    if not isinstance(orders, list):
        raise ResponseShapeError(f"a PDD increment response is {{'{RESPONSE_KEY}': {{'order_sn_list': [...]}}}}")
    return orders


def order_id_of(raw: object) -> str | None:
    """`order_sn` as text, or None when absent or not an id (a float or a bool is not one)."""
    return order_id_text(raw.get("order_sn")) if isinstance(raw, dict) else None


def _enum(raw: dict, key: str, allowed: dict[int, str]) -> int:
    value = whole_number(raw.get(key), key)
    if value not in allowed:
        known = ", ".join(f"{code} {meaning}" for code, meaning in allowed.items())
        raise MalformedOrderError(f"{key}: unknown value {value!r} (known: {known})")
    return value


def _status(raw: dict) -> tuple[OrderStatus, str]:
    order_status = _enum(raw, "order_status", ORDER_STATUSES)
    refund_status = _enum(raw, "refund_status", REFUND_STATUSES)
    confirm_status = _enum(raw, "confirm_status", CONFIRM_STATUSES)
    after_sales = raw.get("after_sales_status")
    after_sales = 0 if after_sales in (None, "") else whole_number(after_sales, "after_sales_status")
    channel_status = f"order_status={order_status},refund_status={refund_status},confirm_status={confirm_status}"
    if confirm_status == 2:
        return OrderStatus.CANCELLED, channel_status
    if refund_status == 4:
        return OrderStatus.REFUNDED, channel_status
    if refund_status in (2, 3) and after_sales not in NON_REFUND_AFTER_SALES:
        return OrderStatus.REFUNDING, channel_status
    if confirm_status == 0:
        return OrderStatus.PENDING_PAYMENT, channel_status
    return _BY_ORDER_STATUS[order_status], channel_status


def _line(index: int, where: str, item: dict, seen: set[str]) -> dict:
    sku_id = id_text(item.get("sku_id"), f"{where}.sku_id")
    line_id = sku_id if sku_id not in seen else f"{sku_id}#{index}"
    seen.add(line_id)
    count = quantity(item.get("goods_count"), f"{where}.goods_count")
    return {
        "line_id": line_id,
        "sku": sku_id,
        "seller_sku": text(item.get("outer_id")) or text(item.get("outer_goods_id")),
        "quantity": count,
        "unit_price": money(item.get("goods_price"), f"{where}.goods_price", json_number=True),
    }


def _ship_to(raw: dict) -> dict:
    cipher = {key: text(raw.get(key)) for key in ("receiver_name", "receiver_phone", "receiver_address", "address")}
    if any(cipher.values()):  # awaiting shipment: ciphertext, kept exactly as received
        name, phone = cipher["receiver_name"], cipher["receiver_phone"]
        address = cipher["receiver_address"] or cipher["address"]
    else:  # shipped, refunded or risk-flagged: only the platform's masked values remain
        name, phone = text(raw.get("receiver_name_mask")), text(raw.get("receiver_phone_mask"))
        address = text(raw.get("receiver_address_mask")) or text(raw.get("address_mask"))
    return {
        "country": _COUNTRIES.get(text(raw.get("country")) or ""),
        **region(raw, "province", "city", "town"),
        "address": address,
        "postal_code": None,
        "name": name,
        "phone": phone,
        "encrypted": True,
        "address_handle": text(raw.get("open_address_id")),
    }


def _time(raw: dict, key: str) -> str | None:
    return china_time(raw.get(key), key)


def normalize(raw: dict, shop_id: str) -> CanonicalOrder:
    order_id = order_id_of(raw)
    with reading_order(order_id, raw):
        require_order_id(order_id, require_object(raw, "order").get("order_sn"), "order_sn")
        status, channel_status = _status(raw)
        updated_at = _time(raw, "updated_at")
        if updated_at is None:
            raise MalformedOrderError("updated_at: missing (the version of a PDD order)")
        seen: set[str] = set()
        lines = [_line(index, where, item, seen)
                 for index, (where, item) in enumerate(each_object(raw.get("item_list"), "item_list"))]
        paid_at = _time(raw, "pay_time") or _time(raw, "confirm_time")
        return build_order(
            channel=CHANNEL,
            shop_id=shop_id,
            channel_order_id=order_id,
            status=status,
            channel_status=channel_status,
            buyer_id=None,
            currency=CURRENCY,
            total=money(raw.get("pay_amount"), "pay_amount", json_number=True),
            lines=lines,
            ship_to=_ship_to(raw),
            created_at=_time(raw, "created_time"),
            paid_at=None if status is OrderStatus.PENDING_PAYMENT else paid_at,
            updated_at=updated_at,
        )
