"""`oms inventory load` against the local cloud: the sample files land in their tables, a stock reload keeps
reservations, and a file with one bad row writes nothing."""

import json
from pathlib import Path

from oms.adapters import aws
from oms.adapters.inventory_table import InventoryTable, stock_id
from oms.adapters.sku_map_table import SkuMapTable
from oms.adapters.warehouses_table import WarehousesTable
from oms.domain.inventory import SkuComponent, SkuMapping
from oms.settings import get_settings
from omsdev.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


def oms_inventory_load(cloud, *files: Path) -> int:
    return main(["inventory", "load", *map(str, files), "--endpoint", cloud.endpoint, "--stack-name", cloud.stack_name])


def summaries(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def reserve_directly(warehouse_id: str, sku: str, reserved: int, on_hand: int) -> None:
    """A reservation's effect on the stock row, written behind the loader's back."""
    aws.client("dynamodb").update_item(
        TableName=get_settings().inventory_table,
        Key={"stock_id": {"S": stock_id(warehouse_id, sku)}, "entry": {"S": "stock"}},
        UpdateExpression="SET reserved = :reserved, available = :available ADD version :one",
        ExpressionAttributeValues={":reserved": {"N": str(reserved)}, ":available": {"N": str(on_hand - reserved)},
                                   ":one": {"N": "1"}},
    )


def test_the_sample_files_load_into_their_tables(cloud, capsys):
    # GIVEN the three sample files, stock first (warehouses of the same run are written before it)
    files = [SAMPLES / "stock.csv", SAMPLES / "warehouses.csv", SAMPLES / "sku_map.csv"]

    # WHEN they are loaded through the CLI
    code = oms_inventory_load(cloud, *files)

    # THEN each file is summarised and its rows are in the tables
    assert code == 0
    assert summaries(capsys) == [
        {"file": str(SAMPLES / "warehouses.csv"), "kind": "warehouses", "rows": 4, "written": 4},
        {"file": str(SAMPLES / "sku_map.csv"), "kind": "sku_map", "rows": 10, "written": 8},
        {"file": str(SAMPLES / "stock.csv"), "kind": "stock", "rows": 13, "written": 13},
    ]
    settings = get_settings()
    warehouses = {row["warehouse_id"]: row for row in WarehousesTable(settings.warehouses_table).list()}
    assert sorted(warehouses) == ["WH-BEIJING", "WH-CHENGDU", "WH-GUANGZHOU", "WH-HANGZHOU"]
    assert warehouses["WH-HANGZHOU"]["regions"] == {"CN/浙江省", "CN/江苏省", "CN/上海市", "CN/安徽省"}
    assert warehouses["WH-HANGZHOU"]["name"] == "杭州仓 Hangzhou" and warehouses["WH-HANGZHOU"]["daily_capacity"] == 5000
    assert warehouses["WH-CHENGDU"]["regions"] == {"CN"}
    levels = InventoryTable(settings.inventory_table).levels([("WH-HANGZHOU", "STROLLER-01"), ("WH-BEIJING", "DIAPER-M")])
    assert (levels[("WH-HANGZHOU", "STROLLER-01")].on_hand, levels[("WH-HANGZHOU", "STROLLER-01")].reserved) == (120, 0)
    assert levels[("WH-BEIJING", "DIAPER-M")].on_hand == 900
    sku_map = SkuMapTable(settings.sku_map_table)
    assert sku_map.mapping_of("kuaishou", "SET-STROLLER-RAIN") == SkuMapping(
        "*", "SET-STROLLER-RAIN", (SkuComponent("STROLLER-01", 1), SkuComponent("RAINCOVER-01", 1)))
    assert sku_map.mapping_of("taobao", "TB-BOTTLE-2PK").components == (SkuComponent("BOTTLE-250", 2),)
    assert sku_map.mapping_of("jd", "TB-BOTTLE-2PK") is None


def test_reloading_stock_changes_on_hand_and_keeps_reservations(cloud, capsys, tmp_path):
    # GIVEN loaded samples, and 7 strollers of Hangzhou reserved by orders
    assert oms_inventory_load(cloud, SAMPLES / "warehouses.csv", SAMPLES / "stock.csv") == 0
    reserve_directly("WH-HANGZHOU", "STROLLER-01", reserved=7, on_hand=120)
    recount = tmp_path / "recount.csv"
    recount.write_text("warehouse_id,sku,on_hand\nWH-HANGZHOU,STROLLER-01,95\nWH-BEIJING,DIAPER-M,0\n")
    capsys.readouterr()

    # WHEN a new count is loaded
    code = oms_inventory_load(cloud, recount)

    # THEN on hand is the new count, the reservation is kept, and available follows
    assert code == 0
    assert summaries(capsys) == [{"file": str(recount), "kind": "stock", "rows": 2, "written": 2}]
    levels = InventoryTable(get_settings().inventory_table).levels(
        [("WH-HANGZHOU", "STROLLER-01"), ("WH-BEIJING", "DIAPER-M"), ("WH-GUANGZHOU", "STROLLER-01")])
    stroller = levels[("WH-HANGZHOU", "STROLLER-01")]
    assert (stroller.on_hand, stroller.reserved, stroller.available) == (95, 7, 88)
    assert levels[("WH-BEIJING", "DIAPER-M")].on_hand == 0
    assert levels[("WH-GUANGZHOU", "STROLLER-01")].on_hand == 80  # not in the file: untouched


def test_a_file_with_a_bad_row_writes_nothing(cloud, capsys, tmp_path):
    # GIVEN loaded warehouses, and a stock file whose good rows surround a bad one and an unknown warehouse
    assert oms_inventory_load(cloud, SAMPLES / "warehouses.csv") == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("warehouse_id,sku,on_hand\nWH-HANGZHOU,NEW-SKU,5\nWH-BEIJING,NEW-SKU,-2\nWH-HANGZHOU,OTHER,1\n")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("warehouse_id,sku,on_hand\nWH-HANGZHOU,NEW-SKU,5\nWH-XIAN,NEW-SKU,3\n")
    capsys.readouterr()

    # WHEN each is loaded
    bad_code = oms_inventory_load(cloud, bad)
    bad_report = capsys.readouterr()
    unknown_code = oms_inventory_load(cloud, unknown)
    unknown_report = capsys.readouterr()

    # THEN both are refused with their reasons, and no stock row was written
    assert (bad_code, bad_report.out) == (2, "")
    assert bad_report.err.splitlines() == [f"{bad}:3: on_hand must be a whole number >= 0, got '-2'"]
    assert (unknown_code, unknown_report.out) == (2, "")
    assert unknown_report.err.splitlines() == [
        f"{unknown}:3: warehouse 'WH-XIAN' is not in the Warehouses table (load warehouses first)"]
    levels = InventoryTable(get_settings().inventory_table).levels(
        [("WH-HANGZHOU", "NEW-SKU"), ("WH-BEIJING", "NEW-SKU"), ("WH-HANGZHOU", "OTHER")])
    assert levels == {}
