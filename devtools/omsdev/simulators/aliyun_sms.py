"""Aliyun SMS (dysmsapi 2017-05-25) simulator: `SendSms` over HTTP on loopback, signature checked.

The official SDK (`alibabacloud_dysmsapi20170525` on `alibabacloud_tea_openapi`) signs every call with
signature V3, `ACS3-HMAC-SHA256`, unless told otherwise: the operation travels in headers
(`x-acs-action: SendSms`, `x-acs-version: 2017-05-25`), SendSms's parameters in the query string, and

    Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<a;b;c>,Signature=<hex>

where Signature = hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\\n" + hex(SHA256(CanonicalRequest)))) and
CanonicalRequest = method, path, the query sorted by key with keys and values RFC 3986-encoded (space
%20, `~` kept), `name:value\\n` for each signed header (lower-case, sorted, values trimmed), the signed
header names joined by `;`, and hex(SHA256(body)). The check here rebuilds all of it from what
arrived on the wire, so a wrong secret, a changed parameter or a changed body fails as on Aliyun.

What the gateway checks, in this order, and its answers (JSON `{"RequestId", "HostId", "Code",
"Message", "Recommend"}`):
- no ACS3 Authorization: 400 IncompleteSignature; a common header missing (x-acs-action, x-acs-version,
  x-acs-date, x-acs-signature-nonce, x-acs-content-sha256, host): 400 MissingParameter; a present
  common header (or content-type) left out of SignedHeaders: 400 IncompleteSignature;
- x-acs-date not `yyyy-MM-ddTHH:mm:ssZ`: 400 InvalidTimeStamp.Format; more than 15 minutes from the
  real time: 400 InvalidTimeStamp.Expired (the SDK stamps real time, so this check ignores `clock`);
- version other than 2017-05-25: 400 InvalidVersion; action other than SendSms: 404 InvalidAction.NotFound;
- unknown AccessKeyId: 404 InvalidAccessKeyId.NotFound; signature wrong: 400 SignatureDoesNotMatch
  (its message quotes the server's string to sign, as Aliyun's does); a nonce seen in the last 15
  minutes: 400 SignatureNonceUsed.

SendSms without PhoneNumbers, SignName or TemplateCode is 400 Missing<Name>. Otherwise it answers HTTP
200: `Code` "OK" with a `BizId`, or a business refusal with `Code` and `Message`:
- isv.MOBILE_NUMBER_ILLEGAL: a number starting with 1 is read as mainland, 1[3-9] + 9 digits (a +86,
  0086 or 86 prefix allowed); any other is 8-15 digits starting with its country code;
- isv.MOBILE_COUNT_OVER_LIMIT (over 1000 numbers); isv.SMS_SIGNATURE_ILLEGAL / isv.SMS_TEMPLATE_ILLEGAL
  (sign name or template not approved here); isv.INVALID_JSON_PARAM (TemplateParam not a JSON object of
  strings); isv.TEMPLATE_MISSING_PARAMETERS (a template variable without a value);
- isv.BUSINESS_LIMIT_CONTROL: Aliyun's flow control for verification codes, per sign name and phone,
  1 a minute, 5 an hour, 10 a day (`phone_limits`, counted on `clock`).
Injected faults (`FaultPlan`): 5xx is 503 ServiceUnavailable or 500 InternalError; "429" is the
gateway's flow control, 400 Throttling.User.

Every delivered message is recorded (`messages()`, `latest_code()`, and `GET /_sim/messages?phone=`),
so tests and the local cloud read the code a buyer would have received.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from omsdev.simulators.base import Clock, FaultPlan, Reply, Request, Simulator
from omsdev.simulators.sources_common import SystemWallClock, WallClock, iso

ALGORITHM = "ACS3-HMAC-SHA256"
VERSION = "2017-05-25"
HOST_ID = "dysmsapi.aliyuncs.com"
COMMON_HEADERS = ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce",
                  "x-acs-version")
MAX_CLOCK_SKEW = timedelta(minutes=15)  # also how long a nonce is remembered
MAX_PHONES = 1000
DEFAULT_SIGN_NAME = "OMS"
DEFAULT_TEMPLATE_CODE = "SMS_100000001"
SIM_MESSAGES_PATH = "/_sim/messages"

_MAINLAND = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
_INTERNATIONAL = re.compile(r"^\+?([1-9]\d{7,14})$")
_AUTHORIZATION = re.compile(r"^(?P<algorithm>\S+)\s+Credential=(?P<key_id>[^,]*),\s*SignedHeaders=(?P<signed>[^,]*),"
                            r"\s*Signature=(?P<signature>[0-9a-fA-F]*)$")


@dataclass(frozen=True)
class PhoneLimit:
    """At most `permits` messages per sign name and phone in any `seconds`; `label` is Aliyun's wording."""

    seconds: int
    permits: int
    label: str


