"""Taobao normalizer: the synthetic increment response field by field, the published doc-sample
shape of taobao.trades.sold.get, exact 19-digit ids, GMT+8 times, statuses, refunds per line,
encrypted receivers and malformed trades."""

import copy
import json

import pytest
from oms.normalizers import taobao
from omsdev.cli import main

from tests.unit.normalize_helpers import (
    DELETE,
    refused,
    set_path,
    synthetic_file,
    synthetic_record,
    synthetic_records,
)


def paid_trade() -> dict:
    return synthetic_record(taobao, 0)


# Hand-derived from taobao_synthetic.json: GMT+8 times minus 8 hours, `payment` as total.
EXPECTED = [
    {
        "order_key": "taobao#tmall-sz#4310028839461573812",
        "channel": "taobao",
        "shop_id": "tmall-sz",
        "channel_order_id": "4310028839461573812",
        "status": "paid",
        "channel_status": "WAIT_SELLER_SEND_GOODS",
        "buyer_id": "AAHx7d-EAAeGwJed_Syn01Ab",
        "currency": "CNY",
        "total": "347.00",
        "lines": [
            {"line_id": "4310028839462573812", "sku": "5021187342201", "seller_sku": "SZ-TEE-01-BLK-L",
             "quantity": 2, "unit_price": "129.00"},
            {"line_id": "4310028839463573812", "sku": "5021187349910", "seller_sku": "SZ-CAP-02-BEI",
             "quantity": 1, "unit_price": "99.00"},
        ],
        "ship_to": {
            "country": "CN", "province": "广东省", "city": "深圳市", "district": "南山区",
            "address": "~AgAAAAL3k9sB4x9s0Lr1pQ8KqzVh4mN0eR2T~1~", "postal_code": "518000",
            "name": "~AgAAAAL3k9sB1cQ2mXy7ZJwVbWc=~1~", "phone": "$138$Qm9BQ2Z4dVhQc1U2N0s=$1$",
            "encrypted": True,
        },
        "created_at": "2026-03-14T02:02:11Z",
        "paid_at": "2026-03-14T02:02:45Z",
        "updated_at": "2026-03-14T02:02:46Z",
    },
    {
        # closed after the only line was refunded
        "order_key": "taobao#tmall-sz#4309876512330045519",
        "channel": "taobao",
        "shop_id": "tmall-sz",
        "channel_order_id": "4309876512330045519",
        "status": "refunded",
        "channel_status": "TRADE_CLOSED",
        "buyer_id": "AAGk2d-EAAeGwJedwQx9aB3c",
        "currency": "CNY",
        "total": "199.00",
        "lines": [
            {"line_id": "4309876512331045519", "sku": "5021187350001", "seller_sku": "SZ-BAG-03-GRY",
             "quantity": 1, "unit_price": "199.00"},
        ],
        "ship_to": {
            "country": "CN", "province": "上海", "city": "上海市", "district": "浦东新区",
            "address": "~AgAAAAL3k9sB0pQ7Zc9mKx3RtY6vNw==~1~", "postal_code": "200135",
            "name": "~AgAAAAL3k9sB7c1Hk2n5Qw==~1~", "phone": "$139$eUpKcTNvN2tWd0E=$1$", "encrypted": True,
        },
        "created_at": "2026-03-13T13:40:03Z",
        "paid_at": "2026-03-13T13:40:30Z",
        "updated_at": "2026-03-14T01:15:27Z",
    },
    {
        "order_key": "taobao#tmall-sz#4308123456701938822",
        "channel": "taobao",
        "shop_id": "tmall-sz",
        "channel_order_id": "4308123456701938822",
        "status": "shipped",
        "channel_status": "WAIT_BUYER_CONFIRM_GOODS",
        "buyer_id": "AAFm3d-EAAeGwJedCk7pQ2Zx",
        "currency": "CNY",
        "total": "67.90",
        "lines": [
            {"line_id": "4308123456702938822", "sku": "5021187360042", "seller_sku": "SZ-SOCK-04-5P",
             "quantity": 1, "unit_price": "59.90"},
        ],
        "ship_to": {
            "country": "CN", "province": "新疆维吾尔自治区", "city": "乌鲁木齐市", "district": "天山区",
            "address": "~AgAAAAL3k9sB9aS4Lk2pVt7XyQm1==~1~", "postal_code": "830000",
            "name": "~AgAAAAL3k9sB3kQ9Wm1Zc2==~1~", "phone": "$186$ZlBzRkE0WnJxTW8=$1$", "encrypted": True,
        },
        "created_at": "2026-03-12T00:11:57Z",
        "paid_at": "2026-03-12T00:12:20Z",
        "updated_at": "2026-03-13T08:05:13Z",
    },
]
OAIDS = ["1QkzU5Sde3Gk9yXn7LqVtR2cA0pJmWbH", "2RmaV6Tef4Hl0zYo8MrWuS3dB1qKnXcI", "3SnbW7Ufg5Im1aZp9NsXvT4eC2rLoYdJ"]


