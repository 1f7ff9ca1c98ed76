"""PDD ingestion end to end: the PDD simulator over real HTTP -> PddPollerFunction -> Orders table.

Each test starts its shop's cursor a little before its backlog (what an operator does when a shop
is connected), so a few 30-minute windows cover it; the backlog is 4 minutes old because PDD
windows end 3 minutes (+15 s skew) behind now.
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

CHANNEL = "pdd"
BACKDATED = Scenario(backdate=timedelta(minutes=4), cancel_share=0.0, duplicate_share=0.0)


def shop_with_backlog(name: str, count: int, spread: timedelta, **options):
    return start_shop_connected_before_its_backlog(CHANNEL, BACKDATED, name, count, spread, **options)


def test_every_order_is_stored_exactly_once_despite_faults_overlap_and_two_pollers(cloud):
    # GIVEN a shop whose gateway fails 20% of calls (5xx, throttling envelope, timeouts) with 120
    # orders over the last 45 minutes: two windows, overlapping by the poll overlap
    faults = FaultPlan(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=4)
    shop = shop_with_backlog("faulty", 120, timedelta(minutes=45), faults=faults)
    try:
        # AND the retry consumer wired to its queue, as in AWS (for as long as the pollers below run)
        # WHEN two pollers run at once, again and again, while a few more orders arrive
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


def test_windows_never_exceed_thirty_minutes_over_a_longer_backlog(cloud):
    # GIVEN 100 orders spread over the last 100 minutes (more than three maximum windows)
    shop = shop_with_backlog("long", 100, timedelta(minutes=100))
    try:
        # WHEN polled until everything is stored
        outcomes = poll_until_stored(cloud, shop, polls=8)
    finally:
        shop.simulator.stop()
    # THEN several windows were needed, none longer than 30 minutes and none refused by the gateway
    assert_every_order_stored_once(shop)
    requests_served = shop.simulator.list_requests
    assert len({(r["start"], r["end"]) for r in requests_served}) >= 4
    assert shop.simulator.windows_over_maximum() == []
    assert shop.simulator.stats.count("bad_request") == 0
    assert all(outcome["state"] == "polled" for outcome in outcomes)


def test_backwards_paging_misses_no_order_that_shifts_between_pages_during_the_poll(cloud):
    # GIVEN 250 orders inside one window (three pages)
    shop = shop_with_backlog("moving", 250, timedelta(minutes=20))
    # AND before every page an early order leaves the window, shifting the rest towards page 1
    moved = move_an_early_order_out_of_the_window_before_every_page(shop, "end_updated_at")
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
    # THEN the expired token was refused once, refreshed once, and everything was stored
    assert outcome["state"] == "polled", outcome
    assert shop.simulator.stats.count("auth_failed") == 1 and shop.simulator.refreshes == 1
    assert_every_order_stored_once(shop)


def test_throttling_envelopes_are_retried_not_stored_as_data(cloud):
    # GIVEN a shop whose per-shop quota another app has nearly used up (1 call, then one every 2 s: a
    # refusal comes however slowly a loaded machine runs the poll)
    shop = shop_with_backlog("throttled", 250, timedelta(minutes=20))
    shop.simulator.limit = shop.simulator.new_bucket(0.5, 1)
    try:
        # WHEN polled
        outcome = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    # THEN the gateway answered 70031 at least once, the client backed off and the poll succeeded
    assert shop.simulator.stats.count("rate_limited") >= 1
    assert outcome["state"] == "polled", outcome
    assert outcome["counts"]["created"] == 250
    # AND no envelope became an order or a quarantined record
    assert_every_order_stored_once(shop)
    assert quarantined_items() == []


def test_a_malformed_order_is_quarantined_while_the_rest_are_stored(cloud):
    shop = shop_with_backlog("messy", 8, timedelta(minutes=10))
    broken = shop.generator.create(datetime.now(UTC) - BACKDATED.backdate - timedelta(minutes=2),
                                   malformed="goods_count_text")
    try:
        outcome = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    quarantined = assert_only_order_quarantined(outcome, broken, created=8)
    assert "item_list[0].goods_count" in quarantined["reason"]


def test_a_late_cancellation_updates_the_stored_order(cloud):
    # GIVEN five paid orders, stored
    shop = shop_with_backlog("late", 5, timedelta(minutes=10))
    try:
        poll_shop(cloud, shop)
        order_id = min(shop.book.order_ids())
        key = order_key(shop, order_id)
        table = orders_table()
        assert table.get(key)["status"] == "paid"
        # WHEN the buyer is refunded in full before shipment and the next poll reads it
        shop.generator.cancel(order_id, datetime.now(UTC) - BACKDATED.backdate)
        outcome = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    # THEN the stored order is refunded, one version later, with the new raw payload kept
    stored = table.get(key)
    assert outcome["counts"]["updated"] == 1
    assert stored["status"] == "refunded" and stored["version"] == 2
    assert table.raw_payload(stored)["refund_status"] == 4
