"""KPIs end to end on the local cloud: order changes on the Orders stream counted by the KpiFunction into
hourly counters (exactly once under redelivery and concurrent invocations), quarantined orders counted
by the review intake, availability attempts, and the report GET /kpis serves from them."""

from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from oms.adapters.kpi_counters_table import KpiCountersTable
from oms.adapters.review_items_table import ReviewItemsTable
from oms.domain.kpis import merge
from oms.services.kpi_report import kpi_report
from oms.services.messages import ReviewMessage
from oms.settings import get_settings
from omsdev.localcloud.local_auth import issue_token

from tests.integration.allocation_helpers import dynamodb, paid_order, store, stored_image, stream_record, wait_for
from tests.integration.conftest import serving_api


@pytest.fixture(scope="module")
def kpi_cloud():
    """One local cloud for the module, its API on a port; each test uses orders of its own shop."""
    with serving_api() as local:
        yield local


def counters() -> KpiCountersTable:
    return KpiCountersTable(get_settings().kpi_table)


def today_counts(channel: str | None = None, shop: str | None = None):
    """Counts of today (and yesterday, for a test running across midnight), merged."""
    today = datetime.now(UTC).date()
    hours = counters().hours(today - timedelta(days=1), today)
    return merge(*[c for (hour, name), c in hours.items() if channel is None or name == channel])


def paid_seconds_ago(channel: str, seconds: int, shop: str):
    order = paid_order(channel, [("KETTLE-1L", 1)], shop_id=shop)
    paid = (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return order.model_copy(update={"paid_at": paid, "created_at": paid, "updated_at": paid})


def set_fields(cloud, key: str, **values: str) -> None:
    names = {f"#f{i}": name for i, name in enumerate(values)}
    dynamodb(cloud).update_item(
        TableName=get_settings().orders_table, Key={"order_key": {"S": key}},
        UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values))),
        ExpressionAttributeNames=names, ExpressionAttributeValues={f":v{i}": {"S": v} for i, v in enumerate(values.values())})


def test_order_changes_on_the_stream_become_the_six_kpis_counted_once(kpi_cloud):
    # GIVEN the KpiFunction wired to the Orders stream as the template says, on a channel of its own
    channel = "kuaishou"
    before = today_counts(channel)
    kpi_cloud.start_wiring(only={"KpiFunction"})
    shop = uuid.uuid4().hex[:8]
    fast, slow, held = (paid_seconds_ago(channel, 5, shop), paid_seconds_ago(channel, 100, shop),
                        paid_seconds_ago(channel, 5, shop))
    # WHEN three paid orders are stored, one allocated and then shipped by the WMS within the promise,
    # one sent to review by allocation, one held by risk and then sent to review
    store([fast, slow, held])
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    set_fields(kpi_cloud, fast.order_key, fulfillment_status="allocated", fulfillment_updated_at=now)
    set_fields(kpi_cloud, slow.order_key, fulfillment_status="in_review", fulfillment_updated_at=now)
    set_fields(kpi_cloud, held.order_key, risk_status="verifying", risk_updated_at=now)
    set_fields(kpi_cloud, held.order_key, risk_status="in_review", risk_updated_at=now)
    set_fields(kpi_cloud, fast.order_key, fulfillment_status="shipped", shipped_at=now)
    # ... and the slow one is later allocated by a reviewer (not automatic: already counted)
    set_fields(kpi_cloud, slow.order_key, fulfillment_status="allocated", fulfillment_updated_at=now)

    # THEN the counters say exactly that
    def counted():
        counts = today_counts(channel)
        return counts if counts.orders_shipped - before.orders_shipped == 1 and \
            counts.exceptions - before.exceptions == 2 and counts.allocation_needed - before.allocation_needed == 2 \
            else None
    after = wait_for(counted, seconds=30)
    assert after.orders_stored - before.orders_stored == 3
    assert after.orders_paid - before.orders_paid == 3
    latency = [a - b for a, b in zip(after.latency, before.latency, strict=True)]
    assert latency[0] == 2 and latency[3] == 1  # 5 s -> "<= 10 s", 100 s -> "<= 120 s"
    assert after.allocated_automatically - before.allocated_automatically == 1
    assert after.risk_holds - before.risk_holds == 1
    assert (after.first_shipments_due - before.first_shipments_due,
            after.first_shipments_on_time - before.first_shipments_on_time) == (1, 1)
    # AND the KpiFunction's own invocations count towards availability
    system = today_counts("_system")
    assert system.attempts_ok >= 1 and system.attempts_failed == 0


def test_redelivered_and_concurrent_batches_count_each_order_once(kpi_cloud):
    # GIVEN 60 paid orders stored, and their INSERT records as the stream delivers them
    channel, shop = "douyin", uuid.uuid4().hex[:8]
    orders = [paid_seconds_ago(channel, 20, shop) for _ in range(60)]
    store(orders)
    records = [stream_record(stored_image(kpi_cloud, order.order_key), sequence=i + 1) for i, order in enumerate(orders)]
    before = today_counts(channel)

    # WHEN 8 invocations at once each get the whole batch in another order (redelivery, bisected retries)
    def invoke(seed: int):
        batch = records[:]
        random.Random(seed).shuffle(batch)
        return kpi_cloud.invoke("KpiFunction", {"Records": batch}, bypass_concurrency=True)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(invoke, range(8)))
    # THEN every invocation succeeded and each order counts once
    assert all(response["batchItemFailures"] == [] for response in responses)
    after = today_counts(channel)
    assert after.orders_stored - before.orders_stored == 60
    assert after.orders_paid - before.orders_paid == 60
    assert sum(after.latency) - sum(before.latency) == 60


