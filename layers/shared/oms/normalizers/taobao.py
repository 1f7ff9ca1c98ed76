"""Taobao / Tmall (TOP) trade -> canonical order.

A raw record is one TOP `Trade` object as `taobao.trade.fullinfo.get` returns it (the same shape as
one element of `trades.trade` in `taobao.trades.sold.increment.get` / `taobao.trades.sold.get`).
`split_response` accepts a saved response of any of the three calls (non-simplified JSON, where
arrays come wrapped as `{"trades": {"trade": [...]}}`; the flattened `simplify=true` lists too).

Mapping decisions (facts: shared/channels/CHANNELS.md sections 1 and 9; bububa/opentaobao
`model/tbtrade/Trade.go`, `Order.go`):
- ids: `tid_str` (19 digits, never through a float), else the JSON integer `tid` as text (the
  published doc sample of taobao.trades.sold.get carries only `tid`). Line id: `oid_str`, else `oid`.
  A float id has lost digits: malformed.
- lines: one per sub-order `orders.order[]`: sku = `sku_id`, else the item `num_iid` (an item
  without variants has no sku_id); seller_sku = `outer_sku_id`, else `outer_iid`; quantity = `num`;
  unit_price = `price` (the listed unit price; discounts live in `payment`). An empty sub-order
  object `{}` (how the doc sample renders a nested list) carries nothing and is skipped. A trade
  without any sub-order but with the trade-level item fields (`num_iid`, `num`, `price`, which the
  doc sample shows) becomes one line whose id is the tid.
- money: yuan decimal strings; total = `payment` (what the buyer pays, postage included); currency
  CNY (TOP trades carry no currency field: Taobao and Tmall settle in yuan).
- status (`status`, any other value is malformed), then refunds per sub-order `refund_status`:
    TRADE_NO_CREATE_PAY, WAIT_BUYER_PAY, PAY_PENDING, WAIT_PRE_AUTH_CONFIRM ... pending_payment
    TRADE_CLOSED_BY_TAOBAO (closed before payment) ........................... cancelled
    TRADE_CLOSED (closed after payment) ...... refunded if any line's refund is SUCCESS, else cancelled
    WAIT_SELLER_SEND_GOODS, PAID_FORBID_CONSIGN ............................... paid
    SELLER_CONSIGNED_PART, WAIT_BUYER_CONFIRM_GOODS, TRADE_BUYER_SIGNED ........ shipped
    TRADE_FINISHED ............................................................ completed
  For the paid, shipped and completed ones: every line refunded (SUCCESS) -> refunded; otherwise
  any line with an open refund (WAIT_SELLER_AGREE, WAIT_BUYER_RETURN_GOODS,
  WAIT_SELLER_CONFIRM_GOODS, or SELLER_REFUSE_BUYER, which the buyer may still escalate) ->
  refunding; some lines refunded and none open -> the trade's own status (the rest goes on).
  NO_REFUND, CLOSED (refund withdrawn) and an absent refund_status mean no refund; any other
  refund_status is malformed. Unpaid and closed trades ignore refund_status.
  channel_status is the raw trade `status`.
- buyer: `buyer_open_uid` (stable per app); `buyer_nick` is masked nowadays and is not an id.
- times: created_at = `created`, paid_at = `pay_time`, updated_at = `modified`; all GMT+8
  `yyyy-MM-dd HH:mm:ss` -> UTC. A trade never paid has no paid_at, whatever pay_time says (TOP's
  doc samples fill it in for any status): while payment is pending (pay_time not read) and when
  TRADE_CLOSED_BY_TAOBAO closed it before payment.
- ship_to: province = receiver_state, city, district, address = receiver_address as received
  (receiver_town is not part of the contract), postal_code = receiver_zip, name = receiver_name,
  phone = receiver_mobile else receiver_phone. Country: blank or absent (domestic trades) and
  中国 -> CN; 香港/澳门/台湾 -> HK/MO/TW; a two-letter code as is; any other name -> None (never
  guessed). `encrypted` is true when a receiver field is a TOP cipher text (`~...~`, phone
  `$...$`) or masked with `*`: such values are kept exactly as received. address_handle = `oaid`
  (the handle TOP issues for decryption and waybills; risk rules fingerprint it).
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
    as_list,
    china_time,  # also read from here by the Taobao adapter: the `modified` its known-orders check compares
    id_problem,
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
    known_value,
    region,
    require_object,
)

CHANNEL = "taobao"
CURRENCY = "CNY"
LIST_ROOTS = ("trades_sold_increment_get_response", "trades_sold_get_response")
DETAIL_ROOT = "trade_fullinfo_get_response"

_UNPAID = {"TRADE_NO_CREATE_PAY", "WAIT_BUYER_PAY", "PAY_PENDING", "WAIT_PRE_AUTH_CONFIRM"}
_PAID_STATUS = {
    "WAIT_SELLER_SEND_GOODS": OrderStatus.PAID,
    "PAID_FORBID_CONSIGN": OrderStatus.PAID,
    "SELLER_CONSIGNED_PART": OrderStatus.SHIPPED,
    "WAIT_BUYER_CONFIRM_GOODS": OrderStatus.SHIPPED,
    "TRADE_BUYER_SIGNED": OrderStatus.SHIPPED,
    "TRADE_FINISHED": OrderStatus.COMPLETED,
}
CLOSED_AFTER_PAYMENT = "TRADE_CLOSED"
CLOSED_BEFORE_PAYMENT = "TRADE_CLOSED_BY_TAOBAO"
TRADE_STATUSES = frozenset(_UNPAID | _PAID_STATUS.keys() | {CLOSED_AFTER_PAYMENT, CLOSED_BEFORE_PAYMENT})

REFUND_DONE = "SUCCESS"
_REFUND_OPEN = {"WAIT_SELLER_AGREE", "WAIT_BUYER_RETURN_GOODS", "WAIT_SELLER_CONFIRM_GOODS", "SELLER_REFUSE_BUYER"}
_REFUND_NONE = {"NO_REFUND", "CLOSED"}
REFUND_STATUSES = frozenset(_REFUND_OPEN | _REFUND_NONE | {REFUND_DONE})

_COUNTRY = {"中国": "CN", "中国大陆": "CN", "香港": "HK", "中国香港": "HK", "澳门": "MO", "中国澳门": "MO",
            "台湾": "TW", "中国台湾": "TW"}
_PROTECTED_FIELDS = ("receiver_name", "receiver_mobile", "receiver_phone", "receiver_address")


def _trades_of(listing: object, where: str) -> list:
    """`{"trade": [...]}` (non-simplified JSON), a bare list (simplify=true), or nothing (no trades)."""
    if listing is None:
        return []
    if isinstance(listing, list):
        return listing
    if isinstance(listing, dict) and isinstance(listing.get("trade", []), list):
        return listing.get("trade", [])
    raise ResponseShapeError(f"{where}: expected {{'trade': [...]}}, got {type(listing).__name__}")


def split_response(document: object) -> list[dict]:
    """The trades of one saved list response (increment or sold.get) or of one fullinfo response."""
    if isinstance(document, dict):
        for root in LIST_ROOTS:
            if isinstance(document.get(root), dict):
                return _trades_of(document[root].get("trades"), f"{root}.trades")
        detail = document.get(DETAIL_ROOT)
        if isinstance(detail, dict) and isinstance(detail.get("trade"), dict):
            return [detail["trade"]]
    raise ResponseShapeError(
        "a Taobao file is {'trades_sold_increment_get_response' | 'trades_sold_get_response': "
        "{'trades': {'trade': [...]}}} or {'trade_fullinfo_get_response': {'trade': {...}}}"
    )


def order_id_of(raw: object) -> str | None:
    """`tid_str`, else an integer (or digit string) `tid`, as text; None when neither is an id."""
    if not isinstance(raw, dict):
        return None
    for key in ("tid_str", "tid"):
        found = order_id_text(raw.get(key))
        if found and found.isdigit():
            return found
    return None


def _missing_id_reason(raw: dict) -> str:
    for key in ("tid_str", "tid"):
        found = raw.get(key)
        if found not in (None, ""):
            id_text(found, key)  # names a float id for what it is
            return f"{key}: {shown(found)} {id_problem(found) or 'is not an order id'}"
    return "tid_str: missing (and no tid)"


def _line_id(sub: dict, where: str) -> str:
    if text(sub.get("oid_str")) is not None:
        return id_text(sub.get("oid_str"), f"{where}.oid_str")
    if sub.get("oid") is None:
        raise MalformedOrderError(f"{where}.oid_str: missing (and no oid)")
    return id_text(sub.get("oid"), f"{where}.oid")


def _refund_status(sub: dict, where: str) -> str | None:
    refund = text(sub.get("refund_status"))
    return refund if refund is None else known_value(refund, REFUND_STATUSES, f"{where}.refund_status")


def _line(sub: object, index: int) -> tuple[dict, str | None]:
    """One sub-order -> (line, its refund_status)."""
    where = f"orders.order[{index}]"
    require_object(sub, where)
    line = {
        "line_id": _line_id(sub, where),
        "sku": text(sub.get("sku_id")) or text(sub.get("num_iid")),
        "seller_sku": text(sub.get("outer_sku_id")) or text(sub.get("outer_iid")),
        "quantity": quantity(sub.get("num"), f"{where}.num"),
        "unit_price": money(sub.get("price"), f"{where}.price"),
    }
    return line, _refund_status(sub, where)


def _sub_orders(trade: dict) -> list:
    orders = trade.get("orders")
    if isinstance(orders, list):  # simplify=true
        return orders
    return as_list(as_dict(orders, "orders").get("order"), "orders.order")


def _trade_level_line(trade: dict, order_id: str) -> dict:
    """The item fields older trades (and the doc sample) carry on the trade itself."""
    return {
        "line_id": order_id,
        "sku": text(trade.get("sku_id")) or text(trade.get("num_iid")),
        "seller_sku": text(trade.get("outer_sku_id")) or text(trade.get("outer_iid")),
        "quantity": quantity(trade.get("num"), "num"),
        "unit_price": money(trade.get("price"), "price"),
    }


def _lines(trade: dict, order_id: str) -> tuple[list[dict], list[str | None]]:
    read = [_line(sub, index) for index, sub in enumerate(_sub_orders(trade)) if sub != {}]
    if not read and (trade.get("num_iid") is not None or trade.get("num") is not None):
        return [_trade_level_line(trade, order_id)], []
    return [line for line, _ in read], [refund for _, refund in read]


def _status(channel_status: str, refunds: list[str | None]) -> OrderStatus:
    known_value(channel_status, TRADE_STATUSES, "status")
    if channel_status in _UNPAID:
        return OrderStatus.PENDING_PAYMENT
    if channel_status == CLOSED_BEFORE_PAYMENT:
        return OrderStatus.CANCELLED
    if channel_status == CLOSED_AFTER_PAYMENT:
        return OrderStatus.REFUNDED if REFUND_DONE in refunds else OrderStatus.CANCELLED
    if refunds and all(refund == REFUND_DONE for refund in refunds):
        return OrderStatus.REFUNDED
    if any(refund in _REFUND_OPEN for refund in refunds):
        return OrderStatus.REFUNDING
    return _PAID_STATUS[channel_status]


def _payment_time(trade: dict, channel_status: str, status: OrderStatus) -> str | None:
    """`pay_time` of a trade that was paid; None while payment is pending or once closed before payment."""
    if status is OrderStatus.PENDING_PAYMENT:
        return None
    pay_time = china_time(trade.get("pay_time"), "pay_time")
    return None if channel_status == CLOSED_BEFORE_PAYMENT else pay_time


def _country(trade: dict) -> str | None:
    given = text(trade.get("receiver_country"))
    if given is None:
        return "CN"  # domestic trades leave it blank
    if len(given) == 2 and given.isascii() and given.isalpha():
        return given.upper()
    return _COUNTRY.get(given)


def is_protected(value: object) -> bool:
    """A TOP cipher text (`~data~version~`, phones `$prefix$data$version$`) or a `*` mask."""
    found = text(value)
    if found is None:
        return False
    wrapped = len(found) > 2 and found[0] == found[-1] and found[0] in "~$"
    return wrapped or "*" in found


def _ship_to(trade: dict) -> dict:
    return {
        "country": _country(trade),
        **region(trade, "receiver_state", "receiver_city", "receiver_district"),
        "address": text(trade.get("receiver_address")),
        "postal_code": text(trade.get("receiver_zip")),
        "name": text(trade.get("receiver_name")),
        "phone": text(trade.get("receiver_mobile")) or text(trade.get("receiver_phone")),
        "encrypted": any(is_protected(trade.get(field)) for field in _PROTECTED_FIELDS),
        "address_handle": text(trade.get("oaid")),
    }


def normalize(raw: dict, shop_id: str) -> CanonicalOrder:
    order_id = order_id_of(raw)
    with reading_order(order_id, raw):
        require_object(raw, "trade")
        if order_id is None:
            raise MalformedOrderError(_missing_id_reason(raw))
        channel_status = required_text(raw, "status", "")
        lines, refunds = _lines(raw, order_id)
        status = _status(channel_status, refunds)
        return build_order(
            channel=CHANNEL,
            shop_id=shop_id,
            channel_order_id=order_id,
            status=status,
            channel_status=channel_status,
            buyer_id=text(raw.get("buyer_open_uid")),
            currency=CURRENCY,
            total=money(raw.get("payment"), "payment"),
            lines=lines,
            ship_to=_ship_to(raw),
            created_at=china_time(raw.get("created"), "created"),
            paid_at=_payment_time(raw, channel_status, status),
            updated_at=china_time(raw.get("modified"), "modified"),
        )
