"""Client-side token bucket, kept in step with the platform's own rate headers.

Hand-written rather than a library because it must be re-synchronised from what the platform
reports (Shopify's `X-Shopify-Shop-Api-Call-Limit`, Amazon's `x-amzn-RateLimit-Limit`) and
emptied on a 429, which general-purpose limiters do not offer. Reservation style: a caller takes
a token (the level may go negative) and sleeps outside the lock until its token is due, so
concurrent callers queue fairly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateBudgetExceeded(RuntimeError):
    """Waiting for the next token would overrun the caller's deadline."""


class TokenBucket:
    def __init__(
        self,
        rate_per_second: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self._rate = rate_per_second
        self._burst = float(burst)
        self._level = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self._burst, self._level + (now - self._stamp) * self._rate)
        self._stamp = now

    def acquire(self, deadline: float | None = None) -> float:
        """Take one token, sleeping until it is due; returns the seconds waited."""
        with self._lock:
            self._refill()
            wait = 0.0 if self._level >= 1 else (1 - self._level) / self._rate
            if deadline is not None and self._clock() + wait > deadline:
                raise RateBudgetExceeded(f"next request allowed in {wait:.1f}s, past the deadline")
            self._level -= 1
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """The platform refused a request: the next one goes `seconds` from now, not sooner (and not
        later: at Amazon's 1 request a minute, one token's time more is a lost minute)."""
        with self._lock:
            self._refill()
            self._level = min(self._level, 1.0 - max(seconds, 0.0) * self._rate)

    def set_rate(self, rate_per_second: float) -> None:
        if rate_per_second > 0:
            with self._lock:
                self._refill()
                self._rate = rate_per_second

    def set_available(self, available: float) -> None:
        """Align with the platform's own count of what is left in the bucket."""
        with self._lock:
            self._refill()
            self._level = min(self._level, available)
