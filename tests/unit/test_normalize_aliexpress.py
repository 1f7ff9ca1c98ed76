"""AliExpress normalizer: every field of the synthetic list + detail file, the platform's published
sample shape (list only), exact ids, US Pacific times, money, status and per-line refund mapping,
malformed payloads quarantined with the field named."""

import copy
import json

import pytest
from oms.normalizers import aliexpress

from tests.unit.normalize_helpers import (
    NULL_SHIP_TO,
    refused,
    synthetic_record,
    synthetic_records,
)

# Hand-derived from aliexpress_synthetic.json: March 2026 after the 8th is Pacific daylight time (UTC-7).
EXPECTED = [
    {
        "order_key": "aliexpress#ae-shop#8190442233115566",
        "channel": "aliexpress",
        "shop_id": "ae-shop",
        "channel_order_id": "8190442233115566",
        "status": "paid",
        "channel_status": "WAIT_SELLER_SEND_GOODS",
        "buyer_id": "hk1288345kwl",
        "currency": "USD",
        "total": "41.97",
        "lines": [
            {"line_id": "8190442233125566", "sku": "1005006123456789", "seller_sku": "200000182:193;14:175#Black",
             "quantity": 1, "unit_price": "25.99"},
            {"line_id": "8190442233135566", "sku": "1005006123459999", "seller_sku": "14:771#2m",
             "quantity": 2, "unit_price": "7.99"},
        ],
        "ship_to": {
            "country": "HK", "province": "九龍", "city": "旺角", "district": None,
            "address": "彌敦道688號 旺角中心1期 12樓B室", "postal_code": "999077",
            "name": "陳大文", "phone": "+852 91234567", "encrypted": False,
        },
        "created_at": "2026-03-13T09:10:44Z",
        "paid_at": "2026-03-13T09:11:30Z",
        "updated_at": "2026-03-13T09:11:31Z",
    },
    {
        "order_key": "aliexpress#ae-shop#8190331122004477",
        "channel": "aliexpress",
        "shop_id": "ae-shop",
        "channel_order_id": "8190331122004477",
        "status": "cancelled",  # FINISH + buyer_cancel_notpay_order
        "channel_status": "FINISH",
        "buyer_id": "es9911223344xyz",
        "currency": "EUR",
        "total": "18.49",
        "lines": [
            {"line_id": "8190331122014477", "sku": "1005006123450000", "seller_sku": "14:193#White",
             "quantity": 1, "unit_price": "18.49"},
        ],
        "ship_to": NULL_SHIP_TO,  # no detail call result in the file
        "created_at": "2026-03-12T18:20:05Z",
        "paid_at": None,
        "updated_at": "2026-03-12T19:01:40Z",
    },
    {
        "order_key": "aliexpress#ae-shop#8190220011887733",
        "channel": "aliexpress",
        "shop_id": "ae-shop",
        "channel_order_id": "8190220011887733",
        "status": "shipped",
        "channel_status": "WAIT_BUYER_ACCEPT_GOODS",
        "buyer_id": "br5566778899qwe",
        "currency": "BRL",
        "total": "149.90",
        "lines": [
            {"line_id": "8190220011897733", "sku": "1005006123451111", "seller_sku": "14:173#Blue",
             "quantity": 1, "unit_price": "149.90"},
        ],
        "ship_to": {
            "country": "BR", "province": "São Paulo", "city": "São Paulo", "district": None,
            "address": "Avenida Paulista, 1578 - Bela Vista, Apto 52", "postal_code": "01310-200",
            "name": "João Gonçalves", "phone": "+55 11987654321", "encrypted": False,
        },
        "created_at": "2026-03-10T14:44:12Z",
        "paid_at": "2026-03-10T14:45:03Z",
        "updated_at": "2026-03-12T02:30:02Z",
    },
]

