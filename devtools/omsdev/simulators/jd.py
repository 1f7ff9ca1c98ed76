"""JD POP (JOS) simulator: `/routerjson` serving jingdong.pop.order.search, and the OAuth refresh call.

Enforces what the real gateway does (CHANNELS.md section 2; the JOS gateway error table quoted in
oms.adapters.channels.jd), always answering HTTP 200 with JD's envelopes:
- system parameters: `method` (14 Missing Method / 15 Invalid Method), `v` (4 Missing Version /
  5 Unsupported Version, only "2.0"), `timestamp` (7 Missing Timestamp / 8 Invalid Timestamp:
  `yyyy-MM-dd HH:mm:ss[.SSS][+0800]` GMT+8 within 6 minutes of now), `sign` (11 Missing Signature /
  12 Invalid Signature: MD5 over the sorted parameters wrapped in the app secret, upper hex; an
  unknown app_key cannot be verified and is 12 as well), `access_token` (19 Invalid access_token
  when missing, unknown or past its TTL on the simulator's clock: code unsure, see the adapter);
- a token bucket per app (10 calls/s, burst 10, times `rate_multiplier`), over it the gateway's
  2 "App Call Limited" envelope; injected 429 faults answer the same envelope, injected 5xx answer
  a 503/500 carrying a 66 "backend service unavailable" envelope;
- business parameters of the search, as a failed `apiResult` (numberCode texts are ours): JSON in
  `360buy_param_json`, `optional_fields` required (only those fields are served, plus orderId),
  `start_date` / `end_date` required, `end_date` no later than one calendar month after
  `start_date`, `page` >= 1, `page_size` 1..100, `dateType` 0 (modified) or 1 (created),
  `order_state` a comma list of known states (empty = all), `sortType` 1 descending else ascending;
- pages are served live from the OrderBook by offset, with `orderTotal`: an order updated between
  two page requests really moves (`before_page` lets a test act between them);
- `/oauth2/refresh_token` (app_key, app_secret, grant_type=refresh_token, refresh_token) issues a
  new access token valid `token_ttl_seconds` on the simulator's clock (its error shape is ours).
"""

from __future__ import annotations

import base64
import calendar
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs

from oms.adapters.channels.signing import signatures_match, top_sign
from oms.normalizers.jd import ORDER_STATES, RESPONSE_ROOT

from omsdev.simulators.base import (
    AccessTokens,
    Clock,
    FaultPlan,
    Reply,
    Request,
    Simulator,
)
from omsdev.simulators.orderbook import (
    BookEntry,
    OrderBook,
    by_created_at,
    by_updated_at,
)
from omsdev.simulators.scenario import OrderGenerator, next_id

ROUTER_PATH = "/routerjson"
TOKEN_PATH = "/oauth2/refresh_token"
SEARCH_METHOD = "jingdong.pop.order.search"
RATE, BURST = 10.0, 10
MAX_PAGE_SIZE = 100
TIMESTAMP_TOLERANCE = timedelta(minutes=6)
CHINA = timezone(timedelta(hours=8))
_GATEWAY_ERRORS = {
    "2": ("限制时间内调用失败次数", "App Call Limited"),
    "4": ("缺少版本参数", "Missing Version"),
    "5": ("不支持的版本号", "Unsupported Version"),
    "7": ("缺少时间戳参数", "Missing Timestamp"),
    "8": ("非法的时间戳参数", "Invalid Timestamp"),
    "11": ("缺少签名参数", "Missing Signature"),
    "12": ("无效签名", "Invalid Signature"),
    "14": ("缺少方法名参数", "Missing Method"),
    "15": ("不存在的方法名", "Invalid Method"),
    "19": ("token已过期或者不存在，请重新授权访问", "Invalid access_token"),
    "66": ("平台连接后端服务不可用", "Backend service unavailable"),
}


def gateway_error(code: str) -> dict:
    zh_desc, en_desc = _GATEWAY_ERRORS[code]
    return {"error_response": {"code": code, "zh_desc": zh_desc, "en_desc": en_desc}}


def business_error(number_code: str, chinese: str, english: str) -> dict:
    return {RESPONSE_ROOT: {"code": "0", "searchorderinfo_result": {
        "apiResult": {"success": False, "numberCode": number_code, "chineseErrCode": chinese, "englishErrCode": english},
        "orderTotal": 0, "orderInfoList": []}}}


class _BusinessError(Exception):
    def __init__(self, number_code: str, chinese: str, english: str):
        super().__init__(english)
        self.body = business_error(number_code, chinese, english)


