"""Draining a backlog: a poll cut short by its deadline keeps the prefix it stored, and
`oms bench drain` end to end reports zero losses and zero duplicates for a small PDD backlog."""

import argparse
import json
import uuid
from datetime import UTC, datetime, timedelta

from oms.adapters.cursors_table import CursorsTable
from oms.settings import get_settings
from omsdev.commands import bench_drain
from omsdev.demo import poller_function_id, reconcile, start_shop
from omsdev.simulators.scenario import Scenario, ScenarioRunner


def set_cursor(channel: str, shop_id: str, moment: datetime) -> None:
    cursors = CursorsTable(get_settings().shop_cursors_table)
    owner = uuid.uuid4().hex
    assert cursors.acquire_lease(channel, shop_id, owner, until=datetime.now(UTC) + timedelta(minutes=1))
    assert cursors.release_lease(channel, shop_id, owner, updated_through=moment)


def assert_lease_free(channel: str, shop_id: str) -> None:
    """The poll gave the shop's lease back: another can take it (and gives it back at once)."""
    cursors = CursorsTable(get_settings().shop_cursors_table)
    owner = uuid.uuid4().hex
    assert cursors.acquire_lease(channel, shop_id, owner, until=datetime.now(UTC) + timedelta(minutes=1))
    assert cursors.release_lease(channel, shop_id, owner)


def test_a_poll_cut_short_moves_the_cursor_past_the_prefix_it_stored_and_later_polls_go_on_from_there(cloud):
    # GIVEN a JD shop (pages come oldest first) at 1 call/s with 600 orders over the last two hours
    import poller.handler
    from omsdev.localcloud.runtime import LambdaContext

    shop = start_shop("jd", f"prefix-{uuid.uuid4().hex[:6]}", rate_multiplier=0.1)
    end = datetime.now(UTC) - timedelta(minutes=5)
    for index in range(600):
        shop.generator.create(end - timedelta(hours=2) + timedelta(hours=2) * (index + 0.5) / 600)
    set_cursor("jd", shop.shop_id, end - timedelta(hours=2))
    cursors = CursorsTable(get_settings().shop_cursors_table)
    outcomes = []
    # WHEN polls with a short Lambda timeout (3 s of work each) run one after another
    for _ in range(30):
        context = LambdaContext("JdPollerFunction", 512, 8, "req")
        outcomes.append(poller.handler.lambda_handler({"channel": "jd"}, context)["shops"][0])
        if len(outcomes) == 1:
            first_cursor = cursors.get("jd", shop.shop_id).updated_through
            missing_after_first = reconcile([shop])["jd"].stale_or_missing
        if outcomes[-1]["state"] == "polled":
            break
    # THEN the first poll stopped at its deadline and moved the cursor to the latest order it stored,
    # every order updated before that cursor being stored
    assert outcomes[0]["state"] == "partial" and 0 < outcomes[0]["counts"]["created"] < 600
    assert first_cursor > end - timedelta(hours=2)
    assert all(shop.book.get(i).updated_at >= first_cursor for i in missing_after_first)
    # AND later polls finish the backlog: every order stored exactly once, and the list calls are
    # the backlog's pages plus, per poll, its first-page probe and the overlap it re-reads
    result = reconcile([shop])["jd"]
    assert result.stale_or_missing == [] and result.stored_items == 600
    searches = shop.simulator.stats.by_operation()["jingdong.pop.order.search"]["ok"]
    assert searches <= 600 / 50 + 3 * len(outcomes)
    shop.simulator.stop()


def test_pdd_asks_for_page_one_once_when_no_order_leaves_the_slice_during_the_pass(cloud):
    # GIVEN 250 PDD orders (three pages) in one 30-minute slice that nothing changes during the poll
    shop = start_shop("pdd", f"still-{uuid.uuid4().hex[:6]}")
    backdated = Scenario(backdate=timedelta(minutes=4), cancel_share=0.0, duplicate_share=0.0)
    ScenarioRunner([shop.generator], backdated).seed_backlog(250, spread=timedelta(minutes=20))
    set_cursor("pdd", shop.shop_id, datetime.now(UTC) - timedelta(minutes=25))
    # WHEN one poll reads it
    outcome = cloud.invoke(poller_function_id("pdd"), {"channel": "pdd"}, bypass_concurrency=True)["shops"][0]
    # THEN the probe's page 1 stands in for the final one: pages 1 (the count), 3, 2, and every order is stored
    assert outcome["state"] == "polled"
    assert [request["page"] for request in shop.simulator.list_requests] == [1, 3, 2]
    result = reconcile([shop])["pdd"]
    assert result.stale_or_missing == [] and result.stored_items == 250
    shop.simulator.stop()


