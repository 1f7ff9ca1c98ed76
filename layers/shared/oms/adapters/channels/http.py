"""One HTTP call to a channel API, with the rate limiter, timeouts and bounded retries (tenacity).

Transient failures (timeouts, dropped or truncated bodies, 5xx, 429) are retried a few times
within the invocation, honouring Retry-After; what still fails becomes a ChannelError and the
whole window goes to the retry queue. Other 4xx are not retried: they are bugs or bad credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from oms.adapters.channels.ratelimit import RateBudgetExceeded, TokenBucket
from oms.ports import ChannelAuthError, ChannelError, InvocationDeadlineError

MAX_ATTEMPTS = 4


class TransientChannelError(ChannelError):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class ChannelThrottledError(TransientChannelError):
    """The platform said "slow down", by HTTP status or inside an HTTP 200 envelope."""


class ChannelRequestError(ChannelError):
    """A 4xx answer other than throttling or auth: our request is wrong, retrying will not help."""


# Reads a parsed body the platform sent with HTTP 200: returns nothing when it is data, raises
# ChannelThrottledError / TransientChannelError / ChannelAuthError / ChannelRequestError when the
# envelope carries an error (the Chinese platforms never use the HTTP status for them).
EnvelopeCheck = Callable[[dict], None]


@dataclass
class JsonResponse:
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: dict


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_backoff = wait_exponential_jitter(multiplier=0.5, max=8, jitter=0.5)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    hinted = getattr(error, "retry_after", None)
    return hinted if hinted is not None else _backoff(state)


@dataclass
class ChannelHttp:
    """Shared by one channel client: session, timeout, deadline and the platform's error reading."""

    session: requests.Session
    timeout_seconds: float
    deadline: float | None = None  # time.monotonic() by which the invocation must stop calling

    def call(
        self,
        method: str,
        url: str,
        *,
        limiter: TokenBucket,
        on_response: Callable[[requests.Response], None] = lambda response: None,
        is_throttled: Callable[[requests.Response], bool] = lambda response: response.status_code == 429,
        check_envelope: EnvelopeCheck | None = None,
        **kwargs,
    ) -> JsonResponse:
        @retry(
            retry=retry_if_exception_type(TransientChannelError),
            stop=stop_after_attempt(MAX_ATTEMPTS),
            wait=_wait,
            reraise=True,
            sleep=self._sleep_within_deadline,
        )
        def attempt() -> JsonResponse:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise InvocationDeadlineError("the invocation deadline passed before the window was read")
            try:
                limiter.acquire(deadline=self.deadline)
            except RateBudgetExceeded as error:
                raise InvocationDeadlineError(f"rate limit: {error}") from error
            try:
                response = self.session.request(method, url, timeout=self.timeout_seconds, **kwargs)
                on_response(response)
                if is_throttled(response):
                    hint = _retry_after(response)
                    limiter.pause(hint if hint is not None else 1 / limiter.rate)
                    raise TransientChannelError(f"throttled: HTTP {response.status_code} {response.text[:200]}", hint)
                if response.status_code >= 500:
                    raise TransientChannelError(f"HTTP {response.status_code}: {response.text[:200]}")
                if response.status_code in (401, 403):
                    raise ChannelAuthError(f"HTTP {response.status_code}: {response.text[:200]}")
                if response.status_code >= 400:
                    raise ChannelRequestError(f"HTTP {response.status_code}: {response.text[:300]}")
                body = response.json()
                if check_envelope is not None:
                    try:
                        check_envelope(body)
                    except ChannelThrottledError as error:
                        limiter.pause(error.retry_after if error.retry_after is not None else 1 / limiter.rate)
                        raise
                return JsonResponse(response.status_code, response.headers, body)
            except (requests.Timeout, requests.ConnectionError) as error:
                raise TransientChannelError(f"{type(error).__name__}: {error}") from error
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as error:
                raise TransientChannelError(f"broken body: {error}") from error
            except requests.exceptions.JSONDecodeError as error:
                raise TransientChannelError(f"truncated or invalid JSON body: {error}") from error

        return attempt()

    def _sleep_within_deadline(self, seconds: float) -> None:
        if self.deadline is not None and time.monotonic() + seconds > self.deadline:
            raise InvocationDeadlineError(f"retry wait of {seconds:.1f}s would pass the invocation deadline")
        time.sleep(seconds)
