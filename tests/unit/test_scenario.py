"""Scenario generation and the order book, without HTTP: realistic payloads, determinism, rates,
re-touched orders, late cancellations, malformed orders our normalizers reject, backdating, ids."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from oms.domain.order import MalformedOrderError
from oms.normalizers import normalizer_for
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import DOUBLE_11, STEADY_DAY, Scenario, ScenarioRunner, generator_for

FAST = 200 * 86400  # orders per day for ~200 orders per second


def content(entry) -> tuple:
    """What a seed decides: everything except ids and times."""
    payload = entry.payload
    if "line_items" in payload:
        lines = tuple((l["sku"], l.get("quantity"), l["price"]) for l in payload["line_items"])
        return lines, payload["shipping_address"]["country_code"], payload["customer"]["id"], entry.malformed, entry.open
    items = tuple((i["SellerSKU"], i.get("QuantityOrdered"), (i.get("ItemPrice") or {}).get("Amount"))
                  for i in payload["items"])
    return items, payload["order"]["OrderStatus"], payload["order"]["AmazonOrderId"][:3], entry.malformed


def run_backlog(channel: str, scenario: Scenario, count: int = 40) -> list:
    book = OrderBook(channel)
    ids = ScenarioRunner(book, scenario).seed_backlog(count)
    return [content(book.get(order_id)) for order_id in ids]


@pytest.mark.parametrize("channel", ["shopify", "amazon"])
def test_the_same_seed_gives_the_same_orders_and_another_seed_others(channel):
    # GIVEN a messy scenario  WHEN it is run twice with one seed and once with another
    scenario = Scenario(cancel_share=0.2, duplicate_share=0.2, malformed_share=0.1, seed=42)
    first, second = run_backlog(channel, scenario), run_backlog(channel, scenario)
    other = run_backlog(channel, Scenario(cancel_share=0.2, duplicate_share=0.2, malformed_share=0.1, seed=43))
    # THEN the same seed repeats every decision; ids still differ between runs
    assert first == second
    assert first != other


def test_rates_steady_day_double_11_and_speed():
    # GIVEN the presets  THEN a steady day is 3000 orders a day and Double 11 fifty times that
    assert Scenario(orders_per_day=86400).orders_per_second == pytest.approx(1.0)
    assert STEADY_DAY.orders_per_second == pytest.approx(3000 / 86400)
    assert DOUBLE_11.orders_per_second == pytest.approx(50 * STEADY_DAY.orders_per_second)
    # AND speed compresses time
    assert Scenario(orders_per_day=86400, speed=10).orders_per_second == pytest.approx(10.0)


def test_shopify_orders_look_like_the_rest_api():
    # GIVEN a Shopify generator  WHEN an order is created
    book = OrderBook("shopify")
    order_id = generator_for("shopify", book).create(datetime(2026, 11, 11, 1, 2, 3, 456, tzinfo=timezone.utc))
    order = book.get(order_id).payload
    # THEN it has Shopify's types and shapes, times in the shop's offset with whole seconds
    assert isinstance(order["id"], int) and str(order["id"]) == order_id and order["id"] < 2**53
    assert order["name"] == "#1001" and order["order_number"] == 1001
    assert order["created_at"] == order["updated_at"] == "2026-11-11T09:02:03+08:00"
    assert order["financial_status"] == "paid" and order["fulfillment_status"] is None and order["cancelled_at"] is None
    assert isinstance(order["customer"]["id"], int) and order["shipping_address"]["country_code"]
    for line in order["line_items"]:
        assert {"id", "variant_id", "sku", "price", "quantity"} <= set(line) and isinstance(line["quantity"], int)
    subtotal = sum(Decimal(line["price"]) * line["quantity"] for line in order["line_items"])
    assert Decimal(order["subtotal_price"]) == subtotal
    # AND our normalizer accepts it
    assert normalizer_for("shopify").normalize(order, "hk").status == "paid"


def test_amazon_orders_look_like_get_orders_and_get_order_items():
    # GIVEN an Amazon generator  WHEN an order is created
    book = OrderBook("amazon")
    order_id = generator_for("amazon", book).create(datetime(2026, 11, 11, 1, 2, 3, tzinfo=timezone.utc))
    record = book.get(order_id).payload
    order, items = record["order"], record["items"]
    # THEN the ids, times, money and buyer are shaped like SP-API's
    assert re.fullmatch(r"\d{3}-\d{7}-\d{7}", order_id) and order["AmazonOrderId"] == order_id
    assert order["PurchaseDate"] == order["LastUpdateDate"] == "2026-11-11T01:02:03Z"
    assert order["OrderStatus"] == "Unshipped" and order["MarketplaceId"] == "A1PA6795UKMFR9"
    assert order["BuyerInfo"]["BuyerEmail"].endswith("@marketplace.amazon.de")
    assert order["ShippingAddress"]["CountryCode"] == "DE"
    total = sum(Decimal(i["ItemPrice"]["Amount"]) + Decimal(i["ShippingPrice"]["Amount"]) for i in items)
    assert Decimal(order["OrderTotal"]["Amount"]) == total
    for item in items:
        assert {"OrderItemId", "ASIN", "SellerSKU", "QuantityOrdered", "ItemPrice"} <= set(item)
    # AND our normalizer accepts it
    assert normalizer_for("amazon").normalize(record, "eu").status == "paid"


def test_the_same_sku_always_has_the_same_unit_price_times_its_quantity():
    # GIVEN many Amazon orders
    book = OrderBook("amazon")
    ScenarioRunner(book, Scenario(cancel_share=0, duplicate_share=0)).seed_backlog(60)
    # WHEN ItemPrice is divided by QuantityOrdered  THEN each SKU has a single unit price
    units: dict[str, set] = {}
    for entry in book.entries():
        for item in entry.payload["items"]:
            units.setdefault(item["SellerSKU"], set()).add(Decimal(item["ItemPrice"]["Amount"]) / item["QuantityOrdered"])
    assert units and all(len(prices) == 1 for prices in units.values())


@pytest.mark.parametrize("channel", ["shopify", "amazon"])
def test_late_cancellations_arrive_as_a_newer_version(channel):
    # GIVEN a fast scenario in which every order is cancelled ~0.2 s later
    book = OrderBook(channel)
    runner = ScenarioRunner(book, Scenario(orders_per_day=FAST, cancel_share=1.0, duplicate_share=0,
                                           late_update_seconds=0.2))
    # WHEN it creates 10 orders and runs until its late updates are done
    runner.start(total=10)
    runner.wait(5)
    # THEN every order has two versions, the later one cancelled with a later updated_at
    assert sorted(runner.cancelled_ids) == sorted(runner.created_ids) and len(book) == 10
    normalizer = normalizer_for(channel)
    for entry in book.entries():
        first, last = book.versions(entry.order_id)
        assert last.updated_at > first.updated_at and entry.created_at == first.updated_at
        assert not entry.open
        assert normalizer.normalize(entry.payload, "s").status == "cancelled"
        if channel == "shopify":
            assert entry.payload["cancelled_at"] == entry.payload["updated_at"]
        else:  # Amazon hides the address, buyer and total of a cancelled order
            assert entry.payload["order"]["OrderStatus"] == "Canceled"
            assert not {"ShippingAddress", "BuyerInfo", "OrderTotal"} & set(entry.payload["order"])


def test_re_touched_orders_change_only_their_update_time():
    # GIVEN a backlog in which every order is re-touched later
    book = OrderBook("shopify")
    runner = ScenarioRunner(book, Scenario(cancel_share=0, duplicate_share=1.0, late_update_seconds=30))
    runner.seed_backlog(10)
    # THEN each has a second version, later, identical apart from updated_at
    assert sorted(runner.touched_ids) == sorted(runner.created_ids)
    for entry in book.entries():
        first, last = book.versions(entry.order_id)
        assert last.updated_at > first.updated_at
        assert {k: v for k, v in last.payload.items() if k != "updated_at"} == \
               {k: v for k, v in first.payload.items() if k != "updated_at"}


@pytest.mark.parametrize("channel", ["shopify", "amazon"])
def test_malformed_orders_keep_their_id_and_our_normalizer_rejects_them(channel):
    # GIVEN a scenario where every order is malformed
    book = OrderBook(channel)
    runner = ScenarioRunner(book, Scenario(malformed_share=1.0, cancel_share=0.5, duplicate_share=0))
    runner.seed_backlog(20)
    normalizer = normalizer_for(channel)
    # THEN the book knows them, and normalizing each fails with its id still readable
    assert book.malformed_ids() == book.order_ids() == set(runner.malformed_ids)
    for entry in book.entries():
        assert normalizer.order_id_of(entry.payload) == entry.order_id
        with pytest.raises(MalformedOrderError):
            normalizer.normalize(entry.payload, "s")


def test_a_malformation_can_be_chosen_by_name():
    # GIVEN a Shopify generator  WHEN malformed orders are asked for by default and by name
    book = OrderBook("shopify")
    orders = generator_for("shopify", book)
    moment = datetime(2026, 11, 11, tzinfo=timezone.utc)
    default = book.get(orders.create(moment, malformed=True)).payload["line_items"][0]
    priced = book.get(orders.create(moment, malformed="price_text")).payload["line_items"][0]
    # THEN the default is a non-numeric quantity, the named one a non-numeric price
    assert default["quantity"] == "two" and priced["price"] == "N/A"
    with pytest.raises(ValueError):
        orders.create(moment, malformed="upside_down")


def test_backdate_shifts_every_timestamp_into_the_past():
    # GIVEN a scenario backdated 3 minutes  WHEN an order is created now
    book = OrderBook("amazon")
    runner = ScenarioRunner(book, Scenario(backdate=timedelta(minutes=3)))
    before = datetime.now(timezone.utc)
    entry = book.get(runner.create_one())
    # THEN its times are 3 minutes old (whole seconds), already past Amazon's 2-minute lag
    assert timedelta(minutes=3) - timedelta(seconds=1) <= before - entry.updated_at <= timedelta(minutes=3, seconds=1)
    assert entry.payload["order"]["LastUpdateDate"] == entry.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_ids_are_unique_across_runners_and_books():
    # GIVEN two runners with the same seed on two books  WHEN both create orders
    first, second = OrderBook("shopify"), OrderBook("shopify")
    ScenarioRunner(first, STEADY_DAY).seed_backlog(200)
    ScenarioRunner(second, STEADY_DAY).seed_backlog(200)
    # THEN no order id (nor line id) repeats
    assert not first.order_ids() & second.order_ids()
    lines = [line["id"] for book in (first, second) for e in book.entries() for line in e.payload["line_items"]]
    assert len(lines) == len(set(lines))


def test_a_run_stops_after_its_duration():
    # GIVEN a scenario of ~200 orders per second  WHEN it runs for 0.3 s
    book = OrderBook("shopify")
    runner = ScenarioRunner(book, Scenario(orders_per_day=FAST, cancel_share=0, duplicate_share=0)).start(duration=0.3)
    runner.wait(5)
    # THEN it created roughly 60 orders, then stopped
    assert 20 <= runner.created <= 80
    created = runner.created
    time.sleep(0.1)
    assert runner.created == created == len(book)


def test_the_order_book_is_the_ground_truth():
    # GIVEN a book with three orders, one updated later
    book = OrderBook("shopify")
    t0 = datetime(2026, 11, 11, tzinfo=timezone.utc)
    for number, minute in (("3", 5), ("1", 5), ("2", 1)):
        book.put(number, {"id": number}, updated_at=t0 + timedelta(minutes=minute), created_at=t0)
    book.put("2", {"id": "2", "v": 2}, updated_at=t0 + timedelta(minutes=9), created_at=t0)
    book.add_malformed("4", {"id": "4", "line_items": [{"quantity": "two"}]}, updated_at=t0, created_at=t0)
    # THEN queries are ascending by (updated_at, id) within inclusive bounds
    assert [e.order_id for e in book.select(t0, t0 + timedelta(minutes=5))] == ["4", "1", "3"]
    assert [e.order_id for e in book.select(t0 + timedelta(minutes=5), None)] == ["1", "3", "2"]
    # AND the ground truth holds latest versions, history and first appearance
    assert book.latest()["2"] == {"id": "2", "v": 2} and len(book.versions("2")) == 2
    assert book.appearance_times()["2"] == book.versions("2")[0].appeared_at
    assert book.order_ids(include_malformed=False) == {"1", "2", "3"} and book.malformed_ids() == {"4"}
    # AND naive times are refused
    with pytest.raises(ValueError):
        book.put("5", {}, updated_at=datetime(2026, 1, 1), created_at=t0)


def test_a_runner_needs_books_that_know_their_channel():
    # GIVEN a book without a channel  THEN no runner can feed it
    with pytest.raises(ValueError):
        ScenarioRunner(OrderBook(), STEADY_DAY)
