"""Amazon SP-API simulator: Login with Amazon tokens, getOrders and getOrderItems for one seller.

Enforces what the real API does (ordersV0.json; CHANNELS.md section 6):
- `POST /auth/o2/token` (form: grant_type=refresh_token, refresh_token, client_id, client_secret)
  issues `Atza|...` access tokens valid `token_ttl_seconds`; wrong client credentials -> 401
  invalid_client, wrong refresh token -> 400 invalid_grant (the real host is api.amazon.com; here it
  is the same server);
- every API call needs a live `x-amz-access-token` (missing, unknown or expired -> 403 Unauthorized);
- getOrders: `MarketplaceIds` required (at most 50); exactly one of `CreatedAfter` / `LastUpdatedAfter`,
  never crossed with the other kind's `...Before`; `...Before` at least 2 minutes before now (if
  absent, now - 2 min: an order becomes visible 2 minutes after its update); `MaxResultsPerPage`
  1..100 (default 100); orders ascending by LastUpdateDate (PurchaseDate for Created queries);
  `NextToken` continues the frozen query (keyset: stable while orders change), omitted on the last
  page, unknown -> 400 InvalidInput;
- getOrderItems: `GET /orders/v0/orders/{id}/orderItems`, 404 NotFound for an unknown id;
- rate limits per operation, token bucket: getOrders 0.0167/s burst 20, getOrderItems 0.5/s burst 30
  (times `rate_multiplier`), the rate in `x-amzn-RateLimit-Limit`; over it HTTP 429 QuotaExceeded.
  Every answer carries `x-amzn-RequestId`. Injected 5xx are 503 or 500 `InternalFailure`.

Orders come from one OrderBook (served for the marketplaces named in each order's MarketplaceId) or
from a mapping marketplace id -> OrderBook.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from omsdev.simulators.base import (
    AccessTokens,
    Clock,
    FaultPlan,
    Reply,
    Request,
    Simulator,
)
from omsdev.simulators.orderbook import BookEntry, OrderBook

TOKEN_PATH = "/auth/o2/token"
ORDERS_PATH = "/orders/v0/orders"
RATES = {"getOrders": (0.0167, 20), "getOrderItems": (0.5, 30)}  # requests per second, burst
LAG = timedelta(minutes=2)
MAX_PAGE, MAX_MARKETPLACES = 100, 50
ORDER_STATUSES = {"PendingAvailability", "Pending", "Unshipped", "PartiallyShipped", "Shipped",
                  "InvoiceUnconfirmed", "Canceled", "Unfulfillable"}
_ANY_MARKETPLACE = "*"


def _error(status: int, code: str, message: str, details: str = "") -> Reply:
    return Reply(status, {"errors": [{"code": code, "message": message, "details": details}]})


class _InvalidInput(Exception):
    pass


def _time(name: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _InvalidInput(f"Invalid {name}: {text!r} is not an ISO 8601 date") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _iso(moment: datetime) -> str:
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _marketplace_of(entry: BookEntry) -> str | None:
    order = entry.payload.get("order") if isinstance(entry.payload, dict) else None
    return order.get("MarketplaceId") if isinstance(order, dict) else None


class AmazonSimulator(Simulator):
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        book: OrderBook | Mapping[str, OrderBook] | None = None,
        *,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        token_ttl_seconds: float = 3600,
        clock: Clock = time.monotonic,
    ):
        super().__init__(faults, rate_multiplier=rate_multiplier, clock=clock)
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        if isinstance(book, Mapping):
            self.books = dict(book)
        else:
            self.books = {_ANY_MARKETPLACE: book if book is not None else OrderBook("amazon")}
        for each in self.books.values():
            each.channel = each.channel or "amazon"
        self.book = next(iter(self.books.values())) if len(self.books) == 1 else None
        self.token_ttl_seconds = token_ttl_seconds
        self.limits = {operation: self.new_bucket(rate, burst) for operation, (rate, burst) in RATES.items()}
        self._tokens = AccessTokens(clock)
        self._queries: dict[str, dict] = {}  # NextToken -> frozen query
        self._lock = threading.Lock()

    # Plumbing --------------------------------------------------------------------------------

    @staticmethod
    def _operation(path: str) -> str | None:
        parts = path.rstrip("/").split("/")
        if path.rstrip("/") == ORDERS_PATH:
            return "getOrders"
        if len(parts) == 6 and path.startswith(ORDERS_PATH + "/") and parts[5] == "orderItems":
            return "getOrderItems"
        return None

    @property
    def token_requests(self) -> int:
        return self.stats.count_path(TOKEN_PATH)

    def is_api_call(self, request: Request) -> bool:
        return request.path.startswith("/orders/") or (self.faults.include_token_endpoint and request.path == TOKEN_PATH)

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":
            return _error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
        return _error(self.faults.server_error(), "InternalFailure", "We encountered an internal error. Please try again.")

    def decorate(self, reply: Reply, request: Request) -> None:
        reply.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
        operation = self._operation(request.path)
        if operation:
            reply.headers.setdefault("x-amzn-RateLimit-Limit", f"{self.limits[operation].rate:g}")

    def operation(self, request: Request) -> str:
        return self._operation(request.path) or request.path  # getOrderItems paths carry the order id

    def route(self, request: Request) -> tuple[Reply, str]:
        if request.method == "POST" and request.path == TOKEN_PATH:
            return self._token(request)
        operation = self._operation(request.path)
        if request.method != "GET" or operation is None:
            return _error(404, "NotFound", "Resource not found"), "bad_request"
        denied = self._check_token(request.headers.get("x-amz-access-token"))
        if denied is not None:
            return _error(403, "Unauthorized", "Access to requested resource is denied.", denied), "auth_failed"
        allowed, _wait = self.limits[operation].try_take()
        if not allowed:
            return _error(429, "QuotaExceeded", "You exceeded your quota for the requested resource."), "rate_limited"
        try:
            if operation == "getOrderItems":
                return self._order_items(request.path.split("/")[4])
            return self._orders(request), "ok"
        except _InvalidInput as problem:
            return _error(400, "InvalidInput", str(problem)), "bad_request"

    # Login with Amazon -----------------------------------------------------------------------

    def _token(self, request: Request) -> tuple[Reply, str]:
        form = request.form()
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Reply(401, {"error": "invalid_client", "error_description": "Client authentication failed"}), "auth_failed"
        if form.get("grant_type") != "refresh_token":
            body = {"error": "unsupported_grant_type", "error_description": "The authorization grant type is not supported"}
            return Reply(400, body), "bad_request"
        if form.get("refresh_token") != self.refresh_token:
            body = {"error": "invalid_grant", "error_description": "The request has an invalid grant parameter : refresh_token"}
            return Reply(400, body), "auth_failed"
        token = self._tokens.issue("Atza|" + secrets.token_urlsafe(48), self.token_ttl_seconds)
        expires_in = max(1, math.ceil(self.token_ttl_seconds))
        body = {"access_token": token, "refresh_token": self.refresh_token, "token_type": "bearer", "expires_in": expires_in}
        return Reply(200, body), "ok"

    def _check_token(self, token: str | None) -> str | None:
        """None when the token is live, else the 403's details."""
        if not token:
            return ""
        state = self._tokens.state(token)
        if state == "unknown":
            return "The access token you provided is revoked, malformed or invalid."
        if state == "expired":
            return "The access token you provided has expired."
        return None

    def expire_tokens(self) -> None:
        """Make every issued token expire now (tests of the refresh path)."""
        self._tokens.expire_all()

    # getOrders / getOrderItems ---------------------------------------------------------------

    def _orders(self, request: Request) -> Reply:
        marketplaces = [m for m in (request.param("MarketplaceIds") or "").split(",") if m]
        if not marketplaces:
            raise _InvalidInput("Missing required parameter: MarketplaceIds")
        if len(marketplaces) > MAX_MARKETPLACES:
            raise _InvalidInput(f"MarketplaceIds accepts at most {MAX_MARKETPLACES} values")
        token = request.param("NextToken")
        if token:
            with self._lock:
                query = self._queries.get(token)
            if query is None:
                raise _InvalidInput("Invalid NextToken")
        else:
            query = self._new_query(request, marketplaces)
        by_update = query["by"] == "LastUpdated"
        after, before = datetime.fromisoformat(query["after"]), datetime.fromisoformat(query["before"])

        def key(entry: BookEntry) -> tuple[datetime, str]:
            return (entry.updated_at if by_update else entry.created_at), entry.order_id

        window = (after, before) if by_update else (None, None)
        matching = sorted(
            (e for e in self._entries(query["marketplaces"], *window)
             if after <= key(e)[0] <= before
             and (not query["statuses"] or (e.payload.get("order") or {}).get("OrderStatus") in query["statuses"])),
            key=key,
        )
        if query["last"]:
            last = (datetime.fromisoformat(query["last"][0]), query["last"][1])
            matching = [e for e in matching if key(e) > last]
        page = matching[: query["size"]]
        payload: dict = {"Orders": [e.payload["order"] for e in page], f"{query['by']}Before": _iso(before)}
        if len(matching) > len(page):
            next_token = secrets.token_urlsafe(48)
            last_key = key(page[-1])
            with self._lock:
                self._queries[next_token] = {**query, "last": [last_key[0].isoformat(), last_key[1]]}
            payload["NextToken"] = next_token
        return Reply(200, {"payload": payload})

    def _new_query(self, request: Request, marketplaces: list[str]) -> dict:
        now = datetime.now(timezone.utc)
        updated_after, created_after = request.param("LastUpdatedAfter"), request.param("CreatedAfter")
        if bool(updated_after) == bool(created_after):
            raise _InvalidInput("Exactly one of CreatedAfter and LastUpdatedAfter must be specified")
        by, other = ("LastUpdated", "Created") if updated_after else ("Created", "LastUpdated")
        if request.param(f"{other}Before"):
            raise _InvalidInput(f"{other}Before cannot be specified with {by}After")
        after = _time(f"{by}After", updated_after or created_after)
        given = request.param(f"{by}Before")
        before = _time(f"{by}Before", given) if given else (now - LAG).replace(microsecond=0)
        if before > now - LAG:
            raise _InvalidInput(f"{by}Before must be no later than 2 minutes before the request time")
        if after > before:
            raise _InvalidInput(f"{by}After must be earlier than {by}Before")
        try:
            size = int(request.param("MaxResultsPerPage") or MAX_PAGE)
        except ValueError:
            raise _InvalidInput("MaxResultsPerPage must be an integer between 1 and 100") from None
        if not 1 <= size <= MAX_PAGE:
            raise _InvalidInput("MaxResultsPerPage must be an integer between 1 and 100")
        statuses = [s for s in (request.param("OrderStatuses") or "").split(",") if s]
        unknown = set(statuses) - ORDER_STATUSES
        if unknown:
            raise _InvalidInput(f"Invalid OrderStatuses: {', '.join(sorted(unknown))}")
        return {"by": by, "after": after.isoformat(), "before": before.isoformat(), "size": size,
                "marketplaces": marketplaces, "statuses": statuses, "last": None}

    def _entries(self, marketplaces: list[str], updated_after=None, updated_before=None) -> list[BookEntry]:
        """The marketplaces' orders, narrowed by the book's update-time index when bounds are given."""
        chosen: list[BookEntry] = []
        for marketplace, book in self.books.items():
            entries = book.select(updated_after, updated_before)
            if marketplace == _ANY_MARKETPLACE:
                chosen += [e for e in entries if _marketplace_of(e) in (*marketplaces, None)]
            elif marketplace in marketplaces:
                chosen += entries
        return chosen

    def _order_items(self, order_id: str) -> tuple[Reply, str]:
        entry = next((e for e in (book.get(order_id) for book in self.books.values()) if e is not None), None)
        if entry is None:
            return _error(404, "NotFound", f"Order {order_id} not found"), "bad_request"
        return Reply(200, {"payload": {"AmazonOrderId": order_id, "OrderItems": entry.payload["items"]}}), "ok"


def launch(shop_id: str, book: OrderBook, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0):
    """A started simulator for one seller and the credentials secret our adapter needs for it."""
    credentials = {"client_id": f"amzn1.application-oa2-client.{shop_id}", "client_secret": "s3cr3t",
                   "refresh_token": f"Atzr|{shop_id}"}
    simulator = AmazonSimulator(**credentials, book=book, faults=faults, rate_multiplier=rate_multiplier).start()
    return simulator, {**credentials, "endpoint": simulator.url, "lwa_token_url": simulator.url + TOKEN_PATH,
                       "marketplace_ids": ["A1PA6795UKMFR9"]}
