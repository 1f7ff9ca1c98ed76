"""Shopify Admin REST simulator: `GET /admin/api/{version}/orders.json` for one store.

Enforces what the real API does (shopify.dev REST reference; CHANNELS.md section 8):
- `X-Shopify-Access-Token` must match, else 401 with Shopify's message;
- `status` defaults to `open` (cancelled and closed orders are left out unless `status=any`);
- `limit` 1..250 (default 50), more is a 400;
- pagination only through the `Link` header's `page_info` cursor (keyset: stable while orders
  change); a request with `page_info` and any filter other than `limit`/`fields` is a 400;
- leaky bucket of 40 requests leaking 2/s per app and store (`rate_multiplier` scales the leak,
  like a Plus plan), reported in `X-Shopify-Shop-Api-Call-Limit`; over it HTTP 429 + Retry-After.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from omsdev.simulators.base import FaultPlan, Reply, Request, Simulator, TokenBucketLimit
from omsdev.simulators.orderbook import OrderBook

BUCKET_SIZE = 40
LEAK_PER_SECOND = 2.0
MAX_LIMIT = 250
_FILTERS = {
    "updated_at_min", "updated_at_max", "created_at_min", "created_at_max", "status",
    "financial_status", "fulfillment_status", "since_id", "ids", "order", "processed_at_min", "processed_at_max",
}


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(text)
    return moment.astimezone(timezone.utc)


def _encode(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _decode(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


class ShopifySimulator(Simulator):
    def __init__(
        self,
        access_token: str,
        book: OrderBook | None = None,
        *,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        api_version: str = "2024-04",
    ):
        super().__init__(faults)
        self.access_token = access_token
        self.book = book if book is not None else OrderBook()
        self.api_version = api_version
        self.bucket = TokenBucketLimit(LEAK_PER_SECOND * rate_multiplier, BUCKET_SIZE)

    def _limit_header(self) -> dict:
        return {"X-Shopify-Shop-Api-Call-Limit": f"{self.bucket.used}/{BUCKET_SIZE}"}

    def fault_reply(self, kind: str) -> Reply:
        if kind == "429":
            return Reply(429, {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}, {"Retry-After": "1.0"})
        if kind == "5xx":
            return Reply(503, {"errors": "Service Unavailable"})
        return Reply(200, {"orders": []}, fault=kind)

    def route(self, request: Request) -> tuple[Reply, str]:
        prefix = f"/admin/api/{self.api_version}/"
        if request.method != "GET" or not request.path.startswith(prefix):
            return Reply(404, {"errors": "Not Found"}), "bad_request"
        if request.headers.get("X-Shopify-Access-Token") != self.access_token:
            return Reply(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}), "auth_failed"
        allowed, wait = self.bucket.try_take()
        if not allowed:
            headers = {**self._limit_header(), "Retry-After": f"{max(wait, 0.1):.1f}"}
            return Reply(429, {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}, headers), "rate_limited"
        resource = request.path[len(prefix):]
        if resource == "orders.json":
            return self._orders(request)
        if resource == "orders/count.json":
            reply, outcome = self._orders(request, count_only=True)
            return reply, outcome
        return Reply(404, {"errors": "Not Found"}, self._limit_header()), "bad_request"

    def _bad(self, errors: object) -> tuple[Reply, str]:
        return Reply(400, {"errors": errors}, self._limit_header()), "bad_request"

    def _orders(self, request: Request, count_only: bool = False) -> tuple[Reply, str]:
        try:
            limit = int(request.param("limit") or 50)
        except ValueError:
            return self._bad({"limit": "must be an integer"})
        if not 1 <= limit <= MAX_LIMIT:
            return self._bad({"limit": f"must be between 1 and {MAX_LIMIT}"})
        token = request.param("page_info")
        if token:
            extra = set(request.query) & _FILTERS
            if extra:
                return self._bad({"page_info": f"Invalid value: filters {sorted(extra)} are not allowed with page_info"})
            try:
                state = _decode(token)
            except ValueError:
                return self._bad({"page_info": "Invalid value."})
        else:
            state = {name: request.param(name) for name in ("updated_at_min", "updated_at_max", "created_at_min", "created_at_max", "status", "order")}
            state["after"] = None
        try:
            entries = self._select(state)
        except ValueError as error:
            return self._bad({"updated_at": f"invalid time {error}"})
        if count_only:
            return Reply(200, {"count": len(entries)}, self._limit_header()), "ok"
        if state.get("after"):
            last_key, last_id = state["after"]
            entries = [e for e in entries if (self._sort_value(e, state), e.order_id) > (last_key, last_id)]
        page = entries[:limit]
        headers = self._limit_header()
        if len(entries) > limit:
            last = page[-1]
            next_state = {**state, "after": [self._sort_value(last, state), last.order_id]}
            url = f"{self.url}/admin/api/{self.api_version}/orders.json?limit={limit}&page_info={_encode(next_state)}"
            headers["Link"] = f'<{url}>; rel="next"'
        return Reply(200, {"orders": [e.payload for e in page]}, headers), "ok"

    @staticmethod
    def _sort_value(entry, state: dict) -> str:
        moment = entry.updated_at if (state.get("order") or "").startswith("updated_at") else entry.created_at
        return moment.isoformat()

    def _select(self, state: dict):
        bounds = {
            name: _parse_time(state[name]) if state.get(name) else None
            for name in ("updated_at_min", "updated_at_max", "created_at_min", "created_at_max")
        }
        status = state.get("status") or "open"
        entries = self.book.select(bounds["updated_at_min"], bounds["updated_at_max"])
        entries = [
            e for e in entries
            if (bounds["created_at_min"] is None or e.created_at >= bounds["created_at_min"])
            and (bounds["created_at_max"] is None or e.created_at <= bounds["created_at_max"])
            and (status == "any" or (status == "open") == e.open)
        ]
        return sorted(entries, key=lambda e: (self._sort_value(e, state), e.order_id))
