"""Feeds: refresh allocation's snapshots of its four data sources (SPEC C5, issue 4 item 5), and record
the warehouses' shipments (SPEC C4 "deduct on shipment", C9 first-shipment KPI; issue 7).

`refresh_source(source, ports, now)` reads one source's API and rewrites its partition of the
AllocationFacts table; every row carries the source's own `as_of`, so allocation sees how old it is.

| source       | reads                                   | writes (source partition: key -> value)                 |
|--------------|-----------------------------------------|---------------------------------------------------------|
| `wms`        | every warehouse's inventory, all pages  | on hand per SKU into the Inventory table (reservations  |
|              |                                         | kept), then `stock`: warehouse_id -> SKUs synced        |
| `carrier`    | transit times from every warehouse      | `delivery`: "{warehouse_id}#{region}" -> hours          |
| `attendance` | today's roster (UTC+8 business day)     | `labour`: warehouse_id -> {staff_on_shift, orders_...}  |
|              |                                         | and each warehouse's staff for the day's KPIs           |
| `quality`    | the last 30 days' reports               | `error`: warehouse_id -> errors / shipments             |
| `shipments`  | every warehouse's WMS shipments since   | each shipment through allocation (`record_shipment`:    |
|              | its cursor (all pages)                  | units deducted, order shipped at the WMS's time), then  |
|              |                                         | `shipments`: warehouse_id -> cursor (epoch ms)          |

A source whose client is missing from the ports is *not configured*: the outcome says so and nothing
is written (its snapshot simply ages). A failed source raises `SourceError`; the per-warehouse sources
(wms, carrier, shipments) sync every warehouse they can and then raise `PartialFeedError` naming the
others, whose old rows are left alone to age.

Shipments: the cursor of a warehouse is the latest `shipped_at` it listed (to the millisecond, never
after it), moved only once every shipment of a page is recorded. The next run reads from the cursor
minus `SHIPMENT_REREAD` (the WMS's `since` is inclusive): shipments sharing the cursor's instant, or
scanned a little late with an earlier time, are not lost, and the ones read again change nothing,
because recording is idempotent. A warehouse without a cursor is read from `SHIPMENT_FIRST_LOOKBACK`
ago. A shipment of an order we do not hold (unknown, released, refused, or another reservation of it)
is counted and logged as unmatched and the others go on; a shipment that cannot be recorded (a
storage error) stops its warehouse where it is, so the next run starts from the same cursor.

This module also holds the values the data-source clients return and the feed's ports (plain frozen
dataclasses and Protocols, no I/O); allocation's WMS port is `oms.ports.WmsConfirmations`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal, Protocol

from oms.observability import logger
from oms.ports import WarehouseDirectory

# The data-source APIs (each with its secret `<prefix>/sources/<source>`), and every feed: the
# shipments feed reads the WMS's API with the wms secret.
SOURCES = ("wms", "carrier", "attendance", "quality")
FEEDS = (*SOURCES, "shipments")
Source = Literal["wms", "carrier", "attendance", "quality"]
# Snapshot partitions of the AllocationFacts table (and the shipments feed's cursors).
FACT_STOCK, FACT_DELIVERY, FACT_LABOUR, FACT_ERROR, FACT_ALLOCATED = "stock", "delivery", "labour", "error", "allocated"
FACT_SHIPMENTS = "shipments"
# The warehouses' rosters and their "today" are China's.
BUSINESS_TIMEZONE = timezone(timedelta(hours=8))
QUALITY_WINDOW_DAYS = 30
ERROR_RATE_PLACES = Decimal("0.000001")
# set_on_hand calls in flight per inventory page (each is one conditional DynamoDB write).
STOCK_WRITERS = 8
# Shipments recorded at once per page (each is one reservation read and, the first time, one transaction).
SHIPMENT_RECORDERS = 8
SHIPMENT_REREAD = timedelta(minutes=5)
SHIPMENT_FIRST_LOOKBACK = timedelta(days=7)
# Unmatched shipments named in the outcome (all are counted and logged).
UNMATCHED_LISTED = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# Errors -------------------------------------------------------------------------------------------


class SourceError(RuntimeError):
    """A data source did not give a usable answer (HTTP error, bad body, refused key, missing secret)."""


class SourceTimeoutError(SourceError):
    """No answer within the time the caller allowed (a read timeout, or retries that would not fit)."""


class PartialFeedError(SourceError):
    """Some warehouses of a per-warehouse source failed; the others were synced (see `outcome`)."""

    def __init__(self, source: str, failed: Mapping[str, str], outcome: FeedOutcome):
        names = ", ".join(sorted(failed))
        details = "; ".join(f"{warehouse}: {reason}" for warehouse, reason in sorted(failed.items()))
        super().__init__(f"{source} feed failed for {len(failed)} warehouse(s) [{names}]: {details}")
        self.source, self.failed, self.outcome = source, dict(failed), outcome


# Values the source clients return ----------------------------------------------------------------


@dataclass(frozen=True)
class StockCount:
    sku: str
    on_hand: int


@dataclass(frozen=True)
class InventoryPage:
    items: tuple[StockCount, ...]
    next_page_token: str | None
    as_of: datetime


@dataclass(frozen=True)
class TransitRoute:
    region: str  # "CN" or "CN/浙江"
    hours: Decimal


@dataclass(frozen=True)
class TransitTimes:
    origin: str
    routes: tuple[TransitRoute, ...]
    as_of: datetime


@dataclass(frozen=True)
class StaffLoad:
    warehouse_id: str
    staff_on_shift: int
    orders_per_staff_day: int


@dataclass(frozen=True)
class Attendance:
    day: date
    warehouses: tuple[StaffLoad, ...]
    as_of: datetime


@dataclass(frozen=True)
class QualityReport:
    warehouse_id: str
    shipments: int
    errors: int


@dataclass(frozen=True)
class QualityReports:
    reports: tuple[QualityReport, ...]
    as_of: datetime


@dataclass(frozen=True)
class ShipmentLine:
    sku: str  # the warehouse's SKU
    quantity: int


@dataclass(frozen=True)
class WarehouseShipment:
    """A reservation of ours that the warehouse shipped (the WMS's shipments listing)."""

    warehouse_id: str
    reservation_id: str  # how the WMS knows our hold: `Reservation.wms_reservation_id`
    order_key: str
    shipped_at: datetime
    lines: tuple[ShipmentLine, ...]
    tracking_number: str | None = None
    carrier: str | None = None


@dataclass(frozen=True)
class ShipmentPage:
    items: tuple[WarehouseShipment, ...]
    next_page_token: str | None
    as_of: datetime


@dataclass(frozen=True)
class ShipmentRecorded:
    """What recording one shipment did: `recorded` (units deducted, order shipped), `already_recorded`
    (deducted before: by this feed or the channel's report), `unmatched` (not an order we hold; `reason`)."""

    state: Literal["recorded", "already_recorded", "unmatched"]
    reason: str | None = None


@dataclass(frozen=True)
class ConfirmationStatus:
    """A warehouse's answer to one of our reservations (allocation's pre-reservation, SPEC C4)."""

    status: Literal["pending", "confirmed", "rejected"]
    reason: str | None = None


# Ports -----------------------------------------------------------------------------------------------


class WmsStockSource(Protocol):
    def inventory(self, warehouse_id: str) -> Iterable[InventoryPage]:
        """Every page of the warehouse's stock listing; raises SourceError."""
        ...


class WmsShipmentSource(Protocol):
    def shipments(self, warehouse_id: str, since: datetime | None) -> Iterable[ShipmentPage]:
        """Every page of the warehouse's shipments at or after `since`; raises SourceError."""
        ...


# Allocation's use-case for one shipment (`oms.services.allocate.record_shipment` with its ports).
RecordShipment = Callable[[WarehouseShipment], ShipmentRecorded]


class CarrierSource(Protocol):
    def transit_times(self, origin: str) -> TransitTimes: ...


class AttendanceSource(Protocol):
    def attendance(self, day: date) -> Attendance: ...


class StaffDays(Protocol):
    """Where the orders-per-staff-day KPI reads each day's staff (`KpiCountersTable`)."""

    def set_staff(self, day: date, warehouse_id: str, staff_on_shift: int) -> None: ...


class QualitySource(Protocol):
    def quality_reports(self, days: int = QUALITY_WINDOW_DAYS) -> QualityReports: ...


class StockLedger(Protocol):
    def set_on_hand(self, warehouse_id: str, sku: str, on_hand: int, counted_at: datetime | None = None) -> bool:
        """The WMS's count at `counted_at`; False when it is older than what the row reflects (not applied)."""
        ...

    def skus_in_stock(self, warehouse_id: str) -> set[str]:
        """SKUs of the warehouse we hold with on hand > 0."""
        ...


class FactsStore(Protocol):
    def put_source(self, source: str, rows: Mapping[str, object], as_of: datetime, *,
                   prune: Callable[[str], bool] | None = None) -> int: ...

    def put_row(self, source: str, key: str, value: object, as_of: datetime) -> None: ...

    def read_source(self, source: str) -> dict[str, tuple[object, datetime]]: ...

    def delete_rows(self, source: str, keys: Iterable[str]) -> int: ...


@dataclass
class FeedPorts:
    facts: FactsStore
    warehouses: WarehouseDirectory
    wms: WmsStockSource | None = None
    inventory: StockLedger | None = None
    carrier: CarrierSource | None = None
    attendance: AttendanceSource | None = None
    staff_days: StaffDays | None = None
    quality: QualitySource | None = None
    shipments: WmsShipmentSource | None = None
    record_shipment: RecordShipment | None = None


@dataclass(frozen=True)
class FeedOutcome:
    source: str
    state: Literal["refreshed", "not_configured"]
    rows_written: int = 0
    rows_removed: int = 0
    as_of: datetime | None = None
    warehouses: tuple[str, ...] = ()  # synced, for the per-warehouse sources
    skus_synced: int = 0
    skus_zeroed: int = 0  # held by us but no longer listed by the WMS
    failed: dict[str, str] = field(default_factory=dict)
    shipments_recorded: int = 0
    # Read again (the inclusive cursor, the re-read window), or deducted before on the channel's report.
    shipments_already_recorded: int = 0
    shipments_unmatched: int = 0
    # "{warehouse_id}/{reservation_id}" -> reason, for the first UNMATCHED_LISTED of them.
    unmatched: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        values = asdict(self)
        values["as_of"] = self.as_of.isoformat() if self.as_of else None
        values["warehouses"] = list(self.warehouses)
        return values


# Pure rules ---------------------------------------------------------------------------------------


def business_day(now: datetime) -> date:
    """The warehouses' calendar day at `now` (China time: 00:30 UTC+8 is already tomorrow)."""
    if now.tzinfo is None:
        raise ValueError("business_day needs an aware time")
    return now.astimezone(BUSINESS_TIMEZONE).date()


def error_rate(errors: int, shipments: int) -> Decimal:
    """errors / shipments to six places; 0 for a warehouse that shipped nothing (no evidence of errors)."""
    if shipments < 0 or errors < 0:
        raise ValueError("shipments and errors cannot be negative")
    if shipments == 0:
        return Decimal(0)
    return (Decimal(errors) / Decimal(shipments)).quantize(ERROR_RATE_PLACES)


def delivery_key(warehouse_id: str, region: str) -> str:
    return f"{warehouse_id}#{region}"


def allocated_key(day: date, warehouse_id: str) -> str:
    return f"{day.isoformat()}#{warehouse_id}"


def cursor_value(shipped_at: datetime) -> int:
    """A shipments cursor as stored: epoch milliseconds, rounded down (never after the shipment)."""
    if shipped_at.tzinfo is None:
        raise ValueError("a shipment time must be timezone-aware")
    return (shipped_at - _EPOCH) // timedelta(milliseconds=1)


def cursor_time(value: object) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(value))


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def _warehouse_ids(ports: FeedPorts) -> list[str]:
    return sorted(str(row["warehouse_id"]) for row in ports.warehouses.list())


