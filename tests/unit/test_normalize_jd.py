"""JD normalizer: every field of the synthetic order search file, the shape of a real captured
orderInfo (the "official example" kind), ids, time zone, money, statuses, encryption, malformed input."""

import copy
import json

import pytest
from oms.normalizers import jd

from tests.unit.normalize_helpers import (
    refused,
    synthetic_record,
    synthetic_records,
)


def stock_out_record() -> dict:
    return synthetic_record(jd, 0)


# Hand-derived from jd_synthetic.json: GMT+8 times minus 8 hours, orderPayment as the total.
EXPECTED = [
    {
        "order_key": "jd#pop-shop#318765432109", "channel": "jd", "shop_id": "pop-shop",
        "channel_order_id": "318765432109", "status": "paid", "channel_status": "WAIT_SELLER_STOCK_OUT",
        "buyer_id": "b2QxQ2VzN0VaM3hLa0pHd0FzR3h5dz09", "currency": "CNY", "total": "468.00",
        "lines": [
            {"line_id": "100234567890", "sku": "100234567890", "seller_sku": "JD-KB-87-RED", "quantity": 1, "unit_price": "399.00"},
            {"line_id": "100234567999", "sku": "100234567999", "seller_sku": "JD-MS-01-BLK", "quantity": 1, "unit_price": "99.00"},
        ],
        "ship_to": {
            "country": "CN", "province": "北京", "city": "北京市", "district": "朝阳区",
            "address": "AAS/SAMPLECIPHERfullAddress1Hs4Jd6Kf8Lg0Ph2Qj4Rk6Sl8Tm0Un2Vo4Wp6==", "postal_code": None,
            "name": "AAS/SAMPLECIPHERfullname1Zx0yQ3Rt8Uv2Wk5Lm7Np9Bq1==", "phone": "139*******2", "encrypted": True,
        },
        "created_at": "2026-03-14T04:01:30Z", "paid_at": "2026-03-14T04:01:58Z", "updated_at": "2026-03-14T04:02:00Z",
    },
    {
        "order_key": "jd#pop-shop#318765400001", "channel": "jd", "shop_id": "pop-shop",
        "channel_order_id": "318765400001", "status": "cancelled", "channel_status": "TRADE_CANCELED",
        "buyer_id": "Wkx2N2NwRjlNcTNIc1RkR1puQjVVUT09", "currency": "CNY", "total": "129.00",
        "lines": [{"line_id": "100234568888", "sku": "100234568888", "seller_sku": "JD-HUB-7P", "quantity": 1, "unit_price": "129.00"}],
        "ship_to": {
            "country": "CN", "province": "江苏", "city": "苏州市", "district": "工业园区",
            "address": "AAS/SAMPLECIPHERfullAddress2Hs4Jd6Kf8Lg0Ph2Qj4Rk6Sl8Tm0Un2Vo4Wp6==", "postal_code": None,
            "name": "AAS/SAMPLECIPHERfullname2Zx0yQ3Rt8Uv2Wk5Lm7Np9Bq1==", "phone": "158*******6", "encrypted": True,
        },
        # 2026-03-14 07:30:11 GMT+8 is the previous day in UTC
        "created_at": "2026-03-13T11:45:02Z", "paid_at": "2026-03-13T11:45:40Z", "updated_at": "2026-03-13T23:30:11Z",
    },
    {
        "order_key": "jd#pop-shop#318765399999", "channel": "jd", "shop_id": "pop-shop",
        "channel_order_id": "318765399999", "status": "shipped", "channel_status": "WAIT_GOODS_RECEIVE_CONFIRM",
        "buyer_id": "cTNmSDhqTDJrUDlzVzR4QzF2QjduTT09", "currency": "CNY", "total": "65.00",
        "lines": [{"line_id": "100234569999", "sku": "100234569999", "seller_sku": "JD-CBL-2M", "quantity": 2, "unit_price": "29.50"}],
        "ship_to": {
            "country": "CN", "province": "内蒙古", "city": "呼和浩特市", "district": "赛罕区",
            "address": "AAS/SAMPLECIPHERfullAddress3Hs4Jd6Kf8Lg0Ph2Qj4Rk6Sl8Tm0Un2Vo4Wp6==", "postal_code": None,
            "name": "AAS/SAMPLECIPHERfullname3Zx0yQ3Rt8Uv2Wk5Lm7Np9Bq1==", "phone": "186*******9", "encrypted": True,
        },
        "created_at": "2026-03-12T00:20:15Z", "paid_at": "2026-03-12T00:20:44Z", "updated_at": "2026-03-12T09:55:03Z",
    },
]


