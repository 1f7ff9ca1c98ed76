"""Kuaishou Shop (快手小店) client: `open.order.cursor.list` by update time, cursor paging.

Facts it relies on, with their sources:
- Call: POST https://openapi.kwaixiaodian.com/open/order/cursor/list (the method name with dots
  as slashes), Content-Type application/x-www-form-urlencoded only, `param` in the body for POST;
  system parameters `appkey`, `method`, `version=1`, `param` (business JSON), `access_token`,
  `timestamp` (epoch ms), `signMethod` (HMAC_SHA256 recommended, or MD5), `sign`. The signature
  is `signing.kuaishou_sign` with the app's signSecret (not the appSecret), computed before any
  URL encoding. [Kuaishou "API调用说明", 文档ID 401853, mirrored in
  AndersonBY/kwaixiaodian-python-sdk docs/开发指南和规则协议/开发文档/API调用说明.md]
- Business parameters [CHANNELS.md section 5: ks-shop-python-sdk OpenOrderCursorListSchema,
  whalesky-labs/kwaishop-php-sdk OpenOrderCursorList]: queryType 2 (update time), beginTime /
  endTime in epoch ms, orderViewStatus 1 (all), pageSize <= 50, sort 2 (ascending), cpsType 0
  (all), cursor "" first, then the returned cursor until it is "nomore".
  We page ascending on purpose: with a keyset cursor an order updated during the poll can only
  move *behind* the cursor's position, so it is read again later, never skipped.
- Window: endTime - beginTime <= 7 days, else code 300004 "SEARCH TIME RANGE EXPAND 7 DAYS";
  300003 end before begin; 300005 older than 90 days ["返回码说明", 文档ID 400074, same mirror].
  Longer windows are cut into 7-day slices here as well as by the poll planner.
  No lag is documented; we end windows one minute before now (an order list served from a
  search index trails the writes) - a conservative choice, not a platform fact.
- Envelope: success is `result == 1` with `data`; errors keep HTTP 200 and carry `result` != 1 with
  `error_msg` / `msg` / `code` / `subCode` / `subMsg`. Which `result` means what (CHANNELS.md marks
  it unsure): throttling - the official FAQ K1008 (文档ID 401546) quotes "Exceed qps limit, KEY
  [apiId:...;appkey:...], MAX_QPS [300.0]" and "[1017] exceed quota limit"; the codes 15, 16, 17,
  1016, 1017 and 802000 are read as rate limits by whalesky-labs/kwaishop-php-sdk
  src/Core/Pipeline/ResponseParser.php. We treat those codes *and* those messages as throttling
  (ChannelThrottledError, retried after one second). Session: the same SDK reads 21/24 as
  authentication and 22/25/26 as authorization failures; FAQ K0004 (文档ID 401728) says "鉴权失败"
  / "TOKEN过期" means an expired token, a missing scope or a revoked grant; the OAuth document
  lists 100200102 access_denied for any token error. All of these -> ChannelAuthError (refresh once
  and retry). 27/28 are signature errors (our bug: ChannelRequestError). 100200500 server_error and
  results 500-599 are server-side -> TransientChannelError. Exact per-code meanings stay unconfirmed
  by an official table.
- Rate: `open.order.cursor.list` allows 300 QPS per app and 300 per user ["API限流说明", 文档ID
  401718]. We run one bucket per app at 50 per second (burst 50): the app's budget is shared by
  every shop and every other call the app makes, so we stay well under it, unless the secret
  gives the rate set aside for order listing (`calls_per_second`, `burst`).
- Tokens ["APP授权说明", 文档ID 401716]: access tokens live `expires_in` seconds (172800 = 48 h by
  default); refresh with POST https://openapi.kwaixiaodian.com/oauth2/refresh_token, form
  `grant_type=refresh_token`, `refresh_token`, `app_id`, `app_secret` -> `result` 1,
  `access_token`, `expires_in`, a NEW `refresh_token` (the old one stops working within 5
  minutes), `refresh_token_expires_in`, `scopes`. The rotated refresh token is cached per shop in
  this module (a warm container keeps using it); persisting it back into the secret needs write
  access the poller does not have (see the project's report).

Credentials secret (JSON): {"app_key": "ks...", "app_secret": "...", "sign_secret": "...",
"access_token": "..." (optional: refreshed when absent), "refresh_token": "...",
"endpoint": "https://openapi.kwaixiaodian.com" (optional),
"token_url": "https://openapi.kwaixiaodian.com/oauth2/refresh_token" (optional),
"sign_method": "HMAC_SHA256" | "MD5" (optional, default HMAC_SHA256),
"calls_per_second" and "burst" (optional)}.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from oms.adapters.channels import limiters
from oms.adapters.channels.http import (
    ChannelHttp,
    ChannelRequestError,
    ChannelThrottledError,
    TransientChannelError,
)
from oms.adapters.channels.platform_time import epoch_millis
from oms.adapters.channels.signing import kuaishou_sign
from oms.adapters.channels.tokens import tokens_rotated
from oms.domain.polling import ChannelWindowRules, PollWindow
from oms.ports import ChannelAuthError, KnownVersions

DEFAULT_ENDPOINT = "https://openapi.kwaixiaodian.com"
REFRESH_PATH = "/oauth2/refresh_token"
LIST_METHOD = "open.order.cursor.list"
API_VERSION = "1"
DEFAULT_SIGN_METHOD = "HMAC_SHA256"
MAX_SPAN = timedelta(days=7)
PAGE_SIZE = 50
NO_MORE = "nomore"
QUERY_BY_UPDATE_TIME, ALL_ORDERS, ASCENDING, ALL_CPS_TYPES = 2, 1, 2, 0
LIST_RATE, LIST_BURST = 50.0, 50
REFRESH_RATE, REFRESH_BURST = 1.0, 5
TOKEN_REFRESH_MARGIN_SECONDS = 300

THROTTLE_RESULTS = frozenset({15, 16, 17, 1016, 1017, 802000})
THROTTLE_MESSAGES = ("exceed qps limit", "exceed quota limit")
AUTH_RESULTS = frozenset({21, 22, 24, 25, 26, 100200102})
SERVER_RESULTS = frozenset({100200500, *range(500, 600)})
THROTTLE_WAIT_SECONDS = 1.0  # a per-second QPS limit: the next second has room again


@dataclass
class _Session:
    access_token: str | None
    refresh_token: str
    expires_at: float | None  # time.time() after which we refresh first; None: use until refused
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


# One session per authorized shop, kept by a warm container across invocations.
_sessions: dict[tuple[str, ...], _Session] = {}
_sessions_lock = threading.Lock()


def _result_code(body: dict) -> int | None:
    try:
        return int(body.get("result"))
    except (TypeError, ValueError):
        return None


def _message(body: dict) -> str:
    parts = (body.get(key) for key in ("error_msg", "errorMsg", "msg", "subMsg", "error", "code", "subCode"))
    return " | ".join(str(part) for part in parts if part not in (None, ""))[:300]


def check_envelope(body: object) -> None:
    """Raise the error an HTTP-200 Kuaishou envelope carries; return quietly for data."""
    if not isinstance(body, dict):
        raise ChannelRequestError(f"unexpected Kuaishou body: {str(body)[:200]}")
    code = _result_code(body)
    if code == 1:
        return
    message = _message(body)
    reason = f"Kuaishou result {body.get('result')!r}: {message}"
    if code in THROTTLE_RESULTS or any(text in message.lower() for text in THROTTLE_MESSAGES):
        raise ChannelThrottledError(reason, THROTTLE_WAIT_SECONDS)
    if code in AUTH_RESULTS:
        raise ChannelAuthError(reason)
    if code in SERVER_RESULTS:
        raise TransientChannelError(reason)
    raise ChannelRequestError(reason)


def window_slices(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[start, end] cut into pieces of at most 7 days (the platform's hard maximum)."""
    while start < end:
        piece_end = min(end, start + MAX_SPAN)
        yield start, piece_end
        start = piece_end


