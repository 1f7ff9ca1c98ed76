"""Taobao ingestion end to end: the TOP simulator over real HTTP -> TaobaoPollerFunction -> Orders
table on a moto server. Exactly once under faults and concurrent pollers, one-day windows over a
longer backlog, backwards paging while trades move, a session expiring mid-poll, throttling
envelopes retried, a malformed trade quarantined, and a late cancellation stored."""

import time
from datetime import UTC, datetime, timedelta

import requests
from oms.adapters.channels.signing import top_sign
from omsdev.demo import reconcile, start_shop
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.scenario import Scenario, ScenarioRunner
from omsdev.simulators.taobao import APP_BURST, CHINA, TIME_FORMAT

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
    start_cursor,
    unique_shop_id,
)

CHANNEL = "taobao"
BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)


def poll(cloud, shop) -> dict:
    # Tests overlap polls on purpose; the shop's lease must hold where reserved concurrency would not.
    return poll_shop(cloud, shop, bypass_concurrency=True)


def test_every_trade_is_stored_exactly_once_despite_faults_and_two_pollers_at_once(cloud):
    # GIVEN a shop whose gateway breaks 20% of calls (5xx, code-7 throttling, timeouts) and a backlog
    faults = FaultPlan(rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=21)
    shop = start_shop(CHANNEL, unique_shop_id("faulty"), faults=faults, rate_multiplier=2)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(110)
    try:
        # AND the retry consumer wired to its queue, as in AWS (for as long as the pollers below run)
        # WHEN two pollers run at once, again and again, while more trades keep arriving
        poll_in_pairs_while_orders_arrive(cloud, shop, until_orders=130, per_round=10,
                                          backdate=BACKDATED.backdate, seconds=150)
    finally:
        shop.simulator.stop()
    # THEN every trade is stored exactly once, at its latest version
    assert_every_order_stored_once(shop, 130)
    # AND the faults really happened, every kind
    assert every_fault_kind_happened(shop, faults.kinds), shop.simulator.stats.outcomes()


def test_windows_never_exceed_one_day_over_a_backlog_of_two_and_a_half_days(cloud):
    # GIVEN a shop whose cursor stands 60 hours back and trades spread over those hours
    shop = start_shop(CHANNEL, unique_shop_id("backlog"), rate_multiplier=2)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(30, spread=timedelta(hours=60))
    start_cursor(shop, datetime.now(UTC) - timedelta(hours=61))
    try:
        # WHEN the poller runs until the shop has caught up
        outcomes = poll_until_stored(cloud, shop, polls=6, bypass_concurrency=True)
        # THEN it took three windows or more (one poll reads them one after another), every list window was
        # at most a day, and TOP refused none
        spans = [query["end"] - query["start"] for query in shop.simulator.list_requests]
        assert outcomes[0]["state"] == "polled" and outcomes[0]["windows"] >= 3
        assert spans and max(spans) <= timedelta(days=1)
        assert shop.simulator.stats.count("bad_request") == 0
        assert_every_order_stored_once(shop, 30)
    finally:
        shop.simulator.stop()


def test_trades_that_move_between_pages_during_a_poll_are_not_missed(cloud):
    # GIVEN 150 trades in the window: three pages of 50
    shop = start_shop(CHANNEL, unique_shop_id("moving"), rate_multiplier=2)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(150, spread=timedelta(minutes=30))
    by_age = [entry.order_id for entry in sorted(shop.book.entries(), key=lambda e: e.updated_at)]
    moved: list[str] = []

    def buyers_act_during_the_poll(page_no: int) -> None:
        # Between the first page and the backwards pages, trades on every page change. Their new
        # `modified` is after the window's end (now - 1 min lag at poll start), so they leave the
        # window, which shifts the rest of the list forward.
        if not moved and page_no == 3:
            for order_id in (by_age[-1], by_age[120], by_age[75], by_age[30], by_age[0]):
                shop.generator.touch(order_id, datetime.now(UTC) - timedelta(seconds=59))
                moved.append(order_id)

    shop.simulator.on_list_page = buyers_act_during_the_poll
    try:
        # WHEN one poll reads the window
        first = poll(cloud, shop)
        # THEN every trade that did not change during the poll is already stored
        assert first["state"] == "polled" and moved
        missing = set(reconcile([shop])[CHANNEL].stale_or_missing)
        assert missing <= set(moved)
        assert [q["page_no"] for q in shop.simulator.list_requests] == [1, 3, 2, 1]
        # AND the next poll stores the changed ones at their new version
        shop.simulator.on_list_page = None
        time.sleep(2)  # the next window's end (now - 1 min) passes the changes
        poll(cloud, shop)
        assert_every_order_stored_once(shop, 150)
    finally:
        shop.simulator.stop()


