"""Which KPI counters a change of a stored order moves (pure): the events behind `oms.domain.kpis`.

`order_events(old, new, ship_by)` reads one Orders-stream change (the old and new images as plain
dicts, `old` None for a new order) and returns the `KpiEvent`s it makes happen. Each kind happens at
most once per order: the counters keep a marker per (order, kind), so a redelivered record, or a later
change that looks the same (a reviewer allocating an order that allocation sent to review), never
counts twice.

| kind         | happens when                                                  | counted in the hour of       | counters                         |
|--------------|---------------------------------------------------------------|------------------------------|----------------------------------|
| `stored`     | the order is first stored                                     | stored_at_ms                 | orders_stored                    |
| `paid`       | the order is first seen paid (stored paid, or pending -> paid) | paid_at (the demand profile) | orders_paid                      |
| `latency`    | same change as `paid`                                         | the write                    | latency bucket of write - paid_at |
| `allocation` | fulfillment first becomes `allocated` or `in_review`          | fulfillment_updated_at       | allocation_needed (+ allocated_automatically) |
| `exception`  | allocation or risk first sends the order to review (or blocks) | the write                   | exceptions                       |
| `held`       | risk first holds the order (verifying, in review, blocked)    | risk_updated_at              | risk_holds                       |
| `shipped`    | the first shipment: WMS shipped, or the channel says shipped  | shipped_at / updated_at      | orders_shipped, first_shipments_due (+ on_time) |

A shipment is on time when it left within `ship_by` of payment. An order first stored already
shipped (a backfill) counts its shipment too: it is one, and its lateness is real.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from oms.domain.kpis import latency_bucket

HELD_RISK_STATUSES = ("verifying", "in_review", "blocked")
EXCEPTION_RISK_STATUSES = ("in_review", "blocked")
ALLOCATION_DECIDED = ("allocated", "in_review")
SHIPPED_STATUSES = ("shipped", "completed")


@dataclass(frozen=True)
class KpiEvent:
    order_key: str
    kind: str
    channel: str
    at: datetime  # aware; the hour it counts in
    counters: tuple[tuple[str, int], ...]  # (counter name, amount)
    seconds: float | None = None  # the measured latency of a `latency` event


def _time(value) -> datetime | None:
    """An ISO text ('Z' or offset) or epoch milliseconds, as an aware UTC datetime; None if absent or unreadable."""
    if value in (None, ""):
        return None
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    except (ValueError, TypeError, OverflowError):
        return None


def _first(old: dict | None, new: dict, field: str, values: tuple[str, ...]) -> bool:
    """`field` has just become one of `values` (it was not one before, or the order is new)."""
    return new.get(field) in values and (old is None or old.get(field) not in values)


def order_events(old: dict | None, new: dict, ship_by: timedelta, now: datetime) -> list[KpiEvent]:
    """The KPI events of one change of a stored order (`now` stands in for a time the images lack)."""
    key, channel = new["order_key"], new.get("channel") or new["order_key"].split("#", 1)[0]
    written = _time(new.get("last_written_at_ms")) or now
    events: list[KpiEvent] = []

    def event(kind: str, at: datetime | None, seconds: float | None = None, **counters: int) -> None:
        events.append(KpiEvent(key, kind, channel, at or written, tuple(counters.items()), seconds))

    if old is None:
        event("stored", _time(new.get("stored_at_ms")), orders_stored=1)
    paid_at = _time(new.get("paid_at"))
    if paid_at is not None and (old is None or _time(old.get("paid_at")) is None):
        event("paid", paid_at, orders_paid=1)
        seconds = max((written - paid_at).total_seconds(), 0.0)
        event("latency", written, seconds, **{f"latency_{latency_bucket(seconds)}": 1})
    if _first(old, new, "fulfillment_status", ALLOCATION_DECIDED):
        automatic = int(new["fulfillment_status"] == "allocated")
        event("allocation", _time(new.get("fulfillment_updated_at")), allocation_needed=1,
              allocated_automatically=automatic)
    if _first(old, new, "fulfillment_status", ("in_review",)):
        event("exception", _time(new.get("fulfillment_updated_at")), exceptions=1)
    elif _first(old, new, "risk_status", EXCEPTION_RISK_STATUSES):
        event("exception", _time(new.get("risk_updated_at")), exceptions=1)
    if _first(old, new, "risk_status", HELD_RISK_STATUSES):
        event("held", _time(new.get("risk_updated_at")), risk_holds=1)
    if _first(old, new, "fulfillment_status", ("shipped",)) or _first(old, new, "status", SHIPPED_STATUSES):
        shipped_at = _time(new.get("shipped_at")) or _time(new.get("updated_at")) or written
        if paid_at is None:
            event("shipped", shipped_at, orders_shipped=1)
        else:
            on_time = int(shipped_at - paid_at <= ship_by)
            event("shipped", shipped_at, orders_shipped=1, first_shipments_due=1, first_shipments_on_time=on_time)
    return events


def quarantine_event(order_key: str, at: datetime) -> KpiEvent:
    """An order too malformed to store (it reached review from a poller's quarantine)."""
    return KpiEvent(order_key, "quarantined", order_key.split("#", 1)[0], at, (("orders_quarantined", 1),))