# Our own values in the shape of a real captured orderInfo inside the search envelope (the shape
# of JD's "official example"): legacy `pin` and no privacy ids, an integer line `id`, `itemExt`
# and `sendpayMap` as JSON text, a `commission` money object, `outBoundDate` placeholder,
# `desen_telephone`, `invoiceEasyInfo` with a cipher title.
OFFICIAL_SHAPE = {
    "jingdong_pop_order_search_responce": {
        "code": "0",
        "searchorderinfo_result": {
            "apiResult": {"success": True, "englishErrCode": "", "chineseErrCode": "", "numberCode": ""},
            "orderTotal": 1,
            "orderInfoList": [{
                "orderSellerPrice": "2.50", "orderType": "22", "venderRemark": "", "flag": "",
                "orderSign": "0000000020000000000500000200", "couponDetailList": [],
                "orderId": "251234567890", "sendpayMap": "{\"34\":\"3\",\"26\":\"2\"}", "venderId": "10700001",
                "paymentConfirmTime": "2023-02-01 00:10:05", "orderStateRemark": "等待出库",
                "orderState": "WAIT_SELLER_STOCK_OUT",
                "itemInfoList": [{
                    "skuName": "（测试勿拍）竹纤维洗碗布 三条装", "itemTotal": "2", "wareId": "10031234567890",
                    "outerSkuId": "own-bamboo-cloth-3", "jdPrice": "1.25", "id": 229912345678,
                    "invoiceContentId": "", "itemExt": "{\"isVMI\":0,\"newStoreId\":\"0\",\"cid\":\"13288\"}",
                    "giftPoint": "0", "productNo": "own", "skuId": "10061234567890", "newStoreId": "0",
                }],
                "payType": "4-在线支付", "pin": "jd_own0example42", "parentOrderId": "0",
                "modified": "2023-02-01 00:10:05",
                "commission": {"amount": 0, "centFactor": 100, "cent": 0, "currency": "CNY", "currencyCode": "CNY"},
                "freightPrice": "0.00", "vatInfo": [], "balanceUsed": "0.00", "directParentOrderId": "0",
                "invoiceInfo": "不需要开具发票", "orderSource": "移动端订单", "dataVersion": "1675181405000",
                "orderTotalPrice": "2.50", "deliveryType": "任意时间", "storeId": "0", "mdbStoreId": "",
                "idSopShipmenttype": 67, "orderPayment": "2.50", "idShipmenttype": "70",
                "outBoundDate": "0001-01-01 00:00:00",
                "consigneeInfo": {
                    "town": "石牌街道", "city": "广州市", "county": "天河区", "mobile": "137*******1",
                    "telephone": "137*******1", "cityId": "1601", "townId": "50001", "provinceId": "19",
                    "province": "广东", "countyId": "3633",
                    "fullAddress": "AAS/OwnExampleCipherAddressQk9Zm2Lp7Rt4Vx1Ny8Hb3Jd6Wf0Gs5==",
                    "fullname": "AAS/OwnExampleCipherNameTy7Ui2Op5As8Df1==",
                    "desen_telephone": "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "desen_mobile": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                },
                "sellerDiscount": "0.00", "returnOrder": "0",
                "invoiceEasyInfo": {"invoiceState": "3", "invoiceType": "0", "invoiceContentId": "1",
                                    "invoiceTitle": "AAS/OwnExampleCipherTitle=="},
                "storeOrder": "", "orderStartTime": "2023-02-01 00:09:41",
            }],
        },
    }
}


def test_the_synthetic_file_normalizes_field_by_field():
    # GIVEN the three orders of the synthetic search answer
    records = synthetic_records(jd)
    # WHEN each is normalized for one shop
    orders = [jd.normalize(raw, "pop-shop").contract_dict() for raw in records]
    # THEN every field is what the platform said, in the contract's units and zone
    assert orders == EXPECTED


def test_the_official_example_shape_normalizes():
    # GIVEN a search answer shaped like a real captured orderInfo
    records = jd.split_response(copy.deepcopy(OFFICIAL_SHAPE))
    # WHEN normalized
    order = jd.normalize(records[0], "pop-shop")
    # THEN the legacy pin is the buyer, times cross midnight into the previous UTC day, and the
    # integer line `id` does not replace skuId as the line id
    assert order.channel_order_id == "251234567890"
    assert order.buyer_id == "jd_own0example42"
    assert order.status.value == "paid"
    assert (order.created_at, order.paid_at, order.updated_at) == (
        "2023-01-31T16:09:41Z", "2023-01-31T16:10:05Z", "2023-01-31T16:10:05Z")
    assert [line.model_dump(mode="json") for line in order.lines] == [
        {"line_id": "10061234567890", "sku": "10061234567890", "seller_sku": "own-bamboo-cloth-3",
         "quantity": 2, "unit_price": "1.25"}]
    assert order.contract_dict()["total"] == "2.50"
    assert order.ship_to.encrypted is True and order.ship_to.district == "天河区"


def test_split_response_refuses_an_error_answer_and_a_foreign_shape():
    with pytest.raises(ValueError, match="error"):
        jd.split_response({"error_response": {"code": "19", "zh_desc": "x", "en_desc": "Invalid access_token"}})
    with pytest.raises(ValueError, match="jingdong_pop_order_search_responce"):
        jd.split_response({"orders": []})


def test_an_empty_window_has_no_records():
    answer = {"jingdong_pop_order_search_responce": {"code": "0", "searchorderinfo_result": {
        "apiResult": {"success": True}, "orderTotal": 0}}}
    assert jd.split_response(answer) == []


def test_nineteen_digit_ids_stay_exact_whether_text_or_json_integer():
    # GIVEN order and SKU ids beyond 2**53, as text and as a JSON integer
    raw = stock_out_record()
    raw["orderId"] = 9223372036854775807
    raw["itemInfoList"][0]["skuId"] = "1234567890123456789"
    # WHEN normalized
    order = jd.normalize(json.loads(json.dumps(raw)), "s")
    # THEN every digit survives
    assert order.channel_order_id == "9223372036854775807"
    assert order.lines[0].sku == "1234567890123456789"


def test_gmt8_times_become_utc_and_the_not_yet_placeholder_is_absent():
    raw = stock_out_record()
    raw["orderStartTime"] = "2026-01-01 07:59:59"  # still 2025 in UTC
    raw["paymentConfirmTime"] = "0001-01-01 00:00:00"
    order = jd.normalize(raw, "s")
    assert order.created_at == "2025-12-31T23:59:59Z"
    assert order.paid_at is None


def test_money_is_exact_yuan_and_the_total_is_what_the_buyer_pays():
    # GIVEN goods 59.00 + freight 6.00 = orderPayment 65.00 (synthetic order 3)
    order = jd.normalize(synthetic_records(jd)[2], "s")
    assert order.contract_dict()["total"] == "65.00"
    assert order.contract_dict()["lines"][0]["unit_price"] == "29.50"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("WAIT_SELLER_STOCK_OUT", "paid"),
        ("WAIT_SELLER_DELIVERY", "paid"),
        ("PAUSE", "paid"),
        ("POP_ORDER_PAUSE", "paid"),
        ("WAIT_SEND_CODE", "paid"),
        ("SEND_TO_DISTRIBUTION_CENER", "shipped"),
        ("DISTRIBUTION_CENTER_RECEIVED", "shipped"),
        ("WAIT_GOODS_RECEIVE_CONFIRM", "shipped"),
        ("RECEIPTS_CONFIRM", "shipped"),
        ("FINISHED_L", "completed"),
        ("TRADE_CANCELED", "cancelled"),
        ("LOCKED", "refunding"),
    ],
)
def test_each_order_state_maps_to_its_canonical_status(state, expected):
    raw = stock_out_record()
    raw["orderState"] = state
    order = jd.normalize(raw, "s")
    assert order.status.value == expected and order.channel_status == state