def test_a_shop_hours_behind_catches_up_in_one_poll_window_after_window(cloud):
    # GIVEN a PDD shop (windows of at most 30 minutes) whose cursor is four hours behind, 240 orders in those hours
    shop = start_shop("pdd", f"behind-{uuid.uuid4().hex[:6]}")
    backdated = Scenario(backdate=timedelta(minutes=4), cancel_share=0.0, duplicate_share=0.0)
    ScenarioRunner([shop.generator], backdated).seed_backlog(240, spread=timedelta(hours=4))
    set_cursor("pdd", shop.shop_id, datetime.now(UTC) - timedelta(hours=4, minutes=5))
    # WHEN one poll runs
    outcome = cloud.invoke(poller_function_id("pdd"), {"channel": "pdd"}, bypass_concurrency=True)["shops"][0]
    # THEN it read window after window up to the live edge, none longer than the platform allows
    assert outcome["state"] == "polled" and outcome["windows"] >= 8
    assert shop.simulator.windows_over_maximum() == [] and shop.simulator.stats.count("bad_request") == 0
    cursor = CursorsTable(get_settings().shop_cursors_table).get("pdd", shop.shop_id)
    assert cursor.updated_through >= datetime.now(UTC) - timedelta(minutes=5)
    assert_lease_free("pdd", shop.shop_id)
    # AND every order is stored exactly once
    result = reconcile([shop])["pdd"]
    assert result.stale_or_missing == [] and result.stored_exactly_once == result.stored_items == 240
    shop.simulator.stop()


def test_a_deadline_in_the_middle_of_a_catch_up_keeps_every_completed_window(cloud):
    # GIVEN a PDD shop twelve hours behind (24 windows) at 0.1 calls/s with a burst of 6, and a short Lambda timeout
    import poller.handler
    from omsdev.localcloud.runtime import LambdaContext

    shop = start_shop("pdd", f"cut-{uuid.uuid4().hex[:6]}", rate_multiplier=0.002)
    backdated = Scenario(backdate=timedelta(minutes=4), cancel_share=0.0, duplicate_share=0.0)
    ScenarioRunner([shop.generator], backdated).seed_backlog(96, spread=timedelta(hours=12))
    set_cursor("pdd", shop.shop_id, datetime.now(UTC) - timedelta(hours=12, minutes=5))
    # WHEN one poll runs out of time part way through the backlog
    context = LambdaContext("PddPollerFunction", 512, 8, "req")
    outcome = poller.handler.lambda_handler({"channel": "pdd"}, context)["shops"][0]
    # THEN it reports the windows it completed, and the cursor is the end of the last of them
    assert outcome["state"] == "partial" and 1 <= outcome["windows"] < 24
    cursor = CursorsTable(get_settings().shop_cursors_table).get("pdd", shop.shop_id)
    completed_ends = {datetime.fromtimestamp(request["end"], UTC) for request in shop.simulator.list_requests}
    assert cursor.updated_through.replace(microsecond=0) in completed_ends  # PDD asks in whole seconds
    assert_lease_free("pdd", shop.shop_id)
    assert cursor.updated_through < datetime.now(UTC) - timedelta(hours=6)
    # AND every order updated before the cursor is stored; nothing after it was lost, only not read yet
    result = reconcile([shop])["pdd"]
    assert result.stale_or_missing
    assert all(shop.book.get(order_id).updated_at >= cursor.updated_through for order_id in result.stale_or_missing)
    shop.simulator.stop()


def test_a_checkpoint_moves_the_cursor_forward_only_and_keeps_the_lease_of_its_owner_alone(cloud):
    # GIVEN a shop whose lease one poll holds, its cursor at noon
    cursors = CursorsTable(get_settings().shop_cursors_table)
    shop = start_shop("pdd", f"checkpoint-{uuid.uuid4().hex[:6]}")
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    set_cursor("pdd", shop.shop_id, noon)
    owner = uuid.uuid4().hex
    assert cursors.acquire_lease("pdd", shop.shop_id, owner, until=datetime.now(UTC) + timedelta(minutes=1))
    # WHEN its owner checkpoints half an hour later
    assert cursors.checkpoint("pdd", shop.shop_id, owner, updated_through=noon + timedelta(minutes=30),
                              read_at=datetime.now(UTC), span_hint=timedelta(minutes=10))
    # THEN the cursor moved and the lease is still the owner's: nobody else can take it
    cursor = cursors.get("pdd", shop.shop_id)
    assert cursor.updated_through == noon + timedelta(minutes=30) and cursor.span_hint == timedelta(minutes=10)
    assert cursors.acquire_lease("pdd", shop.shop_id, "another", until=datetime.now(UTC) + timedelta(minutes=1)) is None
    # AND a checkpoint behind the cursor leaves it where it is, yet tells the owner it still holds the lease
    assert cursors.checkpoint("pdd", shop.shop_id, owner, updated_through=noon + timedelta(minutes=10),
                              read_at=datetime.now(UTC))
    assert cursors.get("pdd", shop.shop_id).updated_through == noon + timedelta(minutes=30)
    # AND a poll that does not hold the lease can neither checkpoint nor move the cursor
    assert not cursors.checkpoint("pdd", shop.shop_id, "another", updated_through=noon + timedelta(hours=1),
                                  read_at=datetime.now(UTC))
    assert not cursors.checkpoint("pdd", shop.shop_id, "another", updated_through=noon + timedelta(minutes=5),
                                  read_at=datetime.now(UTC))
    assert cursors.get("pdd", shop.shop_id).updated_through == noon + timedelta(minutes=30)
    shop.simulator.stop()


