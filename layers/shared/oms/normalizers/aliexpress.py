"""AliExpress seller orders (aliexpress.solution.order.get + aliexpress.solution.order.info.get) -> canonical order.

A raw record is `{"order": <order_dto of the list call>, "detail": <data of the detail call> or None}`:
`split_response` joins a saved list response with the detail responses keyed by order id (the
poller does the same). A bare list response (the platform's published sample, no detail) is also
accepted: every order then has no detail and an empty ship_to.
Mapping decisions (facts: shared/channels/CHANNELS.md sections 7 and 9, bububa/opentaobao
model/aesolution OrderQuery/OrderDto/OrderProductDto):
- ids: `order_id` (int64, 16 digits; read as an exact integer or digit string, never a float);
  line id `child_id` (else the line's own `order_id`); sku = `product_id`, seller_sku = `sku_code`.
- times: `gmt_create`, `gmt_pay_time` (else the detail's `gmt_pay_success`), `gmt_update`, all
  `yyyy-MM-dd HH:mm:ss` in US Pacific time with daylight saving (an ambiguous autumn hour reads as
  daylight time), converted to UTC.
  paid_at is null for an order the buyer never paid, whatever pay time the payload carries (the
  platform's published samples of both calls show an unpaid PLACE_ORDER_SUCCESS order with
  `gmt_pay_time` / `gmt_pay_success` filled in): awaiting payment (pending_payment), `fund_status`
  NOT_PAY (order, else detail), or closed for non-payment (end_reason pay_timeout,
  buyer_pay_timeout, buyer_cancel_notpay_order). An order paid and then cancelled or refunded
  keeps its pay time.
- status (channel_status is the raw `order_status`; any other value is malformed):
    PLACE_ORDER_SUCCESS, WAIT_SELLER_EXAMINE_MONEY ...... pending_payment (the seller confirms an
                                                           amount before the buyer pays)
    RISK_CONTROL, WAIT_SELLER_SEND_GOODS,
    SELLER_PART_SEND_GOODS ............................. paid (a partly sent order still awaits shipment)
    WAIT_BUYER_ACCEPT_GOODS ............................ shipped
    IN_FROZEN .......................................... shipped once sent (gmt_send_goods_time), else paid:
                                                         frozen funds do not change where the goods are
    IN_CANCEL, IN_ISSUE ................................ refunding (the buyer asked to cancel a paid order /
                                                         opened a dispute; the seller may still refuse)
    FINISH, FUND_PROCESSING ............................ by `end_reason`:
        buyer_confirm_goods, buyer_accept_goods, buyer_accept_goods_timeout,
        buyer_confirm_goods_timeout ...................... completed
        seller_accept_issue_no_goods_return,
        seller_response_issue_timeout .................... refunded (a dispute ended in the buyer's favour)
        pay_timeout, buyer_pay_timeout, buyer_cancel_notpay_order, buyer_cancel_order,
        buyer_cancel_order_in_risk, cancel_order_close_trade, risk_reject_closed, risk_closed,
        seller_send_goods_timeout, send_goods_timeout, trade_close, security_close,
        suspicious_trade, confirm_payamount_timeout, reject_payamount ... cancelled
        absent or unknown ................................ refunded when every line's dispute ended
                                                         (END_ISSUE), else cancelled when never paid,
                                                         else completed (FUND_PROCESSING: completed)
  Refunds per line (AliExpress refunds go through disputes on the sub-order, `issue_status`):
  while the order is open (not pending payment, not finished), any line IN_ISSUE makes the order
  `refunding`, whether one line or all of them are disputed: the finished order's end_reason later
  says refunded, cancelled or completed.
- money: `pay_amount` {currency_code, amount} is what the buyer paid (total, currency); without it,
  the sum of the lines' `total_product_amount` and the detail's `order_amount` currency. Unit price
  `product_unit_price.amount`. Amounts are decimal strings; a float or text like "N/A" is malformed.
- buyer: `buyer_login_id` (else the detail's `buyer_info.login_id`).
- ship_to: the detail's `receipt_address` (plain text: AliExpress does not encrypt it, encrypted =
  false): contact_person, country (AliExpress' "UK" is ISO "GB"), province, city, detail_address +
  address2, zip, phone_country + mobile_no (else phone_number). No detail -> every field null.
  AliExpress gives no address handle (no OAID-like id), so address_handle stays null.
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
    id_text,
    joined,
    money,
    order_id_text,
    pacific_time,
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
    require_order_id,
)

CHANNEL = "aliexpress"
LIST_ROOT = "aliexpress_solution_order_get_response"
DETAIL_ROOT = "aliexpress_solution_order_info_get_response"

_DIRECT_STATUS = {
    "PLACE_ORDER_SUCCESS": OrderStatus.PENDING_PAYMENT,
    "WAIT_SELLER_EXAMINE_MONEY": OrderStatus.PENDING_PAYMENT,
    "RISK_CONTROL": OrderStatus.PAID,
    "WAIT_SELLER_SEND_GOODS": OrderStatus.PAID,
    "SELLER_PART_SEND_GOODS": OrderStatus.PAID,
    "WAIT_BUYER_ACCEPT_GOODS": OrderStatus.SHIPPED,
    "IN_CANCEL": OrderStatus.REFUNDING,
    "IN_ISSUE": OrderStatus.REFUNDING,
}
_FROZEN = "IN_FROZEN"
_ENDED = ("FINISH", "FUND_PROCESSING")
KNOWN_STATUSES = frozenset((*_DIRECT_STATUS, _FROZEN, *_ENDED))

COMPLETED_REASONS = frozenset(
    {"buyer_confirm_goods", "buyer_accept_goods", "buyer_accept_goods_timeout", "buyer_confirm_goods_timeout"}
)
REFUNDED_REASONS = frozenset({"seller_accept_issue_no_goods_return", "seller_response_issue_timeout"})
CANCELLED_REASONS = frozenset({
    "pay_timeout", "buyer_pay_timeout", "buyer_cancel_notpay_order", "buyer_cancel_order",
    "buyer_cancel_order_in_risk", "cancel_order_close_trade", "risk_reject_closed", "risk_closed",
    "seller_send_goods_timeout", "send_goods_timeout", "trade_close", "security_close", "suspicious_trade",
    "confirm_payamount_timeout", "reject_payamount",
})
# Closed because the buyer never paid (the other cancel reasons can follow a payment).
NOT_PAID_REASONS = frozenset({"pay_timeout", "buyer_pay_timeout", "buyer_cancel_notpay_order"})
NOT_PAID_FUNDS = "NOT_PAY"  # fund_status: NOT_PAY, PAY_SUCCESS, WAIT_SELLER_CHECK
_IN_DISPUTE, _DISPUTE_ENDED = "IN_ISSUE", "END_ISSUE"
_PRODUCTS = "order.product_list.order_product_dto"  # where the lines are, as errors name it
# AliExpress country codes that are not ISO 3166-1 alpha-2.
_COUNTRY_ALIASES = {"UK": "GB", "SRB": "RS", "MNE": "ME", "EN": "GB"}


def list_orders(list_response: object) -> list:
    """The order_dto list of one aliexpress.solution.order.get response (one object counts as a list)."""
    orders = dig(list_response, LIST_ROOT, "result", "target_list", "order_dto")
    if orders is None:
        orders = dig(list_response, "result", "target_list", "order_dto")  # already unwrapped
    if isinstance(orders, dict):
        return [orders]
    return orders if isinstance(orders, list) else []


def detail_data(detail_response: object) -> dict | None:
    """The `data` of one aliexpress.solution.order.info.get response (or an already unwrapped data)."""
    data = dig(detail_response, DETAIL_ROOT, "result", "data")
    if data is None and isinstance(detail_response, dict) and DETAIL_ROOT not in detail_response:
        data = dig(detail_response, "result", "data") or (detail_response if "id" in detail_response else None)
    return data if isinstance(data, dict) else None


def split_response(document: object) -> list[dict]:
    """Join a saved list response with its detail responses (keyed by order id), or read a bare list."""
    if isinstance(document, dict) and "order_list" in document:
        list_response, details = document.get("order_list"), document.get("order_details")
    else:
        list_response, details = document, {}
    details = {} if details is None else details
    if not isinstance(details, dict) or not (
        isinstance(list_response, dict) and (LIST_ROOT in list_response or "result" in list_response)
    ):
        raise ResponseShapeError(
            "an AliExpress file is {'order_list': {'aliexpress_solution_order_get_response': {...}}, "
            "'order_details': {orderId: {'aliexpress_solution_order_info_get_response': {...}}}} "
            "or a bare aliexpress_solution_order_get_response"
        )
    records = []
    for order in list_orders(list_response):
        order_id = order_id_of({"order": order})
        records.append({"order": order, "detail": detail_data(details.get(order_id)) if order_id else None})
    return records


def order_id_of(raw: object) -> str | None:
    result = order_id_text(dig(raw, "order", "order_id"))
    return result if result and result.isdigit() else None


def _amount(value: object, where: str) -> tuple[Decimal, str | None]:
    record = as_dict(value, where)
    return money(record.get("amount"), f"{where}.amount"), text(record.get("currency_code"))


def _line(where: str, product: dict) -> dict:
    line_id = product.get("child_id") if product.get("child_id") not in (None, "") else product.get("order_id")
    count = quantity(product.get("product_count"), f"{where}.product_count")
    unit_price, _currency = _amount(product.get("product_unit_price"), f"{where}.product_unit_price")
    product_id = product.get("product_id")
    return {
        "line_id": id_text(line_id, f"{where}.child_id"),
        "sku": None if product_id in (None, "") else id_text(product_id, f"{where}.product_id"),
        "seller_sku": text(product.get("sku_code")),
        "quantity": count,
        "unit_price": unit_price,
    }


def _products(order: dict) -> list:
    products = as_dict(order.get("product_list"), "order.product_list").get("order_product_dto")
    if isinstance(products, dict):
        return [products]
    return as_list(products, _PRODUCTS)


def _ended_status(channel_status: str, end_reason: str | None, products: list, paid: bool) -> OrderStatus:
    if end_reason in COMPLETED_REASONS:
        return OrderStatus.COMPLETED
    if end_reason in REFUNDED_REASONS:
        return OrderStatus.REFUNDED
    if end_reason in CANCELLED_REASONS:
        return OrderStatus.CANCELLED
    if products and all(dig(p, "issue_status") == _DISPUTE_ENDED for p in products):
        return OrderStatus.REFUNDED
    if channel_status == "FINISH" and not paid:
        return OrderStatus.CANCELLED
    return OrderStatus.COMPLETED


def _status(order: dict, channel_status: str, products: list, paid: bool) -> OrderStatus:
    if channel_status in _ENDED:
        return _ended_status(channel_status, text(order.get("end_reason")), products, paid)
    if channel_status == _FROZEN:
        base = OrderStatus.SHIPPED if text(order.get("gmt_send_goods_time")) else OrderStatus.PAID
    else:
        base = _DIRECT_STATUS[channel_status]
    disputed = any(dig(p, "issue_status") == _IN_DISPUTE for p in products)
    if disputed and base in (OrderStatus.PAID, OrderStatus.SHIPPED):
        return OrderStatus.REFUNDING
    return base


def _never_paid(order: dict, detail: dict, channel_status: str) -> bool:
    """The buyer never paid this order, so it has no payment time whatever the payload says."""
    funds = text(order.get("fund_status")) or text(detail.get("fund_status"))
    return (
        _DIRECT_STATUS.get(channel_status) is OrderStatus.PENDING_PAYMENT
        or funds == NOT_PAID_FUNDS
        or text(order.get("end_reason")) in NOT_PAID_REASONS
    )


def _total_and_currency(order: dict, detail: dict, products: list) -> tuple[Decimal, str]:
    if order.get("pay_amount") is not None:
        total, currency = _amount(order.get("pay_amount"), "order.pay_amount")
    else:
        total = sum(
            (_amount(dig(p, "total_product_amount"), f"order.product_list.order_product_dto[{i}].total_product_amount")[0]
             for i, p in enumerate(products) if dig(p, "total_product_amount") is not None),
            Decimal(0),
        )
        currency = text(dig(detail, "order_amount", "currency_code")) or next(
            (text(dig(p, "product_unit_price", "currency_code")) for p in products
             if text(dig(p, "product_unit_price", "currency_code"))), None)
    if currency is None:
        raise MalformedOrderError("order.pay_amount.currency_code: missing (and no line or detail currency)")
    return total, currency.upper()


def _country(value: object) -> str | None:
    code = text(value)
    if code is None:
        return None
    code = code.upper()
    return _COUNTRY_ALIASES.get(code, code)


def _ship_to(detail: dict) -> dict:
    address = as_dict(detail.get("receipt_address"), "detail.receipt_address")
    mobile = text(address.get("mobile_no")) or text(address.get("phone_number"))
    phone_country = text(address.get("phone_country"))
    return {
        "country": _country(address.get("country")),
        **region(address, "province", "city", "district"),
        "address": joined(address.get("detail_address"), address.get("address2")),
        "postal_code": text(address.get("zip")),
        "name": text(address.get("contact_person")),
        "phone": None if mobile is None else (f"{phone_country} {mobile}" if phone_country else mobile),
        "encrypted": False,
    }


def normalize(raw: dict, shop_id: str) -> CanonicalOrder:
    order_id = order_id_of(raw)
    with reading_order(order_id, raw):
        require_order_id(order_id, dig(raw, "order", "order_id"), "order.order_id", "is not an exact order id")
        order = raw["order"]  # a dict: order_id_of found an id in it
        detail = as_dict(raw.get("detail"), "detail")
        channel_status = required_text(order, "order_status", "order.")
        known_value(channel_status, KNOWN_STATUSES, "order.order_status")
        products = _products(order)
        lines = [_line(where, product) for where, product in each_object(products, _PRODUCTS)]
        pay_time = pacific_time(order.get("gmt_pay_time"), "order.gmt_pay_time") or pacific_time(
            detail.get("gmt_pay_success"), "detail.gmt_pay_success")
        total, currency = _total_and_currency(order, detail, products)
        buyer = text(order.get("buyer_login_id")) or text(dig(detail, "buyer_info", "login_id"))
        return build_order(
            channel=CHANNEL,
            shop_id=shop_id,
            channel_order_id=order_id,
            status=_status(order, channel_status, products, paid=pay_time is not None),
            channel_status=channel_status,
            buyer_id=buyer,
            currency=currency,
            total=total,
            lines=lines,
            ship_to=_ship_to(detail),
            created_at=pacific_time(order.get("gmt_create"), "order.gmt_create"),
            paid_at=None if _never_paid(order, detail, channel_status) else pay_time,
            updated_at=pacific_time(order.get("gmt_update"), "order.gmt_update"),
        )