def test_a_locked_order_is_refunding_on_every_line_and_never_refunded():
    # GIVEN a two-line order locked for the buyer's refund request: JD locks the whole order
    raw = stock_out_record()
    raw["orderState"] = "LOCKED"
    order = jd.normalize(raw, "s")
    # THEN the order is refunding (the search answer has no per-line refund state to say "refunded")
    assert order.status.value == "refunding" and len(order.lines) == 2


def test_an_unknown_order_state_is_malformed_naming_the_field():
    raw = stock_out_record()
    raw["orderState"] = "SOMETHING_NEW"
    error = refused(jd, raw, match="orderState: unknown value 'SOMETHING_NEW'")
    assert error.channel_order_id == "318765432109"


def test_a_sku_listed_twice_gets_distinct_line_ids():
    raw = stock_out_record()
    raw["itemInfoList"][1]["skuId"] = raw["itemInfoList"][0]["skuId"]
    order = jd.normalize(raw, "s")
    assert [line.line_id for line in order.lines] == ["100234567890", "100234567890-2"]


def test_encrypted_receiver_data_is_kept_as_received_with_its_handle():
    order = jd.normalize(stock_out_record(), "s")
    assert order.ship_to.encrypted is True
    assert order.ship_to.address.startswith("AAS/") and order.ship_to.name.startswith("AAS/")
    # the ciphertext is the address handle, stored beside the contract
    assert order.stored_dict()["ship_to"]["address_handle"] == order.ship_to.address
    assert "address_handle" not in order.contract_dict()["ship_to"]


