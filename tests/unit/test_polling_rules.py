"""Poll window planning and the retry schedule: pure rules, no I/O."""

from datetime import datetime, timedelta, timezone

import pytest

from oms.domain.polling import ChannelWindowRules, PollWindow, RetrySchedule, plan_poll_window

NOW = datetime(2026, 11, 11, 0, 10, tzinfo=timezone.utc)
AMAZON = ChannelWindowRules(lag=timedelta(minutes=2), max_span=None)
PDD_LIKE = ChannelWindowRules(lag=timedelta(minutes=3), max_span=timedelta(minutes=30))


def test_first_window_starts_at_the_initial_lookback_and_ends_lag_before_now():
    # GIVEN a shop that was never polled
    # WHEN its first window is planned
    window = plan_poll_window(
        cursor=None, now=NOW, rules=AMAZON, overlap=timedelta(minutes=5), initial_lookback=timedelta(days=1)
    )
    # THEN it reads the last day up to two minutes ago
    assert window == PollWindow(start=NOW - timedelta(days=1), end=NOW - timedelta(minutes=2))


def test_later_windows_re_read_the_overlap_before_the_cursor():
    cursor = NOW - timedelta(minutes=4)
    window = plan_poll_window(
        cursor=cursor, now=NOW, rules=AMAZON, overlap=timedelta(minutes=5), initial_lookback=timedelta(days=1)
    )
    assert window.start == cursor - timedelta(minutes=5)
    assert window.end == NOW - timedelta(minutes=2)


def test_a_platform_maximum_span_caps_the_window_so_backlogs_advance_in_slices():
    cursor = NOW - timedelta(hours=5)
    window = plan_poll_window(
        cursor=cursor, now=NOW, rules=PDD_LIKE, overlap=timedelta(minutes=1), initial_lookback=timedelta(days=1)
    )
    assert window.end - window.start == timedelta(minutes=30)


def test_nothing_is_due_while_the_cursor_is_inside_the_lag():
    window = plan_poll_window(
        cursor=NOW - timedelta(minutes=1),
        now=NOW,
        rules=AMAZON,
        overlap=timedelta(0),
        initial_lookback=timedelta(days=1),
    )
    assert window is None


def test_windows_reject_naive_or_empty_bounds():
    with pytest.raises(ValueError):
        PollWindow(start=NOW, end=NOW)
    with pytest.raises(ValueError):
        PollWindow(start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))


def test_the_default_schedule_waits_30_90_270_seconds_then_dead_letters():
    # GIVEN the seed's schedule
    schedule = RetrySchedule(delays_seconds=(30, 90, 270))
    # WHEN a window fails again and again
    delays = [schedule.delay_after(failures) for failures in range(1, 5)]
    # THEN it is retried after 30, 90 and 270 seconds and then goes to the DLQ
    assert delays == [30, 90, 270, None]


def test_a_schedule_needs_at_least_one_delay_and_a_real_failure():
    with pytest.raises(ValueError):
        RetrySchedule(delays_seconds=())
    with pytest.raises(ValueError):
        RetrySchedule(delays_seconds=(30,)).delay_after(0)