class KuaishouClient:
    channel = "kuaishou"
    rules = ChannelWindowRules(lag=timedelta(minutes=1), max_span=MAX_SPAN)
    pages_in_update_order = True  # cursor paging, update time ascending

    def __init__(self, shop_id: str, credentials: dict, http: ChannelHttp):
        self._shop_id = shop_id
        self._app_key = credentials["app_key"]
        self._app_secret = credentials["app_secret"]
        self._sign_secret = credentials["sign_secret"]
        self._sign_method = credentials.get("sign_method", DEFAULT_SIGN_METHOD)
        self._endpoint = credentials.get("endpoint", DEFAULT_ENDPOINT).rstrip("/")
        self._token_url = credentials.get("token_url", self._endpoint + REFRESH_PATH)
        self._http = http
        # The app's QPS budget is shared by all its shops: one bucket per app.
        rate, burst = limiters.granted_rate(credentials, LIST_RATE, LIST_BURST)
        self._list_bucket = limiters.bucket(("kuaishou", LIST_METHOD, self._endpoint, self._app_key), rate, burst)
        self._refresh_bucket = limiters.bucket(("kuaishou", "refresh", self._token_url), REFRESH_RATE, REFRESH_BURST)
        self._session_key = (self._token_url, self._app_key, shop_id, credentials["refresh_token"])
        with _sessions_lock:
            _sessions.setdefault(
                self._session_key,
                _Session(credentials.get("access_token") or None, credentials["refresh_token"], None),
            )

    # Orders ------------------------------------------------------------------------------------

    def fetch_window(self, window: PollWindow, known: KnownVersions | None = None) -> Iterator[list[dict]]:
        """Pages of `data.orderList` records. One call carries whole orders, so `known` is unused."""
        for begin, end in window_slices(window.start, window.end):
            cursor = ""
            while True:
                data = self._list_page(epoch_millis(begin), epoch_millis(end), cursor)
                orders = data.get("orderList") or []
                if orders:
                    yield orders
                next_cursor = data.get("cursor")
                if not next_cursor or next_cursor == NO_MORE:
                    break
                if next_cursor == cursor:
                    raise TransientChannelError(f"Kuaishou returned the same cursor twice: {cursor!r}")
                cursor = next_cursor

    def _list_page(self, begin_ms: int, end_ms: int, cursor: str) -> dict:
        param = json.dumps(
            {
                "queryType": QUERY_BY_UPDATE_TIME,
                "beginTime": begin_ms,
                "endTime": end_ms,
                "orderViewStatus": ALL_ORDERS,
                "cpsType": ALL_CPS_TYPES,
                "sort": ASCENDING,
                "pageSize": PAGE_SIZE,
                "cursor": cursor,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )
        body = self._call(LIST_METHOD, param)
        data = body.get("data")
        if not isinstance(data, dict):
            raise TransientChannelError(f"Kuaishou success without data: {str(body)[:200]}")
        return data

    def _call(self, method: str, param: str) -> dict:
        """One signed API call; an expired or refused session is refreshed once and retried."""
        token = self._access_token(refused=None)
        try:
            return self._signed_post(method, param, token)
        except ChannelAuthError:
            return self._signed_post(method, param, self._access_token(refused=token))

    def _signed_post(self, method: str, param: str, access_token: str) -> dict:
        form = {
            "appkey": self._app_key,
            "method": method,
            "version": API_VERSION,
            "param": param,
            "access_token": access_token,
            "timestamp": str(int(time.time() * 1000)),
            "signMethod": self._sign_method,
        }
        form["sign"] = kuaishou_sign(form, self._sign_secret, self._sign_method)
        url = f"{self._endpoint}/{method.replace('.', '/')}"
        return self._http.call("POST", url, limiter=self._list_bucket, check_envelope=check_envelope, data=form).body

    # Tokens ------------------------------------------------------------------------------------

    def _access_token(self, *, refused: str | None) -> str:
        """The shop's live access token; `refused` is one the platform just turned down."""
        with _sessions_lock:
            session = _sessions[self._session_key]
        with session.lock:
            stale = (
                session.access_token is None
                or session.access_token == refused
                or (session.expires_at is not None and session.expires_at <= time.time())
            )
            if not stale:
                return session.access_token
            # One refresh per shop at a time: a second poller that was refused meanwhile finds the
            # new token here instead of rotating the refresh token again.
            return self._refresh(session)

    def _refresh(self, session: _Session) -> str:
        body = self._http.call(
            "POST",
            self._token_url,
            limiter=self._refresh_bucket,
            check_envelope=_check_refresh_envelope,
            data={
                "grant_type": "refresh_token",
                "refresh_token": session.refresh_token,
                "app_id": self._app_key,
                "app_secret": self._app_secret,
            },
        ).body
        session.access_token = body["access_token"]
        session.refresh_token = body.get("refresh_token") or session.refresh_token
        tokens_rotated("kuaishou", self._shop_id,
                       {"access_token": session.access_token, "refresh_token": session.refresh_token})
        expires_in = int(body.get("expires_in", 172800))
        session.expires_at = time.time() + max(expires_in - TOKEN_REFRESH_MARGIN_SECONDS, expires_in / 2)
        return session.access_token


def _check_refresh_envelope(body: object) -> None:
    """The OAuth refresh answers `result` 1, or an OAuth error (100200xxx) with `error`/`error_msg`."""
    if not isinstance(body, dict):
        raise ChannelRequestError(f"unexpected Kuaishou OAuth body: {str(body)[:200]}")
    code = _result_code(body)
    if code == 1 and body.get("access_token"):
        return
    reason = f"Kuaishou refresh_token result {body.get('result')!r}: {_message(body)}"
    if code in SERVER_RESULTS:
        raise TransientChannelError(reason)
    if code is not None and (code in THROTTLE_RESULTS):
        raise ChannelThrottledError(reason, THROTTLE_WAIT_SECONDS)
    # invalid or discarded refresh token, revoked grant, wrong app: only a new authorization helps
    raise ChannelAuthError(reason)
