"""Douyin Shop ingestion end to end: the Douyin simulator over real HTTP -> DouyinPollerFunction -> Orders.

Each test starts its shop's cursor a little before its backlog (what an operator does when a shop
is connected). The backlog is 2 minutes old because Douyin windows end 1 minute behind now.
"""

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from oms.adapters.cursors_table import CursorsTable
from oms.adapters.orders_table import OrdersTable
from oms.adapters.quarantine_table import QuarantineTable
from oms.settings import get_settings
from omsdev.demo import poller_function_id, reconcile, start_shop
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.scenario import Scenario, ScenarioRunner

CHANNEL = "douyin"
BACKDATED = Scenario(backdate=timedelta(minutes=2), cancel_share=0.0, duplicate_share=0.0)


def unique_shop(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def poll(cloud, *, bypass_concurrency: bool = False) -> dict:
    outcome = cloud.invoke(poller_function_id(CHANNEL), {"channel": CHANNEL}, bypass_concurrency=bypass_concurrency)
    return outcome["shops"][0]


def start_cursor(shop_id: str, moment: datetime) -> None:
    """Connect the shop from `moment` on, instead of the default day of history."""
    cursors = CursorsTable(get_settings().shop_cursors_table)
    owner = uuid.uuid4().hex
    assert cursors.acquire_lease(CHANNEL, shop_id, owner, until=datetime.now(UTC) + timedelta(minutes=1))
    assert cursors.release_lease(CHANNEL, shop_id, owner, updated_through=moment)


def shop_with_backlog(name: str, count: int, spread: timedelta, **options):
    shop = start_shop(CHANNEL, unique_shop(name), **options)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(count, spread=spread)
    start_cursor(shop.shop_id, datetime.now(UTC) - BACKDATED.backdate - spread - timedelta(minutes=1))
    return shop


def orders_table() -> OrdersTable:
    return OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket)


def assert_every_order_stored_once(shop) -> None:
    result = reconcile([shop])[CHANNEL]
    assert result.stale_or_missing == []
    assert result.stored_exactly_once == result.expected == result.stored_items


