"""Amazon SP-API simulator: Login with Amazon tokens, getOrders and getOrderItems for one seller.

Enforces what the real API does (ordersV0.json; CHANNELS.md section 6):
- `POST /auth/o2/token` (refresh_token grant) issues access tokens valid `token_ttl_seconds`;
  wrong client credentials -> invalid_client, wrong refresh token -> invalid_grant;
- every API call needs a live `x-amz-access-token` (else 403 Unauthorized);
- getOrders: `MarketplaceIds` required; `LastUpdatedAfter` (or `CreatedAfter`) required;
  `LastUpdatedBefore` at least 2 minutes before now (else 400 InvalidInput); `MaxResultsPerPage`
  1..100; `NextToken` continues the frozen query (keyset, stable while orders change);
- rate limits per operation, token bucket: getOrders 0.0167/s burst 20, getOrderItems 0.5/s
  burst 30 (times `rate_multiplier`), granted rate in `x-amzn-RateLimit-Limit`; over it HTTP 429
  QuotaExceeded.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from omsdev.simulators.base import FaultPlan, Reply, Request, Simulator, TokenBucketLimit
from omsdev.simulators.orderbook import OrderBook

GET_ORDERS = (0.0167, 20)
GET_ORDER_ITEMS = (0.5, 30)
LAG = timedelta(minutes=2)


def _error(status: int, code: str, message: str, details: str = "") -> Reply:
    return Reply(status, {"errors": [{"code": code, "message": message, "details": details}]})


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text} has no zone")
    return moment.astimezone(timezone.utc)


class AmazonSimulator(Simulator):
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        book: OrderBook | None = None,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        token_ttl_seconds: int = 3600,
    ):
        super().__init__(faults)
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.book = book if book is not None else OrderBook()
        self.token_ttl_seconds = token_ttl_seconds
        self.limits = {
            "getOrders": TokenBucketLimit(GET_ORDERS[0] * rate_multiplier, GET_ORDERS[1]),
            "getOrderItems": TokenBucketLimit(GET_ORDER_ITEMS[0] * rate_multiplier, GET_ORDER_ITEMS[1]),
        }
        self._tokens: dict[str, float] = {}
        self._queries: dict[str, dict] = {}
        self._lock = threading.Lock()

    def is_api_call(self, request: Request) -> bool:
        return request.path.startswith("/orders/")

    def fault_reply(self, kind: str) -> Reply:
        if kind == "429":
            return _error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
        if kind == "5xx":
            return _error(503, "InternalFailure", "We encountered an internal error. Please try again.")
        return Reply(200, {"payload": {"Orders": []}}, fault=kind)

    def route(self, request: Request) -> tuple[Reply, str]:
        if request.method == "POST" and request.path == "/auth/o2/token":
            return self._token(request)
        if request.method != "GET" or not request.path.startswith("/orders/v0/orders"):
            return _error(404, "NotFound", "Resource not found"), "bad_request"
        if not self._token_is_live(request.headers.get("x-amz-access-token")):
            reply = _error(403, "Unauthorized", "Access to requested resource is denied.", "The access token you provided is invalid or has expired.")
            return reply, "auth_failed"
        parts = request.path.rstrip("/").split("/")
        operation = "getOrderItems" if len(parts) == 6 and parts[5] == "orderItems" else "getOrders"
        limit = self.limits[operation]
        allowed, _wait = limit.try_take()
        rate_header = {"x-amzn-RateLimit-Limit": f"{limit.rate:g}", "x-amzn-RequestId": str(uuid.uuid4())}
        if not allowed:
            reply = _error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
            reply.headers.update(rate_header)
            return reply, "rate_limited"
        reply, outcome = self._order_items(parts[4]) if operation == "getOrderItems" else self._orders(request)
        reply.headers.update(rate_header)
        return reply, outcome

    def _token(self, request: Request) -> tuple[Reply, str]:
        form = request.form()
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Reply(401, {"error": "invalid_client", "error_description": "Client authentication failed"}), "auth_failed"
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return Reply(400, {"error": "invalid_grant", "error_description": "The request has an invalid grant parameter : refresh_token"}), "auth_failed"
        token = "Atza|" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.time() + self.token_ttl_seconds
        body = {"access_token": token, "refresh_token": self.refresh_token, "token_type": "bearer", "expires_in": self.token_ttl_seconds}
        return Reply(200, body), "ok"

    def _token_is_live(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and self._tokens.get(token, 0) > time.time()

    def expire_tokens(self) -> None:
        """Make every issued token expire now (tests of the refresh path)."""
        with self._lock:
            self._tokens = {token: 0 for token in self._tokens}

    def _orders(self, request: Request) -> tuple[Reply, str]:
        if not request.param("MarketplaceIds"):
            return _error(400, "InvalidInput", "Missing required parameter: MarketplaceIds"), "bad_request"
        token = request.param("NextToken")
        if token:
            with self._lock:
                query = self._queries.get(token)
            if query is None:
                return _error(400, "InvalidInput", "Invalid NextToken"), "bad_request"
        else:
            query, problem = self._new_query(request)
            if problem:
                return _error(400, "InvalidInput", problem), "bad_request"
        key = (lambda e: e.updated_at) if query["by"] == "updated" else (lambda e: e.created_at)
        entries = self.book.select(_time(query["after"]), _time(query["before"]), key=key)
        if query["last"]:
            entries = [e for e in entries if (key(e).isoformat(), e.order_id) > tuple(query["last"])]
        page = entries[: query["size"]]
        payload = {"Orders": [e.payload["order"] for e in page]}
        if query["by"] == "updated":
            payload["LastUpdatedBefore"] = query["before"]
        else:
            payload["CreatedBefore"] = query["before"]
        if len(entries) > query["size"]:
            last = page[-1]
            next_token = base64.b64encode(secrets.token_bytes(24)).decode()
            with self._lock:
                self._queries[next_token] = {**query, "last": [key(last).isoformat(), last.order_id]}
            payload["NextToken"] = next_token
        return Reply(200, {"payload": payload}), "ok"

    def _new_query(self, request: Request) -> tuple[dict, str | None]:
        now = datetime.now(timezone.utc)
        updated_after, created_after = request.param("LastUpdatedAfter"), request.param("CreatedAfter")
        if bool(updated_after) == bool(created_after):
            return {}, "Exactly one of CreatedAfter and LastUpdatedAfter must be specified"
        by = "updated" if updated_after else "created"
        before_name = "LastUpdatedBefore" if by == "updated" else "CreatedBefore"
        try:
            after = _time(updated_after or created_after)
            before = _time(request.param(before_name)) if request.param(before_name) else now - LAG
            size = int(request.param("MaxResultsPerPage") or 100)
        except ValueError as error:
            return {}, f"Invalid input: {error}"
        if before > now - LAG:
            return {}, f"{before_name} must be no later than 2 minutes before the request time"
        if not 1 <= size <= 100:
            return {}, "MaxResultsPerPage must be between 1 and 100"
        if after >= before:
            return {}, f"{before_name} must be later than the After date"
        return {"by": by, "after": after.isoformat(), "before": before.isoformat(), "size": size, "last": None}, None

    def _order_items(self, order_id: str) -> tuple[Reply, str]:
        entry = self.book.get(order_id)
        if entry is None:
            return _error(404, "NotFound", f"Order {order_id} not found"), "bad_request"
        return Reply(200, {"payload": {"AmazonOrderId": order_id, "OrderItems": entry.payload["items"]}}), "ok"
