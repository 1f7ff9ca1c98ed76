"""Taobao / Tmall (TOP) simulator: the `/router/rest` gateway for one seller's trades.

Enforces what TOP does (facts and sources: layers/shared/oms/adapters/channels/taobao.py docstring,
CHANNELS.md section 1), always answering HTTP 200 with `{"error_response": {code, msg, sub_code,
sub_msg, request_id}}` for errors, as TOP does:
- system parameters: method (21 Missing method / 22 Invalid method), app_key (28 / 29),
  timestamp `yyyy-MM-dd HH:mm:ss` GMT+8 within 10 minutes (30 / 31), v=2.0 (32 / 33),
  format=json (23; this simulator speaks JSON only), sign_method md5 | hmac | hmac-sha256 and sign
  (24 Missing signature / 25 Invalid signature, checked with signing.top_sign);
- the app's call rate: a token bucket on the injectable clock, scaled by `rate_multiplier`; over it
  code 7 App Call Limited, sub_code accesscontrol.limited-by-app-access-count, "This ban will last
  for N more seconds";
- sessions: 26 Missing session; 27 Invalid session with sub_code invalid-sessionkey (unknown) or
  session-expired (past its TTL on the simulator's clock); `taobao.top.auth.token.refresh` takes
  `refresh_token` (no session) and answers `token_result` as a JSON string with a new session;
- `taobao.trades.sold.increment.get`: fields, start_modified, end_modified required (40 Missing
  required arguments); times must parse, end >= start, end - start <= 1 day and start within the
  last 3 months, page_no >= 1, page_size 1..100 (else 41 Invalid arguments, isv.invalid-parameter);
  without `type` only the default types (guarantee_trade = fixed + auction, auto_delivery, ec, cod,
  step) are served; sorted by modified descending, served live from the OrderBook on every page
  (an order modified during a poll really moves); `total_results`, or `has_next` with
  use_has_next=true; list trades are partial (no receiver data, no oaid);
- `taobao.trade.fullinfo.get`: tid and fields required; an unknown tid -> 15 Remote service error,
  isv.trade-not-exist. Both calls return only the requested `fields` ("orders" = every sub-order field).
Faults (FaultPlan): 5xx -> that HTTP status with TOP's 10 Service currently unavailable body;
429 -> HTTP 200 with the code 7 throttle envelope; timeout and truncated break the delivery.
`on_list_page(page_no)`, when set, runs before each list page is served (tests change orders there).
"""

from __future__ import annotations

import json
import math
import secrets
import string
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from oms.adapters.channels.signing import signatures_match, top_sign

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

ROUTER_PATH = "/router/rest"
LIST_METHOD = "taobao.trades.sold.increment.get"
DETAIL_METHOD = "taobao.trade.fullinfo.get"
REFRESH_METHOD = "taobao.top.auth.token.refresh"
METHODS = (LIST_METHOD, DETAIL_METHOD, REFRESH_METHOD)
CHINA = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_SPAN = timedelta(days=1)
HISTORY = timedelta(days=90)
TIMESTAMP_TOLERANCE = timedelta(minutes=10)
MAX_PAGE, DEFAULT_PAGE = 100, 40
APP_RATE, APP_BURST = 40.0, 40  # calls per second per app (a console quota; x rate_multiplier)
DEFAULT_TYPES = {"fixed", "auction", "auto_delivery", "ec", "cod", "step"}  # guarantee_trade = fixed + auction
SIGN_METHODS = ("md5", "hmac", "hmac-sha256")
# What the increment list leaves out of its partial trades (TOP: use fullinfo for details).
_DETAIL_ONLY = {"receiver_name", "receiver_mobile", "receiver_phone", "receiver_address", "receiver_zip",
                "receiver_town", "oaid", "buyer_message"}


class _TopError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "", outcome: str = "bad_request"):
        super().__init__(msg)
        self.code, self.msg, self.sub_code, self.sub_msg, self.outcome = code, msg, sub_code, sub_msg, outcome


def _request_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(13))


def error_envelope(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> dict:
    error: dict = {"code": code, "msg": msg}
    if sub_code:
        error["sub_code"] = sub_code
    if sub_msg:
        error["sub_msg"] = sub_msg
    error["request_id"] = _request_id()
    return {"error_response": error}


def throttle_envelope(seconds: int) -> dict:
    return error_envelope(7, "App Call Limited", "accesscontrol.limited-by-app-access-count",
                          f"This ban will last for {seconds} more seconds")


def _china(text: str, name: str) -> datetime:
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=CHINA)
    except ValueError:
        raise _TopError(41, "Invalid arguments", "isv.invalid-parameter",
                        f"{name} must be yyyy-MM-dd HH:mm:ss, got {text!r}") from None