# The shape of the platform's published sample of aliexpress.solution.order.get (as quoted in public
# SDK tests): list only, ints for ids, error_code/error_message filled although success is true,
# `phone` a boolean, `escrow_fee_rate` a number. Values here are our own.
OFFICIAL_SHAPE = {
    "aliexpress_solution_order_get_response": {
        "result": {
            "error_message": "1",
            "total_count": 1,
            "target_list": {
                "order_dto": [
                    {
                        "timeout_left_time": 98765432,
                        "seller_signer_fullname": "cn5550001",
                        "seller_operator_login_id": "cn5550001",
                        "seller_login_id": "cn5550001",
                        "product_list": {
                            "order_product_dto": [
                                {
                                    "total_product_amount": {"currency_code": "USD", "amount": "3.50"},
                                    "son_order_status": "PLACE_ORDER_SUCCESS",
                                    "sku_code": "77",
                                    "show_status": "PLACE_ORDER_SUCCESS",
                                    "send_goods_time": "2024-11-03 01:30:00",
                                    "send_goods_operator": "WAREHOUSE_SEND_GOODS",
                                    "product_unit_price": {"currency_code": "USD", "amount": "3.50"},
                                    "product_unit": "piece",
                                    "product_standard": "",
                                    "product_snap_url": "http://www.aliexpress.com/snapshot/null.html?orderId=3300112233445566",
                                    "product_name": "tea cup",
                                    "product_img_url": "http://example.invalid/no_photo.gif",
                                    "product_id": 4455667,
                                    "product_count": 1,
                                    "order_id": 333444,
                                    "money_back3x": False,
                                    "memo": "2",
                                    "logistics_type": "EMS",
                                    "logistics_service_name": "EMS",
                                    "logistics_amount": {"currency_code": "USD", "amount": "3.50"},
                                    "issue_status": "END_ISSUE",
                                    "issue_mode": "w",
                                    "goods_prepare_time": 5,
                                    "fund_status": "WAIT_SELLER_CHECK",
                                    "freight_commit_day": "30",
                                    "escrow_fee_rate": "0.02",
                                    "delivery_time": "7-15",
                                    "child_id": 98765432,
                                    "can_submit_issue": False,
                                    "buyer_signer_last_name": "2",
                                    "buyer_signer_first_name": "2",
                                    "afflicate_fee_rate": "0.05",
                                }
                            ]
                        },
                        "phone": False,
                        "payment_type": "ebanx101",
                        "pay_amount": {"currency_code": "USD", "amount": "3.50"},
                        "order_status": "PLACE_ORDER_SUCCESS",
                        "order_id": 3300112233445566,
                        "order_detail_url": "http",
                        "logistics_status": "NO_LOGISTICS",
                        "logisitcs_escrow_fee_rate": "2",
                        "loan_amount": {"currency_code": "USD", "amount": "3.50"},
                        "left_send_good_min": "2",
                        "left_send_good_hour": "2",
                        "left_send_good_day": "2",
                        "issue_status": "END_ISSUE",
                        "has_request_loan": False,
                        "gmt_update": "2024-11-03 01:30:00",
                        "gmt_send_goods_time": "2024-11-03 01:30:00",
                        "gmt_pay_time": "2024-11-03 01:30:00",
                        "gmt_create": "2024-11-03 01:30:00",
                        "fund_status": "WAIT_SELLER_CHECK",
                        "frozen_status": "IN_FROZEN",
                        "escrow_fee_rate": 2,
                        "escrow_fee": {"currency_code": "USD", "amount": "3.50"},
                        "end_reason": "buyer_confirm_goods",
                        "buyer_signer_fullname": "probe",
                        "buyer_login_id": "probe",
                        "biz_type": "AE_RECHARGE",
                    }
                ]
            },
            "page_size": 1,
            "error_code": "1",
            "current_page": 1,
            "total_page": 1,
            "success": True,
            "time_stamp": "1",
        }
    }
}


def paid_record() -> dict:
    return synthetic_record(aliexpress, 0)


def test_the_synthetic_file_normalizes_field_by_field():
    # GIVEN the synthetic list + detail file WHEN every record is normalized
    orders = [aliexpress.normalize(raw, "ae-shop").contract_dict() for raw in synthetic_records(aliexpress)]
    # THEN each order matches the hand-derived canonical form
    assert orders == EXPECTED


