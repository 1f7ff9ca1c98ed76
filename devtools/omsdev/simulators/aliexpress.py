"""AliExpress Open Platform (IOP) simulator: the seller order list and order detail for one shop, and
the token refresh call.

Speaks what the real gateway does (facts and sources in oms/adapters/channels/aliexpress.py):
- `POST /sync` (form or query parameters) with app_key, method, sign_method=sha256, timestamp (epoch
  ms), session and sign = HMAC-SHA256 over the sorted key+value concatenation, upper-case hex. A
  missing system parameter -> `MissingParameter`, an unknown app key -> `InvalidAppKey`, a wrong
  signature -> `IncompleteSignature`, all in `{"error_response": {type, code, msg, request_id,
  _trace_id_}}` with HTTP 200, as the platform answers; a timestamp more than 10 minutes away from
  now -> `InvalidTimestamp` (the TOP family's tolerance; code name unconfirmed);
- sessions are access tokens issued with a TTL on the injectable clock (`token_ttl_seconds`,
  `expire_tokens()`): missing, unknown or expired -> `IllegalAccessToken` "The specified access
  token is invalid or expired";
- `POST /rest/auth/token/refresh` (app_key, refresh_token, sign_method, timestamp, signed with the
  path in front) issues a new access token and answers flat JSON {access_token, refresh_token,
  expires_in, refresh_expires_in, code "0", request_id}; a wrong refresh token -> flat
  {type ISV, code IllegalRefreshToken, message, request_id};
- `aliexpress.solution.order.get` (`param0` OrderQuery JSON): modified_date_start/end in US Pacific
  `yyyy-MM-dd HH:mm:ss` (both required, end - start <= MAX_SPAN, end no later than now minus the
  search index delay), page_size 1..MAX_PAGE, current_page >= 1, `order_status_list` filters (no
  list -> every status but FINISH, as on the platform). Violations answer `result.success=false`
  with an error_code and error_message (codes of our own: the platform's are not published).
  Pages are served live from the OrderBook, newest gmt_update first, with total_count/total_page;
  an `on_page(page_number, query)` hook runs after each list page so a test can change orders
  between two page requests;
- `aliexpress.solution.order.info.get` (`param1` {order_id, ext_info_bit_flag}) -> `result.data`;
- one token bucket per app for API calls (RATE per second, BURST, times `rate_multiplier`); over it
  `error_response` ApiCallLimit with HTTP 200. Injected faults: "429" -> that same throttle
  envelope, "5xx" -> HTTP 503/500 with a SYSTEM error envelope, timeout and truncated bodies.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from omsdev.simulators.base import (
    AccessTokens,
    Clock,
    FaultPlan,
    Reply,
    Request,
    Simulator,
)
from omsdev.simulators.orderbook import BookEntry, OrderBook
from omsdev.simulators.scenario import OrderGenerator, next_id

SYNC_PATH = "/sync"
REFRESH_PATH = "/rest/auth/token/refresh"
LIST_METHOD = "aliexpress.solution.order.get"
DETAIL_METHOD = "aliexpress.solution.order.info.get"
PACIFIC = ZoneInfo("America/Los_Angeles")
LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_PAGE = 50
MAX_SPAN = timedelta(days=1)
INDEX_DELAY = timedelta(seconds=60)  # an update becomes searchable this long after it happened
TIMESTAMP_TOLERANCE_MS = 10 * 60 * 1000
RATE, BURST = 5.0, 10
TOKEN_TTL_SECONDS = 2_592_000  # 30 days, as the platform grants
REFRESH_TTL_SECONDS = 5_184_000
REQUIRED_SYSTEM = ("app_key", "method", "sign_method", "timestamp", "sign")
REQUIRED_REFRESH = ("app_key", "sign_method", "timestamp", "sign", "refresh_token")
DEFAULT_STATUSES = (
    "PLACE_ORDER_SUCCESS", "IN_CANCEL", "WAIT_SELLER_SEND_GOODS", "SELLER_PART_SEND_GOODS",
    "WAIT_BUYER_ACCEPT_GOODS", "FUND_PROCESSING", "IN_ISSUE", "IN_FROZEN", "WAIT_SELLER_EXAMINE_MONEY",
    "RISK_CONTROL",
)
ALL_STATUSES = (*DEFAULT_STATUSES, "FINISH")
ILLEGAL_TOKEN = "The specified access token is invalid or expired"
SIGNATURE_MESSAGE = "The request signature does not conform to platform standards"


def pacific(moment: datetime) -> str:
    return moment.astimezone(PACIFIC).strftime(LOCAL_FORMAT)


def sign(api_name: str, params: dict, secret: str) -> str:
    """The IOP signature, written here on its own so a bug in the adapter's copy cannot hide."""
    import hashlib
    import hmac

    text = (api_name if "/" in api_name else "") + "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