def _required(params: dict, *names: str) -> None:
    for name in names:
        if not (params.get(name) or "").strip():
            raise _TopError(40, "Missing required arguments", f"isv.missing-parameter:{name}", f"{name} is required")


def _int_param(params: dict, name: str, default: int, low: int, high: int | None) -> int:
    given = params.get(name)
    try:
        value = default if given in (None, "") else int(given)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise _TopError(41, "Invalid arguments", "isv.invalid-parameter", f"{name} must be an integer {bounds}, got {given!r}")
    return value


def project(trade: dict, fields: str, *, leave_out: set[str] = frozenset()) -> dict:
    """The trade reduced to the requested `fields` ("orders" = whole sub-orders, "orders.x" = some)."""
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    result = {k: v for k, v in trade.items() if k in wanted and k not in leave_out and k != "orders"}
    sub_fields = {f.split(".", 1)[1] for f in wanted if f.startswith("orders.")}
    if "orders" in wanted or sub_fields:
        subs = trade.get("orders", {}).get("order", []) if isinstance(trade.get("orders"), dict) else []
        if "orders" not in wanted:
            subs = [{k: v for k, v in sub.items() if k in sub_fields} for sub in subs if isinstance(sub, dict)]
        result["orders"] = {"order": subs}
    return result


