"""Kuaishou end to end: simulator over real HTTP -> KuaishouPollerFunction -> Orders table on moto.

Exactly once under faults with overlapping windows and two pollers; windows never longer than 7
days; cursor paging that misses nothing while orders move; a token expiring mid-poll; throttle
envelopes retried, never stored; a malformed order quarantined; a late cancellation updating.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms.adapters.channels.http import ChannelHttp
from oms.adapters.channels.kuaishou import KuaishouClient
from oms.domain.polling import PollWindow
from omsdev.demo import start_shop
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.kuaishou import launch
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import Scenario, ScenarioRunner, generator_for

from tests.integration.channel_helpers import (
    assert_every_order_stored_once,
    assert_only_order_quarantined,
    every_fault_kind_happened,
    order_key,
    orders_table,
    poll_in_pairs_while_orders_arrive,
    poll_shop,
    poll_until_stored,
    quarantined_items,
    unique_shop_id,
    window_retries_wired,
)

CHANNEL = "kuaishou"
BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)
SEVEN_DAYS_MS = 7 * 86_400_000


def poll(cloud, shop) -> dict:
    return poll_shop(cloud, shop, bypass_concurrency=True)


def test_every_order_is_stored_exactly_once_despite_faults_overlap_and_two_pollers(cloud):
    # GIVEN a Kuaishou shop whose API fails 20% of calls (5xx, throttle envelopes, timeouts)
    faults = FaultPlan(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=31)
    shop = start_shop(CHANNEL, unique_shop_id("ks-faults"), faults=faults)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(110)
    # WHEN two pollers run at once, repeatedly, while more orders arrive (and, overlapping windows
    # re-read, until every fault kind has been met too)
    poll_in_pairs_while_orders_arrive(cloud, shop, until_orders=140, per_round=10, backdate=BACKDATED.backdate,
                                      seconds=50, also_until=lambda: every_fault_kind_happened(shop, faults.kinds))
    # THEN every order is stored exactly once at its latest version
    assert_every_order_stored_once(shop, 140)
    # AND the faults really happened
    assert every_fault_kind_happened(shop, faults.kinds), shop.simulator.stats.outcomes()
    shop.simulator.stop()


def test_windows_never_exceed_7_days_over_a_backlog_of_18_days(cloud_factory):
    # GIVEN a local cloud whose new shops start 20 days back: longer than one 7-day Kuaishou window
    cloud = cloud_factory(InitialLookbackSeconds=str(20 * 86400))
    # AND orders spread over the last 18 days
    shop = start_shop(CHANNEL, unique_shop_id("ks-long"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(30, spread=timedelta(days=18))
    # WHEN the poller catches up
    poll_until_stored(cloud, shop, seconds=40, bypass_concurrency=True)
    # THEN everything is stored, over several windows, none longer than 7 days, none refused
    windows = shop.simulator.windows
    assert_every_order_stored_once(shop)
    assert len(set(windows)) >= 3
    assert max(end - begin for begin, end in windows) <= SEVEN_DAYS_MS
    assert shop.simulator.stats.count("bad_request") == 0
    shop.simulator.stop()


def test_the_client_cuts_a_20_day_window_into_7_day_slices():
    # GIVEN a 20-day window handed straight to the client (a retry or a reconciliation can do that)
    book = OrderBook(CHANNEL)
    orders = generator_for(CHANNEL, book, seed=4)
    now = datetime.now(UTC)
    ids = {orders.create(now - timedelta(days=days, minutes=5)) for days in (1, 8, 15, 19)}
    simulator, credentials = launch(unique_shop_id("ks-slices"), book)
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
    shop = start_shop(CHANNEL, unique_shop_id("ks-moving"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120)
    by_time = sorted(shop.book.entries(), key=lambda e: (e.updated_at, e.order_id))
    already_read = [e.order_id for e in by_time[:5]]
    not_yet_read = [e.order_id for e in by_time[60:65] + by_time[110:115]]

    # AND, right after the first page is served, orders on both sides of the cursor change
    def move(number: int, served: list[str]) -> None:
        if number == 1:
            for order_id in already_read + not_yet_read:
                shop.generator.touch(order_id, datetime.now(UTC) - timedelta(minutes=2))

    shop.simulator.on_page = move
    # WHEN one poll reads the window
    outcome = poll(cloud, shop)
    # THEN every order is stored at its latest version after that single poll
    assert outcome["state"] == "polled"
    assert_every_order_stored_once(shop, 120)
    shop.simulator.stop()


def test_a_token_that_expires_mid_poll_is_refreshed_and_the_poll_succeeds(cloud):
    shop = start_shop(CHANNEL, unique_shop_id("ks-token"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120)
    shop.simulator.on_page = lambda number, served: shop.simulator.expire_tokens() if number == 1 else None
    outcome = poll(cloud, shop)
    assert outcome["state"] == "polled" and outcome["counts"]["created"] == 120
    assert shop.simulator.stats.count("auth_failed") == 1
    assert shop.simulator.refresh_requests == 1
    shop.simulator.stop()


def test_throttle_envelopes_are_retried_and_never_stored_as_data(cloud):
    # GIVEN a shop whose platform answers 40% of calls with the HTTP-200 throttle envelope, on a
    # plan of 6 requests per second
    shop = start_shop(CHANNEL, unique_shop_id("ks-throttle"), faults=FaultPlan(rate=0.4, kinds=("429",), seed=8),
                      rate_multiplier=0.02)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120)
    with window_retries_wired(cloud):
        poll_until_stored(cloud, shop, seconds=40, bypass_concurrency=True)
    assert_every_order_stored_once(shop, 120)
    assert shop.simulator.stats.count("fault_429") > 0
    assert quarantined_items() == []
    shop.simulator.stop()


def test_a_malformed_order_is_quarantined_while_the_rest_are_stored(cloud):
    shop = start_shop(CHANNEL, unique_shop_id("ks-messy"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(8)
    broken = shop.generator.create(datetime.now(UTC) - timedelta(minutes=3), malformed="num_text")
    outcome = poll(cloud, shop)
    quarantined = assert_only_order_quarantined(outcome, broken, created=8)
    assert "orderItemInfo.num" in quarantined["reason"]
    shop.simulator.stop()


def test_a_late_cancellation_updates_the_stored_order(cloud):
    shop = start_shop(CHANNEL, unique_shop_id("ks-late"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(5)
    poll(cloud, shop)
    order_id = min(shop.book.order_ids())
    key = order_key(shop, order_id)
    assert orders_table().get(key)["status"] == "paid"
    # WHEN the buyer cancels later and the next poll reads it
    shop.generator.cancel(order_id, datetime.now(UTC) - timedelta(minutes=2))
    outcome = poll(cloud, shop)
    stored = orders_table().get(key)
    # THEN the stored order is closed with its refund, one version later
    assert outcome["counts"]["updated"] == 1
    assert (stored["status"], stored["channel_status"], stored["version"]) == ("refunded", "80", 2)
    shop.simulator.stop()
