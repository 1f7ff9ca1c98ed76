"""Douyin Shop (抖店) client: order.searchList for one poll window, read as a keyset over update_time.

Facts it relies on, each with its source (CHANNELS.md section 4 has the leads):
- Transport (official doudian SDK for Go, `core/doudian_op_api_client.go`, `core/http`): POST
  `{endpoint}/order/searchList`; system parameters in the query string: `app_key`, `method`
  (the path with "/" -> ".": `order.searchList`), `access_token`, `timestamp` (Unix SECONDS:
  the SDK sends `time.Now().Unix()`; the guide also accepts GMT+8 `yyyy-MM-dd HH:mm:ss`, which we
  do not use), `v=2`, `sign_method=hmac-sha256`, `sign`; the body is `param_json`, the business
  parameters as key-sorted compact JSON without HTML escaping (`utils/sign_util.go` Marshal).
- Sign: lower hex HMAC-SHA256(app_secret, app_secret + "app_key…method…param_json…timestamp…v2" +
  app_secret) (`utils/sign_util.go` Sign) = `signing.douyin_sign`; pinned by
  tests/unit/test_signing_douyin.py.
- order.searchList parameters (SDK `order_searchList_request.go`; docs api-docs/15/1342):
  `update_time_start` / `update_time_end` epoch seconds, `order_by` "update_time", `order_asc`
  (default descending, so we send true), `page` from 0, `size` <= 100; answer `data` {page,
  size, total, shop_order_list[]} with full shop orders (no detail call is needed, so `known` is
  not used). Return codes published with the API (the ret-code table reproduced in a public
  C# SDK's `OrderSearchListReq`): 40004 `isv.parameter-invalid:20008` size over 100,
  `:10035` page below 0, `:20011` no start time, `:20013` paging deeper than 50,000 orders,
  `:20022` older than 90 days; 20000 `isp.service-error:20004/20005` busy, "retry 3-5 times
  within 30 s".
- Envelope (`core/doudian_op_api_base_response.go`): HTTP 200 with {code, msg, sub_code, sub_msg,
  log_id, data}; success is code 10000. Error codes (the platform's "平台基础错误码" table as
  reproduced in public SDKs): 60000 触发限流 with sub_code `isp.traffic-limited[:n]` -> throttled
  (ChannelThrottledError, backed off and retried); 20000 服务不可用 / 20001 内部服务超时 and any
  `isp.service-error` -> TransientChannelError; 40003 `isv.access-token-expired` or
  `isv.access-token-no-existed` -> refresh the token once and retry (what the official Java and
  Python SDKs do); 30001 authorization revoked/closed and other token problems -> ChannelAuthError;
  anything else (bad signature, bad parameter) -> ChannelRequestError, not retried.
- Token refresh (SDK `core/refresh_token_request.go`, `create_token_request.go`): POST
  `{endpoint}/token/refresh`, method `token.refresh`, signed the same way without access_token,
  param_json {"grant_type": "refresh_token", "refresh_token": …}; `data` {access_token,
  expires_in (7 days by default), refresh_token (rotated; valid 14 days), shop_id, …}. A failed
  refresh (50001 `dop.token-generate-failed:*`) is a ChannelAuthError.
Unsure items and the choices made:
- Maximum window: no maximum span is published (confirmed absent in the current API schema);
  the published limits are the 90-day history and a paging depth of 50,000 orders. We poll at
  most ONE DAY per request (a conservative choice, like Taobao's documented day) and, because
  every request of the keyset below is page 0, the depth limit is never reached.
- Lag: none is published; the list is a search index, so windows end 1 minute behind now
  (our choice) and overlapping windows re-read the recent past.
- Rate limit: per-app quotas are set in the Douyin console and not published; we run at 10
  calls/s with a burst of 5 (a conservative choice; the simulator enforces 20/s) unless the secret
  gives the app's granted `calls_per_second` (and `burst`).
Paging choice: pages are sorted by update_time ascending. Plain ascending page numbers skip an
order whenever an earlier one is updated during the poll (it leaves the window and everything
behind it moves one place forward), so after each page the next request starts again at page 0
from the last update_time read minus one second (inclusive or exclusive bounds alike), and
records already read at that version are dropped. Only a page whose orders all share those two
seconds moves on by page number. The same keyset keeps every request far from the 50,000 limit.

Credentials secret (`oms/douyin/<shop>`): {"app_key", "app_secret", "access_token",
"refresh_token", "endpoint": "https://openapi-fxg.jinritemai.com", optional "calls_per_second" and
"burst"}. A refreshed token pair is
cached per shop in the warm container (Douyin rotates the refresh token).
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
from oms.adapters.channels.signing import compact_json, douyin_sign
from oms.adapters.channels.tokens import tokens_rotated
from oms.domain.polling import ChannelWindowRules, PollWindow
from oms.ports import ChannelAuthError, KnownVersions

ENDPOINT = "https://openapi-fxg.jinritemai.com"
SEARCH_METHOD = "order.searchList"
REFRESH_METHOD = "token.refresh"
SUCCESS = 10000
MAX_SPAN = timedelta(days=1)
PAGE_SIZE = 100
RATE_PER_SECOND, BURST = 10.0, 5
THROTTLED_CODES = frozenset({60000})
UNAVAILABLE_CODES = frozenset({20000, 20001})
AUTH_CODES = frozenset({30001})
TOKEN_EXPIRED_SUB_CODES = ("isv.access-token-expired", "isv.access-token-no-existed")

# (endpoint, app_key, shop_id, secret's access token) -> (access token, refresh token)
_tokens: dict[tuple[str, str, str, str], tuple[str, str]] = {}
_tokens_lock = threading.Lock()


class _TokenExpired(ChannelAuthError):
    """The envelope said the access token is no longer valid: refresh it and try again once."""


def _sub_code(body: dict) -> str:
    return str(body.get("sub_code") or "")


def check_envelope(body: dict) -> None:
    """Raise for an HTTP-200 error envelope; return for data (code 10000)."""
    if not isinstance(body, dict):
        raise TransientChannelError(f"Douyin answer is not an object: {str(body)[:200]}")
    code = body.get("code")
    if code == SUCCESS:
        return
    sub_code = _sub_code(body)
    reason = f"Douyin error {code} {sub_code}: {body.get('msg')} / {body.get('sub_msg')}"[:500]
    if code in THROTTLED_CODES or sub_code.startswith("isp.traffic-limited"):
        raise ChannelThrottledError(reason)
    if code in UNAVAILABLE_CODES or sub_code.startswith("isp.service-error"):
        raise TransientChannelError(reason)
    if sub_code.startswith(TOKEN_EXPIRED_SUB_CODES):
        raise _TokenExpired(reason)
    if code in AUTH_CODES or sub_code.startswith(("isv.access-token", "dop.token-generate-failed")):
        raise ChannelAuthError(reason)
    raise ChannelRequestError(reason)


def window_slices(window: PollWindow) -> list[tuple[int, int]]:
    """The window as (start, end) epoch-second pairs of at most one day each, in order.

    Update times are whole seconds: the start rounds up, the end down, and consecutive slices
    share no second, so nothing is lost or read twice between them.
    """
    slices, start = [], window.start
    while start < window.end:
        end = min(start + MAX_SPAN, window.end)
        first, last = math.ceil(start.timestamp()), epoch_seconds(end)
        if slices and first <= slices[-1][1]:
            first = slices[-1][1] + 1
        if last >= first:
            slices.append((first, last))
        start = end
    return slices


def _update_time(record: dict) -> int | None:
    value = record.get("update_time") if isinstance(record, dict) else None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None  # the normalizer quarantines it; it does not steer the paging


def _version(record: dict) -> tuple[object, object]:
    return (record.get("order_id"), record.get("update_time")) if isinstance(record, dict) else (None, None)


class DouyinClient:
    channel = "douyin"
    # No published lag or maximum span: see the module docstring for these conservative choices.
    rules = ChannelWindowRules(lag=timedelta(minutes=1), max_span=MAX_SPAN)
    pages_in_update_order = True  # keyset over update_time, ascending

    def __init__(self, shop_id: str, credentials: dict, http: ChannelHttp):
        self._shop_id = shop_id
        self._credentials = credentials
        self._endpoint = str(credentials.get("endpoint") or ENDPOINT).rstrip("/")
        self._app_key = str(credentials["app_key"])
        self._secret = credentials["app_secret"]
        self._http = http
        rate, burst = limiters.granted_rate(credentials, RATE_PER_SECOND, BURST)
        self._bucket = limiters.bucket(("douyin", self._endpoint, self._app_key, shop_id), rate, burst)
        self._token_key = (self._endpoint, self._app_key, shop_id, credentials["access_token"])

    def fetch_window(self, window: PollWindow, known: KnownVersions | None = None) -> Iterator[list[dict]]:
        """Pages of full shop orders (the raw records `normalize` reads), one-day slices in turn."""
        for start, end in window_slices(window):
            yield from self._read_slice(start, end)

    def _read_slice(self, start: int, end: int) -> Iterator[list[dict]]:
        """Keyset over update_time (see the module docstring): never misses an order that moves."""
        seen: set[tuple[object, object]] = set()
        cursor, page = start, 0
        while True:
            data = self._search(cursor, end, page)
            orders = data.get("shop_order_list") or []
            fresh = [order for order in orders if _version(order) not in seen]
            seen.update(_version(order) for order in orders)
            if fresh:
                yield fresh
            if len(orders) < PAGE_SIZE:
                return
            times = [t for t in (_update_time(order) for order in orders) if t is not None]
            restart = max(start, max(times, default=cursor) - 1)
            if restart > cursor:
                cursor, page = restart, 0
            else:  # a whole page inside two seconds: step through that second by page number
                page += 1

    def _search(self, start: int, end: int, page: int) -> dict:
        business = {"update_time_start": start, "update_time_end": end, "order_by": "update_time",
                    "order_asc": True, "page": page, "size": PAGE_SIZE}
        body = self._call(SEARCH_METHOD, "/order/searchList", business)
        data = body.get("data")
        if not isinstance(data, dict):
            raise TransientChannelError(f"Douyin answer without data: {str(body)[:200]}")
        return data

    def _call(self, method: str, path: str, business: dict) -> dict:
        for attempt in range(2):
            access_token = self._access_token(refresh=attempt > 0)
            try:
                return self._post(method, path, business, access_token)
            except _TokenExpired:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _post(self, method: str, path: str, business: dict, access_token: str | None) -> dict:
        param_json = compact_json(business)
        timestamp = str(int(time.time()))
        params = {"app_key": self._app_key, "method": method, "timestamp": timestamp, "v": "2",
                  "sign_method": "hmac-sha256",
                  "sign": douyin_sign(app_key=self._app_key, secret=self._secret, method=method,
                                      param_json=param_json, timestamp=timestamp)}
        if access_token:
            params["access_token"] = access_token
        return self._http.call("POST", self._endpoint + path, limiter=self._bucket, check_envelope=check_envelope,
                               params=params, data=param_json.encode(),
                               headers={"Content-Type": "application/json;charset=UTF-8"}).body

    def _access_token(self, *, refresh: bool) -> str:
        with _tokens_lock:
            cached = _tokens.get(self._token_key)
        access_token, refresh_token = cached or (self._credentials["access_token"], self._credentials["refresh_token"])
        if not refresh:
            return access_token
        body = self._post(REFRESH_METHOD, "/token/refresh",
                          {"grant_type": "refresh_token", "refresh_token": refresh_token}, None)
        granted = body.get("data")
        if not isinstance(granted, dict) or not granted.get("access_token"):
            raise ChannelAuthError(f"Douyin token refresh gave no access_token: {str(body)[:200]}")
        fresh = (granted["access_token"], granted.get("refresh_token") or refresh_token)
        with _tokens_lock:
            _tokens[self._token_key] = fresh
        tokens_rotated("douyin", self._shop_id, {"access_token": fresh[0], "refresh_token": fresh[1]})
        return fresh[0]
