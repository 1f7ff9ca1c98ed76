"""JD POP (JOS) order (one `orderInfo` of jingdong.pop.order.search) -> canonical order.

A raw record is one element of `searchorderinfo_result.orderInfoList`: the search answer carries
the whole order (lines and consignee), so there is no detail call to join.
Mapping decisions (facts: shared/channels/CHANNELS.md sections 2 and 9; field types as in a real
captured orderInfo, CHANNELS.md "code index id 39117091780"):
- ids: `orderId` (a string on the wire; a JSON integer is accepted, a float is malformed because it
  has lost digits). JD has no line id: line_id = `skuId`, and a SKU listed twice in one order gets
  "-2", "-3", ... on its later lines. sku = `skuId`, seller_sku = `outerSkuId`.
- status, from `orderState` (any other value is malformed; channel_status is the raw orderState):
    WAIT_SELLER_STOCK_OUT, WAIT_SELLER_DELIVERY, PAUSE, POP_ORDER_PAUSE, WAIT_SEND_CODE ... paid
    SEND_TO_DISTRIBUTION_CENER, DISTRIBUTION_CENTER_RECEIVED,
    WAIT_GOODS_RECEIVE_CONFIRM, RECEIPTS_CONFIRM ................................ shipped
    FINISHED_L .................................................................. completed
    TRADE_CANCELED .............................................................. cancelled
    LOCKED (locked while the buyer's cancellation / refund request is handled) .. refunding
  Refunds per line: the search answer has no per-line after-sales state (JD keeps it in the
  jingdong.pop.afs.* after-sales APIs), so `refunded` never comes from here and every line of a
  LOCKED order is taken as in refund (the whole order is locked, not one line).
- money, Decimal from the platform's yuan strings (CNY): total = `orderPayment` (what the buyer
  pays: goods - seller discount + freight, e.g. 59.00 + 6.00 = 65.00); unit_price = `jdPrice`;
  quantity = `itemTotal` (an integer string).
- buyer: `open_id_buyer`, else `xid_buyer` (the privacy handles; which one JD returns depends on the
  app), else the legacy `pin`.
- times: `orderStartTime` -> created_at, `paymentConfirmTime` -> paid_at, `modified` -> updated_at,
  all `yyyy-MM-dd HH:mm:ss` in GMT+8 converted to UTC. JD writes "0001-01-01 00:00:00" for a time
  that has not happened yet (seen in `outBoundDate`): read as absent.
- ship_to (`consigneeInfo`): country CN; province / city / district = province / city / county in
  plain text; address = `fullAddress`, name = `fullname` (TDE ciphertext, kept exactly as
  received); phone = `mobile`, else `telephone` (masked "136*******5"); no postal code.
  encrypted = true when the name or address is ciphertext (base64 text, no spaces or CJK), and the
  address handle (what risk rules fingerprint) is the `fullAddress` ciphertext as received: JD gives
  no OAID-style handle in this answer.
"""

from __future__ import annotations

import re
from collections import Counter

from oms.domain.order import (
    CanonicalOrder,
    OrderStatus,
    build_order,
)
from oms.normalizers._fields import (
    as_dict,
    china_time,
    id_text,
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
    region,
    require_object,
    require_order_id,
)

CHANNEL = "jd"
CURRENCY = "CNY"
RESPONSE_ROOT = "jingdong_pop_order_search_responce"  # JD's own spelling

_STATUS = {
    "WAIT_SELLER_STOCK_OUT": OrderStatus.PAID,
    "WAIT_SELLER_DELIVERY": OrderStatus.PAID,
    "PAUSE": OrderStatus.PAID,
    "POP_ORDER_PAUSE": OrderStatus.PAID,
    "WAIT_SEND_CODE": OrderStatus.PAID,
    "SEND_TO_DISTRIBUTION_CENER": OrderStatus.SHIPPED,  # sic: JD's spelling
    "DISTRIBUTION_CENTER_RECEIVED": OrderStatus.SHIPPED,
    "WAIT_GOODS_RECEIVE_CONFIRM": OrderStatus.SHIPPED,
    "RECEIPTS_CONFIRM": OrderStatus.SHIPPED,
    "FINISHED_L": OrderStatus.COMPLETED,
    "TRADE_CANCELED": OrderStatus.CANCELLED,
    "LOCKED": OrderStatus.REFUNDING,
}
ORDER_STATES = tuple(_STATUS)
_NOT_YET = ("0001-01-01 00:00:00", "0000-00-00 00:00:00")
_CIPHER = re.compile(r"[A-Za-z0-9+/=]{16,}")