# Use-case ----------------------------------------------------------------------------------------


def refresh_source(source: str, ports: FeedPorts, now: datetime) -> FeedOutcome:
    """Refresh one source's snapshot; raises SourceError (PartialFeedError when only some warehouses failed)."""
    if source not in FEEDS:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(FEEDS)}")
    refresh = {"wms": _refresh_stock, "carrier": _refresh_delivery, "attendance": _refresh_labour,
               "quality": _refresh_errors, "shipments": _record_shipments}[source]
    return refresh(ports, now)


def _refresh_stock(ports: FeedPorts, now: datetime) -> FeedOutcome:
    if ports.wms is None:
        return FeedOutcome("wms", "not_configured")
    if ports.inventory is None:
        raise ValueError("the wms feed needs the inventory ledger")
    warehouses = _warehouse_ids(ports)
    synced: list[str] = []
    failed: dict[str, str] = {}
    skus = zeroed = 0
    oldest: datetime | None = None
    with ThreadPoolExecutor(max_workers=STOCK_WRITERS) as writers:
        for warehouse_id in warehouses:
            try:
                listed, cleared, as_of = _sync_warehouse_stock(warehouse_id, ports, writers, now)
            except Exception as error:  # one warehouse's WMS trouble must not stop the others' sync
                failed[warehouse_id] = _describe(error)
                continue
            ports.facts.put_row(FACT_STOCK, warehouse_id, listed, as_of)
            synced.append(warehouse_id)
            skus, zeroed = skus + listed, zeroed + cleared
            oldest = as_of if oldest is None else min(oldest, as_of)
    # Rows of warehouses no longer registered go; a failed warehouse keeps its old row (and its age).
    registered = set(warehouses)
    removed = ports.facts.delete_rows(FACT_STOCK, [key for key in ports.facts.read_source(FACT_STOCK)
                                                   if key not in registered])
    outcome = FeedOutcome("wms", "refreshed", rows_written=len(synced), rows_removed=removed, as_of=oldest,
                          warehouses=tuple(synced), skus_synced=skus, skus_zeroed=zeroed, failed=failed)
    if failed:
        raise PartialFeedError("wms", failed, outcome)
    return outcome


