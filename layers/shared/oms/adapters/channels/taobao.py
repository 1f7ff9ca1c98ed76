"""Taobao / Tmall (TOP) client: trades modified in a poll window, then each trade's full details.

Facts it relies on (source in brackets; CHANNELS.md section 1 holds the leads):
- Transport: every call is a POST form to `/router/rest` (https://eco.taobao.com/router/rest;
  gw.api.taobao.com in the official auto_sdk) with the system parameters `method`, `app_key`,
  `session` (the seller's access token), `timestamp` (`yyyy-MM-dd HH:mm:ss` GMT+8, accepted within
  10 minutes of TOP's clock), `format=json`, `v=2.0`, `sign_method` and `sign`
  [bububa/opentaobao core/client.go, model/request.go].
- Signature: all parameters but `sign`, keys sorted, concatenated key1value1...; md5 =
  MD5(secret + text + secret), hmac = HMAC-MD5 keyed by the secret, upper-case hex
  [open.taobao.com docId=101617, whose worked example signs to 66987CB115214E59E6EC978214934FB8:
  pinned in tests/unit/test_signing_taobao.py]. The credentials choose md5 or hmac.
- List: `taobao.trades.sold.increment.get` with `fields`, `start_modified`, `end_modified`
  (end - start <= 1 day; only the last 3 months), `type`, `page_no`, `page_size` (1..100; 40-50
  recommended for success rate), results sorted by `modified` descending; "must page backwards
  from the last page to avoid missing orders"; partial trades only [bububa/opentaobao
  model/tbtrade/TaobaoTradesSoldIncrementGetAPIRequest.go, doc text quoted there]. Without `type`
  only guarantee_trade, auto_delivery, ec, cod and step trades come back, so every documented type
  is passed [same file; type list of taobao.trades.sold.get in the SDKs].
  Paging here: page 1 with the full page size first; if `total_results` fits one page that page
  is the window, else pages last..1 are read (orders modified during the poll leave the window,
  which only moves later rows forward; reading backwards never skips one).
- Detail: `taobao.trade.fullinfo.get` (`tid`, `fields`) ->
  `trade_fullinfo_get_response.trade` [bububa/opentaobao api/tbtrade]; skipped for trades
  `known` at their `modified` (GMT+8 text converted to ISO 8601 UTC first): those are yielded as
  `KnownRecord(list trade)`. The details of one chunk are fetched side by side.
- Errors come with HTTP 200 as `{"error_response": {code, msg, sub_code, sub_msg, request_id}}`
  [model/response.go]. Codes [TOP error table, e.g. com.taobao.api ErrorCode enum]: 7 App Call
  Limited, 8 App Call Exceeds Limited Frequency (and 4/5/6 user/session/partner call limited),
  sub codes `accesscontrol.limited-by-*` with "This ban will last for N more seconds" -> throttled,
  retried after N s; 10 Service currently unavailable and `isp.*` sub codes -> transient;
  26 Missing session / 27 Invalid session (sub codes invalid-sessionkey, session-expired,
  session-not-exist) -> refresh the token once and retry; 25 Invalid signature and other codes ->
  request error.
- Token refresh: `taobao.top.auth.token.refresh` with `refresh_token` (no session needed) ->
  `top_auth_token_refresh_response.token_result`, a JSON *string* with access_token,
  refresh_token, expires_in, ... [bububa/opentaobao model/util/TaobaoTopAuthTokenRefreshResponse.go;
  token_result fields as in netnr/Netnr.Login TaoBao_AccessToken_ResultEntity]. Only apps sold on
  the service market can refresh; others get fixed-length sessions (same source).
- Rate: TOP per-app quotas are console settings, not published (CHANNELS.md marks it unsure). A
  conservative 10 calls/s per app unless the credentials give `calls_per_second` (and `burst`).
- Unsure in CHANNELS.md and what was confirmed: code 7 is App Call Limited and its sub codes are
  `accesscontrol.limited-by-api-access-count` / `-app-access-count` / `-app-api-access-count`
  (confirmed in several public SDK wrappers); code 27's sub codes invalid-sessionkey and
  session-expired (confirmed the same way). Not confirmed: the exact error returned for a window
  longer than a day (the simulator answers 41 Invalid arguments / isv.invalid-parameter), any
  documented lag behind now (none found: a minute of lag is a conservative choice, and each poll
  re-reads its overlap), the hmac-sha256 variant (top_sign supports it; not used by default).

Credentials secret (JSON): {"app_key", "app_secret", "session" (access token), "refresh_token",
"endpoint" (the /router/rest URL), "sign_method": "md5" | "hmac" (default md5),
"calls_per_second", "burst" (optional, the app's quota as the console shows it)}.
Refreshed tokens are cached per shop at module level (a warm container reuses them).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import requests

from oms.adapters.channels import limiters
from oms.adapters.channels.http import (
    ChannelHttp,
    ChannelRequestError,
    ChannelThrottledError,
    TransientChannelError,
)
from oms.adapters.channels.platform_time import china_text
from oms.adapters.channels.signing import top_sign
from oms.adapters.channels.tokens import tokens_rotated
from oms.domain.order import MalformedOrderError
from oms.domain.polling import ChannelWindowRules, PollWindow
from oms.normalizers.taobao import china_time, order_id_of
from oms.ports import ChannelAuthError, KnownRecord, KnownVersions

ROUTER_URL = "https://eco.taobao.com/router/rest"
LIST_METHOD = "taobao.trades.sold.increment.get"
DETAIL_METHOD = "taobao.trade.fullinfo.get"
REFRESH_METHOD = "taobao.top.auth.token.refresh"
MAX_SPAN = timedelta(days=1)
PAGE_SIZE = 50  # 1..100 allowed; the documentation recommends 40-50
DETAIL_CHUNK = 10  # trades per yielded page: stored before the next chunk's details are fetched
DETAIL_WORKERS = 8  # fullinfo calls in flight in this container: latency, not the quota, would bound a backlog
DEFAULT_CALLS_PER_SECOND = 10.0
SIGN_METHODS = ("md5", "hmac")
# Every trade type TOP documents for the `type` filter (guarantee_trade = fixed + auction).
TRADE_TYPES = (
    "fixed,auction,guarantee_trade,step,independent_simple_trade,independent_shop_trade,auto_delivery,ec,cod,"
    "game_equipment,shopex_trade,netcn_trade,external_trade,instant_trade,b2c_cod,hotel_trade,super_market_trade,"
    "super_market_cod_trade,taohua,waimai,o2o_offlinetrade,nopaid,eticket,tmall_i18n,insurance_plus,finance,"
    "pre_auth_type,lazada"
)
LIST_FIELDS = "tid,tid_str,status,type,modified"
DETAIL_FIELDS = (
    "tid,tid_str,status,type,created,pay_time,modified,consign_time,end_time,payment,total_fee,post_fee,"
    "discount_fee,adjust_fee,buyer_open_uid,buyer_nick,seller_nick,receiver_country,receiver_state,receiver_city,"
    "receiver_district,receiver_town,receiver_address,receiver_zip,receiver_name,receiver_mobile,receiver_phone,"
    "oaid,orders"
)

_THROTTLE_CODES = {"4", "5", "6", "7", "8"}
_SESSION_CODES = {"26", "27"}
_SESSION_SUB_CODES = {"invalid-sessionkey", "session-expired", "session-not-exist"}
_TRANSIENT_CODES = {"10"}
_BAN = re.compile(r"ban will last for (\d+) more seconds", re.IGNORECASE)


@dataclass
class _Tokens:
    session: str
    refresh_token: str
    secret_session: str  # the secret's session these tokens descend from


# (endpoint, app_key, shop) -> the tokens in use: a refreshed session outlives the invocation.
_tokens: dict[tuple[str, str, str], _Tokens] = {}
_tokens_lock = threading.Lock()
_refresh_lock = threading.Lock()  # one refresh at a time; the others then find the new session
# fullinfo calls of a chunk run side by side (under the app's bucket), each thread with its own
# requests.Session, as requests advises.
_detail_pool = ThreadPoolExecutor(max_workers=DETAIL_WORKERS, thread_name_prefix="taobao-detail")
_local = threading.local()


def _thread_session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def check_envelope(body: dict) -> None:
    """Raise for TOP's HTTP-200 error envelope; return for data."""
    error = body.get("error_response") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return
    code, sub_code = str(error.get("code", "")), str(error.get("sub_code") or "")
    sub_msg = str(error.get("sub_msg") or "")
    reason = f"TOP error {code} {error.get('msg', '')} {sub_code} {sub_msg}".strip()
    if code in _THROTTLE_CODES or sub_code.startswith("accesscontrol."):
        ban = _BAN.search(sub_msg) or _BAN.search(str(error.get("msg") or ""))
        raise ChannelThrottledError(reason, float(ban.group(1)) if ban else None)
    if code in _SESSION_CODES or sub_code in _SESSION_SUB_CODES:
        raise ChannelAuthError(reason)
    if code in _TRANSIENT_CODES or sub_code.startswith("isp."):
        raise TransientChannelError(reason)
    raise ChannelRequestError(reason)


