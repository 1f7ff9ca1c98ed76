"""Taobao ingestion end to end: the TOP simulator over real HTTP -> TaobaoPollerFunction -> Orders
table on a moto server. Exactly once under faults and concurrent pollers, one-day windows over a
longer backlog, backwards paging while trades move, a session expiring mid-poll, throttling
envelopes retried, a malformed trade quarantined, and a late cancellation stored."""

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import requests
from oms.adapters.channels.signing import top_sign
from oms.adapters.cursors_table import CursorsTable
from oms.adapters.orders_table import OrdersTable
from oms.adapters.quarantine_table import QuarantineTable
from oms.settings import get_settings
from omsdev.demo import poller_function_id, reconcile, start_shop
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.scenario import Scenario, ScenarioRunner
from omsdev.simulators.taobao import APP_BURST, CHINA, TIME_FORMAT

CHANNEL = "taobao"
BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)


def unique_shop(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def poll(cloud) -> dict:
    # Tests overlap polls on purpose; the shop's lease must hold where reserved concurrency would not.
    return cloud.invoke(poller_function_id(CHANNEL), {"channel": CHANNEL}, bypass_concurrency=True)


def shop_result(outcome: dict, shop_id: str) -> dict:
    return next(shop for shop in outcome["shops"] if shop["shop_id"] == shop_id)


def orders_table() -> OrdersTable:
    return OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket)


