"""The six operating KPIs of SPEC C9, computed from counts kept per period (pure).

The system keeps, per channel and per hour, a `PeriodCounts` of plain counters (added to as things
happen, so no scan ever recomputes them); a day, or all channels, is the `merge` of hours. `kpis`
turns any such counts into the six indicators, each with its target and a status:

| KPI | formula | target |
|---|---|---|
| ingestion latency | p95 of (stored - paid at the channel), from a latency histogram | <= 60 s (seed: 15 min) |
| auto-allocation success | orders allocated without a person / orders that needed allocating | >= 95% |
| first-shipment on time | first shipments made by their deadline / first shipments due | >= 92% |
| exception-order ratio | orders that went to review or quarantine / orders received | alert at >= 3% |
| orders per staff-day | orders shipped / staff-days worked (attendance feed) | (reported) |
| availability | successful poll windows and invocations / all of them | >= 99.5% |

A KPI whose denominator is zero in the period (nothing happened) is `no_data`, never 0% or 100%:
an empty night hour must not page anyone, nor hide a broken poller behind a perfect score.
Rates are exact fractions until shown (rounded to 4 places).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction

# Upper bounds (seconds) of the ingestion-latency histogram's buckets; the last bucket is open-ended.
LATENCY_BUCKETS: tuple[int, ...] = (10, 30, 60, 120, 300, 600, 900, 1800, 3600)

LATENCY_TARGET_SECONDS = 60
SEED_LATENCY_SECONDS = 15 * 60
ALLOCATION_TARGET = Fraction(95, 100)
ON_TIME_TARGET = Fraction(92, 100)
EXCEPTION_ALERT = Fraction(3, 100)
AVAILABILITY_TARGET = Fraction(995, 1000)


def latency_bucket(seconds: float) -> int:
    """The histogram bucket a latency falls in (index into a counts tuple of len(LATENCY_BUCKETS) + 1)."""
    for index, bound in enumerate(LATENCY_BUCKETS):
        if seconds <= bound:
            return index
    return len(LATENCY_BUCKETS)


@dataclass(frozen=True)
class PeriodCounts:
    """Counters of one period (and channel); every field adds up under `merge`."""

    orders_stored: int = 0
    orders_paid: int = 0  # counted in the hour paid at the channel (the demand profile)
    latency: tuple[int, ...] = (0,) * (len(LATENCY_BUCKETS) + 1)
    allocation_needed: int = 0
    allocated_automatically: int = 0
    first_shipments_due: int = 0
    first_shipments_on_time: int = 0
    exceptions: int = 0  # stored orders sent to review (by allocation or risk), once per order
    orders_quarantined: int = 0  # orders too malformed to store, each once
    risk_holds: int = 0
    orders_shipped: int = 0
    staff_days: Decimal = Decimal(0)
    attempts_ok: int = 0
    attempts_failed: int = 0

    def __post_init__(self) -> None:
        if len(self.latency) != len(LATENCY_BUCKETS) + 1:
            raise ValueError(f"latency needs {len(LATENCY_BUCKETS) + 1} bucket counts, got {len(self.latency)}")
        for item in fields(self):
            value = getattr(self, item.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(v < 0 for v in values):
                raise ValueError(f"{item.name} cannot be negative")
        if self.allocated_automatically > self.allocation_needed:
            raise ValueError("more orders allocated automatically than needed allocating")
        if self.first_shipments_on_time > self.first_shipments_due:
            raise ValueError("more first shipments on time than due")

    def as_dict(self) -> dict:
        """JSON-able counters (the latency histogram as a list, staff-days as a number)."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        values["latency"] = list(self.latency)
        values["staff_days"] = float(self.staff_days) if self.staff_days % 1 else int(self.staff_days)
        return values

    def with_latency(self, seconds: float) -> PeriodCounts:
        """These counts with one more stored order of this ingestion latency."""
        buckets = list(self.latency)
        buckets[latency_bucket(seconds)] += 1
        return PeriodCounts(**{**self.__dict__, "latency": tuple(buckets), "orders_stored": self.orders_stored + 1})


def merge(*periods: PeriodCounts) -> PeriodCounts:
    """The counts of several periods or channels together (hours -> a day, channels -> overall)."""
    total = PeriodCounts()
    for period in periods:
        total = PeriodCounts(**{
            item.name: (tuple(a + b for a, b in zip(getattr(total, item.name), getattr(period, item.name), strict=True))
                        if item.name == "latency" else getattr(total, item.name) + getattr(period, item.name))
            for item in fields(PeriodCounts)})
    return total


@dataclass(frozen=True)
class Kpi:
    name: str
    value: Fraction | Decimal | int | None  # None: no data in the period
    target: str
    status: str  # ok | breach | no_data | reported

    def as_dict(self) -> dict:
        shown = self.value
        if isinstance(shown, Fraction):
            shown = float(round(Decimal(shown.numerator) / Decimal(shown.denominator), 4))
        elif isinstance(shown, Decimal):
            shown = float(round(shown, 2))
        return {"name": self.name, "value": shown, "target": self.target, "status": self.status}


def latency_p95_seconds(counts: PeriodCounts) -> int | None:
    """The bucket bound under which 95% of the period's stored orders fell (None: none stored; the
    open last bucket reads as its lower bound, i.e. "more than an hour")."""
    total = sum(counts.latency)
    if total == 0:
        return None
    needed, seen = Fraction(95, 100) * total, 0
    for index, count in enumerate(counts.latency):
        seen += count
        if seen >= needed:
            return LATENCY_BUCKETS[index] if index < len(LATENCY_BUCKETS) else LATENCY_BUCKETS[-1]
    return LATENCY_BUCKETS[-1]


def _share(part: int, whole: int) -> Fraction | None:
    return None if whole == 0 else Fraction(part, whole)


def _status(value, ok) -> str:
    return "no_data" if value is None else ("ok" if ok(value) else "breach")


def kpis(counts: PeriodCounts) -> list[Kpi]:
    latency = latency_p95_seconds(counts)
    allocation = _share(counts.allocated_automatically, counts.allocation_needed)
    on_time = _share(counts.first_shipments_on_time, counts.first_shipments_due)
    exceptions = _share(counts.exceptions + counts.orders_quarantined, counts.orders_stored + counts.orders_quarantined)
    attempts = counts.attempts_ok + counts.attempts_failed
    availability = _share(counts.attempts_ok, attempts)
    per_staff_day = (None if counts.staff_days == 0
                     else (Decimal(counts.orders_shipped) / counts.staff_days).quantize(Decimal("0.01")))
    return [
        Kpi("ingestion_latency_p95_seconds", latency, f"<= {LATENCY_TARGET_SECONDS} s",
            _status(latency, lambda v: v <= LATENCY_TARGET_SECONDS)),
        Kpi("auto_allocation_rate", allocation, ">= 95%", _status(allocation, lambda v: v >= ALLOCATION_TARGET)),
        Kpi("first_shipment_on_time_rate", on_time, ">= 92%", _status(on_time, lambda v: v >= ON_TIME_TARGET)),
        Kpi("exception_order_ratio", exceptions, "< 3% (alert at 3%)",
            _status(exceptions, lambda v: v < EXCEPTION_ALERT)),
        Kpi("orders_per_staff_day", per_staff_day, "reported", "no_data" if per_staff_day is None else "reported"),
        Kpi("availability", availability, ">= 99.5%", _status(availability, lambda v: v >= AVAILABILITY_TARGET)),
    ]