def _whole_seconds_window(window: PollWindow) -> tuple[datetime, datetime]:
    """TOP times have whole seconds: start rounds down, end rounds up, so nothing falls between."""
    start = window.start.replace(microsecond=0)
    end = window.end if not window.end.microsecond else window.end.replace(microsecond=0) + timedelta(seconds=1)
    return start, end


def slices(window: PollWindow) -> list[tuple[datetime, datetime]]:
    """The window cut into pieces of at most one day (the platform's limit), in time order."""
    start, end = _whole_seconds_window(window)
    pieces = []
    while start < end:
        stop = min(start + MAX_SPAN, end)
        pieces.append((start, stop))
        start = stop
    return pieces


def _modified_utc(trade: dict) -> str | None:
    try:
        return china_time(trade.get("modified"), "modified")
    except MalformedOrderError:
        return None  # unreadable: fetched and left to the normalizer to quarantine


class TaobaoClient:
    channel = "taobao"
    # No lag rule is documented; one minute keeps windows off the live edge of the index.
    rules = ChannelWindowRules(lag=timedelta(minutes=1), max_span=MAX_SPAN)
    # Newest-first pages read last to first, each reversed: the oldest trades come first.
    pages_in_update_order = True

    def __init__(self, shop_id: str, credentials: dict, http: ChannelHttp):
        self._shop_id = shop_id
        self._app_key = credentials["app_key"]
        self._secret = credentials["app_secret"]
        self._endpoint = credentials.get("endpoint", ROUTER_URL)
        self._sign_method = credentials.get("sign_method", "md5")
        if self._sign_method not in SIGN_METHODS:
            raise ValueError(f"sign_method must be one of {SIGN_METHODS}, got {self._sign_method!r}")
        self._http = http
        self._token_key = (self._endpoint, self._app_key, shop_id)
        with _tokens_lock:
            cached = _tokens.get(self._token_key)
            if cached is None or cached.secret_session != credentials["session"]:  # new shop or rotated secret
                _tokens[self._token_key] = _Tokens(credentials["session"], credentials["refresh_token"], credentials["session"])
        rate, burst = limiters.granted_rate(credentials, DEFAULT_CALLS_PER_SECOND, DEFAULT_CALLS_PER_SECOND)
        # TOP's quotas are per app, so every shop of one app shares the bucket.
        self._bucket = limiters.bucket(("taobao", self._endpoint, self._app_key), rate, burst)

    # Listing ------------------------------------------------------------------------------------

    def fetch_window(self, window: PollWindow, known: KnownVersions | None = None) -> Iterator[list[dict]]:
        """Pages of full trades; those `known` at their `modified` come as list trades marked known."""
        for start, end in slices(window):
            yield from self._fetch_slice(start, end, known)

    def _fetch_slice(self, start: datetime, end: datetime, known: KnownVersions | None) -> Iterator[list[dict]]:
        query = {
            "fields": LIST_FIELDS,
            "start_modified": china_text(start),
            "end_modified": china_text(end),
            "type": TRADE_TYPES,
            "page_size": str(PAGE_SIZE),
        }
        first = self._list_page(query, 1)
        pages = math.ceil(int(first.get("total_results") or 0) / PAGE_SIZE)
        if pages <= 1:
            yield from self._with_details(self._oldest_first(first), known)
            return
        for page_no in range(pages, 0, -1):
            yield from self._with_details(self._oldest_first(self._list_page(query, page_no)), known)

    def _list_page(self, query: dict, page_no: int) -> dict:
        body = self._call(LIST_METHOD, {**query, "page_no": str(page_no)})
        response = body.get("trades_sold_increment_get_response")
        if not isinstance(response, dict):
            raise TransientChannelError(f"{LIST_METHOD}: unexpected body {str(body)[:200]}")
        return response

    @staticmethod
    def _oldest_first(response: dict) -> list[dict]:
        """A page's trades, reversed from TOP's newest-first: with the pages read last to first,
        every yielded chunk is then updated no earlier than the one before (`pages_in_update_order`)."""
        listing = response.get("trades") or {}
        trades = listing.get("trade", []) if isinstance(listing, dict) else listing
        return list(reversed(trades)) if isinstance(trades, list) else []

    def _with_details(self, trades: list[dict], known: KnownVersions | None) -> Iterator[list[dict]]:
        for first in range(0, len(trades), DETAIL_CHUNK):
            chunk = trades[first : first + DETAIL_CHUNK]
            stored = known([(order_id_of(t), _modified_utc(t)) for t in chunk]) if known else set()
            yield list(_detail_pool.map(partial(self._detail_or_known, stored=stored), chunk))

    def _detail_or_known(self, trade: dict, stored: set[str]) -> dict:
        tid = order_id_of(trade)
        if tid is None:
            return trade  # the normalizer quarantines it with its reason
        if tid in stored:
            return KnownRecord(trade)
        return self._full_trade(tid)

    def _full_trade(self, tid: str) -> dict:
        body = self._call(DETAIL_METHOD, {"tid": tid, "fields": DETAIL_FIELDS})
        trade = (body.get("trade_fullinfo_get_response") or {}).get("trade")
        if not isinstance(trade, dict):
            raise TransientChannelError(f"{DETAIL_METHOD} {tid}: no trade in {str(body)[:200]}")
        return trade

    # Calls, signing and the session ------------------------------------------------------------

    def _call(self, method: str, business: dict) -> dict:
        """A session call; an invalid or expired session is refreshed once and the call retried."""
        for attempt in range(2):
            session = self._current_tokens().session
            try:
                return self._post(method, business, session=session)
            except ChannelAuthError:
                if attempt:
                    raise
                self._refresh(stale_session=session)
        raise AssertionError("unreachable")

    def _post(self, method: str, business: dict, *, session: str | None) -> dict:
        params = {
            "method": method,
            "app_key": self._app_key,
            "timestamp": china_text(datetime.now(UTC)),
            "format": "json",
            "v": "2.0",
            "sign_method": self._sign_method,
            **business,
        }
        if session is not None:
            params["session"] = session
        params["sign"] = top_sign(params, self._secret, self._sign_method)
        return self._thread_http().call(
            "POST", self._endpoint, limiter=self._bucket, check_envelope=check_envelope, data=params
        ).body

    def _thread_http(self) -> ChannelHttp:
        """The client's ChannelHttp, with this thread's own session off the caller's thread."""
        if threading.current_thread().name.startswith("taobao-detail"):
            return ChannelHttp(_thread_session(), self._http.timeout_seconds, self._http.deadline)
        return self._http

    def _current_tokens(self) -> _Tokens:
        with _tokens_lock:
            return _tokens[self._token_key]

    def _refresh(self, *, stale_session: str) -> None:
        with _refresh_lock:
            self._refresh_unless_done(stale_session)

    def _refresh_unless_done(self, stale_session: str) -> None:
        with _tokens_lock:
            current = _tokens[self._token_key]
            if current.session != stale_session:
                return  # another thread refreshed it already
            refresh_token = current.refresh_token
        body = self._post(REFRESH_METHOD, {"refresh_token": refresh_token}, session=None)
        try:
            result = json.loads(body["top_auth_token_refresh_response"]["token_result"])
            tokens = _Tokens(result["access_token"], result.get("refresh_token") or refresh_token, current.secret_session)
        except (KeyError, TypeError, ValueError) as error:
            raise ChannelAuthError(f"{REFRESH_METHOD}: unreadable answer {str(body)[:200]}") from error
        with _tokens_lock:
            _tokens[self._token_key] = tokens
        tokens_rotated("taobao", self._shop_id, {"session": tokens.session, "refresh_token": tokens.refresh_token})


def forget_tokens() -> None:
    """Start from the secret's tokens again (tooling between independent runs)."""
    with _tokens_lock:
        _tokens.clear()
