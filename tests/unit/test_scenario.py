"""Scenario generation and the order book, without HTTP: realistic payloads, determinism, rates,
re-touched orders, late cancellations, malformed orders our normalizers reject, backdating, ids, and
the fraud ring the risk rules must catch while normal buyers stay below them."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from oms.domain.address_fingerprint import address_fingerprint
from oms.domain.order import MalformedOrderError
from oms.normalizers import normalizer_for
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import (
    DOUBLE_11,
    STEADY_DAY,
    FraudRing,
    Scenario,
    ScenarioRunner,
    generator_for,
)

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


def test_channel_backdates_shift_each_channels_timestamps_by_its_own_amount():
    # GIVEN Amazon backdated by its 2 min 15 s window lag, Shopify by nothing, others by the scenario's minute
    amazon, shopify = OrderBook("amazon"), OrderBook("shopify")
    runner = ScenarioRunner([amazon, shopify], Scenario(
        backdate=timedelta(minutes=1), channel_backdates={"amazon": timedelta(minutes=2, seconds=15),
                                                          "shopify": timedelta(0)}))
    # WHEN each gets an order now, and a backlog
    before = datetime.now(timezone.utc)
    amazon_entry, shopify_entry = amazon.get(runner.create_one()), shopify.get(runner.create_one())
    runner.seed_backlog(3, spread=timedelta(minutes=10))
    # THEN each order is as old as its channel's backdate, and no Amazon order (backlog included) is newer
    assert abs(before - amazon_entry.updated_at - timedelta(minutes=2, seconds=15)) <= timedelta(seconds=1)
    assert abs(before - shopify_entry.updated_at) <= timedelta(seconds=1)
    newest = {book.channel: max(entry.updated_at for entry in book.entries()) for book in (amazon, shopify)}
    assert newest["amazon"] <= before - timedelta(minutes=2, seconds=14)
    assert newest["shopify"] > before - timedelta(seconds=2)


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


# Fraud ring ---------------------------------------------------------------------------------------

CHANNELS = ("taobao", "jd", "pdd", "douyin", "kuaishou", "amazon", "aliexpress", "shopify")
DAY = timedelta(hours=24)


def generated_day(orders_per_shop: int, fraud_ring: FraudRing | None) -> tuple[ScenarioRunner, dict]:
    """A day of orders in every channel's shop, with the demo's mess, everything due applied now."""
    books = {channel: OrderBook(channel) for channel in CHANNELS}
    scenario = Scenario(cancel_share=0.1, duplicate_share=0.1, malformed_share=0.02, fraud_ring=fraud_ring)
    runner = ScenarioRunner(list(books.values()), scenario)
    runner.seed_backlog(orders_per_shop, spread=DAY - timedelta(minutes=1))
    runner.apply_due_updates(all_now=True)
    return runner, books


def risk_view(books: dict, leave_out: set[str] = frozenset()) -> tuple[dict, dict]:
    """What the risk aggregates would hold: address fingerprint -> accounts, and account -> its orders as
    (paid at, returned), from every order our normalizers accept, apart from `leave_out`."""
    accounts, orders = defaultdict(set), defaultdict(list)
    for channel, book in books.items():
        normalizer = normalizer_for(channel)
        for entry in book.entries():
            if entry.malformed or entry.order_id in leave_out:
                continue
            order = normalizer.normalize(entry.payload, "s")
            if order.buyer_id is None:
                continue
            account = (channel, order.buyer_id)
            orders[account].append((order.paid_at or order.created_at, order.status in ("refunding", "refunded")))
            fingerprint = address_fingerprint(channel, order.ship_to) if order.ship_to else None
            if fingerprint is not None:
                accounts[fingerprint].add(account)
    return accounts, orders


def most_in_24_hours(orders: list[tuple[str, bool]]) -> int:
    times = sorted(datetime.fromisoformat(paid) for paid, _ in orders)
    return max(sum(1 for earlier in times if last - DAY <= earlier <= last) for last in times)


def return_rate(orders: list[tuple[str, bool]]) -> float:
    return sum(returned for _, returned in orders) / len(orders)


@pytest.fixture(scope="module")
def fraud_day():
    return generated_day(1000, FraudRing())


def test_the_fraud_ring_ships_from_eight_new_accounts_to_one_flat_written_several_ways(fraud_day):
    # GIVEN a generated day with the fraud ring on (ring on Shopify)
    runner, books = fraud_day
    ring = [books["shopify"].get(order_id).payload for order_id in runner.ring_ids]
    # THEN its 8 orders come from 8 accounts, their address lines spelled at least 4 ways ...
    assert len(ring) == 8 and len({order["customer"]["id"] for order in ring}) == 8
    assert len({order["shipping_address"]["address1"] for order in ring}) >= 4
    # ... and all of them are one address to the risk engine: 5 accounts or more on one fingerprint
    normalizer = normalizer_for("shopify")
    fingerprints = {address_fingerprint("shopify", normalizer.normalize(order, "s").ship_to) for order in ring}
    assert len(fingerprints) == 1
    accounts, _ = risk_view({"shopify": books["shopify"]})
    assert len(accounts[fingerprints.pop()]) >= 5


def test_the_serial_returner_orders_more_than_15_times_in_24_hours_and_sends_most_back(fraud_day):
    # GIVEN a generated day with the fraud ring on (returner on Douyin)
    runner, books = fraud_day
    normalizer = normalizer_for("douyin")
    orders = [normalizer.normalize(books["douyin"].get(order_id).payload, "s") for order_id in runner.returner_ids]
    # THEN one account placed 19 orders within 24 hours, 14 of them refunded (74% > 60%) ...
    assert len({order.buyer_id for order in orders}) == 1
    history = [(order.paid_at, order.status in ("refunding", "refunded")) for order in orders]
    assert len(history) == 19 and most_in_24_hours(history) > 15
    assert return_rate(history) > 0.6 and sorted(runner.refunded_ids) == sorted(
        order.channel_order_id for order in orders if order.status == "refunded")
    # ... with a plain phone an SMS code can reach (Douyin encrypts everyone else's)
    assert all(not order.ship_to.encrypted and re.fullmatch(r"1[3-9]\d{9}", order.ship_to.phone) for order in orders)


def test_normal_buyers_stay_below_both_risk_rules_over_a_generated_day(fraud_day):
    # GIVEN a generated day, the fraud ring's orders left out
    runner, books = fraud_day
    accounts, orders = risk_view(books, leave_out=set(runner.ring_ids) | set(runner.returner_ids))
    assert len(orders) > 5000  # the day really was generated and read
    # THEN no address has 5 accounts (a handful of shared places would make every order a ring) ...
    assert max(len(users) for users in accounts.values()) < 5
    # ... and no buyer has more than 15 orders in 24 h with more than 60% returned
    busy = {account: history for account, history in orders.items() if most_in_24_hours(history) > 15}
    assert all(return_rate(history) <= 0.6 for history in busy.values()), busy


def test_the_returns_arrive_after_the_orders_they_return_so_the_oms_reads_them_paid_first():
    # GIVEN the ring on, its returns 20 s and the returner's next order 45 s after the backlog is seeded
    books = [OrderBook("shopify"), OrderBook("douyin")]
    runner = ScenarioRunner(books, Scenario(fraud_ring=FraudRing(refund_after=20, late_after=45)))
    runner.seed_backlog(3)
    # THEN right after seeding every returner order is still paid, and the returns wait their turn
    normalizer = normalizer_for("douyin")
    assert {normalizer.normalize(books[1].get(i).payload, "s").status for i in runner.returner_ids} == {"paid"}
    assert runner.apply_due_updates() == 0 and runner.pending_updates >= 15
    assert len(runner.returner_ids) == 18 and runner.refunded_ids == []


def test_the_fraud_ring_is_off_by_default_and_refuses_a_channel_that_cannot_play_it():
    # GIVEN the default scenario  THEN no ring
    runner = ScenarioRunner([OrderBook("shopify"), OrderBook("douyin")], STEADY_DAY)
    runner.seed_backlog(5)
    assert Scenario().fraud_ring is None and runner.ring_ids == runner.returner_ids == []
    # AND a returner on a channel without refunds here is refused up front
    with pytest.raises(ValueError, match="amazon"):
        ScenarioRunner([OrderBook("amazon")], Scenario(fraud_ring=FraudRing(returner_channel="amazon")))
