"""Reconciliation end to end: orders lost from the store behind the system's back come back, exactly those."""

import json
from datetime import datetime, timedelta, timezone

from oms.adapters import aws
from oms.adapters.reconciliation_table import ReconciliationTable
from oms.settings import get_settings
from omsdev.cli import main
from omsdev.demo import poller_function_id, reconcile, start_amazon_shop, start_shopify_shop
from omsdev.simulators.scenario import Scenario, ScenarioRunner

BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)


def delete_orders(keys: list[str]) -> None:
    dynamodb = aws.client("dynamodb")
    for key in keys:
        dynamodb.delete_item(TableName=get_settings().orders_table, Key={"order_key": {"S": key}})


def test_orders_deleted_from_the_store_are_restored_exactly_by_reconciliation(cloud, capsys):
    # GIVEN a Shopify store and an Amazon seller whose backlog has been polled into the store
    shopify, amazon = start_shopify_shop("gap-hk"), start_amazon_shop("gap-eu", rate_multiplier=50)
    runner = ScenarioRunner([shopify.generator, amazon.generator], BACKDATED)
    runner.seed_backlog(40)
    for shop in (shopify, amazon):
        assert cloud.invoke(poller_function_id(shop.channel), {"channel": shop.channel})["shops"][0]["state"] == "polled"
    assert all(not r.stale_or_missing for r in reconcile([shopify, amazon]).values())
    # AND some orders vanish from the store (a polling gap, simulated behind the system's back)
    lost = {shop.channel: sorted(f"{shop.channel}#{shop.shop_id}#{order_id}" for order_id in sorted(shop.book.order_ids())[5:10])
            for shop in (shopify, amazon)}
    delete_orders(lost["shopify"] + lost["amazon"])
    assert all(len(r.stale_or_missing) == 5 for r in reconcile([shopify, amazon]).values())
    since = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()

    # WHEN reconciliation runs: the CLI for the Shopify store, the scheduled function for the Amazon seller
    code = main(["reconcile", "--channel", "shopify", "--shop", "gap-hk", "--since", since,
                 "--endpoint", cloud.endpoint, "--stack-name", cloud.stack_name])
    shopify_report = json.loads(capsys.readouterr().out)["shops"][0]
    amazon_report = cloud.invoke("ReconcileFunction", {"channel": "amazon"})["shops"][0]

    # THEN exactly the lost orders were backfilled, and every order is stored once at its latest version
    assert code == 0
    for channel, report in (("shopify", shopify_report), ("amazon", amazon_report)):
        assert report["state"] == "complete", report
        backfilled = sorted(key for piece in report["slices"] for key in piece["backfilled"])
        assert backfilled == lost[channel]
        assert report["platform_orders"] >= 40 and report["already_stored"] == report["platform_orders"] - 5
    for channel, result in reconcile([shopify, amazon]).items():
        assert result.stale_or_missing == [] and result.stored_items == result.expected == 40, channel
    # AND each repair is recorded with the slice it was found in
    history = ReconciliationTable(get_settings().reconciliation_table).history("shopify", "gap-hk")
    assert sorted(key for row in history for key in row.get("backfilled", [])) == lost["shopify"]
    assert sum(int(row["backfilled_count"]) for row in history) == 5
    # AND a second run finds nothing left to repair
    again = cloud.invoke("ReconcileFunction", {"channel": "shopify", "shop_id": "gap-hk", "since": since})["shops"][0]
    assert again["backfilled"] == again["refreshed"] == 0 and again["already_stored"] == again["platform_orders"]
    for shop in (shopify, amazon):
        shop.simulator.stop()


def test_reconciliation_never_reads_past_the_shops_cursor(cloud):
    # GIVEN a shop registered but never polled (no cursor yet)
    shop = start_shopify_shop("never-polled")
    ScenarioRunner([shop.generator], BACKDATED).seed_backlog(5)
    # WHEN reconciliation runs THEN it checks nothing: that range is polling's, not a gap
    result = cloud.invoke("ReconcileFunction", {"channel": "shopify"})
    assert result["shops"] == []
    assert shop.simulator.stats.total == 0
    shop.simulator.stop()
