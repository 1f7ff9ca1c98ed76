"""Token buckets that outlive one invocation: a warm container keeps what the platform told it."""

from __future__ import annotations

import threading

from oms.adapters.channels.ratelimit import TokenBucket

_buckets: dict[tuple[str, ...], TokenBucket] = {}
_lock = threading.Lock()


def bucket(key: tuple[str, ...], rate_per_second: float, burst: float) -> TokenBucket:
    with _lock:
        if key not in _buckets:
            _buckets[key] = TokenBucket(rate_per_second, burst)
        return _buckets[key]


def forget_all() -> None:
    """Start from cold (a new Lambda container); used by tooling between independent runs."""
    with _lock:
        _buckets.clear()
