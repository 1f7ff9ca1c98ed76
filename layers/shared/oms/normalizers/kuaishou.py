"""Kuaishou Shop (快手小店) `open.order.cursor.list` order -> canonical order.

A raw record is one element of `data.orderList` as the list call returns it (one call: the list
already carries the item, the address and the refunds). Facts: shared/channels/CHANNELS.md
sections 5 and 9; the published order fields (orderBaseInfo / orderItemInfo / orderAddress /
orderRefundList) as passed through by ISV docs.

Mapping decisions:
- ids: `orderBaseInfo.oid` (int64, 16-19 digits) as text, never through a float. Kuaishou sells
  one SKU per order (`orderItemInfo` is a single object), so there is exactly one line:
  line_id = `orderItemInfo.orderItemId` (else the oid), sku = `skuId`,
  seller_sku = `skuNick` (the merchant's SKU code), else `relSkuId` when non-zero, else `goodsCode`.
- money is in fen (integer cents): total = `totalFee` / 100, unit_price = `price` / 100; CNY.
  A fen amount that is not an integer (29.9, "29.90") is malformed, never rounded.
- times are epoch milliseconds (`createTime`, `payTime`, `updateTime`); 0 means "not yet" (no
  payment time before payment) and becomes null; paid_at is also null while the order awaits
  payment (status 10), whatever payTime says.
- status (`orderBaseInfo.status`; channel_status is its raw number as text):
    10 待付款 ......................... pending_payment
    30 已付款 (awaiting shipment) ...... paid
    40 已发货 ......................... shipped
    50 已签收 / 70 订单成功 ............ completed (the goods reached the buyer)
    80 订单失败 (closed) ............... cancelled
    0 未知 or anything else ............ malformed (quarantined with the value named)
  Refunds (`orderRefundList[].refundStatus`, one SKU so every refund concerns the only line):
    any refund 60 退款成功 ............... refunded (the whole, single line is refunded)
    else any refund 10..59 (in progress) . refunding (also for a shipped order: a return is open)
    70 退款失败/关闭 ..................... ignored (the order keeps its own status)
  A successful refund that names a `refundFee` smaller than the order's `totalFee` is a partial
  refund of the line's amount: the order keeps its own status (the goods are still sold).
- buyer: `buyerOpenId` (stable per app); the masked `buyerNick` is not an id.
- ship_to: country CN; province/city/district in plain text; receiver name, phone and address
  are Kuaishou ciphertexts (`encryptedConsignee`, `encryptedMobile`, `encryptedAddress`) kept
  exactly as received with `encrypted = true`; the plain `consignee`/`mobile`/`address` are used
  only when the platform sends them (then `encrypted = false`). address_handle = the
  `encryptedAddress` ciphertext (Kuaishou encrypts deterministically per shop, so it is the stable
  handle a risk rule can fingerprint); none when there is no ciphertext.
"""

from __future__ import annotations

from decimal import Decimal

from oms.domain.order import (
    CanonicalOrder,
    MalformedOrderError,
    OrderStatus,
    build_order,
)
from oms.normalizers._fields import (
    as_dict,
    as_list,
    dig,
    epoch_millis,
    fen,
    id_text,
    order_id_text,
    quantity,
    reading_order,
    text,
    whole_number,
)
from oms.normalizers._order_parts import (
    ResponseShapeError,
    known_value,
    protected_receiver,
    region,
    require_order_id,
)

CHANNEL = "kuaishou"
CURRENCY = "CNY"
COUNTRY = "CN"

_STATUS = {
    10: OrderStatus.PENDING_PAYMENT,
    30: OrderStatus.PAID,
    40: OrderStatus.SHIPPED,
    50: OrderStatus.COMPLETED,
    70: OrderStatus.COMPLETED,
    80: OrderStatus.CANCELLED,
}
AWAITING_PAYMENT = "10"  # status 待付款, as channel_status
REFUND_SUCCEEDED = 60
REFUND_CLOSED = 70


def split_response(document: object) -> list[dict]:
    """The orders of one saved `open.order.cursor.list` response."""
    data = document.get("data") if isinstance(document, dict) else None
    orders = data.get("orderList") if isinstance(data, dict) else None
    if orders is None and isinstance(data, dict):
        orders = []  # an empty page may leave the list out
    if not isinstance(orders, list):
        raise ResponseShapeError("a Kuaishou file is {'result': 1, 'data': {'cursor': ..., 'orderList': [...]}}")
    return orders


def order_id_of(raw: object) -> str | None:
    """`orderBaseInfo.oid` as text (a float oid has lost digits: no id to key it by), else None."""
    return order_id_text(dig(raw, "orderBaseInfo", "oid"))