def test_every_order_is_stored_exactly_once_despite_faults_overlap_and_two_pollers(cloud):
    # GIVEN a shop whose gateway fails 20% of calls (5xx, throttling envelope, timeouts) with 120
    # orders over the last 45 minutes
    faults = FaultPlan(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=6)
    shop = shop_with_backlog("faulty", 120, timedelta(minutes=45), faults=faults)
    # AND the retry consumer wired to its queue, as in AWS
    cloud.start_wiring(only={"WindowRetryFunction"})
    try:
        # WHEN two pollers run at once, again and again (each window overlaps the last by the poll
        # overlap), while a few more orders arrive
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline:
            threads = [threading.Thread(target=poll, args=(cloud,), kwargs={"bypass_concurrency": True})
                       for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if len(shop.book) < 130:
                shop.generator.create(datetime.now(UTC) - BACKDATED.backdate)
            if len(shop.book) >= 130 and not reconcile([shop])[CHANNEL].stale_or_missing:
                break
    finally:
        cloud.stop_wiring()
        shop.simulator.stop()
    # THEN every order is stored exactly once, at its latest version
    assert_every_order_stored_once(shop)
    assert reconcile([shop])[CHANNEL].expected == 130
    # AND faults really happened and were never stored as data
    outcomes = shop.simulator.stats.outcomes()
    assert sum(n for outcome, n in outcomes.items() if outcome.startswith("fault_")) > 0, outcomes
    assert QuarantineTable(get_settings().quarantine_table).list() == []


def test_windows_never_exceed_one_day_over_a_longer_backlog(cloud):
    # GIVEN 90 orders spread over the last 30 hours (longer than one maximum window)
    shop = shop_with_backlog("long", 90, timedelta(hours=30))
    try:
        # WHEN polled until everything is stored
        outcomes = []
        for _ in range(5):
            outcomes.append(poll(cloud))
            if not reconcile([shop])[CHANNEL].stale_or_missing:
                break
    finally:
        shop.simulator.stop()
    # THEN two or more windows were needed, none longer than a day and none refused by the platform
    assert_every_order_stored_once(shop)
    assert len(outcomes) >= 2 and all(outcome["state"] == "polled" for outcome in outcomes)
    windows = {(r["start"], r["end"]) for r in shop.simulator.list_requests}
    assert len(windows) >= 2
    assert shop.simulator.windows_over_maximum() == []
    assert shop.simulator.stats.count("bad_request") == 0


def test_keyset_paging_misses_no_order_that_shifts_between_pages_during_the_poll(cloud):
    # GIVEN 250 orders inside one window (three pages)
    shop = shop_with_backlog("moving", 250, timedelta(minutes=20))
    ids = sorted(shop.book.order_ids(), key=lambda i: (shop.book.get(i).updated_at, i))
    touched: list[str] = []

    def update_an_early_order(params: dict) -> None:
        # Before every page: the earliest untouched order changes and leaves the window, so the
        # orders behind it shift one place towards page 0 (plain page numbers would skip one).
        end = datetime.fromtimestamp(int(params["update_time_end"]), UTC)
        order_id = ids[len(touched)]
        shop.generator.touch(order_id, end + timedelta(seconds=5))
        touched.append(order_id)

    shop.simulator.on_page = update_an_early_order
    try:
        # WHEN one poll reads the window
        first = poll(cloud)
        shop.simulator.on_page = None
        # THEN every order that stayed in the window was stored by that poll
        table = orders_table()
        unmoved = [order_id for order_id in ids if order_id not in touched]
        assert first["state"] == "polled" and len(touched) >= 3
        assert [i for i in unmoved if table.get(f"{CHANNEL}#{shop.shop_id}#{i}") is None] == []
        # AND the moved orders' new versions are stored by the next window, once it has closed
        time.sleep(7)
        poll(cloud)
    finally:
        shop.simulator.stop()
    assert_every_order_stored_once(shop)


def test_a_token_that_expires_mid_poll_is_refreshed_and_the_poll_succeeds(cloud):
    # GIVEN 250 orders (several calls) and an access token that expires after the first call
    shop = shop_with_backlog("token", 250, timedelta(minutes=20))
    calls = []

    def expire_after_first_call(_params: dict) -> None:
        calls.append(1)
        if len(calls) == 1:
            shop.simulator.expire_tokens()

    shop.simulator.on_page = expire_after_first_call
    try:
        # WHEN polled
        outcome = poll(cloud)
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
        outcome = poll(cloud)
    finally:
        shop.simulator.stop()
    # THEN the platform answered 60000 at least once, the client backed off and the poll succeeded
    assert shop.simulator.stats.count("rate_limited") >= 1
    assert outcome["state"] == "polled", outcome
    assert outcome["counts"]["created"] == 250
    # AND no envelope became an order or a quarantined record
    assert_every_order_stored_once(shop)
    assert QuarantineTable(get_settings().quarantine_table).list() == []


def test_a_malformed_order_is_quarantined_while_the_rest_are_stored(cloud):
    shop = shop_with_backlog("messy", 8, timedelta(minutes=10))
    broken = shop.generator.create(datetime.now(UTC) - BACKDATED.backdate - timedelta(minutes=1),
                                   malformed="item_num_text")
    try:
        outcome = poll(cloud)
    finally:
        shop.simulator.stop()
    assert outcome["counts"]["created"] == 8 and outcome["counts"]["quarantined"] == 1
    items = QuarantineTable(get_settings().quarantine_table).list()
    assert [item["channel_order_id"] for item in items] == [broken]
    assert "sku_order_list[0].item_num" in items[0]["reason"]
    assert_every_order_stored_once(shop)


def test_a_late_cancellation_updates_the_stored_order(cloud):
    # GIVEN five paid orders, stored
    shop = shop_with_backlog("late", 5, timedelta(minutes=10))
    try:
        poll(cloud)
        order_id = min(shop.book.order_ids())
        key = f"{CHANNEL}#{shop.shop_id}#{order_id}"
        table = orders_table()
        assert table.get(key)["status"] == "paid"
        # WHEN the buyer is refunded in full before shipment (the order is cancelled) and polled again
        shop.generator.cancel(order_id, datetime.now(UTC) - BACKDATED.backdate)
        outcome = poll(cloud)
    finally:
        shop.simulator.stop()
    # THEN the stored order is refunded, one version later, with the new raw payload kept
    stored = table.get(key)
    assert outcome["counts"]["updated"] == 1
    assert stored["status"] == "refunded" and stored["version"] == 2
    assert table.raw_payload(stored)["order_status"] == 4