def test_the_published_sample_shape_normalizes_without_a_detail():
    # GIVEN a bare list response in the documented sample's shape
    records = aliexpress.split_response(copy.deepcopy(OFFICIAL_SHAPE))
    # WHEN normalized
    order = aliexpress.normalize(records[0], "ae-shop").contract_dict()
    # THEN the unpaid order is read with an empty but valid ship_to
    assert records[0]["detail"] is None
    assert order["channel_order_id"] == "3300112233445566"
    assert order["status"] == "pending_payment" and order["channel_status"] == "PLACE_ORDER_SUCCESS"
    assert order["buyer_id"] == "probe"
    assert (order["currency"], order["total"]) == ("USD", "3.50")
    assert order["lines"] == [{"line_id": "98765432", "sku": "4455667", "seller_sku": "77", "quantity": 1,
                               "unit_price": "3.50"}]
    assert order["ship_to"] == NULL_SHIP_TO
    # AND 01:30 on 2024-11-03 (the autumn repeated hour) reads as daylight time, UTC-7
    assert order["created_at"] == order["updated_at"] == "2024-11-03T08:30:00Z"
    # AND the sample's gmt_pay_time on an order still awaiting payment is no payment time
    assert order["paid_at"] is None


def test_a_nineteen_digit_order_id_keeps_every_digit():
    # GIVEN ids beyond 2**53, as a JSON integer and as digit text
    raw = paid_record()
    raw["order"]["order_id"] = 9007199254740993123
    raw["order"]["product_list"]["order_product_dto"][0]["child_id"] = 9007199254740993125
    as_text = paid_record()
    as_text["order"]["order_id"] = "9007199254740993123"
    # WHEN normalized
    order = aliexpress.normalize(raw, "s")
    # THEN the ids are exact strings
    assert order.channel_order_id == "9007199254740993123"
    assert order.lines[0].line_id == "9007199254740993125"
    assert aliexpress.normalize(as_text, "s").channel_order_id == "9007199254740993123"


def test_json_parsing_of_the_raw_text_keeps_the_id_exact():
    text = json.dumps(OFFICIAL_SHAPE).replace("3300112233445566", "1234567890123456789")
    order = aliexpress.normalize(aliexpress.split_response(json.loads(text))[0], "s")
    assert order.channel_order_id == "1234567890123456789"


@pytest.mark.parametrize(
    ("pacific", "utc"),
    [
        ("2026-01-15 10:00:00", "2026-01-15T18:00:00Z"),  # standard time, UTC-8
        ("2026-07-15 10:00:00", "2026-07-15T17:00:00Z"),  # daylight time, UTC-7
        ("2026-03-08 03:00:00", "2026-03-08T10:00:00Z"),  # first hour after spring forward
    ],
)
def test_pacific_times_become_utc_with_daylight_saving(pacific, utc):
    raw = paid_record()
    raw["order"]["gmt_update"] = pacific
    assert aliexpress.normalize(raw, "s").updated_at == utc


def test_money_keeps_the_platform_currency_and_decimal_digits():
    raw = paid_record()
    raw["order"]["pay_amount"] = {"currency_code": "jpy", "amount": "1999"}
    order = aliexpress.normalize(raw, "s")
    assert (order.currency, order.contract_dict()["total"]) == ("JPY", "1999")


def test_without_pay_amount_the_total_is_the_sum_of_the_lines():
    raw = paid_record()
    del raw["order"]["pay_amount"]
    order = aliexpress.normalize(raw, "s").contract_dict()
    assert (order["currency"], order["total"]) == ("USD", "41.97")


def status_of(order_status: str, *, end_reason=None, paid=True, sent=False, issues=None) -> str:
    raw = paid_record()
    order = raw["order"]
    order["order_status"] = order_status
    order.pop("end_reason", None)
    if end_reason is not None:
        order["end_reason"] = end_reason
    if not paid:
        order.pop("gmt_pay_time", None)
        raw["detail"].pop("gmt_pay_success", None)
    if sent:
        order["gmt_send_goods_time"] = "2026-03-14 10:00:00"
    for product, issue in zip(order["product_list"]["order_product_dto"], issues or ()):
        product["issue_status"] = issue
    return aliexpress.normalize(raw, "s").status.value


