"""What allocation knows about every warehouse for one order, gathered from the snapshots.

Stock is read fresh for each order (the reservation's condition guards it anyway, but a fresh read
keeps refused reservations rare). The slower-moving sources (warehouses, transit times, staff load,
error rates, when stock was last synced from the WMS) are the feeds' DynamoDB snapshots, kept by a
warm container for a minute; today's allocation counts for ten seconds, plus what this container
allocated since (written back once per batch by `flush`).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

from oms.domain.allocation import SOURCES, Destination, Warehouse, WarehouseFacts
from oms.domain.inventory import Demand
from oms.ports import Clock, FactsSnapshots, StockReader, WarehouseDirectory

SNAPSHOT_SECONDS = 60.0
COUNTS_SECONDS = 10.0
SNAPSHOT_SOURCES = ("stock", "delivery", "labour", "error")


class AllocationFacts:
    def __init__(self, warehouses: WarehouseDirectory, stock: StockReader, snapshots: FactsSnapshots, clock: Clock):
        self._warehouses = warehouses
        self._stock = stock
        self._snapshots = snapshots
        self._clock = clock
        self._cached: dict[str, tuple[object, float]] = {}
        self._unflushed: Counter = Counter()

    def for_order(self, demand: Demand, destination: Destination) -> list[WarehouseFacts]:
        warehouses = self._cache("warehouses", SNAPSHOT_SECONDS, self._load_warehouses)
        levels = self._stock.levels((w.warehouse_id, sku) for w in warehouses for sku in demand)
        snapshots = {source: self._cache(source, SNAPSHOT_SECONDS, lambda s=source: self._snapshots.read_source(s))
                     for source in SNAPSHOT_SOURCES}
        today = self._clock.now().astimezone(UTC).date()
        allocated = self._cache(f"allocated:{today}", COUNTS_SECONDS, lambda: self._snapshots.allocated_on(today))
        facts = []
        for warehouse in warehouses:
            wid = warehouse.warehouse_id
            allocated_today = allocated.get(wid, 0) + self._unflushed[(today, wid)]
            transit, transit_at = _first(snapshots["delivery"], [f"{wid}#{region}" for region in destination.region_keys()])
            labour, labour_at = snapshots["labour"].get(wid, (None, None))
            error, error_at = snapshots["error"].get(wid, (None, None))
            stock_at = snapshots["stock"].get(wid, (None, None))[1]
            as_of = dict(zip(SOURCES, (stock_at, transit_at, labour_at, error_at), strict=True))
            facts.append(WarehouseFacts(
                warehouse=warehouse,
                available={sku: (levels[(wid, sku)].available if (wid, sku) in levels else 0) for sku in demand},
                transit_hours=None if transit is None else float(transit),
                labour_load=_labour_load(labour, allocated_today),
                error_rate=None if error is None else float(error),
                allocated_today=allocated_today,
                as_of=as_of,
            ))
        return facts

    def count_allocated(self, warehouse_ids: list[str]) -> None:
        today = self._clock.now().astimezone(UTC).date()
        for warehouse_id in warehouse_ids:
            self._unflushed[(today, warehouse_id)] += 1

    def flush(self) -> None:
        """Write this container's allocation counts since the last flush (one ADD per warehouse and day)."""
        pending, self._unflushed = self._unflushed, Counter()
        for (day, warehouse_id), count in pending.items():
            self._snapshots.add_allocated(warehouse_id, day, count)
        for day in {day for day, _ in pending}:
            self._cached.pop(f"allocated:{day}", None)  # read again, with the others' counts too

    def _load_warehouses(self) -> list[Warehouse]:
        return [
            Warehouse(warehouse_id=row["warehouse_id"], name=row.get("name", row["warehouse_id"]),
                      regions=frozenset(row.get("regions", ())), daily_capacity=int(row.get("daily_capacity", 0)))
            for row in sorted(self._warehouses.list(), key=lambda row: row["warehouse_id"])
        ]

    def _cache(self, name: str, seconds: float, load):
        cached = self._cached.get(name)
        now = time.monotonic()
        if cached is None or now - cached[1] >= seconds:
            cached = (load(), now)
            self._cached[name] = cached
        return cached[0]


def _first(rows: dict, keys: list[str]) -> tuple[object, datetime | None]:
    """The most specific region's row (province before country)."""
    for key in keys:
        if key in rows:
            return rows[key]
    return None, None


def _labour_load(labour: object, allocated_today: int) -> float | None:
    """Share of today's staff capacity already used: orders allocated / (staff on shift x orders per staff-day)."""
    if not isinstance(labour, dict):
        return None
    capacity = int(labour.get("staff_on_shift", 0)) * int(labour.get("orders_per_staff_day", 0))
    return 1.0 if capacity <= 0 else allocated_today / capacity
