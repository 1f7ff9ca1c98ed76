"""Token buckets that outlive one invocation: a warm container keeps what the platform told it."""

from __future__ import annotations

import threading

from oms.adapters.channels.ratelimit import TokenBucket

_buckets: dict[tuple[str, ...], TokenBucket] = {}
_lock = threading.Lock()
# Calls of the granted burst left unused: requests reach the platform with varying delays, so two
# sent 1/rate apart may arrive closer together; at a full rate the platform's bucket then needs a
# token or two in hand, or it refuses one (and a refusal costs far more than two calls: TOP bans
# for a whole second). The rate itself is used in full.
JITTER_TOKENS = 2


def bucket(key: tuple[str, ...], rate_per_second: float, burst: float) -> TokenBucket:
    with _lock:
        if key not in _buckets:
            _buckets[key] = TokenBucket(rate_per_second, burst)
        return _buckets[key]


def granted_rate(credentials: dict, default_rate: float, default_burst: float) -> tuple[float, float]:
    """(calls/s, burst) the shop's secret says the app is granted, else the adapter's defaults.

    Where quotas are console settings (TOP, JD, PDD, Douyin, Kuaishou, AliExpress) the seller
    copies them into the secret (`calls_per_second`, optional `burst`), so the adapter runs at the
    platform's limit rather than under a guess. A given rate without a burst allows one second's
    worth of calls at once; either way JITTER_TOKENS of it stay unused (at least one call remains).
    """
    if credentials.get("calls_per_second") in (None, ""):
        return default_rate, default_burst
    rate = float(credentials["calls_per_second"])
    if rate <= 0:
        raise ValueError(f"calls_per_second must be positive, got {rate}")
    burst = credentials.get("burst")
    granted = float(burst) if burst not in (None, "") else rate
    return rate, max(granted - JITTER_TOKENS, 1.0)


def forget_all() -> None:
    """Start from cold (a new Lambda container); used by tooling between independent runs."""
    with _lock:
        _buckets.clear()
