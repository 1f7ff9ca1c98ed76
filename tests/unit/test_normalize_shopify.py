"""Shopify normalizer: every field of the synthetic orders.json, the status table, malformed input."""

import pytest
from oms.normalizers import shopify

from tests.unit.normalize_helpers import (
    NULL_SHIP_TO,
    refused,
    synthetic_record,
    synthetic_records,
)


def first_order() -> dict:
    return synthetic_record(shopify, 0)


# Hand-derived from shopify_synthetic.json: +08:00 times minus 8 hours, shop money (HKD) only.
EXPECTED = [
    {
        "order_key": "shopify#hk-store#6123456789012",
        "channel": "shopify",
        "shop_id": "hk-store",
        "channel_order_id": "6123456789012",
        "status": "paid",
        "channel_status": "paid/unfulfilled",
        "buyer_id": "7788990011223",
        "currency": "HKD",
        "total": "626.00",
        "lines": [
            {"line_id": "15012345678901", "sku": "44001122334455", "seller_sku": "OOLONG-200",
             "quantity": 2, "unit_price": "188.00"},
            {"line_id": "15012345678902", "sku": "44001122334466", "seller_sku": "PUER-357",
             "quantity": 1, "unit_price": "200.00"},
        ],
        "ship_to": {
            "country": "HK", "province": "Kowloon", "city": "Kowloon", "district": None,
            "address": "Flat 8B, 23 Nathan Road, Tsim Sha Tsui", "postal_code": None,
            "name": "Wing Chan", "phone": "+852 5123 4567", "encrypted": False,
        },
        "created_at": "2026-03-14T10:05:12Z",
        "paid_at": "2026-03-14T10:05:11Z",
        "updated_at": "2026-03-14T10:05:20Z",
    },
    {
        "order_key": "shopify#hk-store#6123456700001",
        "channel": "shopify",
        "shop_id": "hk-store",
        "channel_order_id": "6123456700001",
        "status": "cancelled",
        "channel_status": "refunded/unfulfilled/cancelled",
        "buyer_id": "7788990011999",
        "currency": "HKD",
        "total": "156.00",
        "lines": [
            {"line_id": "15012345600001", "sku": "44001122334477", "seller_sku": "JASMINE-100",
             "quantity": 1, "unit_price": "156.00"},
        ],
        "ship_to": {
            "country": "US", "province": "Washington", "city": "Seattle", "district": None,
            "address": "410 Terry Ave N", "postal_code": "98109",
            "name": "Dana Smith", "phone": "+1 206 555 0143", "encrypted": False,
        },
        "created_at": "2026-03-13T01:40:02Z",
        "paid_at": "2026-03-13T01:40:01Z",
        "updated_at": "2026-03-13T07:12:48Z",
    },
    {
        "order_key": "shopify#hk-store#6123456600009",
        "channel": "shopify",
        "shop_id": "hk-store",
        "channel_order_id": "6123456600009",
        "status": "shipped",
        "channel_status": "paid/fulfilled",
        "buyer_id": "7788990012555",
        "currency": "HKD",
        "total": "348.00",
        "lines": [
            {"line_id": "15012345500001", "sku": "44001122334488", "seller_sku": "LONGJING-250",
             "quantity": 1, "unit_price": "318.00"},
        ],
        "ship_to": {
            "country": "CN", "province": "广东省", "city": "深圳市", "district": None,
            "address": "南山区科技园科苑路15号, 讯美科技广场3号楼1802室", "postal_code": "518057",
            "name": "娜 李", "phone": "+86 138 0013 8000", "encrypted": False,
        },
        "created_at": "2026-03-11T13:15:30Z",
        "paid_at": "2026-03-11T13:15:29Z",
        "updated_at": "2026-03-12T08:02:05Z",
    },
]


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_each_synthetic_order_maps_every_field(index):
    # GIVEN one order of the synthetic orders.json
    raw = synthetic_records(shopify)[index]
    # WHEN it is normalized for shop "hk-store"
    order = shopify.normalize(raw, "hk-store")
    # THEN every contract field is exactly the hand-derived value
    assert order.contract_dict() == EXPECTED[index]


