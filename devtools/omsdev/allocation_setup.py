"""Allocation's master data in the local cloud: warehouses, stock, SKU mappings, feed snapshots.

What an operator loads with `oms inventory load` and the feeds refresh, written directly through
the adapters for benchmarks, demos and tests that need a known catalogue in one call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from oms.adapters import aws
from oms.adapters.facts_table import FactsTable
from oms.adapters.inventory_table import InventoryTable
from oms.adapters.sku_map_table import SkuMapTable
from oms.adapters.warehouses_table import WarehousesTable
from oms.domain.allocation import Warehouse
from oms.domain.inventory import SkuComponent, SkuMapping
from oms.settings import get_settings


@dataclass(frozen=True)
class WarehouseSetup:
    warehouse_id: str
    regions: tuple[str, ...]
    stock: dict[str, int]  # warehouse SKU -> on hand
    transit_hours: dict[str, float] = field(default_factory=dict)  # region key -> hours
    staff_on_shift: int = 40
    orders_per_staff_day: int = 500
    error_rate: float = 0.01
    daily_capacity: int = 100_000


def load_catalogue(warehouses: list[WarehouseSetup], mappings: dict[str, list[tuple[str, int]]], *,
                   as_of: datetime | None = None) -> None:
    """Warehouses with their stock and fresh snapshots of every source; `mappings`: seller code ->
    [(warehouse SKU, units)] for every channel ("*")."""
    settings = get_settings()
    as_of = as_of or datetime.now(UTC)
    inventory = InventoryTable(settings.inventory_table)
    facts = FactsTable(settings.allocation_facts_table)
    directory = WarehousesTable(settings.warehouses_table)
    for setup in warehouses:
        directory.put(Warehouse(setup.warehouse_id, f"Warehouse {setup.warehouse_id}", frozenset(setup.regions),
                                setup.daily_capacity))
        for sku, on_hand in setup.stock.items():
            inventory.set_on_hand(setup.warehouse_id, sku, on_hand)
    facts.put_source("delivery", {f"{w.warehouse_id}#{region}": hours for w in warehouses
                                  for region, hours in w.transit_hours.items()}, as_of)
    facts.put_source("labour", {w.warehouse_id: {"staff_on_shift": w.staff_on_shift,
                                                 "orders_per_staff_day": w.orders_per_staff_day} for w in warehouses}, as_of)
    facts.put_source("error", {w.warehouse_id: w.error_rate for w in warehouses}, as_of)
    facts.put_source("stock", {w.warehouse_id: len(w.stock) for w in warehouses}, as_of)
    catalog = SkuMapTable(settings.sku_map_table)
    for code, components in mappings.items():
        catalog.put(SkuMapping("*", code, tuple(SkuComponent(sku, units) for sku, units in components)))


def set_allocation_rules(**rules) -> None:
    """Change the allocation rules parameter, as an operator would (no deploy)."""
    aws.client("ssm").put_parameter(Name=get_settings().allocation_rules_parameter, Value=json.dumps(rules),
                                    Type="String", Overwrite=True)
