"""Ingestion end to end: simulators over real HTTP -> pollers -> Orders table on a moto server.

The acceptance cases of the foundation issue: exactly once under faults, overlapping windows and
concurrent pollers; rate limits honoured; late cancellations update; old versions never win;
malformed orders quarantined; a window that keeps failing ends in the DLQ after the schedule.
"""

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from oms.adapters.cursors_table import CursorsTable
from oms.adapters.quarantine_table import QuarantineTable
from oms.settings import get_settings
from omsdev.demo import poller_function_id, reconcile, start_amazon_shop, start_shopify_shop
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.scenario import Scenario, ScenarioRunner

pytestmark = pytest.mark.long_running  # minutes: scheduled first (tests/conftest.py)

BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)


def poll(cloud, channel: str) -> dict:
    # Tests overlap polls of one shop on purpose (a scheduler redelivery beside a retry, a manual
    # run): the lease must hold even where reserved concurrency would not stop it.
    return cloud.invoke(poller_function_id(channel), {"channel": channel}, bypass_concurrency=True)


def queue_messages(cloud, logical_id: str) -> list[dict]:
    sqs = cloud.stack.client("sqs")
    found = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=cloud.stack.ref(logical_id), MaxNumberOfMessages=10, WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(batch)


def test_every_order_is_stored_exactly_once_despite_faults_overlap_and_concurrent_pollers(cloud):
    # GIVEN a Shopify and an Amazon shop whose APIs fail 20% of calls (5xx, 429, timeouts)
    faults = dict(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5)
    shops = [
        start_shopify_shop("hk", faults=FaultPlan(**faults, seed=11)),
        start_amazon_shop("eu", faults=FaultPlan(**faults, seed=12), rate_multiplier=50),
    ]
    runner = ScenarioRunner([shop.generator for shop in shops], BACKDATED)
    runner.seed_backlog(150)
    # AND the retry consumer wired to its queue, as in AWS
    cloud.start_wiring(only={"WindowRetryFunction"})
    try:
        # WHEN pollers run repeatedly, two at once for each shop, while more orders keep arriving
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            threads = [threading.Thread(target=poll, args=(cloud, channel)) for channel in ("shopify", "amazon") * 2]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if runner.created < 320:
                for shop in shops:
                    shop.generator.create(datetime.now(timezone.utc) - timedelta(minutes=3))
                    runner.created += 1
            results = reconcile(shops)
            if runner.created >= 320 and all(not r.stale_or_missing for r in results.values()):
                break
    finally:
        cloud.stop_wiring()
    # THEN every generated order is stored exactly once, at its latest version
    results = reconcile(shops)
    for channel, result in results.items():
        assert result.stale_or_missing == [], channel
        assert result.stored_items == result.expected, f"{channel}: an order key stored more than once"
    # AND the faults really happened: every kind, on both channels
    from collections import Counter

    total = Counter()
    for shop in shops:
        outcomes = shop.simulator.stats.outcomes()
        assert sum(n for outcome, n in outcomes.items() if outcome.startswith("fault_")) > 0, shop.channel
        total.update(outcomes)
        shop.simulator.stop()
    assert total["fault_5xx"] and total["fault_429"] and total["fault_timeout"], total


def test_two_pollers_of_one_shop_at_the_same_time_store_each_order_once(cloud):
    shop = start_shopify_shop("twin")
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(300)
    barrier = threading.Barrier(2)
    results = []

    def run():
        barrier.wait()
        results.append(poll(cloud, "shopify")["shops"][0])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One took the shop's lease and polled; the other saw it held and stood back.
    assert sorted(r["state"] for r in results) == ["busy", "polled"]
    # A later poll re-reads the overlap and finds nothing new to store.
    again = poll(cloud, "shopify")["shops"][0]
    assert again["state"] == "polled" and again["counts"].get("created", 0) == 0
    result = reconcile([shop])["shopify"]
    assert result.stored_exactly_once == result.expected == result.stored_items == 300
    shop.simulator.stop()