def test_split_response_returns_the_orders_in_file_order():
    # GIVEN the synthetic response WHEN split THEN its three orders come back in order, ids readable
    assert [shopify.order_id_of(raw) for raw in synthetic_records(shopify)] == [
        "6123456789012", "6123456700001", "6123456600009"]


@pytest.mark.parametrize("document", [[], {"orders": None}, {"order": []}, "orders"])
def test_split_response_rejects_a_document_without_an_orders_list(document):
    # GIVEN something that is not an orders.json response WHEN split THEN a ValueError says what was expected
    with pytest.raises(ValueError, match="orders"):
        shopify.split_response(document)


@pytest.mark.parametrize(
    ("financial", "fulfillment", "cancelled_at", "closed_at", "status", "channel_status"),
    [
        ("pending", None, None, None, "pending_payment", "pending/unfulfilled"),
        ("authorized", None, None, None, "paid", "authorized/unfulfilled"),
        ("partially_paid", None, None, None, "paid", "partially_paid/unfulfilled"),
        ("paid", None, None, None, "paid", "paid/unfulfilled"),
        ("paid", "restocked", None, None, "paid", "paid/restocked"),
        ("paid", "partial", None, None, "shipped", "paid/partial"),
        ("paid", "fulfilled", None, None, "shipped", "paid/fulfilled"),
        ("paid", "fulfilled", None, "2026-03-20T00:00:00Z", "completed", "paid/fulfilled/closed"),
        ("partially_refunded", "fulfilled", None, None, "refunding", "partially_refunded/fulfilled"),
        ("refunded", "fulfilled", None, "2026-03-20T00:00:00Z", "refunded", "refunded/fulfilled/closed"),
        ("voided", None, None, None, "cancelled", "voided/unfulfilled"),
        ("expired", None, None, None, "cancelled", "expired/unfulfilled"),
        ("paid", "fulfilled", "2026-03-20T00:00:00Z", "2026-03-20T00:00:00Z", "cancelled",
         "paid/fulfilled/cancelled"),
    ],
)
def test_status_follows_the_documented_table(financial, fulfillment, cancelled_at, closed_at, status, channel_status):
    # GIVEN an order with these financial/fulfillment states
    raw = first_order()
    raw.update(financial_status=financial, fulfillment_status=fulfillment, cancelled_at=cancelled_at,
               closed_at=closed_at)
    # WHEN normalized
    order = shopify.normalize(raw, "default")
    # THEN the canonical status and the readable channel status are as documented
    assert (order.status.value, order.channel_status) == (status, channel_status)


@pytest.mark.parametrize(
    ("financial", "paid_at"),
    [("paid", "2026-03-14T10:05:11Z"), ("authorized", "2026-03-14T10:05:11Z"),
     ("refunded", "2026-03-14T10:05:11Z"), ("pending", None), ("voided", None)],
)
def test_paid_at_is_processed_at_only_once_money_was_taken_or_authorized(financial, paid_at):
    # GIVEN the first order with another financial status WHEN normalized THEN paid_at follows it
    raw = first_order()
    raw["financial_status"] = financial
    assert shopify.normalize(raw, "default").paid_at == paid_at


def test_guest_order_without_address_and_blank_sku_maps_to_nulls():
    # GIVEN a guest checkout with no shipping address, a line without a merchant sku or variant
    raw = first_order()
    raw["customer"] = None
    del raw["shipping_address"]
    raw["line_items"][0]["sku"] = ""
    raw["line_items"][0]["variant_id"] = None
    # WHEN normalized
    order = shopify.normalize(raw, "default").contract_dict()
    # THEN buyer, sku, seller_sku and the whole ship_to are null (encrypted false)
    assert order["buyer_id"] is None
    assert (order["lines"][0]["sku"], order["lines"][0]["seller_sku"]) == (None, None)
    assert order["ship_to"] == NULL_SHIP_TO


