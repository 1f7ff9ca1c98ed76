"""HTTP clients of allocation's data sources (WMS, carrier, attendance, quality): what they share.

- Where and who: `source_endpoint` reads the secret `{SECRETS_PREFIX}/sources/<source>` (`{"api_key",
  "base_url"?}`, cached like the shops' secrets); its `base_url` wins over the settings URL
  (`WMS_API_URL` ...), so one secret can point a stage at another endpoint. No URL anywhere: the
  source is not configured (None). A URL without a key is a `SourceError`.
- One call: `SourceHttp.call` with a connect/read timeout, retried with jittered exponential backoff
  (tenacity) on timeouts, broken connections or bodies, 5xx and 429 (waiting what Retry-After says),
  at most MAX_ATTEMPTS times and never past the caller's budget (`budget_seconds`, e.g. what is left
  of allocation's 5 s) or the invocation's deadline. What still fails raises `SourceError`: a timeout
  or a budget that cannot hold another attempt raises `SourceTimeoutError`; 401/403 raise
  `SourceAuthError`, 404 `SourceNotFoundError`, other 4xx `SourceRequestError` (not retried).
- Answers are validated by each client's pydantic wire models; one that does not fit raises
  `SourceError` naming the field.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from oms.adapters.secrets import shop_credentials
from oms.services.feeds import SOURCES, SourceError, SourceTimeoutError
from oms.settings import Settings

__all__ = [
    "SOURCES", "SourceAuthError", "SourceEndpoint", "SourceError", "SourceHttp", "SourceNotFoundError",
    "SourceRequestError", "SourceTimeoutError", "SourceUnavailableError", "source_endpoint", "source_http",
]

SECRET_GROUP = "sources"
API_KEY_HEADER = "X-Api-Key"
DEFAULT_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 3.0
MAX_ATTEMPTS = 4
MAX_RETRY_AFTER_SECONDS = 30.0


class SourceUnavailableError(SourceError):
    """A transient failure (5xx, 429, dropped connection, broken body): retried, then raised."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class SourceAuthError(SourceError):
    """The source refused our API key."""


class SourceNotFoundError(SourceError):
    """404: the warehouse, origin or reservation is unknown to the source."""


class SourceRequestError(SourceError):
    """Another 4xx: our request is wrong; retrying will not help."""


@dataclass(frozen=True)
class SourceEndpoint:
    source: str
    base_url: str
    api_key: str = field(repr=False)


def _secret_missing(error: GetParameterError) -> bool:
    cause = error.__cause__ or error.__context__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code") if cause is not None else None
    return code == "ResourceNotFoundException" or "ResourceNotFoundException" in str(error)


def source_endpoint(source: str, *, secrets_prefix: str, configured_url: str | None) -> SourceEndpoint | None:
    """Where the source's API is and its key; None when the deployment has no such API."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    name = f"{secrets_prefix}/{SECRET_GROUP}/{source}"
    try:
        secret = shop_credentials(secrets_prefix, SECRET_GROUP, source)
    except GetParameterError as error:
        if not _secret_missing(error):
            raise
        secret = None
    except ValueError as error:
        raise SourceError(f"secret {name}: {error}") from error
    base_url = ((secret or {}).get("base_url") or configured_url or "").strip()
    if not base_url:
        return None
    api_key = (secret or {}).get("api_key")
    if not isinstance(api_key, str) or not api_key:
        raise SourceError(f"{source} API at {base_url} is configured but secret {name} holds no api_key")
    return SourceEndpoint(source, base_url.rstrip("/"), api_key)


def source_http(settings: Settings, source: str, *, deadline: float | None = None,
                timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> SourceHttp | None:
    """The source's HTTP session from the settings and its secret; None when it is not configured."""
    endpoint = source_endpoint(source, secrets_prefix=settings.secrets_prefix,
                               configured_url=getattr(settings, f"{source}_api_url"))
    return None if endpoint is None else SourceHttp(endpoint, timeout_seconds=timeout_seconds, deadline=deadline)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _error_text(response: requests.Response) -> str:
    """`code: message` from the error envelope, else the start of the body."""
    try:
        error = response.json().get("error") or {}
        return f"{error.get('code')}: {error.get('message')}"
    except (ValueError, AttributeError):
        return response.text[:200]