def test_rate_limits_are_honoured_with_at_most_one_refusal_per_window(cloud):
    # GIVEN an Amazon seller whose getOrderItems quota (burst 30) is smaller than one window's orders
    amazon = start_amazon_shop("quota", rate_multiplier=10)
    # AND a Shopify store whose bucket another app has just drained
    shopify = start_shopify_shop("busy-store")
    ScenarioRunner([amazon.generator, shopify.generator], BACKDATED).seed_backlog(70)
    import requests

    for _ in range(40):
        requests.get(f"{shopify.simulator.url}/admin/api/2024-04/orders.json",
                     headers={"X-Shopify-Access-Token": "shpat_busy-store"}, params={"limit": 1}, timeout=5)
    # WHEN each channel is polled once
    amazon_result = poll(cloud, "amazon")["shops"][0]
    shopify_result = poll(cloud, "shopify")["shops"][0]
    # THEN everything is stored and the platforms refused at most the first request of the window
    assert amazon_result["state"] == shopify_result["state"] == "polled"
    assert amazon.simulator.stats.count("rate_limited") <= 1
    assert shopify.simulator.stats.count("rate_limited") <= 1
    assert amazon_result["counts"]["created"] == 70 and shopify_result["counts"]["created"] == 70
    amazon.simulator.stop()
    shopify.simulator.stop()


def test_a_later_cancellation_updates_the_stored_order_and_an_older_version_never_wins(cloud):
    shop = start_shopify_shop("late")
    runner = ScenarioRunner([shop.generator], BACKDATED)
    runner.seed_backlog(5)
    poll(cloud, "shopify")
    order_id = sorted(shop.book.order_ids())[0]
    key = f"shopify#late#{order_id}"
    from oms.adapters.orders_table import OrdersTable

    table = OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket)
    paid_version = shop.book.get(order_id).payload
    # WHEN the buyer cancels later and the next poll reads it
    shop.generator.cancel(order_id, datetime.now(timezone.utc) - timedelta(minutes=2))
    result = poll(cloud, "shopify")["shops"][0]
    stored = table.get(key)
    # THEN the stored order is cancelled, one version later, with the new raw payload kept
    assert result["counts"]["updated"] == 1
    assert stored["status"] == "cancelled" and stored["version"] == 2
    assert table.raw_payload(stored)["cancelled_at"] is not None
    # AND replaying the older paid version (a stale page, a late retry) changes nothing
    from oms.normalizers import normalizer_for
    from oms.ports import SaveResult

    stale = normalizer_for("shopify").normalize(paid_version, "late")
    assert table.save(stale, paid_version) is SaveResult.STALE
    assert table.get(key)["status"] == "cancelled"
    shop.simulator.stop()


