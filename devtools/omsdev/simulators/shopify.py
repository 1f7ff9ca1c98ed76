"""Shopify Admin REST simulator: `GET /admin/api/{version}/orders.json` and `orders/count.json` for one store.

Enforces what the real API does (shopify.dev REST reference; CHANNELS.md section 8):
- `X-Shopify-Access-Token` must match, else 401 with Shopify's message;
- filters `updated_at_min/max`, `created_at_min/max` (ISO 8601, inclusive; a time without offset is
  the shop's time zone), `since_id`, `ids`; `status` defaults to `open` (not cancelled, not closed),
  `any` returns everything, `cancelled` / `closed` only those; other documented filters are ignored;
- `limit` 1..250 (default 50), anything else is a 400; `order` is `<created_at|updated_at|id> <asc|desc>`
  (default `created_at desc`, `id asc` with `since_id`); `fields` keeps only the named keys;
- pagination only through the `Link` header (`rel="previous"`, `rel="next"`), whose opaque `page_info`
  freezes the filters and the last (sort value, id): keyset, so it stays correct while orders are
  added or updated; a request with `page_info` and any parameter other than `limit`/`fields` is a 400;
- leaky bucket of 40 requests leaking 2/s per app and store (`rate_multiplier` scales the leak, like
  a Plus plan), reported on every answer in `X-Shopify-Shop-Api-Call-Limit: n/40`; over it HTTP 429
  with `Retry-After: <seconds>` and Shopify's message. Injected 429s carry Retry-After too; injected
  5xx are 503 `{"errors":"Service Unavailable"}` or 500 `{"errors":"Internal Server Error"}`.
"""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from omsdev.simulators.base import Clock, FaultPlan, Reply, Request, Simulator
from omsdev.simulators.orderbook import BookEntry, OrderBook

BUCKET_SIZE = 40
LEAK_PER_SECOND = 2.0
MAX_LIMIT, DEFAULT_LIMIT = 250, 50
SHOP_TIMEZONE = timezone(timedelta(hours=8))
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
_PAGING_PARAMS = {"limit", "fields", "page_info"}
_TIME_FILTERS = ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max")
_STATUSES = {"open", "closed", "cancelled", "any"}
_ORDER_FIELDS = {"created_at", "updated_at", "id"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _BadRequest(Exception):
    def __init__(self, errors: object):
        self.errors = errors


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _parse_time(name: str, text: str) -> int:
    try:
        # A '+' left unencoded in a query string arrives as a space.
        moment = datetime.fromisoformat(re.sub(r" (\d\d:?\d\d)$", r"+\1", text.strip()))
    except ValueError:
        raise _BadRequest({name: f"{text!r} is not a valid ISO 8601 time"}) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHOP_TIMEZONE)
    return _micros(moment)


