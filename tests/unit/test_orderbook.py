"""The simulators' order book: window queries by update time stay right as orders are re-written."""

import random
from datetime import datetime, timedelta, timezone

from omsdev.simulators.orderbook import OrderBook, by_created_at

T0 = datetime(2026, 11, 11, tzinfo=timezone.utc)


def brute_force(book: OrderBook, start, end) -> list[str]:
    chosen = [e for e in book.entries() if (start is None or e.updated_at >= start) and (end is None or e.updated_at <= end)]
    return [e.order_id for e in sorted(chosen, key=lambda e: (e.updated_at, e.order_id))]


def test_update_time_queries_match_a_full_scan_after_many_rewrites():
    # GIVEN orders written and re-written (each re-write moves the order later) in random order
    rng, book = random.Random(3), OrderBook("shopify")
    latest = {}
    for step in range(2000):
        order_id = str(rng.randint(1, 300))
        latest[order_id] = max(latest.get(order_id, T0), T0 + timedelta(seconds=rng.randint(0, 600)))
        book.put(order_id, {"step": step}, updated_at=latest[order_id], created_at=T0)
    # WHEN windows are queried, THEN the index gives exactly what a scan of the book gives, in order
    for _ in range(200):
        start = T0 + timedelta(seconds=rng.randint(0, 600))
        end = start + timedelta(seconds=rng.randint(0, 120))
        assert [e.order_id for e in book.select(start, end)] == brute_force(book, start, end)
    assert [e.order_id for e in book.select(None, None)] == brute_force(book, None, None)
    assert len(book.select(None, None)) == len(book) == len(latest)


def test_both_window_bounds_are_inclusive_and_times_in_other_zones_compare_as_instants():
    book = OrderBook()
    book.put("a", {}, updated_at=T0, created_at=T0)
    book.put("b", {}, updated_at=T0 + timedelta(seconds=1), created_at=T0)
    china = timezone(timedelta(hours=8))
    assert [e.order_id for e in book.select(T0.astimezone(china), T0 + timedelta(seconds=1))] == ["a", "b"]
    assert [e.order_id for e in book.select(T0 + timedelta(microseconds=1), None)] == ["b"]


def test_other_keys_still_select_by_scan():
    book = OrderBook()
    book.put("a", {}, updated_at=T0 + timedelta(hours=1), created_at=T0)
    book.put("b", {}, updated_at=T0, created_at=T0 + timedelta(hours=2))
    assert [e.order_id for e in book.select(T0 + timedelta(hours=1), None, key=by_created_at)] == ["b"]