class TaobaoSimulator(Simulator):
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
    ):
        super().__init__(faults, rate_multiplier=rate_multiplier, clock=clock)
        self.app_key, self.app_secret, self.refresh_token = app_key, app_secret, refresh_token
        self.book = book if book is not None else OrderBook("taobao")
        self.book.channel = self.book.channel or "taobao"
        self.token_ttl_seconds = token_ttl_seconds
        self.limit = self.new_bucket(APP_RATE, APP_BURST)
        self.on_list_page: Callable[[int], None] | None = None
        self.list_requests: list[dict] = []  # every accepted list query: tests check the windows
        self._sessions = AccessTokens(clock)
        self._refreshes = 0
        self._lock = threading.Lock()

    # Sessions ----------------------------------------------------------------------------------

    def issue_session(self) -> str:
        """A seller's access token, as the authorization flow hands it to the ISV."""
        return self._sessions.issue("6201" + secrets.token_hex(26), self.token_ttl_seconds)

    def expire_tokens(self) -> None:
        """Every issued session expires now (tests of the refresh path)."""
        self._sessions.expire_all()

    @property
    def refresh_requests(self) -> int:
        with self._lock:
            return self._refreshes

    def _check_session(self, session: str | None) -> None:
        if not session:
            raise _TopError(26, "Missing session", outcome="auth_failed")
        state = self._sessions.state(session)
        if state == "unknown":
            raise _TopError(27, "Invalid session", "invalid-sessionkey", "SessionKey非法", outcome="auth_failed")
        if state == "expired":
            raise _TopError(27, "Invalid session:session-expired", "session-expired", "SessionKey过期",
                            outcome="auth_failed")

    # Plumbing ----------------------------------------------------------------------------------

    @staticmethod
    def _params(request: Request) -> dict[str, str]:
        params = {key: values[0] for key, values in request.query.items() if values}
        params.update(request.form())
        return params

    def is_api_call(self, request: Request) -> bool:
        if request.path != ROUTER_PATH:
            return False
        return self.faults.include_token_endpoint or self._params(request).get("method") != REFRESH_METHOD

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":
            return Reply(200, throttle_envelope(1))
        body = error_envelope(10, "Service currently unavailable", "isp.service-unavailable", "服务不可用")
        return Reply(self.faults.server_error(), body)

    def operation(self, request: Request) -> str:
        return self._params(request).get("method") or request.path  # one gateway path, many methods

    def route(self, request: Request) -> tuple[Reply, str]:
        if request.path != ROUTER_PATH:
            return Reply(404, error_envelope(22, "Invalid method", sub_msg=f"no such path {request.path}")), "bad_request"
        params = self._params(request)
        try:
            self._check_system_parameters(params)
            allowed, wait = self.limit.try_take()
            if not allowed:
                return Reply(200, throttle_envelope(max(1, math.ceil(wait)))), "rate_limited"
            return Reply(200, self._serve(params)), "ok"
        except _TopError as error:
            return Reply(200, error_envelope(error.code, error.msg, error.sub_code, error.sub_msg)), error.outcome

    def _check_system_parameters(self, params: dict) -> None:
        if not params.get("method"):
            raise _TopError(21, "Missing method")
        if params["method"] not in METHODS:
            raise _TopError(22, "Invalid method", sub_msg=f"unknown method {params['method']}")
        if not params.get("app_key"):
            raise _TopError(28, "Missing app key")
        if params["app_key"] != self.app_key:
            raise _TopError(29, "Invalid app Key", outcome="auth_failed")
        self._check_timestamp(params.get("timestamp"))
        if not params.get("v"):
            raise _TopError(32, "Missing version")
        if params["v"] != "2.0":
            raise _TopError(33, "Invalid version")
        if params.get("format", "xml") != "json":
            raise _TopError(23, "Invalid format", sub_msg="this simulator answers format=json only")
        self._check_signature(params)

    def _check_timestamp(self, given: str | None) -> None:
        if not given:
            raise _TopError(30, "Missing timestamp")
        try:
            moment = datetime.strptime(given, TIME_FORMAT).replace(tzinfo=CHINA)
        except ValueError:
            raise _TopError(31, "Invalid timestamp", sub_msg=f"{given!r} is not yyyy-MM-dd HH:mm:ss") from None
        if abs(moment - datetime.now(UTC)) > TIMESTAMP_TOLERANCE:
            raise _TopError(31, "Invalid timestamp", sub_msg="timestamp is more than 10 minutes from the server time")

    def _check_signature(self, params: dict) -> None:
        method = params.get("sign_method") or "md5"
        if method not in SIGN_METHODS:
            raise _TopError(25, "Invalid signature", sub_msg=f"unsupported sign_method {method}", outcome="auth_failed")
        if not params.get("sign"):
            raise _TopError(24, "Missing signature", outcome="auth_failed")
        expected = top_sign(params, self.app_secret, method)
        if not signatures_match(expected, params["sign"]):
            raise _TopError(25, "Invalid signature", outcome="auth_failed")

    def _serve(self, params: dict) -> dict:
        method = params["method"]
        if method == REFRESH_METHOD:
            return self._refresh(params)
        self._check_session(params.get("session"))
        if method == LIST_METHOD:
            return self._list(params)
        return self._fullinfo(params)

    # The three methods -------------------------------------------------------------------------

    def _refresh(self, params: dict) -> dict:
        _required(params, "refresh_token")
        with self._lock:
            self._refreshes += 1
        if params["refresh_token"] != self.refresh_token:
            raise _TopError(15, "Remote service error", "isv.invalid-parameter", "refresh_token is invalid or expired",
                            outcome="auth_failed")
        session = self.issue_session()
        expires_in = max(1, math.ceil(self.token_ttl_seconds))
        now_ms = int(time.time() * 1000)
        token = {"access_token": session, "refresh_token": self.refresh_token, "token_type": "Bearer",
                 "expires_in": expires_in, "re_expires_in": expires_in, "expire_time": now_ms + expires_in * 1000,
                 "taobao_user_nick": "%E6%B5%8B%E8%AF%95%E5%BA%97", "taobao_open_uid": "AAE" + secrets.token_hex(10)}
        return {"top_auth_token_refresh_response": {"token_result": json.dumps(token), "request_id": _request_id()}}

    def _list(self, params: dict) -> dict:
        _required(params, "fields", "start_modified", "end_modified")
        start, end = _china(params["start_modified"], "start_modified"), _china(params["end_modified"], "end_modified")
        if end < start:
            raise _TopError(41, "Invalid arguments", "isv.invalid-parameter", "end_modified must be later than start_modified")
        if end - start > MAX_SPAN:
            raise _TopError(41, "Invalid arguments", "isv.invalid-parameter",
                            "end_modified - start_modified must not exceed one day")
        if start < datetime.now(UTC) - HISTORY:
            raise _TopError(41, "Invalid arguments", "isv.invalid-parameter", "only the last three months can be queried")
        page_no = _int_param(params, "page_no", 1, 1, None)
        size = _int_param(params, "page_size", DEFAULT_PAGE, 1, MAX_PAGE)
        types = {t.strip() for t in (params.get("type") or "").split(",") if t.strip()} or DEFAULT_TYPES
        if "guarantee_trade" in types:
            types |= {"fixed", "auction"}
        with self._lock:
            self.list_requests.append({"start": start, "end": end, "page_no": page_no, "page_size": size,
                                       "types": params.get("type")})
        if self.on_list_page is not None:
            self.on_list_page(page_no)
        matching = [e for e in self.book.select(start, end) if e.payload.get("type") in types]
        matching.sort(key=lambda e: (e.updated_at, e.order_id), reverse=True)  # modified, newest first
        page = matching[(page_no - 1) * size : page_no * size]
        body: dict = {}
        if params.get("use_has_next") == "true":
            body["has_next"] = len(matching) > page_no * size
        else:
            body["total_results"] = len(matching)
        if page:
            body["trades"] = {"trade": [project(e.payload, params["fields"], leave_out=_DETAIL_ONLY) for e in page]}
        body["request_id"] = _request_id()
        return {"trades_sold_increment_get_response": body}

    def _fullinfo(self, params: dict) -> dict:
        _required(params, "tid", "fields")
        entry = self.book.get(params["tid"].strip())
        if entry is None:
            raise _TopError(15, "Remote service error", "isv.trade-not-exist", f"trade {params['tid']} does not exist")
        return {"trade_fullinfo_get_response": {"trade": project(entry.payload, params["fields"]),
                                                "request_id": _request_id()}}


