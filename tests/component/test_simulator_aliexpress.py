"""The AliExpress IOP simulator over real HTTP with plain `requests` (signatures, system parameters,
the OrderQuery rules, throttling, token expiry and refresh, faults), then our adapter against it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from oms.adapters.channels.aliexpress import AliexpressClient
from oms.adapters.channels.http import ChannelHttp
from oms.domain.polling import PollWindow
from omsdev.simulators.aliexpress import MAX_SPAN, AliexpressSimulator, pacific
from omsdev.simulators.base import FaultPlan, ManualClock
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import generator_for

APP_KEY, APP_SECRET, REFRESH = "500777", "s3cr3t", "50001refresh"
LIST, DETAIL = "aliexpress.solution.order.get", "aliexpress.solution.order.info.get"


def now() -> datetime:
    return datetime.now(timezone.utc)


def signed(api: str, params: dict, secret: str = APP_SECRET) -> dict:
    text = (api if "/" in api else "") + "".join(f"{k}{params[k]}" for k in sorted(params))
    return {**params, "sign": hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()}


def call(simulator: AliexpressSimulator, session: str | None, method: str, business: dict, *, secret=APP_SECRET,
         timeout: float = 5, **overrides) -> requests.Response:
    params = {"app_key": APP_KEY, "method": method, "sign_method": "sha256", "format": "json", "simplify": "false",
              "timestamp": str(int(time.time() * 1000)), "partner_id": "test",
              **({"session": session} if session else {}),
              **{k: json.dumps(v) for k, v in business.items()}, **overrides}
    return requests.post(simulator.url + "/sync", data=signed(method, params, secret), timeout=timeout)


def query(start: datetime, end: datetime, *, size: int = 50, page: int = 1, statuses=None) -> dict:
    body = {"modified_date_start": pacific(start), "modified_date_end": pacific(end), "page_size": size,
            "current_page": page}
    if statuses is not None:
        body["order_status_list"] = statuses
    return {"param0": body}


def result_of(response: requests.Response) -> dict:
    return response.json()["aliexpress_solution_order_get_response"]["result"]


def refresh(simulator: AliexpressSimulator, refresh_token: str = REFRESH) -> requests.Response:
    params = {"app_key": APP_KEY, "refresh_token": refresh_token, "sign_method": "sha256",
              "timestamp": str(int(time.time() * 1000))}
    return requests.post(simulator.url + "/rest/auth/token/refresh", data=signed("/auth/token/refresh", params), timeout=5)


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("aliexpress")


@pytest.fixture
def orders(book):
    return generator_for("aliexpress", book, seed=5)


@pytest.fixture
def seller(book):
    with AliexpressSimulator(APP_KEY, APP_SECRET, REFRESH, book, rate_multiplier=1000) as simulator:
        yield simulator


ALL = ["PLACE_ORDER_SUCCESS", "WAIT_SELLER_SEND_GOODS", "FINISH"]


def test_a_signed_call_with_a_live_session_reads_orders(seller, orders):
    # GIVEN two orders updated ten minutes ago
    made = {orders.create(now() - timedelta(minutes=10)) for _ in range(2)}
    # WHEN the list is asked for with a correct signature
    response = call(seller, seller.issue_token(), LIST, query(now() - timedelta(hours=1), now() - timedelta(minutes=2)))
    # THEN both come back in the platform's envelope, with their total
    result = result_of(response)
    assert response.status_code == 200 and result["success"] is True
    assert result["total_count"] == 2 and result["total_page"] == 1
    assert {str(o["order_id"]) for o in result["target_list"]["order_dto"]} == made


def test_a_bad_signature_is_rejected_with_incomplete_signature(seller):
    response = call(seller, seller.issue_token(), LIST, query(now() - timedelta(hours=1), now() - timedelta(minutes=2)),
                    secret="wrong")
    error = response.json()["error_response"]
    assert response.status_code == 200
    assert (error["type"], error["code"]) == ("ISV", "IncompleteSignature")
    assert error["msg"] == "The request signature does not conform to platform standards" and error["request_id"]
    assert seller.stats.count("auth_failed") == 1


def test_a_missing_system_parameter_and_a_stale_timestamp_are_refused(seller):
    token = seller.issue_token()
    params = {"app_key": APP_KEY, "method": LIST, "timestamp": str(int(time.time() * 1000)), "session": token}
    missing = requests.post(seller.url + "/sync", data=signed(LIST, params), timeout=5)  # no sign_method
    stale = call(seller, token, LIST, query(now() - timedelta(hours=1), now() - timedelta(minutes=2)),
                 timestamp=str(int(time.time() * 1000) - 11 * 60 * 1000))
    assert missing.json()["error_response"]["code"] == "MissingParameter"
    assert "sign_method" in missing.json()["error_response"]["msg"]
    assert stale.json()["error_response"]["code"] == "InvalidTimestamp"


def test_a_window_longer_than_the_maximum_is_refused(seller):
    end = now() - timedelta(minutes=5)
    too_long = result_of(call(seller, seller.issue_token(), LIST, query(end - MAX_SPAN - timedelta(seconds=1), end)))
    just_fits = result_of(call(seller, seller.issue_token(), LIST, query(end - MAX_SPAN, end)))
    assert too_long["success"] is False and too_long["error_code"] == "time_range_too_long"
    assert just_fits["success"] is True


def test_a_window_ending_inside_the_index_delay_is_refused(seller):
    result = result_of(call(seller, seller.issue_token(), LIST, query(now() - timedelta(hours=1), now())))
    assert result["success"] is False and result["error_code"] == "time_range_too_recent"


def test_a_page_size_over_the_maximum_is_refused(seller):
    window = (now() - timedelta(hours=1), now() - timedelta(minutes=2))
    over = result_of(call(seller, seller.issue_token(), LIST, query(*window, size=51)))
    assert over["success"] is False and over["error_code"] == "param_invalid" and "page_size" in over["error_message"]
    assert seller.stats.count("bad_request") == 1


def test_finished_orders_only_come_when_asked_for(seller, orders, book):
    order_id = orders.create(now() - timedelta(minutes=30))
    orders.cancel(order_id, now() - timedelta(minutes=20))
    window = (now() - timedelta(hours=1), now() - timedelta(minutes=2))
    default = result_of(call(seller, seller.issue_token(), LIST, query(*window)))
    explicit = result_of(call(seller, seller.issue_token(), LIST, query(*window, statuses=ALL)))
    assert default["total_count"] == 0 and explicit["total_count"] == 1
    assert explicit["target_list"]["order_dto"][0]["order_status"] == "FINISH"


def test_pages_are_served_live_newest_change_first_with_a_hook_between_pages(seller, orders):
    # GIVEN five orders and pages of two
    made = [orders.create(now() - timedelta(minutes=50 - i)) for i in range(5)]
    window = (now() - timedelta(hours=1), now() - timedelta(minutes=2))
    # AND a hook that moves the oldest order out of the window after page 1
    seller.on_page = lambda page, _query: page == 1 and orders.touch(made[0], now())
    token = seller.issue_token()
    first = result_of(call(seller, token, LIST, query(*window, size=2, page=1)))
    third = result_of(call(seller, token, LIST, query(*window, size=2, page=3)))
    # THEN page 1 held the two newest; after the move only four remain, so page 3 is empty
    assert [str(o["order_id"]) for o in first["target_list"]["order_dto"]] == [made[4], made[3]]
    assert first["total_page"] == 3 and third["total_count"] == 4 and third["target_list"]["order_dto"] == []


def test_the_detail_call_returns_the_address_of_an_order(seller, orders):
    order_id = orders.create(now() - timedelta(minutes=10))
    body = call(seller, seller.issue_token(), DETAIL, {"param1": {"order_id": int(order_id), "ext_info_bit_flag": 11111}})
    data = body.json()["aliexpress_solution_order_info_get_response"]["result"]["data"]
    assert str(data["id"]) == order_id and data["receipt_address"]["contact_person"]


def test_calls_over_the_burst_get_the_throttle_envelope(book):
    # GIVEN a gateway whose bucket never refills (the clock stands still)
    with AliexpressSimulator(APP_KEY, APP_SECRET, REFRESH, book, clock=ManualClock()) as seller:
        token = seller.issue_token()
        window = (now() - timedelta(hours=1), now() - timedelta(minutes=2))
        # WHEN eleven calls come at once
        answers = [call(seller, token, LIST, query(*window)).json() for _ in range(11)]
    # THEN the burst of ten passes and the eleventh is ApiCallLimit with HTTP 200, not data
    assert all("aliexpress_solution_order_get_response" in a for a in answers[:10])
    assert answers[10]["error_response"]["code"] == "ApiCallLimit"
    assert "ban will last" in answers[10]["error_response"]["msg"]
    assert seller.stats.count("rate_limited") == 1


def test_an_expired_session_is_refused_and_the_refresh_call_issues_a_new_one(book):
    clock = ManualClock()
    with AliexpressSimulator(APP_KEY, APP_SECRET, REFRESH, book, clock=clock, token_ttl_seconds=60,
                             rate_multiplier=1000) as seller:
        token = seller.issue_token()
        window = query(now() - timedelta(hours=1), now() - timedelta(minutes=2))
        live = call(seller, token, LIST, window)
        clock.advance(61)
        expired = call(seller, token, LIST, window)
        renewed = refresh(seller)
        wrong = refresh(seller, "50001nope")
        again = call(seller, renewed.json()["access_token"], LIST, window)
    assert "aliexpress_solution_order_get_response" in live.json()
    assert expired.json()["error_response"]["code"] == "IllegalAccessToken"
    body = renewed.json()
    assert body["code"] == "0" and body["expires_in"] == 60 and body["refresh_token"] == REFRESH
    assert wrong.json()["code"] == "IllegalRefreshToken" and wrong.json()["type"] == "ISV"
    assert result_of(again)["success"] is True
    assert seller.refresh_requests == 2


@pytest.mark.parametrize("kind", ["5xx", "429", "truncated", "timeout"])
def test_injected_faults_break_calls_as_the_platform_would(book, kind):
    faults = FaultPlan(rate=1.0, kinds=(kind,), timeout_seconds=1.5, server_errors=(503,))
    with AliexpressSimulator(APP_KEY, APP_SECRET, REFRESH, book, faults=faults, rate_multiplier=1000) as seller:
        window = query(now() - timedelta(hours=1), now() - timedelta(minutes=2))
        if kind == "timeout":
            with pytest.raises(requests.Timeout):
                call(seller, seller.issue_token(), LIST, window, timeout=0.5)
        elif kind == "truncated":
            with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                                ValueError)):
                call(seller, seller.issue_token(), LIST, window).json()
        else:
            response = call(seller, seller.issue_token(), LIST, window)
            error = response.json()["error_response"]
            if kind == "429":
                assert response.status_code == 200 and error["code"] == "ApiCallLimit"
            else:
                assert response.status_code == 503 and error["type"] == "SYSTEM"
        # the token endpoint is spared unless asked for
        assert refresh(seller).json()["code"] == "0"
        assert seller.stats.count(f"fault_{kind}") == 1


# Our adapter against the simulator ----------------------------------------------------------------

def credentials_for(seller: AliexpressSimulator, **extra) -> dict:
    return {"app_key": APP_KEY, "app_secret": APP_SECRET, "access_token": seller.issue_token(),
            "refresh_token": REFRESH, "endpoint": seller.url + "/sync", "auth_endpoint": seller.url + "/rest",
            "calls_per_second": 1000, **extra}


def test_the_adapter_cuts_a_long_window_into_slices_within_the_maximum(seller, orders):
    # GIVEN orders spread over three days
    made = {orders.create(now() - timedelta(hours=70) + timedelta(hours=5 * i)) for i in range(14)}
    client = AliexpressClient("slices", credentials_for(seller), ChannelHttp(requests.Session(), 5))
    # WHEN a four-day window is read
    pages = list(client.fetch_window(PollWindow(now() - timedelta(days=4), now() - timedelta(minutes=3))))
    # THEN every order is read, joined with its detail, and no query spanned more than the maximum
    records = [r for page in pages for r in page]
    assert {str(r["order"]["order_id"]) for r in records} == made
    assert all(r["detail"]["receipt_address"] for r in records)
    spans = [datetime.fromisoformat(q["modified_date_end"]) - datetime.fromisoformat(q["modified_date_start"])
             for q in seller.list_queries]
    assert len(spans) >= 4 and max(spans) <= MAX_SPAN
    assert seller.stats.count("bad_request") == 0


def test_the_adapter_refreshes_an_expired_token_mid_poll_and_retries_throttled_calls(book, orders):
    # GIVEN a seller whose bucket holds 10 calls and refills slowly, and 60 orders (pages of 50)
    with AliexpressSimulator(APP_KEY, APP_SECRET, REFRESH, book, rate_multiplier=4) as seller:
        for i in range(60):
            orders.create(now() - timedelta(minutes=90) + timedelta(seconds=40 * i))
        # AND every token expires right after the first page was served
        seller.on_page = lambda page, _q: seller.expire_tokens() if seller.refresh_requests == 0 else None
        client = AliexpressClient("refresh-mid-poll", credentials_for(seller, calls_per_second=40),
                                  ChannelHttp(requests.Session(), 5))
        # WHEN the window is read
        records = [r for page in client.fetch_window(PollWindow(now() - timedelta(hours=2),
                                                                now() - timedelta(minutes=3))) for r in page]
    # THEN every order came once per page read, the token was refreshed once, and throttles were retried
    assert {str(r["order"]["order_id"]) for r in records} == book.order_ids()
    assert seller.refresh_requests == 1 and seller.stats.count("auth_failed") == 1
    assert seller.stats.count("rate_limited") >= 1
    assert all("detail" in r and "error_response" not in json.dumps(r) for r in records)
