"""Douyin Shop normalizer: every field of the synthetic order.searchList response, an order in the shape
of the official documentation sample (plain receiver fields, its own values here), exact 19-digit ids,
epoch-second times, fen amounts, each status mapping, refunds per line, ciphertext and malformed input."""

import copy
import json
from decimal import Decimal

import pytest
from oms.normalizers import douyin

from tests.unit.normalize_helpers import (
    refused,
    synthetic_document,
    synthetic_record,
    synthetic_records,
)


def awaiting_shipment() -> dict:
    return synthetic_record(douyin, 0)


def with_refunds(raw: dict, *refund_statuses: int) -> dict:
    """The order with one line per refund status (copies of its first line, fresh line ids)."""
    template = raw["sku_order_list"][0]
    lines = []
    for index, refund in enumerate(refund_statuses):
        line = copy.deepcopy(template)
        line["order_id"] = f"{raw['order_id'][:-1]}{index + 1}"
        line["after_sale_info"] = {"after_sale_status": 12 if refund == 3 else 6 if refund else 0,
                                   "after_sale_type": 2 if refund else 0, "refund_status": refund}
        lines.append(line)
    return {**raw, "sku_order_list": lines}


# Hand-derived from douyin_synthetic.json: epoch seconds as UTC, fen / 100.
EXPECTED = [
    {
        "order_key": "douyin#dy-shop#6930587412369854210",
        "channel": "douyin",
        "shop_id": "dy-shop",
        "channel_order_id": "6930587412369854210",
        "status": "paid",
        "channel_status": "2",
        "buyer_id": "#9Yx1VbRkPq3Zt0LmW8aFhC2uJnE5sD7gK4oQ6iTzXcB1vN3mA=",
        "currency": "CNY",
        "total": "118.60",
        "lines": [
            {"line_id": "6930587412369854211", "sku": "1765432109876", "seller_sku": "HG-DL-500",
             "quantity": 2, "unit_price": "39.90"},
            {"line_id": "6930587412369854212", "sku": "1765432109999", "seller_sku": "HG-ZL-300",
             "quantity": 4, "unit_price": "12.20"},
        ],
        "ship_to": {"country": "CN", "province": "重庆市", "city": "重庆市", "district": "渝中区",
                    "address": "##dGVzdC1hZGRyLWNpcGhlcg==##4##", "postal_code": None,
                    "name": "#dGVzdC1yZWNlaXZlci1jaXBoZXI=#4#", "phone": "$138$dGVzdC10ZWwtY2lwaGVy$4$",
                    "encrypted": True},
        "created_at": "2026-03-14T03:05:00Z",
        "paid_at": "2026-03-14T03:05:32Z",
        "updated_at": "2026-03-14T03:05:33Z",
    },
    {
        "order_key": "douyin#dy-shop#6930512233445566778",
        "channel": "douyin",
        "shop_id": "dy-shop",
        "channel_order_id": "6930512233445566778",
        "status": "refunded",
        "channel_status": "4",
        "buyer_id": "#2Kd8PqWz7Lx0Vb3NnRt5Yc1Hm9GfS4jA6eU0oI2kT7wQ5rZ=",
        "currency": "CNY",
        "total": "39.90",
        "lines": [
            {"line_id": "6930512233445566779", "sku": "1765432109876", "seller_sku": "HG-DL-500",
             "quantity": 1, "unit_price": "39.90"},
        ],
        "ship_to": {"country": "CN", "province": "湖北省", "city": "武汉市", "district": "洪山区",
                    "address": "##dGVzdC1hZGRyLTI=##4##", "postal_code": None,
                    "name": "#dGVzdC1yZWNlaXZlci0y#4#", "phone": "$139$dGVzdC10ZWwtMg==$4$", "encrypted": True},
        "created_at": "2026-03-13T05:50:00Z",
        "paid_at": "2026-03-13T05:50:45Z",
        "updated_at": "2026-03-13T09:20:00Z",
    },
    {
        "order_key": "douyin#dy-shop#6930433221100998877",
        "channel": "douyin",
        "shop_id": "dy-shop",
        "channel_order_id": "6930433221100998877",
        "status": "shipped",
        "channel_status": "3",
        "buyer_id": "#7Hs3LkPo9Qw2Ez5Xc8Vb1Nm4Jh6Gf0Ds3Aa7Sd9Fg2Hj4Kl=",
        "currency": "CNY",
        "total": "24.40",
        "lines": [
            {"line_id": "6930433221100998878", "sku": "1765432109999", "seller_sku": "HG-ZL-300",
             "quantity": 2, "unit_price": "12.20"},
        ],
        "ship_to": {"country": "CN", "province": "广西壮族自治区", "city": "南宁市", "district": "青秀区",
                    "address": "##dGVzdC1hZGRyLTM=##4##", "postal_code": None,
                    "name": "#dGVzdC1yZWNlaXZlci0z#4#", "phone": "$186$dGVzdC10ZWwtMw==$4$", "encrypted": True},
        "created_at": "2026-03-12T04:33:20Z",
        "paid_at": "2026-03-12T04:33:40Z",
        "updated_at": "2026-03-12T21:13:20Z",
    },
]


