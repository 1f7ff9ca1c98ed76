"""Douyin Shop (抖店) order (one element of `shop_order_list` in order.searchList) -> canonical order.

order.searchList returns the whole shop order with its SKU sub-orders, so a raw record is that
element as served; there is no detail call to join. A saved response may be the whole envelope
`{code, msg, sub_code, sub_msg, log_id, data: {page, size, total, shop_order_list}}` or only its
`data` object (the shape of the official documentation sample). Field meanings: the official
doudian Go SDK `order_searchList` request/response models and the platform's field descriptions
(order.searchList, op.jinritemai.com/docs/api-docs/15/1342, formerly 15/555).
Mapping decisions (facts: shared/channels/CHANNELS.md sections 4 and 9):
- ids: `order_id` (the shop order id, a 19-digit string; a JSON integer is read exactly, a float
  is malformed because it has lost digits). line_id = `sku_order_list[].order_id` (the SKU
  sub-order id); sku = `sku_id` as text; seller_sku = `out_sku_id`, else the merchant code `code`.
- buyer: `doudian_open_id` (the platform's stable, shop-scoped buyer id), else None.
- status: `order_status` (1 待支付, 105 已支付, 2 备货中, 101 部分发货, 3 已发货, 4 已取消,
  5 已完成; any other value is malformed), then refunds per line from
  `sku_order_list[].after_sale_info.refund_status` (1 待退款, 2 退款中, 3 退款成功, 4 退款失败,
  5 追缴成功), first match wins:
    every line refund_status 3 (also a cancelled order refunded in full) ...... refunded
    some line refund_status 1, 2 or 3 (open, or a partial refund done) ........ refunding
    order_status 1 ............................................................. pending_payment
    order_status 105 or 2 ...................................................... paid
    order_status 101 or 3 (partly or wholly shipped) ........................... shipped
    order_status 5 ............................................................. completed
    order_status 4 (cancelled, nothing refunded) ............................... cancelled
  A failed refund (4) or a clawback (5) gave the buyer nothing back: ignored. An unpaid order has
  no lines to refund. channel_status is the raw `order_status` as text ("2", "105", ...).
- money: integer fen -> yuan (Decimal), currency CNY. total = `pay_amount` (支付金额: goods -
  promotions + postage, what the buyer paid); unit_price = `origin_amount` (the unit price; the
  line's `sum_amount` = origin_amount x item_num); quantity = `item_num`.
- times: epoch seconds -> UTC. created_at = create_time, paid_at = pay_time (0 = not paid ->
  None; also None while order_status is 1 待支付, whatever pay_time says), updated_at =
  update_time (required: it is the version every dedup compare uses).
- ship_to: country CN (Douyin Shop ships within mainland China and has no country field);
  province / city / district = `post_addr.province / city / town .name`; address = the detail
  line (the street name is not repeated in it). Since 2021 the plain `post_receiver`,
  `post_tel` and `post_addr.detail` are empty and the platform sends ciphertext
  (`encrypt_post_receiver`, `encrypt_post_tel`, `post_addr.encrypt_detail`): when any cipher is
  present all three are kept exactly as received (never the masked `mask_*` values) and
  encrypted = true; older payloads (the documentation sample) carry plain values, encrypted =
  false. address_handle = `open_address_id` when the platform sends one, else the detail cipher
  (Douyin's ciphertext embeds a search index that identifies the address), else None.
"""

from __future__ import annotations

from oms.domain.order import (
    CanonicalOrder,
    MalformedOrderError,
    OrderStatus,
    build_order,
)
from oms.normalizers._fields import (
    as_dict,
    epoch_seconds,
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
    each_object,
    known_value,
    protected_receiver,
    require_order_id,
)

CHANNEL = "douyin"
CURRENCY = "CNY"
COUNTRY = "CN"

_ORDER_STATUS = {
    1: OrderStatus.PENDING_PAYMENT,
    105: OrderStatus.PAID,
    2: OrderStatus.PAID,
    101: OrderStatus.SHIPPED,
    3: OrderStatus.SHIPPED,
    4: OrderStatus.CANCELLED,
    5: OrderStatus.COMPLETED,
}
AWAITING_PAYMENT = "1"  # order_status 待支付, as channel_status
_REFUND_OPEN = {1, 2}  # 待退款, 退款中
_REFUND_DONE = 3  # 退款成功
_REFUND_STATUSES = {0, 1, 2, 3, 4, 5}


