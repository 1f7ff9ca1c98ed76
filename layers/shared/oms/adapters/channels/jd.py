"""JD POP (JOS) client: jingdong.pop.order.search by modified time, last page first.

Facts it relies on (CHANNELS.md section 2 unless said otherwise):
- `POST https://api.jd.com/routerjson`, system parameters `method`, `app_key`, `access_token`,
  `timestamp` (`yyyy-MM-dd HH:mm:ss`, GMT+8; the gateway allows 6 minutes of clock error: JD
  gateway error table, blog.csdn.net/DianSan_ERP/article/details/142364242), `v=2.0`,
  `format=json`; the business parameters as one JSON text in `360buy_param_json`.
- Sign = MD5(secret + sorted key+value of every parameter incl. 360buy_param_json + secret), upper
  hex (`signing.top_sign` md5). Confirmed against JD's published worked example, which signs to
  D70825340F4084360B9362B60DFD7930 (open.jd.com dev-guide listId=2643, quoted in public code;
  pinned in tests/unit/test_signing_jd.py).
- Business parameters: `start_date` / `end_date` (`yyyy-MM-dd HH:mm:ss` GMT+8), `dateType` 0 =
  modified time, `order_state` (comma list: we ask for every state so cancellations arrive too),
  `optional_fields` (required: JD answers only the fields named), `page` from 1, `page_size`,
  `sortType` (1 descending, otherwise ascending). Window <= 1 month: a longer window is cut into
  slices of MAX_SPAN = 28 days, which fits every calendar month. page_size: ISV docs say <= 50,
  the JOS schema summary 100 (unsure): we use 50.
- Answer `{"jingdong_pop_order_search_responce": {"code": "0", "searchorderinfo_result":
  {"apiResult": {"success", "numberCode", "chineseErrCode", "englishErrCode"}, "orderTotal",
  "orderInfoList": [...]}}}` (JD's spelling), or `{"error_response": {"code", "zh_desc",
  "en_desc"}}`, both with HTTP 200. Gateway codes (confirmed in the error table above): 2 App Call
  Limited (throttling: retried with backoff), 4/5 version, 7/8 timestamp, 11/12 signature, 14/15
  method (request errors). Unsure, not found in public material: 19 = invalid or expired
  access_token (widely reported; we refresh once and retry), 66/67 = backend service unavailable /
  timed out (isp-style: transient). A business failure (`apiResult.success` false) is a request error.
- Paging: JD pages by offset. An order updated during the poll leaves the window (its new
  modified time is after the window's end), shifting every later row one place down, so reading
  forward would skip a row. We read page 1 only to learn `orderTotal`; when there is more than one
  page we read from the last page back to the first, so a shift only moves an already-read row into
  a page still to come (read twice, deduplicated), never a row past us. Sorted newest first
  (`sortType` 1), the last page holds the oldest orders: pages (each reversed) come oldest
  first, so a poll cut
  short by its deadline has stored a prefix of the window and the cursor can keep it
  (`pages_in_update_order`; ascending, the same backwards reading would store the newest part).
- Tokens: the seller's authorization gives an access token and a refresh token; when JD says the
  token is invalid we call `https://open-oauth.jd.com/oauth2/refresh_token` (app_key, app_secret,
  grant_type=refresh_token, refresh_token) and retry the call once. The answer carries
  `access_token`, `expires_in` (seconds) and `refresh_token`; tokens are cached per shop at module
  level so a warm container keeps them (the secret itself is not rewritten).
- Rate: JD documents no per-second rate (test apps 500 calls a day); ISV wrappers advertise 10/s.
  We run at a conservative 5/s, burst 5, per app and shop, unless the secret gives the app's
  granted `calls_per_second` (and `burst`).

Credentials secret: {"endpoint": "https://api.jd.com/routerjson", "token_url":
"https://open-oauth.jd.com/oauth2/refresh_token", "app_key", "app_secret", "access_token",
"refresh_token", optional "calls_per_second" and "burst"}; endpoint and token_url may be left out
for JD's own hosts.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from oms.adapters.channels import limiters
from oms.adapters.channels.http import (
    ChannelHttp,
    ChannelRequestError,
    ChannelThrottledError,
    TransientChannelError,
)
from oms.adapters.channels.platform_time import china_text
from oms.adapters.channels.signing import compact_json, top_sign
from oms.adapters.channels.tokens import tokens_rotated
from oms.domain.polling import ChannelWindowRules, PollWindow
from oms.normalizers.jd import ORDER_STATES, RESPONSE_ROOT
from oms.ports import ChannelAuthError, KnownVersions

ROUTER_URL = "https://api.jd.com/routerjson"
TOKEN_URL = "https://open-oauth.jd.com/oauth2/refresh_token"
SEARCH_METHOD = "jingdong.pop.order.search"
API_VERSION = "2.0"
PAGE_SIZE = 50
MAX_SPAN = timedelta(days=28)  # "1 month" for every month, February included
RATE_PER_SECOND, BURST = 5.0, 5
BY_MODIFIED_TIME, NEWEST_FIRST = "0", "1"
THROTTLE_CODES = {"2"}
AUTH_CODES = {"19"}
TRANSIENT_CODES = {"66", "67"}
TOKEN_REFRESH_MARGIN_SECONDS = 60
OPTIONAL_FIELDS = ",".join((
    "orderId", "venderId", "orderType", "payType", "orderState", "orderStateRemark", "orderStartTime",
    "paymentConfirmTime", "modified", "orderEndTime", "orderTotalPrice", "orderSellerPrice", "orderPayment",
    "freightPrice", "sellerDiscount", "balanceUsed", "pin", "open_id_buyer", "xid_buyer", "consigneeInfo",
    "itemInfoList", "orderRemark", "venderRemark", "returnOrder", "parentOrderId",
))


@dataclass
class _Token:
    access_token: str
    refresh_token: str
    expires_at: float | None  # time.time(); None until JD tells us (the secret's token)


# Per (token endpoint, app key, shop): a warm container keeps what the last refresh gave it.
_tokens: dict[tuple[str, str, str], _Token] = {}
_tokens_lock = threading.Lock()


def check_gateway_error(body: dict) -> None:
    """Raise the error class an `error_response` envelope calls for."""
    error = body.get("error_response")
    if error is None:
        return
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code", ""))
    reason = f"JD error {code}: {error.get('en_desc') or ''} {error.get('zh_desc') or ''}".strip()
    if code in THROTTLE_CODES:
        raise ChannelThrottledError(reason)
    if code in AUTH_CODES:
        raise ChannelAuthError(reason)
    if code in TRANSIENT_CODES:
        raise TransientChannelError(reason)
    raise ChannelRequestError(reason)


def check_search_envelope(body: dict) -> None:
    """HTTP 200 is not success: read the gateway error, then the business result."""
    check_gateway_error(body)
    root = body.get(RESPONSE_ROOT)
    if not isinstance(root, dict):
        raise TransientChannelError(f"no {RESPONSE_ROOT} in the answer: {json.dumps(body)[:200]}")
    if str(root.get("code", "0")) != "0":
        raise ChannelRequestError(f"JD answer code {root.get('code')!r}")
    result = root.get("searchorderinfo_result")
    api_result = result.get("apiResult") if isinstance(result, dict) else None
    if not isinstance(api_result, dict) or api_result.get("success") is not True:
        api_result = api_result if isinstance(api_result, dict) else {}
        raise ChannelRequestError(
            f"JD business error {api_result.get('numberCode')!r}: "
            f"{api_result.get('englishErrCode') or ''} {api_result.get('chineseErrCode') or ''}".strip()
        )


def _check_token_answer(body: dict) -> None:
    if not body.get("access_token"):
        raise ChannelAuthError(f"JD refused to refresh the access token: {json.dumps(body, ensure_ascii=False)[:200]}")


def slices(window: PollWindow, span: timedelta = MAX_SPAN) -> Iterator[PollWindow]:
    """The window cut into consecutive pieces no longer than `span`."""
    start = window.start
    while start < window.end:
        end = min(start + span, window.end)
        yield PollWindow(start=start, end=end)
        start = end


class JdClient:
    channel = "jd"
    # JD states no indexing lag; a minute keeps a window's end behind orders still being written.
    rules = ChannelWindowRules(lag=timedelta(minutes=1), max_span=MAX_SPAN)
    pages_in_update_order = True  # newest first, read last page to first: oldest first

    def __init__(self, shop_id: str, credentials: dict, http: ChannelHttp):
        self._shop_id = shop_id
        self._credentials = credentials
        self._endpoint = credentials.get("endpoint") or ROUTER_URL
        self._token_url = credentials.get("token_url") or TOKEN_URL
        self._app_key, self._app_secret = credentials["app_key"], credentials["app_secret"]
        self._http = http
        rate, burst = limiters.granted_rate(credentials, RATE_PER_SECOND, BURST)
        self._bucket = limiters.bucket(("jd", self._endpoint, self._app_key, shop_id), rate, burst)
        self._token_bucket = limiters.bucket(("jd", "oauth", self._token_url), 1.0, 5)
        self._token_key = (self._token_url, self._app_key, shop_id)

    def fetch_window(self, window: PollWindow, known: KnownVersions | None = None) -> Iterator[list[dict]]:
        """Pages of orderInfo records. The search answer is the whole order, so `known` saves no call."""
        for piece in slices(window):
            yield from self._pages(piece)

    def _pages(self, piece: PollWindow) -> Iterator[list[dict]]:
        first = self._search(piece, page=1)
        total = int(first.get("orderTotal") or 0)
        if total <= PAGE_SIZE:
            orders = first.get("orderInfoList") or []
            if orders:
                yield orders[::-1]
            return
        # Last page first, each page reversed: see the module docstring.
        for page in range(math.ceil(total / PAGE_SIZE), 0, -1):
            orders = self._search(piece, page=page).get("orderInfoList") or []
            if orders:
                yield orders[::-1]

    def _search(self, piece: PollWindow, *, page: int) -> dict:
        business = {
            "start_date": china_text(piece.start),
            "end_date": china_text(piece.end),
            "dateType": BY_MODIFIED_TIME,
            "sortType": NEWEST_FIRST,
            "order_state": ",".join(ORDER_STATES),
            "optional_fields": OPTIONAL_FIELDS,
            "page": str(page),
            "page_size": str(PAGE_SIZE),
        }
        body = self._call(SEARCH_METHOD, business)
        return body[RESPONSE_ROOT]["searchorderinfo_result"]

    def _call(self, method: str, business: dict) -> dict:
        failed_token = None
        for attempt in range(2):
            token = self._access_token(failed=failed_token)
            params = {
                "method": method,
                "app_key": self._app_key,
                "access_token": token,
                "timestamp": china_text(datetime.now(UTC)),
                "v": API_VERSION,
                "format": "json",
                "360buy_param_json": compact_json(business),
            }
            params["sign"] = top_sign(params, self._app_secret, "md5")
            try:
                return self._http.call(
                    "POST", self._endpoint, limiter=self._bucket, check_envelope=check_search_envelope, data=params
                ).body
            except ChannelAuthError:
                if attempt:
                    raise
                failed_token = token
        raise AssertionError("unreachable")

    def _access_token(self, *, failed: str | None) -> str:
        """The shop's live token; a refresh when `failed` is the cached one or it is about to expire."""
        with _tokens_lock:
            cached = _tokens.get(self._token_key)
            if cached is None:
                cached = _Token(self._credentials["access_token"], self._credentials["refresh_token"], None)
                _tokens[self._token_key] = cached
            expiring = cached.expires_at is not None and cached.expires_at <= time.time()
            if not expiring and (failed is None or failed != cached.access_token):
                return cached.access_token  # live, or another thread already refreshed it
            refresh_token = cached.refresh_token
        return self._refresh(refresh_token)

    def _refresh(self, refresh_token: str) -> str:
        body = self._http.call(
            "POST",
            self._token_url,
            limiter=self._token_bucket,
            check_envelope=_check_token_answer,
            data={
                "app_key": self._app_key,
                "app_secret": self._app_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        ).body
        expires_in = body.get("expires_in")
        expires_at = None
        if expires_in is not None:
            margin = min(TOKEN_REFRESH_MARGIN_SECONDS, int(expires_in) / 10)  # short-lived tokens keep most of their life
            expires_at = time.time() + int(expires_in) - margin
        token = _Token(body["access_token"], body.get("refresh_token") or refresh_token, expires_at)
        with _tokens_lock:
            _tokens[self._token_key] = token
        tokens_rotated("jd", self._shop_id, {"access_token": token.access_token, "refresh_token": token.refresh_token})
        return token.access_token
