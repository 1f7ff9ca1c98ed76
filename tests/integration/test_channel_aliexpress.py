"""AliExpress end to end: the IOP simulator over real HTTP -> the real AliexpressPollerFunction handler
-> Orders table on a moto server. Exactly once under faults and concurrent pollers, windows within
the maximum, backwards paging while orders move, token refresh mid-poll, throttling retried,
malformed orders quarantined, late cancellations applied."""

import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from oms.adapters.orders_table import OrdersTable
from oms.adapters.quarantine_table import QuarantineTable
from oms.settings import get_settings
from omsdev.demo import poller_function_id, reconcile, start_shop
from omsdev.localcloud.cloud import LocalCloud
from omsdev.simulators.aliexpress import MAX_SPAN
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.scenario import Scenario, ScenarioRunner

CHANNEL = "aliexpress"
BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)


def poll(cloud, *, concurrent: bool = False) -> dict:
    # `concurrent`: a second poller past the function's reserved concurrency of 1 (a redelivered
    # schedule, a manual invoke), so the shop lease is what keeps the two apart.
    return cloud.invoke(poller_function_id(CHANNEL), {"channel": CHANNEL}, bypass_concurrency=concurrent)


def shop_named(prefix: str, **options):
    return start_shop(CHANNEL, f"{prefix}-{uuid.uuid4().hex[:6]}", **options)


def orders_table() -> OrdersTable:
    return OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket)


@pytest.fixture
def long_lookback_cloud():
    """A local cloud whose new shops start three days back: a backlog longer than one window."""
    # The conftest's fast retry settings, plus a three-day first window.
    overrides = {"RetryBackoffSeconds": "1,2,3", "ChannelHttpTimeoutSeconds": "1", "LogLevel": "WARNING",
                 "InitialLookbackSeconds": str(3 * 86400)}
    local = LocalCloud(port=0, stack_name=f"t{uuid.uuid4().hex[:8]}", parameter_overrides=overrides,
                       start_event_sources=False)
    local.start()
    yield local
    local.stop()


