"""PDD normalizer: every field of the synthetic increment response, an order in the full documented
field inventory (the shape of the held-back official example, our own values), exact ids, GMT+8
times, yuan amounts sent as JSON numbers, each status mapping, refunds, ciphertext and malformed input."""

import pytest
from oms.normalizers import pdd

from tests.unit.normalize_helpers import refused, synthetic_record, synthetic_records


def awaiting_shipment() -> dict:
    return synthetic_record(pdd, 0)


# Hand-derived from pdd_synthetic.json: GMT+8 times minus 8 hours, amounts as sent.
EXPECTED = [
    {
        "order_key": "pdd#pdd-shop#260314-517384962018445",
        "channel": "pdd",
        "shop_id": "pdd-shop",
        "channel_order_id": "260314-517384962018445",
        "status": "paid",
        "channel_status": "order_status=1,refund_status=1,confirm_status=1",
        "buyer_id": None,
        "currency": "CNY",
        "total": "156.8",
        "lines": [
            {"line_id": "1300987654321", "sku": "1300987654321", "seller_sku": "PDD-MUG-01-WHT",
             "quantity": 2, "unit_price": "39.9"},
            {"line_id": "1300987659999", "sku": "1300987659999", "seller_sku": "PDD-TEA-02-250G",
             "quantity": 1, "unit_price": "90.0"},
        ],
        "ship_to": {
            "country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
            "address": "~AgAAAAJp0dZ2E1q9Rr8mQkYv3xKZ7Tc=~0~", "postal_code": None,
            "name": "~AgAAAAJp0dZ2CkW4nq8lJvVUXy0=~0~", "phone": "$138$a2h1V1BNb2x6eHE9$0$", "encrypted": True,
        },
        "created_at": "2026-03-14T03:19:41Z",
        "paid_at": "2026-03-14T03:20:05Z",
        "updated_at": "2026-03-14T03:20:06Z",
    },
    {
        "order_key": "pdd#pdd-shop#260313-284756193847562",
        "channel": "pdd",
        "shop_id": "pdd-shop",
        "channel_order_id": "260313-284756193847562",
        "status": "refunded",
        "channel_status": "order_status=1,refund_status=4,confirm_status=1",
        "buyer_id": None,
        "currency": "CNY",
        "total": "49.9",
        "lines": [
            {"line_id": "1300987661234", "sku": "1300987661234", "seller_sku": "PDD-TWL-03-BLU",
             "quantity": 1, "unit_price": "49.9"},
        ],
        "ship_to": {
            "country": "CN", "province": "四川省", "city": "成都市", "district": "武侯区",
            "address": "天府大道***号", "postal_code": None, "name": "陈*", "phone": "159****0021", "encrypted": True,
        },
        "created_at": "2026-03-13T12:02:10Z",
        "paid_at": "2026-03-13T12:02:33Z",
        "updated_at": "2026-03-14T00:41:19Z",
    },
    {
        "order_key": "pdd#pdd-shop#260312-938475610293847",
        "channel": "pdd",
        "shop_id": "pdd-shop",
        "channel_order_id": "260312-938475610293847",
        "status": "shipped",
        "channel_status": "order_status=2,refund_status=1,confirm_status=1",
        "buyer_id": None,
        "currency": "CNY",
        "total": "23.8",
        "lines": [
            {"line_id": "1300987670001", "sku": "1300987670001", "seller_sku": "PDD-PEN-04-10P",
             "quantity": 2, "unit_price": "12.9"},
        ],
        "ship_to": {
            "country": "CN", "province": "黑龙江省", "city": "哈尔滨市", "district": "南岗区",
            "address": "西大直街***号", "postal_code": None, "name": "赵**", "phone": "187****3366", "encrypted": True,
        },
        "created_at": "2026-03-12T01:30:02Z",
        "paid_at": "2026-03-12T01:30:20Z",
        "updated_at": "2026-03-13T06:22:47Z",
    },
]


def test_every_synthetic_order_normalizes_field_by_field():
    # WHEN the synthetic response is split and each order normalized
    orders = [pdd.normalize(raw, "pdd-shop").contract_dict() for raw in synthetic_records(pdd)]
    # THEN each matches the hand-derived contract form exactly
    assert orders == EXPECTED