def test_a_plain_receiver_is_not_marked_encrypted():
    raw = stock_out_record()
    raw["consigneeInfo"].update(fullname="张三", fullAddress="北京朝阳区三里屯路19号院")
    order = jd.normalize(raw, "s")
    assert order.ship_to.encrypted is False and order.ship_to.address_handle is None


def test_buyer_falls_back_from_open_id_to_xid_to_pin():
    raw = stock_out_record()
    del raw["open_id_buyer"]
    assert jd.normalize(raw, "s").buyer_id == "o*AAQ9s7dLkG3Vb2Nq8Xz1YcRt5Pw6Mh4Jf0Ea"
    del raw["xid_buyer"]
    raw["pin"] = "jd_legacy"
    assert jd.normalize(raw, "s").buyer_id == "jd_legacy"


@pytest.mark.parametrize(
    ("break_it", "field"),
    [
        (lambda raw: raw["itemInfoList"][0].update(itemTotal="two"), "itemInfoList[0].itemTotal"),
        (lambda raw: raw["itemInfoList"][0].pop("itemTotal"), "itemInfoList[0].itemTotal"),
        (lambda raw: raw["itemInfoList"][0].update(jdPrice="N/A"), "itemInfoList[0].jdPrice"),
        (lambda raw: raw["itemInfoList"][0].pop("skuId"), "itemInfoList[0].skuId"),
        (lambda raw: raw.update(orderPayment="1,299.00"), "orderPayment"),
        (lambda raw: raw.update(modified="2026/03/14 12:02"), "modified"),
        (lambda raw: raw.pop("orderState"), "orderState"),
        (lambda raw: raw.update(itemInfoList={"skuId": "1"}), "itemInfoList"),
        (lambda raw: raw.update(consigneeInfo="AAS/x"), "consigneeInfo"),
    ],
)
def test_malformed_payloads_are_rejected_with_a_reason_naming_the_field(break_it, field):
    raw = stock_out_record()
    break_it(raw)
    error = refused(jd, raw)
    assert field in error.reason
    assert error.channel_order_id == "318765432109"