@pytest.mark.parametrize("index", range(3))
def test_each_synthetic_trade_maps_every_field(index):
    # WHEN a synthetic trade is normalized
    order = taobao.normalize(synthetic_records(taobao)[index], "tmall-sz")
    # THEN the contract form is exactly the hand-derived one, and the OAID is kept beside it
    assert order.contract_dict() == EXPECTED[index]
    assert order.stored_dict()["ship_to"]["address_handle"] == OAIDS[index]


# The published doc sample of taobao.trades.sold.get has this shape (own values here): root
# trades_sold_get_response with total_results and has_next, an integer `tid` and no tid_str, a type
# with its label, plain receiver data, receiver_country 中国, item fields on the trade, and the
# nested lists rendered as one empty object each.
DOC_SAMPLE_SHAPE = {
    "trades_sold_get_response": {
        "total_results": 100,
        "has_next": True,
        "trades": {"trade": [{
            "seller_nick": "样例卖家", "pic_path": "http://img.example.net/bao/uploaded/i1/sample.jpg",
            "payment": "88.50", "seller_rate": True, "post_fee": "10.00", "receiver_name": "令狐冲",
            "receiver_state": "江苏省", "receiver_address": "示例路18号", "receiver_zip": "210000",
            "receiver_mobile": "13900001111", "receiver_phone": "02588889999",
            "consign_time": "2001-02-03 04:05:06", "received_payment": "88.50", "receiver_country": "中国",
            "receiver_town": "示例镇", "order_tax_fee": "0", "shop_pick": "1", "tid": 3344556677, "num": 2,
            "num_iid": 7654321, "status": "WAIT_SELLER_SEND_GOODS", "title": "样例商品", "type": "fixed(一口价)",
            "price": "39.25", "discount_fee": "0.00", "total_fee": "78.50", "created": "2001-02-03 04:05:06",
            "pay_time": "2001-02-03 04:06:00", "modified": "2001-02-03 04:07:00", "end_time": "2001-02-03 04:08:00",
            "seller_flag": 1, "buyer_nick": "样例买家", "has_buyer_message": True, "credit_card_fee": "0.00",
            "step_trade_status": "FRONT_NOPAID_FINAL_NOPAID", "step_paid_fee": "0.00", "mark_desc": "备注",
            "shipping_type": "free", "adjust_fee": "0.00", "trade_from": "WAP,JHS",
            "service_orders": {"service_order": [{}]}, "buyer_rate": True, "receiver_city": "南京市",
            "receiver_district": "玄武区", "o2o": "crm", "orders": {"order": [{}]}, "rx_audit_status": "0",
            "post_gate_declare": True, "cross_bonded_declare": False, "order_tax_promotion_fee": "0",
        }]},
    }
}