def test_money_keeps_the_platform_precision():
    # GIVEN prices with three decimals (as a KWD/BHD shop sends them)
    raw = first_order()
    raw["total_price"] = "12.345"
    raw["line_items"][0]["price"] = "1.500"
    # WHEN normalized THEN the digits are kept exactly, never through float
    order = shopify.normalize(raw, "default").contract_dict()
    assert (order["total"], order["lines"][0]["unit_price"]) == ("12.345", "1.500")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda o: o.pop("id"), "id: missing"),
        (lambda o: o.__setitem__("id", 1.5), "id: 1.5 is not an order id"),
        (lambda o: o["line_items"][1].__setitem__("quantity", "two"), "line_items[1].quantity: 'two' is not an integer"),
        (lambda o: o["line_items"][0].__setitem__("quantity", 2.5), "line_items[0].quantity: 2.5 is not an integer"),
        (lambda o: o["line_items"][0].__setitem__("quantity", -1), "line_items[0].quantity: -1 is negative"),
        (lambda o: o["line_items"][0].pop("id"), "line_items[0].id: missing"),
        (lambda o: o["line_items"][0].__setitem__("price", 188.0), "line_items[0].price: 188.0 is not a decimal amount"),
        (lambda o: o.__setitem__("total_price", "12,00"), "total_price: '12,00' is not a decimal amount"),
        (lambda o: o.__setitem__("total_price", "NaN"), "total_price: 'NaN' is not a finite amount"),
        (lambda o: o.__setitem__("financial_status", "bartered"), "financial_status: unknown value 'bartered'"),
        (lambda o: o.pop("financial_status"), "financial_status: missing"),
        (lambda o: o.__setitem__("fulfillment_status", "lost"), "fulfillment_status: unknown value 'lost'"),
        (lambda o: o.__setitem__("currency", None), "currency: missing"),
        (lambda o: o.__setitem__("currency", "hkd"), "currency"),
        (lambda o: o.__setitem__("updated_at", "yesterday"), "updated_at: 'yesterday' is not an ISO 8601 time"),
        (lambda o: o.__setitem__("created_at", "2026-03-14T18:05:12"), "created_at: '2026-03-14T18:05:12' has no time zone"),
        (lambda o: o.__setitem__("line_items", {"not": "a list"}), "line_items: expected a list, got dict"),
        (lambda o: o["line_items"].__setitem__(1, "x"), "line_items[1]: expected an object, got str"),
        (lambda o: o.__setitem__("shipping_address", "Kowloon"), "shipping_address: expected an object, got str"),
    ],
)
def test_malformed_orders_raise_with_a_reason_naming_the_field(mutate, reason):
    # GIVEN the first synthetic order with one field broken
    raw = first_order()
    mutate(raw)
    # WHEN normalized THEN MalformedOrderError names the field and what is wrong with it
    error = refused(shopify, raw, "default")
    assert reason in error.reason
    # AND the order id travels with the error for quarantine whenever it is readable
    assert error.channel_order_id == shopify.order_id_of(raw)


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"id": 1},
        {"id": 1, "financial_status": "paid", "currency": "HKD", "total_price": "1", "line_items": ["x"]},
        {"id": 1, "financial_status": "paid", "currency": "HKD", "total_price": "1", "customer": "x"},
        {"id": 1, "financial_status": "paid", "currency": "HKD", "total_price": "1",
         "created_at": "0001-01-01T00:00:00+08:00"},
        {"id": 1, "financial_status": "paid", "currency": "HKD", "total_price": "1",
         "shipping_address": {"country_code": "Hong Kong"}},
    ],
)
def test_odd_shapes_become_malformed_orders_never_other_errors(raw):
    # GIVEN a dict that is not a usable order WHEN normalized THEN only MalformedOrderError comes out
    refused(shopify, raw, "default")


@pytest.mark.parametrize("raw", [None, "6123456789012", [], {"id": None}, {"id": {"x": 1}}, {"id": True}])
def test_order_id_of_never_raises(raw):
    # GIVEN input with no readable id WHEN asked for the id THEN None, not an exception
    assert shopify.order_id_of(raw) is None