# The official order.searchList documentation sample is the `data` object only (no envelope); its
# receiver fields are plain, amounts fen, ids strings except the numeric product/sku ids. Our values.
OFFICIAL_SHAPE_DATA = json.loads("""
{
  "page": 0, "total": 1, "size": 20,
  "shop_order_list": [{
    "shop_id": 41022, "shop_name": "青禾茶舍", "open_id": "77812345",
    "order_id": "4812093376541200871", "order_level": 2, "biz": 2, "biz_desc": "小店",
    "order_type": 0, "order_type_desc": "普通订单", "trade_type": 0, "trade_type_desc": "普通",
    "order_status": 3, "order_status_desc": "已发货", "main_status": 3, "main_status_desc": "已发货",
    "pay_time": 1650000100, "order_expire_time": 1800, "finish_time": 0,
    "create_time": 1650000000, "update_time": 1650086400, "cancel_reason": "",
    "buyer_words": "尽快发货", "seller_words": "", "b_type": 2, "b_type_desc": "抖音",
    "sub_b_type": 1, "sub_b_type_desc": "app内-原生", "app_id": 0, "pay_type": 1,
    "channel_payment_no": "PAY20220415000001", "order_amount": 5980, "pay_amount": 5480,
    "post_amount": 500, "post_insurance_amount": 0, "modify_amount": 0, "modify_post_amount": 0,
    "promotion_amount": 1000, "promotion_shop_amount": 1000, "promotion_platform_amount": 0,
    "shop_cost_amount": 1000, "platform_cost_amount": 0, "promotion_talent_amount": 0,
    "promotion_pay_amount": 0, "post_tel": "13900001111", "post_receiver": "李雷",
    "post_addr": {"province": {"name": "浙江省", "id": "330000"}, "city": {"name": "杭州市", "id": "330100"},
                  "town": {"name": "西湖区", "id": "330106"}, "street": {"name": "灵隐街道", "id": "330106004"},
                  "detail": "龙井路18号"},
    "exp_ship_time": 1650172800, "ship_time": 1650086400,
    "logistics_info": [{"tracking_no": "YT1234567890", "company": "yuantong", "ship_time": 1650086400,
                        "delivery_id": "yuantong_YT1234567890", "company_name": "圆通",
                        "product_info": [{"product_name": "龙井 250g", "price": 2990, "outer_sku_id": "LJ-250",
                                          "sku_id": 1748800001, "sku_specs": [{"name": "规格", "value": "250g"}],
                                          "product_count": 2, "product_id": 3512345678901234567,
                                          "sku_order_id": "4812093376541200872"}]}],
    "sku_order_list": [{
      "order_id": "4812093376541200872", "parent_order_id": "4812093376541200871", "order_level": 3,
      "biz": 2, "biz_desc": "小店", "order_type": 0, "order_type_desc": "普通订单", "trade_type": 0,
      "trade_type_desc": "普通", "order_status": 3, "order_status_desc": "已发货", "main_status": 3,
      "main_status_desc": "已发货", "pay_time": 1650000100, "order_expire_time": 1800, "finish_time": 0,
      "create_time": 1650000000, "update_time": 1650086400, "cancel_reason": "", "b_type": 2,
      "b_type_desc": "抖音", "sub_b_type": 1, "sub_b_type_desc": "app内-原生", "send_pay": 0,
      "send_pay_desc": "", "author_id": 0, "author_name": "", "theme_type": "0", "theme_type_desc": "",
      "app_id": 0, "room_id": 0, "content_id": "0", "video_id": "0", "origin_id": "0", "cid": 0, "c_biz": 0,
      "c_biz_desc": "", "page_id": 0, "pay_type": 1, "channel_payment_no": "PAY20220415000001",
      "order_amount": 5980, "pay_amount": 5480, "post_insurance_amount": 0, "modify_amount": 0,
      "modify_post_amount": 0, "promotion_amount": 1000, "promotion_shop_amount": 1000,
      "promotion_platform_amount": 0, "shop_cost_amount": 1000, "platform_cost_amount": 0,
      "promotion_talent_amount": 0, "promotion_pay_amount": 0, "code": "LJ-250-CODE",
      "post_tel": "13900001111", "post_receiver": "李雷",
      "post_addr": {"province": {"name": "浙江省", "id": "330000"}, "city": {"name": "杭州市", "id": "330100"},
                    "town": {"name": "西湖区", "id": "330106"}, "street": {"name": "灵隐街道", "id": "330106004"},
                    "detail": "龙井路18号"},
      "exp_ship_time": 1650172800, "ship_time": 1650086400, "logistics_receipt_time": 0,
      "confirm_receipt_time": 0, "goods_type": 0, "product_id": 3512345678901234567, "sku_id": 1748800001,
      "spec": [{"name": "规格", "value": "250g"}], "first_cid": 20005, "second_cid": 20174,
      "third_cid": 20175, "fourth_cid": 0, "out_sku_id": "LJ-250", "supplier_id": "",
      "out_product_id": "LJ", "warehouse_ids": [], "out_warehouse_ids": [], "inventory_type": "",
      "inventory_type_desc": "", "reduce_stock_type": 1, "reduce_stock_type_desc": "下单减库存",
      "origin_amount": 2990, "has_tax": false, "item_num": 2, "sum_amount": 5980, "source_platform": "",
      "product_pic": "https://example.invalid/lj.jpg", "is_comment": 0, "product_name": "龙井 250g",
      "inventory_list": [], "post_amount": 500, "pre_sale_type": 0,
      "after_sale_info": {"after_sale_status": 6, "after_sale_type": 0, "refund_status": 1}
    }],
    "seller_remark_stars": 0, "order_phase_list": [],
    "doudian_open_id": "#Qm9vazJ0ZXN0LW9wZW4taWQ=#"
  }]
}
""")


