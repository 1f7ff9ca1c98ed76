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
