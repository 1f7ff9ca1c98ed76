"""JD POP end to end: the JD simulator over real HTTP -> JdPollerFunction -> Orders table on moto.

Exactly once under faults with two pollers at once; windows within one month; backwards paging
while orders move; a token expiring mid-poll; throttling envelopes retried; malformed orders
quarantined; late cancellations."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

from omsdev.demo import start_shop
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.jd import one_month_after
from omsdev.simulators.scenario import Scenario, ScenarioRunner

from tests.integration.channel_helpers import (
    assert_every_order_stored_once,
    assert_only_order_quarantined,
    every_fault_kind_happened,
    not_stored,
    order_key,
    orders_table,
    poll_in_pairs_while_orders_arrive,
    poll_shop,
    unique_shop_id,
)

BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)


def poll(cloud, shop) -> dict:
    return poll_shop(cloud, shop, bypass_concurrency=True)


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_every_order_is_stored_exactly_once_despite_faults_overlap_and_two_pollers(cloud):
    # GIVEN a JD shop failing 20% of calls (5xx, throttling envelope, timeouts) with a backlog of 120
    faults = FaultPlan(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=21)
    shop = start_shop("jd", unique_shop_id("faulty"), faults=faults, rate_multiplier=20)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120)
    # WHEN two pollers run at once, repeatedly, while a few more orders arrive (and until every fault kind met)
    poll_in_pairs_while_orders_arrive(cloud, shop, until_orders=140, per_round=2, backdate=BACKDATED.backdate,
                                      seconds=50, also_until=lambda: every_fault_kind_happened(shop, faults.kinds))
    # THEN every order is stored once, at its latest version
    assert_every_order_stored_once(shop, 140)
    # AND the faults really happened
    assert every_fault_kind_happened(shop, faults.kinds), shop.simulator.stats.outcomes()
    shop.simulator.stop()


def _retry_event(shop, start: datetime, end: datetime) -> dict:
    body = {"channel": "jd", "shop_id": shop.shop_id, "window_start": start.isoformat(), "window_end": end.isoformat(),
            "failed_attempts": 1, "failures": [{"at": end.isoformat(), "reason": "test"}]}
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": json.dumps(body), "attributes": {
            "ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "x", "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:retry", "awsRegion": "us-east-1"}]}


def test_windows_never_exceed_one_month_even_for_a_backlog_of_seventy_days(cloud):
    # GIVEN orders spread over the last 70 days, and a failed 70-day window handed to the retry consumer
    shop = start_shop("jd", unique_shop_id("backlog"), rate_multiplier=20)
    for day in range(70):
        shop.generator.create(minutes_ago(3) - timedelta(days=day, minutes=7))
    # WHEN the retry consumer reads the whole window and the poller polls
    cloud.invoke("WindowRetryFunction", _retry_event(shop, minutes_ago(71 * 24 * 60), minutes_ago(2)))
    poll(cloud, shop)
    # THEN the simulator never refused a window, each window it served fits one calendar month
    searches = shop.simulator.searches
    assert len({(s["start"], s["end"]) for s in searches}) >= 3  # 70 days take three slices
    assert all(s["end"] <= one_month_after(s["start"]) for s in searches)
    assert shop.simulator.stats.count("bad_request") == 0
    # AND every order is stored
    assert_every_order_stored_once(shop, 70)
    shop.simulator.stop()


def test_orders_moving_between_pages_during_a_poll_are_not_missed(cloud):
    # GIVEN 130 orders (three pages of 50) and, before each later page, an unread early order updated
    shop = start_shop("jd", unique_shop_id("moving"), rate_multiplier=20)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(130)
    ordered = sorted(shop.book.entries(), key=lambda e: (e.updated_at, e.order_id))
    movers = [e.order_id for e in ordered[:4]]
    moved = []

    def move_one(params: dict) -> None:
        if params["page"] > 1 and len(moved) < len(movers):
            moved.append(movers[len(moved)])
            # 50 s ago is already past this window's end (now - 1 min lag): the order leaves it
            shop.generator.touch(moved[-1], datetime.now(UTC) - timedelta(seconds=50))

    shop.simulator.before_page = move_one
    # WHEN one poll reads the window while orders leave it
    first = poll(cloud, shop)
    # THEN no order that stayed in the window was missed
    assert first["state"] == "polled" and moved
    assert not_stored(shop, [e.order_id for e in ordered if e.order_id not in moved]) == []
    # AND the moved ones arrive, at their new version, with the next poll (after the lag)
    shop.simulator.before_page = None
    time.sleep(11)
    poll(cloud, shop)
    assert_every_order_stored_once(shop, 130)
    shop.simulator.stop()


def test_a_token_expiring_mid_poll_is_refreshed_and_the_poll_succeeds(cloud):
    shop = start_shop("jd", unique_shop_id("token"), rate_multiplier=20)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120)

    def expire_on_page_two(params: dict) -> None:
        if params["page"] == 2 and not shop.simulator.token_requests:
            shop.simulator.expire_tokens()

    shop.simulator.before_page = expire_on_page_two
    outcome = poll(cloud, shop)
    assert outcome["state"] == "polled" and outcome["counts"]["created"] == 120
    stats = shop.simulator.stats
    assert stats.count("auth_failed") == 1 and shop.simulator.token_requests == 1
    shop.simulator.stop()


def test_throttling_envelopes_are_retried_and_never_stored_as_data(cloud):
    # GIVEN a shop on a small call plan (3/s) whose bucket another app just drained, plus throttling faults
    shop = start_shop("jd", unique_shop_id("throttled"), faults=FaultPlan(rate=0.15, kinds=("429",), seed=4),
                      rate_multiplier=0.3)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(110)
    while shop.simulator.limit.try_take()[0]:
        pass
    # WHEN polled (a window whose retries ran out is simply polled again)
    outcomes = []
    for _ in range(3):
        outcomes.append(poll(cloud, shop))
        if outcomes[-1]["state"] == "polled":
            break
    # THEN the throttled calls were retried and exactly the orders were stored, nothing quarantined
    stats = shop.simulator.stats
    assert stats.count("rate_limited") >= 1 and stats.count("fault_429") >= 1
    assert outcomes[-1]["state"] == "polled"
    assert sum(o["counts"].get("quarantined", 0) for o in outcomes if o["counts"]) == 0
    assert_every_order_stored_once(shop, 110)
    shop.simulator.stop()


def test_a_malformed_order_is_quarantined_while_the_rest_are_stored(cloud):
    shop = start_shop("jd", unique_shop_id("messy"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(8)
    broken = shop.generator.create(minutes_ago(3), malformed=True)
    outcome = poll(cloud, shop)
    quarantined = assert_only_order_quarantined(outcome, broken, created=8, shop=shop)
    assert "itemInfoList[0].itemTotal" in quarantined["reason"]
    shop.simulator.stop()


def test_a_late_cancellation_updates_the_stored_order(cloud):
    shop = start_shop("jd", unique_shop_id("late"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(5)
    poll(cloud, shop)
    order_id = min(shop.book.order_ids())
    key = order_key(shop, order_id)
    assert orders_table().get(key)["status"] == "paid"
    # WHEN the buyer cancels and the next poll reads it
    shop.generator.cancel(order_id, minutes_ago(2))
    outcome = poll(cloud, shop)
    stored = orders_table().get(key)
    # THEN the stored order is cancelled, one version later
    assert outcome["counts"]["updated"] == 1
    assert stored["status"] == "cancelled" and stored["version"] == 2
    shop.simulator.stop()
