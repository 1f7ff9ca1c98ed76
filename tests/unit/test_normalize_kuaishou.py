"""Kuaishou normalizer: the synthetic file field by field, the documented official response shape,
exact 19-digit ids, epoch-ms times, fen, the status and refund table, ciphertexts, malformed input."""

import json

import pytest
from oms.normalizers import kuaishou

from tests.unit.normalize_helpers import (
    DELETE,
    refused,
    set_path,
    synthetic_record,
    synthetic_records,
)


def paid_record() -> dict:
    return synthetic_record(kuaishou, 0)


# Hand-derived from kuaishou_synthetic.json: epoch ms -> UTC, fen -> yuan.
EXPECTED = [
    {
        "order_key": "kuaishou#ks-shop#2603141203456789",
        "channel": "kuaishou",
        "shop_id": "ks-shop",
        "channel_order_id": "2603141203456789",
        "status": "paid",
        "channel_status": "30",
        "buyer_id": "f19a3b7c88d24e61a7c0e5f2b4d6a810",
        "currency": "CNY",
        "total": "89.70",
        "lines": [{"line_id": "55667788990011", "sku": "88990011223", "seller_sku": "KS-LZF-3P",
                   "quantity": 3, "unit_price": "29.90"}],
        "ship_to": {"country": "CN", "province": "广东省", "city": "广州市", "district": "天河区",
                    "address": "~c2FtcGxlLWFkZHJlc3Mte259~1~~", "postal_code": None,
                    "name": "#c2FtcGxlLWNvbnNpZ25lZS17bn0=#1##", "phone": "$c2FtcGxlLW1vYmlsZS17bn0=$1$",
                    "encrypted": True},
        "created_at": "2026-03-14T03:46:28.101Z",  # 1773459988101 ms
        "paid_at": "2026-03-14T03:46:41.230Z",  # 1773460001230 ms
        "updated_at": "2026-03-14T03:46:42.417Z",  # 1773460002417 ms
    },
    {
        "order_key": "kuaishou#ks-shop#2603131109876543",
        "channel": "kuaishou",
        "shop_id": "ks-shop",
        "channel_order_id": "2603131109876543",
        "status": "refunded",  # status 80 closed with refund 60 (succeeded)
        "channel_status": "80",
        "buyer_id": "f19b2c3d4e5f60718293a4b5c6d7e8f9",
        "currency": "CNY",
        "total": "49.90",
        "lines": [{"line_id": "55667788990099", "sku": "88990011999", "seller_sku": "KS-HG-1",
                   "quantity": 1, "unit_price": "49.90"}],
        "ship_to": {"country": "CN", "province": "江苏省", "city": "南京市", "district": "鼓楼区",
                    "address": "~c2FtcGxlLWFkZHJlc3Mte259~1~~", "postal_code": None,
                    "name": "#c2FtcGxlLWNvbnNpZ25lZS17bn0=#1##", "phone": "$c2FtcGxlLW1vYmlsZS17bn0=$1$",
                    "encrypted": True},
        "created_at": "2026-03-13T04:29:40Z",
        "paid_at": "2026-03-13T04:30:00Z",
        "updated_at": "2026-03-13T14:01:40Z",
    },
    {
        "order_key": "kuaishou#ks-shop#2603120987612345",
        "channel": "kuaishou",
        "shop_id": "ks-shop",
        "channel_order_id": "2603120987612345",
        "status": "shipped",
        "channel_status": "40",
        "buyer_id": "f19c4d5e6f708192a3b4c5d6e7f80912",
        "currency": "CNY",
        "total": "19.90",
        "lines": [{"line_id": "55667788991111", "sku": "88990012111", "seller_sku": "KS-HJ-1",
                   "quantity": 1, "unit_price": "19.90"}],
        "ship_to": {"country": "CN", "province": "西藏自治区", "city": "拉萨市", "district": "城关区",
                    "address": "~c2FtcGxlLWFkZHJlc3Mte259~1~~", "postal_code": None,
                    "name": "#c2FtcGxlLWNvbnNpZ25lZS17bn0=#1##", "phone": "$c2FtcGxlLW1vYmlsZS17bn0=$1$",
                    "encrypted": True},
        "created_at": "2026-03-12T04:33:10Z",
        "paid_at": "2026-03-12T04:33:20.500Z",
        "updated_at": "2026-03-12T21:13:21Z",
    },
]

