"""Issue 8, the handler boundary: the Orders-stream consumers (allocation, risk, KPIs) crash after their
writes but before answering, or are killed in the middle of a batch, on a third of their invocations;
the event source mappings retry and bisect as the template says. The end state must be exactly the one
without crashes: every order allocated or sent to review once, no unit held twice or oversold, every
order assessed once, every KPI counted once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from oms.adapters.kpi_counters_table import KpiCountersTable
from oms.domain.kpis import merge
from oms.settings import get_settings
from omsdev.audit import audit
from omsdev.localcloud.cloud import LocalCloud
from omsdev.localcloud.lambda_runtime import CrashPlan

from tests.integration.allocation_helpers import paid_order, store, stored_images
from tests.integration.conftest import FAST_RETRIES
from tests.integration.review_helpers import warehouses

CONSUMERS = frozenset({"AllocationFunction", "RiskFunction", "KpiFunction"})


@pytest.fixture
def cloud():
    """A cloud whose moto runs in its own process: in-process moto servers of one test process share
    their state (an earlier test's WMS source secret would be found, and its simulator is gone)."""
    local = LocalCloud(port=0, stack_name=f"t{uuid.uuid4().hex[:8]}", parameter_overrides=FAST_RETRIES,
                       start_event_sources=False, server="process")
    local.start()
    yield local
    local.stop()


def test_crashes_after_writes_and_kills_mid_batch_change_nothing_in_the_end_state(cloud):
    # GIVEN 12 kettles in stock (2 at WH-EAST, 10 at WH-WEST) and the stream consumers crashing on a
    # third of their invocations, half after their writes, half after part of their batch
    warehouses()
    crashes = CrashPlan(rate=0.33, functions=CONSUMERS, seed=8)
    cloud.runtime.crashes = crashes
    cloud.start_wiring(only=set(CONSUMERS))
    # WHEN buyers pay for one kettle each, in waves of 6 until every consumer has crashed (at most 8 waves)
    keys: list[str] = []
    for _ in range(8):
        wave = [paid_order("jd", [("KETTLE-1L", 1)], shop_id=f"crash-{uuid.uuid4().hex[:6]}") for _ in range(6)]
        store(wave)
        keys += [order.order_key for order in wave]
        time.sleep(4)
        if {fid for (fid, _) in crashes.counts} == CONSUMERS and len(keys) >= 24:
            break
    total = len(keys)

    def settled() -> list[dict] | None:
        images = stored_images(cloud, keys)
        done = all(i.get("fulfillment_status", {}).get("S") in ("allocated", "in_review", "ready_to_ship")
                   and "risk_status" in i for i in images)
        return images if done else None

    deadline, images = time.monotonic() + 180, None
    while images is None and time.monotonic() < deadline:
        images = settled()
        time.sleep(1)
    assert images is not None, "the consumers never caught up"
    today = datetime.now(UTC).date()
    kpi = KpiCountersTable(get_settings().kpi_table)
    while time.monotonic() < deadline and merge(*kpi.hours(today - timedelta(days=1), today).values()) \
            .allocation_needed < total:
        time.sleep(1)
    cloud.stop_wiring()

    # THEN crashes of both kinds happened, in every consumer...
    kinds = {kind for (_, kind) in crashes.counts}
    assert kinds == {"after_writes", "mid_batch"} and {fid for (fid, _) in crashes.counts} == CONSUMERS, crashes.counts
    # ... and yet exactly 12 orders hold a kettle, the others are in review, nothing is oversold
    allocated = [i for i in images if i["fulfillment_status"]["S"] in ("allocated", "ready_to_ship")]
    assert (len(allocated), len(images) - len(allocated)) == (12, total - 12)
    report = audit(keys, stack=cloud.stack, checks=("orders", "stock", "holds"))
    assert report.ok, report.lines()
    assert report.check("stock").counts["oversold_units"] == 0
    # AND each order was counted once by the KPIs, whatever was redelivered
    counts = merge(*kpi.hours(today - timedelta(days=1), today).values())
    assert (counts.orders_stored, counts.allocation_needed, counts.allocated_automatically) == (total, total, 12)
    assert counts.exceptions == total - 12
