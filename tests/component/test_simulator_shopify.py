"""The Shopify simulator over real HTTP, with plain `requests` as the client: auth, parameter rules,
Link-header pagination (also while orders keep arriving), status filter, the leaky bucket and faults."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from omsdev.simulators.base import FaultPlan, ManualClock
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import Scenario, ScenarioRunner, ShopifyOrders, generator_for
from omsdev.simulators.shopify import INVALID_TOKEN, ShopifySimulator

TOKEN = "shpat_component_test"
QUIET = Scenario(cancel_share=0, duplicate_share=0)
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=timezone.utc)


def get(simulator: ShopifySimulator, resource: str = "orders.json", *, token: str = TOKEN, timeout: float = 5, **params):
    return requests.get(f"{simulator.url}/admin/api/2024-04/{resource}",
                        headers={"X-Shopify-Access-Token": token}, params=params, timeout=timeout)


def follow(url: str) -> requests.Response:
    return requests.get(url, headers={"X-Shopify-Access-Token": TOKEN}, timeout=5)


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("shopify")


@pytest.fixture
def shop(book):
    # A big usage plan, so only the rate-limit tests meet the bucket.
    with ShopifySimulator("oms-test.myshopify.com", TOKEN, book, rate_multiplier=1000) as simulator:
        yield simulator


@pytest.fixture
def orders(book) -> ShopifyOrders:
    return generator_for("shopify", book, seed=5)


def test_a_wrong_or_missing_access_token_is_a_401_with_shopifys_message(shop):
    # GIVEN a store  WHEN called with a wrong token, then with none
    wrong = get(shop, token="shpat_wrong")
    missing = requests.get(f"{shop.url}/admin/api/2024-04/orders.json", timeout=5)
    # THEN both are 401 with Shopify's message, logged as auth failures
    for response in (wrong, missing):
        assert response.status_code == 401
        assert response.json() == {"errors": INVALID_TOKEN}
    assert shop.stats.count("auth_failed") == 2


@pytest.mark.parametrize("limit", ["0", "251", "many"])
def test_a_limit_outside_1_to_250_is_a_400(shop, limit):
    # WHEN a page size Shopify does not allow is asked for
    response = get(shop, limit=limit)
    # THEN 400 with an errors body naming the parameter
    assert response.status_code == 400
    assert "limit" in response.json()["errors"]
    assert shop.stats.count("bad_request") == 1


def test_the_default_page_is_50_orders_newest_first(shop, orders):
    # GIVEN 60 orders created a minute apart
    ids = [orders.create(T0 + timedelta(minutes=i)) for i in range(60)]
    # WHEN the first page is read without limit or order
    response = get(shop)
    # THEN it holds the 50 newest, created_at descending, and links to the next page
    assert [str(o["id"]) for o in response.json()["orders"]] == ids[::-1][:50]
    assert "next" in response.links and "previous" not in response.links


def test_page_info_with_a_filter_or_an_unreadable_page_info_is_a_400(shop, orders):
    # GIVEN a first page with a next link
    for i in range(3):
        orders.create(T0 + timedelta(minutes=i))
    first = get(shop, limit=1, status="any", updated_at_min=T0.isoformat())
    next_url = first.links["next"]["url"]
    # WHEN the next link is followed with a filter repeated, or with a made-up page_info
    repeated = follow(next_url + "&status=any")
    garbage = get(shop, page_info="not-a-cursor")
    # THEN both are 400 about page_info
    assert repeated.status_code == garbage.status_code == 400
    assert "page_info" in repeated.json()["errors"] and "page_info" in garbage.json()["errors"]
    # AND limit (and fields) are allowed beside page_info
    assert follow(next_url.replace("limit=1", "limit=2")).status_code == 200


def test_link_pagination_returns_every_order_once_ascending_by_updated_at_and_previous_goes_back(shop, orders):
    # GIVEN 120 orders, some updated twice, in a store
    ids = [orders.create(T0 + timedelta(minutes=i)) for i in range(120)]
    for order_id in ids[:30]:
        orders.touch(order_id, T0 + timedelta(hours=5))
    # WHEN every page is read through the Link header, 25 at a time, oldest update first
    pages = [get(shop, limit=25, status="any", order="updated_at asc", updated_at_min=T0.isoformat())]
    while "next" in pages[-1].links:
        pages.append(follow(pages[-1].links["next"]["url"]))
    seen = [o for page in pages for o in page.json()["orders"]]
    # THEN each order comes exactly once, ascending by (updated_at, id)
    assert len(pages) == 5
    assert sorted(str(o["id"]) for o in seen) == sorted(ids)
    keys = [(datetime.fromisoformat(o["updated_at"]), o["id"]) for o in seen]
    assert keys == sorted(keys)
    # AND later pages link back, and the previous link returns exactly the page before
    assert "previous" not in pages[0].links and all("previous" in page.links for page in pages[1:])
    back = follow(pages[2].links["previous"]["url"])
    assert back.json()["orders"] == pages[1].json()["orders"]
    # AND every answer reported the bucket
    assert all(page.headers["X-Shopify-Shop-Api-Call-Limit"].endswith("/40") for page in pages)


def test_pagination_stays_exact_while_orders_keep_arriving(shop, book):
    # GIVEN 40 orders in the store and a scenario adding 300 more at ~400 per second
    runner = ScenarioRunner(book, Scenario(orders_per_day=400 * 86400, cancel_share=0, duplicate_share=0))
    seeded = set(runner.seed_backlog(40))
    runner.start(total=300)
    paging_started = time.time()
    # WHEN a client pages through everything, 7 at a time, oldest update first
    pages = [get(shop, limit=7, status="any", order="updated_at asc")]
    while "next" in pages[-1].links:
        time.sleep(0.01)
        pages.append(follow(pages[-1].links["next"]["url"]))
    runner.wait(10)
    seen = [str(o["id"]) for page in pages for o in page.json()["orders"]]
    # THEN no order came twice and none was skipped up to the last one read
    assert len(seen) == len(set(seen))
    last = book.get(seen[-1])
    expected = {e.order_id for e in book.entries() if (e.updated_at, e.order_id) <= (last.updated_at, last.order_id)}
    assert set(seen) == expected and seeded <= expected
    # AND the run really was concurrent: orders that appeared during paging were read
    assert any(book.get(order_id).appeared_at > paging_started for order_id in seen)


def test_orders_updated_during_pagination_are_never_skipped(shop, orders):
    # GIVEN 30 orders
    ids = [orders.create(T0 + timedelta(minutes=i)) for i in range(30)]
    touched = []
    # WHEN after each page the first order just read is updated (it moves to the end of the list)
    pages = [get(shop, limit=5, status="any", order="updated_at asc")]
    while True:
        first = str(pages[-1].json()["orders"][0]["id"])
        orders.touch(first, T0 + timedelta(days=1, minutes=len(touched)))
        touched.append(first)
        if "next" not in pages[-1].links:
            break
        pages.append(follow(pages[-1].links["next"]["url"]))
    seen = [str(o["id"]) for page in pages for o in page.json()["orders"]]
    # THEN every order was read (a cursor, not an offset), and only updated ones came again
    assert set(seen) == set(ids)
    assert {order_id for order_id in seen if seen.count(order_id) > 1} <= set(touched)


def test_status_open_by_default_any_cancelled_and_closed(shop, book, orders):
    # GIVEN 6 orders: 2 cancelled, 1 closed
    ids = [orders.create(T0 + timedelta(minutes=i)) for i in range(6)]
    for order_id in ids[:2]:
        orders.cancel(order_id, T0 + timedelta(hours=1))
    closed = book.get(ids[2])
    book.put(ids[2], {**closed.payload, "closed_at": "2026-11-11T10:00:00+08:00", "updated_at": "2026-11-11T10:00:00+08:00"},
             updated_at=T0 + timedelta(hours=2), created_at=closed.created_at, open=False)

    def listed(**params) -> set[str]:
        return {str(o["id"]) for o in get(shop, limit=250, **params).json()["orders"]}

    # WHEN listed with each status  THEN open (the default) leaves cancelled and closed out
    assert listed() == listed(status="open") == set(ids[3:])
    assert listed(status="any") == set(ids)
    assert listed(status="cancelled") == set(ids[:2])
    assert listed(status="closed") == {ids[2]}
    # AND count.json counts the same way
    assert get(shop, "orders/count.json").json() == {"count": 3}
    assert get(shop, "orders/count.json", status="any").json() == {"count": 6}


def test_time_bounds_are_inclusive_and_offsets_are_honoured(shop, orders):
    # GIVEN orders updated at T0, T0+1h, T0+2h, T0+3h
    ids = [orders.create(T0 + timedelta(hours=i)) for i in range(4)]
    # WHEN asked for T0+1h (written in Hong Kong time) .. T0+2h (written in UTC)
    hong_kong = (T0 + timedelta(hours=1)).astimezone(timezone(timedelta(hours=8))).isoformat()
    response = get(shop, status="any", order="updated_at asc", updated_at_min=hong_kong,
                   updated_at_max=(T0 + timedelta(hours=2)).isoformat().replace("+00:00", "Z"))
    # THEN exactly the two orders on the bounds come back, with their times in the shop's offset
    assert [str(o["id"]) for o in response.json()["orders"]] == ids[1:3]
    assert response.json()["orders"][0]["updated_at"] == "2026-11-11T09:00:00+08:00"


def test_the_leaky_bucket_holds_40_leaks_2_per_second_and_answers_429_with_retry_after(book):
    # GIVEN a store on a frozen clock
    clock = ManualClock()
    with ShopifySimulator("oms-test.myshopify.com", TOKEN, book, clock=clock) as shop:
        # WHEN 41 requests arrive at once
        responses = [get(shop, limit=1) for _ in range(41)]
        # THEN the first 40 pass, each reporting the fill level, and the 41st is refused
        assert [r.status_code for r in responses[:40]] == [200] * 40
        assert [r.headers["X-Shopify-Shop-Api-Call-Limit"] for r in responses[:40]] == [f"{n}/40" for n in range(1, 41)]
        refused = responses[40]
        assert refused.status_code == 429
        assert refused.json() == {"errors": "Exceeded 2 calls per second for api client. "
                                            "Reduce request rates to resume uninterrupted service."}
        assert float(refused.headers["Retry-After"]) == pytest.approx(0.5)
        assert refused.headers["X-Shopify-Shop-Api-Call-Limit"] == "40/40"
        # AND one second later exactly two more pass
        clock.advance(1.0)
        assert [get(shop, limit=1).status_code for _ in range(3)] == [200, 200, 429]
        assert shop.stats.count("rate_limited") == 2


def test_rate_multiplier_scales_the_leak_like_a_bigger_plan(book):
    # GIVEN a store whose plan leaks 10x faster, with a full bucket
    clock = ManualClock()
    with ShopifySimulator("oms-test.myshopify.com", TOKEN, book, clock=clock, rate_multiplier=10) as shop:
        for _ in range(40):
            get(shop, limit=1)
        # WHEN one second passes  THEN 20 requests pass and the 21st is refused
        clock.advance(1.0)
        assert [get(shop, limit=1).status_code for _ in range(21)] == [200] * 20 + [429]


def test_injected_5xx_and_429_use_shopifys_envelopes_and_the_rate_can_change_mid_run(book):
    # GIVEN a store that fails every call with a 5xx (503 unless FaultPlan.server_errors says otherwise)
    faults = FaultPlan(rate=1.0, kinds=("5xx",), seed=3)
    with ShopifySimulator("oms-test.myshopify.com", TOKEN, book, faults=faults) as shop:
        failed = get(shop)
        # WHEN the faults switch to 429s
        faults.kinds = ("429",)
        throttled = get(shop)
        # AND then stop
        faults.rate = 0.0
        healthy = get(shop)
    # THEN each answer looks like Shopify's, and the log tells injected from real refusals
    assert failed.status_code == 503 and failed.json() == {"errors": "Service Unavailable"}
    assert throttled.status_code == 429 and float(throttled.headers["Retry-After"]) > 0
    assert "Exceeded" in throttled.json()["errors"]
    assert healthy.status_code == 200
    assert [e.outcome for e in shop.stats.log()] == ["fault_5xx", "fault_429", "ok"]


def test_an_injected_timeout_outlasts_the_clients_read_timeout(book):
    # GIVEN a store whose every answer comes after 0.6 s
    with ShopifySimulator("oms-test.myshopify.com", TOKEN, book,
                          faults=FaultPlan(rate=1.0, kinds=("timeout",), timeout_seconds=0.6)) as shop:
        # WHEN a client waits only 0.2 s  THEN it sees a read timeout
        with pytest.raises(requests.exceptions.ReadTimeout):
            get(shop, timeout=0.2)
        assert shop.stats.count("fault_timeout") == 1


def test_an_injected_truncated_answer_breaks_the_body(book, orders):
    # GIVEN a store with orders whose answers are cut in half
    for i in range(5):
        orders.create(T0 + timedelta(minutes=i))
    with ShopifySimulator("oms-test.myshopify.com", TOKEN, book,
                          faults=FaultPlan(rate=1.0, kinds=("truncated",))) as shop:
        # WHEN a client reads one  THEN the body is incomplete or not JSON
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, ValueError)):
            get(shop, status="any").json()
        assert shop.stats.count("fault_truncated") == 1


def test_the_legacy_call_form_and_parallel_clients_work(book, orders):
    # GIVEN a store built the older way (token, book), read by 8 clients at once
    for i in range(30):
        orders.create(T0 + timedelta(minutes=i))
    with ShopifySimulator(TOKEN, book) as shop:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(len(get(shop, limit=250).json()["orders"])))
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # THEN every client got all 30 orders
    assert results == [30] * 8