def test_every_order_is_stored_exactly_once_despite_faults_and_two_concurrent_pollers(cloud):
    # GIVEN a seller whose gateway breaks 20% of calls (5xx, throttle envelopes, timeouts)
    faults = FaultPlan(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=21)
    shop = shop_named("faulty", faults=faults, rate_multiplier=10)
    runner = ScenarioRunner([shop.generator], BACKDATED)
    runner.seed_backlog(80)
    cloud.start_wiring(only={"WindowRetryFunction"})
    try:
        # WHEN two pollers run at once, repeatedly, while a few more orders arrive
        states: list[str] = []
        deadline = time.monotonic() + 75
        while time.monotonic() < deadline:
            threads = [threading.Thread(target=lambda: states.extend(
                shop_["state"] for shop_ in poll(cloud, concurrent=True)["shops"])) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if runner.created < 90:
                for _ in range(5):
                    shop.generator.create(datetime.now(timezone.utc) - timedelta(minutes=3))
                    runner.created += 1
            result = reconcile([shop])[CHANNEL]
            if runner.created >= 90 and not result.stale_or_missing:
                break
    finally:
        cloud.stop_wiring()
        shop.simulator.stop()
    # THEN every order is stored once, at its latest version
    result = reconcile([shop])[CHANNEL]
    assert result.stale_or_missing == []
    assert result.stored_items == result.expected == 90
    # AND the pollers really overlapped: the shop lease turned one of them away at least once
    assert "busy" in states and "polled" in states
    # AND the faults really happened, of every kind
    outcomes = shop.simulator.stats.outcomes()
    assert outcomes["fault_5xx"] and outcomes["fault_429"] and outcomes["fault_timeout"], outcomes


def test_windows_never_exceed_the_maximum_over_a_backlog_of_several_days(long_lookback_cloud):
    # GIVEN a new seller with orders spread over the last 60 hours
    shop = shop_named("backlog", rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(40, spread=timedelta(hours=60))
    try:
        # WHEN the poller runs until it has caught up
        states = [poll(long_lookback_cloud)["shops"][0]["state"] for _ in range(5)]
    finally:
        shop.simulator.stop()
    # THEN every order is stored, no query was refused, and none spanned more than a day
    result = reconcile([shop])[CHANNEL]
    assert result.stale_or_missing == [] and result.stored_items == 40
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
                shop.generator.touch(order_id, datetime.now(timezone.utc) - timedelta(seconds=110))
            moved.extend(newest)

    shop.simulator.on_page = move_newest_orders
    try:
        # WHEN the poll runs (the changes happen while it pages) and, once they are visible, the next one
        first = poll(cloud)["shops"][0]
        shop.simulator.on_page = None
        time.sleep(12)
        second = poll(cloud)["shops"][0]
    finally:
        shop.simulator.stop()
    # THEN the first poll stored all 120 unmoved orders, and the second the moved ones at their new version
    assert moved == newest and served == [1, 3, 2, 1]  # total_page first, then backwards
    assert first["state"] == "polled" and first["counts"]["created"] == 120
    assert second["state"] == "polled" and second["counts"]["created"] == 10
    result = reconcile([shop])[CHANNEL]
    assert result.stale_or_missing == [] and result.stored_items == 130


def test_a_token_that_expires_mid_poll_is_refreshed_and_the_poll_succeeds(cloud):
    # GIVEN a seller whose access tokens all expire right after the first list page
    shop = shop_named("token", rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(30)
    shop.simulator.on_page = lambda page, _q: shop.simulator.expire_tokens() if not shop.simulator.refresh_requests else None
    try:
        # WHEN the poller runs once
        result = poll(cloud)["shops"][0]
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
        outcomes = [poll(cloud)["shops"][0] for _ in range(3)]
    finally:
        shop.simulator.stop()
    # THEN the envelopes came and were retried; only the 25 orders are stored, nothing quarantined
    assert shop.simulator.stats.count("fault_429") > 0
    result = reconcile([shop])[CHANNEL]
    assert result.stale_or_missing == [] and result.stored_items == 25
    assert sum(o["counts"].get("quarantined", 0) for o in outcomes if o.get("counts")) == 0
    assert QuarantineTable(get_settings().quarantine_table).list() == []


def test_a_malformed_order_is_quarantined_while_the_rest_are_stored(cloud):
    shop = shop_named("messy", rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(8)
    broken = shop.generator.create(datetime.now(timezone.utc) - timedelta(minutes=3), malformed="product_count_text")
    try:
        result = poll(cloud)["shops"][0]
    finally:
        shop.simulator.stop()
    assert result["counts"]["created"] == 8 and result["counts"]["quarantined"] == 1
    items = [i for i in QuarantineTable(get_settings().quarantine_table).list() if i["shop_id"] == shop.shop_id]
    assert [item["channel_order_id"] for item in items] == [broken]
    assert "order_product_dto[0].product_count" in items[0]["reason"]


def test_a_late_cancellation_updates_the_stored_order(cloud):
    # GIVEN five paid orders already stored
    shop = shop_named("late", rate_multiplier=10)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(5)
    try:
        poll(cloud)
        order_id = sorted(shop.book.order_ids())[0]
        key = f"{CHANNEL}#{shop.shop_id}#{order_id}"
        assert orders_table().get(key)["status"] == "paid"
        # WHEN the buyer cancels and the next poll reads it
        shop.generator.cancel(order_id, datetime.now(timezone.utc) - timedelta(seconds=150))
        result = poll(cloud)["shops"][0]
    finally:
        shop.simulator.stop()
    # THEN the stored order is cancelled, one version later, with the FINISH payload kept
    stored = orders_table().get(key)
    assert result["counts"]["updated"] == 1
    assert stored["status"] == "cancelled" and stored["channel_status"] == "FINISH" and stored["version"] == 2
    assert orders_table().raw_payload(stored)["order"]["end_reason"] == "buyer_cancel_order"
    assert Counter(o["status"] for o in [orders_table().get(f"{CHANNEL}#{shop.shop_id}#{i}")
                                         for i in shop.book.order_ids()]) == {"paid": 4, "cancelled": 1}
