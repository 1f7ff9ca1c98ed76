"""The Douyin Shop simulator over real HTTP with plain `requests`: the signed v2 envelope and its errors,
window, page-size and depth rules, the throttling envelope, access-token expiry and token.refresh,
injected faults, live pages while orders move; and our DouyinClient reading it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests
from oms.adapters.channels.douyin import DouyinClient
from oms.adapters.channels.http import ChannelHttp
from oms.adapters.channels.signing import compact_json, douyin_sign
from oms.domain.polling import PollWindow
from omsdev.simulators.base import FaultPlan, ManualClock
from omsdev.simulators.douyin import DouyinOrders, DouyinSimulator, launch
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import generator_for

APP_KEY, SECRET = "7152331588175513100", "2d5a2a1e-3c4b-4f0e-9a7c-5b1d6e8f9a0b"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def call(simulator: DouyinSimulator, path: str, business: dict, access_token: str | None, *,
         secret: str = SECRET, timestamp: str | None = None, drop: tuple[str, ...] = (), timeout: float = 5,
         ) -> requests.Response:
    """One v2 call exactly as the SDKs make it: system parameters in the query, param_json as body."""
    method = path.strip("/").replace("/", ".")
    param_json = compact_json(business)
    timestamp = timestamp or str(int(time.time()))
    query = {"app_key": APP_KEY, "method": method, "timestamp": timestamp, "v": "2", "sign_method": "hmac-sha256",
             "sign": douyin_sign(app_key=APP_KEY, secret=secret, method=method, param_json=param_json,
                                 timestamp=timestamp)}
    if access_token:
        query["access_token"] = access_token
    query = {key: value for key, value in query.items() if key not in drop}
    return requests.post(simulator.url + path, params=query, data=param_json.encode(),
                         headers={"Content-Type": "application/json"}, timeout=timeout)


def search(simulator, access_token, **overrides) -> requests.Response:
    end = now()
    business = {"update_time_start": epoch(end - timedelta(hours=1)), "update_time_end": epoch(end),
                "order_by": "update_time", "order_asc": True, "page": 0, "size": 100, **overrides}
    return call(simulator, "/order/searchList", business, access_token)


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("douyin")


@pytest.fixture
def orders(book) -> DouyinOrders:
    return generator_for("douyin", book, seed=5)


@pytest.fixture
def shop(book):
    # A big quota, so only the rate-limit tests meet the bucket.
    with DouyinSimulator(APP_KEY, SECRET, book, rate_multiplier=1000) as simulator:
        yield simulator


def test_a_signed_search_pages_orders_ascending_by_update_time(shop, orders):
    # GIVEN 150 orders over the last 50 minutes
    base = now() - timedelta(minutes=50)
    ids = [orders.create(base + timedelta(seconds=20 * i)) for i in range(150)]
    token, _refresh = shop.issue_tokens()
    # WHEN the first two pages are read
    first, second = search(shop, token, page=0), search(shop, token, page=1)
    # THEN each is a 10000 envelope with the platform's data shape, oldest update first
    body = first.json()
    assert first.status_code == 200 and body["code"] == 10000 and body["msg"] == "success"
    assert set(body) == {"code", "msg", "sub_code", "sub_msg", "log_id", "data"}
    data = body["data"]
    assert (data["page"], data["size"], data["total"]) == (0, 100, 150)
    served = [o["order_id"] for o in data["shop_order_list"]] + [o["order_id"] for o in second.json()["data"]["shop_order_list"]]
    assert served == ids
    # AND the default order (order_asc omitted) is newest first, as on Douyin
    newest = search(shop, token, order_asc=None).json()["data"]["shop_order_list"][0]
    assert newest["order_id"] == ids[-1]
    assert shop.stats.count("ok") == 3


def test_a_bad_signature_is_refused_with_douyins_envelope(shop):
    token, _ = shop.issue_tokens()
    end = now()
    business = {"update_time_start": epoch(end - timedelta(hours=1)), "update_time_end": epoch(end),
                "page": 0, "size": 10}
    # WHEN signed with the wrong secret, or sent without a sign
    wrong = call(shop, "/order/searchList", business, token, secret="not-the-secret")
    unsigned = call(shop, "/order/searchList", business, token, drop=("sign",))
    # THEN HTTP 200 with code 40003 isv.signature-invalid, and 40001 for the missing sign
    assert wrong.status_code == 200
    assert {k: wrong.json()[k] for k in ("code", "sub_code", "sub_msg")} == {
        "code": 40003, "sub_code": "isv.signature-invalid", "sub_msg": "签名校验失败"}
    assert unsigned.json()["code"] == 40001 and unsigned.json()["sub_code"] == "isv.signature-missing"
    assert shop.stats.count("auth_failed") == 1 and shop.stats.count("bad_request") == 1


def test_a_stale_timestamp_and_a_missing_access_token_are_refused(shop):
    token, _ = shop.issue_tokens()
    end = now()
    business = {"update_time_start": epoch(end - timedelta(hours=1)), "update_time_end": epoch(end),
                "page": 0, "size": 10}
    stale = call(shop, "/order/searchList", business, token, timestamp=str(int(time.time()) - 3600))
    beijing = (datetime.now(timezone(timedelta(hours=8)))).strftime("%Y-%m-%d %H:%M:%S")
    local_format = call(shop, "/order/searchList", business, token, timestamp=beijing)
    no_token = call(shop, "/order/searchList", business, None)
    assert stale.json()["sub_code"] == "isv.timestamp-invalid"
    assert local_format.json()["code"] == 10000  # the guide's GMT+8 format is accepted too
    assert no_token.json()["code"] == 40001 and no_token.json()["sub_code"] == "isv.access-token-missing"


@pytest.mark.parametrize(
    ("overrides", "sub_code"),
    [
        ({"size": 101}, "isv.parameter-invalid:20008"),
        ({"page": -1}, "isv.parameter-invalid:10035"),
        ({"page": 500, "size": 100}, "isv.parameter-invalid:20013"),
        ({"update_time_start": None}, "isv.parameter-invalid:20011"),
    ],
)
def test_page_rules_are_enforced_with_douyins_codes(shop, overrides, sub_code):
    token, _ = shop.issue_tokens()
    business = {k: v for k, v in overrides.items() if v is not None}
    response = search(shop, token, **business) if "update_time_start" not in overrides else call(
        shop, "/order/searchList", {"page": 0, "size": 10}, token)
    assert response.json()["code"] == 40004 and response.json()["sub_code"] == sub_code
    assert shop.list_requests == []


def test_a_window_longer_than_a_day_or_ending_in_the_future_is_refused(shop):
    token, _ = shop.issue_tokens()
    end = now()
    too_long = search(shop, token, update_time_start=epoch(end - timedelta(days=1, seconds=1)),
                      update_time_end=epoch(end))
    one_day = search(shop, token, update_time_start=epoch(end - timedelta(days=1)), update_time_end=epoch(end))
    future = search(shop, token, update_time_end=epoch(end + timedelta(minutes=5)))
    too_old = search(shop, token, update_time_start=epoch(end - timedelta(days=91)),
                     update_time_end=epoch(end - timedelta(days=90, hours=12)))
    assert too_long.json()["code"] == 40004 and "1天" in too_long.json()["sub_msg"]
    assert one_day.json()["code"] == 10000
    assert future.json()["code"] == 40004
    assert too_old.json()["sub_code"] == "isv.parameter-invalid:20022"
    assert shop.windows_over_maximum() == []


def test_throttling_answers_the_60000_envelope_after_the_burst(book):
    # GIVEN a quota of 20 calls/s, burst 20, on a clock the test moves
    clock = ManualClock()
    with DouyinSimulator(APP_KEY, SECRET, book, clock=clock) as shop:
        token, _ = shop.issue_tokens()
        # WHEN 21 calls arrive at once, then one more a tenth of a second later
        answers = [search(shop, token, size=1).json() for _ in range(21)]
        clock.advance(0.1)
        later = search(shop, token, size=1).json()
    # THEN the 21st is HTTP 200 code 60000 isp.traffic-limited, and the bucket refills
    assert [a["code"] for a in answers[:20]] == [10000] * 20
    assert answers[20]["code"] == 60000 and answers[20]["sub_code"] == "isp.traffic-limited"
    assert answers[20]["msg"] == "触发限流，请稍后重试" and answers[20]["data"] is None
    assert later["code"] == 10000
    assert shop.stats.count("rate_limited") == 1


def test_an_expired_token_is_refused_and_token_refresh_issues_a_new_pair(book):
    # GIVEN tokens that live an hour on a clock the test moves
    clock = ManualClock()
    with DouyinSimulator(APP_KEY, SECRET, book, clock=clock, token_ttl_seconds=3600, rate_multiplier=1000) as shop:
        access, refresh = shop.issue_tokens()
        live = search(shop, access).json()
        clock.advance(3601)
        expired = search(shop, access).json()
        made_up = search(shop, "00000000-0000-0000-0000-000000000000").json()
        # WHEN the refresh token is used
        granted = call(shop, "/token/refresh", {"grant_type": "refresh_token", "refresh_token": refresh}, None).json()
        again = call(shop, "/token/refresh", {"grant_type": "refresh_token", "refresh_token": refresh}, None).json()
        fresh = search(shop, granted["data"]["access_token"]).json()
    # THEN the expired token gets 40003 isv.access-token-expired, an unknown one isv.access-token-no-existed
    assert live["code"] == 10000
    assert (expired["code"], expired["sub_code"], expired["sub_msg"]) == (40003, "isv.access-token-expired",
                                                                          "access_token已过期")
    assert made_up["sub_code"] == "isv.access-token-no-existed"
    # AND the refresh returns a new access token and a rotated refresh token; the old one is spent
    assert granted["code"] == 10000 and granted["data"]["expires_in"] == 3600
    assert granted["data"]["refresh_token"] != refresh and granted["data"]["access_token"] != access
    assert again["code"] == 50001 and again["sub_code"] == "dop.token-generate-failed:token-invalid"
    assert fresh["code"] == 10000
    assert shop.refreshes == 1


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_fault_is_a_server_error_with_douyins_service_error_body(book, status):
    with DouyinSimulator(APP_KEY, SECRET, book, faults=FaultPlan(rate=1.0, kinds=("5xx",), server_errors=(status,)),
                         rate_multiplier=1000) as shop:
        token, _ = shop.issue_tokens()
        response = search(shop, token)
    assert response.status_code == status
    assert response.json()["code"] == 20000 and response.json()["sub_code"] == "isp.service-error"
    assert shop.stats.count("fault_5xx") == 1


def test_a_429_fault_is_the_throttling_envelope_with_http_200(book):
    with DouyinSimulator(APP_KEY, SECRET, book, faults=FaultPlan(rate=1.0, kinds=("429",)),
                         rate_multiplier=1000) as shop:
        token, _ = shop.issue_tokens()
        response = search(shop, token)
    assert response.status_code == 200 and response.json()["code"] == 60000


def test_timeout_and_truncated_faults_break_the_delivery(book):
    faults = FaultPlan(rate=1.0, kinds=("timeout",), timeout_seconds=1.0)
    with DouyinSimulator(APP_KEY, SECRET, book, faults=faults, rate_multiplier=1000) as shop:
        token, _ = shop.issue_tokens()
        with pytest.raises(requests.Timeout):
            end = now()
            call(shop, "/order/searchList", {"update_time_start": epoch(end - timedelta(hours=1)),
                                             "update_time_end": epoch(end), "page": 0, "size": 1}, token,
                 timeout=0.3)
        faults.kinds = ("truncated",)
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                            json.JSONDecodeError, requests.exceptions.JSONDecodeError)):
            search(shop, token).json()
    assert shop.stats.count("fault_timeout") == 1 and shop.stats.count("fault_truncated") == 1


def test_the_token_endpoint_is_spared_by_faults_unless_asked(book):
    with DouyinSimulator(APP_KEY, SECRET, book, faults=FaultPlan(rate=1.0, kinds=("5xx",)),
                         rate_multiplier=1000) as shop:
        _access, refresh = shop.issue_tokens()
        granted = call(shop, "/token/refresh", {"grant_type": "refresh_token", "refresh_token": refresh}, None)
    assert granted.json()["code"] == 10000


def test_pages_are_served_live_so_an_order_updated_between_pages_moves(shop, orders, book):
    # GIVEN 150 orders in one window, and a hook that updates the earliest order before page 1
    base = now() - timedelta(minutes=50)
    ids = [orders.create(base + timedelta(seconds=20 * i)) for i in range(150)]
    token, _ = shop.issue_tokens()

    def touch_earliest(params: dict) -> None:
        if params["page"] == 1:
            orders.touch(ids[0], now() + timedelta(seconds=2))

    shop.on_page = touch_earliest
    first = search(shop, token, page=0).json()["data"]["shop_order_list"]
    second = search(shop, token, page=1).json()["data"]["shop_order_list"]
    # THEN plain ascending page numbers skip the order that shifted onto page 0
    read = {o["order_id"] for o in first + second}
    assert ids[100] not in read and len(read) == 149


def http_client(credentials: dict, shop_id: str) -> DouyinClient:
    return DouyinClient(shop_id, credentials, ChannelHttp(session=requests.Session(), timeout_seconds=2))


def test_our_client_reads_every_order_of_a_long_window_in_one_day_slices(book):
    # GIVEN 120 orders spread over the last 40 hours
    orders = generator_for("douyin", book, seed=3)
    end = now() - timedelta(minutes=2)
    ids = {orders.create(end - timedelta(hours=40) + timedelta(minutes=20 * i)) for i in range(120)}
    simulator, credentials = launch("slices", book, rate_multiplier=1000)
    try:
        # WHEN our client reads a 41-hour window
        pages = list(http_client(credentials, "slices").fetch_window(PollWindow(end - timedelta(hours=41), end)))
    finally:
        simulator.stop()
    # THEN every order came exactly once and no request spanned more than a day
    read = [record["order_id"] for page in pages for record in page]
    assert sorted(read) == sorted(ids)
    assert simulator.windows_over_maximum() == [] and simulator.stats.count("bad_request") == 0
    assert len({(r["start"], r["end"]) for r in simulator.list_requests}) >= 2


def test_our_client_misses_no_order_that_moves_between_pages(book):
    # GIVEN 350 orders in one window, and before every page the earliest unmoved order is updated
    orders = generator_for("douyin", book, seed=4)
    end = now() - timedelta(minutes=2)
    ids = [orders.create(end - timedelta(minutes=58) + timedelta(seconds=9 * i)) for i in range(350)]
    simulator, credentials = launch("moving", book, rate_multiplier=1000)
    moved: list[str] = []

    def move_one(_params: dict) -> None:
        orders.touch(ids[len(moved)], now())
        moved.append(ids[len(moved)])

    simulator.on_page = move_one
    try:
        pages = list(http_client(credentials, "moving").fetch_window(PollWindow(end - timedelta(hours=1), end)))
    finally:
        simulator.stop()
    # THEN every order that stayed in the window was read, despite the shifts
    read = {record["order_id"] for page in pages for record in page}
    assert len(moved) >= 4
    assert [i for i in ids if i not in moved and i not in read] == []