@pytest.mark.parametrize(
    ("order_status", "options", "expected"),
    [
        ("PLACE_ORDER_SUCCESS", {"paid": False}, "pending_payment"),
        ("WAIT_SELLER_EXAMINE_MONEY", {"paid": False}, "pending_payment"),
        ("RISK_CONTROL", {}, "paid"),
        ("WAIT_SELLER_SEND_GOODS", {}, "paid"),
        ("SELLER_PART_SEND_GOODS", {}, "paid"),
        ("WAIT_BUYER_ACCEPT_GOODS", {}, "shipped"),
        ("IN_FROZEN", {}, "paid"),
        ("IN_FROZEN", {"sent": True}, "shipped"),
        ("IN_CANCEL", {}, "refunding"),
        ("IN_ISSUE", {}, "refunding"),
        ("FINISH", {"end_reason": "buyer_confirm_goods"}, "completed"),
        ("FINISH", {"end_reason": "buyer_accept_goods_timeout"}, "completed"),
        ("FINISH", {"end_reason": "buyer_cancel_notpay_order", "paid": False}, "cancelled"),
        ("FINISH", {"end_reason": "seller_send_goods_timeout"}, "cancelled"),
        ("FINISH", {"end_reason": "risk_reject_closed"}, "cancelled"),
        ("FINISH", {"end_reason": "seller_accept_issue_no_goods_return"}, "refunded"),
        ("FINISH", {"paid": False}, "cancelled"),  # no reason, never paid: closed unpaid
        ("FINISH", {}, "completed"),  # no reason, paid
        ("FUND_PROCESSING", {}, "completed"),
    ],
)
def test_each_platform_status_maps_to_its_canonical_status(order_status, options, expected):
    assert status_of(order_status, **options) == expected


@pytest.mark.parametrize(
    ("order_status", "options", "expected"),
    [
        pytest.param("WAIT_SELLER_SEND_GOODS", {"issues": ["IN_ISSUE", "NO_ISSUE"]}, "refunding",
                     id="one disputed line of a paid order makes it refunding"),
        pytest.param("WAIT_BUYER_ACCEPT_GOODS", {"issues": ["IN_ISSUE", "IN_ISSUE"]}, "refunding",
                     id="every line disputed on a shipped order is refunding"),
        pytest.param("FINISH", {"issues": ["END_ISSUE", "END_ISSUE"]}, "refunded",
                     id="a finished order whose every line dispute ended is refunded"),
        pytest.param("FINISH", {"end_reason": "buyer_confirm_goods", "issues": ["END_ISSUE", "NO_ISSUE"]}, "completed",
                     id="a finished order with one ended dispute is completed by its reason"),
        pytest.param("PLACE_ORDER_SUCCESS", {"paid": False, "issues": ["END_ISSUE"]}, "pending_payment",
                     id="an unpaid order with a line dispute stays pending payment"),
    ],
)
def test_line_disputes_and_the_order_status(order_status, options, expected):
    # GIVEN an order in this status whose lines carry these dispute states WHEN normalized
    # THEN the disputes decide the canonical status as the module documents
    assert status_of(order_status, **options) == expected


# The pay time every case below carries: the synthetic paid order's, in the list and in the detail.
PAID_AT = "2026-03-13T09:11:30Z"


def with_payment_state(order_status: str, *, end_reason=None, funds=None, detail_funds=None, list_pay_time=True):
    """The synthetic paid order (its pay time in list and detail) changed to this status, end_reason and
    fund_status, normalized."""
    raw = paid_record()
    order = raw["order"]
    order["order_status"] = order_status
    order.pop("end_reason", None)
    if end_reason is not None:
        order["end_reason"] = end_reason
    order["fund_status"] = funds
    if detail_funds is not None:
        raw["detail"]["fund_status"] = detail_funds
    if not list_pay_time:
        del order["gmt_pay_time"]  # the detail's gmt_pay_success still says when
    return aliexpress.normalize(raw, "s")


@pytest.mark.parametrize(
    ("order_status", "options"),
    [
        pytest.param("PLACE_ORDER_SUCCESS", {"funds": "NOT_PAY"}, id="awaiting payment"),
        pytest.param("PLACE_ORDER_SUCCESS", {"funds": "WAIT_SELLER_CHECK"},
                     id="awaiting payment, as in the published list sample"),
        pytest.param("WAIT_SELLER_EXAMINE_MONEY", {"funds": "WAIT_SELLER_CHECK"}, id="seller to confirm the amount"),
        pytest.param("FINISH", {"end_reason": "buyer_cancel_notpay_order", "funds": "PAY_SUCCESS"},
                     id="closed: the buyer cancelled before paying"),
        pytest.param("FINISH", {"end_reason": "pay_timeout"}, id="closed: payment timed out"),
        pytest.param("FINISH", {"end_reason": "buyer_pay_timeout"}, id="closed: the buyer's payment timed out"),
        pytest.param("FINISH", {"end_reason": "trade_close", "funds": "NOT_PAY"}, id="closed with funds NOT_PAY"),
        pytest.param("IN_CANCEL", {"funds": "NOT_PAY"}, id="cancel requested with funds NOT_PAY"),
        pytest.param("FINISH", {"end_reason": "trade_close", "detail_funds": "NOT_PAY"},
                     id="funds NOT_PAY in the detail only"),
    ],
)
def test_an_order_never_paid_has_no_paid_at_whatever_pay_time_the_payload_carries(order_status, options):
    # GIVEN an order the buyer never paid whose list and detail still carry a pay time (AliExpress'
    # published samples of both calls fill gmt_pay_time / gmt_pay_success on unpaid orders) WHEN normalized
    order = with_payment_state(order_status, **options)
    # THEN it has no payment time
    assert order.paid_at is None