# The documented response shape (result 1, data {beginTime, endTime, pageSize, cursor, orderList}),
# with an order object as the list passes it through: numbers for ids, fen and ms, extra fields we
# ignore, no orderAddress (the list may leave it out) and a 19-digit oid. All values are ours.
OFFICIAL_SHAPE_DOCUMENT = json.loads("""
{
  "result": 1,
  "data": {
    "beginTime": 1780000000000,
    "endTime": 1780086400000,
    "pageSize": 20,
    "cursor": "nomore",
    "orderList": [
      {
        "orderBaseInfo": {
          "oid": 2605281234567890123,
          "payTime": 1780012345678,
          "buyerImage": "",
          "buyerOpenId": "f19d0c1b2a39485766aabbccddeeff00",
          "buyerNick": "小**",
          "sellerOpenId": "f19e11223344556677889900aabbccdd",
          "sellerNick": "示例旗舰店",
          "expressFee": 0,
          "discountFee": 500,
          "totalFee": 12300,
          "status": 30,
          "sendTime": 0,
          "refundTime": 0,
          "createTime": 1780012340000,
          "updateTime": 1780012350001,
          "remark": "",
          "theDayOfDeliverGoodsTime": 2,
          "promiseTimeStampOfDelivery": 1780185145678,
          "cpsType": 0,
          "recvTime": 0,
          "coType": 0,
          "commentStatus": 0,
          "payType": 1,
          "preSale": 0,
          "activityType": 0,
          "riskCode": 0,
          "multiplePiecesNo": 0,
          "validPromiseShipmentTimeStamp": 1780185145678
        },
        "orderItemInfo": {
          "skuId": 4400112233445566778,
          "relSkuId": 778899,
          "skuDesc": "颜色:白; 尺码:L",
          "skuNick": "",
          "itemId": 4400112233445566000,
          "relItemId": 112233,
          "itemTitle": "纯棉短袖T恤",
          "itemLinkUrl": "https://app.kwaixiaodian.com/item/example",
          "itemPicUrl": "https://img.example/1.jpg",
          "num": 2,
          "originalPrice": 6400,
          "discountFee": 500,
          "price": 6150,
          "itemType": 1,
          "goodsCode": "TS-WHT",
          "orderItemId": 9900112233445566778,
          "warehouseCode": ""
        },
        "orderRefundList": [],
        "orderLogisticsInfo": [],
        "orderNote": {"sellerNote": []}
      }
    ]
  }
}
""")


@pytest.mark.parametrize("index", range(3))
def test_each_synthetic_order_maps_every_field(index):
    # GIVEN the synthetic file's orders WHEN normalized for a shop
    order = kuaishou.normalize(synthetic_records(kuaishou)[index], "ks-shop")
    # THEN every contract field is as derived by hand
    assert order.contract_dict() == EXPECTED[index]


def test_split_response_rejects_other_shapes_and_reads_an_empty_page():
    with pytest.raises(ValueError):
        kuaishou.split_response({"result": 1, "data": {"orderList": {}}})
    with pytest.raises(ValueError):
        kuaishou.split_response([])
    assert kuaishou.split_response({"result": 1, "data": {"cursor": "nomore"}}) == []


def test_official_shape_response_normalizes_with_a_19_digit_id_kept_exact():
    # GIVEN a response in the documented shape with a 19-digit oid (> 2**53)
    records = kuaishou.split_response(OFFICIAL_SHAPE_DOCUMENT)
    # WHEN it is normalized
    order = kuaishou.normalize(records[0], "ks-shop")
    # THEN the ids keep every digit, money is yuan and times are UTC
    assert order.channel_order_id == "2605281234567890123"
    assert int(order.channel_order_id) > 2**53
    assert order.lines[0].line_id == "9900112233445566778"
    assert order.lines[0].sku == "4400112233445566778"
    assert order.lines[0].seller_sku == "778899"  # no skuNick: the merchant's relSkuId
    assert (order.lines[0].quantity, str(order.lines[0].unit_price)) == (2, "61.50")
    assert (order.status.value, order.channel_status, str(order.total)) == ("paid", "30", "123.00")
    assert order.created_at == "2026-05-28T23:52:20Z"
    assert order.paid_at == "2026-05-28T23:52:25.678Z"
    assert order.updated_at == "2026-05-28T23:52:30.001Z"
    # AND without an address block the ship-to is empty, not guessed
    assert order.ship_to.model_dump() == {
        "country": None, "province": None, "city": None, "district": None, "address": None,
        "postal_code": None, "name": None, "phone": None, "encrypted": False, "address_handle": None,
    }


