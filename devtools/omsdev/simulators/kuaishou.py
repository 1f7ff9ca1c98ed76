"""Kuaishou Shop (快手小店) simulator: `open.order.cursor.list` and the OAuth refresh for one shop.

What it enforces (facts and sources: the module docstring of oms.adapters.channels.kuaishou;
codes CHANNELS.md marks unsure are our documented choices, named here):
- `POST /open/order/cursor/list`, parameters from the query and the form body merged: `appkey`,
  `method` (must be open.order.cursor.list), `version` 1, `param` (JSON), `access_token`,
  `timestamp` (ms, within 10 minutes of now), `signMethod` (MD5 | HMAC_SHA256), `sign`. A missing
  system parameter or a stale timestamp -> result 27, a wrong signature -> result 28 (signature
  class per whalesky-labs/kwaishop-php-sdk; the exact split is our choice). Every error is an
  HTTP 200 envelope `{"result": code, "error_msg": ..., "code": ..., "msg": ...}`;
- access tokens live `token_ttl_seconds` (172800 by default) on the simulator's clock: unknown ->
  result 21 "鉴权失败", expired -> result 24 "access_token已过期";
- `POST /oauth2/refresh_token` (app_id, app_secret, grant_type=refresh_token, refresh_token) issues a
  new access token and a NEW refresh token; the old refresh token keeps working for 5 minutes, then
  100200102 access_denied (as the OAuth document says); wrong app -> 100200101 unauthorized_client;
  other grant types -> 100200104 unsupported_grant_type; missing fields -> 100200100 invalid_request;
- the business rules: queryType 1|2, beginTime/endTime ms, end before begin -> 300003, a range over
  7 days -> 300004, begin older than 90 days -> 300005 (the platform's return-code table); an
  endTime more than a minute in the future, a pageSize outside 1..50, an unknown orderViewStatus or
  a bad cursor -> result 2001 "<name>无效" (the shape of a real "endTime无效" answer);
- a real cursor: opaque, encoding the query and the (time, oid) of the last order served; pages are
  read live from the OrderBook after that position (sort 1 descending by default, 2 ascending), so
  an order updated during a poll moves between pages exactly as on the platform; `"nomore"` when
  nothing follows the page;
- QPS: a token bucket of 300 requests per second (per app and user, "API限流说明") times
  `rate_multiplier` on the injectable clock; over it the throttle envelope result 802000 "Exceed qps
  limit, KEY [...], MAX_QPS [...]" (message from the official FAQ K1008; the code is our choice among
  those SDKs read as throttling);
- faults: "429" answers that same throttle envelope with HTTP 200; "5xx" an HTTP 503/500.

`on_page(request_number, order_ids)` (settable) runs after each list page is built and before it is
sent: tests change orders between two page requests with it. `windows` logs the (beginTime,
endTime) of every list request that passed validation.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from oms.adapters.channels.signing import kuaishou_sign, signatures_match

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

LIST_PATH = "/open/order/cursor/list"
REFRESH_PATH = "/oauth2/refresh_token"
LIST_METHOD = "open.order.cursor.list"
SYSTEM_PARAMETERS = ("appkey", "method", "version", "param", "access_token", "timestamp", "signMethod", "sign")
SIGN_METHODS = ("MD5", "HMAC_SHA256")
QPS_LIMIT = 300
MAX_PAGE = 50
MAX_RANGE_MS = 7 * 86_400_000
MAX_AGE = timedelta(days=90)
TIMESTAMP_TOLERANCE_MS = 10 * 60_000
FUTURE_TOLERANCE_MS = 60_000
REFRESH_GRACE_SECONDS = 300
NO_MORE = "nomore"

# Kuaishou statuses and the orderViewStatus filter (1 all, 2 unpaid, 3 paid, 4 shipped, 5 received,
# 6 success, 7 closed).
PENDING, PAID, SHIPPED, RECEIVED, SUCCESS, CLOSED = 10, 30, 40, 50, 70, 80
VIEW_STATUS = {2: PENDING, 3: PAID, 4: SHIPPED, 5: RECEIVED, 6: SUCCESS, 7: CLOSED}
REFUND_SUCCEEDED = 60


def _envelope(code: int, message: str, english: str = "") -> Reply:
    return Reply(200, {"result": code, "error_msg": message, "code": str(code), "msg": english or message})


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class _Refused(Exception):
    def __init__(self, reply: Reply, outcome: str = "bad_request"):
        super().__init__(reply.body)
        self.reply, self.outcome = reply, outcome


class KuaishouSimulator(Simulator):
    def __init__(
        self,
        app_key: str,
        app_secret: str,
        sign_secret: str,
        refresh_token: str,
        book: OrderBook | None = None,
        *,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        qps_limit: float = QPS_LIMIT,
        token_ttl_seconds: float = 172_800,
        clock: Clock = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        super().__init__(faults, rate_multiplier=rate_multiplier, clock=clock)
        self.app_key, self.app_secret, self.sign_secret = app_key, app_secret, sign_secret
        self.book = book if book is not None else OrderBook("kuaishou")
        self.book.channel = self.book.channel or "kuaishou"
        self.token_ttl_seconds = token_ttl_seconds
        self.wall_clock = wall_clock
        # A QPS limit: one second's worth of requests at once, refilled every second.
        self.limit = self.new_bucket(qps_limit, max(1.0, qps_limit * rate_multiplier))
        self._access = AccessTokens(clock)
        self._refresh: dict[str, float] = {refresh_token: float("inf")}  # refresh token -> expiry
        self._lock = threading.Lock()
        self._requests = 0
        self.windows: list[tuple[int, int]] = []
        self.on_page: Callable[[int, list[str]], None] | None = None

    # Plumbing ----------------------------------------------------------------------------------

    @property
    def refresh_requests(self) -> int:
        return self.stats.count_path(REFRESH_PATH)

    def is_api_call(self, request: Request) -> bool:
        return request.path == LIST_PATH or (self.faults.include_token_endpoint and request.path == REFRESH_PATH)

    def _throttled(self) -> Reply:
        rate = self.limit.rate
        return _envelope(802000, f"Exceed qps limit, KEY [apiId:{LIST_METHOD};appkey:{self.app_key}], MAX_QPS [{rate:.1f}]")

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":
            return self._throttled()
        return Reply(self.faults.server_error(), {"result": 0, "error_msg": "服务繁忙，请稍后重试", "msg": "Service Unavailable"})

    @staticmethod
    def _params(request: Request) -> dict[str, str]:
        merged = {name: values[0] for name, values in request.query.items() if values}
        merged.update(request.form())
        return merged

    def route(self, request: Request) -> tuple[Reply, str]:
        try:
            if request.path == REFRESH_PATH and request.method in ("POST", "GET"):
                return self._refresh_token(self._params(request)), "ok"
            if request.path == LIST_PATH and request.method in ("POST", "GET"):
                return self._list(self._params(request)), "ok"
            return Reply(404, {"result": 0, "error_msg": "api not found"}), "bad_request"
        except _Refused as refused:
            return refused.reply, refused.outcome

    # OAuth -------------------------------------------------------------------------------------

    def issue_access_token(self) -> str:
        return self._access.issue("ChFvYXV0aC5hY2Nlc3NUb2tlbh" + secrets.token_urlsafe(48), self.token_ttl_seconds)

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (tests of the refresh path)."""
        self._access.expire_all()

    def _oauth_error(self, code: int, error: str, message: str, outcome: str) -> _Refused:
        return _Refused(Reply(200, {"result": code, "error": error, "error_msg": message}), outcome)

    def _refresh_token(self, form: dict[str, str]) -> Reply:
        missing = [name for name in ("app_id", "app_secret", "grant_type", "refresh_token") if not form.get(name)]
        if missing:
            raise self._oauth_error(100200100, "invalid_request", f"缺少必要的请求参数: {','.join(missing)}", "bad_request")
        if form["app_id"] != self.app_key or form["app_secret"] != self.app_secret:
            raise self._oauth_error(100200101, "unauthorized_client", "app 非法", "auth_failed")
        if form["grant_type"] != "refresh_token":
            raise self._oauth_error(100200104, "unsupported_grant_type", "grantType 错误", "bad_request")
        now = self.clock()
        with self._lock:
            expiry = self._refresh.get(form["refresh_token"])
            if expiry is None or expiry <= now:
                reason = "invalid refresh_token" if expiry is None else "refreshToken.discarded"
                raise self._oauth_error(100200102, "access_denied", reason, "auth_failed")
            # The used refresh token dies within 5 minutes; the new one inherits its lifetime.
            self._refresh[form["refresh_token"]] = min(expiry, now + REFRESH_GRACE_SECONDS)
            new_refresh = "ChJvYXV0aC5yZWZyZXNoVG9rZW4" + secrets.token_urlsafe(48)
            self._refresh[new_refresh] = expiry
        return Reply(200, {
            "result": 1,
            "access_token": self.issue_access_token(),
            "expires_in": int(self.token_ttl_seconds),
            "refresh_token": new_refresh,
            "refresh_token_expires_in": 15_552_000,
            "scopes": ["user_info", "merchant_order"],
        })

    # open.order.cursor.list --------------------------------------------------------------------

    def _check_call(self, params: dict[str, str]) -> None:
        missing = [name for name in SYSTEM_PARAMETERS if not params.get(name)]
        if missing:
            raise _Refused(_envelope(27, f"缺少系统参数: {','.join(missing)}", "missing system parameter"))
        if params["signMethod"] not in SIGN_METHODS:
            raise _Refused(_envelope(27, f"signMethod无效: {params['signMethod']}"))
        try:
            stamp = int(params["timestamp"])
        except ValueError:
            raise _Refused(_envelope(27, "timestamp无效")) from None
        if abs(self.wall_clock() * 1000 - stamp) > TIMESTAMP_TOLERANCE_MS:
            raise _Refused(_envelope(27, "timestamp过期", "timestamp expired"))
        allowed, _wait = self.limit.try_take()
        if not allowed:
            raise _Refused(self._throttled(), "rate_limited")
        if params["appkey"] != self.app_key:
            raise _Refused(_envelope(21, "鉴权失败: appkey不存在"), "auth_failed")
        expected = kuaishou_sign({k: v for k, v in params.items() if k in SYSTEM_PARAMETERS}, self.sign_secret,
                                 params["signMethod"])
        if not signatures_match(expected, params["sign"]):
            raise _Refused(_envelope(28, "签名验证失败", "sign verify failed"), "auth_failed")
        state = self._access.state(params["access_token"])
        if state == "unknown":
            raise _Refused(_envelope(21, "鉴权失败", "access token invalid"), "auth_failed")
        if state == "expired":
            raise _Refused(_envelope(24, "access_token已过期", "access token expired"), "auth_failed")
        if params["method"] != LIST_METHOD or params["version"] != "1":
            raise _Refused(_envelope(2001, "method或version无效"))

    @staticmethod
    def _whole(query: dict, name: str, default: int | None = None) -> int:
        value = query.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Refused(_envelope(2001, f"{name}无效"))
        return value

    def _query(self, params: dict[str, str]) -> dict:
        try:
            query = json.loads(params["param"])
        except ValueError:
            raise _Refused(_envelope(2001, "param无效")) from None
        if not isinstance(query, dict):
            raise _Refused(_envelope(2001, "param无效"))
        query_type = self._whole(query, "queryType", 1)
        begin, end = self._whole(query, "beginTime"), self._whole(query, "endTime")
        size = self._whole(query, "pageSize", 10)
        view = self._whole(query, "orderViewStatus", 1)
        sort = self._whole(query, "sort", 1)
        cps = self._whole(query, "cpsType", 0)
        now_ms = int(self.wall_clock() * 1000)
        if query_type not in (1, 2) or sort not in (1, 2) or cps not in (0, 1, 2):
            raise _Refused(_envelope(2001, "queryType/sort/cpsType无效"))
        if end < begin:
            raise _Refused(_envelope(300003, "结束时间要晚于开始时间", "ENDTIME MUST AFTER BEGINTIME"))
        if end - begin > MAX_RANGE_MS:
            raise _Refused(_envelope(300004, "查询范围不能大于7天", "SEARCH TIME RANGE EXPAND 7 DAYS"))
        if begin < now_ms - int(MAX_AGE.total_seconds() * 1000):
            raise _Refused(_envelope(300005, "只能查询最近90天内的订单", "CAN NOT SEARCH BEFORE 90 DAYS"))
        if end > now_ms + FUTURE_TOLERANCE_MS:
            raise _Refused(_envelope(2001, "endTime无效"))
        if not 1 <= size <= MAX_PAGE:
            raise _Refused(_envelope(2001, "pageSize无效"))
        if view != 1 and view not in VIEW_STATUS:
            raise _Refused(_envelope(2001, "orderViewStatus无效"))
        cursor = query.get("cursor") or ""
        if not isinstance(cursor, str):
            raise _Refused(_envelope(2001, "cursor无效"))
        shape = {"queryType": query_type, "beginTime": begin, "endTime": end, "orderViewStatus": view,
                 "sort": sort, "cpsType": cps}
        return {**shape, "pageSize": size, "after": self._decode_cursor(cursor, shape) if cursor else None}

    @staticmethod
    def _encode_cursor(shape: dict, last: tuple[int, str]) -> str:
        text = json.dumps({"q": shape, "k": list(last)}, sort_keys=True, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str, shape: dict) -> tuple[int, str]:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            last = (int(decoded["k"][0]), str(decoded["k"][1]))
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Refused(_envelope(2001, "cursor无效")) from None
        if decoded.get("q") != shape:  # a cursor continues the query it came from, nothing else
            raise _Refused(_envelope(2001, "cursor无效: 查询条件与cursor不一致"))
        return last

    @staticmethod
    def _status_of(entry: BookEntry) -> object:
        base = entry.payload.get("orderBaseInfo") if isinstance(entry.payload, dict) else None
        return base.get("status") if isinstance(base, dict) else None

    @staticmethod
    def _created_ms(entry: BookEntry) -> int:
        base = entry.payload.get("orderBaseInfo") if isinstance(entry.payload, dict) else None
        created = base.get("createTime") if isinstance(base, dict) else None
        return created if isinstance(created, int) and not isinstance(created, bool) else _ms(entry.created_at)

    def _matching(self, query: dict) -> list[tuple[tuple[int, str], BookEntry]]:
        """Orders of the query after the cursor's position, in the query's order, keyed (ms, oid)."""
        if query["queryType"] == 2:
            begin = datetime.fromtimestamp(query["beginTime"] / 1000, timezone.utc)
            end = datetime.fromtimestamp(query["endTime"] / 1000, timezone.utc)
            keyed = [((_ms(e.updated_at), e.order_id), e) for e in self.book.select(begin, end, key=by_updated_at)]
        else:
            keyed = [((self._created_ms(e), e.order_id), e) for e in self.book.select(None, None, key=by_created_at)]
        keyed = [(k, e) for k, e in keyed if query["beginTime"] <= k[0] <= query["endTime"]]
        if query["orderViewStatus"] != 1:
            keyed = [(k, e) for k, e in keyed if self._status_of(e) == VIEW_STATUS[query["orderViewStatus"]]]
        if query["cpsType"]:
            keyed = [(k, e) for k, e in keyed if (e.payload.get("orderBaseInfo") or {}).get("cpsType") == query["cpsType"]]
        descending = query["sort"] == 1
        keyed.sort(key=lambda pair: pair[0], reverse=descending)
        after = query["after"]
        if after is not None:
            keyed = [(k, e) for k, e in keyed if (k < after if descending else k > after)]
        return keyed

    def _list(self, params: dict[str, str]) -> Reply:
        self._check_call(params)
        query = self._query(params)
        keyed = self._matching(query)
        page = keyed[: query["pageSize"]]
        shape = {name: query[name] for name in ("queryType", "beginTime", "endTime", "orderViewStatus", "sort", "cpsType")}
        cursor = self._encode_cursor(shape, page[-1][0]) if len(keyed) > len(page) else NO_MORE
        orders = [json.loads(json.dumps(entry.payload)) for _key, entry in page]  # a snapshot, as sent
        with self._lock:
            self._requests += 1
            number = self._requests
            self.windows.append((query["beginTime"], query["endTime"]))
        if self.on_page is not None:
            self.on_page(number, [entry.order_id for _key, entry in page])
        return Reply(200, {"result": 1, "data": {
            "beginTime": query["beginTime"], "endTime": query["endTime"], "pageSize": query["pageSize"],
            "cursor": cursor, "orderList": orders,
        }})