def test_the_doc_sample_shape_of_trades_sold_get_normalizes():
    # GIVEN a response in the shape of TOP's published taobao.trades.sold.get sample
    records = taobao.split_response(copy.deepcopy(DOC_SAMPLE_SHAPE))
    # WHEN its one trade is normalized
    assert len(records) == 1
    order = taobao.normalize(records[0], "doc")
    # THEN the integer tid is the id, the trade-level item is the line, plain receiver data is not encrypted
    assert order.contract_dict() == {
        "order_key": "taobao#doc#3344556677", "channel": "taobao", "shop_id": "doc",
        "channel_order_id": "3344556677", "status": "paid", "channel_status": "WAIT_SELLER_SEND_GOODS",
        "buyer_id": None, "currency": "CNY", "total": "88.50",
        "lines": [{"line_id": "3344556677", "sku": "7654321", "seller_sku": None, "quantity": 2, "unit_price": "39.25"}],
        "ship_to": {"country": "CN", "province": "江苏省", "city": "南京市", "district": "玄武区",
                    "address": "示例路18号", "postal_code": "210000", "name": "令狐冲", "phone": "13900001111",
                    "encrypted": False},
        "created_at": "2001-02-02T20:05:06Z", "paid_at": "2001-02-02T20:06:00Z", "updated_at": "2001-02-02T20:07:00Z",
    }
    assert order.ship_to.address_handle is None


def test_the_doc_sample_status_trade_no_create_pay_is_pending_with_no_paid_at():
    # GIVEN the doc sample's own status (no payment created yet) with a pay_time filled in
    trade = copy.deepcopy(DOC_SAMPLE_SHAPE)["trades_sold_get_response"]["trades"]["trade"][0]
    trade["status"] = "TRADE_NO_CREATE_PAY"
    # WHEN normalized
    order = taobao.normalize(trade, "doc")
    # THEN it is pending payment and not paid yet
    assert order.status.value == "pending_payment" and order.paid_at is None


@pytest.mark.parametrize(
    ("trade_status", "refund", "status", "paid_at"),
    [
        pytest.param("TRADE_CLOSED_BY_TAOBAO", "NO_REFUND", "cancelled", None,
                     id="closed before payment: never paid, whatever pay_time says"),
        pytest.param("TRADE_CLOSED", "SUCCESS", "refunded", "2026-03-14T02:02:45Z",
                     id="paid, refunded, then closed: keeps the payment time"),
        pytest.param("TRADE_CLOSED", "CLOSED", "cancelled", "2026-03-14T02:02:45Z",
                     id="paid, then closed: keeps the payment time"),
    ],
)
def test_a_closed_trade_has_a_paid_at_only_when_it_was_paid(trade_status, refund, status, paid_at):
    # GIVEN the paid trade (pay_time 2026-03-14 10:02:45 GMT+8 in the payload) closed, before or after payment
    trade = paid_trade()
    trade["status"] = trade_status
    for sub in trade["orders"]["order"]:
        sub["refund_status"] = refund
    # WHEN normalized
    order = taobao.normalize(trade, "s")
    # THEN it is closed as the status says, with a payment time only when one was made
    assert order.status.value == status
    assert order.paid_at == paid_at


def test_doc_sample_sub_orders_with_integer_oids_become_lines():
    # GIVEN the doc-sample trade whose sub-order is filled in, with integer oid only (no oid_str)
    trade = copy.deepcopy(DOC_SAMPLE_SHAPE)["trades_sold_get_response"]["trades"]["trade"][0]
    trade["orders"] = {"order": [{"oid": 3344556678, "num_iid": 7654321, "sku_id": "998877", "outer_sku_id": "DOC-1",
                                  "price": "39.25", "num": 2, "refund_status": "NO_REFUND", "status": "WAIT_SELLER_SEND_GOODS"}]}
    # WHEN normalized
    order = taobao.normalize(trade, "doc")
    # THEN the sub-order is the line (not the trade-level item)
    assert [line.model_dump(mode="json") for line in order.lines] == [
        {"line_id": "3344556678", "sku": "998877", "seller_sku": "DOC-1", "quantity": 2, "unit_price": "39.25"}
    ]


def test_split_response_accepts_the_increment_the_sold_get_and_the_fullinfo_roots():
    trade = paid_trade()
    documents = [
        {"trades_sold_increment_get_response": {"total_results": 1, "trades": {"trade": [trade]}}},
        {"trades_sold_get_response": {"total_results": 1, "trades": {"trade": [trade]}}},
        {"trade_fullinfo_get_response": {"trade": trade}},
        {"trades_sold_increment_get_response": {"total_results": 1, "trades": [trade]}},  # simplify=true
    ]
    assert [taobao.split_response(document) for document in documents] == [[trade]] * 4
    # An empty window: TOP leaves `trades` out entirely
    assert taobao.split_response({"trades_sold_increment_get_response": {"total_results": 0}}) == []