@pytest.mark.parametrize("index", range(3))
def test_each_synthetic_order_normalizes_field_by_field(index):
    # GIVEN the synthetic response's orders WHEN normalized for one shop
    order = douyin.normalize(synthetic_records(douyin)[index], "dy-shop")
    # THEN every contract field is exactly the hand-derived value
    assert order.contract_dict() == EXPECTED[index]


def test_the_official_documentation_shape_normalizes_with_plain_receiver_data():
    # GIVEN the documentation sample's shape: `data` only, plain receiver fields, a line in refund
    records = douyin.split_response(OFFICIAL_SHAPE_DATA)
    assert len(records) == 1
    # WHEN normalized
    order = douyin.normalize(records[0], "doc")
    # THEN ids stay exact strings, fen become yuan, times become UTC
    assert order.channel_order_id == "4812093376541200871"
    assert order.total == Decimal("54.80")
    assert [line.model_dump(mode="json") for line in order.lines] == [
        {"line_id": "4812093376541200872", "sku": "1748800001", "seller_sku": "LJ-250", "quantity": 2,
         "unit_price": "29.90"},
    ]
    assert (order.created_at, order.paid_at, order.updated_at) == (
        "2022-04-15T05:20:00Z", "2022-04-15T05:21:40Z", "2022-04-16T05:20:00Z")
    # AND the shipped order with a refund awaiting payout is refunding; the raw status is kept
    assert order.status.value == "refunding" and order.channel_status == "3"
    # AND the plain receiver is kept as plain (not encrypted), with no address handle to invent
    assert order.ship_to.model_dump() == {
        "country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区", "address": "龙井路18号",
        "postal_code": None, "name": "李雷", "phone": "13900001111", "encrypted": False, "address_handle": None,
    }
    assert order.buyer_id == "#Qm9vazJ0ZXN0LW9wZW4taWQ=#"


