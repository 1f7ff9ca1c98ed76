"""Douyin Shop ingestion end to end: the Douyin simulator over real HTTP -> DouyinPollerFunction -> Orders.

Each test starts its shop's cursor a little before its backlog (what an operator does when a shop
is connected). The backlog is 2 minutes old because Douyin windows end 1 minute behind now.
"""

import time
from datetime import UTC, datetime, timedelta

from omsdev.simulators.base import FaultPlan
from omsdev.simulators.scenario import Scenario

from tests.integration.channel_helpers import (
    assert_every_order_stored_once,
    assert_only_order_quarantined,
    expire_tokens_after_the_first_page,
    move_an_early_order_out_of_the_window_before_every_page,
    not_stored,
    order_key,
    orders_table,
    poll_in_pairs_while_orders_arrive,
    poll_shop,
    poll_until_stored,
    quarantined_items,
    start_shop_connected_before_its_backlog,
)

CHANNEL = "douyin"
BACKDATED = Scenario(backdate=timedelta(minutes=2), cancel_share=0.0, duplicate_share=0.0)


def shop_with_backlog(name: str, count: int, spread: timedelta, **options):
    return start_shop_connected_before_its_backlog(CHANNEL, BACKDATED, name, count, spread, **options)


def test_every_order_is_stored_exactly_once_despite_faults_overlap_and_two_pollers(cloud):
    # GIVEN a shop whose gateway fails 20% of calls (5xx, throttling envelope, timeouts) with 120
    # orders over the last 45 minutes
    faults = FaultPlan(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=6)
    shop = shop_with_backlog("faulty", 120, timedelta(minutes=45), faults=faults)
    try:
        # AND the retry consumer wired to its queue, as in AWS (for as long as the pollers below run)
        # WHEN two pollers run at once, again and again (each window overlaps the last by the poll
        # overlap), while a few more orders arrive
        poll_in_pairs_while_orders_arrive(cloud, shop, until_orders=130, per_round=1,
                                          backdate=BACKDATED.backdate, seconds=50)
    finally:
        shop.simulator.stop()
    # THEN every order is stored exactly once, at its latest version
    assert_every_order_stored_once(shop, 130)
    # AND faults really happened and were never stored as data
    outcomes = shop.simulator.stats.outcomes()
    assert sum(n for outcome, n in outcomes.items() if outcome.startswith("fault_")) > 0, outcomes
    assert quarantined_items() == []


def test_windows_never_exceed_one_day_over_a_longer_backlog(cloud):
    # GIVEN 90 orders spread over the last 30 hours (longer than one maximum window)
    shop = shop_with_backlog("long", 90, timedelta(hours=30))
    try:
        # WHEN polled until everything is stored
        outcomes = poll_until_stored(cloud, shop, polls=5)
    finally:
        shop.simulator.stop()
    # THEN two or more windows were needed (read one after another by the first poll), none longer than a day
    # and none refused by the platform
    assert_every_order_stored_once(shop)
    assert outcomes[0]["windows"] >= 2 and all(outcome["state"] == "polled" for outcome in outcomes)
    windows = {(r["start"], r["end"]) for r in shop.simulator.list_requests}
    assert len(windows) >= 2
    assert shop.simulator.windows_over_maximum() == []
    assert shop.simulator.stats.count("bad_request") == 0


def test_keyset_paging_misses_no_order_that_shifts_between_pages_during_the_poll(cloud):
    # GIVEN 250 orders inside one window (three pages)
    shop = shop_with_backlog("moving", 250, timedelta(minutes=20))
    # AND before every page an early order leaves the window, shifting the rest towards page 0
    # (plain page numbers would skip one)
    moved = move_an_early_order_out_of_the_window_before_every_page(shop, "update_time_end")
    try:
        # WHEN one poll reads the window
        first = poll_shop(cloud, shop)
        shop.simulator.on_page = None
        # THEN every order that stayed in the window was stored by that poll
        assert first["state"] == "polled" and len(moved) >= 3
        assert not_stored(shop, [order_id for order_id in shop.book.order_ids() if order_id not in moved]) == []
        # AND the moved orders' new versions are stored by the next window, once it has closed
        time.sleep(7)
        poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    assert_every_order_stored_once(shop)


def test_a_token_that_expires_mid_poll_is_refreshed_and_the_poll_succeeds(cloud):
    # GIVEN 250 orders (several calls) and an access token that expires after the first call
    shop = shop_with_backlog("token", 250, timedelta(minutes=20))
    expire_tokens_after_the_first_page(shop)
    try:
        # WHEN polled
        outcome = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    # THEN the expired token was refused once, refreshed once through token.refresh, all stored
    assert outcome["state"] == "polled", outcome
    assert shop.simulator.stats.count("auth_failed") == 1 and shop.simulator.refreshes == 1
    assert_every_order_stored_once(shop)


def test_throttling_envelopes_are_retried_not_stored_as_data(cloud):
    # GIVEN a shop whose quota another app has nearly used up (1 call, 1 more per second)
    shop = shop_with_backlog("throttled", 250, timedelta(minutes=20))
    shop.simulator.limit = shop.simulator.new_bucket(1, 1)
    try:
        # WHEN polled
        outcome = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    # THEN the platform answered 60000 at least once, the client backed off and the poll succeeded
    assert shop.simulator.stats.count("rate_limited") >= 1
    assert outcome["state"] == "polled", outcome
    assert outcome["counts"]["created"] == 250
    # AND no envelope became an order or a quarantined record
    assert_every_order_stored_once(shop)
    assert quarantined_items() == []


def test_a_malformed_order_is_quarantined_while_the_rest_are_stored(cloud):
    shop = shop_with_backlog("messy", 8, timedelta(minutes=10))
    broken = shop.generator.create(datetime.now(UTC) - BACKDATED.backdate - timedelta(minutes=1),
                                   malformed="item_num_text")
    try:
        outcome = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    quarantined = assert_only_order_quarantined(outcome, broken, created=8)
    assert "sku_order_list[0].item_num" in quarantined["reason"]
    assert_every_order_stored_once(shop)


def test_a_late_cancellation_updates_the_stored_order(cloud):
    # GIVEN five paid orders, stored
    shop = shop_with_backlog("late", 5, timedelta(minutes=10))
    try:
        poll_shop(cloud, shop)
        order_id = min(shop.book.order_ids())
        key = order_key(shop, order_id)
        table = orders_table()
        assert table.get(key)["status"] == "paid"
        # WHEN the buyer is refunded in full before shipment (the order is cancelled) and polled again
        shop.generator.cancel(order_id, datetime.now(UTC) - BACKDATED.backdate)
        outcome = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    # THEN the stored order is refunded, one version later, with the new raw payload kept
    stored = table.get(key)
    assert outcome["counts"]["updated"] == 1
    assert stored["status"] == "refunded" and stored["version"] == 2
    assert table.raw_payload(stored)["order_status"] == 4
