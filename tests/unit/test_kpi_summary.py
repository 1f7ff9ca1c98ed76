"""The console's KPI lines (`oms local up`, `oms kpis`): how a KPI and the latency histogram read."""

from __future__ import annotations

from oms.domain.kpis import LATENCY_BUCKETS

from omsdev.kpi_summary import kpi_text, latency_text


def test_the_latency_histogram_names_each_non_empty_bucket_and_the_open_one_as_more_than_its_bound():
    # GIVEN live orders stored within seconds and a backlog that waited more than an hour
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    counts[0], counts[1], counts[-1] = 60, 35, 320
    # WHEN it is written for the console
    text = latency_text({"bounds_seconds": list(LATENCY_BUCKETS), "counts": counts})
    # THEN both show, each bucket by its bound, the open last one as "more than" the last bound
    assert text == "<= 10 s: 60, <= 30 s: 35, > 3600 s: 320"


def test_an_empty_histogram_reads_none():
    assert latency_text({"bounds_seconds": list(LATENCY_BUCKETS), "counts": [0] * (len(LATENCY_BUCKETS) + 1)}) == "none"


def test_kpis_read_as_percent_seconds_or_a_dash_without_data():
    assert kpi_text({"name": "auto_allocation_rate", "value": 0.8856}) == "88.56%"
    assert kpi_text({"name": "availability", "value": 1.0}) == "100.00%"
    assert kpi_text({"name": "ingestion_latency_p95_seconds", "value": 60}) == "60 s"
    assert kpi_text({"name": "orders_per_staff_day", "value": 0.56}) == "0.56"
    assert kpi_text({"name": "first_shipment_on_time_rate", "value": None}) == "-"