# Aliyun's defaults for verification codes: 1 a minute, 5 an hour, 10 a day per phone and signature.
VERIFICATION_CODE_LIMITS = (PhoneLimit(60, 1, "分钟级"), PhoneLimit(3600, 5, "小时级"), PhoneLimit(86400, 10, "天级"))


@dataclass(frozen=True)
class DeliveredSms:
    phone: str  # the national number for mainland phones ("13800138000"), else the digits with country code
    phone_as_sent: str
    sign_name: str
    template_code: str
    template_params: dict
    biz_id: str
    request_id: str
    sent_at: datetime
    out_id: str | None = None

    def to_json(self) -> dict:
        return {**asdict(self), "sent_at": iso(self.sent_at)}


class AliyunApiError(Exception):
    """A refusal in Aliyun's words: HTTP `status`, `code`, `message`."""

    def __init__(self, status: int, code: str, message: str, outcome: str = "bad_request"):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.outcome = status, code, message, outcome


def normalize_phone(number: str) -> str | None:
    """The number Aliyun delivers to (mainland: the 11-digit national number), or None if illegal."""
    number = number.strip()
    mainland = _MAINLAND.match(number)
    if mainland:
        return mainland.group(1)
    if number.lstrip("+").startswith("1"):
        return None  # read as a mainland number (no country code), and no mainland mobile number
    international = _INTERNATIONAL.match(number)
    return international.group(1) if international else None


def _encode(value: str) -> str:
    return quote(value, safe="~", encoding="utf-8")


def canonical_request(request: Request, signed_headers: list[str], payload_hash: str) -> str:
    """Signature V3's canonical request, built from what arrived (query decoded, then re-encoded)."""
    pairs = sorted((_encode(key), _encode(values[-1])) for key, values in request.query.items())
    query = "&".join(f"{key}={value}" for key, value in pairs)
    headers = "".join(
        f"{name}:{','.join(sorted(value.strip() for value in (request.headers.get_all(name) or [])))}\n"
        for name in signed_headers)
    return "\n".join((request.method, request.path or "/", query, headers, ";".join(signed_headers), payload_hash))


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def signature(secret: str, to_sign: str) -> str:
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _new_access_key() -> tuple[str, str]:
    return "LTAI" + secrets.token_hex(10), secrets.token_urlsafe(22)


def _new_biz_id() -> str:
    return f"{secrets.randbelow(9 * 10**17) + 10**17}^0"