def test_every_trade_is_stored_exactly_once_despite_faults_and_two_pollers_at_once(cloud):
    # GIVEN a shop whose gateway breaks 20% of calls (5xx, code-7 throttling, timeouts) and a backlog
    shop = start_shop(CHANNEL, unique_shop("faulty"), faults=FaultPlan(
        rate=0.2, kinds=("5xx", "429", "timeout"), timeout_seconds=1.5, seed=21), rate_multiplier=2)
    runner = ScenarioRunner([shop.generator], BACKDATED)
    runner.seed_backlog(110)
    # AND the retry consumer wired to its queue, as in AWS
    cloud.start_wiring(only={"WindowRetryFunction"})
    try:
        # WHEN two pollers run at once, again and again, while more trades keep arriving
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            threads = [threading.Thread(target=poll, args=(cloud,)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if runner.created < 130:
                for _ in range(10):
                    shop.generator.create(datetime.now(UTC) - timedelta(minutes=3))
                    runner.created += 1
            result = reconcile([shop])[CHANNEL]
            if runner.created >= 130 and not result.stale_or_missing:
                break
    finally:
        cloud.stop_wiring()
        shop.simulator.stop()
    # THEN every trade is stored exactly once, at its latest version
    result = reconcile([shop])[CHANNEL]
    assert result.stale_or_missing == []
    assert result.expected == 130 and result.stored_items == 130
    # AND the faults really happened, every kind
    outcomes = shop.simulator.stats.outcomes()
    assert outcomes["fault_5xx"] and outcomes["fault_429"] and outcomes["fault_timeout"], outcomes


def test_windows_never_exceed_one_day_over_a_backlog_of_two_and_a_half_days(cloud):
    # GIVEN a shop whose cursor stands 60 hours back and trades spread over those hours
    shop_id = unique_shop("backlog")
    shop = start_shop(CHANNEL, shop_id, rate_multiplier=2)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(30, spread=timedelta(hours=60))
    cursors = CursorsTable(get_settings().shop_cursors_table)
    assert cursors.acquire_lease(CHANNEL, shop_id, "test", datetime.now(UTC) + timedelta(minutes=1))
    cursors.release_lease(CHANNEL, shop_id, "test", updated_through=datetime.now(UTC) - timedelta(hours=61))
    try:
        # WHEN the poller runs until the shop has caught up
        states = []
        for _ in range(6):
            states.append(shop_result(poll(cloud), shop_id)["state"])
            if not reconcile([shop])[CHANNEL].stale_or_missing:
                break
        # THEN it took several polls, every list window was at most a day, and TOP refused none
        spans = [query["end"] - query["start"] for query in shop.simulator.list_requests]
        assert states.count("polled") >= 3
        assert spans and max(spans) <= timedelta(days=1)
        assert shop.simulator.stats.count("bad_request") == 0
        result = reconcile([shop])[CHANNEL]
        assert result.stale_or_missing == [] and result.stored_items == 30
    finally:
        shop.simulator.stop()


def test_trades_that_move_between_pages_during_a_poll_are_not_missed(cloud):
    # GIVEN 150 trades in the window: three pages of 50
    shop_id = unique_shop("moving")
    shop = start_shop(CHANNEL, shop_id, rate_multiplier=2)
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
        first = shop_result(poll(cloud), shop_id)
        # THEN every trade that did not change during the poll is already stored
        assert first["state"] == "polled" and moved
        missing = set(reconcile([shop])[CHANNEL].stale_or_missing)
        assert missing <= set(moved)
        assert [q["page_no"] for q in shop.simulator.list_requests] == [1, 3, 2, 1]
        # AND the next poll stores the changed ones at their new version
        shop.simulator.on_list_page = None
        time.sleep(2)  # the next window's end (now - 1 min) passes the changes
        poll(cloud)
        result = reconcile([shop])[CHANNEL]
        assert result.stale_or_missing == [] and result.stored_items == 150
    finally:
        shop.simulator.stop()


def test_a_session_that_expires_mid_poll_is_refreshed_and_the_poll_succeeds(cloud):
    # GIVEN 120 trades (three pages) and a session that expires after the first backwards page
    shop_id = unique_shop("expiry")
    shop = start_shop(CHANNEL, shop_id, rate_multiplier=2)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(120, spread=timedelta(minutes=30))

    def expire(page_no: int) -> None:
        if page_no == 2:
            shop.simulator.expire_tokens()

    shop.simulator.on_list_page = expire
    try:
        # WHEN polled
        outcome = shop_result(poll(cloud), shop_id)
        # THEN the client met TOP's code 27, refreshed the session once, and stored everything
        assert outcome["state"] == "polled", outcome["reason"]
        assert shop.simulator.refresh_requests == 1
        assert shop.simulator.stats.count("auth_failed") >= 1
        result = reconcile([shop])[CHANNEL]
        assert result.stale_or_missing == [] and outcome["counts"]["created"] == 120
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
    shop_id = unique_shop("throttled")
    shop = start_shop(CHANNEL, shop_id, rate_multiplier=0.5)  # 20 calls/s, burst 40
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(30)
    drain(shop.simulator, APP_BURST + 5)
    before = shop.simulator.stats.count("rate_limited")
    try:
        # WHEN polled
        outcome = shop_result(poll(cloud), shop_id)
        # THEN TOP's code 7 came back and was waited out; every trade is stored, nothing quarantined
        assert shop.simulator.stats.count("rate_limited") > before
        assert outcome["state"] == "polled", outcome["reason"]
        assert outcome["counts"]["created"] == 30
        assert QuarantineTable(get_settings().quarantine_table).list() == []
        assert reconcile([shop])[CHANNEL].stored_items == 30
    finally:
        shop.simulator.stop()


def test_a_malformed_trade_is_quarantined_with_its_reason_while_the_rest_are_stored(cloud):
    shop_id = unique_shop("messy")
    shop = start_shop(CHANNEL, shop_id)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(8)
    broken = shop.generator.create(datetime.now(UTC) - timedelta(minutes=3), malformed="num_text")
    try:
        outcome = shop_result(poll(cloud), shop_id)
        assert outcome["counts"]["created"] == 8 and outcome["counts"]["quarantined"] == 1
        items = QuarantineTable(get_settings().quarantine_table).list()
        assert [item["channel_order_id"] for item in items] == [broken]
        assert items[0]["reason"] == "orders.order[0].num: '两件' is not an integer"
        assert reconcile([shop])[CHANNEL].stale_or_missing == []
    finally:
        shop.simulator.stop()


def test_a_late_cancellation_and_a_refund_request_update_the_stored_trades(cloud):
    # GIVEN five paid trades already stored
    shop_id = unique_shop("late")
    shop = start_shop(CHANNEL, shop_id)
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(5)
    try:
        poll(cloud)
        paid = sorted(e.order_id for e in shop.book.entries() if e.payload["status"] == "WAIT_SELLER_SEND_GOODS")
        assert len(paid) >= 2
        cancelled, refunding = paid[0], paid[1]
        # WHEN the buyer of one gets a full refund (the trade closes) and another asks a refund
        moment = datetime.now(UTC) - timedelta(seconds=90)
        shop.generator.cancel(cancelled, moment)
        shop.generator.start_refund(refunding, moment)
        outcome = shop_result(poll(cloud), shop_id)
        # THEN both stored trades are updated to the new version
        table = orders_table()
        closed = table.get(f"{CHANNEL}#{shop_id}#{cancelled}")
        asked = table.get(f"{CHANNEL}#{shop_id}#{refunding}")
        assert outcome["counts"]["updated"] == 2
        assert (closed["status"], closed["channel_status"], closed["version"]) == ("refunded", "TRADE_CLOSED", 2)
        assert (asked["status"], asked["version"]) == ("refunding", 2)
        assert table.raw_payload(closed)["orders"]["order"][0]["refund_status"] == "SUCCESS"
        assert Counter(r.stale_or_missing == [] for r in reconcile([shop]).values()) == Counter({True: 1})
    finally:
        shop.simulator.stop()