def _encode(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, sort_keys=True, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> dict:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(state, dict) or state.get("direction") not in ("next", "prev"):
            raise ValueError(token)
        state["last"] = tuple(state["last"])
        return state
    except (ValueError, KeyError, TypeError):
        raise _BadRequest({"page_info": "Invalid value."}) from None


class ShopifySimulator(Simulator):
    def __init__(
        self,
        shop_domain: str,
        access_token: str | OrderBook | None = None,
        book: OrderBook | None = None,
        *,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        api_version: str = "2024-04",
        clock: Clock = time.monotonic,
    ):
        if access_token is None or isinstance(access_token, OrderBook):
            # The older call form ShopifySimulator(access_token, book) of omsdev.demo.
            shop_domain, access_token, book = "simulated.myshopify.com", shop_domain, access_token
        super().__init__(faults, rate_multiplier=rate_multiplier, clock=clock)
        self.shop_domain = shop_domain
        self.access_token = access_token
        self.book = book if book is not None else OrderBook("shopify")
        if self.book.channel is None:
            self.book.channel = "shopify"
        self.api_version = api_version
        self.bucket = self.new_bucket(LEAK_PER_SECOND, BUCKET_SIZE)

    # Envelopes -------------------------------------------------------------------------------

    def _throttled(self, retry_after: float) -> Reply:
        message = (f"Exceeded {self.bucket.rate:g} calls per second for api client. "
                   "Reduce request rates to resume uninterrupted service.")
        return Reply(429, {"errors": message}, {"Retry-After": f"{retry_after:.1f}"})

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":
            return self._throttled(1.0)
        status = self.faults.server_error()
        return Reply(status, {"errors": "Service Unavailable" if status == 503 else "Internal Server Error"})

    def decorate(self, reply: Reply, request: Request) -> None:
        if request.path.startswith("/admin/"):
            reply.headers.setdefault("X-Shopify-Shop-Api-Call-Limit", f"{self.bucket.used}/{BUCKET_SIZE}")

    # Routing ---------------------------------------------------------------------------------

    def route(self, request: Request) -> tuple[Reply, str]:
        if not request.path.startswith("/admin/"):
            return Reply(404, {"errors": "Not Found"}), "bad_request"
        if request.headers.get("X-Shopify-Access-Token") != self.access_token:
            return Reply(401, {"errors": INVALID_TOKEN}), "auth_failed"
        allowed, wait = self.bucket.try_take()
        if not allowed:
            return self._throttled(max(wait, 0.1)), "rate_limited"
        prefix = f"/admin/api/{self.api_version}/"
        resource = request.path[len(prefix):] if request.path.startswith(prefix) else None
        try:
            if request.method == "GET" and resource == "orders.json":
                return self._list(request), "ok"
            if request.method == "GET" and resource == "orders/count.json":
                return Reply(200, {"count": len(self._matching(self._query(request)))}), "ok"
        except _BadRequest as problem:
            return Reply(400, {"errors": problem.errors}), "bad_request"
        return Reply(404, {"errors": "Not Found"}), "bad_request"

    # Queries ---------------------------------------------------------------------------------

    def _query(self, request: Request) -> dict:
        query: dict = {name: _parse_time(name, request.param(name)) for name in _TIME_FILTERS if request.param(name)}
        query["status"] = request.param("status") or "open"
        if query["status"] not in _STATUSES:
            raise _BadRequest({"status": f"must be one of {', '.join(sorted(_STATUSES))}"})
        for name in ("since_id", "ids"):
            value = request.param(name)
            if value:
                try:
                    query[name] = [int(part) for part in value.split(",")] if name == "ids" else int(value)
                except ValueError:
                    raise _BadRequest({name: "expected integer ids"}) from None
        order = (request.param("order") or ("id asc" if "since_id" in query else "created_at desc")).split()
        if len(order) == 1:
            order.append("asc")
        if len(order) != 2 or order[0] not in _ORDER_FIELDS or order[1].lower() not in ("asc", "desc"):
            raise _BadRequest({"order": f"must be one of {sorted(_ORDER_FIELDS)} followed by asc or desc"})
        query["order"] = f"{order[0]} {order[1].lower()}"
        return query

    @staticmethod
    def _status_of(entry: BookEntry) -> tuple[bool, bool]:
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        return payload.get("cancelled_at") is not None, payload.get("closed_at") is not None

    def _matching(self, query: dict) -> list[tuple[tuple, BookEntry]]:
        """(sort key, entry) of every matching order, in presentation order."""
        field, direction = query["order"].split()
        bounds = {name: query.get(name) for name in _TIME_FILTERS}
        ids = set(query.get("ids") or ())
        chosen = []
        for entry in self._candidates(bounds["updated_at_min"], bounds["updated_at_max"]):
            updated, created, number = _micros(entry.updated_at), _micros(entry.created_at), int(entry.order_id)
            cancelled, closed = self._status_of(entry)
            status = query["status"]
            if (
                (bounds["updated_at_min"] is not None and updated < bounds["updated_at_min"])
                or (bounds["updated_at_max"] is not None and updated > bounds["updated_at_max"])
                or (bounds["created_at_min"] is not None and created < bounds["created_at_min"])
                or (bounds["created_at_max"] is not None and created > bounds["created_at_max"])
                or (status == "open" and (cancelled or closed))
                or (status == "cancelled" and not cancelled)
                or (status == "closed" and not closed)
                or ("since_id" in query and number <= query["since_id"])
                or (ids and number not in ids)
            ):
                continue
            value = {"updated_at": updated, "created_at": created, "id": number}[field]
            chosen.append(((value, number), entry))
        chosen.sort(key=lambda pair: pair[0], reverse=direction == "desc")
        return chosen

    def _candidates(self, updated_min: int | None, updated_max: int | None) -> list[BookEntry]:
        """Orders inside the update-time bounds, from the book's index (the usual incremental query)."""
        if updated_min is None and updated_max is None:
            return self.book.entries()

        def moment(micros: int | None) -> datetime | None:
            return None if micros is None else _EPOCH + timedelta(microseconds=micros)

        return self.book.select(moment(updated_min), moment(updated_max))

    def _list(self, request: Request) -> Reply:
        try:
            limit = int(request.param("limit") or DEFAULT_LIMIT)
        except ValueError:
            raise _BadRequest({"limit": "expected an integer"}) from None
        if not 1 <= limit <= MAX_LIMIT:
            raise _BadRequest({"limit": f"must be between 1 and {MAX_LIMIT}"})
        fields = request.param("fields")
        token = request.param("page_info")
        if token:
            extra = sorted(set(request.query) - _PAGING_PARAMS)
            if extra:
                raise _BadRequest({"page_info": f"Invalid value. Parameters {extra} cannot be used with page_info, "
                                                "only limit and fields"})
            state = _decode(token)
            query, cursor, direction = state["query"], state["last"], state["direction"]
        else:
            query, cursor, direction = self._query(request), None, "next"
        ordered = self._matching(query)
        desc = query["order"].endswith("desc")

        def before(a: tuple, b: tuple) -> bool:  # a comes before b in presentation order
            return a > b if desc else a < b

        if cursor is None:
            page = ordered[:limit]
        elif direction == "next":
            page = [pair for pair in ordered if before(cursor, pair[0])][:limit]
        else:
            page = [pair for pair in ordered if before(pair[0], cursor)][-limit:]
        links = []
        if page and before(ordered[0][0], page[0][0]):
            links.append(self._link(query, page[0][0], "prev", limit, fields))
        if page and before(page[-1][0], ordered[-1][0]):
            links.append(self._link(query, page[-1][0], "next", limit, fields))
        orders = [entry.payload for _key, entry in page]
        if fields:
            wanted = [name.strip() for name in fields.split(",")]
            orders = [{name: order[name] for name in wanted if name in order} for order in orders]
        headers = {"Link": ", ".join(links)} if links else {}
        return Reply(200, {"orders": orders}, headers)

    def _link(self, query: dict, last: tuple, direction: str, limit: int, fields: str | None) -> str:
        token = _encode({"query": query, "last": list(last), "direction": direction})
        url = f"{self.url}/admin/api/{self.api_version}/orders.json?limit={limit}&page_info={token}"
        if fields:
            url += f"&fields={quote(fields, safe=',')}"
        return f'<{url}>; rel="{"previous" if direction == "prev" else "next"}"'


def launch(shop_id: str, book: OrderBook, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0):
    """A started simulator for one shop and the credentials secret our adapter needs for it."""
    token = f"shpat_{shop_id}"
    simulator = ShopifySimulator(f"{shop_id}.myshopify.com", token, book, faults=faults,
                                 rate_multiplier=rate_multiplier).start()
    # The store's plan as the seller knows it: the leak rate this simulator enforces.
    return simulator, {"shop_url": simulator.url, "access_token": token, "api_version": simulator.api_version,
                       "calls_per_second": simulator.bucket.rate, "burst": simulator.bucket.burst}
