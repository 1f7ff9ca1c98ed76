"""The six KPI formulas on constructed histories, empty and partial periods included (pure, no mocks)."""

from decimal import Decimal
from fractions import Fraction

import pytest
from oms.domain.kpis import LATENCY_BUCKETS, PeriodCounts, kpis, latency_bucket, latency_p95_seconds, merge


def by_name(counts: PeriodCounts) -> dict:
    return {kpi.name: kpi for kpi in kpis(counts)}


def test_an_empty_period_reports_no_data_for_every_kpi_not_zero_or_perfect():
    # GIVEN a night hour in which nothing happened
    shown = by_name(PeriodCounts())
    # THEN no KPI claims a value, so nothing alerts and nothing looks perfect
    assert {kpi.status for kpi in shown.values()} == {"no_data"}
    assert all(kpi.value is None for kpi in shown.values())


def test_latency_p95_is_the_bucket_bound_under_which_95_percent_fell():
    # GIVEN 100 orders: 95 stored within 30 s, 5 within 2 minutes
    counts = PeriodCounts()
    for seconds in [5] * 60 + [25] * 35 + [100] * 5:
        counts = counts.with_latency(seconds)
    # THEN p95 is 30 s (the 95th order is in the <= 30 s bucket), within the 60 s target
    assert latency_p95_seconds(counts) == 30 and counts.orders_stored == 100
    assert by_name(counts)["ingestion_latency_p95_seconds"].status == "ok"
    # AND one more slow order pushes p95 into the 2-minute bucket: a breach
    slow = counts
    for _ in range(2):
        slow = slow.with_latency(400)
    assert latency_p95_seconds(slow) == 120 and by_name(slow)["ingestion_latency_p95_seconds"].status == "breach"


@pytest.mark.parametrize(("seconds", "bucket"), [(0, 0), (10, 0), (10.5, 1), (60, 2), (3600, 8), (3601, 9)])
def test_latency_bucket_bounds_are_inclusive_and_the_last_is_open(seconds, bucket):
    assert latency_bucket(seconds) == bucket and len(LATENCY_BUCKETS) == 9


@pytest.mark.parametrize(("allocated", "needed", "status"), [(95, 100, "ok"), (94, 100, "breach"), (0, 0, "no_data")])
def test_auto_allocation_rate_against_95_percent(allocated, needed, status):
    kpi = by_name(PeriodCounts(allocation_needed=needed, allocated_automatically=allocated))["auto_allocation_rate"]
    assert kpi.status == status
    assert kpi.value == (None if needed == 0 else Fraction(allocated, needed))


@pytest.mark.parametrize(("on_time", "due", "status"), [(92, 100, "ok"), (91, 100, "breach"), (0, 0, "no_data")])
def test_first_shipment_on_time_rate_against_92_percent(on_time, due, status):
    kpi = by_name(PeriodCounts(first_shipments_due=due, first_shipments_on_time=on_time))
    assert kpi["first_shipment_on_time_rate"].status == status


@pytest.mark.parametrize(("exceptions", "stored", "status"), [(2, 100, "ok"), (3, 100, "breach"), (0, 0, "no_data")])
def test_the_exception_ratio_alerts_at_3_percent(exceptions, stored, status):
    latency = (stored,) + (0,) * len(LATENCY_BUCKETS)
    kpi = by_name(PeriodCounts(orders_stored=stored, latency=latency, exceptions=exceptions))["exception_order_ratio"]
    assert kpi.status == status


def test_orders_per_staff_day_divides_shipped_orders_by_staff_days_worked():
    kpi = by_name(PeriodCounts(orders_shipped=3000, staff_days=Decimal("120.5")))["orders_per_staff_day"]
    assert kpi.value == Decimal("24.90") and kpi.status == "reported"
    assert by_name(PeriodCounts(orders_shipped=10))["orders_per_staff_day"].status == "no_data"


@pytest.mark.parametrize(("ok", "failed", "status"), [(995, 5, "ok"), (994, 6, "breach"), (0, 0, "no_data")])
def test_availability_counts_poll_windows_and_invocations_against_99_5_percent(ok, failed, status):
    assert by_name(PeriodCounts(attempts_ok=ok, attempts_failed=failed))["availability"].status == status


def test_a_day_is_the_merge_of_its_hours_including_partial_and_empty_ones():
    # GIVEN three hours of one channel: a busy one, an empty one, and a partial one still running
    busy = PeriodCounts(allocation_needed=50, allocated_automatically=49, exceptions=1, attempts_ok=60).with_latency(20)
    empty = PeriodCounts()
    partial = PeriodCounts(allocation_needed=10, allocated_automatically=8, attempts_ok=20, attempts_failed=1)
    day = merge(busy, empty, partial)
    # THEN the day's rates come from the summed counts, not from averaging the hours' rates
    shown = by_name(day)
    assert shown["auto_allocation_rate"].value == Fraction(57, 60)
    assert shown["availability"].value == Fraction(80, 81)
    assert day.orders_stored == 1 and sum(day.latency) == 1
    # AND merging nothing is the empty period
    assert merge() == PeriodCounts()


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match="allocated automatically"):
        PeriodCounts(allocation_needed=1, allocated_automatically=2)
    with pytest.raises(ValueError, match="negative"):
        PeriodCounts(exceptions=-1)
    with pytest.raises(ValueError, match="bucket counts"):
        PeriodCounts(latency=(1, 2))


def test_kpis_render_as_json_ready_values():
    shown = [kpi.as_dict() for kpi in kpis(PeriodCounts(allocation_needed=3, allocated_automatically=2))]
    rate = next(kpi for kpi in shown if kpi["name"] == "auto_allocation_rate")
    assert rate == {"name": "auto_allocation_rate", "value": 0.6667, "target": ">= 95%", "status": "breach"}


def test_quarantined_orders_count_in_the_exception_ratio_on_both_sides():
    # GIVEN 96 stored orders, 1 sent to review, and 4 orders too malformed to store
    counts = PeriodCounts(orders_stored=96, exceptions=1, orders_quarantined=4)
    # THEN 5 of 100 received orders needed a person: 5%, an alert
    kpi = by_name(counts)["exception_order_ratio"]
    assert (kpi.value, kpi.status) == (Fraction(5, 100), "breach")
    # AND quarantine alone, with nothing stored, is still a ratio (100%), not no_data
    assert by_name(PeriodCounts(orders_quarantined=2))["exception_order_ratio"].status == "breach"


def test_counts_as_a_dict_are_json_ready():
    counts = PeriodCounts(orders_stored=3, staff_days=Decimal("2.5")).with_latency(12)
    shown = counts.as_dict()
    assert shown["latency"] == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0] and shown["staff_days"] == 2.5
    assert PeriodCounts(staff_days=Decimal(147)).as_dict()["staff_days"] == 147