def validation_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']} ({error.error_count()} problem(s))"


_backoff = wait_exponential_jitter(multiplier=0.2, max=5, jitter=0.3)


class SourceHttp:
    """One source's session (pooled keep-alive connections) and its calls."""

    def __init__(self, endpoint: SourceEndpoint, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
                 deadline: float | None = None, session: requests.Session | None = None,
                 max_attempts: int = MAX_ATTEMPTS):
        self.endpoint = endpoint
        self.timeout_seconds = timeout_seconds
        self.deadline = deadline  # time.monotonic() by which the invocation must stop calling
        self.max_attempts = max_attempts
        self.session = session or requests.Session()
        self.session.headers.update({API_KEY_HEADER: endpoint.api_key, "Accept": "application/json"})

    def call(self, method: str, path: str, *, params: dict | None = None, json: dict | None = None,
             budget_seconds: float | None = None) -> tuple[int, dict]:
        """(status, JSON object) of a 2xx answer, after the retries described in the module docstring."""
        budget_end = None if budget_seconds is None else time.monotonic() + budget_seconds
        limits = [limit for limit in (self.deadline, budget_end) if limit is not None]
        stop_at = min(limits) if limits else None
        url = self.endpoint.base_url + path
        what = f"{self.endpoint.source} {method} {path}"

        last: list[BaseException | None] = [None]

        def wait(state: RetryCallState) -> float:
            error = last[0] = state.outcome.exception() if state.outcome else None
            hinted = getattr(error, "retry_after", None)
            return hinted if hinted is not None else _backoff(state)

        def sleep(seconds: float) -> None:
            if stop_at is not None and time.monotonic() + seconds >= stop_at:
                raise SourceTimeoutError(f"{what}: no usable answer in the time allowed (last: {last[0]})") from last[0]
            time.sleep(seconds)

        retrying = Retrying(retry=retry_if_exception_type((SourceUnavailableError, SourceTimeoutError)),
                            stop=stop_after_attempt(self.max_attempts), wait=wait, sleep=sleep, reraise=True)
        return retrying(self._attempt, method, url, what, stop_at, params, json)

    def _attempt(self, method: str, url: str, what: str, stop_at: float | None, params: dict | None,
                 body: dict | None) -> tuple[int, dict]:
        read_timeout = self.timeout_seconds
        if stop_at is not None:
            read_timeout = min(read_timeout, stop_at - time.monotonic())
            if read_timeout <= 0:
                raise SourceTimeoutError(f"{what}: no time left for another attempt")
        try:
            response = self.session.request(method, url, params=params, json=body,
                                            timeout=(min(CONNECT_TIMEOUT_SECONDS, read_timeout), read_timeout))
            status = response.status_code
            if status == 429 or status >= 500:
                raise SourceUnavailableError(f"{what}: HTTP {status} {_error_text(response)}",
                                             _retry_after(response) if status == 429 else None)
            if status in (401, 403):
                raise SourceAuthError(f"{what}: HTTP {status} {_error_text(response)}")
            if status == 404:
                raise SourceNotFoundError(f"{what}: HTTP 404 {_error_text(response)}")
            if status >= 400:
                raise SourceRequestError(f"{what}: HTTP {status} {_error_text(response)}")
            answer = response.json()
        except requests.Timeout as error:
            raise SourceTimeoutError(f"{what}: timed out after {read_timeout:.2f}s") from error
        except requests.exceptions.JSONDecodeError as error:
            raise SourceUnavailableError(f"{what}: truncated or invalid JSON body") from error
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as error:
            raise SourceUnavailableError(f"{what}: {type(error).__name__}: {error}") from error
        if not isinstance(answer, dict):
            raise SourceError(f"{what}: expected a JSON object, got {type(answer).__name__}")
        return status, answer