def test_concurrent_writers_of_many_versions_leave_the_newest(cloud):
    from oms.adapters.orders_table import OrdersTable
    from oms.normalizers import normalizer_for

    table = OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket)
    shop = start_shopify_shop("versions")
    order_id = shop.generator.create(datetime(2026, 11, 11, tzinfo=timezone.utc))
    base = shop.book.get(order_id).payload
    versions = []
    for minute in range(12):
        stamp = datetime(2026, 11, 11, 0, minute, tzinfo=timezone.utc).isoformat()
        versions.append({**base, "updated_at": stamp, "note": f"v{minute}"})
    orders = [normalizer_for("shopify").normalize(raw, "versions") for raw in versions]
    barrier = threading.Barrier(len(orders))
    outcomes = []

    def write(order, raw):
        barrier.wait()
        outcomes.append(table.save(order, raw).value)

    threads = [threading.Thread(target=write, args=pair) for pair in reversed(list(zip(orders, versions)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = table.get(f"shopify#versions#{order_id}")
    assert stored["updated_at"] == "2026-11-11T00:11:00Z"
    assert table.raw_payload(stored)["note"] == "v11"
    assert outcomes.count("created") == 1
    shop.simulator.stop()


def test_a_malformed_order_is_quarantined_with_its_reason_while_the_rest_are_stored(cloud):
    shop = start_shopify_shop("messy")
    runner = ScenarioRunner([shop.generator], BACKDATED)
    runner.seed_backlog(8)
    broken = shop.generator.create(datetime.now(timezone.utc) - timedelta(minutes=3), malformed=True)
    result = poll(cloud, "shopify")["shops"][0]
    assert result["counts"]["created"] == 8 and result["counts"]["quarantined"] == 1
    items = QuarantineTable(get_settings().quarantine_table).list()
    assert [item["channel_order_id"] for item in items] == [broken]
    assert "line_items[0].quantity" in items[0]["reason"]
    # Re-reading the same window does not quarantine it twice.
    poll(cloud, "shopify")
    items = QuarantineTable(get_settings().quarantine_table).list()
    assert len(items) == 1 and items[0]["seen_count"] == 2
    # A later version that is still broken updates the same row and keeps the latest payload.
    touched_at = shop.generator.touch(broken, datetime.now(timezone.utc))
    poll(cloud, "shopify")
    items = QuarantineTable(get_settings().quarantine_table).list()
    assert len(items) == 1 and items[0]["seen_count"] == 3
    latest = QuarantineTable.raw_payload(items[0])
    assert datetime.fromisoformat(latest["updated_at"]) == touched_at
    shop.simulator.stop()


def test_a_window_that_keeps_failing_is_retried_on_schedule_then_dead_lettered(cloud):
    # GIVEN a store whose API answers 503 to every call, and the schedule 1 s, 2 s, 3 s
    shop = start_shopify_shop("down", faults=FaultPlan(rate=1.0, kinds=("5xx",)))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(3)
    cloud.start_wiring(only={"WindowRetryFunction"})
    try:
        # WHEN the scheduled poll fails
        first = poll(cloud, "shopify")["shops"][0]
        assert first["state"] == "failed"
        deadline = time.monotonic() + 60
        dead = []
        while not dead and time.monotonic() < deadline:
            time.sleep(1)
            dead = queue_messages(cloud, "RetryDeadLetterQueue")
    finally:
        cloud.stop_wiring()
    # THEN after three retries the window is in the DLQ with every failure and its reason
    assert len(dead) == 1
    message = json.loads(dead[0]["Body"])
    assert message["failed_attempts"] == 4
    assert all("503" in failure["reason"] for failure in message["failures"])
    assert dead[0]["MessageAttributes"]["reason"]["StringValue"].startswith("TransientChannelError")
    moments = [datetime.fromisoformat(f["at"]) for f in message["failures"]]
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(moments, moments[1:])]
    assert [round(min(gap, 10)) >= delay for gap, delay in zip(gaps, (1, 2, 3))] == [True, True, True], gaps
    # AND the shop's cursor moved past the dead-lettered window, so polling is not stuck behind it
    cursor = CursorsTable(get_settings().shop_cursors_table).get("shopify", "down")
    window_end = datetime.fromisoformat(message["window_end"])
    assert cursor.updated_through == window_end.replace(microsecond=window_end.microsecond // 1000 * 1000)
    shop.simulator.stop()


def test_a_window_too_long_for_one_invocation_is_finished_by_later_polls_without_refetching(cloud):
    # GIVEN an Amazon seller with more orders in one window than getOrderItems allows per invocation
    import poller.handler
    from omsdev.localcloud.runtime import LambdaContext

    shop = start_amazon_shop("backlog", rate_multiplier=10)  # getOrderItems 5/s, burst 30
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(80, spread=timedelta(seconds=30))
    outcomes = []
    # WHEN polls with a short Lambda timeout run one after another
    for _ in range(12):
        context = LambdaContext("AmazonPollerFunction", 512, 8, "req")
        outcomes.append(poller.handler.lambda_handler({"channel": "amazon"}, context)["shops"][0])
        if not reconcile([shop])["amazon"].stale_or_missing:
            break
    # THEN the first poll stops at its deadline, keeping what it stored, without queueing a retry
    assert outcomes[0]["state"] == "partial"
    assert 0 < outcomes[0]["counts"]["created"] < 80
    assert queue_messages(cloud, "RetryQueue") == []
    # AND later polls finish the window; items are fetched again only for the chunk a deadline cut
    from oms.adapters.channels.amazon import ITEMS_CHUNK

    result = reconcile([shop])["amazon"]
    assert result.stored_exactly_once == result.expected == 80
    item_calls = [r for r in shop.simulator.stats.log() if r.path.endswith("/orderItems") and r.outcome == "ok"]
    partial_polls = sum(outcome["state"] == "partial" for outcome in outcomes)
    assert 80 <= len(item_calls) <= 80 + ITEMS_CHUNK * partial_polls
    shop.simulator.stop()
