"""Two pieces of the ingestion pipeline: the one-page-ahead reader and the warm container's memory
of stored versions."""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from oms.services.ingest import RecentVersions, prefetched

T0 = datetime(2026, 11, 11, tzinfo=timezone.utc)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_prefetched_yields_every_page_in_order_while_reading_the_next_one_ahead():
    read = []

    def pages():
        for number in range(5):
            read.append(number)
            yield [number]

    seen = []
    for page in prefetched(pages()):
        time.sleep(0.02)  # storing this page...
        seen.append((page[0], list(read)))
    assert [page for page, _ in seen] == [0, 1, 2, 3, 4]
    # ...while the next page was already read, but never more than one ahead
    assert all(number + 1 in so_far or number == 4 for number, so_far in seen)
    assert all(max(so_far) <= number + 2 for number, so_far in seen)


def test_prefetched_raises_the_readers_error_after_the_pages_before_it():
    def pages():
        yield [1]
        raise RuntimeError("HTTP 503 on page 2")

    got = []
    with pytest.raises(RuntimeError, match="page 2"):
        for page in prefetched(pages()):
            got.append(page)
    assert got == [[1]]


def test_prefetched_lets_the_reader_go_when_the_caller_stops_early():
    produced = threading.Event()

    def endless():
        number = 0
        while True:
            number += 1
            produced.set()
            yield [number]

    for page in prefetched(endless()):
        if page == [3]:
            break
    assert produced.is_set()  # and the test ends: the reader thread did not keep the caller waiting


def test_recent_versions_keep_the_newest_version_per_order():
    recent = RecentVersions()
    recent.remember({"shopify#a#1": ms(T0)})
    recent.remember({"shopify#a#1": ms(T0 - timedelta(seconds=5))})  # an older sighting never lowers it
    assert recent.versions({"shopify#a#1": 0, "shopify#a#2": 0}) == {"shopify#a#1": ms(T0)}


def test_recent_versions_forget_old_entries_of_one_shop_only():
    recent = RecentVersions()
    recent.remember({"shopify#a#old": ms(T0 - timedelta(hours=1)), "shopify#a#new": ms(T0),
                     "shopify#b#old": ms(T0 - timedelta(hours=1)), "amazon#a#x#y": ms(T0 - timedelta(hours=1))})
    recent.forget_older_than("shopify", "a", T0 - timedelta(minutes=5))
    assert set(recent.versions({k: 0 for k in ("shopify#a#old", "shopify#a#new", "shopify#b#old", "amazon#a#x#y")})) == {
        "shopify#a#new", "shopify#b#old", "amazon#a#x#y"}
    assert len(recent) == 3
    recent.forget_older_than("amazon", "a", T0)  # an order id with "#" in it still belongs to its shop
    assert recent.versions({"amazon#a#x#y": 0}) == {}