def _sync_warehouse_stock(warehouse_id: str, ports: FeedPorts, writers: ThreadPoolExecutor,
                          now: datetime) -> tuple[int, int, datetime]:
    """(SKUs listed, SKUs zeroed, as_of of the listing's first page) after mirroring the WMS's counts."""
    listed: set[str] = set()
    first_as_of: datetime | None = None
    last_as_of = now
    for page in ports.wms.inventory(warehouse_id):
        first_as_of, last_as_of = first_as_of or page.as_of, page.as_of
        # Each count at its page's time: the stock row tells it from the shipments recorded around it.
        # Drain the map so a failed write raises here, for this warehouse.
        list(writers.map(lambda item: ports.inventory.set_on_hand(warehouse_id, item.sku, item.on_hand, page.as_of),
                         page.items))
        listed.update(item.sku for item in page.items)
    # A SKU the WMS no longer lists is no longer on its shelves: keeping our old count would oversell it.
    gone = sorted(ports.inventory.skus_in_stock(warehouse_id) - listed)
    list(writers.map(lambda sku: ports.inventory.set_on_hand(warehouse_id, sku, 0, last_as_of), gone))
    return len(listed), len(gone), first_as_of or now


def _refresh_delivery(ports: FeedPorts, now: datetime) -> FeedOutcome:
    if ports.carrier is None:
        return FeedOutcome("carrier", "not_configured")
    rows: dict[str, Decimal] = {}
    synced: list[str] = []
    failed: dict[str, str] = {}
    oldest: datetime | None = None
    for warehouse_id in _warehouse_ids(ports):
        try:
            answer = ports.carrier.transit_times(warehouse_id)
        except Exception as error:  # one origin's trouble must not stop the others
            failed[warehouse_id] = _describe(error)
            continue
        rows.update({delivery_key(warehouse_id, route.region): route.hours for route in answer.routes})
        synced.append(warehouse_id)
        oldest = answer.as_of if oldest is None else min(oldest, answer.as_of)
    removed = 0
    if synced or not failed:
        removed = ports.facts.put_source(FACT_DELIVERY, rows, oldest or now,
                                         prune=lambda key: key.split("#", 1)[0] not in failed)
    outcome = FeedOutcome("carrier", "refreshed", rows_written=len(rows), rows_removed=removed, as_of=oldest,
                          warehouses=tuple(synced), failed=failed)
    if failed:
        raise PartialFeedError("carrier", failed, outcome)
    return outcome


