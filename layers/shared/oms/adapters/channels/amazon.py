"""Amazon SP-API Orders v0 client: getOrders for one poll window, then getOrderItems per order.

Facts it relies on (amzn/selling-partner-api-models ordersV0.json; CHANNELS.md section 6):
- `GET /orders/v0/orders` with `MarketplaceIds`, `LastUpdatedAfter`, `LastUpdatedBefore` (which must
  be at least 2 minutes before now), `MaxResultsPerPage` <= 100, then `NextToken` pages.
- `GET /orders/v0/orders/{id}/orderItems` (also `NextToken`-paged); ItemPrice covers the whole quantity.
- Auth: a Login-with-Amazon access token (refresh_token grant, valid 1 h) in `x-amz-access-token`;
  no SigV4 since 2023. 403 means a bad or expired token: refresh once and retry.
- Rate limits per operation (token bucket): getOrders 0.0167/s burst 20, getOrderItems 0.5/s
  burst 30; `x-amzn-RateLimit-Limit` reports the rate actually granted; over it, HTTP 429
  `QuotaExceeded` (no Retry-After: wait one token).

Credentials secret: {"endpoint", "lwa_token_url", "client_id", "client_secret", "refresh_token",
"marketplace_ids": [...]}.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import requests

from oms.adapters.channels import limiters
from oms.adapters.channels.http import ChannelHttp
from oms.domain.order import format_utc
from oms.domain.polling import ChannelWindowRules, PollWindow
from oms.ports import ChannelAuthError, KnownRecord, KnownVersions, ResumablePage

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
GET_ORDERS_RATE, GET_ORDERS_BURST = 0.0167, 20
GET_ORDER_ITEMS_RATE, GET_ORDER_ITEMS_BURST = 0.5, 30
PAGE_SIZE = 100
ITEMS_CHUNK = 10
TOKEN_REFRESH_MARGIN_SECONDS = 60

# Access tokens live an hour; a warm container reuses them across invocations.
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def _follow_rate(bucket):
    """Run at the rate Amazon reports granting; the buckets keep a little of the burst unused
    instead, for requests that reach Amazon closer together than they were sent (limiters)."""

    def sync(response: requests.Response) -> None:
        try:
            bucket.set_rate(float(response.headers["x-amzn-RateLimit-Limit"]))
        except (KeyError, ValueError):
            pass

    return sync


class AmazonClient:
    channel = "amazon"
    # LastUpdatedBefore must be >= 2 min before now; 15 s more absorbs clock skew. No maximum
    # span: a window a deadline cuts goes on from its page token (`ResumablePage`).
    rules = ChannelWindowRules(lag=timedelta(minutes=2, seconds=15), max_span=None)
    pages_in_update_order = False  # getOrders documents no sort order

    def __init__(self, shop_id: str, credentials: dict, http: ChannelHttp):
        self._shop_id = shop_id
        self._credentials = credentials
        self._endpoint = credentials["endpoint"].rstrip("/")
        self._token_url = credentials.get("lwa_token_url", LWA_TOKEN_URL)
        self._marketplaces = ",".join(credentials["marketplace_ids"])
        self._http = http
        seller = (self._endpoint, credentials["client_id"], shop_id)
        jitter = limiters.JITTER_TOKENS
        self._orders_bucket = limiters.bucket(("amazon", "getOrders", *seller), GET_ORDERS_RATE, GET_ORDERS_BURST - jitter)
        self._items_bucket = limiters.bucket(
            ("amazon", "getOrderItems", *seller), GET_ORDER_ITEMS_RATE, GET_ORDER_ITEMS_BURST - jitter
        )
        self._token_bucket = limiters.bucket(("amazon", "lwa", self._token_url), 1.0, 10)

    def fetch_window(self, window: PollWindow, known: KnownVersions | None = None, *,
                     start_token: str | None = None) -> Iterator[list[dict]]:
        """Pages of `{"order", "items"}`; orders `known` at their LastUpdateDate come without items.

        getOrderItems is the scarce call (0.5/s): an overlap re-read must not spend it on orders
        already stored at this version. Those come as `KnownRecord({"order"})`, without items. Each page
        is a `ResumablePage` naming the NextToken that lists its getOrders page again, so a poll
        its deadline cuts goes on from there (`start_token`) rather than listing the window again.
        """
        token = start_token
        while True:
            if token is None:
                params: dict = {
                    "MarketplaceIds": self._marketplaces,
                    "LastUpdatedAfter": format_utc(window.start),
                    "LastUpdatedBefore": format_utc(window.end),
                    "MaxResultsPerPage": PAGE_SIZE,
                }
            else:
                params = {"MarketplaceIds": self._marketplaces, "NextToken": token}
            body = self._get("/orders/v0/orders", params, self._orders_bucket)
            payload = body.get("payload", {})
            orders = payload.get("Orders", [])
            # One lookup for the page; then small chunks: each is stored before the next one's items
            # are fetched, so an invocation that reaches its deadline keeps what it paid quota for.
            stored = known([(o.get("AmazonOrderId"), o.get("LastUpdateDate")) for o in orders]) if known and orders else set()
            for start in range(0, len(orders), ITEMS_CHUNK):
                chunk = orders[start : start + ITEMS_CHUNK]
                yield ResumablePage([
                    KnownRecord(order=order)
                    if order.get("AmazonOrderId") in stored
                    else {"order": order, "items": self._order_items(order.get("AmazonOrderId"))}
                    for order in chunk
                ], resume_from=token)
            token = payload.get("NextToken")
            if not token:
                return

    def _order_items(self, order_id: str | None) -> list[dict]:
        if not order_id:
            return []  # the normalizer quarantines an order without an id
        items: list[dict] = []
        params: dict = {}
        while True:
            body = self._get(f"/orders/v0/orders/{order_id}/orderItems", params, self._items_bucket)
            payload = body.get("payload", {})
            items.extend(payload.get("OrderItems", []))
            token = payload.get("NextToken")
            if not token:
                return items
            params = {"NextToken": token}

    def _get(self, path: str, params: dict, bucket) -> dict:
        for attempt in range(2):
            headers = {"x-amz-access-token": self._access_token(force=attempt > 0), "Accept": "application/json"}
            try:
                return self._http.call(
                    "GET",
                    self._endpoint + path,
                    limiter=bucket,
                    on_response=_follow_rate(bucket),
                    headers=headers,
                    params=params,
                ).body
            except ChannelAuthError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _access_token(self, *, force: bool) -> str:
        key = (self._token_url, self._credentials["refresh_token"])
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not force and cached[1] > time.time():
                return cached[0]
        response = self._http.call(
            "POST",
            self._token_url,
            limiter=self._token_bucket,
            data={
                "grant_type": "refresh_token",
                "refresh_token": self._credentials["refresh_token"],
                "client_id": self._credentials["client_id"],
                "client_secret": self._credentials["client_secret"],
            },
        ).body
        token = response["access_token"]
        expires_at = time.time() + int(response.get("expires_in", 3600)) - TOKEN_REFRESH_MARGIN_SECONDS
        with _tokens_lock:
            _tokens[key] = (token, expires_at)
        return token