@pytest.mark.parametrize(
    ("order_status", "options", "status"),
    [
        pytest.param("FINISH", {"end_reason": "buyer_cancel_order", "funds": "PAY_SUCCESS"}, "cancelled",
                     id="paid, then cancelled by the buyer"),
        pytest.param("FINISH", {"end_reason": "seller_send_goods_timeout", "funds": "PAY_SUCCESS"}, "cancelled",
                     id="paid, then closed unsent"),
        pytest.param("FINISH", {"end_reason": "seller_accept_issue_no_goods_return", "funds": "PAY_SUCCESS"}, "refunded",
                     id="paid, then refunded after a dispute"),
        pytest.param("IN_CANCEL", {"funds": "PAY_SUCCESS"}, "refunding", id="paid, cancellation requested"),
        pytest.param("FINISH", {"end_reason": "buyer_cancel_order", "funds": "PAY_SUCCESS", "list_pay_time": False},
                     "cancelled", id="paid, then cancelled: the pay time from the detail"),
        pytest.param("FINISH", {"end_reason": "buyer_cancel_order"}, "cancelled",
                     id="paid, then cancelled: no fund_status given"),
    ],
)
def test_an_order_paid_then_cancelled_or_refunded_keeps_its_paid_at(order_status, options, status):
    # GIVEN a paid order (the payload shows the payment) cancelled or refunded afterwards WHEN normalized
    order = with_payment_state(order_status, **options)
    # THEN its status says so and it keeps the time it was paid
    assert order.status.value == status
    assert order.paid_at == PAID_AT


def test_plain_address_is_kept_unencrypted_and_uk_becomes_gb():
    raw = paid_record()
    raw["detail"]["receipt_address"]["country"] = "UK"
    ship_to = aliexpress.normalize(raw, "s").ship_to
    assert ship_to.country == "GB" and ship_to.encrypted is False and ship_to.address_handle is None


def test_the_buyer_falls_back_to_the_detail_login_id():
    raw = paid_record()
    del raw["order"]["buyer_login_id"]
    assert aliexpress.normalize(raw, "s").buyer_id == "hk1288345kwl"


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (lambda o: o["product_list"]["order_product_dto"][0].update(product_count="two"),
         "order.product_list.order_product_dto[0].product_count"),
        (lambda o: o["product_list"]["order_product_dto"][0].pop("product_count"),
         "order.product_list.order_product_dto[0].product_count"),
        (lambda o: o["product_list"]["order_product_dto"][0]["product_unit_price"].update(amount="N/A"),
         "order.product_list.order_product_dto[0].product_unit_price.amount"),
        (lambda o: o["pay_amount"].update(amount=41.97), "order.pay_amount.amount"),
        (lambda o: o.update(order_status="SOMETHING_NEW"), "order.order_status"),
        (lambda o: o.pop("order_status"), "order.order_status"),
        (lambda o: o.update(gmt_update="2026/03/13 02:11"), "order.gmt_update"),
        (lambda o: o.update(product_list={"order_product_dto": "nope"}), "order.product_list.order_product_dto"),
    ],
)
def test_a_malformed_order_is_rejected_with_the_field_named_and_its_id_kept(breakage, field):
    # GIVEN an order broken in one field
    raw = paid_record()
    breakage(raw["order"])
    # WHEN normalized THEN the error names the field and keeps the id for the quarantine
    error = refused(aliexpress, raw)
    assert field in error.reason
    assert error.channel_order_id == "8190442233115566"


def test_a_file_that_is_not_an_aliexpress_response_is_refused():
    with pytest.raises(ValueError, match="AliExpress file"):
        aliexpress.split_response({"getOrders": {}})