def _refresh_labour(ports: FeedPorts, now: datetime) -> FeedOutcome:
    if ports.attendance is None:
        return FeedOutcome("attendance", "not_configured")
    day = business_day(now)
    answer = ports.attendance.attendance(day)
    if answer.day != day:
        raise SourceError(f"attendance answered for {answer.day.isoformat()}, asked for {day.isoformat()}")
    rows = {load.warehouse_id: {"staff_on_shift": load.staff_on_shift,
                                "orders_per_staff_day": load.orders_per_staff_day}
            for load in answer.warehouses}
    removed = ports.facts.put_source(FACT_LABOUR, rows, answer.as_of)
    if ports.staff_days is not None:
        # The roster is also the KPIs' staff-days, filed under the UTC day of this read (the KPIs'
        # days are UTC days; the latest roster of the day wins).
        for load in answer.warehouses:
            ports.staff_days.set_staff(now.astimezone(timezone.utc).date(), load.warehouse_id, load.staff_on_shift)
    return FeedOutcome("attendance", "refreshed", rows_written=len(rows), rows_removed=removed, as_of=answer.as_of,
                       warehouses=tuple(sorted(rows)))


def _refresh_errors(ports: FeedPorts, now: datetime) -> FeedOutcome:
    if ports.quality is None:
        return FeedOutcome("quality", "not_configured")
    answer = ports.quality.quality_reports(QUALITY_WINDOW_DAYS)
    rows = {report.warehouse_id: error_rate(report.errors, report.shipments) for report in answer.reports}
    removed = ports.facts.put_source(FACT_ERROR, rows, answer.as_of)
    return FeedOutcome("quality", "refreshed", rows_written=len(rows), rows_removed=removed, as_of=answer.as_of,
                       warehouses=tuple(sorted(rows)))


