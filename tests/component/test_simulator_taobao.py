"""The Taobao (TOP) simulator over real HTTP with plain `requests`, and the TaobaoClient against it:
system parameters and signatures, window and page rules, backwards paging while trades move,
trade types, partial list trades vs fullinfo, the app's rate limit, session expiry and refresh,
and injected faults."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import requests
from oms.adapters.channels import limiters
from oms.adapters.channels import taobao as adapter
from oms.adapters.channels.http import (
    ChannelHttp,
    ChannelRequestError,
    TransientChannelError,
)
from oms.adapters.channels.signing import top_sign
from oms.domain.polling import PollWindow
from oms.normalizers import taobao as normalizer
from oms.normalizers._fields import CHINA_TIME
from oms.ports import KnownRecord
from omsdev.simulators.base import FaultPlan, ManualClock
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.taobao import APP_BURST, TaobaoOrders, TaobaoSimulator

APP_KEY, SECRET, REFRESH = "23456789", "0123456789abcdef0123456789abcdef", "6202refresh"
CHINA = "%Y-%m-%d %H:%M:%S"


def now() -> datetime:
    return datetime.now(UTC)


def china(moment: datetime) -> str:
    return moment.astimezone(CHINA_TIME).strftime(CHINA)


def call(simulator: TaobaoSimulator, method: str, session: str | None = None, *, sign_method: str = "md5",
         secret: str = SECRET, drop: tuple[str, ...] = (), timeout: float = 5, **business) -> requests.Response:
    params = {"method": method, "app_key": APP_KEY, "timestamp": china(now()), "format": "json", "v": "2.0",
              "sign_method": sign_method, **{k: str(v) for k, v in business.items()}}
    if session is not None:
        params["session"] = session
    for name in drop:
        params.pop(name, None)
    params["sign"] = top_sign(params, secret, sign_method)
    if "sign" in drop:
        del params["sign"]
    return requests.post(f"{simulator.url}/router/rest", data=params, timeout=timeout)


def list_trades(simulator, session, start: datetime, end: datetime, **extra) -> requests.Response:
    query = {"fields": "tid,tid_str,status,type,modified", "start_modified": china(start), "end_modified": china(end)}
    return call(simulator, "taobao.trades.sold.increment.get", session, **{**query, **extra})


def error_of(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text  # TOP answers errors with HTTP 200
    return response.json()["error_response"]


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("taobao")


@pytest.fixture
def orders(book) -> TaobaoOrders:
    return TaobaoOrders(book, random.Random(5))


@pytest.fixture
def seller(book):
    with TaobaoSimulator(APP_KEY, SECRET, REFRESH, book, rate_multiplier=100) as simulator:
        yield simulator


@pytest.fixture
def session(seller) -> str:
    return seller.issue_session()


def test_a_correctly_signed_call_is_served_with_md5_and_with_hmac(seller, session, orders):
    orders.create(now() - timedelta(minutes=5))
    for sign_method in ("md5", "hmac"):
        response = list_trades(seller, session, now() - timedelta(hours=1), now(), sign_method=sign_method,
                               type="fixed,tmall_i18n,cod")
        assert response.status_code == 200
        assert response.json()["trades_sold_increment_get_response"]["total_results"] == 1
    assert seller.stats.count("ok") == 2


def test_a_bad_signature_is_rejected_with_code_25(seller, session):
    # WHEN the request is signed with another secret
    response = list_trades(seller, session, now() - timedelta(hours=1), now(), secret="not-the-secret")
    # THEN TOP's Invalid signature envelope, counted as an authentication failure
    error = error_of(response)
    assert (error["code"], error["msg"]) == (25, "Invalid signature")
    assert seller.stats.count("auth_failed") == 1 and seller.stats.count("ok") == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"drop": ("method",)}, 21),
        ({"method": "taobao.trades.sold.everything"}, 22),
        ({"drop": ("app_key",)}, 28),
        ({"drop": ("timestamp",)}, 30),
        ({"timestamp": "2020-01-01 00:00:00"}, 31),  # more than 10 minutes off
        ({"drop": ("v",)}, 32),
        ({"v": "1.0"}, 33),
        ({"format": "xml"}, 23),
        ({"drop": ("sign",)}, 24),
        ({"sign_method": "sha1"}, 25),
    ],
)
def test_system_parameter_rules(seller, session, change, code):
    # GIVEN a list request with one system parameter missing or wrong (signed after the change)
    drop = change.get("drop", ())
    params = {"method": "taobao.trades.sold.increment.get", "app_key": APP_KEY, "timestamp": china(now()),
              "format": "json", "v": "2.0", "sign_method": "md5", "session": session, "fields": "tid",
              "start_modified": china(now() - timedelta(hours=1)), "end_modified": china(now())}
    params.update({k: v for k, v in change.items() if k != "drop"})
    for name in drop:
        params.pop(name, None)
    if "sign" not in drop:
        # an unknown sign_method cannot be computed: sign with md5, the gateway refuses the method first
        params["sign"] = top_sign(params, SECRET, "md5")
    # WHEN sent THEN the documented code
    response = requests.post(f"{seller.url}/router/rest", data=params, timeout=5)
    assert error_of(response)["code"] == code


def test_window_longer_than_one_day_is_rejected_and_exactly_one_day_is_served(seller, session):
    end = now()
    too_long = list_trades(seller, session, end - timedelta(days=1, seconds=1), end)
    one_day = list_trades(seller, session, end - timedelta(days=1), end)
    backwards = list_trades(seller, session, end, end - timedelta(minutes=1))
    error = error_of(too_long)
    assert (error["code"], error["sub_code"]) == (41, "isv.invalid-parameter") and "one day" in error["sub_msg"]
    assert "trades_sold_increment_get_response" in one_day.json()
    assert error_of(backwards)["code"] == 41
    assert seller.stats.count("bad_request") == 2


def test_only_the_last_three_months_can_be_read(seller, session):
    start = now() - timedelta(days=91)
    assert error_of(list_trades(seller, session, start, start + timedelta(hours=1)))["code"] == 41


@pytest.mark.parametrize(("name", "value"), [("page_size", 101), ("page_size", 0), ("page_no", 0), ("page_size", "ten")])
def test_page_size_and_number_rules(seller, session, name, value):
    response = list_trades(seller, session, now() - timedelta(hours=1), now(), **{name: value})
    error = error_of(response)
    assert error["code"] == 41 and name in error["sub_msg"]


def test_required_business_parameters(seller, session):
    response = call(seller, "taobao.trades.sold.increment.get", session, fields="tid", start_modified=china(now()))
    error = error_of(response)
    assert error["code"] == 40 and error["sub_code"] == "isv.missing-parameter:end_modified"


def test_trades_are_sorted_by_modified_descending_and_paged(seller, session, orders):
    # GIVEN 7 trades modified a minute apart
    base = now() - timedelta(hours=1)
    ids = [orders.create(base + timedelta(minutes=i)) for i in range(7)]
    types = "fixed,tmall_i18n,cod"
    # WHEN read with page_size 3
    pages = [list_trades(seller, session, base, now(), page_size=3, page_no=p, type=types).json() for p in (1, 2, 3)]
    # THEN newest first, total on every page, the last page short
    bodies = [page["trades_sold_increment_get_response"] for page in pages]
    assert [body["total_results"] for body in bodies] == [7, 7, 7]
    read = [t["tid_str"] for body in bodies for t in body["trades"]["trade"]]
    assert read == list(reversed(ids))
    # AND use_has_next replaces the total with has_next
    body = list_trades(seller, session, base, now(), page_size=3, page_no=3, type=types,
                       use_has_next="true").json()["trades_sold_increment_get_response"]
    assert body["has_next"] is False and "total_results" not in body
    # AND an empty window has no `trades` at all
    empty = list_trades(seller, session, base - timedelta(hours=2), base - timedelta(hours=1)).json()
    assert empty["trades_sold_increment_get_response"]["total_results"] == 0
    assert "trades" not in empty["trades_sold_increment_get_response"]


def test_without_type_only_the_default_trade_types_come_back(seller, session, book, orders):
    # GIVEN trades of a default type and of Tmall Global (not a default type)
    start = now() - timedelta(hours=1)
    for _ in range(40):
        orders.create(now() - timedelta(minutes=5))
    kinds = {e.payload["type"] for e in book.entries()}
    assert "tmall_i18n" in kinds and "fixed" in kinds
    # WHEN listed without and with the explicit type list
    silent = list_trades(seller, session, start, now(), page_size=100).json()["trades_sold_increment_get_response"]
    explicit = list_trades(seller, session, start, now(), page_size=100,
                           type=adapter.TRADE_TYPES).json()["trades_sold_increment_get_response"]
    # THEN the default silently leaves the Tmall Global trades out
    assert explicit["total_results"] == 40
    assert silent["total_results"] == sum(1 for e in book.entries() if e.payload["type"] != "tmall_i18n") < 40


def test_list_trades_are_partial_and_fullinfo_gives_the_whole_trade(seller, session, orders):
    order_id = orders.create(now() - timedelta(minutes=5))
    listed = list_trades(seller, session, now() - timedelta(hours=1), now(), type="fixed,tmall_i18n,cod",
                         fields="tid,tid_str,modified,receiver_name,oaid,orders").json()
    trade = listed["trades_sold_increment_get_response"]["trades"]["trade"][0]
    assert set(trade) == {"tid", "tid_str", "modified", "orders"}  # receiver data and oaid only via fullinfo
    full = call(seller, "taobao.trade.fullinfo.get", session, tid=order_id, fields=adapter.DETAIL_FIELDS).json()
    detail = full["trade_fullinfo_get_response"]["trade"]
    assert detail["tid_str"] == order_id and detail["receiver_name"].startswith("~") and len(detail["oaid"]) == 32
    assert normalizer.normalize(detail, "s").ship_to.encrypted is True
    missing = call(seller, "taobao.trade.fullinfo.get", session, tid="4300000000000000001", fields="tid")
    assert error_of(missing)["sub_code"] == "isv.trade-not-exist"


def test_throttling_envelope_after_the_burst_and_recovery_on_the_clock(book):
    # GIVEN an app whose quota is 40 calls/s with a burst of 40, on a clock the test moves
    clock = ManualClock()
    with TaobaoSimulator(APP_KEY, SECRET, REFRESH, book, clock=clock) as seller:
        session = seller.issue_session()
        answers = [list_trades(seller, session, now() - timedelta(hours=1), now()) for _ in range(APP_BURST + 1)]
        # THEN the burst is served and the next call gets TOP's code 7 with the ban time
        assert all("trades_sold_increment_get_response" in r.json() for r in answers[:APP_BURST])
        error = error_of(answers[-1])
        assert (error["code"], error["msg"]) == (7, "App Call Limited")
        assert error["sub_code"] == "accesscontrol.limited-by-app-access-count"
        assert error["sub_msg"] == "This ban will last for 1 more seconds"
        assert seller.stats.count("rate_limited") == 1
        # AND a second later the bucket has refilled
        clock.advance(1)
        assert "trades_sold_increment_get_response" in list_trades(seller, session, now() - timedelta(hours=1), now()).json()


def test_sessions_expire_on_the_clock_and_the_refresh_call_issues_a_new_one(book):
    clock = ManualClock()
    with TaobaoSimulator(APP_KEY, SECRET, REFRESH, book, clock=clock, token_ttl_seconds=3600, rate_multiplier=100) as seller:
        session = seller.issue_session()
        live = list_trades(seller, session, now() - timedelta(hours=1), now())
        clock.advance(3601)
        expired = list_trades(seller, session, now() - timedelta(hours=1), now())
        missing = list_trades(seller, None, now() - timedelta(hours=1), now())
        unknown = list_trades(seller, "6201made-up", now() - timedelta(hours=1), now())
        refreshed = call(seller, "taobao.top.auth.token.refresh", refresh_token=REFRESH)
        wrong = call(seller, "taobao.top.auth.token.refresh", refresh_token="6202nope")
        assert "trades_sold_increment_get_response" in live.json()
        assert error_of(expired)["code"] == 27 and error_of(expired)["sub_code"] == "session-expired"
        assert error_of(missing)["code"] == 26
        assert error_of(unknown)["sub_code"] == "invalid-sessionkey"
        token = json.loads(refreshed.json()["top_auth_token_refresh_response"]["token_result"])
        assert token["expires_in"] == 3600 and token["refresh_token"] == REFRESH
        assert "trades_sold_increment_get_response" in list_trades(seller, token["access_token"], now() - timedelta(hours=1), now()).json()
        assert error_of(wrong)["code"] == 15
        assert seller.stats.count("auth_failed") == 4 and seller.refresh_requests == 2


@pytest.mark.parametrize("kind", ["5xx", "429", "timeout", "truncated"])
def test_faults(book, kind):
    with TaobaoSimulator(APP_KEY, SECRET, REFRESH, book, rate_multiplier=100,
                         faults=FaultPlan(rate=1.0, kinds=(kind,), timeout_seconds=1.0, server_errors=(502,))) as seller:
        session = seller.issue_session()
        if kind == "timeout":
            with pytest.raises(requests.Timeout):
                list_trades(seller, session, now() - timedelta(hours=1), now(), timeout=0.3)
        elif kind == "truncated":
            with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, ValueError)):
                list_trades(seller, session, now() - timedelta(hours=1), now()).json()
        else:
            response = list_trades(seller, session, now() - timedelta(hours=1), now())
            if kind == "5xx":
                assert response.status_code == 502 and response.json()["error_response"]["code"] == 10
            else:
                assert error_of(response)["code"] == 7
        assert seller.stats.count(f"fault_{kind}") == 1


def test_the_per_page_hook_runs_before_each_list_page(seller, session, orders):
    seen = []
    seller.on_list_page = seen.append
    for page_no in (3, 2, 1):
        list_trades(seller, session, now() - timedelta(hours=1), now(), page_no=page_no)
    assert seen == [3, 2, 1]
    assert [r["page_no"] for r in seller.list_requests] == [3, 2, 1]


# The adapter against the simulator ------------------------------------------------------------


def client_for(seller: TaobaoSimulator, shop: str, session: str, **extra) -> adapter.TaobaoClient:
    credentials = {"app_key": APP_KEY, "app_secret": SECRET, "session": session, "refresh_token": REFRESH,
                   "endpoint": seller.url + "/router/rest", "calls_per_second": 1000, **extra}
    return adapter.TaobaoClient(shop, credentials, ChannelHttp(session=requests.Session(), timeout_seconds=2))


@pytest.fixture(autouse=True)
def cold_adapter():
    limiters.forget_all()
    adapter.forget_tokens()
    yield


def read_all(client, window, known=None) -> list[dict]:
    return [record for page in client.fetch_window(window, known=known) for record in page]


def test_client_pages_backwards_and_no_trade_is_missed_while_trades_move(seller, session, orders, book):
    # GIVEN 120 trades in the window (three pages of 50), oldest first
    base = now() - timedelta(hours=2)
    ids = [orders.create(base + timedelta(seconds=30 * i)) for i in range(120)]
    window = PollWindow(base - timedelta(minutes=1), now() - timedelta(minutes=1))
    moved: list[str] = []

    def modify_during_the_poll(page_no: int) -> None:
        # After the probe of page 1: trades on every page are modified now, leaving the window.
        if page_no == 3 and not moved:
            for order_id in (ids[119], ids[100], ids[60], ids[10]):
                orders.touch(order_id, now())
                moved.append(order_id)

    seller.on_list_page = modify_during_the_poll
    # WHEN the client reads the window
    records = read_all(client_for(seller, "mover", session), window)
    # THEN every trade that did not move was read, with full details
    got = {normalizer.order_id_of(r) for r in records}
    assert set(ids) - set(moved) <= got
    assert all("receiver_name" in r for r in records)
    # AND it read page 1 (probe), then 3, 2, 1, each with the explicit type list
    assert [r["page_no"] for r in seller.list_requests] == [1, 3, 2, 1]
    assert all(r["types"] == adapter.TRADE_TYPES for r in seller.list_requests)


def test_forward_paging_would_have_missed_a_trade(seller, session, orders):
    # The control for the test above: reading pages 1, 2, 3 while a page-1 trade leaves skips one.
    base = now() - timedelta(hours=2)
    ids = [orders.create(base + timedelta(seconds=30 * i)) for i in range(9)]
    read = []
    for page_no in (1, 2, 3):
        body = list_trades(seller, session, base, now() - timedelta(minutes=1), page_no=page_no, page_size=3,
                           type=adapter.TRADE_TYPES).json()["trades_sold_increment_get_response"]
        read += [t["tid_str"] for t in body.get("trades", {}).get("trade", [])]
        if page_no == 1:
            orders.touch(ids[8], now())  # the newest trade leaves the window
    assert len(set(ids[:8]) - set(read)) == 1


def test_client_cuts_a_long_window_into_days(seller, session, orders):
    # GIVEN trades spread over two and a half days
    end = now() - timedelta(minutes=1)
    for hours in (1, 30, 55):
        orders.create(end - timedelta(hours=hours))
    window = PollWindow(end - timedelta(hours=60, microseconds=500), end)
    # WHEN read
    records = read_all(client_for(seller, "long", session), window)
    # THEN three list slices, none longer than a day, touching each other, and every trade
    spans = [(r["start"], r["end"]) for r in seller.list_requests]
    assert len(spans) == 3 and all(stop - start <= timedelta(days=1) for start, stop in spans)
    assert all(a[1] == b[0] for a, b in pairwise(spans))
    assert len(records) == 3 and seller.stats.count("bad_request") == 0


def test_client_skips_details_of_known_trades(seller, session, orders):
    base = now() - timedelta(hours=1)
    ids = [orders.create(base + timedelta(minutes=i)) for i in range(5)]
    window = PollWindow(base - timedelta(minutes=1), now() - timedelta(minutes=1))
    asked: list = []

    def known(pairs):
        asked.extend(pairs)
        return {ids[0], ids[1]}

    records = read_all(client_for(seller, "known", session), window, known=known)
    marked = {normalizer.order_id_of(r) for r in records if isinstance(r, KnownRecord)}
    assert marked == {ids[0], ids[1]}
    assert not any("known" in r for r in records)  # the mark is the type: the trade's own fields are untouched
    fullinfo_calls = seller.stats.total - len(seller.list_requests)
    assert fullinfo_calls == 3
    # the updated-at texts were converted from GMT+8 to ISO 8601 UTC
    assert all(stamp.endswith("Z") for _, stamp in asked)


def test_client_refreshes_an_expired_session_once_and_goes_on(book, orders):
    clock = ManualClock()
    with TaobaoSimulator(APP_KEY, SECRET, REFRESH, book, clock=clock, rate_multiplier=100) as seller:
        session = seller.issue_session()
        base = now() - timedelta(hours=1)
        for i in range(3):
            orders.create(base + timedelta(minutes=i))
        client = client_for(seller, "expiring", session, sign_method="hmac")
        pages = client.fetch_window(PollWindow(base - timedelta(minutes=1), now() - timedelta(minutes=1)))
        clock.advance(86401)  # the session dies before the first call
        records = [r for page in pages for r in page]
        assert len(records) == 3 and seller.refresh_requests == 1
        assert seller.stats.count("auth_failed") == 1


def test_client_maps_envelopes_to_errors():
    with pytest.raises(adapter.ChannelThrottledError) as throttled:
        adapter.check_envelope({"error_response": {"code": 7, "msg": "App Call Limited",
                                                   "sub_code": "accesscontrol.limited-by-api-access-count",
                                                   "sub_msg": "This ban will last for 12 more seconds"}})
    assert throttled.value.retry_after == 12
    with pytest.raises(adapter.ChannelAuthError):
        adapter.check_envelope({"error_response": {"code": 27, "msg": "Invalid session", "sub_code": "session-expired"}})
    with pytest.raises(TransientChannelError):
        adapter.check_envelope({"error_response": {"code": 15, "msg": "Remote service error",
                                                   "sub_code": "isp.top-remote-connection-timeout"}})
    with pytest.raises(ChannelRequestError):
        adapter.check_envelope({"error_response": {"code": 25, "msg": "Invalid signature"}})
    assert adapter.check_envelope({"trades_sold_increment_get_response": {"total_results": 0}}) is None