def test_a_session_that_expires_mid_poll_is_refreshed_and_the_poll_succeeds(cloud):
    # GIVEN 120 trades (three pages) and a session that expires after the first backwards page
    shop = start_shop(CHANNEL, unique_shop_id("expiry"), rate_multiplier=2)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120, spread=timedelta(minutes=30))

    def expire(page_no: int) -> None:
        if page_no == 2:
            shop.simulator.expire_tokens()

    shop.simulator.on_list_page = expire
    try:
        # WHEN polled
        outcome = poll(cloud, shop)
        # THEN the client met TOP's code 27, refreshed the session once, and stored everything
        assert outcome["state"] == "polled", outcome["reason"]
        assert shop.simulator.refresh_requests == 1
        assert shop.simulator.stats.count("auth_failed") >= 1
        assert_every_order_stored_once(shop)
        assert outcome["counts"]["created"] == 120
    finally:
        shop.simulator.stop()


def drain(simulator, calls: int) -> None:
    """Another tool of the seller spends the app's quota."""
    session = simulator.issue_session()
    for _ in range(calls):
        params = {"method": "taobao.trade.fullinfo.get", "app_key": simulator.app_key, "session": session,
                  "timestamp": datetime.now(CHINA).strftime(TIME_FORMAT), "format": "json", "v": "2.0",
                  "sign_method": "md5", "tid": "4300000000000000001", "fields": "tid"}
        params["sign"] = top_sign(params, simulator.app_secret, "md5")
        requests.post(f"{simulator.url}/router/rest", data=params, timeout=5)


def test_throttling_envelopes_are_retried_and_never_stored_as_data(cloud):
    # GIVEN a shop whose app quota another tool has just used up
    shop = start_shop(CHANNEL, unique_shop_id("throttled"), rate_multiplier=0.5)  # 20 calls/s, burst 40
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(30)
    drain(shop.simulator, APP_BURST + 5)
    before = shop.simulator.stats.count("rate_limited")
    try:
        # WHEN polled
        outcome = poll(cloud, shop)
        # THEN TOP's code 7 came back and was waited out; every trade is stored, nothing quarantined
        assert shop.simulator.stats.count("rate_limited") > before
        assert outcome["state"] == "polled", outcome["reason"]
        assert outcome["counts"]["created"] == 30
        assert quarantined_items() == []
        assert_every_order_stored_once(shop, 30)
    finally:
        shop.simulator.stop()


def test_a_malformed_trade_is_quarantined_with_its_reason_while_the_rest_are_stored(cloud):
    shop = start_shop(CHANNEL, unique_shop_id("messy"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(8)
    broken = shop.generator.create(datetime.now(UTC) - timedelta(minutes=3), malformed="num_text")
    try:
        outcome = poll(cloud, shop)
        quarantined = assert_only_order_quarantined(outcome, broken, created=8)
        assert quarantined["reason"] == "orders.order[0].num: '两件' is not an integer"
        assert_every_order_stored_once(shop)
    finally:
        shop.simulator.stop()


def test_a_late_cancellation_and_a_refund_request_update_the_stored_trades(cloud):
    # GIVEN five paid trades already stored
    shop = start_shop(CHANNEL, unique_shop_id("late"))
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(5)
    try:
        poll(cloud, shop)
        paid = sorted(e.order_id for e in shop.book.entries() if e.payload["status"] == "WAIT_SELLER_SEND_GOODS")
        assert len(paid) >= 2
        cancelled, refunding = paid[0], paid[1]
        # WHEN the buyer of one gets a full refund (the trade closes) and another asks a refund
        moment = datetime.now(UTC) - timedelta(seconds=90)
        shop.generator.cancel(cancelled, moment)
        shop.generator.start_refund(refunding, moment)
        outcome = poll(cloud, shop)
        # THEN both stored trades are updated to the new version
        table = orders_table()
        closed = table.get(order_key(shop, cancelled))
        asked = table.get(order_key(shop, refunding))
        assert outcome["counts"]["updated"] == 2
        assert (closed["status"], closed["channel_status"], closed["version"]) == ("refunded", "TRADE_CLOSED", 2)
        assert (asked["status"], asked["version"]) == ("refunding", 2)
        assert table.raw_payload(closed)["orders"]["order"][0]["refund_status"] == "SUCCESS"
        assert_every_order_stored_once(shop)
    finally:
        shop.simulator.stop()