def test_a_quarantined_order_counts_once_as_an_exception(kpi_cloud):
    # GIVEN the review intake wired to the ReviewQueue
    kpi_cloud.start_wiring(only={"ReviewIntakeFunction"})
    before = today_counts("pdd")
    key = f"pdd#{uuid.uuid4().hex[:8]}#{uuid.uuid4().hex[:10]}"
    message = ReviewMessage(order_key=key, source="quarantine", reason="malformed_order", detail="no lines",
                            at=datetime.now(UTC))
    # WHEN the poller's quarantine message arrives twice
    sqs = kpi_cloud.stack.client("sqs")
    for _ in range(2):
        sqs.send_message(QueueUrl=get_settings().review_queue_url, MessageBody=message.model_dump_json())
    # THEN it is one review item and one quarantined order (exception ratio's numerator and denominator)
    wait_for(lambda: ReviewItemsTable(get_settings().review_items_table).open_summary(datetime.now(UTC))
             ["by_source"].get("quarantine"), seconds=30)
    wait_for(lambda: today_counts("pdd").orders_quarantined - before.orders_quarantined == 1, seconds=30)
    time.sleep(1.5)  # the second delivery has been taken in by now
    assert today_counts("pdd").orders_quarantined - before.orders_quarantined == 1


def test_get_kpis_serves_the_report_to_reviewers_only_and_checks_its_query(kpi_cloud):
    # GIVEN some counted orders today
    shop = uuid.uuid4().hex[:8]
    orders = [paid_seconds_ago("jd", 3, shop) for _ in range(3)]
    store(orders)
    kpi_cloud.invoke("KpiFunction", {"Records": [stream_record(stored_image(kpi_cloud, o.order_key), sequence=i + 1)
                                                 for i, o in enumerate(orders)]}, bypass_concurrency=True)
    today = datetime.now(UTC).date().isoformat()

    def get(path: str, role: str | None = "reviewer"):
        headers = {"Authorization": issue_token(kpi_cloud, role)} if role else {}
        return requests.get(f"{kpi_cloud.api_url}{path}", headers=headers, timeout=30)

    # WHEN a reviewer asks for today's KPIs
    response = get(f"/kpis?from={today}&to={today}")
    # THEN they are the report of the counters, with the six KPIs overall and per channel
    assert response.status_code == 200, response.text
    body = response.json()
    expected = kpi_report(counters(), ReviewItemsTable(get_settings().review_items_table),
                          date.fromisoformat(today), date.fromisoformat(today), datetime.now(UTC))
    assert body["overall"]["counts"]["orders_stored"] >= 3
    assert body["overall"]["counts"] == expected["overall"]["counts"]
    assert [k["name"] for k in body["overall"]["kpis"]] == [
        "ingestion_latency_p95_seconds", "auto_allocation_rate", "first_shipment_on_time_rate",
        "exception_order_ratio", "orders_per_staff_day", "availability"]
    assert body["channels"]["jd"]["counts"]["orders_stored"] >= 3 and body["hours"]
    assert body["days"][0]["day"] == today and (body["from"], body["to"]) == (today, today)
    # AND one channel only, when asked
    only_jd = get("/kpis?channel=jd").json()
    assert set(only_jd["channels"]) == {"jd"}
    # AND no token is a 401, a bad day or range a 422 that says why
    assert get("/kpis", role=None).status_code == 401
    bad = get("/kpis?from=2026-13-01")
    assert bad.status_code == 422 and "from" in bad.text
    backwards = get(f"/kpis?from={today}&to=2020-01-01")
    assert backwards.status_code == 422 and "before" in backwards.json()["message"]
    assert get("/kpis?from=2026-01-01&to=2026-03-01").status_code == 422
    assert get("/kpis?channel=ebay").status_code == 422


def test_kpis_recommend_finds_the_recurring_wednesday_peak_in_the_counters(kpi_cloud, capsys):
    # GIVEN four weeks of paid orders in the counters: 40 an hour, and 400 at Wednesday 10:00 China time
    # (02:00 UTC), as the KpiFunction counts them (one event per hour carrying that hour's orders)
    from oms.domain.kpi_events import KpiEvent
    from omsdev.cli import main

    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = today - timedelta(days=28)
    events, hour = [], start
    while hour < today - timedelta(days=1):
        orders = 400 if (hour.weekday(), hour.hour) == (2, 2) else 40
        events.append(KpiEvent(f"history#{uuid.uuid4().hex}", "paid", "taobao", hour, (("orders_paid", orders),)))
        hour += timedelta(hours=1)
    counters().record(events, datetime.now(UTC))
    # WHEN the operator asks for a recommendation
    code = main(["kpis", "--recommend", "--weeks", "4", "--endpoint", kpi_cloud.endpoint,
                 "--stack-name", kpi_cloud.stack_name])
    printed = capsys.readouterr().out
    # THEN the recurring peak is Wednesday 10:00 business time, pre-scaled from 09:45 (01:45 UTC)
    assert code == 0, printed
    assert "Wed 10:00" in printed and "cron(45 1 ? * WED *)" in printed
