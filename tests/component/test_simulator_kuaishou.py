"""The Kuaishou simulator over real HTTP with plain `requests`: signatures, system parameters, the
7-day window and page-size rules, the QPS throttle envelope, token expiry and the refresh call,
the opaque cursor (also while orders move), the order generator and injected faults."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from oms.adapters.channels.signing import kuaishou_sign
from oms.domain.order import MalformedOrderError
from oms.normalizers import kuaishou as normalizer
from omsdev.simulators.base import FaultPlan, ManualClock
from omsdev.simulators.kuaishou import KuaishouOrders, KuaishouSimulator
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import generator_for

APP = {"app_key": "ks700000000000000001", "app_secret": "app-secret", "sign_secret": "sign-secret"}
REFRESH_TOKEN = "ChJvYXV0aC5yZWZyZXNoVG9rZW4-component"
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def list_call(simulator: KuaishouSimulator, token: str, *, sign_secret: str | None = None, drop: str | None = None,
              timeout: float = 5, **business) -> requests.Response:
    param = {"queryType": 2, "beginTime": now_ms() - DAY_MS, "endTime": now_ms() - 60_000, "orderViewStatus": 1,
             "pageSize": 50, "sort": 2, "cursor": "", **business}
    form = {"appkey": APP["app_key"], "method": "open.order.cursor.list", "version": "1",
            "param": json.dumps(param, separators=(",", ":")), "access_token": token,
            "timestamp": str(now_ms()), "signMethod": "HMAC_SHA256"}
    form["sign"] = kuaishou_sign(form, sign_secret or APP["sign_secret"])
    if drop:
        del form[drop]
    return requests.post(f"{simulator.url}/open/order/cursor/list", data=form, timeout=timeout)


def refresh_call(simulator: KuaishouSimulator, refresh_token: str, **overrides) -> requests.Response:
    form = {"app_id": APP["app_key"], "app_secret": APP["app_secret"], "grant_type": "refresh_token",
            "refresh_token": refresh_token, **overrides}
    return requests.post(f"{simulator.url}/oauth2/refresh_token", data=form, timeout=5)


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("kuaishou")


@pytest.fixture
def orders(book) -> KuaishouOrders:
    return generator_for("kuaishou", book, seed=5)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def shop(book, clock):
    with KuaishouSimulator(**APP, refresh_token=REFRESH_TOKEN, book=book, clock=clock) as simulator:
        yield simulator


def test_a_signed_call_is_served_and_a_bad_signature_is_rejected_with_result_28(shop, orders):
    orders.create(datetime.now(timezone.utc) - timedelta(minutes=5))
    token = shop.issue_access_token()
    good = list_call(shop, token)
    bad = list_call(shop, token, sign_secret="not-the-sign-secret")
    assert good.status_code == 200 and good.json()["result"] == 1
    assert len(good.json()["data"]["orderList"]) == 1 and good.json()["data"]["cursor"] == "nomore"
    # Errors are HTTP 200 envelopes, as on the platform
    assert bad.status_code == 200
    assert bad.json()["result"] == 28 and bad.json()["error_msg"] == "签名验证失败"
    assert shop.stats.count("auth_failed") == 1


@pytest.mark.parametrize("missing", ["sign", "timestamp", "access_token", "signMethod", "appkey"])
def test_a_missing_system_parameter_is_refused(shop, missing):
    response = list_call(shop, shop.issue_access_token(), drop=missing)
    assert response.json()["result"] == 27 and missing in response.json()["error_msg"]


def test_a_stale_timestamp_is_refused(book, clock):
    # GIVEN a platform whose clock is 11 minutes ahead of ours
    with KuaishouSimulator(**APP, refresh_token=REFRESH_TOKEN, book=book, clock=clock,
                           wall_clock=lambda: time.time() + 660) as shop:
        response = list_call(shop, shop.issue_access_token())
    assert response.json()["result"] == 27 and "timestamp" in response.json()["error_msg"]


def test_window_longer_than_7_days_is_rejected_and_exactly_7_days_is_served(shop):
    token = shop.issue_access_token()
    end = now_ms() - 60_000
    too_long = list_call(shop, token, beginTime=end - 7 * DAY_MS - 1, endTime=end)
    exactly = list_call(shop, token, beginTime=end - 7 * DAY_MS, endTime=end)
    backwards = list_call(shop, token, beginTime=end, endTime=end - 1)
    too_old = list_call(shop, token, beginTime=now_ms() - 91 * DAY_MS, endTime=now_ms() - 90 * DAY_MS)
    assert too_long.json()["result"] == 300004 and too_long.json()["msg"] == "SEARCH TIME RANGE EXPAND 7 DAYS"
    assert exactly.json()["result"] == 1
    assert backwards.json()["result"] == 300003
    assert too_old.json()["result"] == 300005
    assert shop.windows == [(end - 7 * DAY_MS, end)]  # only the accepted window is logged


def test_page_size_over_50_and_a_future_end_are_rejected(shop):
    token = shop.issue_access_token()
    assert list_call(shop, token, pageSize=51).json() == {
        "result": 2001, "error_msg": "pageSize无效", "code": "2001", "msg": "pageSize无效"}
    assert list_call(shop, token, pageSize=50).json()["result"] == 1
    assert list_call(shop, token, endTime=now_ms() + 5 * 60_000).json()["error_msg"] == "endTime无效"


def test_qps_limit_answers_the_throttle_envelope_after_the_burst_and_recovers(book, clock):
    # GIVEN a QPS limit of 3 on a clock that stands still
    with KuaishouSimulator(**APP, refresh_token=REFRESH_TOKEN, book=book, clock=clock, qps_limit=3) as shop:
        token = shop.issue_access_token()
        answers = [list_call(shop, token).json() for _ in range(4)]
        clock.advance(1.0)
        after_a_second = list_call(shop, token).json()
    # THEN the fourth call gets the platform's throttle envelope, with HTTP 200
    assert [a["result"] for a in answers] == [1, 1, 1, 802000]
    assert answers[3]["error_msg"].startswith("Exceed qps limit, KEY [apiId:open.order.cursor.list;")
    assert after_a_second["result"] == 1
    assert shop.stats.count("rate_limited") == 1


def test_an_expired_token_gets_result_24_and_the_refresh_call_issues_a_new_pair(shop, clock):
    # GIVEN a token that has expired on the platform's clock
    token = shop.issue_access_token()
    clock.advance(shop.token_ttl_seconds + 1)
    expired = list_call(shop, token).json()
    # WHEN the shop's refresh token is used
    refreshed = refresh_call(shop, REFRESH_TOKEN).json()
    # THEN the new access token works and a new refresh token replaces the old one
    assert expired["result"] == 24 and expired["error_msg"] == "access_token已过期"
    assert refreshed["result"] == 1 and refreshed["expires_in"] == 172800
    assert refreshed["refresh_token"] != REFRESH_TOKEN
    assert list_call(shop, refreshed["access_token"]).json()["result"] == 1
    # AND the old refresh token still works for 5 minutes, then it is discarded
    assert refresh_call(shop, REFRESH_TOKEN).json()["result"] == 1
    clock.advance(301)
    discarded = refresh_call(shop, REFRESH_TOKEN).json()
    assert discarded == {"result": 100200102, "error": "access_denied", "error_msg": "refreshToken.discarded"}
    assert refresh_call(shop, refreshed["refresh_token"]).json()["result"] == 1
    # AND an unknown token is refused too, with result 21
    assert list_call(shop, "not-a-token").json()["result"] == 21


def test_refresh_refuses_a_wrong_app_secret_grant_type_and_missing_fields(shop):
    assert refresh_call(shop, REFRESH_TOKEN, app_secret="nope").json()["result"] == 100200101
    assert refresh_call(shop, REFRESH_TOKEN, grant_type="code").json()["result"] == 100200104
    assert refresh_call(shop, "").json()["result"] == 100200100


def test_cursor_pages_are_opaque_live_and_never_skip_an_order_that_moves(shop, orders, book):
    # GIVEN 7 orders updated over the last hour
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    ids = [orders.create(start + timedelta(minutes=i)) for i in range(7)]
    token = shop.issue_access_token()
    # AND, between the first and second page, the oldest (already read) and a not yet read order change
    moved: list[str] = []

    def on_page(number: int, served: list[str]) -> None:
        if number == 1:
            for order_id in (ids[0], ids[4]):
                orders.touch(order_id, start + timedelta(minutes=30))
                moved.append(order_id)

    shop.on_page = on_page
    # WHEN every page is read ascending, 3 at a time
    pages, cursor = [], ""
    window = {"beginTime": now_ms() - DAY_MS, "endTime": now_ms() - 60_000}  # a cursor continues one query
    while True:
        data = list_call(shop, token, pageSize=3, cursor=cursor, **window).json()["data"]
        pages.append([str(o["orderBaseInfo"]["oid"]) for o in data["orderList"]])
        if data["cursor"] == "nomore":
            break
        assert data["cursor"] not in ids and "{" not in data["cursor"]  # opaque
        cursor = data["cursor"]
    # THEN both moved orders are read at their new position and nothing is skipped
    read = [order_id for page in pages for order_id in page]
    assert pages[0] == ids[:3]
    assert set(read) == set(ids)
    assert read[-2:] == [ids[0], ids[4]]  # their updateTime is now the latest in the window
    assert read.count(ids[4]) == 1 and read.count(ids[0]) == 2
    # AND a cursor only continues the query it came from
    other = list_call(shop, token, pageSize=3, cursor=cursor, orderViewStatus=3, **window).json()
    tampered = list_call(shop, token, pageSize=3, cursor="bm90LWEtY3Vyc29y", **window).json()
    assert other["result"] == tampered["result"] == 2001


def test_descending_default_sort_and_status_filter(shop, orders):
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    ids = [orders.create(start + timedelta(minutes=i)) for i in range(3)]
    orders.cancel(ids[0], start + timedelta(minutes=10))
    token = shop.issue_access_token()
    descending = list_call(shop, token, sort=1).json()["data"]["orderList"]
    closed = list_call(shop, token, orderViewStatus=7).json()["data"]["orderList"]
    assert [str(o["orderBaseInfo"]["oid"]) for o in descending] == [ids[0], ids[2], ids[1]]
    assert [str(o["orderBaseInfo"]["oid"]) for o in closed] == [ids[0]]


def test_generated_orders_normalize_and_malformed_ones_are_refused_naming_the_field(book, orders):
    moment = datetime.now(timezone.utc) - timedelta(minutes=5)
    good = book.get(orders.create(moment)).payload
    order = normalizer.normalize(good, "s")
    assert order.status.value == "paid" and order.ship_to.encrypted and order.currency == "CNY"
    assert order.total == order.lines[0].unit_price * order.lines[0].quantity
    expected = {"num_text": "orderItemInfo.num", "price_yuan": "orderItemInfo.price", "item_missing": "orderItemInfo"}
    for kind, field in expected.items():
        order_id = orders.create(moment, malformed=kind)
        with pytest.raises(MalformedOrderError, match=field.replace(".", r"\.")) as caught:
            normalizer.normalize(book.get(order_id).payload, "s")
        assert caught.value.channel_order_id == order_id
    # A late cancellation closes the order with a successful refund and a newer updateTime
    order_id = orders.create(moment)
    orders.cancel(order_id, moment + timedelta(minutes=1))
    cancelled = normalizer.normalize(book.get(order_id).payload, "s")
    assert (cancelled.status.value, cancelled.channel_status) == ("refunded", "80")
    assert not book.get(order_id).open


@pytest.mark.parametrize("kind", ["429", "5xx", "timeout", "truncated"])
def test_injected_faults(book, clock, kind):
    faults = FaultPlan(rate=1.0, kinds=(kind,), timeout_seconds=1.0, seed=3)
    with KuaishouSimulator(**APP, refresh_token=REFRESH_TOKEN, book=book, clock=clock, faults=faults) as shop:
        token = shop.issue_access_token()
        if kind == "timeout":
            with pytest.raises(requests.Timeout):
                list_call(shop, token, timeout=0.3)
        elif kind == "truncated":
            with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError, ValueError)):
                list_call(shop, token).json()
        else:
            response = list_call(shop, token)
            if kind == "429":
                assert response.status_code == 200 and response.json()["result"] == 802000
            else:
                assert response.status_code == 503
        # The refresh endpoint is not faulted unless asked
        assert refresh_call(shop, REFRESH_TOKEN).json()["result"] == 1
        assert shop.stats.count(f"fault_{kind}") == 1