@pytest.mark.parametrize("document", [
    {}, [], {"error_response": {"code": 7, "msg": "App Call Limited"}},
    {"trades_sold_increment_get_response": {"trades": {"trade": "x"}}},
    {"trade_fullinfo_get_response": {"trade": []}},
])
def test_split_response_rejects_other_shapes(document):
    with pytest.raises(ValueError):
        taobao.split_response(document)


def test_nineteen_digit_ids_stay_exact_from_json_text_and_from_integers():
    # GIVEN a trade and a line whose ids exceed 2**53, given as JSON integers only
    document = json.loads(
        '{"trade_fullinfo_get_response": {"trade": {"tid": 4310028839461573813, "status": "WAIT_SELLER_SEND_GOODS",'
        ' "payment": "1.00", "orders": {"order": [{"oid": 4310028839462573815, "num": 1, "price": "1.00"}]}}}}'
    )
    # WHEN normalized
    order = taobao.normalize(taobao.split_response(document)[0], "s")
    # THEN every digit survives (a float would give ...573800-something)
    assert order.channel_order_id == "4310028839461573813"
    assert order.lines[0].line_id == "4310028839462573815"
    # (the trap avoided: through a float the same tid reads back with other digits)
    assert str(int(float("4310028839461573813"))) != "4310028839461573813"


def test_tid_str_wins_over_tid():
    trade = paid_trade()
    trade["tid"] = 1
    assert taobao.order_id_of(trade) == "4310028839461573812"


def test_gmt8_times_become_utc_across_midnight_and_the_day_boundary():
    # GIVEN a trade created at 07:59:59 GMT+8 on New Year's day, which is the previous day in UTC
    trade = paid_trade()
    trade["created"], trade["pay_time"], trade["modified"] = "2026-01-01 07:59:59", "2026-01-01 08:00:00", "2026-01-01 08:00:01"
    # WHEN normalized
    order = taobao.normalize(trade, "s")
    # THEN the times are UTC with Z
    assert (order.created_at, order.paid_at, order.updated_at) == (
        "2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z")


def test_money_is_yuan_decimal_text_never_float_or_fen():
    trade = paid_trade()
    trade["payment"] = "0.10"
    trade["orders"]["order"][0]["price"] = "1234567.89"
    order = taobao.normalize(trade, "s")
    assert order.contract_dict()["total"] == "0.10"
    assert order.contract_dict()["lines"][0]["unit_price"] == "1234567.89"
    assert order.currency == "CNY"


@pytest.mark.parametrize(
    ("trade_status", "status", "paid"),
    [
        ("TRADE_NO_CREATE_PAY", "pending_payment", False),
        ("WAIT_BUYER_PAY", "pending_payment", False),
        ("PAY_PENDING", "pending_payment", False),
        ("WAIT_PRE_AUTH_CONFIRM", "pending_payment", False),
        ("WAIT_SELLER_SEND_GOODS", "paid", True),
        ("PAID_FORBID_CONSIGN", "paid", True),
        ("SELLER_CONSIGNED_PART", "shipped", True),
        ("WAIT_BUYER_CONFIRM_GOODS", "shipped", True),
        ("TRADE_BUYER_SIGNED", "shipped", True),
        ("TRADE_FINISHED", "completed", True),
        ("TRADE_CLOSED", "cancelled", True),  # closed after payment, no line refunded
        ("TRADE_CLOSED_BY_TAOBAO", "cancelled", False),  # closed before payment: never paid
    ],
)
def test_trade_status_table(trade_status, status, paid):
    # GIVEN a trade without refunds in each status
    trade = paid_trade()
    trade["status"] = trade_status
    # WHEN normalized
    order = taobao.normalize(trade, "s")
    # THEN the canonical status, the raw status kept, and paid_at only once payment is done
    assert order.status.value == status and order.channel_status == trade_status
    assert (order.paid_at is not None) is paid


