"""The recount: reserved quantities recomputed from the reservation lines, and drift repaired.

Every stock row's `reserved` must equal the sum of the reservation lines in its partition (they
change together, in one transaction, so drift means something went around the system: a manual
edit, a restore, a bug). Each warehouse's stock items come from the Inventory table's sparse index
(no scan); each partition is read as of one moment (`InventoryTable.read_partition`); a row that
disagrees is set to its lines' sum, conditional on nothing having changed meanwhile. Every repair is
reported with its before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oms.adapters.inventory_table import InventoryTable
from oms.ports import WarehouseDirectory

READ_ATTEMPTS = 5


@dataclass(frozen=True)
class Repair:
    stock_id: str
    reserved_before: int
    reserved_after: int


@dataclass
class RecountReport:
    stock_items: int = 0
    repairs: list[Repair] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)  # kept changing while read: the next recount sees them

    def as_dict(self) -> dict:
        return {
            "stock_items": self.stock_items,
            "repairs": [vars(repair) for repair in self.repairs],
            "unsettled": self.unsettled,
        }


def recount_reservations(warehouses: WarehouseDirectory, inventory: InventoryTable) -> RecountReport:
    report = RecountReport()
    for warehouse in warehouses.list():
        for item_id in inventory.stock_ids_of(warehouse["warehouse_id"]):
            report.stock_items += 1
            for _ in range(READ_ATTEMPTS):
                partition = inventory.read_partition(item_id)
                if partition is None:
                    continue
                expected = sum(partition.lines.values())
                if partition.level.reserved == expected:
                    break
                if inventory.repair_reserved(item_id, partition.version, expected, partition.level.on_hand):
                    report.repairs.append(Repair(item_id, partition.level.reserved, expected))
                    break
            else:
                report.unsettled.append(item_id)
    return report
