"""Douyin Shop (抖店) simulator: order.searchList and token.refresh for one shop.

Enforces what the real open platform does (facts and sources: oms/adapters/channels/douyin.py):
- every call is a POST to `/{method with "." -> "/"}` with the system parameters in the query
  (`app_key`, `method`, `timestamp`, `v=2`, `sign_method=hmac-sha256`, `sign`, and
  `access_token` for business APIs) and `param_json` as the body; answers are HTTP 200 envelopes
  {code, msg, sub_code, sub_msg, log_id, data}, success code 10000;
- missing system parameters -> 40001 (isv.signature-missing / isv.app-id-missing /
  isv.access-token-missing); an unknown app key -> 40003 isv.app-id-invalid; a wrong sign (HMAC-
  SHA256 over the body text exactly as sent) -> 40003 isv.signature-invalid "签名校验失败"; a
  timestamp (epoch seconds, or GMT+8 `yyyy-MM-dd HH:mm:ss`) more than 10 minutes off -> 40003
  isv.timestamp-invalid; a body that is not a JSON object -> 40003 isv.parameter-format-invalid;
- access tokens live `token_ttl_seconds` (7 days by default) on the injectable clock: expired ->
  40003 isv.access-token-expired "access_token已过期", unknown -> isv.access-token-no-existed;
  `token.refresh` (signed, no access token, {grant_type: refresh_token, refresh_token}) issues a
  new pair and rotates the refresh token (unknown -> 50001 dop.token-generate-failed:token-invalid);
- order.searchList: `update_time_start` required (40004 isv.parameter-invalid:20011), `page` >= 0
  (:10035), `size` 1..100 (:20008), paging no deeper than 50,000 (:20013), nothing older than 90
  days (:20022); and, as this project's assumption where Douyin publishes no rule, a window of at
  most one day and no end in the future (isv.parameter-invalid). Orders are served live from the
  OrderBook sorted by update_time (or create_time), ascending when `order_asc` is true, else
  descending (the platform's default), so an order updated during a poll really moves between pages;
- rate limit: a token bucket of 20 calls/s, burst 20 (times `rate_multiplier`; Douyin's real quota
  is set per app in its console); over it 60000 "触发限流，请稍后重试" isp.traffic-limited. Injected
  429 faults answer that envelope with HTTP 200, 5xx faults a 503 with 20000 isp.service-error.

Orders of a buyer the scenario chooses (`for_buyer`, the serial returner of a fraud ring) carry the
receiver in plain text, as Douyin's documentation sample does, so an SMS code can reach the buyer; a
`refund` is a return after shipment (退货退款) whose refund succeeded on every line.

`on_page(params)` runs before each list page is served, so a test can change orders between pages;
`list_requests` records every served list call (start, end, page, size).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from oms.adapters.channels.signing import douyin_sign, signatures_match

from omsdev.simulators.base import (
    AccessTokens,
    Clock,
    FaultPlan,
    Reply,
    Request,
    Simulator,
    TokenBucket,
)
from omsdev.simulators.orderbook import (
    BookEntry,
    OrderBook,
    by_created_at,
    by_updated_at,
)
from omsdev.simulators.scenario import OrderGenerator, Persona, next_id

SEARCH_PATH, REFRESH_PATH = "/order/searchList", "/token/refresh"
SEARCH_METHOD, REFRESH_METHOD = "order.searchList", "token.refresh"
MAX_SPAN_SECONDS = 86400  # our assumption: no published maximum (see the adapter docstring)
MAX_PAGE, MAX_DEPTH = 100, 50_000
HISTORY_DAYS = 90
TIMESTAMP_TOLERANCE_SECONDS = 600
RATE, BURST = 20.0, 20
CHINA = timezone(timedelta(hours=8))
_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"

THROTTLED = (60000, "触发限流，请稍后重试", "isp.traffic-limited", "请求过于频繁")
SERVICE_ERROR = (20000, "服务不可用", "isp.service-error", "系统繁忙，请稍后重试")
API_OFF = (70000, "接口服务已下线", "isp.api-service-off", "API不存在或API已下线")
MISSING = 40001, "缺少必选参数"
ILLEGAL = 40003, "非法的参数"
BAD_PARAMETER = 40004, "非法的参数"
MISSING_BUSINESS = 40002, "缺少必选参数"
TOKEN_FAILED = 50001, "平台处理失败"


def _error(code_and_msg: tuple, sub_code: str, sub_msg: str, status: int = 200) -> Reply:
    code, msg = code_and_msg[:2]
    return Reply(status, {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg,
                          "log_id": uuid.uuid4().hex, "data": None})


def _fixed_error(error: tuple, status: int = 200) -> Reply:
    code, msg, sub_code, sub_msg = error
    return _error((code, msg), sub_code, sub_msg, status)


def _success(data: dict) -> Reply:
    return Reply(200, {"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "",
                       "log_id": uuid.uuid4().hex, "data": data})


class _Refused(Exception):
    def __init__(self, reply: Reply, outcome: str = "bad_request"):
        super().__init__(reply.body)
        self.reply, self.outcome = reply, outcome


def _parameter(sub: str, message: str) -> _Refused:
    return _Refused(_error(BAD_PARAMETER, f"isv.parameter-invalid{sub}", message))


def _integer(params: dict, name: str, *, required_sub: str | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required_sub is not None:
            raise _parameter(required_sub, f"{name}不能为空")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _parameter("", f"{name}必须是整数")
    try:
        return int(value)
    except ValueError:
        raise _parameter("", f"{name}必须是整数") from None


def _stamp(moment: datetime) -> int:
    return int(moment.timestamp())


# product id, sku id, merchant sku code, name, spec name, spec value, unit price (fen)
_CATALOGUE = [
    (3614789012345678901, 1765432109876, "HG-DL-500", "牛油火锅底料 500g", "口味", "特辣", 3990),
    (3614789012345679999, 1765432109999, "HG-ZL-300", "火锅蘸料 300g", "口味", "香油", 1220),
    (3614789012345680123, 1765432110123, "HG-FZ-200", "冻豆腐 200g", "规格", "两袋装", 890),
    (3614789012345680456, 1765432110456, "HG-MJ-480", "芝麻酱 480g", "规格", "罐装", 1590),
]
# (province, id), (city, id), (district, id), (street, id), masked detail, masked name, masked phone
_PLACES = [
    (("重庆市", "50"), ("重庆市", "500100"), ("渝中区", "500103"), ("解放碑街道", "500103001"), "民族路***号", "周*", "1*********8"),
    (("湖北省", "42"), ("武汉市", "420100"), ("洪山区", "420111"), ("珞南街道", "420111002"), "珞喻路***号", "吴**", "1*********1"),
    (("广西壮族自治区", "45"), ("南宁市", "450100"), ("青秀区", "450103"), ("新竹街道", "450103004"), "民族大道***号", "欧阳**", "1*********6"),
    (("北京市", "11"), ("北京市", "110100"), ("海淀区", "110108"), ("中关村街道", "110108010"), "丹棱街***号", "张*", "1*********9"),
]


def _region(pair: tuple[str, str]) -> dict:
    return {"name": pair[0], "id": pair[1]}


class DouyinOrders(OrderGenerator):
    """`shop_order_list` elements of order.searchList, as the synthetic file has them."""

    channel = "douyin"
    malformations = ("item_num_text", "origin_amount_text", "order_status_unknown")

    def _cipher(self, wrap: str, version: int = 4) -> str:
        body = secrets.token_urlsafe(24)
        return f"{wrap}{body}{wrap}{version}{wrap}"

    def build(self, moment: datetime, *, malformed: str | None = None) -> tuple[str, dict]:
        order_id = f"69{next_id() % 10**16:016d}0"  # 19 digits; sub-orders take the next numbers
        stamp = _stamp(moment)
        lines = []
        chosen = self.rng.sample(_CATALOGUE, self.rng.choice((1, 1, 2, 3)))
        for index, (product_id, sku_id, code, name, spec_name, spec_value, price) in enumerate(chosen, start=1):
            count = self.rng.randint(1, 3)
            lines.append({
                "order_id": str(int(order_id) + index), "parent_order_id": order_id, "order_level": 3,
                "order_status": 2, "order_status_desc": "备货中", "product_id": product_id, "sku_id": sku_id,
                "out_sku_id": code, "code": code, "product_name": name,
                "spec": [{"name": spec_name, "value": spec_value}], "item_num": count, "origin_amount": price,
                "sum_amount": price * count, "order_amount": price * count, "pay_amount": price * count,
                "create_time": stamp, "update_time": stamp, "pay_time": stamp,
                "after_sale_info": {"after_sale_status": 0, "after_sale_type": 0, "refund_status": 0},
            })
        goods = sum(line["order_amount"] for line in lines)
        promotion = self.rng.choice((0, 0, 300, 1000)) if goods > 1000 else 0
        if promotion:  # the shop's coupon comes off the first line
            lines[0]["pay_amount"] -= promotion
        province, city, town, street, detail_mask, name_mask, phone_mask = self.rng.choice(_PLACES)
        region = {"province": _region(province), "city": _region(city), "town": _region(town),
                  "street": _region(street)}
        if malformed == "item_num_text":  # what broken upstream data looks like
            lines[0]["item_num"] = "两件"
        elif malformed == "origin_amount_text":
            lines[0]["origin_amount"] = "39.90"
        payload = {
            "shop_id": 88812345, "shop_name": "山城火锅底料官方旗舰店", "order_id": order_id, "order_level": 2,
            "order_status": 2, "order_status_desc": "备货中", "main_status": 2, "main_status_desc": "备货中",
            "create_time": stamp, "pay_time": stamp, "update_time": stamp, "finish_time": 0,
            "order_expire_time": 1800, "pay_type": self.rng.choice((1, 2)), "b_type": 2, "b_type_desc": "抖音",
            "trade_type": 0, "order_type": 0, "order_amount": goods, "pay_amount": goods - promotion,
            "post_amount": 0, "promotion_amount": promotion, "promotion_shop_amount": promotion,
            "promotion_platform_amount": 0, "buyer_words": "", "seller_words": "",
            "doudian_open_id": f"#{secrets.token_urlsafe(36)}=",
            "post_receiver": "", "encrypt_post_receiver": self._cipher("#"), "mask_post_receiver": name_mask,
            "post_tel": "", "encrypt_post_tel": f"$1{self.rng.randint(30, 99)}${secrets.token_urlsafe(16)}$4$",
            "mask_post_tel": phone_mask,
            "post_addr": {**region, "detail": "", "encrypt_detail": self._cipher("##")},
            "mask_post_addr": {**region, "detail": detail_mask},
            "logistics_info": [], "sku_order_list": lines,
        }
        if malformed == "order_status_unknown":  # a value outside Douyin's enum
            payload["order_status"] = 9
        return order_id, payload

    @staticmethod
    def _restamped(payload: dict, at: datetime, **changes) -> dict:
        stamp = _stamp(at)
        line_changes = changes.pop("line_changes", {})
        lines = [{**line, "update_time": stamp, **line_changes} for line in payload["sku_order_list"]]
        return {**payload, "update_time": stamp, "sku_order_list": lines, **changes}

    def touch(self, order_id: str, moment: datetime) -> datetime:
        """A new version with only `update_time` changed (e.g. the seller edited the remark)."""
        return self._rewrite(order_id, moment, lambda entry, at: self._restamped(entry.payload, at))

    @classmethod
    def _shipped(cls, payload: dict, at: datetime, **line_changes) -> dict:
        stamp = _stamp(at)
        tracking = f"SF{next_id() % 10**13:013d}"
        return cls._restamped(payload, at, order_status=3, order_status_desc="已发货", main_status=3,
                              main_status_desc="已发货", ship_time=stamp,
                              logistics_info=[{"tracking_no": tracking, "company": "shunfeng",
                                               "company_name": "顺丰速运", "ship_time": stamp}],
                              line_changes={"order_status": 3, "order_status_desc": "已发货", **line_changes})

    def ship(self, order_id: str, moment: datetime) -> datetime:
        return self._rewrite(order_id, moment, lambda entry, at: self._shipped(entry.payload, at))

    def for_buyer(self, payload: dict, buyer: Persona) -> dict:
        """The buyer's own open id (the same for each of their orders) and a plain-text receiver."""
        digest = hashlib.sha256(f"douyin-buyer-{buyer.account}".encode()).digest()
        place = next((p for p in _PLACES if p[0][0] == buyer.province and p[2][0] == buyer.district), None)
        region = {"province": {"name": buyer.province, "id": place[0][1] if place else ""},
                  "city": {"name": buyer.city, "id": place[1][1] if place else ""},
                  "town": {"name": buyer.district, "id": place[2][1] if place else ""},
                  "street": _region(place[3]) if place else {"name": "", "id": ""}}
        phone = buyer.phone
        return {**payload, "doudian_open_id": f"#{base64.urlsafe_b64encode(digest).decode().rstrip('=')}=",
                "post_receiver": buyer.name, "encrypt_post_receiver": "", "mask_post_receiver": buyer.name[:1] + "*",
                "post_tel": phone, "encrypt_post_tel": "", "mask_post_tel": f"{phone[:1]}{'*' * (len(phone) - 2)}{phone[-1:]}",
                "post_addr": {**region, "detail": buyer.line, "encrypt_detail": ""},
                "mask_post_addr": {**region, "detail": buyer.line[:3] + "***"}}

    def refund(self, order_id: str, moment: datetime) -> datetime:
        """The goods went out and came back: shipped, and every line's return refunded (退货退款, refund_status 3)."""
        refund = {"after_sale_status": 12, "after_sale_type": 0, "refund_status": 3}
        return self._rewrite(order_id, moment, lambda entry, at: self._shipped(entry.payload, at, after_sale_info=refund),
                             cancel=True)

    def cancel(self, order_id: str, moment: datetime) -> datetime:
        """A paid Douyin order is cancelled by a refund before shipment (仅退款, refund_status 3)."""
        def refunded(entry: BookEntry, at: datetime) -> dict:
            refund = {"after_sale_status": 12, "after_sale_type": 2, "refund_status": 3}
            return self._restamped(entry.payload, at, order_status=4, order_status_desc="已取消", main_status=21,
                                   main_status_desc="已关闭", finish_time=_stamp(at),
                                   cancel_reason="买家申请退款（未发货仅退款）",
                                   line_changes={"order_status": 4, "order_status_desc": "已取消",
                                                 "after_sale_info": refund})

        return self._rewrite(order_id, moment, refunded, cancel=True)


