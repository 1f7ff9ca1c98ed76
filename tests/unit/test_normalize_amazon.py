"""Amazon normalizer: every field of the synthetic getOrders + getOrderItems file, money rules, malformed input."""

import pytest
from oms.normalizers import amazon

from tests.unit.normalize_helpers import (
    NULL_SHIP_TO,
    refused,
    synthetic_document,
    synthetic_record,
    synthetic_records,
)


def unshipped_record() -> dict:
    return synthetic_record(amazon, 0)

# Hand-derived from amazon_sp_api_synthetic.json (times are already UTC there).
EXPECTED = [
    {
        "order_key": "amazon#eu-seller#028-4417392-5539521",
        "channel": "amazon",
        "shop_id": "eu-seller",
        "channel_order_id": "028-4417392-5539521",
        "status": "paid",
        "channel_status": "Unshipped",
        "buyer_id": "7x2kq9hv4m1p8zt@marketplace.amazon.de",
        "currency": "EUR",
        "total": "87.48",
        "lines": [
            # ItemPrice 51.98 is for two units
            {"line_id": "41733298127654", "sku": "B0CX1Y2Z3A", "seller_sku": "TEA-GRN-100G",
             "quantity": 2, "unit_price": "25.99"},
            {"line_id": "41733298127788", "sku": "B0CX1Y9K8L", "seller_sku": "CUP-PORC-2P",
             "quantity": 1, "unit_price": "31.00"},
        ],
        "ship_to": {
            "country": "DE", "province": "Baden-Württemberg", "city": "Stuttgart", "district": None,
            "address": "Königstraße 12", "postal_code": "70173",
            "name": "Jürgen Müller", "phone": "+49 711 555 0142", "encrypted": False,
        },
        "created_at": "2026-03-14T08:12:45Z",
        "paid_at": "2026-03-14T08:12:45Z",
        "updated_at": "2026-03-14T08:43:10Z",
    },
    {
        # cancelled: no OrderTotal, no address, no buyer; total = sum of ItemPrice (0), currency from the item
        "order_key": "amazon#eu-seller#250-7781204-3306645",
        "channel": "amazon",
        "shop_id": "eu-seller",
        "channel_order_id": "250-7781204-3306645",
        "status": "cancelled",
        "channel_status": "Canceled",
        "buyer_id": None,
        "currency": "JPY",
        "total": "0",
        "lines": [
            {"line_id": "10542266370018", "sku": "B0DJ4K5L6M", "seller_sku": "TEAPOT-CAST-08L",
             "quantity": 1, "unit_price": "0"},
        ],
        "ship_to": NULL_SHIP_TO,
        "created_at": "2026-03-13T14:02:11Z",
        "paid_at": None,
        "updated_at": "2026-03-13T16:20:54Z",
    },
    {
        "order_key": "amazon#eu-seller#503-9920318-1187406",
        "channel": "amazon",
        "shop_id": "eu-seller",
        "channel_order_id": "503-9920318-1187406",
        "status": "shipped",
        "channel_status": "Shipped",
        "buyer_id": "q8w3e5r7t9y1u2i@marketplace.amazon.co.jp",
        "currency": "JPY",
        "total": "4980",
        "lines": [
            {"line_id": "10542266370555", "sku": "B0DJ4K7P2Q", "seller_sku": "TEA-OOLONG-200G",
             "quantity": 1, "unit_price": "4980"},
        ],
        "ship_to": {
            "country": "JP", "province": "東京都", "city": "港区", "district": None,
            "address": "六本木6丁目10-1, 六本木ヒルズ 1203号室", "postal_code": "106-6112",
            "name": "王芳", "phone": "03-5555-0199", "encrypted": False,
        },
        "created_at": "2026-03-11T03:40:29Z",
        "paid_at": "2026-03-11T03:40:29Z",
        "updated_at": "2026-03-12T09:05:44Z",
    },
]


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_each_synthetic_order_maps_every_field(index):
    # GIVEN one joined order of the synthetic file
    raw = synthetic_records(amazon)[index]
    # WHEN it is normalized for shop "eu-seller"
    order = amazon.normalize(raw, "eu-seller")
    # THEN every contract field is exactly the hand-derived value
    assert order.contract_dict() == EXPECTED[index]


def test_split_response_joins_each_order_with_its_items():
    # GIVEN the synthetic file WHEN split
    records = synthetic_records(amazon)
    # THEN each record carries its order and the OrderItems of the same id
    assert [amazon.order_id_of(r) for r in records] == [
        "028-4417392-5539521", "250-7781204-3306645", "503-9920318-1187406"]
    assert [[item["OrderItemId"] for item in r["items"]] for r in records] == [
        ["41733298127654", "41733298127788"], ["10542266370018"], ["10542266370555"]]


def test_split_response_gives_an_order_without_an_items_entry_no_items():
    # GIVEN a file whose getOrderItems lacks one order
    document = synthetic_document("amazon")
    del document["getOrderItems"]["503-9920318-1187406"]
    # WHEN split THEN that order has items [] and still normalizes (no lines)
    record = amazon.split_response(document)[2]
    assert record["items"] == []
    assert amazon.normalize(record, "eu-seller").lines == []


