"""The Amazon SP-API simulator over real HTTP, with plain `requests` as the client: Login with Amazon
tokens and their expiry, getOrders parameter rules and the 2-minute rule, NextToken pagination (also
while orders keep arriving), getOrderItems, per-operation token buckets and faults."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from omsdev.simulators.amazon import AmazonSimulator
from omsdev.simulators.base import FaultPlan, ManualClock
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import AmazonOrders, Scenario, ScenarioRunner, generator_for

CREDENTIALS = {"client_id": "amzn1.application-oa2-client.test", "client_secret": "s3cr3t", "refresh_token": "Atzr|test"}
DE, JP = "A1PA6795UKMFR9", "A1VC38T7YXB528"
LONG_AGO = "2026-01-01T00:00:00Z"
QUOTA = {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.", "details": ""}]}


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def login(simulator: AmazonSimulator, **overrides) -> requests.Response:
    form = {"grant_type": "refresh_token", **CREDENTIALS, **overrides}
    return requests.post(f"{simulator.url}/auth/o2/token", data=form, timeout=5)


def token(simulator: AmazonSimulator) -> str:
    return login(simulator).json()["access_token"]


def get_orders(simulator: AmazonSimulator, access_token: str | None, *, timeout: float = 5, **params) -> requests.Response:
    headers = {"x-amz-access-token": access_token} if access_token else {}
    return requests.get(f"{simulator.url}/orders/v0/orders", headers=headers, params=params, timeout=timeout)


def get_items(simulator: AmazonSimulator, access_token: str, order_id: str) -> requests.Response:
    return requests.get(f"{simulator.url}/orders/v0/orders/{order_id}/orderItems",
                        headers={"x-amz-access-token": access_token}, timeout=5)


def read_all(simulator: AmazonSimulator, access_token: str, **params) -> list[requests.Response]:
    pages = [get_orders(simulator, access_token, **params)]
    while "NextToken" in pages[-1].json()["payload"]:
        token_ = pages[-1].json()["payload"]["NextToken"]
        pages.append(get_orders(simulator, access_token, MarketplaceIds=params["MarketplaceIds"], NextToken=token_))
    return pages


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("amazon")


@pytest.fixture
def orders(book) -> AmazonOrders:
    return generator_for("amazon", book, seed=9)


@pytest.fixture
def seller(book):
    # A big usage plan, so only the rate-limit tests meet the buckets.
    with AmazonSimulator(**CREDENTIALS, book=book, rate_multiplier=1000) as simulator:
        yield simulator


def test_login_with_amazon_issues_bearer_tokens_and_refuses_wrong_credentials(seller):
    # WHEN a token is asked for with the right credentials, a wrong secret and a wrong refresh token
    good = login(seller)
    wrong_client = login(seller, client_secret="nope")
    wrong_grant = login(seller, refresh_token="Atzr|nope")
    # THEN the first gets an hour-long Atza| bearer token, the others LWA's errors
    assert good.status_code == 200
    body = good.json()
    assert body["access_token"].startswith("Atza|") and body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert wrong_client.status_code == 401
    assert wrong_client.json() == {"error": "invalid_client", "error_description": "Client authentication failed"}
    assert wrong_grant.status_code == 400 and wrong_grant.json()["error"] == "invalid_grant"
    # AND the stats count every token request
    assert seller.token_requests == 3


def test_api_calls_need_a_live_access_token(book):
    # GIVEN a seller whose tokens live an hour on a clock the test moves
    clock = ManualClock()
    with AmazonSimulator(**CREDENTIALS, book=book, clock=clock, rate_multiplier=1000) as seller:
        access_token = token(seller)
        params = {"MarketplaceIds": DE, "LastUpdatedAfter": LONG_AGO}
        # WHEN called without a token, with a made-up one, with a live one, then an hour later
        missing = get_orders(seller, None, **params)
        made_up = get_orders(seller, "Atza|made-up", **params)
        live = get_orders(seller, access_token, **params)
        clock.advance(3601)
        expired = get_orders(seller, access_token, **params)
        refreshed = get_orders(seller, token(seller), **params)
    # THEN only live tokens pass; the others get 403 Unauthorized, the expired one saying so
    assert [r.status_code for r in (missing, made_up, live, expired, refreshed)] == [403, 403, 200, 403, 200]
    error = expired.json()["errors"][0]
    assert error["code"] == "Unauthorized" and error["message"] == "Access to requested resource is denied."
    assert "expired" in error["details"]
    assert seller.stats.count("auth_failed") == 3


@pytest.mark.parametrize(
    "params",
    [
        {"LastUpdatedAfter": LONG_AGO},  # no MarketplaceIds
        {"MarketplaceIds": DE},  # neither After
        {"MarketplaceIds": DE, "LastUpdatedAfter": LONG_AGO, "CreatedAfter": LONG_AGO},  # both
        {"MarketplaceIds": DE, "LastUpdatedAfter": LONG_AGO, "CreatedBefore": "2026-02-01T00:00:00Z"},  # crossed
        {"MarketplaceIds": DE, "CreatedAfter": LONG_AGO, "LastUpdatedBefore": "2026-02-01T00:00:00Z"},  # crossed
        {"MarketplaceIds": DE, "LastUpdatedAfter": LONG_AGO, "MaxResultsPerPage": "0"},
        {"MarketplaceIds": DE, "LastUpdatedAfter": LONG_AGO, "MaxResultsPerPage": "101"},
        {"MarketplaceIds": DE, "LastUpdatedAfter": "yesterday"},
        {"MarketplaceIds": DE, "NextToken": "never-issued"},
    ],
)
def test_get_orders_parameter_rules(seller, params):
    # WHEN getOrders is called against one of its rules
    response = get_orders(seller, token(seller), **params)
    # THEN 400 InvalidInput
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"
    assert seller.stats.count("bad_request") == 1


def test_last_updated_before_must_be_two_minutes_old_and_fresh_orders_stay_invisible(seller, orders):
    # GIVEN an order updated 3 minutes ago and one updated 30 seconds ago
    old = orders.create(now() - timedelta(minutes=3))
    orders.create(now() - timedelta(seconds=30))
    access_token = token(seller)
    # WHEN LastUpdatedBefore is one minute ago
    too_recent = get_orders(seller, access_token, MarketplaceIds=DE, LastUpdatedAfter=LONG_AGO,
                            LastUpdatedBefore=iso(now() - timedelta(minutes=1)))
    # THEN 400 with Amazon's message
    assert too_recent.status_code == 400
    assert too_recent.json() == {"errors": [{"code": "InvalidInput", "details": "",
                                             "message": "LastUpdatedBefore must be no later than 2 minutes before the request time"}]}
    # WHEN LastUpdatedBefore is left out
    response = get_orders(seller, access_token, MarketplaceIds=DE, LastUpdatedAfter=LONG_AGO)
    # THEN only the older order is served, and the effective end (now - 2 min) is echoed
    payload = response.json()["payload"]
    assert [o["AmazonOrderId"] for o in payload["Orders"]] == [old]
    echoed = datetime.fromisoformat(payload["LastUpdatedBefore"].replace("Z", "+00:00"))
    assert timedelta(minutes=2) <= now() - echoed < timedelta(minutes=2, seconds=10)
    assert "NextToken" not in payload


def test_next_token_pages_cover_every_order_once_ascending_by_last_update_date(seller, orders):
    # GIVEN 250 orders updated over the last hours, the first 40 of them cancelled later
    start = now() - timedelta(hours=5)
    ids = [orders.create(start + timedelta(minutes=i)) for i in range(250)]
    for order_id in ids[:40]:
        orders.cancel(order_id, start + timedelta(hours=4, minutes=30))
    # WHEN read 100 per page with NextToken
    pages = read_all(seller, token(seller), MarketplaceIds=DE, LastUpdatedAfter=iso(start), MaxResultsPerPage=100)
    seen = [o for page in pages for o in page.json()["payload"]["Orders"]]
    # THEN three pages, each order once, ascending by (LastUpdateDate, id), the last page without NextToken
    assert [len(page.json()["payload"]["Orders"]) for page in pages] == [100, 100, 50]
    assert sorted(o["AmazonOrderId"] for o in seen) == sorted(ids)
    keys = [(o["LastUpdateDate"], o["AmazonOrderId"]) for o in seen]
    assert keys == sorted(keys)
    assert {o["OrderStatus"] for o in seen[-40:]} == {"Canceled"}
    # AND every page carries the same frozen LastUpdatedBefore
    assert len({page.json()["payload"]["LastUpdatedBefore"] for page in pages}) == 1


def test_next_token_stays_exact_while_orders_arrive_and_change(seller, book):
    # GIVEN 60 orders from the last hour and a scenario adding 200 more (3 minutes backdated) at ~300/s
    runner = ScenarioRunner(book, Scenario(orders_per_day=300 * 86400, cancel_share=0, duplicate_share=0,
                                           backdate=timedelta(minutes=3)))
    seeded = runner.seed_backlog(60)
    runner.start(total=200)
    paging_started = time.time()
    access_token = token(seller)
    # WHEN a client pages 8 at a time, and updates an order it already read after every page
    generator = runner.generators[0]
    requested_at = [time.time()]
    pages = [get_orders(seller, access_token, MarketplaceIds=DE, LastUpdatedAfter=LONG_AGO, MaxResultsPerPage=8)]
    touched = []
    while "NextToken" in pages[-1].json()["payload"]:
        time.sleep(0.005)
        first = pages[-1].json()["payload"]["Orders"][0]["AmazonOrderId"]
        if first in seeded:
            generator.touch(first, now() - timedelta(minutes=3))
            touched.append(first)
        requested_at.append(time.time())
        pages.append(get_orders(seller, access_token, MarketplaceIds=DE, NextToken=pages[-1].json()["payload"]["NextToken"]))
    runner.wait(10)
    listed = [page.json()["payload"]["Orders"] for page in pages]
    seen = [o["AmazonOrderId"] for orders_ in listed for o in orders_]
    # THEN every order there at the start was read, and only updated orders came twice
    assert set(seeded) <= set(seen)
    assert {order_id for order_id in seen if seen.count(order_id) > 1} <= set(touched)
    # AND every arriving order that was there when the page passing its (LastUpdateDate, id) was asked
    # for was read. (Within one second Amazon orders by id, and ids are not in arrival order, so an
    # order arriving just behind the cursor is only caught by the next window: that is why pollers overlap.)
    last_keys = [(orders_[-1]["LastUpdateDate"], orders_[-1]["AmazonOrderId"]) if orders_ else None for orders_ in listed]
    guaranteed = []
    for order_id in runner.created_ids[len(seeded):]:
        entry = book.get(order_id)
        key = (entry.payload["order"]["LastUpdateDate"], order_id)
        passing = next((i for i, last in enumerate(last_keys) if last and last >= key), None)
        if passing is not None and entry.appeared_at < requested_at[passing]:
            guaranteed.append(order_id)
    assert guaranteed and set(guaranteed) <= set(seen)
    # AND the run really was concurrent: orders that appeared during paging were read
    assert any(book.get(order_id).appeared_at > paging_started for order_id in seen)


def test_created_after_queries_sort_by_purchase_date_and_echo_created_before(seller, orders):
    # GIVEN two orders, the older one updated last
    start = now() - timedelta(hours=2)
    first, second = orders.create(start), orders.create(start + timedelta(minutes=5))
    orders.touch(first, start + timedelta(minutes=30))
    # WHEN listed by creation time
    payload = get_orders(seller, token(seller), MarketplaceIds=DE, CreatedAfter=iso(start)).json()["payload"]
    # THEN by PurchaseDate, with CreatedBefore echoed
    assert [o["AmazonOrderId"] for o in payload["Orders"]] == [first, second]
    assert "CreatedBefore" in payload and "LastUpdatedBefore" not in payload


def test_order_items_price_the_whole_quantity_and_unknown_orders_are_404(seller, orders):
    # GIVEN an order with its items
    order_id = orders.create(now() - timedelta(minutes=10))
    access_token = token(seller)
    # WHEN its items are read
    payload = get_items(seller, access_token, order_id).json()["payload"]
    # THEN they are the book's, ItemPrice being unit price x quantity, adding up to OrderTotal
    assert payload["AmazonOrderId"] == order_id
    assert payload["OrderItems"] == orders.book.get(order_id).payload["items"]
    total = Decimal(0)
    for item in payload["OrderItems"]:
        amount = Decimal(item["ItemPrice"]["Amount"])
        unit = (amount / item["QuantityOrdered"]).quantize(Decimal("0.01"))
        assert unit * item["QuantityOrdered"] == amount  # a whole-cent unit price times the quantity
        total += amount + Decimal(item["ShippingPrice"]["Amount"])
    assert Decimal(orders.book.get(order_id).payload["order"]["OrderTotal"]["Amount"]) == total
    # AND an unknown order id is a 404 NotFound
    missing = get_items(seller, access_token, "999-0000000-0000000")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NotFound"


def test_get_orders_has_a_burst_of_20_refilled_at_one_per_minute(book):
    # GIVEN a seller on a frozen clock
    clock = ManualClock()
    with AmazonSimulator(**CREDENTIALS, book=book, clock=clock) as seller:
        access_token = token(seller)
        params = {"MarketplaceIds": DE, "LastUpdatedAfter": LONG_AGO}
        # WHEN 21 calls arrive at once
        responses = [get_orders(seller, access_token, **params) for _ in range(21)]
        # THEN 20 pass and the 21st is a 429 QuotaExceeded; all report the rate and a request id
        assert [r.status_code for r in responses] == [200] * 20 + [429]
        assert responses[-1].json() == QUOTA
        assert {r.headers["x-amzn-RateLimit-Limit"] for r in responses} == {"0.0167"}
        assert len({r.headers["x-amzn-RequestId"] for r in responses}) == 21
        # AND a minute later exactly one more passes
        clock.advance(60)
        assert [get_orders(seller, access_token, **params).status_code for _ in range(2)] == [200, 429]
        assert seller.stats.count("rate_limited") == 2


def test_get_order_items_has_its_own_bucket_and_rate_multiplier_scales_both(book, orders):
    # GIVEN a seller on a plan twice the default, on a frozen clock
    order_id = orders.create(now() - timedelta(minutes=10))
    clock = ManualClock()
    with AmazonSimulator(**CREDENTIALS, book=book, clock=clock, rate_multiplier=2) as seller:
        access_token = token(seller)
        # WHEN getOrderItems is called 31 times at once
        responses = [get_items(seller, access_token, order_id) for _ in range(31)]
        # THEN its burst of 30 passes, the rest is refused, at 2 x 0.5 per second
        assert [r.status_code for r in responses] == [200] * 30 + [429]
        assert responses[0].headers["x-amzn-RateLimit-Limit"] == "1"
        # AND getOrders still has its whole burst, at 2 x 0.0167 per second
        listed = get_orders(seller, access_token, MarketplaceIds=DE, LastUpdatedAfter=LONG_AGO)
        assert listed.status_code == 200 and listed.headers["x-amzn-RateLimit-Limit"] == "0.0334"
        clock.advance(1.0)
        assert get_items(seller, access_token, order_id).status_code == 200


def test_injected_faults_use_amazons_envelopes_and_spare_the_token_endpoint(book):
    # GIVEN a seller failing every API call with a 500 or a 503
    faults = FaultPlan(rate=1.0, kinds=("5xx",), seed=1, server_errors=(500, 503))
    with AmazonSimulator(**CREDENTIALS, book=book, faults=faults) as seller:
        # WHEN a token is fetched and getOrders called 8 times, then the faults turn to 429s
        access_token = token(seller)
        failed = [get_orders(seller, access_token, MarketplaceIds=DE, LastUpdatedAfter=LONG_AGO) for _ in range(8)]
        faults.kinds = ("429",)
        throttled = get_orders(seller, access_token, MarketplaceIds=DE, LastUpdatedAfter=LONG_AGO)
    # THEN the token endpoint was spared; the API answered with Amazon's envelopes
    assert {r.status_code for r in failed} == {500, 503}
    for response in failed:
        assert response.json()["errors"][0] == {"code": "InternalFailure", "details": "",
                                                "message": "We encountered an internal error. Please try again."}
        assert "x-amzn-RequestId" in response.headers
    assert throttled.status_code == 429 and throttled.json() == QUOTA
    assert "x-amzn-RateLimit-Limit" in throttled.headers
    assert [e.outcome for e in seller.stats.log()] == ["ok"] + ["fault_5xx"] * 8 + ["fault_429"]


def test_the_token_endpoint_fails_too_when_asked(book):
    # GIVEN faults that include the token endpoint
    with AmazonSimulator(**CREDENTIALS, book=book,
                         faults=FaultPlan(rate=1.0, kinds=("5xx",), include_token_endpoint=True)) as seller:
        # WHEN a token is fetched  THEN it fails
        assert login(seller).status_code == 503


def test_an_injected_timeout_outlasts_the_read_timeout_and_truncation_breaks_the_body(book, orders):
    # GIVEN a seller with orders whose answers come late, then cut in half
    for i in range(5):
        orders.create(now() - timedelta(minutes=10 + i))
    faults = FaultPlan(rate=1.0, kinds=("timeout",), timeout_seconds=0.6)
    with AmazonSimulator(**CREDENTIALS, book=book, faults=faults) as seller:
        access_token = token(seller)
        # WHEN a client waits 0.2 s  THEN it times out
        with pytest.raises(requests.exceptions.ReadTimeout):
            get_orders(seller, access_token, timeout=0.2, MarketplaceIds=DE, LastUpdatedAfter=LONG_AGO)
        # WHEN the answers are truncated instead  THEN the body is incomplete or not JSON
        faults.kinds = ("truncated",)
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, ValueError)):
            get_orders(seller, access_token, MarketplaceIds=DE, LastUpdatedAfter=LONG_AGO).json()
        assert seller.stats.count("fault_timeout") == seller.stats.count("fault_truncated") == 1


def test_books_per_marketplace_serve_only_the_marketplaces_asked_for():
    # GIVEN a seller on Amazon.de and Amazon.co.jp
    germany, japan = OrderBook("amazon"), OrderBook("amazon")
    de_order = generator_for("amazon", germany, marketplace=DE).create(now() - timedelta(minutes=10))
    jp_order = generator_for("amazon", japan, marketplace=JP).create(now() - timedelta(minutes=10))
    with AmazonSimulator(**CREDENTIALS, book={DE: germany, JP: japan}) as seller:
        access_token = token(seller)

        def listed(marketplaces: str) -> list[str]:
            response = get_orders(seller, access_token, MarketplaceIds=marketplaces, LastUpdatedAfter=LONG_AGO)
            return [o["AmazonOrderId"] for o in response.json()["payload"]["Orders"]]

        # WHEN listed per marketplace and for both  THEN each marketplace's orders only
        assert listed(JP) == [jp_order] and listed(DE) == [de_order]
        assert set(listed(f"{DE},{JP}")) == {de_order, jp_order}
        # AND items are found whichever book holds the order
        assert get_items(seller, access_token, jp_order).json()["payload"]["OrderItems"][0]["ItemPrice"]["CurrencyCode"] == "JPY"
