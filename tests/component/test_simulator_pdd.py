"""The PDD gateway simulator over real HTTP with plain `requests`: signatures, system parameters,
the 30-minute window and 3-minute lag, page size, backwards paging while orders move, the per-shop
throttling envelope, token expiry and refresh, and injected faults."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from oms.adapters.channels.signing import top_sign
from omsdev.simulators.base import FaultPlan, ManualClock
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.pdd import PddOrders, PddSimulator
from omsdev.simulators.scenario import generator_for

CLIENT_ID, SECRET = "c0ffee0000000000000000000000beef", "s3cr3t"
INCREMENT = "pdd.order.number.list.increment.get"


def now() -> datetime:
    return datetime.now(timezone.utc)


def call(simulator: PddSimulator, params: dict, *, secret: str = SECRET, timeout: float = 5,
         sign: bool = True) -> requests.Response:
    params = {"client_id": CLIENT_ID, "timestamp": str(int(time.time())), "data_type": "JSON", **params}
    params = {key: str(value) for key, value in params.items()}
    if sign:
        params["sign"] = top_sign(params, secret)
    return requests.post(f"{simulator.url}/api/router", data=params, timeout=timeout)


def list_orders(simulator: PddSimulator, token: str, start: datetime, end: datetime, *, timeout: float = 5,
                **params) -> requests.Response:
    business = {"type": INCREMENT, "access_token": token, "start_updated_at": int(start.timestamp()),
                "end_updated_at": int(end.timestamp()), "order_status": 5, "refund_status": 5, "is_lucky_flag": 0,
                "page": 1, "page_size": 100, **params}
    return call(simulator, business, timeout=timeout)


def error_of(response: requests.Response) -> dict:
    return response.json()["error_response"]


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("pdd")


@pytest.fixture
def orders(book) -> PddOrders:
    return generator_for("pdd", book, seed=5)


@pytest.fixture
def shop(book):
    with PddSimulator(CLIENT_ID, SECRET, book, rate_multiplier=10) as simulator:
        yield simulator


def recent_window() -> tuple[datetime, datetime]:
    end = now() - timedelta(minutes=4)
    return end - timedelta(minutes=30), end


def test_a_bad_signature_is_refused_with_pdds_20004(shop):
    token, _ = shop.issue_tokens()
    start, end = recent_window()
    # WHEN signed with the wrong secret
    business = {"type": INCREMENT, "access_token": token, "start_updated_at": int(start.timestamp()),
                "end_updated_at": int(end.timestamp()), "order_status": 5, "refund_status": 5, "page": 1}
    response = call(shop, business, secret="wrong")
    # THEN HTTP 200 with PDD's error envelope
    assert response.status_code == 200
    error = error_of(response)
    assert error["error_code"] == 20004 and error["error_msg"] == "签名验证失败" and error["request_id"]
    assert shop.stats.count("auth_failed") == 1


@pytest.mark.parametrize("drop", ["type", "client_id", "timestamp", "sign"])
def test_required_system_parameters_are_enforced(shop, drop):
    token, _ = shop.issue_tokens()
    start, end = recent_window()
    params = {"client_id": CLIENT_ID, "timestamp": str(int(time.time())), "type": INCREMENT, "access_token": token,
              "start_updated_at": str(int(start.timestamp())), "end_updated_at": str(int(end.timestamp())),
              "order_status": "5", "refund_status": "5"}
    params["sign"] = top_sign(params, SECRET)
    params.pop(drop)
    if drop != "sign":
        params["sign"] = top_sign({k: v for k, v in params.items() if k != "sign"}, SECRET)
    response = requests.post(f"{shop.url}/api/router", data=params, timeout=5)
    error = error_of(response)
    assert error["error_code"] == 10000 and drop in error["sub_msg"]


def test_a_stale_timestamp_is_refused(shop):
    token, _ = shop.issue_tokens()
    start, end = recent_window()
    response = call(shop, {"type": INCREMENT, "access_token": token, "timestamp": int(time.time()) - 700,
                           "start_updated_at": int(start.timestamp()), "end_updated_at": int(end.timestamp()),
                           "order_status": 5, "refund_status": 5})
    assert "10 minutes" in error_of(response)["sub_msg"]


@pytest.mark.parametrize(
    "start_offset, end_offset, params, fragment",
    [
        (timedelta(minutes=35), timedelta(minutes=4), {}, "30 min"),  # 31 minutes long
        (timedelta(minutes=20), timedelta(minutes=1), {}, "3 minutes"),  # ends too close to now
        (timedelta(minutes=10), timedelta(minutes=20), {}, "earlier"),  # backwards
        (timedelta(minutes=20), timedelta(minutes=4), {"page_size": 101}, "page_size"),
        (timedelta(minutes=20), timedelta(minutes=4), {"page": 0}, "page"),
        (timedelta(minutes=20), timedelta(minutes=4), {"order_status": 4}, "order_status"),
    ],
)
def test_window_lag_and_page_rules_are_enforced(shop, start_offset, end_offset, params, fragment):
    token, _ = shop.issue_tokens()
    response = list_orders(shop, token, now() - start_offset, now() - end_offset, **params)
    assert response.status_code == 200
    error = error_of(response)
    assert error["error_code"] == 10000 and fragment in error["sub_msg"]
    assert shop.stats.count("bad_request") == 1 and shop.list_requests == []


def test_a_window_of_exactly_30_minutes_is_served_with_count_and_has_next(shop, orders):
    # GIVEN 150 orders inside a 30-minute window, one just outside it
    start, end = recent_window()
    ids = [orders.create(start + timedelta(seconds=10 * i)) for i in range(150)]
    orders.create(end + timedelta(seconds=30))
    token, _ = shop.issue_tokens()
    # WHEN both pages are read
    first = list_orders(shop, token, start, end).json()["order_sn_increment_get_response"]
    second = list_orders(shop, token, start, end, page=2).json()["order_sn_increment_get_response"]
    # THEN 150 in all, ascending by updated_at, page 1 saying there is more
    assert first["total_count"] == second["total_count"] == 150
    assert (first["has_next"], second["has_next"]) == (True, False)
    listed = [o["order_sn"] for o in first["order_sn_list"] + second["order_sn_list"]]
    assert listed == ids
    # AND with use_has_next the count is left out
    lean = list_orders(shop, token, start, end, use_has_next="true").json()["order_sn_increment_get_response"]
    assert "total_count" not in lean and lean["has_next"] is True


def test_paging_backwards_misses_nothing_while_orders_leave_the_window(shop, book, orders):
    # GIVEN 250 orders in one window, and an order of page 1 updated before every page is served
    start, end = recent_window()
    ids = [orders.create(start + timedelta(seconds=7 * i)) for i in range(250)]
    moved = []

    def update_an_early_order(_params):
        order_id = ids[len(moved)]
        orders.touch(order_id, now() - timedelta(minutes=1))  # its new version is past the window
        moved.append(order_id)

    shop.on_page = update_an_early_order
    token, _ = shop.issue_tokens()
    # WHEN read backwards from the last page (3, 2, 1)
    pages = [list_orders(shop, token, start, end, page=page).json()["order_sn_increment_get_response"]
             for page in (3, 2, 1)]
    seen = {o["order_sn"] for page in pages for o in page["order_sn_list"]}
    # THEN every order that stayed in the window was read
    assert set(ids) - set(moved) <= seen
    # AND read forwards, the same moves would have skipped orders (what backwards paging avoids)
    shop.on_page = None
    fresh = [orders.create(start + timedelta(seconds=7 * i + 3)) for i in range(250)]
    shop.on_page = lambda _params: orders.touch(fresh[len(shop.list_requests) % 250], now() - timedelta(minutes=1))
    forwards = set()
    for page in (1, 2, 3, 4, 5):
        forwards |= {o["order_sn"] for o in list_orders(shop, token, start, end, page=page)
                     .json()["order_sn_increment_get_response"]["order_sn_list"]}
    staying = {e.order_id for e in book.select(start, end)}
    assert staying - forwards, "forward paging should have skipped an order that shifted to an earlier page"


def test_the_shop_is_throttled_with_70031_after_its_burst_and_refills():
    # GIVEN a shop whose plan scales 3000 calls / 60 s down to a burst of 3 (0.05 calls/s), frozen clock
    clock = ManualClock()
    with PddSimulator(CLIENT_ID, SECRET, OrderBook("pdd"), clock=clock, rate_multiplier=0.001) as simulator:
        token, _ = simulator.issue_tokens()
        start, end = recent_window()
        # WHEN four calls arrive at once
        responses = [list_orders(simulator, token, start, end) for _ in range(4)]
        # THEN three are served and the fourth gets the throttling envelope with HTTP 200
        assert ["error_response" in r.json() for r in responses] == [False, False, False, True]
        assert responses[-1].status_code == 200
        assert error_of(responses[-1])["error_code"] == 70031
        # AND twenty seconds later one more call passes
        clock.advance(20)
        assert "order_sn_increment_get_response" in list_orders(simulator, token, start, end).json()
        assert simulator.stats.count("rate_limited") == 1


def test_an_expired_token_gets_10019_and_the_refresh_call_issues_a_new_one():
    # GIVEN a token living one hour on a clock the test moves
    clock = ManualClock()
    with PddSimulator(CLIENT_ID, SECRET, OrderBook("pdd"), clock=clock, token_ttl_seconds=3600) as simulator:
        token, refresh_token = simulator.issue_tokens()
        start, end = recent_window()
        assert "error_response" not in list_orders(simulator, token, start, end).json()
        # WHEN an hour passes
        clock.advance(3601)
        expired = list_orders(simulator, token, start, end)
        # THEN the platform says the token expired
        assert error_of(expired)["error_code"] == 10019 and error_of(expired)["error_msg"] == "access_token已过期"
        # WHEN the refresh call is made with the refresh token
        refreshed = call(simulator, {"type": "pdd.pop.auth.token.refresh", "refresh_token": refresh_token})
        granted = refreshed.json()["pop_auth_token_refresh_response"]
        # THEN a new token works, the refresh token rotates and the old one cannot be used again
        assert granted["expires_in"] == 3600 and granted["refresh_token"] != refresh_token
        assert "error_response" not in list_orders(simulator, granted["access_token"], start, end).json()
        again = call(simulator, {"type": "pdd.pop.auth.token.refresh", "refresh_token": refresh_token})
        assert "error_response" in again.json()
        assert simulator.refreshes == 1 and simulator.stats.count("auth_failed") == 2


def test_an_unknown_token_is_refused(shop):
    start, end = recent_window()
    assert error_of(list_orders(shop, "made-up", start, end))["error_code"] == 10000


def test_injected_faults_use_pdds_envelopes_and_spare_the_refresh_call(book):
    faults = FaultPlan(rate=1.0, kinds=("5xx",), seed=3, server_errors=(500, 503))
    with PddSimulator(CLIENT_ID, SECRET, book, faults=faults) as simulator:
        token, refresh_token = simulator.issue_tokens()
        start, end = recent_window()
        # WHEN the list is called with 5xx faults, then 429 faults, and the refresh call is made
        failed = [list_orders(simulator, token, start, end) for _ in range(6)]
        faults.kinds = ("429",)
        throttled = list_orders(simulator, token, start, end)
        refreshed = call(simulator, {"type": "pdd.pop.auth.token.refresh", "refresh_token": refresh_token})
    # THEN 5xx carry 52103, the "429" is PDD's HTTP-200 52101 envelope, the refresh call is spared
    assert {r.status_code for r in failed} == {500, 503}
    assert {error_of(r)["error_code"] for r in failed} == {52103}
    assert throttled.status_code == 200 and error_of(throttled)["error_code"] == 52101
    assert "pop_auth_token_refresh_response" in refreshed.json()
    assert [e.outcome for e in simulator.stats.log()] == ["fault_5xx"] * 6 + ["fault_429", "ok"]


def test_a_timeout_outlasts_the_read_timeout_and_truncation_breaks_the_body(book, orders):
    start, end = recent_window()
    for i in range(5):
        orders.create(start + timedelta(minutes=i))
    faults = FaultPlan(rate=1.0, kinds=("timeout",), timeout_seconds=0.6)
    with PddSimulator(CLIENT_ID, SECRET, book, faults=faults) as simulator:
        token, _ = simulator.issue_tokens()
        with pytest.raises(requests.exceptions.ReadTimeout):
            list_orders(simulator, token, start, end, timeout=0.2)
        faults.kinds = ("truncated",)
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, ValueError)):
            list_orders(simulator, token, start, end).json()
        assert simulator.stats.count("fault_timeout") == simulator.stats.count("fault_truncated") == 1


def test_generated_orders_follow_the_synthetic_shape_and_cancel_as_a_full_refund(book, orders):
    order_id = orders.create(now() - timedelta(minutes=10))
    payload = book.get(order_id).payload
    assert payload["order_sn"] == order_id and payload["order_status"] == 1
    assert isinstance(payload["pay_amount"], float) and payload["receiver_name"].startswith("~")
    orders.cancel(order_id, now() - timedelta(minutes=5))
    cancelled = book.get(order_id)
    assert cancelled.payload["refund_status"] == 4 and cancelled.payload["receiver_name"] == ""
    assert cancelled.open is False