@pytest.mark.parametrize("document", [[], {}, {"getOrders": {"payload": {}}}, {"getOrders": []},
                                      {"getOrders": {"payload": {"Orders": []}}, "getOrderItems": []}])
def test_split_response_rejects_other_shapes(document):
    # GIVEN something that is not the saved getOrders/getOrderItems pair WHEN split THEN ValueError
    with pytest.raises(ValueError, match="getOrders"):
        amazon.split_response(document)


@pytest.mark.parametrize(
    ("order_status", "status", "paid"),
    [
        ("Pending", "pending_payment", False),
        ("PendingAvailability", "pending_payment", False),
        ("Unshipped", "paid", True),
        ("PartiallyShipped", "paid", True),
        ("Shipped", "shipped", True),
        ("InvoiceUnconfirmed", "shipped", True),
        ("Canceled", "cancelled", False),
        ("Unfulfillable", "cancelled", False),
    ],
)
def test_status_table_and_paid_at_from_purchase_date(order_status, status, paid):
    # GIVEN the unshipped order relabelled with another OrderStatus
    raw = unshipped_record()
    raw["order"]["OrderStatus"] = order_status
    # WHEN normalized
    order = amazon.normalize(raw, "eu")
    # THEN status maps per the table, channel_status is the raw value, paid_at is PurchaseDate once paid
    assert (order.status.value, order.channel_status) == (status, order_status)
    assert order.paid_at == ("2026-03-14T08:12:45Z" if paid else None)


@pytest.mark.parametrize(
    ("amount", "quantity", "unit_price"),
    [
        ("51.98", 2, "25.99"),      # exact: the platform's two places kept
        ("10.00", 4, "2.50"),
        ("1.00", 8, "0.125"),       # exact beyond two places: kept, not rounded
        ("0.00001", 1, "0.00001"),  # exact beyond four places: kept
        ("10.00", 3, "3.3333"),     # inexact: 4 places, half-even
        ("0.02", 3, "0.0067"),
        ("100", 7, "14.2857"),
        ("4980", 0, "4980"),        # nothing ordered: the ItemPrice as is
    ],
)
def test_unit_price_is_item_price_divided_by_quantity(amount, quantity, unit_price):
    # GIVEN an item whose ItemPrice covers `quantity` units
    raw = unshipped_record()
    raw["items"][0]["ItemPrice"]["Amount"] = amount
    raw["items"][0]["QuantityOrdered"] = quantity
    # WHEN normalized THEN the unit price is the exact quotient, or rounded to 4 places when it is not exact
    assert amazon.normalize(raw, "eu").contract_dict()["lines"][0]["unit_price"] == unit_price


def test_pending_order_without_prices_or_total_takes_the_marketplace_currency():
    # GIVEN a pending order: no OrderTotal, an item without ItemPrice, no address
    raw = unshipped_record()
    raw["order"].update(OrderStatus="Pending", MarketplaceId="A1F83G8C2ARO7P")
    for key in ("OrderTotal", "ShippingAddress", "BuyerInfo"):
        del raw["order"][key]
    raw["items"] = raw["items"][:1]
    del raw["items"][0]["ItemPrice"]
    # WHEN normalized
    order = amazon.normalize(raw, "uk").contract_dict()
    # THEN unit price and total are 0, the currency is the UK marketplace's, everything personal is null
    assert (order["total"], order["currency"], order["lines"][0]["unit_price"]) == ("0", "GBP", "0")
    assert (order["status"], order["buyer_id"], order["paid_at"]) == ("pending_payment", None, None)
    assert order["ship_to"] == NULL_SHIP_TO


def test_total_without_order_total_is_the_sum_of_item_prices():
    # GIVEN the unshipped order without OrderTotal
    raw = unshipped_record()
    del raw["order"]["OrderTotal"]
    # WHEN normalized THEN total = 51.98 + 31.00 and the currency comes from the items
    order = amazon.normalize(raw, "eu").contract_dict()
    assert (order["total"], order["currency"]) == ("82.98", "EUR")


def test_order_total_without_currency_falls_back_to_the_items_currency():
    # GIVEN an OrderTotal without CurrencyCode, items priced in EUR, and an unknown marketplace
    raw = unshipped_record()
    del raw["order"]["OrderTotal"]["CurrencyCode"]
    raw["order"]["MarketplaceId"] = "NOT-A-MARKETPLACE"
    # WHEN normalized THEN the currency is the items' and the total still the OrderTotal amount
    order = amazon.normalize(raw, "eu").contract_dict()
    assert (order["total"], order["currency"]) == ("87.48", "EUR")