def _request_id() -> str:
    return uuid.uuid4().hex[:25]


def gateway_error(code: str, message: str, kind: str = "ISV", status: int = 200) -> Reply:
    body = {"error_response": {"type": kind, "code": code, "msg": message, "request_id": _request_id(),
                               "_trace_id_": uuid.uuid4().hex[:30]}}
    return Reply(status, body)


def throttled(wait_seconds: float) -> Reply:
    seconds = max(1, math.ceil(wait_seconds))
    return gateway_error("ApiCallLimit", f"The request has exceeded the limit. This ban will last {seconds} more seconds")


class _BusinessError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# Orders ----------------------------------------------------------------------------------------

# product id, name, seller SKU code, unit price in USD
_CATALOGUE = [
    (1005006123456789, "USB-C GaN Charger 65W", "CHG-65W-BK", "25.99"),
    (1005006123459999, "Braided USB-C Cable 2m", "CBL-C2M", "7.99"),
    (1005006123450000, "Magnetic Phone Holder", "HLD-MAG-WH", "18.49"),
    (1005006123451111, "Bluetooth Earbuds ANC", "EAR-ANC-BL", "29.90"),
]
# currency, USD factor, country, province, city, address, address2, zip, phone country, mobile, name, login id
_BUYERS = [
    ("USD", Decimal("1"), "US", "California", "Los Angeles", "1200 Airport Exchange Blvd", "Apt 4", "90045", "+1",
     "2135550100", "John Buyer", "us1100220033abc"),
    ("EUR", Decimal("0.92"), "ES", "Madrid", "Madrid", "Calle de Alcalá 45", "3º B", "28014", "+34", "612345678",
     "María José Núñez", "es9911223344xyz"),
    ("BRL", Decimal("5.0"), "BR", "São Paulo", "São Paulo", "Avenida Paulista, 1578", "Apto 52", "01310-200", "+55",
     "11987654321", "João Gonçalves", "br5566778899qwe"),
    ("USD", Decimal("1"), "HK", "九龍", "旺角", "彌敦道688號 旺角中心1期", "12樓B室", "999077", "+852", "91234567",
     "陳大文", "hk1288345kwl"),
]


def _money(currency: str, amount: Decimal) -> dict:
    return {"currency_code": currency, "amount": f"{amount:.2f}"}