# Orders --------------------------------------------------------------------------------------

# num_iid, sku_id, outer_iid, outer_sku_id, title, sku properties, price (yuan)
_CATALOGUE = [
    (735518820134, "5021187342201", "SZ-TEE-01", "SZ-TEE-01-BLK-L", "纯棉圆领短袖T恤", "颜色分类:黑色;尺码:L", "129.00"),
    (735518820977, "5021187349910", "SZ-CAP-02", "SZ-CAP-02-BEI", "棒球帽 可调节", "颜色分类:米白", "99.00"),
    (735518821456, "5021187350001", "SZ-BAG-03", "SZ-BAG-03-GRY", "通勤双肩包 大容量", "颜色分类:灰色", "199.00"),
    (735518822789, "5021187360042", "SZ-SOCK-04", "SZ-SOCK-04-5P", "中筒袜 5双装", "颜色分类:混色5双", "59.90"),
]
# province, city, district, town, zip
_PLACES = [
    ("广东省", "深圳市", "南山区", "粤海街道", "518000"),
    ("上海", "上海市", "浦东新区", "花木街道", "200135"),
    ("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "燕儿窝街道", "830000"),
    ("浙江省", "杭州市", "余杭区", "五常街道", "311121"),
]
# Mostly default-type trades; Tmall Global ones only come back when `type` names them.
_TYPES = ("fixed",) * 15 + ("tmall_i18n",) * 3 + ("cod",) * 2
_TID_BASE = 4_300_000_000_000_000_000  # + wall-clock microseconds: 19 digits, unique, above 2**53


def _stamp(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime(TIME_FORMAT)


def _cipher(rng, prefix: str = "") -> str:
    body = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24))
    return f"${prefix}${body}=$1$" if prefix else f"~AgAAAAL{body}==~1~"