# Orders ----------------------------------------------------------------------------------------

# item id, sku id, sku code, goods code, title, sku description, price in fen
_CATALOGUE = [
    (22334455667, 88990011223, "KS-LZF-3P", "KS-LZF", "螺蛳粉 330g×3袋", "口味:加辣加臭", 2990),
    (22334455999, 88990011999, "KS-HG-1", "KS-HG", "重庆火锅底料 500g", "口味:中辣", 4990),
    (22334456111, 88990012111, "KS-HJ-1", "KS-HJ", "郫县豆瓣酱 500g", "规格:500g", 1990),
    (22334456222, 88990012222, "KS-MJ-2", "KS-MJ", "藤椒面 2袋装", "规格:2袋", 1590),
]
# province, code, city, code, district, code, town, masked street
_PLACES = [
    ("广东省", 440000, "广州市", 440100, "天河区", 440106, "石牌街道", "天河路***号"),
    ("江苏省", 320000, "南京市", 320100, "鼓楼区", 320106, "宁海路街道", "北京西路***号"),
    ("西藏自治区", 540000, "拉萨市", 540100, "城关区", 540102, "八廓街道", "北京中路***号"),
    ("四川省", 510000, "成都市", 510100, "锦江区", 510104, "春熙路街道", "红星路***号"),
]