def test_amazon_goes_on_from_the_page_token_where_a_deadline_cut_its_window(cloud):
    # GIVEN an Amazon seller with 250 orders in one window (three getOrders pages), getOrderItems at 20/s
    import poller.handler
    from omsdev.localcloud.runtime import LambdaContext

    shop = start_shop("amazon", f"resume-{uuid.uuid4().hex[:6]}", rate_multiplier=40)
    backdated = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)
    ScenarioRunner([shop.generator], backdated).seed_backlog(250, spread=timedelta(minutes=20))
    set_cursor("amazon", shop.shop_id, datetime.now(UTC) - timedelta(minutes=25))
    cursors = CursorsTable(get_settings().shop_cursors_table)

    def get_orders_calls() -> int:
        return sum(r.path == "/orders/v0/orders" and r.outcome == "ok" for r in shop.simulator.stats.log())

    # WHEN polls with a short Lambda timeout (8 s: a few dozen orders' items each) run one after another
    outcomes, calls_per_poll, resume_points = [], [], []
    for _ in range(30):
        before = get_orders_calls()
        context = LambdaContext("AmazonPollerFunction", 512, 8, "req")
        outcomes.append(poller.handler.lambda_handler({"channel": "amazon"}, context)["shops"][0])
        calls_per_poll.append(get_orders_calls() - before)
        resume_points.append(cursors.get("amazon", shop.shop_id).resume)
        if outcomes[-1]["state"] == "polled":
            break
    # THEN polls cut by their deadline left a page token behind, and the next went on from it: no poll listed
    # more than the page it resumed and the one after, instead of the window again from its start (the last
    # poll, having finished the window, also lists the short one up to the live edge)
    assert outcomes[0]["state"] == "partial" and outcomes[-1]["state"] == "polled"
    assert any(point is not None and point.page_token for point in resume_points[:-1])
    assert max(calls_per_poll[:-1]) <= 2 and calls_per_poll[-1] <= 3
    assert sum(calls_per_poll) <= 3 + len(outcomes) + 1
    assert resume_points[-1] is None  # the window is done: its resume point is gone
    # AND every order is stored exactly once
    result = reconcile([shop])["amazon"]
    assert result.stale_or_missing == [] and result.stored_exactly_once == result.stored_items == 250
    shop.simulator.stop()


def test_bench_drain_reports_zero_losses_and_duplicates_for_a_small_pdd_backlog(tmp_path):
    # GIVEN a PDD backlog of 300 orders at the default scale
    report_file = tmp_path / "drain.json"
    args = argparse.Namespace(channel="pdd", orders=300, scale=None, timeout=120, json=str(report_file))
    # WHEN `oms bench drain --channel pdd --orders 300` runs
    exit_code = bench_drain.run(args)
    # THEN it succeeds, and its report reconciles the table against the simulator's book
    report = json.loads(report_file.read_text())
    assert exit_code == 0 and report["drained_before_timeout"]
    check = report["reconciliation"]
    assert check["orders_in_book"] == check["items_in_table"] == check["stored_exactly_once_at_latest_version"] == 300
    assert (check["losses"], check["duplicates"], check["stale_versions"]) == (0, 0, 0)
    # AND it reports the rate, the calls per endpoint (from the simulator's log) and AWS calls per order
    assert report["allowed_orders_per_second"] == 125.0 and report["scale"] == 0.025
    assert report["calls_by_endpoint"]["pdd.order.number.list.increment.get"]["ok"] >= 3
    assert report["aws_calls_by_operation"]["dynamodb:PutItem"] == 300
    assert report["stored_orders_per_second"] > 0 and report["aws_calls_per_order"] >= 1