class TaobaoOrders(OrderGenerator):
    """TOP `Trade` objects as taobao.trade.fullinfo.get returns them (the book holds full trades)."""

    channel = "taobao"
    malformations = ("num_text", "price_missing", "payment_text")

    seller_nick = "深圳好物旗舰店"

    def _sub_order(self, status: str) -> tuple[dict, Decimal]:
        num_iid, sku_id, outer_iid, outer_sku_id, title, properties, price = self.rng.choice(_CATALOGUE)
        num = self.rng.randint(1, 3)
        oid = _TID_BASE + next_id()
        amount = Decimal(price) * num
        sub = {
            "oid": oid, "oid_str": str(oid), "num_iid": num_iid, "sku_id": sku_id, "outer_iid": outer_iid,
            "outer_sku_id": outer_sku_id, "title": title, "sku_properties_name": properties, "price": price,
            "num": num, "total_fee": f"{amount:.2f}", "payment": f"{amount:.2f}", "discount_fee": "0.00",
            "adjust_fee": "0.00", "divide_order_fee": f"{amount:.2f}", "status": status, "refund_status": "NO_REFUND",
        }
        return sub, amount

    def build(self, moment: datetime, *, malformed: str | None = None) -> tuple[str, dict]:
        tid = _TID_BASE + next_id()
        unpaid = self.rng.random() < 0.1
        status = "WAIT_BUYER_PAY" if unpaid else "WAIT_SELLER_SEND_GOODS"
        subs, goods = [], Decimal(0)
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            sub, amount = self._sub_order(status)
            subs.append(sub)
            goods += amount
        post_fee = Decimal("0.00") if goods >= 99 else Decimal("8.00")
        province, city, district, town, postal = self.rng.choice(_PLACES)
        stamp = _stamp(moment)
        trade = {
            "tid": tid, "tid_str": str(tid), "status": status, "type": self.rng.choice(_TYPES),
            "seller_nick": self.seller_nick, "buyer_nick": "t**" + self.rng.choice(string.ascii_lowercase),
            "buyer_open_uid": "AA" + "".join(self.rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(22)),
            "created": stamp, "modified": stamp,
            "total_fee": f"{goods:.2f}", "post_fee": f"{post_fee:.2f}", "payment": f"{goods + post_fee:.2f}",
            "discount_fee": "0.00", "adjust_fee": "0.00", "receiver_country": "",
            "receiver_state": province, "receiver_city": city, "receiver_district": district, "receiver_town": town,
            "receiver_name": _cipher(self.rng), "receiver_mobile": _cipher(self.rng, self.rng.choice(("138", "139", "186"))),
            "receiver_phone": "", "receiver_address": _cipher(self.rng), "receiver_zip": postal,
            "oaid": "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(32)),
            "orders": {"order": subs},
        }
        if not unpaid:
            trade["pay_time"] = stamp
        if malformed == "num_text":
            subs[0]["num"] = "两件"
        elif malformed == "price_missing":
            del subs[0]["price"]
        elif malformed == "payment_text":
            trade["payment"] = "待定"
        return str(tid), trade

    def touch(self, order_id: str, moment: datetime) -> datetime:
        """A new version with only `modified` changed (a seller memo, a flag)."""
        return self._rewrite(order_id, moment, lambda entry, at: {**entry.payload, "modified": _stamp(at)})

    def cancel(self, order_id: str, moment: datetime) -> datetime:
        """Unpaid: closed by Taobao. Paid: the buyer's full refund succeeds and the trade closes."""

        def closed(entry: BookEntry, at: datetime) -> dict:
            trade = json.loads(json.dumps(entry.payload))  # deep copy: history keeps the old version
            paid = trade.get("status") != "WAIT_BUYER_PAY"
            trade.update(status="TRADE_CLOSED" if paid else "TRADE_CLOSED_BY_TAOBAO", modified=_stamp(at),
                         end_time=_stamp(at))
            for sub in trade.get("orders", {}).get("order", []):
                sub["status"] = trade["status"]
                if paid:
                    sub.update(refund_status="SUCCESS", refund_id=str(next_id()), end_time=_stamp(at))
            return trade

        return self._rewrite(order_id, moment, closed, cancel=True)

    def start_refund(self, order_id: str, moment: datetime, line: int = 0) -> datetime:
        """The buyer asks a refund of one sub-order; the seller has not answered yet."""

        def asked(entry: BookEntry, at: datetime) -> dict:
            trade = json.loads(json.dumps(entry.payload))
            trade["modified"] = _stamp(at)
            trade["orders"]["order"][line].update(refund_status="WAIT_SELLER_AGREE", refund_id=str(next_id()))
            return trade

        return self._rewrite(order_id, moment, asked)


ORDER_GENERATOR = TaobaoOrders


def launch(shop_id: str, book: OrderBook, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0):
    """A started simulator for one seller and the credentials secret our adapter needs for it."""
    app_key = str(20_000_000 + zlib.crc32(shop_id.encode()) % 10_000_000)
    simulator = TaobaoSimulator(app_key, secrets.token_hex(16), f"6202{secrets.token_hex(24)}", book,
                                faults=faults, rate_multiplier=rate_multiplier).start()
    credentials = {
        "app_key": app_key, "app_secret": simulator.app_secret, "session": simulator.issue_session(),
        "refresh_token": simulator.refresh_token, "endpoint": simulator.url + ROUTER_PATH, "sign_method": "md5",
        # The app's quota as its console shows it: exactly what this gateway enforces.
        "calls_per_second": simulator.limit.rate, "burst": simulator.limit.burst,
    }
    return simulator, credentials
