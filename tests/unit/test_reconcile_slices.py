"""Reconciliation's slicing of a range into windows no longer than the platform allows."""

from datetime import datetime, timedelta, timezone

from oms.services.reconcile import slices

T0 = datetime(2026, 11, 11, tzinfo=timezone.utc)


def test_a_range_is_cut_into_consecutive_windows_that_cover_it_exactly():
    windows = slices(T0, T0 + timedelta(hours=2, minutes=10), timedelta(hours=1))
    assert [(w.start - T0, w.end - T0) for w in windows] == [
        (timedelta(0), timedelta(hours=1)),
        (timedelta(hours=1), timedelta(hours=2)),
        (timedelta(hours=2), timedelta(hours=2, minutes=10)),
    ]


def test_a_platform_maximum_shorter_than_an_hour_is_respected():
    windows = slices(T0, T0 + timedelta(hours=1), timedelta(minutes=30))
    assert len(windows) == 2 and all(w.end - w.start <= timedelta(minutes=30) for w in windows)


def test_an_empty_or_inverted_range_has_no_windows():
    assert slices(T0, T0, timedelta(hours=1)) == []
    assert slices(T0, T0 - timedelta(minutes=1), timedelta(hours=1)) == []