def _status(base: dict, refunds: list, total: Decimal) -> tuple[OrderStatus, str]:
    raw_status = whole_number(base.get("status"), "orderBaseInfo.status")
    status = _STATUS[known_value(raw_status, _STATUS, "orderBaseInfo.status")]
    refund_states = [_refund_state(refund, index, total) for index, refund in enumerate(refunds)]
    if "refunded" in refund_states:
        status = OrderStatus.REFUNDED
    elif "refunding" in refund_states:
        status = OrderStatus.REFUNDING
    return status, str(raw_status)


def _refund_state(refund: object, index: int, total: Decimal) -> str | None:
    where = f"orderRefundList[{index}]"
    refund = as_dict(refund, where)
    refund_status = whole_number(refund.get("refundStatus"), f"{where}.refundStatus")
    if refund_status == REFUND_SUCCEEDED:
        refund_fee = refund.get("refundFee")
        if refund_fee not in (None, 0, "0") and fen(refund_fee, f"{where}.refundFee") < total:
            return None  # part of the amount given back; the goods stay sold
        return "refunded"
    if 0 < refund_status < REFUND_SUCCEEDED:
        return "refunding"
    return None  # 70: refused or withdrawn; 0: no refund


def _seller_sku(item: dict) -> str | None:
    rel_sku = item.get("relSkuId")
    merchant_id = None if rel_sku in (None, 0, "0", "") else text(rel_sku)
    return text(item.get("skuNick")) or merchant_id or text(item.get("goodsCode"))


def _line(item: dict, order_id: str) -> dict:
    count = quantity(item.get("num"), "orderItemInfo.num")
    line_id = item.get("orderItemId")
    sku = item.get("skuId")
    return {
        "line_id": order_id if line_id in (None, "", 0) else id_text(line_id, "orderItemInfo.orderItemId"),
        "sku": None if sku in (None, "", 0) else id_text(sku, "orderItemInfo.skuId"),
        "seller_sku": _seller_sku(item),
        "quantity": count,
        "unit_price": fen(item.get("price"), "orderItemInfo.price"),
    }


def _payment_time(channel_status: str, pay_time: str | None) -> str | None:
    """`payTime`, except while the order awaits payment: an unpaid order has no payment time."""
    return None if channel_status == AWAITING_PAYMENT else pay_time


def _ship_to(address: dict) -> dict:
    ciphers = tuple(text(address.get(key)) for key in ("encryptedConsignee", "encryptedMobile", "encryptedAddress"))
    (name, phone, street), encrypted = protected_receiver(
        ciphers, tuple(text(address.get(key)) for key in ("consignee", "mobile", "address")))
    return {
        "country": COUNTRY if address else None,
        **region(address, "province", "city", "district"),
        "address": street,
        "postal_code": None,
        "name": name,
        "phone": phone,
        "encrypted": encrypted,
        "address_handle": ciphers[2],
    }


def normalize(raw: dict, shop_id: str) -> CanonicalOrder:
    order_id = order_id_of(raw)
    with reading_order(order_id, raw):
        if order_id is None and not isinstance(dig(raw, "orderBaseInfo"), dict):
            raise MalformedOrderError("orderBaseInfo: missing")
        require_order_id(order_id, dig(raw, "orderBaseInfo", "oid"), "orderBaseInfo.oid",
                         "is not an exact order id (a float loses digits)")
        base = raw["orderBaseInfo"]  # a dict: order_id_of found an id in it
        item = raw.get("orderItemInfo")
        if not isinstance(item, dict):
            raise MalformedOrderError("orderItemInfo: missing (every Kuaishou order carries its one item)")
        total = fen(base.get("totalFee"), "orderBaseInfo.totalFee")
        refunds = as_list(raw.get("orderRefundList"), "orderRefundList")
        status, channel_status = _status(base, refunds, total)
        return build_order(
            channel=CHANNEL,
            shop_id=shop_id,
            channel_order_id=order_id,
            status=status,
            channel_status=channel_status,
            buyer_id=text(base.get("buyerOpenId")),
            currency=CURRENCY,
            total=total,
            lines=[_line(item, order_id)],
            ship_to=_ship_to(as_dict(raw.get("orderAddress"), "orderAddress")),
            created_at=epoch_millis(base.get("createTime"), "orderBaseInfo.createTime"),
            paid_at=_payment_time(channel_status, epoch_millis(base.get("payTime"), "orderBaseInfo.payTime")),
            updated_at=epoch_millis(base.get("updateTime"), "orderBaseInfo.updateTime"),
        )