def test_the_open_address_id_is_kept_as_the_address_handle_off_the_contract():
    order = pdd.normalize(awaiting_shipment(), "pdd-shop")
    assert order.ship_to.address_handle == "5c1f0e7b8a9d4e21b3c6"
    assert "address_handle" not in order.contract_dict()["ship_to"]
    assert order.stored_dict()["ship_to"]["address_handle"] == "5c1f0e7b8a9d4e21b3c6"


# ---- the documented field inventory (shape of the held-back official example) ------------------

def inventory_order() -> dict:
    """One `order_sn_list` element with every field the open-pdd OrderSn model documents, typed as
    the SDKs type them (money f64, ids i64, enums i32, times text, nested lists and objects)."""
    return {
        "address": "~AgAAAAPq8d0Cipher1==~1~", "address_mask": "广东省深圳市南山区科苑路**号",
        "after_sales_status": 0, "bonded_warehouse": "", "buyer_memo": "请尽快发货",
        "capital_free_discount": 0.0, "card_info_list": [], "cat_id_1": 15, "cat_id_2": 16, "cat_id_3": 17,
        "cat_id_4": 0, "city": "深圳市", "city_id": 77, "confirm_status": 1, "confirm_time": "2026-11-11 00:00:31",
        "consolidate_info": {"consolidate_type": 0}, "country": "中国", "country_id": 1,
        "created_time": "2026-11-11 00:00:12", "delivery_home_value": 0.0, "delivery_install_value": 0.0,
        "delivery_one_day": 0, "discount_amount": 15.5, "duo_duo_pay_reduction": 0.0, "duoduo_wholesale": 0,
        "extra_delivery_list": [], "free_sf": 0, "gift_delivery_list": [], "gift_list": [],
        "goods_amount": 299.0, "group_order_id": 9223372036854770001, "group_role": 0, "group_status": 1,
        "home_delivery_type": 0, "home_install_value": 0.0, "inner_transaction_id": "", "invoice_status": 0,
        "is_lucky_flag": 1, "is_pre_sale": 0, "is_stock_out": 0,
        "item_list": [
            {"goods_count": 1, "goods_id": 688123456789012, "goods_img": "https://img.pddpic.com/x.jpeg",
             "goods_name": "电热水壶 1.7L", "goods_price": 299.0, "goods_spec": "白色",
             "outer_goods_id": "KETTLE", "outer_id": "KETTLE-17-WHT", "sku_id": 1234567890123456789},
        ],
        "last_ship_time": "2026-11-13 00:00:31", "logistics_id": 0, "mkt_biz_type": 0,
        "only_support_replace": 0, "open_address_id": "f3e2d1c0b9a8978685746352", "order_change_amount": 0.0,
        "order_depot_info": {"depot_code": "", "depot_id": "", "depot_name": "", "depot_type": 0, "ware_id": "",
                             "ware_name": "", "ware_sn": "", "ware_sub_info_list": [], "ware_type": 0},
        "order_sn": "261111-123456789012345", "order_status": 1,
        "order_tag_list": [{"name": "free_sf", "value": 0}], "pay_amount": 283.5, "pay_no": "420000000020261111",
        "pay_time": "2026-11-11 00:00:31", "pay_type": "WEIXIN", "platform_discount": 10.0, "postage": 0.0,
        "pre_sale_time": "", "promise_delivery_time": "",
        "promotion_detail_list": [{"discount_amount": 10.0, "promotion_type": 1}],
        "province": "广东省", "province_id": 6, "receive_time": "",
        "receiver_address": "~AgAAAAPq8d0Cipher2==~1~", "receiver_address_mask": "科苑路**号",
        "receiver_name": "~AgAAAAPq8d0Cipher3==~1~", "receiver_name_mask": "李*",
        "receiver_phone": "$138$Cipher4==$1$", "receiver_phone_mask": "138****0000",
        "refund_status": 1, "remark": "", "remark_tag": 0, "remark_tag_name": "", "resend_delivery_list": [],
        "return_freight_payer": 0, "risk_control_status": 0, "self_contained": 0, "seller_discount": 5.5,
        "service_fee_detail": [], "ship_additional_link_order": "", "ship_additional_origin_order": "",
        "shipping_time": "", "shipping_type": 0, "step_order_info": None, "stock_out_handle_status": -1,
        "support_nationwide_warranty": 0, "town": "南山区", "town_id": 700, "tracking_number": "",
        "trade_type": 0, "updated_at": "2026-11-11 00:00:32", "urge_shipping_time": "", "yyps_date": "",
        "yyps_time": "",
    }