def test_19_digit_oid_text_and_float_oid_is_refused():
    record = paid_record()
    record["orderBaseInfo"]["oid"] = "9223372036854775807"
    assert kuaishou.normalize(record, "s").channel_order_id == "9223372036854775807"
    record["orderBaseInfo"]["oid"] = 2603141203456789012.0
    refused(kuaishou, record, match=r"orderBaseInfo\.oid")


def test_epoch_milliseconds_are_utc_and_zero_pay_time_is_absent():
    # GIVEN an unpaid order created at 2026-03-14 00:00:00.005 Beijing time (UTC+8)
    record = paid_record()
    record["orderBaseInfo"].update(status=10, payTime=0, createTime=1773417600005, updateTime=1773417600005)
    order = kuaishou.normalize(record, "s")
    # THEN the UTC time is 8 hours earlier, milliseconds kept, and there is no paid_at
    assert order.created_at == "2026-03-13T16:00:00.005Z"
    assert order.paid_at is None and order.status.value == "pending_payment"


@pytest.mark.parametrize(
    ("status", "refunds", "expected", "paid_at"),
    [
        pytest.param(10, [], "pending_payment", None, id="awaiting payment: no payment time, whatever payTime says"),
        pytest.param(80, [{"refundId": 1, "refundStatus": 60}], "refunded", "2026-03-14T03:46:41.230Z",
                     id="paid, closed and refunded: keeps it"),
        pytest.param(80, [], "cancelled", "2026-03-14T03:46:41.230Z", id="closed, a payment shown: keeps it"),
    ],
)
def test_paid_at_is_the_pay_time_unless_the_order_awaits_payment(status, refunds, expected, paid_at):
    # GIVEN the order (payTime 1773460001230 in the payload) in this status, with these refunds
    record = paid_record()
    record["orderBaseInfo"]["status"] = status
    record["orderRefundList"] = refunds
    # WHEN normalized
    order = kuaishou.normalize(record, "s")
    # THEN only an order past payment has a payment time
    assert order.status.value == expected
    assert order.paid_at == paid_at


@pytest.mark.parametrize(("price", "total", "unit", "paid"), [(1, 1, "0.01", "0.01"), (199900, 599700, "1999.00", "5997.00"),
                                                              ("2990", "8970", "29.90", "89.70")])
def test_fen_become_yuan_exactly(price, total, unit, paid):
    record = paid_record()
    record["orderItemInfo"]["price"], record["orderBaseInfo"]["totalFee"] = price, total
    order = kuaishou.normalize(record, "s")
    assert (str(order.lines[0].unit_price), str(order.total)) == (unit, paid)


@pytest.mark.parametrize(("status", "expected"), [
    (10, "pending_payment"), (30, "paid"), (40, "shipped"), (50, "completed"), (70, "completed"), (80, "cancelled"),
])
def test_status_table(status, expected):
    record = paid_record()
    record["orderBaseInfo"]["status"] = status
    order = kuaishou.normalize(record, "s")
    assert (order.status.value, order.channel_status) == (expected, str(status))


