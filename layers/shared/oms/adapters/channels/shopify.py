"""Shopify Admin REST client: `GET /admin/api/{version}/orders.json` for one poll window.

Facts it relies on (shopify.dev REST reference, see shared/channels/CHANNELS.md section 8):
- `updated_at_min`/`updated_at_max` select by update time; `status=any` or cancelled and closed
  orders are silently left out; `limit` at most 250.
- Pagination is cursor based through the `Link` header (`rel="next"`, `page_info=`); follow-up
  requests may carry only `page_info` and `limit`, any other filter is a 400.
- Auth is the `X-Shopify-Access-Token` header; no request signing.
- Rate limit: leaky bucket of 40 requests leaking 2/s per app and store; every answer reports the
  fill level in `X-Shopify-Shop-Api-Call-Limit: used/size`; over it, HTTP 429 with Retry-After.
  The header tells the fill level but not the leak rate, which depends on the store's plan
  (Shopify Plus leaks faster): a secret may give it as `calls_per_second` (and `burst`).

Credentials secret: {"shop_url": "https://{shop}.myshopify.com", "access_token": "...",
"api_version": "2024-04" (optional), "calls_per_second" and "burst" (optional, the plan's rate)}.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import requests

from oms.adapters.channels import limiters
from oms.adapters.channels.http import ChannelHttp
from oms.domain.order import format_utc
from oms.domain.polling import ChannelWindowRules, PollWindow

PAGE_LIMIT = 250
DEFAULT_API_VERSION = "2024-04"
BUCKET_SIZE = 40
LEAK_PER_SECOND = 2.0


def _sync_bucket(bucket, response: requests.Response) -> None:
    used_of_size = response.headers.get("X-Shopify-Shop-Api-Call-Limit", "")
    try:
        used, size = (int(part) for part in used_of_size.split("/"))
    except ValueError:
        return
    bucket.set_available(size - used)


class ShopifyClient:
    channel = "shopify"
    # No maximum span; orders are readable as soon as they are written.
    rules = ChannelWindowRules(lag=timedelta(seconds=0), max_span=None)
    pages_in_update_order = True  # `order=updated_at asc`, followed by page_info links

    def __init__(self, shop_id: str, credentials: dict, http: ChannelHttp):
        self._shop_id = shop_id
        self._base = credentials["shop_url"].rstrip("/")
        self._version = credentials.get("api_version", DEFAULT_API_VERSION)
        self._http = http
        self._headers = {"X-Shopify-Access-Token": credentials["access_token"], "Accept": "application/json"}
        rate, burst = limiters.granted_rate(credentials, LEAK_PER_SECOND, BUCKET_SIZE)
        self._bucket = limiters.bucket(("shopify", self._base), rate, burst)

    def fetch_window(self, window: PollWindow, known=None) -> Iterator[list[dict]]:
        # Every order arrives whole in the list: nothing to save by consulting `known`.
        url = f"{self._base}/admin/api/{self._version}/orders.json"
        params: dict | None = {
            "updated_at_min": format_utc(window.start),
            "updated_at_max": format_utc(window.end),
            "status": "any",
            "limit": PAGE_LIMIT,
            "order": "updated_at asc",
        }
        while url:
            response = self._http.call(
                "GET",
                url,
                limiter=self._bucket,
                on_response=lambda r: _sync_bucket(self._bucket, r),
                headers=self._headers,
                params=params,
            )
            yield list(response.body.get("orders", []))
            next_link = _next_link(response.headers.get("Link", ""))
            # The next link already carries page_info and limit; filters must not be repeated.
            url, params = next_link, None


def _next_link(header: str) -> str | None:
    for link in requests.utils.parse_header_links(header) if header else []:
        if link.get("rel") == "next":
            return link["url"]
    return None