@pytest.mark.parametrize(
    ("trade_status", "refunds", "status"),
    [
        ("WAIT_SELLER_SEND_GOODS", ("SUCCESS", "SUCCESS"), "refunded"),
        ("WAIT_SELLER_SEND_GOODS", ("WAIT_SELLER_AGREE", "NO_REFUND"), "refunding"),
        ("WAIT_SELLER_SEND_GOODS", ("SUCCESS", "NO_REFUND"), "paid"),  # one line refunded, the other goes on
        ("WAIT_SELLER_SEND_GOODS", ("SUCCESS", "WAIT_BUYER_RETURN_GOODS"), "refunding"),
        ("WAIT_BUYER_CONFIRM_GOODS", ("WAIT_SELLER_CONFIRM_GOODS", "NO_REFUND"), "refunding"),
        ("WAIT_BUYER_CONFIRM_GOODS", ("SELLER_REFUSE_BUYER", "NO_REFUND"), "refunding"),
        ("WAIT_BUYER_CONFIRM_GOODS", ("CLOSED", "NO_REFUND"), "shipped"),  # refund withdrawn
        ("SELLER_CONSIGNED_PART", ("SUCCESS", "NO_REFUND"), "shipped"),
        ("TRADE_FINISHED", ("SUCCESS", "SUCCESS"), "refunded"),
        ("TRADE_FINISHED", ("WAIT_SELLER_AGREE", "NO_REFUND"), "refunding"),  # after-sales refund
        ("TRADE_CLOSED", ("SUCCESS", "NO_REFUND"), "refunded"),
        ("TRADE_CLOSED", ("CLOSED", "NO_REFUND"), "cancelled"),
        ("WAIT_BUYER_PAY", ("SUCCESS", "SUCCESS"), "pending_payment"),  # unpaid: nothing to refund
        ("TRADE_CLOSED_BY_TAOBAO", ("SUCCESS", "SUCCESS"), "cancelled"),
        ("WAIT_SELLER_SEND_GOODS", ("", None), "paid"),  # blank and absent refund_status: no refund
    ],
)
def test_refunds_are_read_per_line(trade_status, refunds, status):
    # GIVEN a two-line trade with a refund status per line
    trade = paid_trade()
    trade["status"] = trade_status
    for sub, refund in zip(trade["orders"]["order"], refunds):
        if refund is None:
            del sub["refund_status"]
        else:
            sub["refund_status"] = refund
    # WHEN normalized
    order = taobao.normalize(trade, "s")
    # THEN the lines' refunds decide as the module documents
    assert order.status.value == status


def test_plain_receiver_data_is_not_encrypted_and_masked_data_is():
    trade = paid_trade()
    trade.update(receiver_name="张三", receiver_mobile="13800138000", receiver_address="科技园路1号", receiver_phone="")
    assert taobao.normalize(trade, "s").ship_to.encrypted is False
    trade["receiver_mobile"] = "*******8000"
    masked = taobao.normalize(trade, "s")
    assert masked.ship_to.encrypted is True and masked.ship_to.phone == "*******8000"


def test_cipher_texts_are_kept_exactly_as_received_with_the_oaid():
    order = taobao.normalize(paid_trade(), "s")
    assert order.ship_to.name == "~AgAAAAL3k9sB1cQ2mXy7ZJwVbWc=~1~"
    assert order.ship_to.phone == "$138$Qm9BQ2Z4dVhQc1U2N0s=$1$"
    assert order.ship_to.encrypted is True
    assert order.ship_to.address_handle == "1QkzU5Sde3Gk9yXn7LqVtR2cA0pJmWbH"
    assert "address_handle" not in order.contract_dict()["ship_to"]


def test_phone_falls_back_to_the_landline():
    trade = paid_trade()
    trade["receiver_mobile"], trade["receiver_phone"] = "", "0755-88889999"
    assert taobao.normalize(trade, "s").ship_to.phone == "0755-88889999"