def china_text(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def parse_china_time(value: str) -> datetime:
    """`yyyy-MM-dd HH:mm:ss`, optionally with `.SSS` and `+0800`, in GMT+8."""
    text = value.strip()
    for layout in ("%Y-%m-%d %H:%M:%S.%f%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            moment = datetime.strptime(text, layout)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)
    raise ValueError(f"{value!r} is not yyyy-MM-dd HH:mm:ss")


def one_month_after(moment: datetime) -> datetime:
    """The same local day and time a calendar month later (the 31st becomes the month's last day)."""
    local = moment.astimezone(CHINA)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


class JdSimulator(Simulator):
    def __init__(
        self,
        app_key: str,
        app_secret: str,
        refresh_token: str,
        book: OrderBook | None = None,
        *,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        token_ttl_seconds: float = 86400,
        clock: Clock = time.monotonic,
        before_page: Callable[[dict], None] | None = None,
    ):
        super().__init__(faults, rate_multiplier=rate_multiplier, clock=clock)
        self.app_key, self.app_secret, self.refresh_token = app_key, app_secret, refresh_token
        self.book = book if book is not None else OrderBook("jd")
        self.book.channel = self.book.channel or "jd"
        self.token_ttl_seconds = token_ttl_seconds
        self.limit = self.new_bucket(RATE, BURST)
        self.before_page = before_page  # called with the business parameters before a page is read
        self.searches: list[dict] = []  # business parameters of every search served (ground truth)
        self._tokens = AccessTokens(clock)
        self._lock = threading.Lock()

    # Plumbing --------------------------------------------------------------------------------

    @property
    def token_requests(self) -> int:
        return self.stats.count_path(TOKEN_PATH)

    def is_api_call(self, request: Request) -> bool:
        return request.path == ROUTER_PATH or (self.faults.include_token_endpoint and request.path == TOKEN_PATH)

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":
            return Reply(200, gateway_error("2"))
        return Reply(self.faults.server_error(), gateway_error("66"))

    @staticmethod
    def _params(request: Request) -> dict[str, str]:
        params = {key: values[0] for key, values in request.query.items()}
        if request.body:
            form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
            params.update({key: values[0] for key, values in form.items()})
        return params

    def operation(self, request: Request) -> str:
        return self._params(request).get("method") or request.path  # one gateway path, many methods

    def route(self, request: Request) -> tuple[Reply, str]:
        if request.path == TOKEN_PATH:
            return self._refresh(self._params(request))
        if request.path != ROUTER_PATH:
            return Reply(404, {"error": "not found"}), "bad_request"
        params = self._params(request)
        refused = self._check_system(params)
        if refused is not None:
            return Reply(200, gateway_error(refused)), "auth_failed" if refused in ("12", "19") else "bad_request"
        allowed, _wait = self.limit.try_take()
        if not allowed:
            return Reply(200, gateway_error("2")), "rate_limited"
        try:
            return Reply(200, self._search(params.get("360buy_param_json"))), "ok"
        except _BusinessError as problem:
            return Reply(200, problem.body), "bad_request"

    def _check_system(self, params: dict[str, str]) -> str | None:
        """The gateway error code of a call whose system parameters fail, else None."""
        if not params.get("method"):
            return "14"
        if not params.get("v"):
            return "4"
        if params["v"] != "2.0":
            return "5"
        if not params.get("timestamp"):
            return "7"
        try:
            sent = parse_china_time(params["timestamp"])
        except ValueError:
            return "8"
        if abs(datetime.now(UTC) - sent) > TIMESTAMP_TOLERANCE:
            return "8"
        if not params.get("sign"):
            return "11"
        if params.get("app_key") != self.app_key or not signatures_match(
                top_sign(params, self.app_secret, "md5"), params["sign"]):
            return "12"
        if params["method"] != SEARCH_METHOD:
            return "15"
        if not self._tokens.live(params.get("access_token")):
            return "19"
        return None

    # OAuth -----------------------------------------------------------------------------------

    def issue_token(self) -> str:
        return self._tokens.issue(secrets.token_hex(16), self.token_ttl_seconds)

    def expire_tokens(self) -> None:
        """Every issued token expires now (tests of the refresh path)."""
        self._tokens.expire_all()

    def _refresh(self, params: dict[str, str]) -> tuple[Reply, str]:
        if params.get("app_key") != self.app_key or params.get("app_secret") != self.app_secret:
            return Reply(200, {"code": 401, "msg": "app_key or app_secret is invalid"}), "auth_failed"
        if params.get("grant_type") != "refresh_token":
            return Reply(200, {"code": 400, "msg": "grant_type must be refresh_token"}), "bad_request"
        if params.get("refresh_token") != self.refresh_token:
            return Reply(200, {"code": 402, "msg": "refresh_token is invalid or expired"}), "auth_failed"
        body = {"code": 0, "access_token": self.issue_token(), "expires_in": max(1, math.ceil(self.token_ttl_seconds)),
                "refresh_token": self.refresh_token, "scope": "snsapi_base", "token_type": "bearer",
                "time": int(time.time() * 1000), "open_id": f"open-{self.app_key}", "uid": secrets.token_hex(8)}
        return Reply(200, body), "ok"

    # jingdong.pop.order.search ---------------------------------------------------------------

    def _search(self, param_json: str | None) -> dict:
        business = self._business(param_json)
        with self._lock:
            self.searches.append(business)
        if self.before_page is not None:
            self.before_page(business)
        start, end = business["start"], business["end"]
        key = by_updated_at if business["by"] == "modified" else by_created_at
        chosen = [e for e in self.book.select(start, end, key=key)
                  if not business["states"] or e.payload.get("orderState") in business["states"]]
        if business["descending"]:
            chosen.reverse()
        size, page = business["page_size"], business["page"]
        rows = chosen[(page - 1) * size: page * size]
        fields = business["fields"] | {"orderId"}
        orders = [{k: v for k, v in entry.payload.items() if k in fields} for entry in rows]
        return {RESPONSE_ROOT: {"code": "0", "searchorderinfo_result": {
            "apiResult": {"success": True, "numberCode": "", "chineseErrCode": "", "englishErrCode": ""},
            "orderTotal": len(chosen), "orderInfoList": orders}}}

    @staticmethod
    def _business(param_json: str | None) -> dict:
        try:
            given = json.loads(param_json or "")
            if not isinstance(given, dict):
                raise ValueError(param_json)
        except ValueError:
            raise _BusinessError("100", "360buy_param_json不是合法的JSON", "360buy_param_json is not a JSON object") from None
        fields = {f.strip() for f in str(given.get("optional_fields") or "").split(",") if f.strip()}
        if not fields:
            raise _BusinessError("101", "optional_fields不能为空", "optional_fields is required")
        try:
            start = parse_china_time(str(given["start_date"]))
            end = parse_china_time(str(given["end_date"]))
        except (KeyError, ValueError):
            raise _BusinessError("102", "开始时间和结束时间格式为yyyy-MM-dd HH:mm:ss",
                                 "start_date and end_date are required as yyyy-MM-dd HH:mm:ss") from None
        if end < start:
            raise _BusinessError("103", "开始时间不能晚于结束时间", "start_date must not be after end_date")
        if end > one_month_after(start):
            raise _BusinessError("104", "查询时间跨度不能超过一个月", "the time span must not exceed one month")
        try:
            page, page_size = int(given.get("page", 1)), int(given.get("page_size", 20))
        except (TypeError, ValueError):
            raise _BusinessError("105", "page和page_size必须是整数", "page and page_size must be integers") from None
        if page < 1:
            raise _BusinessError("105", "page必须大于0", "page must be at least 1")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise _BusinessError("106", f"page_size取值范围1-{MAX_PAGE_SIZE}", f"page_size must be 1..{MAX_PAGE_SIZE}")
        states = {s.strip() for s in str(given.get("order_state") or "").split(",") if s.strip()}
        unknown = states - set(ORDER_STATES)
        if unknown:
            raise _BusinessError("107", "订单状态不正确", f"unknown order_state {', '.join(sorted(unknown))}")
        date_type = str(given.get("dateType", "0"))
        return {"start": start.astimezone(UTC), "end": end.astimezone(UTC),
                "by": "created" if date_type == "1" else "modified", "states": states, "fields": fields,
                "page": page, "page_size": page_size, "descending": str(given.get("sortType")) == "1"}


# Orders --------------------------------------------------------------------------------------

# skuId, outerSkuId, wareId, name, jdPrice (CNY)
_CATALOGUE = [
    ("100234567890", "JD-KB-87-RED", "100012345678", "机械键盘 87键 红轴", "399.00"),
    ("100234567999", "JD-MS-01-BLK", "100012345999", "无线鼠标 静音 黑色", "99.00"),
    ("100234568888", "JD-HUB-7P", "100012346888", "USB-C 扩展坞 七合一", "129.00"),
    ("100234569999", "JD-CBL-2M", "100012347999", "Type-C 数据线 2米 快充", "29.50"),
]
# province, provinceId, city, cityId, county, countyId, town, townId
_PLACES = [
    ("北京", "1", "北京市", "72", "朝阳区", "2799", "三里屯街道", "51981"),
    ("江苏", "12", "苏州市", "988", "工业园区", "4108", "斜塘街道", "56781"),
    ("广东", "19", "广州市", "1601", "海珠区", "3634", "赤岗街道", "63199"),
    ("内蒙古", "11", "呼和浩特市", "799", "赛罕区", "6553", "大学东路街道", "51112"),
]


class JdOrders(OrderGenerator):
    """jingdong.pop.order.search orderInfo records, times in GMT+8, money in yuan strings."""

    channel = "jd"
    malformations = ("quantity_text", "price_text", "quantity_missing")

    def _cipher(self, size: int) -> str:
        return "AAS/" + base64.b64encode(self.rng.getrandbits(size * 8).to_bytes(size, "big")).decode()

    def build(self, moment: datetime, *, malformed: str | None = None) -> tuple[str, dict]:
        order_id = str(next_id())
        items = []
        for _ in range(self.rng.choice((1, 1, 2))):
            sku, outer, ware, name, price = self.rng.choice(_CATALOGUE)
            items.append({"skuId": sku, "outerSkuId": outer, "wareId": ware, "skuName": name, "jdPrice": price,
                          "itemTotal": str(self.rng.randint(1, 3)), "giftPoint": "0", "productNo": "JD",
                          "invoiceContentId": "", "newStoreId": "0"})
        goods = sum((Decimal(i["jdPrice"]) * int(i["itemTotal"]) for i in items), Decimal(0))
        freight = Decimal("6.00") if goods < 99 else Decimal("0.00")
        if malformed == "quantity_text":
            items[0]["itemTotal"] = "two"
        elif malformed == "price_text":
            items[0]["jdPrice"] = "N/A"
        elif malformed == "quantity_missing":
            del items[0]["itemTotal"]
        province, province_id, city, city_id, county, county_id, town, town_id = self.rng.choice(_PLACES)
        masked = f"1{self.rng.randint(30, 89)}*******{self.rng.randint(0, 9)}"
        stamp = china_text(moment)
        payload = {
            "orderId": order_id, "venderId": "10987654", "orderType": "22", "payType": "4-在线支付",
            "orderState": "WAIT_SELLER_STOCK_OUT", "orderStateRemark": "等待出库",
            "orderStartTime": china_text(moment - timedelta(seconds=30)), "paymentConfirmTime": stamp,
            "modified": stamp, "orderTotalPrice": f"{goods:.2f}", "orderSellerPrice": f"{goods:.2f}",
            "orderPayment": f"{goods + freight:.2f}", "freightPrice": f"{freight:.2f}", "sellerDiscount": "0.00",
            "balanceUsed": "0.00", "open_id_buyer": base64.b64encode(self.rng.randbytes(16)).decode(),
            "xid_buyer": "o*" + base64.b64encode(self.rng.randbytes(27)).decode()[:36],
            "orderRemark": "", "venderRemark": "", "invoiceInfo": "不需要开具发票", "deliveryType": "任意时间",
            "orderSource": "移动端订单", "returnOrder": "0", "parentOrderId": "0",
            "consigneeInfo": {"province": province, "provinceId": province_id, "city": city, "cityId": city_id,
                              "county": county, "countyId": county_id, "town": town, "townId": town_id,
                              "fullname": self._cipher(24), "fullAddress": self._cipher(48),
                              "mobile": masked, "telephone": masked,
                              "desen_mobile": secrets.token_hex(35)},
            "itemInfoList": items,
        }
        return order_id, payload

    def touch(self, order_id: str, moment: datetime) -> datetime:
        """A new version with only `modified` changed (e.g. a seller remark)."""
        return self._rewrite(order_id, moment, lambda entry, at: {**entry.payload, "modified": china_text(at)})

    def cancel(self, order_id: str, moment: datetime) -> datetime:
        def cancelled(entry: BookEntry, at: datetime) -> dict:
            stamp = china_text(at)
            return {**entry.payload, "orderState": "TRADE_CANCELED", "orderStateRemark": "(删除)订单取消",
                    "modified": stamp, "orderEndTime": stamp}

        return self._rewrite(order_id, moment, cancelled, cancel=True)

    def ship(self, order_id: str, moment: datetime) -> datetime:
        def shipped(entry: BookEntry, at: datetime) -> dict:
            return {**entry.payload, "orderState": "WAIT_GOODS_RECEIVE_CONFIRM", "orderStateRemark": "等待确认收货",
                    "modified": china_text(at), "logisticsId": "467", "waybill": f"JDVA{self.rng.randint(10**10, 10**11)}"}

        return self._rewrite(order_id, moment, shipped)


ORDER_GENERATOR = JdOrders


def launch(shop_id: str, book: OrderBook, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0):
    """A started simulator for one JD shop and the credentials secret our adapter needs for it."""
    app_key = f"jd-app-{shop_id}"
    credentials = {"app_key": app_key, "app_secret": secrets.token_hex(16), "refresh_token": f"refresh-{shop_id}"}
    simulator = JdSimulator(**credentials, book=book, faults=faults, rate_multiplier=rate_multiplier).start()
    # The app's quota as its console shows it: exactly what this gateway enforces.
    return simulator, {**credentials, "access_token": simulator.issue_token(),
                       "endpoint": simulator.url + ROUTER_PATH, "token_url": simulator.url + TOKEN_PATH,
                       "calls_per_second": simulator.limit.rate, "burst": simulator.limit.burst}
