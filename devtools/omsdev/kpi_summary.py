"""The run's KPIs for the console of `oms local up` (the same report GET /kpis serves)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms.adapters.kpi_counters_table import KpiCountersTable
from oms.adapters.review_items_table import ReviewItemsTable
from oms.services.kpi_report import kpi_report
from oms.settings import get_settings


def kpi_text(kpi: dict) -> str:
    """A KPI of the report as a person reads it: a rate in %, seconds with "s", "-" without data."""
    value = kpi["value"]
    if value is None:
        return "-"
    if kpi["name"].endswith(("_rate", "_ratio")) or kpi["name"] == "availability":
        return f"{value * 100:.2f}%"
    return f"{value:g}" + (" s" if kpi["name"].endswith("_seconds") else "")


def summary() -> list[str]:
    settings = get_settings()
    now = datetime.now(UTC)
    report = kpi_report(KpiCountersTable(settings.kpi_table), ReviewItemsTable(settings.review_items_table),
                        (now - timedelta(hours=1)).date(), now.date(), now)
    counts = report["overall"]["counts"]
    lines = [f"kpis: {counts['orders_stored']} orders stored, {counts['orders_shipped']} shipped, "
             f"{report['review_queue']['open_items']} open review items (GET /kpis, /dashboard)"]
    lines += [f"kpi {kpi['name']}: {kpi_text(kpi)} (target {kpi['target']}: {kpi['status']})"
              for kpi in report["overall"]["kpis"]]
    lines.append("kpi ingestion latency, orders by wait: " + latency_text(report["latency_histogram"]))
    return lines


def latency_text(histogram: dict) -> str:
    """The latency histogram in a line (a backlog's hour-long waits and the live orders' seconds both show)."""
    bounds, counts = histogram["bounds_seconds"], histogram["counts"]
    labels = [f"<= {bound} s" for bound in bounds] + [f"> {bounds[-1]} s"]
    return ", ".join(f"{label}: {count}" for label, count in zip(labels, counts, strict=True) if count) or "none"