class AliexpressOrders(OrderGenerator):
    """AliExpress seller orders as the book holds them: `{"order": order_dto, "detail": info data}`."""

    channel = "aliexpress"
    malformations = ("product_count_text", "unit_price_text", "product_count_missing")

    def build(self, moment: datetime, *, malformed: str | None = None) -> tuple[str, dict]:
        order_id = next_id()
        currency, factor, country, province, city, address, address2, zip_code, phone_country, mobile, name, login = (
            self.rng.choice(_BUYERS))
        stamp = pacific(moment)
        products, total = [], Decimal(0)
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            product_id, title, sku_code, usd = self.rng.choice(_CATALOGUE)
            count, child_id = self.rng.randint(1, 3), next_id()
            unit = (Decimal(usd) * factor).quantize(Decimal("0.01"))
            products.append({
                "order_id": child_id, "child_id": child_id, "product_id": product_id, "sku_code": sku_code,
                "product_name": title, "product_count": count, "product_unit": "piece",
                "product_unit_price": _money(currency, unit), "total_product_amount": _money(currency, unit * count),
                "son_order_status": "WAIT_SELLER_SEND_GOODS", "show_status": "WAIT_SELLER_SEND_GOODS",
                "fund_status": "PAY_SUCCESS", "issue_status": "NO_ISSUE", "logistics_type": "CAINIAO_STANDARD",
                "logistics_service_name": "AliExpress Standard Shipping", "goods_prepare_time": 3,
                "freight_commit_day": "60", "money_back3x": False, "can_submit_issue": True, "memo": "",
            })
            total += unit * count
        if malformed == "product_count_text":
            products[0]["product_count"] = "two"
        elif malformed == "unit_price_text":
            products[0]["product_unit_price"]["amount"] = "N/A"
        elif malformed == "product_count_missing":
            del products[0]["product_count"]
        order = {
            "order_id": order_id, "order_status": "WAIT_SELLER_SEND_GOODS", "fund_status": "PAY_SUCCESS",
            "logistics_status": "WAIT_SELLER_SEND_GOODS", "issue_status": "NO_ISSUE", "frozen_status": "NO_FROZEN",
            "biz_type": "AE_COMMON", "payment_type": "MIXEDCARD", "gmt_create": stamp, "gmt_pay_time": stamp,
            "gmt_update": stamp, "buyer_login_id": login, "buyer_signer_fullname": name,
            "seller_login_id": "cn1520998877abcd", "seller_signer_fullname": "Shenzhen Gadget Store",
            "pay_amount": _money(currency, total), "left_send_good_day": "6", "left_send_good_hour": "23",
            "left_send_good_min": "59", "timeout_left_time": 604_740_000,
            "product_list": {"order_product_dto": products},
        }
        first, _, last = name.partition(" ")
        detail = {
            "id": order_id, "order_status": "WAIT_SELLER_SEND_GOODS", "gmt_create": stamp, "gmt_modified": stamp,
            "gmt_pay_success": stamp,
            "buyer_info": {"login_id": login, "first_name": first, "last_name": last, "country": country},
            "receipt_address": {"contact_person": name, "country": country, "province": province, "city": city,
                                "detail_address": address, "address2": address2, "zip": zip_code,
                                "mobile_no": mobile, "phone_country": phone_country},
            "order_amount": _money(currency, total),
        }
        return str(order_id), {"order": order, "detail": detail}

    def touch(self, order_id: str, moment: datetime) -> datetime:
        """A new version with only gmt_update changed (a memo edited, a logistics event)."""
        def touched(entry: BookEntry, at: datetime) -> dict:
            stamp = pacific(at)
            return {"order": {**entry.payload["order"], "gmt_update": stamp},
                    "detail": {**entry.payload["detail"], "gmt_modified": stamp}}

        return self._rewrite(order_id, moment, touched)

    def cancel(self, order_id: str, moment: datetime) -> datetime:
        """The buyer cancels the paid order before shipment; the platform closes it (FINISH)."""
        def cancelled(entry: BookEntry, at: datetime) -> dict:
            stamp = pacific(at)
            products = [{**p, "son_order_status": "FINISH", "show_status": "FINISH"}
                        for p in entry.payload["order"]["product_list"]["order_product_dto"]]
            order = {**entry.payload["order"], "gmt_update": stamp, "order_status": "FINISH",
                     "end_reason": "buyer_cancel_order", "logistics_status": "NO_LOGISTICS",
                     "product_list": {"order_product_dto": products}}
            return {"order": order, "detail": {**entry.payload["detail"], "gmt_modified": stamp,
                                                "order_status": "FINISH"}}

        return self._rewrite(order_id, moment, cancelled, cancel=True)


ORDER_GENERATOR = AliexpressOrders


# Gateway ---------------------------------------------------------------------------------------

def _pacific_time(query: dict, name: str) -> datetime:
    value = query.get(name)
    if not value:
        raise _BusinessError("param_missing", f"{name} is required")
    try:
        return datetime.strptime(str(value), LOCAL_FORMAT).replace(tzinfo=PACIFIC).astimezone(timezone.utc)
    except ValueError:
        raise _BusinessError("param_invalid", f"{name} {value!r} is not yyyy-MM-dd HH:mm:ss") from None


def _whole(query: dict, name: str) -> int:
    value = query.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise _BusinessError("param_invalid", f"{name} must be a positive integer")
    return int(value)


