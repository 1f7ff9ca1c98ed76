"""Kuaishou end to end: simulator over real HTTP -> KuaishouPollerFunction -> Orders table on moto.

Exactly once under faults with overlapping windows and two pollers; windows never longer than 7
days; cursor paging that misses nothing while orders move; a token expiring mid-poll; throttle
envelopes retried, never stored; a malformed order quarantined; a late cancellation updating.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from oms.adapters.channels.http import ChannelHttp
from oms.adapters.channels.kuaishou import KuaishouClient
from oms.adapters.orders_table import OrdersTable
from oms.adapters.quarantine_table import QuarantineTable
from oms.domain.polling import PollWindow
from oms.settings import get_settings
from omsdev.demo import poller_function_id, reconcile, start_shop
from omsdev.localcloud.cloud import LocalCloud
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.kuaishou import launch
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import Scenario, ScenarioRunner, generator_for

CHANNEL = "kuaishou"
BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)
SEVEN_DAYS_MS = 7 * 86_400_000


def shop_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def poll(cloud) -> dict:
    return cloud.invoke(poller_function_id(CHANNEL), {"channel": CHANNEL}, bypass_concurrency=True)


def shop_outcome(result: dict, shop) -> dict:
    return next(s for s in result["shops"] if s["shop_id"] == shop.shop_id)


def orders_table() -> OrdersTable:
    return OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket)


def poll_until_reconciled(cloud, shop, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        poll(cloud)
        if not reconcile([shop])[CHANNEL].stale_or_missing:
            return


def test_every_order_is_stored_exactly_once_despite_faults_overlap_and_two_pollers(cloud):
    # GIVEN a Kuaishou shop whose API fails 20% of calls (5xx, throttle envelopes, timeouts)
    faults = FaultPlan(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=31)
    shop = start_shop(CHANNEL, shop_id("ks-faults"), faults=faults)
    runner = ScenarioRunner([shop.generator], BACKDATED)
    runner.seed_backlog(110)
    cloud.start_wiring(only={"WindowRetryFunction"})
    try:
        # WHEN two pollers run at once, repeatedly, while more orders arrive
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline:
            threads = [threading.Thread(target=poll, args=(cloud,)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if runner.created < 140:
                for _ in range(10):
                    shop.generator.create(datetime.now(timezone.utc) - timedelta(minutes=3))
                    runner.created += 1
            # Keep polling (overlapping windows re-read) until every fault kind has been met too.
            met = shop.simulator.stats.outcomes()
            if (runner.created >= 140 and all(met[f"fault_{kind}"] for kind in faults.kinds)
                    and not reconcile([shop])[CHANNEL].stale_or_missing):
                break
    finally:
        cloud.stop_wiring()
    # THEN every order is stored exactly once at its latest version
    result = reconcile([shop])[CHANNEL]
    assert result.stale_or_missing == []
    assert result.expected == 140 and result.stored_items == 140
    # AND the faults really happened
    outcomes = shop.simulator.stats.outcomes()
    assert outcomes["fault_5xx"] and outcomes["fault_429"] and outcomes["fault_timeout"], outcomes
    shop.simulator.stop()


@pytest.fixture
def long_lookback_cloud():
    """A local cloud whose new shops start 20 days back: longer than one 7-day Kuaishou window."""
    overrides = {"RetryBackoffSeconds": "1,2,3", "ChannelHttpTimeoutSeconds": "1", "LogLevel": "WARNING",
                 "InitialLookbackSeconds": str(20 * 86400)}
    local = LocalCloud(port=0, stack_name=f"t{uuid.uuid4().hex[:8]}", parameter_overrides=overrides,
                       start_event_sources=False)
    local.start()
    yield local
    local.stop()


def test_windows_never_exceed_7_days_over_a_backlog_of_18_days(long_lookback_cloud):
    # GIVEN orders spread over the last 18 days
    shop = start_shop(CHANNEL, shop_id("ks-long"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(30, spread=timedelta(days=18))
    # WHEN the poller catches up
    poll_until_reconciled(long_lookback_cloud, shop, 40)
    # THEN everything is stored, over several windows, none longer than 7 days, none refused
    windows = shop.simulator.windows
    assert reconcile([shop])[CHANNEL].stale_or_missing == []
    assert len(set(windows)) >= 3
    assert max(end - begin for begin, end in windows) <= SEVEN_DAYS_MS
    assert shop.simulator.stats.count("bad_request") == 0
    shop.simulator.stop()


def test_the_client_cuts_a_20_day_window_into_7_day_slices():
    # GIVEN a 20-day window handed straight to the client (a retry or a reconciliation can do that)
    book = OrderBook(CHANNEL)
    orders = generator_for(CHANNEL, book, seed=4)
    now = datetime.now(timezone.utc)
    ids = {orders.create(now - timedelta(days=days, minutes=5)) for days in (1, 8, 15, 19)}
    simulator, credentials = launch(shop_id("ks-slices"), book)
    try:
        import requests

        client = KuaishouClient("slices", credentials, ChannelHttp(requests.Session(), timeout_seconds=5))
        window = PollWindow(now - timedelta(days=20), now - timedelta(minutes=2))
        read = {str(o["orderBaseInfo"]["oid"]) for page in client.fetch_window(window) for o in page}
    finally:
        simulator.stop()
    # THEN three slices were asked for, each within the limit, and every order was read
    assert read == ids
    assert [end - begin <= SEVEN_DAYS_MS for begin, end in simulator.windows] == [True, True, True]
    assert simulator.stats.count("bad_request") == 0


def test_orders_that_move_between_pages_during_a_poll_are_not_missed(cloud):
    # GIVEN 120 orders (three pages of 50)
    shop = start_shop(CHANNEL, shop_id("ks-moving"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120)
    by_time = sorted(shop.book.entries(), key=lambda e: (e.updated_at, e.order_id))
    already_read = [e.order_id for e in by_time[:5]]
    not_yet_read = [e.order_id for e in by_time[60:65] + by_time[110:115]]

    # AND, right after the first page is served, orders on both sides of the cursor change
    def move(number: int, served: list[str]) -> None:
        if number == 1:
            for order_id in already_read + not_yet_read:
                shop.generator.touch(order_id, datetime.now(timezone.utc) - timedelta(minutes=2))

    shop.simulator.on_page = move
    # WHEN one poll reads the window
    outcome = shop_outcome(poll(cloud), shop)
    # THEN every order is stored at its latest version after that single poll
    assert outcome["state"] == "polled"
    result = reconcile([shop])[CHANNEL]
    assert result.stale_or_missing == [] and result.stored_items == 120
    shop.simulator.stop()


def test_a_token_that_expires_mid_poll_is_refreshed_and_the_poll_succeeds(cloud):
    shop = start_shop(CHANNEL, shop_id("ks-token"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120)
    shop.simulator.on_page = lambda number, served: shop.simulator.expire_tokens() if number == 1 else None
    outcome = shop_outcome(poll(cloud), shop)
    assert outcome["state"] == "polled" and outcome["counts"]["created"] == 120
    assert shop.simulator.stats.count("auth_failed") == 1
    assert shop.simulator.refresh_requests == 1
    shop.simulator.stop()


def test_throttle_envelopes_are_retried_and_never_stored_as_data(cloud):
    # GIVEN a shop whose platform answers 40% of calls with the HTTP-200 throttle envelope, on a
    # plan of 6 requests per second
    shop = start_shop(CHANNEL, shop_id("ks-throttle"), faults=FaultPlan(rate=0.4, kinds=("429",), seed=8),
                      rate_multiplier=0.02)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120)
    cloud.start_wiring(only={"WindowRetryFunction"})
    try:
        poll_until_reconciled(cloud, shop, 40)
    finally:
        cloud.stop_wiring()
    result = reconcile([shop])[CHANNEL]
    assert result.stale_or_missing == [] and result.stored_items == 120
    assert shop.simulator.stats.count("fault_429") > 0
    assert QuarantineTable(get_settings().quarantine_table).list() == []
    shop.simulator.stop()


def test_a_malformed_order_is_quarantined_while_the_rest_are_stored(cloud):
    shop = start_shop(CHANNEL, shop_id("ks-messy"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(8)
    broken = shop.generator.create(datetime.now(timezone.utc) - timedelta(minutes=3), malformed="num_text")
    outcome = shop_outcome(poll(cloud), shop)
    assert outcome["counts"]["created"] == 8 and outcome["counts"]["quarantined"] == 1
    items = QuarantineTable(get_settings().quarantine_table).list()
    assert [item["channel_order_id"] for item in items] == [broken]
    assert "orderItemInfo.num" in items[0]["reason"]
    shop.simulator.stop()


def test_a_late_cancellation_updates_the_stored_order(cloud):
    shop = start_shop(CHANNEL, shop_id("ks-late"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(5)
    poll(cloud)
    order_id = min(shop.book.order_ids())
    key = f"{CHANNEL}#{shop.shop_id}#{order_id}"
    assert orders_table().get(key)["status"] == "paid"
    # WHEN the buyer cancels later and the next poll reads it
    shop.generator.cancel(order_id, datetime.now(timezone.utc) - timedelta(minutes=2))
    outcome = shop_outcome(poll(cloud), shop)
    stored = orders_table().get(key)
    # THEN the stored order is closed with its refund, one version later
    assert outcome["counts"]["updated"] == 1
    assert (stored["status"], stored["channel_status"], stored["version"]) == ("refunded", "80", 2)
    shop.simulator.stop()
