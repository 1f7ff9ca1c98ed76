"""SMS senders behind one interface (`oms.ports.SmsSender`): Aliyun SMS for Chinese channels, Amazon SNS
for the others. Both send a one-time code and answer `SmsSent`, or raise an `SmsDeliveryError` that says
whether trying again later can help.

- `AliyunSmsSender`: dysmsapi `SendSms` through the official SDK (signature V3, ACS3-HMAC-SHA256). The
  account lives in the secret `{SECRETS_PREFIX}/sms/aliyun` (`{"access_key_id", "access_key_secret",
  "sign_name", "template_code", "endpoint"?}`, cached like the shops' secrets): `endpoint` is a host
  (`dysmsapi.aliyuncs.com`, the default, over HTTPS) or a URL; plain `http://` only on loopback, where
  the simulator (`omsdev.simulators.aliyun_sms`) runs. The template carries the code as `{"code": ...}`.
  The SDK's own retries stay off: SendSms is not idempotent, so a retry is the caller's decision.
- `SnsSmsSender`: SNS `Publish` to an E.164 `PhoneNumber`, SMS type Transactional (delivery over price),
  with the code and its validity in the text; boto3 already retried throttling and 5xx when it raises.
- `sms_route(channel)`: which of the two serves a channel's buyers.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from oms.adapters import aws
from oms.adapters.secrets import shop_credentials
from oms.observability import mask_phone
from oms.ports import SmsDeliveryError, SmsRejectedError, SmsTransientError

__all__ = [
    "AliyunSmsSender", "SmsDeliveryError", "SmsRejectedError", "SmsSent", "SmsTransientError", "SnsSmsSender",
    "sms_route", "sms_sender",
]

SmsProvider = Literal["aliyun", "sns"]
ALIYUN_CHANNELS = frozenset({"taobao", "jd", "pdd", "douyin", "kuaishou"})
SNS_CHANNELS = frozenset({"amazon", "aliexpress", "shopify"})
SECRET_GROUP, ALIYUN_SECRET = "sms", "aliyun"
DEFAULT_ALIYUN_ENDPOINT = "dysmsapi.aliyuncs.com"
# Aliyun advises >= 1 s for SendSms; a Lambda waiting longer than a few seconds had better retry later.
ALIYUN_CONNECT_TIMEOUT_MS, ALIYUN_READ_TIMEOUT_MS = 3_000, 6_000
# Flow control and server trouble: the same request can succeed later. SignatureNonceUsed too (a new
# attempt signs with a new nonce).
ALIYUN_TRANSIENT_CODES = frozenset({
    "Throttling", "Throttling.User", "Throttling.Api", "ServiceUnavailable", "InternalError", "isp.SYSTEM_ERROR",
    "isp.GATEWAY_ERROR", "SignatureNonceUsed",
})
SNS_TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "InternalError", "InternalFailure", "ServiceUnavailable", "KMSThrottling",
})


def sms_route(channel: str) -> SmsProvider:
    """Aliyun for the Chinese marketplaces' buyers, SNS for the international ones."""
    if channel in ALIYUN_CHANNELS:
        return "aliyun"
    if channel in SNS_CHANNELS:
        return "sns"
    known = ", ".join(sorted(ALIYUN_CHANNELS | SNS_CHANNELS))
    raise ValueError(f"no SMS route for channel {channel!r}; known: {known}")


@dataclass(frozen=True)
class SmsSent:
    """A message the provider accepted: its id there (Aliyun BizId, SNS MessageId) for delivery receipts."""

    provider: SmsProvider
    message_id: str
    request_id: str | None
    to: str = field(repr=False)  # a phone number: kept out of reprs that end up in logs

    @property
    def masked_to(self) -> str | None:
        return mask_phone(self.to)


def _rejection_or_transient(provider: SmsProvider, code: str, message: str, *, transient: bool,
                            phone: str, request_id: str | None) -> SmsDeliveryError:
    kind = SmsTransientError if transient else SmsRejectedError
    return kind(provider, code, message, phone=phone, request_id=request_id)


# Aliyun --------------------------------------------------------------------------------------------


