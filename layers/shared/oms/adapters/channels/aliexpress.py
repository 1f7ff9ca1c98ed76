"""AliExpress seller client (AliExpress Open Platform, IOP): the order list of one poll window, then
the order detail (address, buyer) of each order not already stored at that version.

Facts it relies on (source in brackets; CHANNELS.md section 7):
- `aliexpress.solution.order.get` with business parameter `param0` = OrderQuery JSON
  {modified_date_start, modified_date_end, order_status_list, page_size, current_page}; the
  modified dates are `yyyy-MM-dd HH:mm:ss` in US Pacific time; FINISH orders are only returned when
  asked for explicitly, so every status is listed [bububa/opentaobao model/aesolution/OrderQuery.go,
  AliexpressSolutionOrderGetAPIRequest.go `param0`]. The response is
  {"aliexpress_solution_order_get_response": {"result": {success, error_code, error_message,
  total_count, total_page, current_page, page_size, target_list: {order_dto: [...]}}}}; `success`
  decides, not error_code (the published sample carries error_code "1" with success true)
  [published sample quoted in Alekseyya/YapartMarket TestDeserializeToDTO and Ticaje AeSdk tests].
- `aliexpress.solution.order.info.get` with `param1` = {order_id, ext_info_bit_flag} returns
  `result.data` with receipt_address and buyer_info [api.alidayu.com apiId=42707 via CHANNELS.md].
- Gateway: POST https://api-sg.aliexpress.com/sync, form-encoded system parameters app_key,
  method, sign_method=sha256, timestamp (epoch ms), session (the seller's access token),
  partner_id, simplify, format=json, plus the business parameters and `sign` = HMAC-SHA256 (app
  secret) over the sorted key+value concatenation, upper-case hex [iop-sdk-python-20220609 base.py].
- Token refresh: POST https://api-sg.aliexpress.com/rest/auth/token/refresh with app_key,
  refresh_token, sign_method, timestamp, signed with the API path "/auth/token/refresh" in front;
  answers flat JSON {access_token, refresh_token, expires_in (s, 2592000 seen), refresh_expires_in,
  code "0", request_id} [AliExpress doc "Refresh token /auth/token/refresh" (Java/PHP demos);
  response captured in a NopCommerce AliExpress plugin's TokenResponse].
- Errors arrive with HTTP 200: {"error_response": {type ISV|ISP|SYSTEM, code, msg, request_id,
  _trace_id_}} [raw /sync answers quoted in public logs: IncompleteSignature, MissingParameter];
  the /rest token call answers flat {type, code, message, request_id} [IOP SDK IopResponse].
  IllegalAccessToken = invalid or expired session (refresh once, then retry); IllegalRefreshToken =
  the refresh token is dead [Lazada IOP docs, same gateway]; ApiCallLimit (seen on AliExpress in a
  seller ERP's retry list) / AppCallLimit = throttled, retried with backoff, never data; type ISP or
  SYSTEM (and TOP's code 15, UnknownRuntimeException) = server side, retried.
Unsure in CHANNELS.md and what we chose:
- window maximum: not documented. We cut windows at MAX_SPAN = 1 day, the limit of the TOP-family
  increment list (taobao.trades.sold.increment.get) that these solution APIs descend from, which
  also bounds a window's page count for one invocation.
- page size: not documented for this API; the older list API allows 50, so PAGE_SIZE = 50.
- sort order: not documented. Pages are read from the last to the first (the first page is read
  once for total_page, then again last): an order updated during the poll leaves the window (its
  new gmt_update is after the window end), which shifts later positions towards page 1, never into
  an already read page; forward paging would skip an order each time that happens.
- rate limit: per-app flow control set in the console, not published. Default 5 calls/s, burst 10,
  per shop (`calls_per_second` and `burst` in the secret override it with the granted quota).
- lag: not documented; windows end 2 minutes before now (search index delay of the TOP family).
- Daylight saving: in the repeated autumn hour a Pacific wall time is ambiguous; a window start that
  falls in it is sent one hour earlier, so either reading covers the window.

Credentials secret (JSON): {"app_key", "app_secret", "access_token", "refresh_token",
"endpoint" (default https://api-sg.aliexpress.com/sync), "auth_endpoint" (default
https://api-sg.aliexpress.com/rest), optional "calls_per_second" and "burst"}.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from oms.adapters.channels import limiters
from oms.adapters.channels.http import (
    ChannelHttp,
    ChannelRequestError,
    ChannelThrottledError,
    TransientChannelError,
)
from oms.adapters.channels.platform_time import epoch_millis, pacific_text
from oms.adapters.channels.signing import compact_json, iop_sign
from oms.adapters.channels.tokens import tokens_rotated
from oms.domain.order import MalformedOrderError
from oms.domain.polling import ChannelWindowRules, PollWindow
from oms.normalizers._fields import US_PACIFIC, local_time
from oms.normalizers.aliexpress import DETAIL_ROOT, LIST_ROOT, list_orders
from oms.ports import ChannelAuthError, KnownRecord, KnownVersions

SYNC_URL = "https://api-sg.aliexpress.com/sync"
REST_URL = "https://api-sg.aliexpress.com/rest"
REFRESH_PATH = "/auth/token/refresh"
LIST_METHOD = "aliexpress.solution.order.get"
DETAIL_METHOD = "aliexpress.solution.order.info.get"
PARTNER_ID = "oms-aliexpress"
PAGE_SIZE = 50
MAX_SPAN = timedelta(days=1)
LAG = timedelta(minutes=2)
CALLS_PER_SECOND, BURST = 5.0, 10
TOKEN_REFRESH_MARGIN_SECONDS = 300
EXT_INFO_BIT_FLAG = 11111  # ask the detail call for every optional block (address, buyer info, ...)
# Every status explicitly: the default query leaves FINISH (closed) orders out.
ORDER_STATUSES = (
    "PLACE_ORDER_SUCCESS", "IN_CANCEL", "WAIT_SELLER_SEND_GOODS", "SELLER_PART_SEND_GOODS",
    "WAIT_BUYER_ACCEPT_GOODS", "FUND_PROCESSING", "IN_ISSUE", "IN_FROZEN", "WAIT_SELLER_EXAMINE_MONEY",
    "RISK_CONTROL", "FINISH",
)
THROTTLE_CODES = frozenset({"ApiCallLimit", "AppCallLimit", "7"})
AUTH_CODES = frozenset({"IllegalAccessToken", "IllegalRefreshToken", "InvalidSession", "27"})
SERVER_CODES = frozenset({"15", "UnknownRuntimeException", "ServiceTimeout", "ServiceUnavailable", "InternalError"})
_BAN_SECONDS = re.compile(r"(\d+)\s*(?:more\s+)?second", re.IGNORECASE)

# (app key, shop) -> (access token, expiry epoch seconds or None, refresh token): a warm container
# reuses the token it refreshed instead of the one in the secret.
_tokens: dict[tuple[str, str], tuple[str, float | None, str]] = {}
_tokens_lock = threading.Lock()


def raise_for_error(code: object, kind: object, message: object) -> None:
    """Turn one IOP error (code, type, message) into the exception the poller retries or reports."""
    code, kind, message = str(code or ""), str(kind or ""), str(message or "")
    reason = f"AliExpress {kind or 'error'} {code}: {message}"[:500]
    if code in THROTTLE_CODES:
        ban = _BAN_SECONDS.search(message)
        raise ChannelThrottledError(reason, float(ban.group(1)) if ban else None)
    if code in AUTH_CODES:
        raise ChannelAuthError(reason)
    if kind.upper() in ("ISP", "SYSTEM") or code in SERVER_CODES or code.lower().startswith("isp."):
        raise TransientChannelError(reason)
    raise ChannelRequestError(reason)


def _check_gateway(body: dict) -> None:
    error = body.get("error_response")
    if isinstance(error, dict):
        raise_for_error(error.get("code"), error.get("type"), error.get("msg") or error.get("message"))
    if "type" in body and str(body.get("code", "0")) != "0":  # flat GOP answer (the /rest token call)
        raise_for_error(body.get("code"), body.get("type"), body.get("message") or body.get("msg"))


def _check_result(root: str):
    def check(body: dict) -> None:
        _check_gateway(body)
        result = body.get(root, {}).get("result") if isinstance(body.get(root), dict) else None
        if not isinstance(result, dict):
            raise TransientChannelError(f"AliExpress answer without {root}.result: {str(body)[:200]}")
        if result.get("success") is False or (root == DETAIL_ROOT and "data" not in result and result.get("error_code")):
            raise_for_error(result.get("error_code"), "ISV", result.get("error_message"))

    return check


def _slices(window: PollWindow, span: timedelta) -> Iterator[PollWindow]:
    start = window.start
    while start < window.end:
        end = min(start + span, window.end)
        yield PollWindow(start=start, end=end)
        start = end


def _start_text(moment: datetime) -> str:
    """Pacific wall time of a window start; in the repeated autumn hour, one hour earlier (see docstring)."""
    local = moment.astimezone(US_PACIFIC)
    other = local.replace(fold=1 - local.fold)
    ambiguous = other.utcoffset() != local.utcoffset()
    return pacific_text(moment - timedelta(hours=1) if ambiguous else moment)


def _updated_iso(order: dict) -> str | None:
    try:
        return local_time(order.get("gmt_update"), "gmt_update", US_PACIFIC)
    except MalformedOrderError:
        return None  # the normalizer quarantines it with the reason


def _order_id(order: dict) -> str | None:
    value = order.get("order_id") if isinstance(order, dict) else None
    return str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).isdigit() else None


class AliexpressClient:
    channel = "aliexpress"
    rules = ChannelWindowRules(lag=LAG, max_span=MAX_SPAN)
    pages_in_update_order = False  # the sort order is not documented, and pages are read backwards

    def __init__(self, shop_id: str, credentials: dict, http: ChannelHttp):
        self._shop_id = shop_id
        self._app_key = str(credentials["app_key"])
        self._app_secret = credentials["app_secret"]
        self._initial = (credentials["access_token"], None, credentials["refresh_token"])
        self._endpoint = credentials.get("endpoint", SYNC_URL)
        self._auth_endpoint = credentials.get("auth_endpoint", REST_URL).rstrip("/")
        self._http = http
        # The granted rate in full; a little of the burst is left for network jitter (limiters).
        rate, burst = limiters.granted_rate(credentials, CALLS_PER_SECOND, BURST)
        self._bucket = limiters.bucket(("aliexpress", self._endpoint, self._app_key, shop_id), rate, burst)
        self._auth_bucket = limiters.bucket(("aliexpress", "auth", self._auth_endpoint, self._app_key), 1.0, 5)

    # Orders ------------------------------------------------------------------------------------

    def fetch_window(self, window: PollWindow, known: KnownVersions | None = None) -> Iterator[list[dict]]:
        """Pages of `{"order", "detail"}`; orders `known` at their gmt_update come as `KnownRecord({"order"})`."""
        for piece in _slices(window, MAX_SPAN):
            yield from self._fetch_slice(piece, known)

    def _fetch_slice(self, window: PollWindow, known: KnownVersions | None) -> Iterator[list[dict]]:
        first = self._list_page(window, 1)
        total_pages = int(first.get("total_page") or 0)
        if total_pages <= 1:
            orders = list_orders({LIST_ROOT: {"result": first}})
            if orders:
                yield self._records(orders, known)
            return
        # Backwards, page 1 again last: see the module docstring on orders leaving the window.
        for page in range(total_pages, 0, -1):
            orders = list_orders({LIST_ROOT: {"result": self._list_page(window, page)}})
            if orders:
                yield self._records(orders, known)

    def _list_page(self, window: PollWindow, page: int) -> dict:
        query = {
            "modified_date_start": _start_text(window.start),
            "modified_date_end": pacific_text(window.end),
            "order_status_list": list(ORDER_STATUSES),
            "page_size": PAGE_SIZE,
            "current_page": page,
        }
        body = self._call(LIST_METHOD, {"param0": compact_json(query)}, _check_result(LIST_ROOT))
        return body[LIST_ROOT]["result"]

    def _records(self, orders: list, known: KnownVersions | None) -> list[dict]:
        pairs = [(_order_id(o), _updated_iso(o) if isinstance(o, dict) else None) for o in orders]
        stored = known(pairs) if known else set()
        records = []
        for order, (order_id, _updated) in zip(orders, pairs):
            if order_id is not None and order_id in stored:
                records.append(KnownRecord(order=order))
            else:
                records.append({"order": order, "detail": self._detail(order_id)})
        return records

    def _detail(self, order_id: str | None) -> dict | None:
        if order_id is None:
            return None  # the normalizer quarantines an order without an exact id
        param1 = compact_json({"order_id": int(order_id), "ext_info_bit_flag": EXT_INFO_BIT_FLAG})
        body = self._call(DETAIL_METHOD, {"param1": param1}, _check_result(DETAIL_ROOT))
        data = body[DETAIL_ROOT]["result"].get("data")
        return data if isinstance(data, dict) else None

    # Gateway -----------------------------------------------------------------------------------

    def _call(self, method: str, business: dict, check) -> dict:
        for attempt in range(2):
            params = {
                "app_key": self._app_key,
                "method": method,
                "sign_method": "sha256",
                "timestamp": str(epoch_millis(datetime.now().astimezone())),
                "session": self._access_token(force=attempt > 0),
                "partner_id": PARTNER_ID,
                "simplify": "false",
                "format": "json",
                **business,
            }
            params["sign"] = iop_sign(method, params, self._app_secret)
            try:
                return self._http.call("POST", self._endpoint, limiter=self._bucket, check_envelope=check, data=params).body
            except ChannelAuthError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _access_token(self, *, force: bool) -> str:
        key = (self._app_key, self._shop_id)
        with _tokens_lock:
            token, expires_at, refresh_token = _tokens.get(key, self._initial)
        if not force and (expires_at is None or expires_at > time.time()):
            return token
        return self._refresh(refresh_token)

    def _refresh(self, refresh_token: str) -> str:
        params = {
            "app_key": self._app_key,
            "refresh_token": refresh_token,
            "sign_method": "sha256",
            "timestamp": str(epoch_millis(datetime.now().astimezone())),
        }
        params["sign"] = iop_sign(REFRESH_PATH, params, self._app_secret)
        body = self._http.call(
            "POST", self._auth_endpoint + REFRESH_PATH, limiter=self._auth_bucket, check_envelope=_check_gateway,
            data=params,
        ).body
        token = body.get("access_token")
        if not token:
            raise ChannelAuthError(f"AliExpress token refresh answered without an access_token: {str(body)[:200]}")
        expires_in = float(body.get("expires_in") or 0)
        # Refresh a little early; a short-lived token keeps most of its life.
        margin = min(TOKEN_REFRESH_MARGIN_SECONDS, expires_in / 10)
        expires_at = time.time() + expires_in - margin if expires_in else None
        rotated = body.get("refresh_token") or refresh_token
        with _tokens_lock:
            _tokens[(self._app_key, self._shop_id)] = (token, expires_at, rotated)
        tokens_rotated("aliexpress", self._shop_id, {"access_token": token, "refresh_token": rotated})
        return token
