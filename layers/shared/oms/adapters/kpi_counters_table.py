"""The KPI table: counters per UTC hour and channel, kept as things happen (no scan ever recomputes them).

Items (pk, sk):
- `hour#YYYY-MM-DD`, `HH#channel#N`: counters (the `PeriodCounts` field names; the latency histogram
  as `latency_0` ..) of one hour and channel, in one of `SHARDS` shards chosen by order key, so that
  concurrent writers of a busy hour rarely meet on one item. A day is one Query.
- `hour#YYYY-MM-DD`, `HH#channel#x`: attempts (poll windows, handler invocations), plain ADDs.
- `hour#YYYY-MM-DD`, `staff#warehouse`: staff on shift that day (the attendance feed sets it).
- `marker#order_key`, kind: this order's event was counted (expires after `MARKER_DAYS`).

`record` is exactly once per (order, kind): each transaction puts the events' markers on condition
that they are new and adds the events' counters; an event whose marker exists is dropped and the
rest go again, so a redelivered stream record changes nothing.
"""

from __future__ import annotations

import random
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from botocore.exceptions import ClientError

from oms.adapters import aws
from oms.domain.kpi_events import KpiEvent
from oms.domain.kpis import LATENCY_BUCKETS, PeriodCounts

SHARDS = 4
MARKER_DAYS = 90
# A transaction holds at most 100 items: markers, then the counter items they add to.
MAX_ITEMS = 100
MARKERS_PER_TRANSACTION = 60
CONFLICT_ATTEMPTS = 8
SYSTEM_CHANNEL = "_system"  # handler invocations, which belong to no sales channel
_COUNTER_FIELDS = tuple(name for name in PeriodCounts.__dataclass_fields__ if name not in ("latency", "staff_days"))


def _hour_key(at: datetime) -> tuple[str, str]:
    at = at.astimezone(timezone.utc)
    return f"hour#{at.date().isoformat()}", f"{at.hour:02d}"


def _days(first_day: date, last_day: date) -> Iterable[date]:
    day = first_day
    while day <= last_day:
        yield day
        day += timedelta(days=1)


class KpiCountersTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")

    # Writing -----------------------------------------------------------------------------------

    def record(self, events: Sequence[KpiEvent], now: datetime) -> list[KpiEvent]:
        """Count each event unless it was counted before; the events that were new."""
        unique = list({(event.order_key, event.kind): event for event in events}.values())
        counted: list[KpiEvent] = []
        chunk: list[KpiEvent] = []
        rows: set[tuple[str, str]] = set()
        for event in unique:
            grown = rows | set(_rows_of(event))
            if chunk and (len(chunk) == MARKERS_PER_TRANSACTION or len(chunk) + 1 + len(grown) > MAX_ITEMS):
                counted += self._record_chunk(chunk, now)
                chunk, grown = [], set(_rows_of(event))
            chunk.append(event)
            rows = grown
        if chunk:
            counted += self._record_chunk(chunk, now)
        return counted

    def _record_chunk(self, events: list[KpiEvent], now: datetime) -> list[KpiEvent]:
        expires = str(int((now + timedelta(days=MARKER_DAYS)).timestamp()))
        conflicts = 0
        while events:
            items = [{"Put": {"TableName": self.name, "ConditionExpression": "attribute_not_exists(pk)", "Item": {
                "pk": {"S": f"marker#{event.order_key}"}, "sk": {"S": event.kind},
                "expires_at": {"N": expires}}}} for event in events]
            items += self._counter_updates(events)
            try:
                self._dynamodb.transact_write_items(TransactItems=items)
                return events
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
                seen = {index for index, code in enumerate(reasons[:len(events)]) if code == "ConditionalCheckFailed"}
                if seen:
                    events = [event for index, event in enumerate(events) if index not in seen]
                    continue
                if "TransactionConflict" in reasons and conflicts < CONFLICT_ATTEMPTS:
                    conflicts += 1  # another writer on the same counter item: try again shortly
                    time.sleep(random.uniform(0, 0.05 * 2 ** conflicts))
                    continue
                raise
        return []

    def _counter_updates(self, events: list[KpiEvent]) -> list[dict]:
        rows: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for event in events:
            [row] = _rows_of(event)
            for counter, amount in event.counters:
                rows[row][counter] += amount
        return [{"Update": {"TableName": self.name, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}, **_adds(counters)}}
                for (pk, sk), counters in rows.items()]

    def add_attempts(self, at: datetime, channel: str, *, ok: int = 0, failed: int = 0) -> None:
        """Poll windows or invocations that succeeded / failed (availability)."""
        pk, hour = _hour_key(at)
        self._dynamodb.update_item(TableName=self.name, Key={"pk": {"S": pk}, "sk": {"S": f"{hour}#{channel}#x"}},
                                   **_adds({"attempts_ok": ok, "attempts_failed": failed}))

    def set_staff(self, day: date, warehouse_id: str, staff_on_shift: int) -> None:
        """The warehouse's staff on shift on `day` (the latest roster wins)."""
        self._dynamodb.put_item(TableName=self.name, Item={
            "pk": {"S": f"hour#{day.isoformat()}"}, "sk": {"S": f"staff#{warehouse_id}"},
            "staff_on_shift": {"N": str(staff_on_shift)}})

    # Reading -----------------------------------------------------------------------------------

    def hours(self, first_day: date, last_day: date) -> dict[tuple[datetime, str], PeriodCounts]:
        """Every hour and channel with counts in the days, shards merged: one Query per day."""
        found: dict[tuple[datetime, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for day in _days(first_day, last_day):
            for item in self._day_items(day):
                sk = item["sk"]["S"]
                if sk.startswith("staff#"):
                    continue
                hour, channel, _shard = sk.split("#")
                start = datetime(day.year, day.month, day.day, int(hour), tzinfo=timezone.utc)
                for name, value in item.items():
                    if name not in ("pk", "sk"):
                        found[(start, channel)][name] += int(value["N"])
        return {key: _period_counts(values) for key, values in found.items()}

    def staff_days(self, first_day: date, last_day: date) -> dict[date, int]:
        """Staff on shift per day, all warehouses together (days with a roster only)."""
        staff: dict[date, int] = {}
        for day in _days(first_day, last_day):
            rows = [int(item["staff_on_shift"]["N"]) for item in self._day_items(day, sk_prefix="staff#")]
            if rows:
                staff[day] = sum(rows)
        return staff

    def _day_items(self, day: date, sk_prefix: str | None = None) -> Iterable[dict]:
        kwargs = {"TableName": self.name, "KeyConditionExpression": "pk = :pk",
                  "ExpressionAttributeValues": {":pk": {"S": f"hour#{day.isoformat()}"}}}
        if sk_prefix:
            kwargs["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = {"S": sk_prefix}
        while True:
            page = self._dynamodb.query(**kwargs)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _rows_of(event: KpiEvent) -> list[tuple[str, str]]:
    """The counter item (pk, sk) an event adds to."""
    pk, hour = _hour_key(event.at)
    return [(pk, f"{hour}#{event.channel}#{zlib.crc32(event.order_key.encode()) % SHARDS}")]


def _adds(counters: dict[str, int]) -> dict:
    names, values, parts = {}, {}, []
    for index, (name, amount) in enumerate(sorted(counters.items())):
        names[f"#c{index}"], values[f":c{index}"] = name, {"N": str(amount)}
        parts.append(f"#c{index} :c{index}")
    return {"UpdateExpression": "ADD " + ", ".join(parts), "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values}


def _period_counts(values: dict[str, int]) -> PeriodCounts:
    latency = tuple(values.get(f"latency_{index}", 0) for index in range(len(LATENCY_BUCKETS) + 1))
    return PeriodCounts(latency=latency, staff_days=Decimal(0),
                        **{name: values.get(name, 0) for name in _COUNTER_FIELDS})