ORDER_GENERATOR = DouyinOrders


class DouyinSimulator(Simulator):
    def __init__(
        self,
        app_key: str,
        app_secret: str,
        book: OrderBook | None = None,
        *,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        token_ttl_seconds: float = 7 * 86400,
        clock: Clock = time.monotonic,
        on_page: Callable[[dict], None] | None = None,
    ):
        super().__init__(faults, rate_multiplier=rate_multiplier, clock=clock)
        self.app_key, self.app_secret = app_key, app_secret
        self.book = book if book is not None else OrderBook("douyin")
        self.book.channel = self.book.channel or "douyin"
        self.token_ttl_seconds = token_ttl_seconds
        # A test may swap in a tighter bucket (new_bucket) to meet the limit with a small backlog.
        self.limit: TokenBucket = self.new_bucket(RATE, BURST)
        self.on_page = on_page
        self.list_requests: list[dict] = []
        self._tokens = AccessTokens(clock)
        self._refresh_tokens: set[str] = set()
        self._refreshes = 0
        self._lock = threading.Lock()

    # Tokens ----------------------------------------------------------------------------------

    def issue_tokens(self) -> tuple[str, str]:
        """A fresh (access token, refresh token) pair, as the authorization flow hands out."""
        access = self._tokens.issue(str(uuid.uuid4()), self.token_ttl_seconds)
        refresh = str(uuid.uuid4())
        with self._lock:
            self._refresh_tokens.add(refresh)
        return access, refresh

    def expire_tokens(self) -> None:
        """Every issued access token expires now (tests of the refresh path)."""
        self._tokens.expire_all()

    @property
    def refreshes(self) -> int:
        with self._lock:
            return self._refreshes

    def _token_problem(self, token: str | None) -> Reply | None:
        state = self._tokens.state(token)
        if state == "unknown":
            return _error(ILLEGAL, "isv.access-token-no-existed", "access_token不存在，请使用最新的access_token访问")
        if state == "expired":
            return _error(ILLEGAL, "isv.access-token-expired", "access_token已过期")
        return None

    # Plumbing --------------------------------------------------------------------------------

    def is_api_call(self, request: Request) -> bool:
        return request.path == SEARCH_PATH or (request.path == REFRESH_PATH and self.faults.include_token_endpoint)

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":  # Douyin throttles inside an HTTP 200 envelope
            return _fixed_error(THROTTLED)
        return _fixed_error(SERVICE_ERROR, status=self.faults.server_error())

    def route(self, request: Request) -> tuple[Reply, str]:
        methods = {SEARCH_PATH: SEARCH_METHOD, REFRESH_PATH: REFRESH_METHOD}
        if request.method != "POST" or request.path not in methods:
            return _fixed_error(API_OFF), "bad_request"
        try:
            params = self._verified(request, methods[request.path])
            if request.path == REFRESH_PATH:
                return self._refresh(params)
            denied = self._token_problem(request.param("access_token"))
            if denied is not None:
                return denied, "auth_failed"
            allowed, _wait = self.limit.try_take()
            if not allowed:
                return _fixed_error(THROTTLED), "rate_limited"
            return self._search(params), "ok"
        except _Refused as refused:
            return refused.reply, refused.outcome

    def _verified(self, request: Request, method: str) -> dict:
        """The business parameters of a correctly signed, fresh call; raises _Refused otherwise."""
        if not request.param("sign"):
            raise _Refused(_error(MISSING, "isv.signature-missing", "获取签名失败，请根据文档确保参数拼装正确"))
        if not request.param("app_key"):
            raise _Refused(_error(MISSING, "isv.app-id-missing", "认证失败，app_key不存在"), "auth_failed")
        if method == SEARCH_METHOD and not request.param("access_token"):
            raise _Refused(_error(MISSING, "isv.access-token-missing", "认证失败，access_token不能为空"), "auth_failed")
        if request.param("method") != method or request.param("v") != "2" or not request.param("timestamp"):
            raise _Refused(_error(ILLEGAL, "isv.parameter-invalid", "method / v / timestamp 缺失或与路径不符"))
        if request.param("app_key") != self.app_key:
            raise _Refused(_error(ILLEGAL, "isv.app-id-invalid", "认证失败，app_key格式不正确"), "auth_failed")
        if (request.param("sign_method") or "md5") != "hmac-sha256":
            raise _Refused(_error(ILLEGAL, "isv.signature-invalid", "签名校验失败 (sign_method must be hmac-sha256)"),
                           "auth_failed")
        param_json = request.body.decode("utf-8", "replace") or request.param("param_json") or "{}"
        expected = douyin_sign(app_key=self.app_key, secret=self.app_secret, method=method, param_json=param_json,
                               timestamp=request.param("timestamp"))
        if not signatures_match(expected, request.param("sign")):
            raise _Refused(_error(ILLEGAL, "isv.signature-invalid", "签名校验失败"), "auth_failed")
        self._check_timestamp(request.param("timestamp"))
        try:
            params = json.loads(param_json)
        except ValueError:
            params = None
        if not isinstance(params, dict):
            raise _Refused(_error(ILLEGAL, "isv.parameter-format-invalid", "业务参数json解析失败"))
        return params

    @staticmethod
    def _check_timestamp(value: str) -> None:
        try:
            stamp = int(value) if value.isdigit() else datetime.strptime(value, _LOCAL_FORMAT).replace(
                tzinfo=CHINA).timestamp()
        except ValueError:
            raise _Refused(_error(ILLEGAL, "isv.timestamp-format-error", "时间戳格式错误")) from None
        if abs(time.time() - stamp) > TIMESTAMP_TOLERANCE_SECONDS:
            raise _Refused(_error(ILLEGAL, "isv.timestamp-invalid", "时间戳不合法"))

    # token.refresh ---------------------------------------------------------------------------

    def _refresh(self, params: dict) -> tuple[Reply, str]:
        if params.get("grant_type") != "refresh_token":
            reply = _error(TOKEN_FAILED, "dop.token-generate-failed:grant-type-invalid",
                           "生成token失败，grant_type参数取值不正确")
            return reply, "bad_request"
        refresh_token = params.get("refresh_token")
        with self._lock:
            known = refresh_token in self._refresh_tokens
            if known:
                self._refresh_tokens.discard(refresh_token)
                self._refreshes += 1
        if not known:
            return _error(TOKEN_FAILED, "dop.token-generate-failed:token-invalid", "生成token失败，token不存在"), "auth_failed"
        access, refresh = self.issue_tokens()
        data = {"access_token": access, "expires_in": max(1, math.ceil(self.token_ttl_seconds)), "scope": "SCOPE",
                "shop_id": "88812345", "shop_name": "simulated shop", "refresh_token": refresh,
                "authority_id": "", "auth_subject_type": "MiniApp"}
        return _success(data), "ok"

    # order.searchList ------------------------------------------------------------------------

    def _search(self, params: dict) -> Reply:
        page = _integer(params, "page")
        size = _integer(params, "size")
        if page is None or size is None:
            raise _Refused(_error(MISSING_BUSINESS, "isv.missing-parameter", "page和size为必填参数"))
        if page < 0:
            raise _parameter(":10035", "查询订单列表页数不能小于0")
        if not 1 <= size <= MAX_PAGE:
            raise _parameter(":20008", "单次查询订单数超过限制，单页最大支持100")
        if (page + 1) * size > MAX_DEPTH:
            raise _parameter(":20013", "订单查询最多支持查询5万，需要缩短查询时间范围")
        start, end = self._window(params)
        self.list_requests.append({"start": start, "end": end, "page": page, "size": size})
        if self.on_page is not None:
            self.on_page(params)
        by_create = params.get("order_by") == "create_time"
        key = by_created_at if by_create else by_updated_at
        low = datetime.fromtimestamp(start, UTC)
        high = datetime.fromtimestamp(end, UTC)
        matching = self.book.select(low, high, key=key)
        if params.get("order_asc") is not True:
            matching.reverse()
        served = matching[page * size:(page + 1) * size]
        return _success({"page": page, "size": size, "total": len(matching),
                         "shop_order_list": [entry.payload for entry in served]})

    @staticmethod
    def _window(params: dict) -> tuple[int, int]:
        kind = "create" if params.get("order_by") == "create_time" and params.get("create_time_start") else "update"
        start = _integer(params, f"{kind}_time_start", required_sub=":20011")
        end = _integer(params, f"{kind}_time_end")
        now = int(time.time())
        end = now if end is None else end
        if end < start:
            raise _parameter("", f"{kind}_time_end不能早于{kind}_time_start")
        if start < now - HISTORY_DAYS * 86400:
            raise _parameter(":20022", "订单查询只支持查询最近90天内的数据")
        if end - start > MAX_SPAN_SECONDS:
            raise _parameter("", f"查询时间跨度不能超过1天 ({kind}_time_end - {kind}_time_start <= 86400)")
        if end > now + 5:
            raise _parameter("", f"{kind}_time_end不能晚于当前时间")
        return start, end

    def windows_over_maximum(self) -> list[dict]:
        """Served list calls whose window exceeded one day (refused before serving: always [])."""
        return [r for r in self.list_requests if r["end"] - r["start"] > MAX_SPAN_SECONDS]


def launch(shop_id: str, book: OrderBook, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0):
    """A started simulator for one shop and the credentials secret our adapter needs for it."""
    app_key = f"7{secrets.randbelow(10**18):018d}"  # Douyin app keys are 19 digits
    simulator = DouyinSimulator(app_key, str(uuid.uuid4()), book, faults=faults,
                                rate_multiplier=rate_multiplier).start()
    access_token, refresh_token = simulator.issue_tokens()
    # The app's quota as the console shows it: exactly what this gateway enforces.
    credentials = {"app_key": app_key, "app_secret": simulator.app_secret, "access_token": access_token,
                   "refresh_token": refresh_token, "endpoint": simulator.url,
                   "calls_per_second": simulator.limit.rate, "burst": simulator.limit.burst}
    return simulator, credentials