class AliyunSmsSimulator(Simulator):
    """dysmsapi on loopback: access keys, approved sign names and templates, per-phone flow control."""

    def __init__(
        self,
        access_keys: dict[str, str] | None = None,
        *,
        sign_names: tuple[str, ...] = (DEFAULT_SIGN_NAME,),
        templates: dict[str, tuple[str, ...]] | None = None,
        phone_limits: tuple[PhoneLimit, ...] = VERIFICATION_CODE_LIMITS,
        faults: FaultPlan | None = None,
        clock: WallClock | None = None,
        monotonic: Clock = time.monotonic,
    ):
        super().__init__(faults, clock=monotonic)
        if access_keys is None:
            key_id, key_secret = _new_access_key()
            access_keys = {key_id: key_secret}
        self.access_keys = dict(access_keys)
        self.sign_names = set(sign_names)
        self.templates = dict(templates if templates is not None else {DEFAULT_TEMPLATE_CODE: ("code",)})
        self.phone_limits = tuple(phone_limits)
        self.wall_clock: WallClock = clock if clock is not None else SystemWallClock()
        self._lock = threading.Lock()
        self._delivered: list[DeliveredSms] = []
        self._sends: dict[tuple[str, str], list[datetime]] = {}
        self._nonces: dict[str, datetime] = {}

    # What tests and the local cloud read ---------------------------------------------------------

    def messages(self, phone: str | None = None) -> list[DeliveredSms]:
        """Delivered messages, oldest first; `phone` in any form Aliyun accepts for it."""
        wanted = None if phone is None else (normalize_phone(phone) or phone)
        with self._lock:
            return [sms for sms in self._delivered if wanted is None or sms.phone == wanted]

    def latest_code(self, phone: str) -> str | None:
        """The `code` template parameter of the last message to this phone."""
        delivered = self.messages(phone)
        return delivered[-1].template_params.get("code") if delivered else None

    def credentials(self, access_key_id: str | None = None) -> dict:
        """The secret our adapter reads (`<prefix>/sms/aliyun`): key, sign name, template, endpoint."""
        key_id = access_key_id or next(iter(self.access_keys))
        return {
            "access_key_id": key_id,
            "access_key_secret": self.access_keys[key_id],
            "sign_name": sorted(self.sign_names)[0],
            "template_code": sorted(self.templates)[0],
            "endpoint": self.url,
        }

    # Base-class hooks ----------------------------------------------------------------------------

    def is_api_call(self, request: Request) -> bool:
        return not request.path.startswith("/_sim/")

    def operation(self, request: Request) -> str:
        if not self.is_api_call(request):
            return f"{request.method} {request.path}"
        return request.headers.get("x-acs-action") or request.param("Action") or "unknown"

    def decorate(self, reply: Reply, request: Request) -> None:
        if isinstance(reply.body, dict) and reply.body.get("RequestId"):
            reply.headers.setdefault("x-acs-request-id", reply.body["RequestId"])

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":
            return self._error_reply(
                AliyunApiError(400, "Throttling.User", "Request was denied due to user flow control."))
        status = self.faults.server_error()
        if status == 503:
            return self._error_reply(AliyunApiError(
                503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."))
        return self._error_reply(AliyunApiError(
            status, "InternalError",
            "The request processing has failed due to some unknown error, exception or failure."))

    def route(self, request: Request) -> tuple[Reply, str]:
        if not self.is_api_call(request):
            return self._sim_endpoint(request)
        try:
            self._authenticate(request)
            return self._send_sms(request)
        except AliyunApiError as error:
            return self._error_reply(error), error.outcome

    # The gateway -----------------------------------------------------------------------------------

    @staticmethod
    def _error_reply(error: AliyunApiError) -> Reply:
        request_id = str(uuid.uuid4()).upper()
        return Reply(error.status, {
            "RequestId": request_id, "HostId": HOST_ID, "Code": error.code, "Message": error.message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}&product=Dysmsapi&requestId={request_id}",
        })

    def _authenticate(self, request: Request) -> None:
        match = _AUTHORIZATION.match((request.headers.get("Authorization") or "").strip())
        if match is None or match.group("algorithm") != ALGORITHM:
            raise AliyunApiError(400, "IncompleteSignature",
                                 f"The request signature does not conform to Aliyun standards (expected {ALGORITHM}).",
                                 "auth_failed")
        for name in COMMON_HEADERS:
            if not request.headers.get(name):
                raise AliyunApiError(400, "MissingParameter",
                                     f'The input parameter "{name}" that is mandatory for processing this request '
                                     "is not supplied.")
        signed = match.group("signed").split(";")
        must_sign = [name for name in (*COMMON_HEADERS, "content-type") if request.headers.get(name) is not None]
        must_sign += [name.lower() for name in request.headers.keys()
                      if name.lower().startswith("x-acs-") and name.lower() not in must_sign]
        unsigned = sorted(set(must_sign) - set(signed))
        if unsigned:
            raise AliyunApiError(400, "IncompleteSignature",
                                 f"The request signature does not conform to Aliyun standards: "
                                 f"{', '.join(unsigned)} must be signed.", "auth_failed")
        self._check_date(request.headers["x-acs-date"])
        if request.headers["x-acs-version"] != VERSION:
            raise AliyunApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if request.headers["x-acs-action"] != "SendSms" or request.path != "/":
            raise AliyunApiError(404, "InvalidAction.NotFound",
                                 "Specified api is not found, please check your url and method.")
        key_secret = self.access_keys.get(match.group("key_id"))
        if key_secret is None:
            raise AliyunApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.",
                                 "auth_failed")
        payload_hash = hashlib.sha256(request.body).hexdigest()  # of the body received, not the header's claim
        to_sign = string_to_sign(canonical_request(request, signed, payload_hash))
        if not hmac.compare_digest(signature(key_secret, to_sign), match.group("signature").lower()):
            raise AliyunApiError(400, "SignatureDoesNotMatch",
                                 f"Specified signature is not matched with our calculation. server string to sign is:"
                                 f"{to_sign}", "auth_failed")
        self._remember_nonce(request.headers["x-acs-signature-nonce"])

    @staticmethod
    def _check_date(text: str) -> None:
        try:
            stamped = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise AliyunApiError(400, "InvalidTimeStamp.Format",
                                 "Specified time stamp or date value is not well formatted.") from None
        if abs(datetime.now(UTC) - stamped) > MAX_CLOCK_SKEW:
            raise AliyunApiError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")

    def _remember_nonce(self, nonce: str) -> None:
        now = datetime.now(UTC)
        with self._lock:
            self._nonces = {seen: at for seen, at in self._nonces.items() if now - at <= MAX_CLOCK_SKEW}
            if nonce in self._nonces:
                raise AliyunApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces[nonce] = now

    # SendSms ---------------------------------------------------------------------------------------

    def _send_sms(self, request: Request) -> tuple[Reply, str]:
        params = {key: values[-1] for key, values in request.query.items()}
        if request.body:
            params.update(request.form())
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                raise AliyunApiError(400, f"Missing{name}", f"{name} is mandatory for this action.")
        request_id = str(uuid.uuid4()).upper()

        def refused(code: str, message: str, outcome: str = "bad_request") -> tuple[Reply, str]:
            return Reply(200, {"RequestId": request_id, "Code": code, "Message": message}), outcome

        numbers = params["PhoneNumbers"].split(",")
        if len(numbers) > MAX_PHONES:
            return refused("isv.MOBILE_COUNT_OVER_LIMIT", f"手机号码数量超过限制,最多{MAX_PHONES}个")
        phones = [normalize_phone(number) for number in numbers]
        if not numbers or None in phones:
            return refused("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        sign_name, template_code = params["SignName"], params["TemplateCode"]
        if sign_name not in self.sign_names:
            return refused("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if template_code not in self.templates:
            return refused("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            template_params = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            template_params = None
        if not isinstance(template_params, dict) or not all(isinstance(v, str) for v in template_params.values()):
            return refused("isv.INVALID_JSON_PARAM", "JSON参数不合法,只接受字符串值")
        if any(name not in template_params for name in self.templates[template_code]):
            return refused("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
        now = self.wall_clock.now()
        with self._lock:
            for phone in phones:
                limit = self._over_limit(sign_name, phone, now)
                if limit is not None:
                    return refused("isv.BUSINESS_LIMIT_CONTROL", f"触发{limit.label}流控Permits:{limit.permits}",
                                   "rate_limited")
            biz_id = _new_biz_id()
            for number, phone in zip(numbers, phones, strict=True):
                self._sends.setdefault((sign_name, phone), []).append(now)
                self._delivered.append(DeliveredSms(phone, number, sign_name, template_code, template_params, biz_id,
                                                    request_id, now, params.get("OutId")))
        return Reply(200, {"RequestId": request_id, "Code": "OK", "Message": "OK", "BizId": biz_id}), "ok"

    def _over_limit(self, sign_name: str, phone: str, now: datetime) -> PhoneLimit | None:
        sent = self._sends.get((sign_name, phone), [])
        longest = max((limit.seconds for limit in self.phone_limits), default=0)
        sent[:] = [at for at in sent if now - at < timedelta(seconds=longest)]
        for limit in self.phone_limits:
            if sum(1 for at in sent if now - at < timedelta(seconds=limit.seconds)) >= limit.permits:
                return limit
        return None

    # The simulator's own window --------------------------------------------------------------------

    def _sim_endpoint(self, request: Request) -> tuple[Reply, str]:
        if request.path != SIM_MESSAGES_PATH:
            return Reply(404, {"Code": "NotFound", "Message": f"no such resource: {request.path}"}), "bad_request"
        if request.method != "GET":
            return Reply(405, {"Code": "MethodNotAllowed", "Message": "GET only"}, {"Allow": "GET"}), "bad_request"
        delivered = self.messages(request.param("phone"))
        return Reply(200, {"messages": [sms.to_json() for sms in delivered]}), "ok"


def launch(*, sign_names: tuple[str, ...] = (DEFAULT_SIGN_NAME,), templates: dict[str, tuple[str, ...]] | None = None,
           phone_limits: tuple[PhoneLimit, ...] = VERIFICATION_CODE_LIMITS, faults: FaultPlan | None = None,
           clock: WallClock | None = None):
    """A started simulator with one fresh access key and the secret (`<prefix>/sms/aliyun`) our adapter needs."""
    simulator = AliyunSmsSimulator(sign_names=sign_names, templates=templates, phone_limits=phone_limits,
                                   faults=faults, clock=clock).start()
    return simulator, simulator.credentials()
