"""The KPI report behind GET /kpis and `oms kpis`: the six KPIs over some UTC days, overall, per
channel, per day and per hour, with what the dashboard charts (orders per channel and hour, the
latency histogram, the review queue, allocation outcomes, risk holds).

Everything comes from the hourly counters (`oms.domain.kpis`, one Query per day) and the open review
items (one Query on their status index); nothing is scanned or recomputed from orders.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from oms.domain.kpis import LATENCY_BUCKETS, PeriodCounts, kpis, merge
from oms.domain.order import format_utc

MAX_DAYS = 31
SYSTEM_CHANNEL = "_system"  # handler invocations: part of availability, not a sales channel


class KpiCounters(Protocol):
    def hours(self, first_day: date, last_day: date) -> dict[tuple[datetime, str], PeriodCounts]: ...
    def staff_days(self, first_day: date, last_day: date) -> dict[date, int]: ...


class OpenReviewItems(Protocol):
    def open_summary(self, now: datetime) -> dict: ...


class KpiRangeError(ValueError):
    """The days asked for are not a range the report serves."""


def _summary(counts: PeriodCounts) -> dict:
    return {"kpis": [kpi.as_dict() for kpi in kpis(counts)], "counts": counts.as_dict()}


def kpi_report(counters: KpiCounters, review_items: OpenReviewItems, first_day: date, last_day: date,
               now: datetime, channel: str | None = None) -> dict:
    if last_day < first_day:
        raise KpiRangeError("to must not be before from")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise KpiRangeError(f"at most {MAX_DAYS} days at a time")
    hourly = counters.hours(first_day, last_day)
    if channel is not None:
        hourly = {key: counts for key, counts in hourly.items() if key[1] == channel}
    staff = counters.staff_days(first_day, last_day)

    by_channel: dict[str, list[PeriodCounts]] = defaultdict(list)
    by_day: dict[date, list[PeriodCounts]] = defaultdict(list)
    by_hour: dict[datetime, dict[str, PeriodCounts]] = defaultdict(dict)
    for (hour, name), counts in hourly.items():
        by_channel[name].append(counts)
        by_day[hour.date()].append(counts)
        by_hour[hour][name] = counts
    # Staff work for every channel at once: staff-days belong to the whole, not to one channel.
    staff_total = Decimal(sum(staff.values())) if channel is None else Decimal(0)
    overall = replace(merge(*hourly.values()), staff_days=staff_total)
    days = []
    day = first_day
    while day <= last_day:
        counts = replace(merge(*by_day.get(day, [])), staff_days=Decimal(staff.get(day, 0) if channel is None else 0))
        days.append({"day": day.isoformat(), **_summary(counts)})
        day += timedelta(days=1)
    return {
        "from": first_day.isoformat(), "to": last_day.isoformat(), "generated_at": format_utc(now),
        "channel": channel,
        "overall": _summary(overall),
        "channels": {name: _summary(merge(*periods)) for name, periods in sorted(by_channel.items())},
        "days": days,
        "hours": [{"hour": format_utc(hour),
                   "kpis": [kpi.as_dict() for kpi in kpis(merge(*channels.values()))],
                   "channels": {name: counts.as_dict() for name, counts in sorted(channels.items())}}
                  for hour, channels in sorted(by_hour.items())],
        "latency_histogram": {"bounds_seconds": list(LATENCY_BUCKETS), "counts": list(overall.latency)},
        "review_queue": review_items.open_summary(now),
        "allocation_outcomes": {"allocated_automatically": overall.allocated_automatically,
                                "sent_to_review": overall.allocation_needed - overall.allocated_automatically},
        "risk_holds": overall.risk_holds,
    }
