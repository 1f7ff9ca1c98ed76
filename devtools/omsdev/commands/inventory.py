"""`oms inventory load FILE.csv [FILE.csv ...]`: warehouses, stock counts and SKU mappings from CSV files.

Each file's kind comes from its header (see `oms.services.inventory_load`). Every file is checked before
anything is written: one bad row anywhere and nothing is written, every bad row is printed as
`FILE:LINE: reason` and the exit code is 2. On success each file's summary is printed as one JSON line.
"""

from __future__ import annotations

import json
import sys

from omsdev.commands._stack import add_stack_arguments, use_stack


def register(subparsers) -> None:
    parser = subparsers.add_parser("inventory", help="load warehouses, stock and SKU mappings")
    commands = parser.add_subparsers(dest="inventory_command", required=True)
    load = commands.add_parser(
        "load", help="load CSV files, one kind per file, recognised by the header",
        description="Headers: warehouse_id,name,regions,daily_capacity | warehouse_id,sku,on_hand | "
                    "channel,channel_sku,sku,quantity. Nothing is written unless every file is valid.")
    load.add_argument("files", nargs="+", metavar="FILE.csv")
    add_stack_arguments(load)
    load.set_defaults(run=run_load)


def _report(errors) -> int:
    for error in errors:
        print(str(error), file=sys.stderr)
    return 2


def run_load(args) -> int:
    from oms.services.inventory_load import RejectedFile, load_inventory, parse_inventory_csv

    files, unreadable = [], []
    for path in args.files:
        try:
            with open(path, "rb") as handle:
                files.append((path, handle.read()))
        except OSError as error:
            unreadable.append(f"{path}: cannot read the file ({error.strerror})")
    if unreadable:
        return _report(unreadable)
    # The rows are checked before reaching for the stack, so a bad file is reported without a local cloud.
    parsed = [parse_inventory_csv(name, data) for name, data in files]
    rejected = [error for outcome in parsed if isinstance(outcome, RejectedFile) for error in outcome.errors]
    if rejected:
        return _report(rejected)
    if not use_stack(args):
        return 2

    from oms.services.inventory_load import LoadRejected

    outcome = load_inventory(files, inventory_load_ports())
    if isinstance(outcome, LoadRejected):
        return _report(outcome.errors)
    for loaded in outcome.files:
        print(json.dumps(loaded.as_dict(), ensure_ascii=False))
    return 0


def inventory_load_ports():
    """The tables a load writes to, in the stack the environment points at."""
    from oms.adapters.inventory_table import InventoryTable
    from oms.adapters.sku_map_table import SkuMapTable
    from oms.adapters.warehouses_table import WarehousesTable
    from oms.services.inventory_load import InventoryLoadPorts
    from oms.settings import get_settings

    settings = get_settings()
    return InventoryLoadPorts(warehouses=WarehousesTable(settings.warehouses_table),
                              stock=InventoryTable(settings.inventory_table),
                              sku_map=SkuMapTable(settings.sku_map_table))