def _cipher(marker: str, seed: int, version: str) -> str:
    """Kuaishou-looking ciphertext: same address, same text (deterministic per shop)."""
    body = base64.b64encode(f"ks-{marker}-{seed}".encode()).decode()
    return {"#": f"#{body}#{version}##", "$": f"${body}${version}$", "~": f"~{body}~{version}~~"}[marker]


class KuaishouOrders(OrderGenerator):
    """`orderList` records: orderBaseInfo, one orderItemInfo, encrypted orderAddress, refunds."""

    channel = "kuaishou"
    malformations = ("num_text", "price_yuan", "item_missing")

    def build(self, moment: datetime, *, malformed: str | None = None) -> tuple[str, dict]:
        oid = next_id()
        item_id, sku_id, sku_code, goods_code, title, description, price = self.rng.choice(_CATALOGUE)
        quantity = self.rng.randint(1, 3)
        created = _ms(moment) - self.rng.randint(5, 60) * 1000
        paid = _ms(moment)
        buyer = self.rng.getrandbits(120)
        province, province_code, city, city_code, district, district_code, town, street = self.rng.choice(_PLACES)
        # The buyer's own address: a small pool would put 5 accounts on one address (a fraud ring, to risk).
        address_seed = self.rng.randint(1, 10**9)
        item = {
            "itemId": item_id, "skuId": sku_id, "relItemId": 0, "relSkuId": 0, "skuNick": sku_code,
            "goodsCode": goods_code, "itemTitle": title, "skuDesc": description, "num": quantity,
            "originalPrice": price + 100, "price": price, "discountFee": 100 * quantity, "itemType": 1,
            "orderItemId": next_id(),
        }
        if malformed == "num_text":  # what broken upstream integrations really send
            item["num"] = "两件"
        elif malformed == "price_yuan":  # yuan as a float where fen belong
            item["price"] = price / 100
        payload = {
            "orderBaseInfo": {
                "oid": oid, "status": PAID, "payTime": paid, "createTime": created, "updateTime": paid,
                "buyerOpenId": f"f19{buyer:030x}", "buyerNick": "快**友", "sellerOpenId": "f198e6aa11223344556677889900aabb",
                "sellerNick": "川味小厨旗舰店", "totalFee": price * quantity, "expressFee": 0, "discountFee": 100 * quantity,
                "sendTime": 0, "refundTime": 0, "recvTime": 0, "remark": "", "payType": 1, "preSale": 0, "riskCode": 0,
                "cpsType": 1,
            },
            "orderItemInfo": None if malformed == "item_missing" else item,
            "orderAddress": {
                "consignee": "", "mobile": "", "address": "",
                "encryptedConsignee": _cipher("#", address_seed, "1"), "encryptedMobile": _cipher("$", address_seed, "1"),
                "encryptedAddress": _cipher("~", address_seed, "1"),
                "desensitiseConsignee": "刘**", "desensitiseMobile": "159****2288", "desensitiseAddress": street,
                "province": province, "provinceCode": province_code, "city": city, "cityCode": city_code,
                "district": district, "districtCode": district_code, "town": town, "townCode": district_code * 1000 + 1,
            },
            "orderRefundList": [],
            "orderLogisticsInfo": [],
            "orderNote": {"sellerNote": []},
        }
        return str(oid), payload

    @staticmethod
    def _with_base(entry: BookEntry, **changes) -> dict:
        payload = json.loads(json.dumps(entry.payload))
        payload["orderBaseInfo"].update(changes)
        return payload

    def touch(self, order_id: str, moment: datetime) -> datetime:
        """A new version with only `updateTime` moved (a seller note, an address confirmed)."""
        return self._rewrite(order_id, moment, lambda entry, at: self._with_base(entry, updateTime=_ms(at)))

    def cancel(self, order_id: str, moment: datetime) -> datetime:
        """The buyer cancels before shipment: Kuaishou refunds the payment and closes the order (80)."""

        def cancelled(entry: BookEntry, at: datetime) -> dict:
            payload = self._with_base(entry, status=CLOSED, updateTime=_ms(at), refundTime=_ms(at))
            payload["orderRefundList"] = [{"refundId": next_id(), "refundStatus": REFUND_SUCCEEDED}]
            return payload

        return self._rewrite(order_id, moment, cancelled, cancel=True)

    def ship(self, order_id: str, moment: datetime) -> datetime:
        def shipped(entry: BookEntry, at: datetime) -> dict:
            payload = self._with_base(entry, status=SHIPPED, updateTime=_ms(at), sendTime=_ms(at))
            payload["orderLogisticsInfo"] = [{"expressNo": f"YT{next_id()}", "expressCode": 2}]
            return payload

        return self._rewrite(order_id, moment, shipped)


ORDER_GENERATOR = KuaishouOrders


def launch(shop_id: str, book: OrderBook, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0):
    """A started simulator for one authorized shop and the credentials secret our adapter needs."""
    app = {"app_key": f"ks{abs(hash(shop_id)) % 10**18:018d}", "app_secret": "ks-app-secret",
           "sign_secret": f"ks-sign-secret-{shop_id}"}
    refresh_token = f"ChJvYXV0aC5yZWZyZXNoVG9rZW4-{shop_id}-{secrets.token_hex(8)}"
    simulator = KuaishouSimulator(**app, refresh_token=refresh_token, book=book, faults=faults,
                                  rate_multiplier=rate_multiplier).start()
    return simulator, {**app, "access_token": simulator.issue_access_token(), "refresh_token": refresh_token,
                       "endpoint": simulator.url, "token_url": simulator.url + REFRESH_PATH,
                       "sign_method": "HMAC_SHA256",
                       # The app's QPS as the console shows it: exactly what this gateway enforces.
                       "calls_per_second": simulator.limit.rate, "burst": simulator.limit.burst}