@pytest.mark.parametrize(("status", "refunds", "expected"), [
    (30, [{"refundId": 1, "refundStatus": 10}], "refunding"),  # buyer asked for a refund before shipment
    (40, [{"refundId": 1, "refundStatus": 30}], "refunding"),  # return in progress after shipment
    (80, [{"refundId": 1, "refundStatus": 60}], "refunded"),
    (50, [{"refundId": 1, "refundStatus": 60, "refundFee": 8970}], "refunded"),  # the whole amount back
    (50, [{"refundId": 1, "refundStatus": 60, "refundFee": 1000}], "completed"),  # partial amount: still sold
    (40, [{"refundId": 1, "refundStatus": 70}], "shipped"),  # refused or withdrawn
    (40, [{"refundId": 1, "refundStatus": 70}, {"refundId": 2, "refundStatus": 20}], "refunding"),
    (80, [{"refundId": 1, "refundStatus": 20}, {"refundId": 2, "refundStatus": 60}], "refunded"),
    (30, [], "paid"),
])
def test_refunds_of_the_single_line(status, refunds, expected):
    # GIVEN an order (one line: totalFee 8970) with these refunds
    record = paid_record()
    record["orderBaseInfo"]["status"] = status
    record["orderRefundList"] = refunds
    # THEN its canonical status follows the refund table
    assert kuaishou.normalize(record, "s").status.value == expected


def test_ciphertexts_are_kept_as_received_and_the_address_cipher_is_the_handle():
    order = kuaishou.normalize(paid_record(), "s")
    assert order.ship_to.encrypted is True
    assert order.ship_to.name == "#c2FtcGxlLWNvbnNpZ25lZS17bn0=#1##"
    assert order.ship_to.address_handle == "~c2FtcGxlLWFkZHJlc3Mte259~1~~"
    # AND the handle stays off the printed contract but is stored
    assert "address_handle" not in order.contract_dict()["ship_to"]
    assert order.stored_dict()["ship_to"]["address_handle"] == "~c2FtcGxlLWFkZHJlc3Mte259~1~~"


def test_plain_receiver_data_is_used_only_when_no_ciphertext_is_sent():
    record = paid_record()
    address = record["orderAddress"]
    for key in ("encryptedConsignee", "encryptedMobile", "encryptedAddress"):
        address[key] = ""
    address.update(consignee="刘洋", mobile="15900002288", address="天河路385号")
    ship_to = kuaishou.normalize(record, "s").ship_to
    assert (ship_to.name, ship_to.phone, ship_to.address, ship_to.encrypted) == ("刘洋", "15900002288", "天河路385号", False)
    assert ship_to.address_handle is None


@pytest.mark.parametrize(("mutate", "reason"), [
    (set_path("orderItemInfo.num", "两件"), r"orderItemInfo\.num"),
    (set_path("orderItemInfo.num", DELETE), r"orderItemInfo\.num"),
    (set_path("orderItemInfo.price", 29.9), r"orderItemInfo\.price"),
    (set_path("orderBaseInfo.totalFee", "89.70"), r"orderBaseInfo\.totalFee"),
    (set_path("orderBaseInfo.status", 0), r"orderBaseInfo\.status: unknown value 0"),
    (set_path("orderBaseInfo.status", "paid"), r"orderBaseInfo\.status"),
    (set_path("orderBaseInfo.updateTime", "2026-03-14 11:46:42"), r"orderBaseInfo\.updateTime"),
    (set_path("orderItemInfo", None), r"orderItemInfo: missing"),
    (set_path("orderRefundList", {"refundStatus": 60}), r"orderRefundList: expected a list"),
    (set_path("orderRefundList", [{"refundStatus": "done"}]), r"orderRefundList\[0\]\.refundStatus"),
    (set_path("orderAddress", ["广东省"]), r"orderAddress: expected an object"),
])
def test_malformed_orders_raise_with_a_reason_naming_the_field(mutate, reason):
    # GIVEN a broken payload that still has its order id
    record = paid_record()
    mutate(record)
    # WHEN normalized THEN it is refused with the field named and the id kept for quarantine
    error = refused(kuaishou, record, match=reason)
    assert error.channel_order_id == "2603141203456789"


@pytest.mark.parametrize("raw", [{}, {"orderBaseInfo": None}, {"orderBaseInfo": {"oid": None}}, {"orderBaseInfo": []}])
def test_orders_without_an_id_are_malformed_and_order_id_of_never_raises(raw):
    assert kuaishou.order_id_of(raw) is None
    refused(kuaishou, raw, match="orderBaseInfo")
