"""AliExpress end to end: the IOP simulator over real HTTP -> the real AliexpressPollerFunction handler
-> Orders table on a moto server. Exactly once under faults and concurrent pollers, windows within
the maximum, backwards paging while orders move, token refresh mid-poll, throttling retried,
malformed orders quarantined, late cancellations applied."""

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from omsdev.demo import start_shop
from omsdev.simulators.aliexpress import MAX_SPAN
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.scenario import Scenario, ScenarioRunner

from tests.integration.channel_helpers import (
    assert_every_order_stored_once,
    assert_only_order_quarantined,
    every_fault_kind_happened,
    order_key,
    orders_table,
    poll_in_pairs_while_orders_arrive,
    poll_shop,
    quarantined_items,
    unique_shop_id,
)

CHANNEL = "aliexpress"
BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)


def shop_named(prefix: str, **options):
    return start_shop(CHANNEL, unique_shop_id(prefix), **options)


def test_every_order_is_stored_exactly_once_despite_faults_and_two_concurrent_pollers(cloud):
    # GIVEN a seller whose gateway breaks 20% of calls (5xx, throttle envelopes, timeouts)
    faults = FaultPlan(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=21)
    shop = shop_named("faulty", faults=faults, rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(80)
    try:
        # WHEN two pollers run at once, repeatedly, while a few more orders arrive
        outcomes = poll_in_pairs_while_orders_arrive(cloud, shop, until_orders=90, per_round=5,
                                                     backdate=BACKDATED.backdate, seconds=75)
    finally:
        shop.simulator.stop()
    # THEN every order is stored once, at its latest version
    assert_every_order_stored_once(shop, 90)
    # AND the pollers really overlapped: the shop lease turned one of them away at least once
    states = [outcome["state"] for outcome in outcomes]
    assert "busy" in states and "polled" in states
    # AND the faults really happened, of every kind
    assert every_fault_kind_happened(shop, faults.kinds), shop.simulator.stats.outcomes()


def test_windows_never_exceed_the_maximum_over_a_backlog_of_several_days(cloud_factory):
    # GIVEN a local cloud whose new shops start three days back: a backlog longer than one window
    cloud = cloud_factory(InitialLookbackSeconds=str(3 * 86400))
    # AND a new seller with orders spread over the last 60 hours
    shop = shop_named("backlog", rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(40, spread=timedelta(hours=60))
    try:
        # WHEN the poller runs until it has caught up
        states = [poll_shop(cloud, shop)["state"] for _ in range(5)]
    finally:
        shop.simulator.stop()
    # THEN every order is stored, no query was refused, and none spanned more than a day
    assert_every_order_stored_once(shop, 40)
    assert shop.simulator.stats.count("bad_request") == 0
    spans = [datetime.fromisoformat(q["modified_date_end"]) - datetime.fromisoformat(q["modified_date_start"])
             for q in shop.simulator.list_queries]
    assert max(spans) <= MAX_SPAN and len({q["modified_date_start"] for q in shop.simulator.list_queries}) >= 3
    assert states.count("polled") >= 3


def test_orders_that_move_between_pages_during_a_poll_are_not_missed(cloud):
    # GIVEN 130 orders: three pages of 50, newest change first
    shop = shop_named("moving", rate_multiplier=20)
    made = ScenarioRunner([shop.generator], BACKDATED).seed_backlog(130)
    newest = made[-10:]  # on page 1, read last when paging backwards
    moved, served = [], []

    def move_newest_orders(page: int, _query: dict) -> None:
        # After the second list page of the poll is served, ten orders of page 1 change: they leave
        # the window and every later position shifts up by ten (forward paging would skip ten).
        served.append(page)
        if len(served) == 2 and not moved:
            for order_id in newest:
                shop.generator.touch(order_id, datetime.now(UTC) - timedelta(seconds=110))
            moved.extend(newest)

    shop.simulator.on_page = move_newest_orders
    try:
        # WHEN the poll runs (the changes happen while it pages) and, once they are visible, the next one
        first = poll_shop(cloud, shop)
        shop.simulator.on_page = None
        time.sleep(12)
        second = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    # THEN the first poll stored all 120 unmoved orders, and the second the moved ones at their new version
    assert moved == newest and served == [1, 3, 2, 1]  # total_page first, then backwards
    assert first["state"] == "polled" and first["counts"]["created"] == 120
    assert second["state"] == "polled" and second["counts"]["created"] == 10
    assert_every_order_stored_once(shop, 130)


def test_a_token_that_expires_mid_poll_is_refreshed_and_the_poll_succeeds(cloud):
    # GIVEN a seller whose access tokens all expire right after the first list page
    shop = shop_named("token", rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(30)
    shop.simulator.on_page = lambda page, _q: shop.simulator.expire_tokens() if not shop.simulator.refresh_requests else None
    try:
        # WHEN the poller runs once
        result = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    # THEN one call was refused, the token was refreshed once, and every order is stored
    assert result["state"] == "polled" and result["counts"]["created"] == 30
    assert shop.simulator.stats.count("auth_failed") == 1 and shop.simulator.refresh_requests == 1


def test_throttle_envelopes_are_retried_and_never_stored_as_data(cloud):
    # GIVEN a gateway that answers 30% of calls with its HTTP 200 ApiCallLimit envelope
    shop = shop_named("throttled", faults=FaultPlan(rate=0.3, kinds=("429",), seed=5), rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(25)
    try:
        # WHEN the poller runs until everything is stored
        outcomes = [poll_shop(cloud, shop) for _ in range(3)]
    finally:
        shop.simulator.stop()
    # THEN the envelopes came and were retried; only the 25 orders are stored, nothing quarantined
    assert shop.simulator.stats.count("fault_429") > 0
    assert_every_order_stored_once(shop, 25)
    assert sum(o["counts"].get("quarantined", 0) for o in outcomes if o.get("counts")) == 0
    assert quarantined_items() == []


def test_a_malformed_order_is_quarantined_while_the_rest_are_stored(cloud):
    shop = shop_named("messy", rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(8)
    broken = shop.generator.create(datetime.now(UTC) - timedelta(minutes=3), malformed="product_count_text")
    try:
        result = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    quarantined = assert_only_order_quarantined(result, broken, created=8, shop=shop)
    assert "order_product_dto[0].product_count" in quarantined["reason"]


def test_a_late_cancellation_updates_the_stored_order(cloud):
    # GIVEN five paid orders already stored
    shop = shop_named("late", rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(5)
    try:
        poll_shop(cloud, shop)
        order_id = min(shop.book.order_ids())
        key = order_key(shop, order_id)
        assert orders_table().get(key)["status"] == "paid"
        # WHEN the buyer cancels and the next poll reads it
        shop.generator.cancel(order_id, datetime.now(UTC) - timedelta(seconds=150))
        result = poll_shop(cloud, shop)
    finally:
        shop.simulator.stop()
    # THEN the stored order is cancelled, one version later, with the FINISH payload kept
    stored = orders_table().get(key)
    assert result["counts"]["updated"] == 1
    assert stored["status"] == "cancelled" and stored["channel_status"] == "FINISH" and stored["version"] == 2
    assert orders_table().raw_payload(stored)["order"]["end_reason"] == "buyer_cancel_order"
    assert Counter(orders_table().get(order_key(shop, i))["status"] for i in shop.book.order_ids()) == {
        "paid": 4, "cancelled": 1}