def test_an_order_in_the_documented_field_inventory_normalizes():
    # GIVEN a response in the documented shape (with has_next, total_count) around one full order
    document = {"order_sn_increment_get_response": {"total_count": 1, "has_next": False,
                                                    "order_sn_list": [inventory_order()]}}
    # WHEN split and normalized
    [raw] = pdd.split_response(document)
    order = pdd.normalize(raw, "shop-9").contract_dict()
    # THEN every contract field is read from it
    assert order["channel_order_id"] == "261111-123456789012345"
    assert order["status"] == "paid" and order["total"] == "283.5" and order["currency"] == "CNY"
    assert order["lines"] == [{"line_id": "1234567890123456789", "sku": "1234567890123456789",
                               "seller_sku": "KETTLE-17-WHT", "quantity": 1, "unit_price": "299.0"}]
    assert order["created_at"] == "2026-11-10T16:00:12Z" and order["updated_at"] == "2026-11-10T16:00:32Z"
    assert order["ship_to"]["encrypted"] is True and order["ship_to"]["address"] == "~AgAAAAPq8d0Cipher2==~1~"


def test_an_empty_window_response_has_no_orders():
    assert pdd.split_response({"order_sn_increment_get_response": {"total_count": 0, "order_sn_list": []}}) == []
    assert pdd.split_response({"order_sn_increment_get_response": {"has_next": False}}) == []


def test_an_error_envelope_is_not_a_response_of_orders():
    with pytest.raises(ValueError, match="order_sn_list"):
        pdd.split_response({"error_response": {"error_code": 52101, "error_msg": "当前接口被限流"}})


# ---- ids, time zone, money ---------------------------------------------------------------------

def test_nineteen_digit_sku_ids_stay_exact_and_floats_are_refused():
    # GIVEN a sku id above 2**53, as a JSON integer (exact in Python)
    raw = awaiting_shipment()
    raw["item_list"][0]["sku_id"] = 9007199254740993123
    # THEN every digit is kept
    assert pdd.normalize(raw, "s").lines[0].sku == "9007199254740993123"
    # AND a float (digits already lost) is malformed, naming the field
    raw["item_list"][0]["sku_id"] = 9.007199254740993e18
    refused(pdd, raw, match=r"item_list\[0\]\.sku_id")


def test_order_sn_is_kept_as_text():
    raw = awaiting_shipment()
    raw["order_sn"] = "260314-999999999999999"
    assert pdd.normalize(raw, "s").channel_order_id == "260314-999999999999999"


def test_gmt8_midnight_becomes_the_previous_utc_day():
    raw = awaiting_shipment()
    raw["updated_at"] = "2026-01-01 00:00:00"
    assert pdd.normalize(raw, "s").updated_at == "2025-12-31T16:00:00Z"


def test_yuan_amounts_are_exact_decimals_whether_numbers_or_strings():
    raw = awaiting_shipment()
    raw["pay_amount"], raw["item_list"][0]["goods_price"] = 0.1, "19.99"
    order = pdd.normalize(raw, "s").contract_dict()
    assert order["total"] == "0.1" and order["lines"][0]["unit_price"] == "19.99"