def test_the_envelope_and_its_data_object_split_alike():
    document = synthetic_document("douyin")
    assert douyin.split_response(document) == douyin.split_response(document["data"])
    assert douyin.split_response({"code": 10000, "data": {"page": 0, "size": 100, "total": 0}}) == []
    with pytest.raises(ValueError, match="shop_order_list"):
        douyin.split_response({"code": 10000, "data": {"orders": []}})


def test_a_nineteen_digit_id_sent_as_a_json_integer_keeps_every_digit():
    # GIVEN an order whose ids arrive as JSON integers beyond 2**53
    raw = awaiting_shipment()
    text = json.dumps(raw).replace('"order_id": "6930587412369854210"', '"order_id": 6930587412369854219')
    raw = json.loads(text)
    # WHEN normalized THEN the id is exactly the digits sent
    assert douyin.normalize(raw, "s").channel_order_id == "6930587412369854219"
    assert douyin.order_id_of(raw) == "6930587412369854219"


def test_epoch_seconds_are_utc_whatever_the_beijing_wall_clock_says():
    # GIVEN an order created at 2026-03-14 00:30 Beijing time (GMT+8)
    raw = {**awaiting_shipment(), "create_time": 1773419400, "pay_time": 0, "order_status": 1,
           "update_time": 1773419400}
    order = douyin.normalize(raw, "s")
    # THEN it is the previous day in UTC, and an unpaid order has no payment time
    assert order.created_at == "2026-03-13T16:30:00Z"
    assert order.paid_at is None and order.status.value == "pending_payment"


@pytest.mark.parametrize(
    ("order_status", "refunds", "status", "paid_at"),
    [
        pytest.param(1, (0, 0), "pending_payment", None, id="awaiting payment: no payment time, whatever pay_time says"),
        pytest.param(4, (3, 3), "refunded", "2026-03-14T03:05:32Z", id="paid, cancelled and refunded: keeps it"),
        pytest.param(4, (0, 0), "cancelled", "2026-03-14T03:05:32Z", id="cancelled, a payment shown: keeps it"),
    ],
)
def test_paid_at_is_the_pay_time_unless_the_order_awaits_payment(order_status, refunds, status, paid_at):
    # GIVEN the order (pay_time 1773457532 in the payload) in this status, with these line refunds
    raw = with_refunds({**awaiting_shipment(), "order_status": order_status}, *refunds)
    # WHEN normalized
    order = douyin.normalize(raw, "s")
    # THEN only an order past payment has a payment time
    assert order.status.value == status
    assert order.paid_at == paid_at


def test_fen_amounts_become_exact_yuan():
    raw = awaiting_shipment()
    raw["pay_amount"], raw["sku_order_list"][0]["origin_amount"] = 1, 100005
    order = douyin.normalize(raw, "s")
    assert order.total == Decimal("0.01") and order.lines[0].unit_price == Decimal("1000.05")
    assert order.contract_dict()["total"] == "0.01"


