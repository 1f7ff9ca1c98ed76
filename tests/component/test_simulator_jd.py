"""The JD JOS simulator over real HTTP with plain `requests`: signatures, system parameters, the
one-month window, page size, throttling envelope, token expiry and refresh, live offset pages, faults."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests
from oms.adapters.channels.signing import compact_json, top_sign
from omsdev.simulators.base import FaultPlan, ManualClock
from omsdev.simulators.jd import ROUTER_PATH, TOKEN_PATH, JdSimulator, china_text
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import generator_for

APP = {"app_key": "jd-app-test", "app_secret": "0123456789abcdef", "refresh_token": "refresh-test"}
ROOT = "jingdong_pop_order_search_responce"
THROTTLED = {"error_response": {"code": "2", "zh_desc": "限制时间内调用失败次数", "en_desc": "App Call Limited"}}


def now() -> datetime:
    return datetime.now(UTC)


def business(**overrides) -> dict:
    base = {"start_date": china_text(now() - timedelta(days=2)), "end_date": china_text(now()),
            "dateType": "0", "optional_fields": "orderId,orderState,modified", "page": "1", "page_size": "50"}
    return {**base, **overrides}


def call(simulator: JdSimulator, token: str | None, params: dict | None = None, *, secret: str = APP["app_secret"],
         timeout: float = 5, **system) -> requests.Response:
    form = {"method": "jingdong.pop.order.search", "app_key": APP["app_key"], "timestamp": china_text(now()),
            "v": "2.0", "format": "json", "360buy_param_json": compact_json(params or business())}
    if token:
        form["access_token"] = token
    form.update(system)
    form = {k: v for k, v in form.items() if v is not None}
    form["sign"] = top_sign(form, secret, "md5")
    return requests.post(simulator.url + ROUTER_PATH, data=form, timeout=timeout)


def result(response: requests.Response) -> dict:
    return response.json()[ROOT]["searchorderinfo_result"]


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("jd")


@pytest.fixture
def orders(book):
    return generator_for("jd", book, seed=5)


@pytest.fixture
def shop(book):
    with JdSimulator(**APP, book=book, rate_multiplier=1000) as simulator:
        yield simulator


def test_a_signed_search_returns_orders_with_only_the_optional_fields(shop, orders):
    # GIVEN two orders modified an hour ago
    ids = {orders.create(now() - timedelta(hours=1)) for _ in range(2)}
    # WHEN searched with a valid signature and token
    response = call(shop, shop.issue_token())
    # THEN HTTP 200, success, every order, only the fields asked for
    assert response.status_code == 200
    body = result(response)
    assert body["apiResult"]["success"] is True and body["orderTotal"] == 2
    assert {o["orderId"] for o in body["orderInfoList"]} == ids
    assert all(set(o) == {"orderId", "orderState", "modified"} for o in body["orderInfoList"])


def test_a_bad_signature_is_rejected_with_jds_invalid_signature_envelope(shop):
    response = call(shop, shop.issue_token(), secret="not-the-secret")
    assert response.status_code == 200
    assert response.json() == {"error_response": {"code": "12", "zh_desc": "无效签名", "en_desc": "Invalid Signature"}}
    assert shop.stats.count("auth_failed") == 1


@pytest.mark.parametrize(
    ("system", "code"),
    [
        ({"method": None}, "14"),
        ({"v": None}, "4"),
        ({"v": "1.0"}, "5"),
        ({"timestamp": None}, "7"),
        ({"timestamp": "yesterday"}, "8"),
        ({"timestamp": china_text(datetime.now(UTC) - timedelta(minutes=7))}, "8"),
        ({"method": "jingdong.pop.order.unknown"}, "15"),
    ],
)
def test_system_parameters_are_required_and_the_timestamp_must_be_fresh(shop, system, code):
    response = call(shop, shop.issue_token(), **system)
    assert response.json()["error_response"]["code"] == code


def test_a_missing_signature_is_its_own_error(shop):
    form = {"method": "jingdong.pop.order.search", "app_key": APP["app_key"], "timestamp": china_text(now()),
            "v": "2.0", "360buy_param_json": compact_json(business()), "access_token": shop.issue_token()}
    response = requests.post(shop.url + ROUTER_PATH, data=form, timeout=5)
    assert response.json()["error_response"]["code"] == "11"


def test_the_window_may_not_exceed_one_calendar_month(shop):
    token = shop.issue_token()
    start = datetime(2026, 2, 1, 0, 0, tzinfo=timezone(timedelta(hours=8)))
    # WHEN February 1 .. March 1 (one month, 28 days) and February 1 .. March 1 plus a second
    fits = call(shop, token, business(start_date=china_text(start), end_date=china_text(datetime(2026, 3, 1, tzinfo=start.tzinfo))))
    too_long = call(shop, token, business(start_date=china_text(start),
                                          end_date=china_text(datetime(2026, 3, 1, 0, 0, 1, tzinfo=start.tzinfo))))
    # THEN the first is served and the second is a failed apiResult
    assert result(fits)["apiResult"]["success"] is True
    api = result(too_long)["apiResult"]
    assert api["success"] is False and "one month" in api["englishErrCode"]
    assert shop.stats.count("bad_request") == 1


@pytest.mark.parametrize(
    "params",
    [
        business(page_size="101"),
        business(page_size="0"),
        business(page="0"),
        business(optional_fields=""),
        {k: v for k, v in business().items() if k != "start_date"},
        business(order_state="NOT_A_STATE"),
    ],
)
def test_business_parameter_rules(shop, params):
    api = result(call(shop, shop.issue_token(), params))["apiResult"]
    assert api["success"] is False and api["numberCode"]


def test_pages_are_offsets_with_order_total_ascending_or_descending(shop, orders):
    start = now() - timedelta(hours=5)
    ids = [orders.create(start + timedelta(minutes=i)) for i in range(7)]
    token = shop.issue_token()
    pages = [result(call(shop, token, business(page=str(p), page_size="3"))) for p in (1, 2, 3, 4)]
    assert [p["orderTotal"] for p in pages] == [7, 7, 7, 7]
    assert [o["orderId"] for p in pages for o in p["orderInfoList"]] == ids
    newest_first = result(call(shop, token, business(page="1", page_size="3", sortType="1")))
    assert [o["orderId"] for o in newest_first["orderInfoList"]] == ids[::-1][:3]


def test_an_order_updated_between_pages_moves_out_of_the_window(shop, orders):
    # GIVEN 6 orders and a window ending 10 minutes ago; after page 1 the first order is updated now
    start = now() - timedelta(hours=5)
    ids = [orders.create(start + timedelta(minutes=i)) for i in range(6)]
    window = business(start_date=china_text(start - timedelta(minutes=1)), end_date=china_text(now() - timedelta(minutes=10)),
                      page_size="3")

    def update_first(params: dict) -> None:
        if params["page"] == 2:
            orders.touch(ids[0], now())

    shop.before_page = update_first
    token = shop.issue_token()
    first, second = (result(call(shop, token, {**window, "page": str(p)})) for p in (1, 2))
    # THEN reading forward skips ids[3]: it slid into page 1 after page 1 was read (why the adapter reads backwards)
    assert [o["orderId"] for o in first["orderInfoList"]] == ids[:3]
    assert [o["orderId"] for o in second["orderInfoList"]] == ids[4:]
    assert second["orderTotal"] == 5


def test_throttling_answers_jds_envelope_after_the_burst(book):
    clock = ManualClock()
    with JdSimulator(**APP, book=book, clock=clock) as shop:
        token = shop.issue_token()
        responses = [call(shop, token) for _ in range(11)]
        assert [r.status_code for r in responses] == [200] * 11
        assert [("error_response" in r.json()) for r in responses] == [False] * 10 + [True]
        assert responses[-1].json() == THROTTLED
        clock.advance(0.1)  # one token at 10/s
        assert "error_response" not in call(shop, token).json()
        assert shop.stats.count("rate_limited") == 1


def test_an_expired_token_gets_jds_error_and_the_refresh_call_issues_a_new_one(book):
    clock = ManualClock()
    with JdSimulator(**APP, book=book, clock=clock, token_ttl_seconds=3600) as shop:
        token = shop.issue_token()
        assert "error_response" not in call(shop, token).json()
        clock.advance(3601)
        expired = call(shop, token).json()
        assert expired["error_response"]["code"] == "19"
        assert call(shop, None).json()["error_response"]["code"] == "19"
        # WHEN the refresh call is made with the app credentials and refresh token
        refreshed = requests.post(shop.url + TOKEN_PATH, timeout=5, data={
            "app_key": APP["app_key"], "app_secret": APP["app_secret"], "grant_type": "refresh_token",
            "refresh_token": APP["refresh_token"]}).json()
        wrong = requests.post(shop.url + TOKEN_PATH, timeout=5, data={
            "app_key": APP["app_key"], "app_secret": APP["app_secret"], "grant_type": "refresh_token",
            "refresh_token": "stolen"}).json()
        # THEN a new token valid for the TTL works, and a wrong refresh token gets none
        assert refreshed["expires_in"] == 3600 and refreshed["refresh_token"] == APP["refresh_token"]
        assert "error_response" not in call(shop, refreshed["access_token"]).json()
        assert "access_token" not in wrong
        assert shop.token_requests == 2


def test_faults_use_jds_envelopes_and_break_delivery(book, orders):
    orders.create(now() - timedelta(hours=1))
    faults = FaultPlan(rate=1.0, kinds=("5xx",), seed=3, server_errors=(500, 503))
    with JdSimulator(**APP, book=book, faults=faults, rate_multiplier=1000) as shop:
        token = shop.issue_token()
        failed = [call(shop, token) for _ in range(6)]
        assert {r.status_code for r in failed} <= {500, 503} and len({r.status_code for r in failed}) >= 1
        assert all(r.json()["error_response"]["code"] == "66" for r in failed)
        faults.kinds = ("429",)
        throttled = call(shop, token)
        assert throttled.status_code == 200 and throttled.json() == THROTTLED
        faults.kinds = ("timeout",)
        faults.timeout_seconds = 0.6
        with pytest.raises(requests.exceptions.ReadTimeout):
            call(shop, token, timeout=0.2)
        faults.kinds = ("truncated",)
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, ValueError)):
            json.loads(call(shop, token).text)
        outcomes = shop.stats.outcomes()
        assert outcomes["fault_5xx"] == 6 and outcomes["fault_429"] == 1
        assert outcomes["fault_timeout"] == 1 and outcomes["fault_truncated"] == 1