class AliexpressSimulator(Simulator):
    def __init__(
        self,
        app_key: str,
        app_secret: str,
        refresh_token: str,
        book: OrderBook | None = None,
        *,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        token_ttl_seconds: float = TOKEN_TTL_SECONDS,
        clock: Clock = time.monotonic,
    ):
        super().__init__(faults, rate_multiplier=rate_multiplier, clock=clock)
        self.app_key, self.app_secret, self.refresh_token = app_key, app_secret, refresh_token
        self.book = book if book is not None else OrderBook("aliexpress")
        self.book.channel = self.book.channel or "aliexpress"
        self.token_ttl_seconds = token_ttl_seconds
        self.limit = self.new_bucket(RATE, BURST)
        self.on_page: Callable[[int, dict], None] | None = None
        self.list_queries: list[dict] = []  # every accepted OrderQuery, for tests to read
        self._tokens = AccessTokens(clock)
        self._lock = threading.Lock()

    # Tokens ------------------------------------------------------------------------------------

    def issue_token(self) -> str:
        return self._tokens.issue("50000" + secrets.token_hex(24), self.token_ttl_seconds)

    def expire_tokens(self) -> None:
        """Make every issued access token expire now (tests of the refresh path)."""
        self._tokens.expire_all()

    @property
    def refresh_requests(self) -> int:
        return self.stats.count_path(REFRESH_PATH)

    # Plumbing ----------------------------------------------------------------------------------

    def is_api_call(self, request: Request) -> bool:
        return request.path == SYNC_PATH or (self.faults.include_token_endpoint and request.path == REFRESH_PATH)

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":
            return throttled(1)
        return gateway_error("ServiceUnavailable", "The service is temporarily unavailable", "SYSTEM",
                             status=self.faults.server_error())

    @staticmethod
    def _params(request: Request) -> dict[str, str]:
        params = {key: values[0] for key, values in request.query.items()}
        params.update(request.form())
        return params

    def operation(self, request: Request) -> str:
        return self._params(request).get("method") or request.path  # one gateway path, many methods

    def route(self, request: Request) -> tuple[Reply, str]:
        if request.method != "POST" and request.method != "GET":
            return gateway_error("InvalidApiPath", "The specified API path is invalid"), "bad_request"
        params = self._params(request)
        if request.path == REFRESH_PATH:
            return self._refresh(params)
        if request.path != SYNC_PATH:
            return gateway_error("InvalidApiPath", "The specified API path is invalid"), "bad_request"
        refused = self._check_system(params, params.get("method") or "", REQUIRED_SYSTEM)
        if refused is not None:
            return refused
        if not self._tokens.live(params.get("session")):
            return gateway_error("IllegalAccessToken", ILLEGAL_TOKEN), "auth_failed"
        allowed, wait = self.limit.try_take()
        if not allowed:
            return throttled(wait), "rate_limited"
        method = params["method"]
        if method == LIST_METHOD:
            return self._list(params)
        if method == DETAIL_METHOD:
            return self._detail(params)
        return gateway_error("InvalidApiPath", f"The specified API {method} is invalid"), "bad_request"

    def _check_system(self, params: dict, api_name: str, required: tuple[str, ...]) -> tuple[Reply, str] | None:
        for name in required:
            if not params.get(name):
                message = f"The input parameter \u201c{name}\u201d that is mandatory for processing this request is not supplied"
                return gateway_error("MissingParameter", message), "bad_request"
        if params["app_key"] != self.app_key:
            return gateway_error("InvalidAppKey", "The specified App Key is invalid"), "auth_failed"
        if params["sign_method"] != "sha256" or params["sign"] != sign(api_name, params, self.app_secret):
            return gateway_error("IncompleteSignature", SIGNATURE_MESSAGE), "auth_failed"
        try:
            skew = abs(int(params["timestamp"]) - int(time.time() * 1000))
        except ValueError:
            skew = TIMESTAMP_TOLERANCE_MS + 1
        if skew > TIMESTAMP_TOLERANCE_MS:
            return gateway_error("InvalidTimestamp", "The timestamp is invalid or expired"), "bad_request"
        return None

    def _refresh(self, params: dict) -> tuple[Reply, str]:
        refused = self._check_system(params, "/auth/token/refresh", REQUIRED_REFRESH)
        if refused is not None:
            reply, outcome = refused
            error = reply.body["error_response"]  # the /rest protocol answers flat
            return Reply(200, {"type": error["type"], "code": error["code"], "message": error["msg"],
                               "request_id": error["request_id"]}), outcome
        if params.get("refresh_token") != self.refresh_token:
            body = {"type": "ISV", "code": "IllegalRefreshToken",
                    "message": "The specified refresh token is invalid or expired", "request_id": _request_id()}
            return Reply(200, body), "auth_failed"
        body = {"access_token": self.issue_token(), "refresh_token": self.refresh_token,
                "expires_in": max(1, math.ceil(self.token_ttl_seconds)), "refresh_expires_in": REFRESH_TTL_SECONDS,
                "account_platform": "seller_center", "user_id": "2100008076043", "seller_id": "2100008076043",
                "sp": "ae", "code": "0", "request_id": _request_id(), "_trace_id_": uuid.uuid4().hex[:30]}
        return Reply(200, body), "ok"

    # Business APIs -----------------------------------------------------------------------------

    @staticmethod
    def _business_json(params: dict, name: str) -> dict:
        try:
            value = json.loads(params.get(name) or "")
        except ValueError:
            raise _BusinessError("param_invalid", f"{name} is not a JSON object") from None
        if not isinstance(value, dict):
            raise _BusinessError("param_invalid", f"{name} is not a JSON object")
        return value

    def _list(self, params: dict) -> tuple[Reply, str]:
        try:
            query = self._business_json(params, "param0")
            page, size, matching = self._matching(query)
        except _BusinessError as problem:
            result = {"success": False, "error_code": problem.code, "error_message": problem.message,
                      "time_stamp": pacific(datetime.now(timezone.utc))}
            return Reply(200, {"aliexpress_solution_order_get_response": {"result": result},
                               "request_id": _request_id()}), "bad_request"
        with self._lock:
            self.list_queries.append(query)
        chosen = matching[(page - 1) * size: page * size]
        result = {
            "success": True, "error_code": "", "error_message": "", "total_count": len(matching),
            "page_size": size, "current_page": page, "total_page": math.ceil(len(matching) / size),
            "time_stamp": pacific(datetime.now(timezone.utc)),
            "target_list": {"order_dto": [entry.payload["order"] for entry in chosen]},
        }
        reply = Reply(200, {"aliexpress_solution_order_get_response": {"result": result}, "request_id": _request_id()})
        if self.on_page is not None:
            self.on_page(page, query)
        return reply, "ok"

    def _matching(self, query: dict) -> tuple[int, int, list[BookEntry]]:
        size, page = _whole(query, "page_size"), _whole(query, "current_page")
        if not 1 <= size <= MAX_PAGE:
            raise _BusinessError("param_invalid", f"page_size must be between 1 and {MAX_PAGE}")
        if page < 1:
            raise _BusinessError("param_invalid", "current_page must be at least 1")
        start, end = _pacific_time(query, "modified_date_start"), _pacific_time(query, "modified_date_end")
        if end < start:
            raise _BusinessError("param_invalid", "modified_date_end is before modified_date_start")
        if end - start > MAX_SPAN:
            raise _BusinessError("time_range_too_long", f"modified date range exceeds {MAX_SPAN.days} day")
        if end > datetime.now(timezone.utc) - INDEX_DELAY:
            raise _BusinessError("time_range_too_recent", "modified_date_end must be at least 1 minute before now")
        statuses = query.get("order_status_list") or DEFAULT_STATUSES
        if not isinstance(statuses, (list, tuple)) or not all(isinstance(s, str) for s in statuses):
            raise _BusinessError("param_invalid", "order_status_list must be a list of statuses")
        unknown = set(statuses) - set(ALL_STATUSES)
        if unknown:
            raise _BusinessError("param_invalid", f"order_status_list has unknown values {sorted(unknown)}")
        matching = [e for e in self.book.select(start, end) if e.payload["order"].get("order_status") in statuses]
        matching.sort(key=lambda e: (e.updated_at, e.order_id), reverse=True)  # newest change first
        return page, size, matching

    def _detail(self, params: dict) -> tuple[Reply, str]:
        try:
            order_id = str(_whole(self._business_json(params, "param1"), "order_id"))
        except _BusinessError as problem:
            result = {"error_code": problem.code, "error_message": problem.message}
            return Reply(200, {"aliexpress_solution_order_info_get_response": {"result": result},
                               "request_id": _request_id()}), "bad_request"
        entry = self.book.get(order_id)
        if entry is None:
            result = {"error_code": "order_not_found", "error_message": f"order {order_id} not found"}
            return Reply(200, {"aliexpress_solution_order_info_get_response": {"result": result},
                               "request_id": _request_id()}), "bad_request"
        result = {"error_code": "", "error_message": "", "data": entry.payload["detail"]}
        return Reply(200, {"aliexpress_solution_order_info_get_response": {"result": result},
                           "request_id": _request_id()}), "ok"


def launch(shop_id: str, book: OrderBook, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0):
    """A started simulator for one seller and the credentials secret our adapter needs for it."""
    app_key, app_secret, refresh_token = f"5{next_id() % 10**6:06d}", f"secret-{shop_id}", f"50001{secrets.token_hex(16)}"
    simulator = AliexpressSimulator(app_key, app_secret, refresh_token, book, faults=faults,
                                    rate_multiplier=rate_multiplier).start()
    credentials = {
        "app_key": app_key, "app_secret": app_secret, "access_token": simulator.issue_token(),
        "refresh_token": refresh_token, "endpoint": simulator.url + SYNC_PATH,
        "auth_endpoint": simulator.url + "/rest",
        # The app's flow control as the console shows it: exactly what this gateway enforces.
        "calls_per_second": simulator.limit.rate, "burst": simulator.limit.burst,
    }
    return simulator, credentials