def split_response(document: object) -> list[dict]:
    """The shop orders of one order.searchList response (the envelope, or only its `data`)."""
    data = document.get("data", document) if isinstance(document, dict) else None
    orders = data.get("shop_order_list") if isinstance(data, dict) else None
    if orders is None and isinstance(data, dict) and "shop_order_list" not in data and "total" in data:
        return []  # an empty page: Douyin omits the list
    if not isinstance(orders, list):
        raise ResponseShapeError(
            "a Douyin order.searchList response is {'code': 10000, 'data': {'shop_order_list': [...]}} "
            "or its 'data' object"
        )
    return orders


def order_id_of(raw: object) -> str | None:
    """`order_id` as text (a string or an exact JSON integer), else None."""
    return order_id_text(raw.get("order_id")) if isinstance(raw, dict) else None


def _status(raw: dict, refund_statuses: list[int]) -> tuple[OrderStatus, str]:
    code = known_value(whole_number(raw.get("order_status"), "order_status"), _ORDER_STATUS, "order_status")
    if refund_statuses and all(status == _REFUND_DONE for status in refund_statuses):
        return OrderStatus.REFUNDED, str(code)
    if any(status in _REFUND_OPEN or status == _REFUND_DONE for status in refund_statuses):
        return OrderStatus.REFUNDING, str(code)
    return _ORDER_STATUS[code], str(code)


def _refund_status(line: dict, where: str) -> int:
    info = as_dict(line.get("after_sale_info"), f"{where}.after_sale_info")
    value = info.get("refund_status")
    if value in (None, ""):
        return 0
    field = f"{where}.after_sale_info.refund_status"
    return known_value(whole_number(value, field), _REFUND_STATUSES, field)


def _line(where: str, line: dict) -> tuple[dict, int]:
    """One SKU sub-order -> (canonical line, its refund_status)."""
    count = quantity(line.get("item_num"), f"{where}.item_num")
    sku_id = line.get("sku_id")
    canonical = {
        "line_id": id_text(line.get("order_id"), f"{where}.order_id"),
        "sku": None if sku_id in (None, "", 0) else id_text(sku_id, f"{where}.sku_id"),
        "seller_sku": text(line.get("out_sku_id")) or text(line.get("code")),
        "quantity": count,
        "unit_price": fen(line.get("origin_amount"), f"{where}.origin_amount"),
    }
    return canonical, _refund_status(line, where)


def _region(address: dict, level: str, where: str) -> str | None:
    return text(as_dict(address.get(level), f"{where}.{level}").get("name"))


def _payment_time(channel_status: str, pay_time: str | None) -> str | None:
    """`pay_time`, except while the order awaits payment: an unpaid order has no payment time."""
    return None if channel_status == AWAITING_PAYMENT else pay_time


def _ship_to(raw: dict) -> dict:
    address = as_dict(raw.get("post_addr"), "post_addr")
    ciphers = (text(raw.get("encrypt_post_receiver")), text(raw.get("encrypt_post_tel")),
               text(address.get("encrypt_detail")))
    (name, phone, detail), encrypted = protected_receiver(
        ciphers, (text(raw.get("post_receiver")), text(raw.get("post_tel")), text(address.get("detail"))))
    return {
        "country": COUNTRY if address or encrypted or name else None,
        "province": _region(address, "province", "post_addr"),
        "city": _region(address, "city", "post_addr"),
        "district": _region(address, "town", "post_addr"),
        "address": detail,
        "postal_code": None,
        "name": name,
        "phone": phone,
        "encrypted": encrypted,
        "address_handle": text(raw.get("open_address_id")) or text(address.get("open_address_id")) or ciphers[2],
    }


def normalize(raw: dict, shop_id: str) -> CanonicalOrder:
    order_id = order_id_of(raw)
    with reading_order(order_id, raw):
        found = raw.get("order_id") if isinstance(raw, dict) else None
        require_order_id(order_id, found, "order_id", "is not an exact order id (a float loses digits of 19-digit ids)")
        lines = [_line(where, line) for where, line in each_object(raw.get("sku_order_list"), "sku_order_list")]
        status, channel_status = _status(raw, [refund for _, refund in lines])
        updated_at = epoch_seconds(raw.get("update_time"), "update_time")
        if updated_at is None:
            raise MalformedOrderError("update_time: missing")
        return build_order(
            channel=CHANNEL,
            shop_id=shop_id,
            channel_order_id=order_id,
            status=status,
            channel_status=channel_status,
            buyer_id=text(raw.get("doudian_open_id")),
            currency=CURRENCY,
            total=fen(raw.get("pay_amount"), "pay_amount"),
            lines=[line for line, _ in lines],
            ship_to=_ship_to(raw),
            created_at=epoch_seconds(raw.get("create_time"), "create_time"),
            paid_at=_payment_time(channel_status, epoch_seconds(raw.get("pay_time"), "pay_time")),
            updated_at=updated_at,
        )