def test_district_is_the_first_of_district_county_municipality_and_address_lines_join():
    # GIVEN an address with County and Municipality (no District) and three address lines
    raw = unshipped_record()
    raw["order"]["ShippingAddress"].update(County="Stuttgart-Mitte", Municipality="Stuttgart",
                                           AddressLine2="", AddressLine3="Hinterhaus")
    # WHEN normalized THEN district = County and the empty line is skipped
    ship_to = amazon.normalize(raw, "eu").contract_dict()["ship_to"]
    assert (ship_to["district"], ship_to["address"]) == ("Stuttgart-Mitte", "Königstraße 12, Hinterhaus")


def test_marketplace_table_covers_the_known_marketplaces_with_iso_currencies():
    # GIVEN the table WHEN read THEN a few anchors hold and every currency is three capitals
    assert amazon.MARKETPLACE_CURRENCY["ATVPDKIKX0DER"] == "USD"
    assert amazon.MARKETPLACE_CURRENCY["A1VC38T7YXB528"] == "JPY"
    assert amazon.MARKETPLACE_CURRENCY["A1PA6795UKMFR9"] == "EUR"
    assert all(len(code) == 3 and code.isupper() for code in amazon.MARKETPLACE_CURRENCY.values())


def _drop_currency(raw: dict) -> None:
    del raw["order"]["OrderTotal"]
    raw["order"]["MarketplaceId"] = "XX"
    for item in raw["items"]:
        del item["ItemPrice"]["CurrencyCode"]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r: r["order"].pop("AmazonOrderId"), "order.AmazonOrderId: missing"),
        (lambda r: r["order"].__setitem__("AmazonOrderId", 12345), "order.AmazonOrderId: 12345 is not an order id"),
        (lambda r: r.__setitem__("order", "garbage"), "order.AmazonOrderId: missing"),
        (lambda r: r["order"].__setitem__("OrderStatus", "Lost"), "order.OrderStatus: unknown value 'Lost'"),
        (lambda r: r["order"].pop("OrderStatus"), "order.OrderStatus: missing"),
        (lambda r: r["items"][1].__setitem__("QuantityOrdered", "two"), "items[1].QuantityOrdered: 'two' is not an integer"),
        (lambda r: r["items"][0].__setitem__("QuantityOrdered", 1.5), "items[0].QuantityOrdered: 1.5 is not an integer"),
        (lambda r: r["items"][0].__setitem__("QuantityOrdered", -2), "items[0].QuantityOrdered: -2 is negative"),
        (lambda r: r["items"][0].pop("OrderItemId"), "items[0].OrderItemId: missing"),
        (lambda r: r["items"][0]["ItemPrice"].__setitem__("Amount", "abc"),
         "items[0].ItemPrice.Amount: 'abc' is not a decimal amount"),
        (lambda r: r["items"][0].__setitem__("ItemPrice", "51.98"), "items[0].ItemPrice: expected an object, got str"),
        (lambda r: r["order"]["OrderTotal"].__setitem__("Amount", 87.48),
         "order.OrderTotal.Amount: 87.48 is not a decimal amount"),
        (_drop_currency, "currency: no OrderTotal.CurrencyCode, no ItemPrice.CurrencyCode and MarketplaceId 'XX'"),
        (lambda r: r["order"].__setitem__("PurchaseDate", "14/03/2026"),
         "order.PurchaseDate: '14/03/2026' is not an ISO 8601 time"),
        (lambda r: r.__setitem__("items", "none"), "items: expected a list, got str"),
        (lambda r: r["items"].__setitem__(0, None), "items[0]: expected an object, got NoneType"),
        (lambda r: r["order"]["ShippingAddress"].__setitem__("CountryCode", "Germany"), "ship_to.country"),
    ],
)
def test_malformed_orders_raise_with_a_reason_naming_the_field(mutate, reason):
    # GIVEN the unshipped order with one field broken
    raw = unshipped_record()
    mutate(raw)
    # WHEN normalized THEN MalformedOrderError names the field and what is wrong with it
    error = refused(amazon, raw, "eu")
    assert reason in error.reason
    # AND the order id travels with the error for quarantine whenever it is readable
    assert error.channel_order_id == amazon.order_id_of(raw)


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"order": None, "items": None},
        {"order": {"AmazonOrderId": "1", "OrderStatus": "Shipped", "OrderTotal": []}},
        {"order": {"AmazonOrderId": "1", "OrderStatus": "Shipped", "MarketplaceId": "ATVPDKIKX0DER",
                   "LastUpdateDate": "9999-12-31T23:59:59-08:00"}},
        {"order": {"AmazonOrderId": "1", "OrderStatus": "Shipped"},
         "items": [{"OrderItemId": "a", "QuantityOrdered": 3, "ItemPrice": {"Amount": "1" * 40}}]},
    ],
)
def test_odd_shapes_become_malformed_orders_never_other_errors(raw):
    # GIVEN a dict that is not a usable record WHEN normalized THEN only MalformedOrderError comes out
    refused(amazon, raw, "eu")


@pytest.mark.parametrize("raw", [None, "028-4417392-5539521", {}, {"order": []}, {"order": {"AmazonOrderId": 1}}])
def test_order_id_of_never_raises(raw):
    # GIVEN input with no readable id WHEN asked for the id THEN None, not an exception
    assert amazon.order_id_of(raw) is None
