"""Pinduoduo POP client: pdd.order.number.list.increment.get for one poll window, paged backwards.

Facts it relies on (each with its source; CHANNELS.md section 3):
- Gateway: POST to https://gw-api.pinduoduo.com/api/router, form-encoded; system parameters `type`
  (API name), `client_id`, `access_token`, `timestamp` (Unix seconds, within 10 minutes of PDD's
  clock), `data_type` (JSON), `version` (V1), `sign`; business parameters flat beside them.
  (PDD open-platform access guide, as quoted in public SDKs: bububa/openpdd core/client.go,
  lywzx/pdd-node-sdk; the official Java SDK `PopHttpClient` request classes.)
- Sign: UPPER(MD5(client_secret + key-sorted key+value of every parameter but `sign` +
  client_secret)): `signing.top_sign` md5; pinned by the published worked example
  E4DE3ED21002510DED352819E7AE6775 in tests/unit/test_signing_pdd.py.
- Increment list (lywzx/pdd-node-sdk `PddOrderNumberListIncrementGet.ts`, SchafferJ/open-pdd
  `pdd_order_number_list_increment_get.rs`, official Java SDK response class):
  `start_updated_at` / `end_updated_at` epoch SECONDS, end - start <= 30 minutes; end no later
  than PDD's now - 3 minutes, and pages read from the LAST page backwards, "to avoid missed
  orders"; `order_status` 5 = all, `refund_status` 5 = all, `is_lucky_flag` 0 = all, `page` from
  1, `page_size` <= 100 (default 100), `use_has_next` (true drops `total_count`: not used here,
  backwards paging needs the count). Only orders whose sale is within 3 months. Response
  `order_sn_increment_get_response` {total_count, has_next, order_sn_list[full orders]}: no detail
  call is needed, so `known` is not used (there is nothing expensive to skip).
- Errors come with HTTP 200 as {"error_response": {error_code, error_msg, sub_code, sub_msg,
  request_id}} (dtapps/go-library client.const.go). Retryable per lywzx/pdd-node-sdk
  `pdd-response.exception.ts`: 52101 interface throttled, 70031 calls too frequent (throttling ->
  ChannelThrottledError, retried with backoff), 52102 / 52103 interface / service temporarily
  unavailable (-> TransientChannelError); 10019 access_token expired -> refresh once and retry.
  20004 "签名验证失败" (sign check failed; justmd5/pinduoduo-sdk issue #19) and every other code is
  a request we must fix -> ChannelRequestError (not retried).
- Token refresh: `pdd.pop.auth.token.refresh` through the same gateway with `refresh_token`
  (signed, no access_token); answer `pop_auth_token_refresh_response` {access_token, expires_in,
  expires_at, refresh_token, refresh_token_expires_in, owner_id, ...} (official Java SDK
  `PddPopAuthTokenRefreshResponse`, bububa/openpdd auth/token_refresh.go).
- Rate limit: increment.get 3000 calls / 60 s per shop (lywzx/pdd-node-sdk LIMITERS, limiter
  level 1 = merchant); we run at 45/s with a burst of 20, under the 50/s average, unless the secret
  gives the granted `calls_per_second` (and `burst`).
Unsure items confirmed: amounts are JSON numbers (Double in the official Java SDK, f64 in open-pdd;
only the generated TypeScript types say string), and refund_status 3 is "退款中" (refunding), 4
"退款成功" (refunded) per the SDK field docs. Not confirmed: the codes for a bad timestamp or an
invalid (rather than expired) token; any auth-looking code therefore also gets one refresh.

Credentials secret (`oms/pdd/<shop>`): {"client_id", "client_secret", "access_token",
"refresh_token", "endpoint": "https://gw-api.pinduoduo.com/api/router", optional "calls_per_second"
and "burst"}. A refreshed token (and
the rotated refresh token PDD returns) is cached per shop in the warm container.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

from oms.adapters.channels import limiters
from oms.adapters.channels.http import (
    ChannelHttp,
    ChannelRequestError,
    ChannelThrottledError,
    TransientChannelError,
)
from oms.adapters.channels.platform_time import epoch_seconds
from oms.adapters.channels.signing import top_sign
from oms.adapters.channels.tokens import tokens_rotated
from oms.domain.polling import ChannelWindowRules, PollWindow
from oms.ports import ChannelAuthError, KnownVersions

GATEWAY = "https://gw-api.pinduoduo.com/api/router"
INCREMENT_API = "pdd.order.number.list.increment.get"
REFRESH_API = "pdd.pop.auth.token.refresh"
RESPONSE_KEY = "order_sn_increment_get_response"
REFRESH_KEY = "pop_auth_token_refresh_response"
MAX_SPAN = timedelta(minutes=30)
PAGE_SIZE = 100
ALL = 5  # order_status / refund_status "all"
RATE_PER_SECOND, BURST = 45.0, 20
THROTTLED_CODES = frozenset({52101, 70031})
UNAVAILABLE_CODES = frozenset({52102, 52103})
TOKEN_EXPIRED_CODES = frozenset({10019})
# A count that grows during a backwards pass means late-indexed orders: read the slice again.
MAX_PASSES = 3

# (endpoint, client_id, shop_id, secret's access token) -> (access token, refresh token)
_tokens: dict[tuple[str, str, str, str], tuple[str, str]] = {}
_tokens_lock = threading.Lock()


class _TokenExpired(ChannelAuthError):
    """The envelope said the access token is no longer valid: refresh it and try again once."""


def check_envelope(body: dict) -> None:
    """Raise for an HTTP-200 `error_response`; return for data."""
    error = body.get("error_response") if isinstance(body, dict) else None
    if error is None:
        return
    code = error.get("error_code") if isinstance(error, dict) else None
    reason = f"PDD error {code}: {error}"[:500]
    if code in THROTTLED_CODES:
        raise ChannelThrottledError(reason)
    if code in UNAVAILABLE_CODES:
        raise TransientChannelError(reason)
    if code in TOKEN_EXPIRED_CODES:
        raise _TokenExpired(reason)
    raise ChannelRequestError(reason)


def _total(page: dict) -> int:
    return int(page.get("total_count") or 0)


def window_slices(window: PollWindow) -> list[tuple[int, int]]:
    """The window as (start, end) epoch-second pairs of at most 30 minutes each, in order.

    Platform times have whole seconds, so the start rounds up and the end down without losing one.
    """
    slices, start = [], window.start
    while start < window.end:
        end = min(start + MAX_SPAN, window.end)
        first, last = math.ceil(start.timestamp()), epoch_seconds(end)
        if last >= first:
            slices.append((first, last))
        start = end
    return slices


class PddClient:
    channel = "pdd"
    # end <= PDD's now - 3 min; 15 s more absorbs clock skew. 30 minutes per request at most.
    rules = ChannelWindowRules(lag=timedelta(minutes=3, seconds=15), max_span=MAX_SPAN)
    pages_in_update_order = False  # ascending pages read last to first: the newest come first

    def __init__(self, shop_id: str, credentials: dict, http: ChannelHttp):
        self._shop_id = shop_id
        self._credentials = credentials
        self._endpoint = credentials.get("endpoint", GATEWAY)
        self._client_id = str(credentials["client_id"])
        self._secret = credentials["client_secret"]
        self._http = http
        rate, burst = limiters.granted_rate(credentials, RATE_PER_SECOND, BURST)
        self._bucket = limiters.bucket(("pdd", self._endpoint, self._client_id, shop_id), rate, burst)
        self._token_key = (self._endpoint, self._client_id, shop_id, credentials["access_token"])

    def fetch_window(self, window: PollWindow, known: KnownVersions | None = None) -> Iterator[list[dict]]:
        """Pages of full orders (the raw records `normalize` reads), every 30-minute slice in turn."""
        for start, end in window_slices(window):
            yield from self._read_slice(start, end)

    def _read_slice(self, start: int, end: int) -> Iterator[list[dict]]:
        """Page 1 for the count, then the last page back to the first (see the module docstring).

        An order updated during the pass leaves the slice (its new time is past `end`), so later
        orders shift one place towards page 1: read backwards they are never skipped, at worst
        read twice, which dedup absorbs. Page 1 is asked for again at the end only if the count
        moved during the pass: a slice ends at least 3 minutes before PDD's now, so no order joins
        it, and an unchanged count means none left it, so page 1 is still what the probe saw.
        With 30-minute slices that saves one call in every few.
        """
        probe = self._page(start, end, 1)
        total = _total(probe)
        if total <= PAGE_SIZE:
            yield probe.get("order_sn_list") or []
            return
        first_page: dict | None = probe
        for _ in range(MAX_PASSES):
            counts = set()
            for page in range(math.ceil(total / PAGE_SIZE), 1, -1):
                body = self._page(start, end, page)
                counts.add(_total(body))
                yield body.get("order_sn_list") or []
            if first_page is None or counts != {total}:
                first_page = self._page(start, end, 1)
            yield first_page.get("order_sn_list") or []
            grown = _total(first_page)
            if grown <= total:
                return
            total, first_page = grown, None

    def _page(self, start: int, end: int, page: int) -> dict:
        business = {
            "start_updated_at": start, "end_updated_at": end, "order_status": ALL, "refund_status": ALL,
            "is_lucky_flag": 0, "page": page, "page_size": PAGE_SIZE,
        }
        body = self._call(INCREMENT_API, business)
        content = body.get(RESPONSE_KEY)
        if not isinstance(content, dict):
            raise TransientChannelError(f"PDD answer without {RESPONSE_KEY}: {str(body)[:200]}")
        return content

    def _call(self, api: str, business: dict) -> dict:
        for attempt in range(2):
            access_token = self._access_token(refresh=attempt > 0)
            try:
                return self._post(api, business, access_token)
            except ChannelAuthError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _post(self, api: str, business: dict, access_token: str | None) -> dict:
        params = {
            "type": api, "client_id": self._client_id, "timestamp": int(time.time()), "data_type": "JSON",
            "version": "V1", **business,
        }
        if access_token:
            params["access_token"] = access_token
        params = {key: str(value) for key, value in params.items()}
        params["sign"] = top_sign(params, self._secret)
        return self._http.call("POST", self._endpoint, limiter=self._bucket, check_envelope=check_envelope,
                               data=params).body

    def _access_token(self, *, refresh: bool) -> str:
        with _tokens_lock:
            cached = _tokens.get(self._token_key)
        access_token, refresh_token = cached or (self._credentials["access_token"], self._credentials["refresh_token"])
        if not refresh:
            return access_token
        body = self._post(REFRESH_API, {"refresh_token": refresh_token}, None)
        granted = body.get(REFRESH_KEY)
        if not isinstance(granted, dict) or not granted.get("access_token"):
            raise ChannelAuthError(f"PDD token refresh gave no access_token: {str(body)[:200]}")
        fresh = (granted["access_token"], granted.get("refresh_token") or refresh_token)
        with _tokens_lock:
            _tokens[self._token_key] = fresh
        tokens_rotated("pdd", self._shop_id, {"access_token": fresh[0], "refresh_token": fresh[1]})
        return fresh[0]