@pytest.mark.parametrize(
    ("order_status", "expected"),
    [(1, "pending_payment"), (105, "paid"), (2, "paid"), (101, "shipped"), (3, "shipped"), (5, "completed"),
     (4, "cancelled")],
)
def test_each_order_status_maps_to_its_canonical_status(order_status, expected):
    raw = {**awaiting_shipment(), "order_status": order_status}
    order = douyin.normalize(raw, "s")
    assert order.status.value == expected and order.channel_status == str(order_status)


@pytest.mark.parametrize(
    ("refunds", "order_status", "expected"),
    [
        ((3, 3), 4, "refunded"),  # a cancelled order refunded in full
        ((3, 3), 5, "refunded"),  # a completed order returned and refunded in full
        ((3, 0), 5, "refunding"),  # one of two lines refunded: partly refunded
        ((1, 0), 2, "refunding"),  # a refund awaiting payout
        ((2, 0), 3, "refunding"),  # a refund being paid out on a shipped order
        ((4, 0), 3, "shipped"),  # a failed refund gave nothing back
        ((5, 0), 5, "completed"),  # a clawback is not a refund to the buyer
        ((0, 0), 4, "cancelled"),  # cancelled before payment: nothing to refund
    ],
)
def test_refunds_are_read_per_line(refunds, order_status, expected):
    raw = with_refunds({**awaiting_shipment(), "order_status": order_status}, *refunds)
    assert douyin.normalize(raw, "s").status.value == expected


def test_ciphertext_is_kept_as_received_and_never_replaced_by_the_masks():
    order = douyin.normalize(awaiting_shipment(), "s")
    assert order.ship_to.encrypted is True
    assert order.ship_to.name == "#dGVzdC1yZWNlaXZlci1jaXBoZXI=#4#" and order.ship_to.name != "周*"
    # The detail cipher is the address handle when no open address id is sent
    assert order.ship_to.address_handle == "##dGVzdC1hZGRyLWNpcGhlcg==##4##"
    assert "address_handle" not in order.contract_dict()["ship_to"]


def test_an_open_address_id_is_the_address_handle_when_the_platform_sends_one():
    raw = {**awaiting_shipment(), "open_address_id": "oaid-7f3e21"}
    assert douyin.normalize(raw, "s").ship_to.address_handle == "oaid-7f3e21"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda raw: raw["sku_order_list"][0].update(item_num="两件"), "sku_order_list[0].item_num"),
        (lambda raw: raw["sku_order_list"][0].pop("item_num"), "sku_order_list[0].item_num"),
        (lambda raw: raw["sku_order_list"][0].update(origin_amount="39.90"), "sku_order_list[0].origin_amount"),
        (lambda raw: raw["sku_order_list"][0].update(item_num=-1), "sku_order_list[0].item_num"),
        (lambda raw: raw["sku_order_list"][1].pop("order_id"), "sku_order_list[1].order_id"),
        (lambda raw: raw.update(pay_amount=118.6), "pay_amount"),
        (lambda raw: raw.update(order_status=9), "order_status"),
        (lambda raw: raw.update(update_time=0), "update_time"),
        (lambda raw: raw.update(sku_order_list={"order_id": "1"}), "sku_order_list"),
        (lambda raw: raw["sku_order_list"][0]["after_sale_info"].update(refund_status=99),
         "sku_order_list[0].after_sale_info.refund_status"),
        (lambda raw: raw.update(post_addr="重庆市"), "post_addr"),
    ],
)
def test_malformed_payloads_are_rejected_with_a_reason_naming_the_field(change, field):
    # GIVEN an otherwise valid order with one broken field
    raw = awaiting_shipment()
    change(raw)
    # WHEN normalized THEN it is refused with the field named and the order id kept for quarantine
    error = refused(douyin, raw)
    assert field in error.reason
    assert error.channel_order_id == "6930587412369854210"