# ---- statuses and refunds ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "order_status, refund_status, confirm_status, after_sales_status, expected",
    [
        (1, 1, 1, 0, "paid"),
        (2, 1, 1, 0, "shipped"),
        (3, 1, 1, 0, "completed"),
        (1, 1, 0, 0, "pending_payment"),  # group not formed yet
        (1, 1, 2, 0, "cancelled"),
        (1, 4, 1, 10, "refunded"),  # every line refunded before shipment
        (3, 4, 1, 10, "refunded"),  # returned and refunded after receipt
        (1, 2, 1, 2, "refunding"),  # buyer asked for a refund, seller to decide
        (2, 3, 1, 5, "refunding"),  # platform agreed, money on its way
        (2, 2, 1, 14, "shipped"),  # an exchange re-send refunds nothing
        (3, 2, 1, 21, "completed"),  # a repair refunds nothing
        (2, 1, 1, 9, "shipped"),  # refund refused and closed
    ],
)
def test_each_status_mapping(order_status, refund_status, confirm_status, after_sales_status, expected):
    raw = awaiting_shipment()
    raw.update(order_status=order_status, refund_status=refund_status, confirm_status=confirm_status,
               after_sales_status=after_sales_status)
    order = pdd.normalize(raw, "s")
    assert order.status.value == expected
    assert order.channel_status == (
        f"order_status={order_status},refund_status={refund_status},confirm_status={confirm_status}")


def test_a_pending_order_has_no_payment_time():
    raw = awaiting_shipment()
    raw["confirm_status"] = 0
    assert pdd.normalize(raw, "s").paid_at is None


def test_a_refund_covers_every_line_of_a_multi_line_order():
    # GIVEN the two-line order refunded in full
    raw = awaiting_shipment()
    raw.update(refund_status=4, after_sales_status=10)
    order = pdd.normalize(raw, "s")
    # THEN the order is refunded and still lists both lines (the refund is order-level on PDD)
    assert order.status.value == "refunded" and len(order.lines) == 2


@pytest.mark.parametrize("field, value", [("order_status", 0), ("refund_status", 5), ("confirm_status", 7)])
def test_unknown_status_values_are_malformed_naming_the_field(field, value):
    raw = awaiting_shipment()
    raw[field] = value
    error = refused(pdd, raw, match=f"{field}: unknown value {value}")
    assert error.channel_order_id == "260314-517384962018445"


# ---- receiver data -----------------------------------------------------------------------------

def test_ciphertext_is_kept_as_received_while_awaiting_shipment():
    ship_to = pdd.normalize(awaiting_shipment(), "s").ship_to
    assert ship_to.name == "~AgAAAAJp0dZ2CkW4nq8lJvVUXy0=~0~" and ship_to.phone == "$138$a2h1V1BNb2x6eHE9$0$"
    assert ship_to.encrypted is True


def test_without_ciphertext_the_masked_values_are_kept_and_still_marked_protected():
    raw = awaiting_shipment()
    for key in ("receiver_name", "receiver_phone", "receiver_address", "address"):
        raw[key] = ""
    ship_to = pdd.normalize(raw, "s").ship_to
    assert (ship_to.name, ship_to.phone, ship_to.address) == ("王**", "138****5678", "文一西路***号")
    assert ship_to.encrypted is True


def test_a_duplicated_sku_in_one_order_gets_distinct_line_ids():
    raw = awaiting_shipment()
    raw["item_list"][1]["sku_id"] = raw["item_list"][0]["sku_id"]
    lines = pdd.normalize(raw, "s").lines
    assert [line.line_id for line in lines] == ["1300987654321", "1300987654321#1"]


# ---- malformed payloads ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "change, field",
    [
        (lambda raw: raw["item_list"][0].update(goods_count="two"), r"item_list\[0\]\.goods_count"),
        (lambda raw: raw["item_list"][0].pop("goods_count"), r"item_list\[0\]\.goods_count"),
        (lambda raw: raw["item_list"][0].update(goods_price="N/A"), r"item_list\[0\]\.goods_price"),
        (lambda raw: raw.update(pay_amount=None), "pay_amount"),
        (lambda raw: raw.update(updated_at=""), "updated_at: missing"),
        (lambda raw: raw.update(updated_at="2026/03/14 11:20"), "updated_at"),
        (lambda raw: raw.update(created_time="str"), "created_time"),
        (lambda raw: raw.update(item_list={"sku_id": 1}), "item_list"),
        (lambda raw: raw.update(order_status="shipped"), "order_status"),
    ],
)
def test_malformed_payloads_are_refused_with_the_field_named(change, field):
    raw = awaiting_shipment()
    change(raw)
    error = refused(pdd, raw, match=field)
    assert error.channel_order_id == "260314-517384962018445"