class AliyunSmsAccount(BaseModel):
    """The secret's content, validated; `endpoint` split into the SDK's host and protocol."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    access_key_id: str = Field(min_length=1)
    access_key_secret: str = Field(min_length=1, repr=False)
    sign_name: str = Field(min_length=1)
    template_code: str = Field(min_length=1)
    endpoint: str = DEFAULT_ALIYUN_ENDPOINT

    @field_validator("endpoint")
    @classmethod
    def _plain_http_only_on_loopback(cls, value: str) -> str:
        value = value.strip().rstrip("/") or DEFAULT_ALIYUN_ENDPOINT
        parts = urlsplit(value if "://" in value else f"https://{value}")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise ValueError(f"must be a host or an http(s) URL without a path, got {value!r}")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("plain http is only for a simulator on loopback; use https")
        return value

    @property
    def protocol(self) -> str:
        return "http" if self.endpoint.startswith("http://") else "https"

    @property
    def host(self) -> str:
        return self.endpoint.split("://", 1)[-1]


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=4)
def _aliyun_client(account: AliyunSmsAccount):
    """One SDK client per account (a rotated secret gets a new one). The SDK is imported here, at first
    use: it takes ~0.3 s, which only the Aliyun path should pay on a cold start."""
    from alibabacloud_dysmsapi20170525.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(Config(access_key_id=account.access_key_id, access_key_secret=account.access_key_secret,
                         endpoint=account.host, protocol=account.protocol,
                         connect_timeout=ALIYUN_CONNECT_TIMEOUT_MS, read_timeout=ALIYUN_READ_TIMEOUT_MS))


def _aliyun_error(code: str | None, message: str | None, *, status: int, phone: str,
                  request_id: str | None) -> SmsDeliveryError:
    code = code or "Unknown"
    transient = status >= 500 or code in ALIYUN_TRANSIENT_CODES or code.startswith("Throttling")
    return _rejection_or_transient("aliyun", code, message or "", transient=transient, phone=phone,
                                   request_id=request_id)


class AliyunSmsSender:
    """Verification codes through Aliyun SMS, account from `{secrets_prefix}/sms/aliyun`."""

    provider: SmsProvider = "aliyun"

    def __init__(self, secrets_prefix: str):
        self.secrets_prefix = secrets_prefix

    def account(self) -> AliyunSmsAccount:
        name = f"{self.secrets_prefix}/{SECRET_GROUP}/{ALIYUN_SECRET}"
        try:
            return AliyunSmsAccount.model_validate(shop_credentials(self.secrets_prefix, SECRET_GROUP, ALIYUN_SECRET))
        except (ValidationError, ValueError, GetParameterError) as error:
            # No or no valid account: no retry will send it; the order goes to a person instead.
            raise SmsRejectedError("aliyun", "InvalidConfiguration", f"secret {name}: {error}") from error

    def send_code(self, phone: str, code: str, *, link: str | None = None) -> SmsSent:
        # The approved template's text is fixed: it carries the code only (`link` cannot be added).
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
        from Tea.exceptions import TeaException

        account = self.account()
        request = SendSmsRequest(phone_numbers=phone, sign_name=account.sign_name,
                                 template_code=account.template_code, template_param=json.dumps({"code": code}))
        try:
            body = _aliyun_client(account).send_sms(request).body
        except AlibabaCloudException as error:  # the gateway answered 4xx/5xx
            data = error.data if isinstance(error.data, dict) else {}
            raise _aliyun_error(error.code, data.get("Message") or error.message, status=error.status_code or 0,
                                phone=phone, request_id=error.request_id) from error
        except TeaException as error:  # no usable answer: refused or dropped connection, timeout, broken body
            raise SmsTransientError("aliyun", "NoAnswer", str(error), phone=phone) from error
        if body.code != "OK":  # business refusals come as HTTP 200
            raise _aliyun_error(body.code, body.message, status=200, phone=phone, request_id=body.request_id)
        return SmsSent("aliyun", body.biz_id, body.request_id, phone)


# Amazon SNS ----------------------------------------------------------------------------------------


class SnsSmsSender:
    """Verification codes as transactional SMS through SNS (`oms.adapters.aws.client("sns")` by default)."""

    provider: SmsProvider = "sns"

    def __init__(self, *, code_valid_minutes: int, client=None):
        if code_valid_minutes < 1:
            raise ValueError("code_valid_minutes must be at least 1")
        self.code_valid_minutes = code_valid_minutes
        self._client = client

    def message(self, code: str, link: str | None = None) -> str:
        text = (f"Your order verification code is {code}. It is valid for {self.code_valid_minutes} minutes. "
                "Do not share it with anyone.")
        return text + (f" Enter it at {link}" if link else "")

    def send_code(self, phone: str, code: str, *, link: str | None = None) -> SmsSent:
        client = self._client or aws.client("sns")
        try:
            response = client.publish(
                PhoneNumber=phone, Message=self.message(code, link),
                MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}})
        except ClientError as error:
            details = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            error_code = details.get("Code") or "Unknown"
            raise _rejection_or_transient(
                "sns", error_code, details.get("Message") or str(error),
                transient=status >= 500 or error_code in SNS_TRANSIENT_CODES, phone=phone,
                request_id=error.response.get("ResponseMetadata", {}).get("RequestId")) from error
        except BotoCoreError as error:  # no answer at all (connection, read timeout) after boto3's retries
            raise SmsTransientError("sns", type(error).__name__, str(error), phone=phone) from error
        return SmsSent("sns", response["MessageId"], response.get("ResponseMetadata", {}).get("RequestId"), phone)


def sms_sender(provider: SmsProvider, *, secrets_prefix: str,
               code_valid_minutes: int) -> AliyunSmsSender | SnsSmsSender:
    """The sender for a route from `sms_route`; build it once per container."""
    if provider == "aliyun":
        return AliyunSmsSender(secrets_prefix)
    if provider == "sns":
        return SnsSmsSender(code_valid_minutes=code_valid_minutes)
    raise ValueError(f"unknown SMS provider {provider!r}")