@dataclass
class _ShipmentTally:
    recorded: int = 0
    already_recorded: int = 0
    unmatched: dict[str, str] = field(default_factory=dict)
    unmatched_count: int = 0

    def add(self, shipment: WarehouseShipment, result: ShipmentRecorded) -> None:
        if result.state == "recorded":
            self.recorded += 1
        elif result.state == "already_recorded":
            self.already_recorded += 1
        else:
            self.unmatched_count += 1
            if len(self.unmatched) < UNMATCHED_LISTED:
                self.unmatched[f"{shipment.warehouse_id}/{shipment.reservation_id}"] = result.reason or "unmatched"
            logger.warning("the WMS shipped an order we do not hold", extra={
                "warehouse_id": shipment.warehouse_id, "reservation_id": shipment.reservation_id,
                "order_key": shipment.order_key, "reason": result.reason,
                "shipped_at": shipment.shipped_at.isoformat(), "tracking_number": shipment.tracking_number})


def _record_shipments(ports: FeedPorts, now: datetime) -> FeedOutcome:
    if ports.shipments is None:
        return FeedOutcome("shipments", "not_configured")
    if ports.record_shipment is None:
        raise ValueError("the shipments feed needs allocation's record_shipment")
    cursors = ports.facts.read_source(FACT_SHIPMENTS)
    tally = _ShipmentTally()
    synced: list[str] = []
    failed: dict[str, str] = {}
    oldest: datetime | None = None
    with ThreadPoolExecutor(max_workers=SHIPMENT_RECORDERS) as recorders:
        for warehouse_id in _warehouse_ids(ports):
            cursor = cursors.get(warehouse_id)
            since = (cursor_time(cursor[0]) - SHIPMENT_REREAD) if cursor is not None else now - SHIPMENT_FIRST_LOOKBACK
            try:
                as_of = _record_warehouse_shipments(warehouse_id, since, cursor, ports, recorders, tally, now)
            except Exception as error:  # one warehouse's trouble must not stop the others' shipments
                failed[warehouse_id] = _describe(error)
                continue
            synced.append(warehouse_id)
            oldest = as_of if oldest is None else min(oldest, as_of)
    outcome = FeedOutcome("shipments", "refreshed", rows_written=len(synced), as_of=oldest, warehouses=tuple(synced),
                          failed=failed, shipments_recorded=tally.recorded,
                          shipments_already_recorded=tally.already_recorded,
                          shipments_unmatched=tally.unmatched_count, unmatched=tally.unmatched)
    if failed:
        raise PartialFeedError("shipments", failed, outcome)
    return outcome


def _record_warehouse_shipments(warehouse_id: str, since: datetime, cursor: tuple[object, datetime] | None,
                                ports: FeedPorts, recorders: ThreadPoolExecutor, tally: _ShipmentTally,
                                now: datetime) -> datetime:
    """Record every shipment listed since `since`, moving the warehouse's cursor page by page; the
    first page's as_of."""
    position = int(cursor[0]) if cursor is not None else None
    first_as_of: datetime | None = None
    for page in ports.shipments.shipments(warehouse_id, since):
        first_as_of = first_as_of or page.as_of
        # Drain the map so a failed recording raises here, before the cursor moves past it.
        for shipment, result in zip(page.items, recorders.map(ports.record_shipment, page.items), strict=True):
            tally.add(shipment, result)
        if page.items:
            latest = cursor_value(max(shipment.shipped_at for shipment in page.items))
            position = latest if position is None else max(position, latest)
        if position is not None:  # the row's as_of says when the warehouse was last read
            ports.facts.put_row(FACT_SHIPMENTS, warehouse_id, position, page.as_of)
    return first_as_of or now
