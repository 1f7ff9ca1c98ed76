"""The client-side token bucket on a fake clock: bursts, steady rate, platform pauses and syncs."""

import pytest

from oms.adapters.channels.ratelimit import RateBudgetExceeded, TokenBucket


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def bucket(rate: float, burst: float) -> tuple[TokenBucket, FakeTime]:
    time = FakeTime()
    return TokenBucket(rate, burst, clock=time.clock, sleep=time.sleep), time


def test_a_full_bucket_allows_its_burst_without_waiting_then_paces_at_the_rate():
    # GIVEN Shopify's bucket: 40 requests, leaking 2 per second
    limiter, time = bucket(2.0, 40)
    # WHEN 44 requests are made back to back
    waits = [limiter.acquire() for _ in range(44)]
    # THEN the first 40 go at once and each later one waits half a second
    assert waits[:40] == [0.0] * 40
    assert time.now == pytest.approx(2.0)


def test_a_refusal_pauses_for_the_retry_after_hint():
    limiter, time = bucket(2.0, 40)
    limiter.pause(3.0)
    limiter.acquire()
    assert time.now == pytest.approx(3.0)


def test_a_refusal_without_a_hint_at_amazons_rate_waits_one_restore_not_two():
    # GIVEN Amazon's getOrders bucket (one request a minute) whose platform answered 429
    limiter, time = bucket(0.0167, 18)
    limiter.acquire()
    limiter.pause(1 / limiter.rate)
    # WHEN the next request is made THEN it goes one restore period later, then the one after that another
    limiter.acquire()
    assert time.now == pytest.approx(1 / 0.0167)
    limiter.acquire()
    assert time.now == pytest.approx(2 / 0.0167)


def test_the_platform_reported_fill_level_replaces_our_guess():
    # GIVEN a fresh container that believes the bucket is empty of use
    limiter, time = bucket(2.0, 40)
    # WHEN Shopify reports 40/40 used
    limiter.set_available(0)
    limiter.acquire()
    # THEN the next request waits for one leak
    assert time.now == pytest.approx(0.5)


def test_the_reported_rate_replaces_the_documented_one():
    limiter, time = bucket(0.0167, 1)
    limiter.acquire()
    limiter.set_rate(10.0)
    limiter.acquire()
    assert time.now == pytest.approx(0.1)


def test_a_wait_past_the_deadline_is_refused_instead_of_slept():
    limiter, time = bucket(0.0167, 1)
    limiter.acquire()
    with pytest.raises(RateBudgetExceeded):
        limiter.acquire(deadline=time.now + 10)
