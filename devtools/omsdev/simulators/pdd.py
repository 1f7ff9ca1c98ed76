"""Pinduoduo POP simulator: the `/api/router` gateway for one shop's increment list and token refresh.

Enforces what the real gateway does (facts and sources: oms/adapters/channels/pdd.py docstring):
- every call is a POST (GET with a query string is accepted too, as PDD does) to `/api/router`
  with `type`, `client_id`, `timestamp` (Unix seconds, within 10 minutes of the platform's clock)
  and `sign` = UPPER(MD5(secret + sorted key+value + secret)); a bad sign is HTTP 200
  `error_response` 20004 "签名验证失败";
- `pdd.order.number.list.increment.get` needs a live `access_token` (expired: 10019
  "access_token已过期"); `start_updated_at` / `end_updated_at` epoch seconds with
  end - start <= 30 min; `page` >= 1, `page_size` 1..100; this simulator also refuses an end
  later than its now - 3 min, where PDD only warns that orders may be missed;
- orders are served live from the OrderBook, ascending by (updated_at, order_sn), so an order
  updated during a poll really moves between pages; `total_count` and `has_next` (without
  `total_count` when `use_has_next=true`);
- `pdd.pop.auth.token.refresh` (signed, `refresh_token`) issues a new access token valid
  `token_ttl_seconds` on the injectable clock and rotates the refresh token;
- rate limit 3000 calls / 60 s per shop as a token bucket (rate 50/s, burst 3000, both times
  `rate_multiplier`); over it HTTP 200 `error_response` 70031 "调用过于频繁，请调整调用频率".
  Injected 429 faults answer 52101 "当前接口被限流，请稍后重试" with HTTP 200; 5xx faults a
  gateway 5xx with 52103 in the body.
Codes not confirmed in public material (marked in the adapter docstring): 10000 for a missing or
invalid parameter, a stale timestamp or an unknown access token.

`on_page(params)` runs before each list page is served, so a test can change orders between pages.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from oms.adapters.channels.signing import signatures_match, top_sign

from omsdev.simulators.base import (
    AccessTokens,
    Clock,
    FaultPlan,
    Reply,
    Request,
    Simulator,
    TokenBucket,
)
from omsdev.simulators.orderbook import BookEntry, OrderBook
from omsdev.simulators.scenario import OrderGenerator, next_id

ROUTER_PATH = "/api/router"
INCREMENT_API = "pdd.order.number.list.increment.get"
REFRESH_API = "pdd.pop.auth.token.refresh"
MAX_SPAN_SECONDS = 30 * 60
LAG_SECONDS = 3 * 60
MAX_PAGE = 100
TIMESTAMP_TOLERANCE_SECONDS = 600
RATE, BURST = 3000 / 60, 3000  # per shop
CHINA = timezone(timedelta(hours=8))
_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"

THROTTLED = (70031, "调用过于频繁，请调整调用频率")
INTERFACE_THROTTLED = (52101, "当前接口被限流，请稍后重试")
SERVICE_UNAVAILABLE = (52103, "服务暂时不可用，请稍后重试")
BAD_SIGN = (20004, "签名验证失败")
TOKEN_EXPIRED = (10019, "access_token已过期")
BAD_PARAMETER = (10000, "参数错误")


def _error(code_and_message: tuple[int, str], sub_msg: str | None = None, status: int = 200) -> Reply:
    code, message = code_and_message
    body = {"error_code": code, "error_msg": message, "sub_code": str(code), "sub_msg": sub_msg or message,
            "request_id": uuid.uuid4().hex}
    return Reply(status, {"error_response": body})


class _BadParameter(Exception):
    pass


def _integer(params: dict, name: str, *, default: int | None = None) -> int:
    value = params.get(name)
    if value in (None, ""):
        if default is None:
            raise _BadParameter(f"{name} is required")
        return default
    try:
        return int(value)
    except ValueError:
        raise _BadParameter(f"{name} must be an integer, got {value!r}") from None


def _china(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime(_LOCAL_FORMAT)


# goods id, sku id, merchant goods code, merchant sku code, name, spec, price (yuan)
_CATALOGUE = [
    (600123456789, 1300987654321, "PDD-MUG-01", "PDD-MUG-01-WHT", "陶瓷马克杯 大容量 带盖勺", "白色,400ml", 39.9),
    (600123457012, 1300987659999, "PDD-TEA-02", "PDD-TEA-02-250G", "西湖龙井 明前特级 罐装", "250g", 90.0),
    (600123459876, 1300987661234, "PDD-TWL-03", "PDD-TWL-03-BLU", "纯棉毛巾 3条装", "蓝色", 49.9),
    (600123460001, 1300987670001, "PDD-PEN-04", "PDD-PEN-04-10P", "中性笔 0.5mm 10支装", "黑色", 12.9),
]
# province, province id, city, city id, district, district id, street (masked), receiver (masked), phone (masked)
_PLACES = [
    ("浙江省", 12, "杭州市", 151, "西湖区", 1310, "文一西路***号", "王**", "138****5678"),
    ("四川省", 23, "成都市", 269, "武侯区", 2901, "天府大道***号", "陈*", "159****0021"),
    ("黑龙江省", 9, "哈尔滨市", 108, "南岗区", 1102, "西大直街***号", "赵**", "187****3366"),
    ("广东省", 6, "深圳市", 77, "南山区", 700, "科苑路***号", "李*", "136****8800"),
]


def _cipher(prefix: str, rng) -> str:
    return f"~{prefix}{rng.getrandbits(96):024x}=~0~"


class PddOrders(OrderGenerator):
    """`order_sn_list` elements of pdd.order.number.list.increment.get, as the synthetic file has them."""

    channel = "pdd"
    malformations = ("goods_count_text", "goods_price_text", "order_status_unknown")

    def build(self, moment: datetime, *, malformed: str | None = None) -> tuple[str, dict]:
        order_sn = f"{moment.astimezone(CHINA):%y%m%d}-{next_id() % 10**15:015d}"
        items = []
        for goods_id, sku_id, goods_code, sku_code, name, spec, price in self.rng.sample(_CATALOGUE, self.rng.choice((1, 1, 2))):
            items.append({"goods_id": goods_id, "sku_id": sku_id, "outer_goods_id": goods_code, "outer_id": sku_code,
                          "goods_name": name, "goods_price": price, "goods_spec": spec,
                          "goods_count": self.rng.randint(1, 3), "goods_img": "https://img.pddpic.com/placeholder.jpeg"})
        goods = round(sum(item["goods_price"] * item["goods_count"] for item in items), 2)
        discount = float(self.rng.choice((0, 2, 5)))
        province, province_id, city, city_id, town, town_id, street, name_mask, phone_mask = self.rng.choice(_PLACES)
        stamp = _china(moment)
        if malformed == "goods_count_text":  # what broken upstream data looks like
            items[0]["goods_count"] = "两件"
        elif malformed == "goods_price_text":
            items[0]["goods_price"] = "N/A"
        payload = {
            "order_sn": order_sn, "order_status": 1, "refund_status": 1, "after_sales_status": 0,
            "confirm_status": 1, "group_status": 1, "trade_type": 0, "is_lucky_flag": 1, "risk_control_status": 0,
            "created_time": stamp, "confirm_time": stamp, "pay_time": stamp, "updated_at": stamp,
            "last_ship_time": _china(moment + timedelta(hours=48)), "shipping_time": "", "receive_time": "",
            "pay_type": self.rng.choice(("WEIXIN", "ALIPAY")), "pay_no": f"4200{next_id():020d}",
            "goods_amount": goods, "discount_amount": discount, "platform_discount": discount,
            "seller_discount": 0.0, "capital_free_discount": 0.0, "postage": 0.0,
            "pay_amount": round(goods - discount, 2), "order_change_amount": 0.0,
            "country": "中国", "country_id": 1, "province": province, "province_id": province_id,
            "city": city, "city_id": city_id, "town": town, "town_id": town_id,
            "receiver_name": _cipher("AgAAAAJn", self.rng), "receiver_name_mask": name_mask,
            "receiver_phone": f"${phone_mask[:3]}${self.rng.getrandbits(64):016x}$0$", "receiver_phone_mask": phone_mask,
            "receiver_address": _cipher("AgAAAAJa", self.rng), "receiver_address_mask": street,
            "address": _cipher("AgAAAAJf", self.rng), "address_mask": f"{province}{city}{town}{street}",
            "open_address_id": f"{self.rng.getrandbits(80):020x}", "buyer_memo": "", "remark": "",
            "tracking_number": "", "logistics_id": 0, "item_list": items,
        }
        if malformed == "order_status_unknown":  # a status value outside PDD's enum
            payload["order_status"] = 9
        return order_sn, payload

    @staticmethod
    def _cleared(payload: dict) -> dict:
        """Past awaiting-shipment PDD stops returning receiver ciphertext; the masks stay."""
        return {**payload, "receiver_name": "", "receiver_phone": "", "receiver_address": "", "address": ""}

    def touch(self, order_id: str, moment: datetime) -> datetime:
        """A new version with only `updated_at` changed (e.g. the seller edited the remark)."""
        return self._rewrite(order_id, moment, lambda entry, at: {**entry.payload, "updated_at": _china(at)})

    def ship(self, order_id: str, moment: datetime) -> datetime:
        def shipped(entry: BookEntry, at: datetime) -> dict:
            stamp = _china(at)
            return {**self._cleared(entry.payload), "order_status": 2, "shipping_time": stamp, "updated_at": stamp,
                    "tracking_number": f"YT{next_id() % 10**13:013d}", "logistics_id": 85}

        return self._rewrite(order_id, moment, shipped)

    def cancel(self, order_id: str, moment: datetime) -> datetime:
        """A paid PDD order is cancelled by a full refund before shipment (refund_status 4)."""
        def refunded(entry: BookEntry, at: datetime) -> dict:
            return {**self._cleared(entry.payload), "refund_status": 4, "after_sales_status": 10,
                    "updated_at": _china(at), "remark": "买家申请退款"}

        return self._rewrite(order_id, moment, refunded, cancel=True)


ORDER_GENERATOR = PddOrders


class PddSimulator(Simulator):
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        book: OrderBook | None = None,
        *,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        token_ttl_seconds: float = 86400,
        clock: Clock = time.monotonic,
        on_page: Callable[[dict], None] | None = None,
    ):
        super().__init__(faults, rate_multiplier=rate_multiplier, clock=clock)
        self.client_id, self.client_secret = client_id, client_secret
        self.book = book if book is not None else OrderBook("pdd")
        self.book.channel = self.book.channel or "pdd"
        self.token_ttl_seconds = token_ttl_seconds
        # A test may swap in a tighter bucket (new_bucket) to meet the limit with a small backlog.
        self.limit: TokenBucket = TokenBucket(RATE, max(1.0, BURST * rate_multiplier),
                                              rate_multiplier=rate_multiplier, clock=clock)
        self.on_page = on_page
        self.list_requests: list[dict] = []  # every served list call: start, end, page, page_size
        self._tokens = AccessTokens(clock)
        self._refresh_tokens: set[str] = set()
        self._refreshes = 0
        self._lock = threading.Lock()

    # Tokens ----------------------------------------------------------------------------------

    def issue_tokens(self) -> tuple[str, str]:
        """A fresh (access token, refresh token) pair, as the authorization flow would hand out."""
        access = self._tokens.issue(secrets.token_hex(16), self.token_ttl_seconds)
        refresh = secrets.token_hex(16)
        with self._lock:
            self._refresh_tokens.add(refresh)
        return access, refresh

    def expire_tokens(self) -> None:
        """Every issued access token expires now (tests of the refresh path)."""
        self._tokens.expire_all()

    @property
    def refreshes(self) -> int:
        """Token refresh calls answered with a new token."""
        with self._lock:
            return self._refreshes

    def _token_problem(self, token: str | None) -> Reply | None:
        state = self._tokens.state(token)
        if state == "unknown":
            return _error(BAD_PARAMETER, "access_token不存在或无效")
        if state == "expired":
            return _error(TOKEN_EXPIRED)
        return None

    # Plumbing --------------------------------------------------------------------------------

    @staticmethod
    def _params(request: Request) -> dict[str, str]:
        params = {key: values[0] for key, values in request.query.items()}
        params.update(request.form())
        return params

    def is_api_call(self, request: Request) -> bool:
        is_refresh = self._params(request).get("type") == REFRESH_API
        return request.path == ROUTER_PATH and (not is_refresh or self.faults.include_token_endpoint)

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":  # PDD throttles inside an HTTP 200 body
            return _error(INTERFACE_THROTTLED)
        return _error(SERVICE_UNAVAILABLE, status=self.faults.server_error())

    def operation(self, request: Request) -> str:
        return self._params(request).get("type") or request.path  # one gateway path, many methods

    def route(self, request: Request) -> tuple[Reply, str]:
        if request.path != ROUTER_PATH or request.method not in ("POST", "GET"):
            return Reply(404, {"error_response": {"error_code": 404, "error_msg": "not found"}}), "bad_request"
        params = self._params(request)
        problem = self._system_problem(params)
        if problem is not None:
            return problem
        if params["type"] == REFRESH_API:
            return self._refresh(params)
        if params["type"] != INCREMENT_API:
            return _error(BAD_PARAMETER, f"type {params['type']} is not served by this simulator"), "bad_request"
        denied = self._token_problem(params.get("access_token"))
        if denied is not None:
            return denied, "auth_failed"
        allowed, _wait = self.limit.try_take()
        if not allowed:
            return _error(THROTTLED), "rate_limited"
        try:
            return self._increment(params), "ok"
        except _BadParameter as problem_:
            return _error(BAD_PARAMETER, str(problem_)), "bad_request"

    def _system_problem(self, params: dict) -> tuple[Reply, str] | None:
        missing = [name for name in ("type", "client_id", "timestamp", "sign") if not params.get(name)]
        if missing:
            return _error(BAD_PARAMETER, f"missing system parameters: {', '.join(missing)}"), "bad_request"
        if params["client_id"] != self.client_id:
            return _error(BAD_PARAMETER, "client_id不存在"), "auth_failed"
        expected = top_sign({k: v for k, v in params.items() if k != "sign"}, self.client_secret)
        if not signatures_match(expected, params["sign"]):
            return _error(BAD_SIGN), "auth_failed"
        try:
            stamp = int(params["timestamp"])
        except ValueError:
            return _error(BAD_PARAMETER, "timestamp must be Unix seconds"), "bad_request"
        if abs(time.time() - stamp) > TIMESTAMP_TOLERANCE_SECONDS:
            return _error(BAD_PARAMETER, "timestamp differs from PDD time by more than 10 minutes"), "bad_request"
        return None

    # pdd.pop.auth.token.refresh --------------------------------------------------------------

    def _refresh(self, params: dict) -> tuple[Reply, str]:
        refresh_token = params.get("refresh_token")
        with self._lock:
            known = refresh_token in self._refresh_tokens
            if known:
                self._refresh_tokens.discard(refresh_token)
                self._refreshes += 1
        if not known:
            return _error(BAD_PARAMETER, "refresh_token无效"), "auth_failed"
        access, refresh = self.issue_tokens()
        ttl = max(1, math.ceil(self.token_ttl_seconds))
        now = int(time.time())
        body = {"access_token": access, "expires_in": ttl, "expires_at": now + ttl, "refresh_token": refresh,
                "refresh_token_expires_in": 30 * 86400, "refresh_token_expires_at": now + 30 * 86400,
                "owner_id": self.client_id, "owner_name": "simulated shop", "scope": [INCREMENT_API]}
        return Reply(200, {"pop_auth_token_refresh_response": body}), "ok"

    # pdd.order.number.list.increment.get -----------------------------------------------------

    def _increment(self, params: dict) -> Reply:
        start, end = _integer(params, "start_updated_at"), _integer(params, "end_updated_at")
        if end < start:
            raise _BadParameter("end_updated_at must not be earlier than start_updated_at")
        if end - start > MAX_SPAN_SECONDS:
            raise _BadParameter("开始时间结束时间间距不超过 30 分钟 (end_updated_at - start_updated_at <= 30 min)")
        if end > time.time() - LAG_SECONDS:
            raise _BadParameter("end_updated_at must be at least 3 minutes before PDD's time")
        page, size = _integer(params, "page", default=1), _integer(params, "page_size", default=MAX_PAGE)
        if page < 1 or not 1 <= size <= MAX_PAGE:
            raise _BadParameter("page starts at 1 and page_size is at most 100")
        order_status = _integer(params, "order_status")
        refund_status = _integer(params, "refund_status")
        if order_status not in (1, 2, 3, 5) or refund_status not in (1, 2, 3, 4, 5):
            raise _BadParameter("order_status is 1, 2, 3 or 5 and refund_status 1 to 5")
        if _integer(params, "is_lucky_flag", default=0) not in (0, 1, 2):
            raise _BadParameter("is_lucky_flag is 0, 1 or 2")
        self.list_requests.append({"start": start, "end": end, "page": page, "page_size": size})
        if self.on_page is not None:
            self.on_page(params)
        matching = [
            e for e in self.book.select(datetime.fromtimestamp(start, timezone.utc), datetime.fromtimestamp(end, timezone.utc))
            if (order_status == 5 or e.payload.get("order_status") == order_status)
            and (refund_status == 5 or e.payload.get("refund_status") == refund_status)
        ]
        served = matching[(page - 1) * size : page * size]
        body: dict = {"has_next": page * size < len(matching), "order_sn_list": [e.payload for e in served]}
        if params.get("use_has_next", "").lower() != "true":
            body["total_count"] = len(matching)
        return Reply(200, {"order_sn_increment_get_response": body})

    def windows_over_maximum(self) -> list[dict]:
        """Served list calls whose window exceeded 30 minutes (the gateway refuses them: always [])."""
        return [r for r in self.list_requests if r["end"] - r["start"] > MAX_SPAN_SECONDS]


def launch(shop_id: str, book: OrderBook, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0):
    """A started simulator for one shop and the credentials secret our adapter needs for it."""
    client_id = f"{uuid.uuid4().hex}"
    simulator = PddSimulator(client_id, secrets.token_hex(20), book, faults=faults,
                             rate_multiplier=rate_multiplier).start()
    access_token, refresh_token = simulator.issue_tokens()
    # The shop's quota as the console shows it: exactly what this gateway enforces.
    credentials = {"client_id": client_id, "client_secret": simulator.client_secret, "access_token": access_token,
                   "refresh_token": refresh_token, "endpoint": simulator.url + ROUTER_PATH,
                   "calls_per_second": simulator.limit.rate, "burst": simulator.limit.burst}
    return simulator, credentials