@pytest.mark.parametrize(("given", "country"), [
    (None, "CN"), ("", "CN"), ("中国", "CN"), ("CN", "CN"), ("中国香港", "HK"), ("台湾", "TW"), ("火星", None),
])
def test_receiver_country(given, country):
    trade = paid_trade()
    if given is None:
        trade.pop("receiver_country", None)
    else:
        trade["receiver_country"] = given
    assert taobao.normalize(trade, "s").ship_to.country == country


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (set_path("status", "SOMETHING_NEW"), "status: unknown value 'SOMETHING_NEW'"),
        (set_path("status", DELETE), "status: missing"),
        (set_path("payment", "N/A"), "payment: 'N/A' is not a decimal amount"),
        (set_path("payment", 347.0), "payment: 347.0 is not a decimal amount"),
        (set_path("payment", DELETE), "payment: None is not a decimal amount"),
        (set_path("orders.order.0.num", "two"), "orders.order[0].num: 'two' is not an integer"),
        (set_path("orders.order.0.num", DELETE), "orders.order[0].num: None is not an integer"),
        (set_path("orders.order.0.num", -1), "orders.order[0].num: -1 is negative"),
        (set_path("orders.order.0.price", "12,50"), "orders.order[0].price: '12,50' is not a decimal amount"),
        (set_path("orders.order.0.refund_status", "MAYBE"), "orders.order[0].refund_status: unknown value 'MAYBE'"),
        (set_path("orders.order.1.oid_str", DELETE), None),  # oid still there: fine
        (set_path("orders.order.0.oid", 4.310028839462574e18), None),  # oid_str wins
        (set_path("modified", "2026/03/14 10:02:46"), "modified: '2026/03/14 10:02:46' is not a yyyy-MM-dd HH:mm:ss time"),
        (set_path("created", "2026-02-30 10:00:00"), "created: '2026-02-30 10:00:00' is not a yyyy-MM-dd HH:mm:ss time"),
        (set_path("orders.order", "none"), "orders.order: expected a list, got str"),
        (set_path("orders", ["x"]), "orders.order[0]: expected an object, got str"),
    ],
)
def test_malformed_trades_raise_with_a_reason_naming_the_field(mutate, reason):
    # GIVEN a trade broken in one field (its id intact)
    trade = paid_trade()
    mutate(trade)
    if reason is None:
        assert taobao.normalize(trade, "s").channel_order_id == "4310028839461573812"
        return
    # WHEN normalized THEN the error names that field and carries the id for the quarantine
    error = refused(taobao, trade)
    assert error.reason == reason
    assert error.channel_order_id == "4310028839461573812"


def test_line_without_any_id_is_malformed():
    trade = paid_trade()
    del trade["orders"]["order"][1]["oid_str"], trade["orders"]["order"][1]["oid"]
    refused(taobao, trade, match=r"orders.order\[1\].oid_str: missing")


@pytest.mark.parametrize("raw", [None, [], "tid", {}, {"tid": True}, {"tid_str": "abc"}, {"tid": {"a": 1}}])
def test_odd_shapes_become_malformed_orders_never_other_errors(raw):
    refused(taobao, raw)


@pytest.mark.parametrize("raw", [None, [], 7, {"tid": 1.5}, {"tid_str": ""}, {"tid": True}])
def test_order_id_of_never_raises(raw):
    assert taobao.order_id_of(raw) is None


def test_oms_normalize_prints_every_synthetic_trade(capsys):
    # WHEN `oms normalize --channel taobao --shop tmall-sz FILE` runs on the synthetic response
    code = main(["normalize", "--channel", "taobao", "--shop", "tmall-sz", str(synthetic_file("taobao"))])
    captured = capsys.readouterr()
    # THEN one contract object per trade, nothing quarantined
    assert code == 0 and captured.err == ""
    assert [json.loads(line) for line in captured.out.splitlines()] == EXPECTED


def test_oms_normalize_reads_the_doc_sample_shape(tmp_path, capsys):
    path = tmp_path / "taobao_doc_sample_shape.json"
    path.write_text(json.dumps(DOC_SAMPLE_SHAPE, ensure_ascii=False), encoding="utf-8")
    code = main(["normalize", "--channel", "taobao", str(path)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and [json.loads(line)["channel_order_id"] for line in lines] == ["3344556677"]