def split_response(document: object) -> list[dict]:
    """The orderInfo records of one saved jingdong.pop.order.search answer."""
    if isinstance(document, dict) and "error_response" in document:
        raise ResponseShapeError(f"a JD error answer, not an order list: {shown(document['error_response'])}")
    result = document.get(RESPONSE_ROOT) if isinstance(document, dict) else None
    result = result.get("searchorderinfo_result") if isinstance(result, dict) else None
    orders = result.get("orderInfoList", []) if isinstance(result, dict) else None
    if not isinstance(orders, list):
        raise ResponseShapeError(
            "a JD order search answer is {'jingdong_pop_order_search_responce': "
            "{'searchorderinfo_result': {'orderInfoList': [...]}}}"
        )
    return orders


def order_id_of(raw: object) -> str | None:
    """`orderId` as text; None when absent or not an exact id (a float has lost digits)."""
    return order_id_text(raw.get("orderId")) if isinstance(raw, dict) else None


def jd_time(value: object, where: str) -> str | None:
    """A JD GMT+8 time as UTC text; JD's "not yet" placeholder is absent."""
    if isinstance(value, str) and value.strip() in _NOT_YET:
        return None
    return china_time(value, where)


def _status(raw: dict) -> tuple[OrderStatus, str]:
    channel_status = known_value(required_text(raw, "orderState", ""), _STATUS, "orderState")
    return _STATUS[channel_status], channel_status


def _lines(raw: dict) -> list[dict]:
    seen: Counter = Counter()
    lines = []
    for where, item in each_object(raw.get("itemInfoList"), "itemInfoList"):
        sku = id_text(item.get("skuId"), f"{where}.skuId")
        count = quantity(item.get("itemTotal"), f"{where}.itemTotal")
        seen[sku] += 1
        lines.append({
            "line_id": sku if seen[sku] == 1 else f"{sku}-{seen[sku]}",
            "sku": sku,
            "seller_sku": text(item.get("outerSkuId")),
            "quantity": count,
            "unit_price": money(item.get("jdPrice"), f"{where}.jdPrice"),
        })
    return lines


def is_ciphertext(value: object) -> bool:
    """TDE ciphertext is base64 text; a plain name or address has CJK, spaces or punctuation."""
    return isinstance(value, str) and bool(_CIPHER.fullmatch(value.strip()))


def _ship_to(raw: dict) -> dict:
    consignee = as_dict(raw.get("consigneeInfo"), "consigneeInfo")
    address, name = text(consignee.get("fullAddress")), text(consignee.get("fullname"))
    encrypted = is_ciphertext(address) or is_ciphertext(name)
    return {
        "country": "CN" if consignee else None,
        **region(consignee, "province", "city", "county"),
        "address": address,
        "postal_code": None,
        "name": name,
        "phone": text(consignee.get("mobile")) or text(consignee.get("telephone")),
        "encrypted": encrypted,
        "address_handle": address if is_ciphertext(address) else None,
    }


def _buyer(raw: dict) -> str | None:
    return text(raw.get("open_id_buyer")) or text(raw.get("xid_buyer")) or text(raw.get("pin"))


def normalize(raw: dict, shop_id: str) -> CanonicalOrder:
    order_id = order_id_of(raw)
    with reading_order(order_id, raw):
        require_order_id(order_id, require_object(raw, "order").get("orderId"), "orderId", "is not an exact order id")
        status, channel_status = _status(raw)
        return build_order(
            channel=CHANNEL,
            shop_id=shop_id,
            channel_order_id=order_id,
            status=status,
            channel_status=channel_status,
            buyer_id=_buyer(raw),
            currency=CURRENCY,
            total=money(raw.get("orderPayment"), "orderPayment"),
            lines=_lines(raw),
            ship_to=_ship_to(raw),
            created_at=jd_time(raw.get("orderStartTime"), "orderStartTime"),
            paid_at=jd_time(raw.get("paymentConfirmTime"), "paymentConfirmTime"),
            updated_at=jd_time(raw.get("modified"), "modified"),
        )
