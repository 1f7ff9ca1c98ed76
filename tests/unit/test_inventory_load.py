"""Inventory CSV loading: header detection, row validation with `FILE:LINE: reason`, bundles, all-or-nothing."""

from pathlib import Path

import pytest
from oms.domain.allocation import Destination, Warehouse
from oms.domain.inventory import SkuComponent, SkuMapping
from oms.services.inventory_load import (
    SKU_MAP,
    STOCK,
    WAREHOUSES,
    InventoryLoadPorts,
    LoadCompleted,
    LoadRejected,
    ParsedFile,
    RejectedFile,
    StockCount,
    parse_inventory_csv,
)
from oms.services.inventory_load import load_inventory as load

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
ACCEPTED = ("warehouse_id,name,regions,daily_capacity (warehouses); warehouse_id,sku,on_hand (stock); "
            "channel,channel_sku,sku,quantity (sku_map)")


def parsed(name: str, text: str | bytes) -> ParsedFile:
    outcome = parse_inventory_csv(name, text)
    assert isinstance(outcome, ParsedFile), outcome
    return outcome


def errors(name: str, text: str | bytes) -> list[str]:
    outcome = parse_inventory_csv(name, text)
    assert isinstance(outcome, RejectedFile), outcome
    return [str(error) for error in outcome.errors]


class InMemoryWarehouses:
    def __init__(self, *warehouse_ids: str):
        self.rows = {w: {"warehouse_id": w} for w in warehouse_ids}
        self.written: list[Warehouse] = []

    def list(self) -> list[dict]:
        return list(self.rows.values())

    def put(self, warehouse: Warehouse) -> None:
        self.written.append(warehouse)
        self.rows[warehouse.warehouse_id] = {"warehouse_id": warehouse.warehouse_id}


class InMemoryStock:
    def __init__(self, warehouses: InMemoryWarehouses):
        self.warehouses = warehouses
        self.on_hand: dict[tuple[str, str], int] = {}

    def set_on_hand(self, warehouse_id: str, sku: str, on_hand: int) -> None:
        # Like the loader's contract: stock is only written for a warehouse that exists by then.
        assert warehouse_id in self.warehouses.rows, f"{warehouse_id} written before its warehouse"
        self.on_hand[(warehouse_id, sku)] = on_hand


class InMemorySkuMap:
    def __init__(self):
        self.mappings: list[SkuMapping] = []

    def put(self, mapping: SkuMapping) -> None:
        self.mappings.append(mapping)


def ports(*existing_warehouses: str) -> InventoryLoadPorts:
    warehouses = InMemoryWarehouses(*existing_warehouses)
    return InventoryLoadPorts(warehouses=warehouses, stock=InMemoryStock(warehouses), sku_map=InMemorySkuMap())


def nothing_written(p: InventoryLoadPorts) -> bool:
    return not p.warehouses.written and not p.stock.on_hand and not p.sku_map.mappings


# Header detection -----------------------------------------------------------------------------


def test_each_kind_is_recognised_by_its_header():
    assert parsed("w.csv", "warehouse_id,name,regions,daily_capacity\nW1,One,CN,10\n").kind == WAREHOUSES
    assert parsed("s.csv", "warehouse_id,sku,on_hand\nW1,A,3\n").kind == STOCK
    assert parsed("m.csv", "channel,channel_sku,sku,quantity\n*,A,A,1\n").kind == SKU_MAP


def test_a_bom_case_insensitive_names_surrounding_spaces_and_another_column_order_are_accepted():
    # GIVEN a spreadsheet export: UTF-8 with a BOM, capitalised header names with spaces, columns reordered
    data = "\ufeff SKU , Warehouse_ID ,ON_HAND\r\n A-1 , WH-1 , 7 \r\n".encode()
    # WHEN it is parsed THEN it is a stock file with trimmed values
    result = parsed("s.csv", data)
    assert result.kind == STOCK
    assert result.records == (StockCount("WH-1", "A-1", 7, line=2),)


def test_an_unknown_header_says_which_headers_are_accepted():
    assert errors("x.csv", "warehouse,item,count\nW1,A,3\n") == [
        f"x.csv:1: unknown header 'warehouse,item,count': expected one of {ACCEPTED}"]


def test_a_header_with_an_extra_or_repeated_column_is_unknown():
    assert errors("x.csv", "warehouse_id,sku,on_hand,note\n")[0].startswith("x.csv:1: unknown header")
    assert errors("x.csv", "warehouse_id,sku,sku\n")[0].startswith("x.csv:1: unknown header")


def test_an_empty_file_is_refused():
    assert errors("e.csv", b"\xef\xbb\xbf\n\n") == [f"e.csv:1: empty file: expected a header, one of {ACCEPTED}"]


def test_a_file_that_is_not_utf8_names_the_line_of_the_first_bad_byte():
    gbk = "warehouse_id,name,regions,daily_capacity\nW1,杭州仓,CN,10\n".encode("gbk")
    assert errors("gbk.csv", gbk) == ["gbk.csv:2: not UTF-8 text (byte 0xba)"]


# Row validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("row", "reason"), [
    (",A,1", "warehouse_id is empty"),
    ("W1,,1", "sku is empty"),
    ("W#1,A,1", "warehouse_id 'W#1' contains '#', which separates key parts"),
    ("W1,A#B,1", "sku 'A#B' contains '#', which separates key parts"),
    ("W1,A,-1", "on_hand must be a whole number >= 0, got '-1'"),
    ("W1,A,1.5", "on_hand must be a whole number >= 0, got '1.5'"),
    ("W1,A,", "on_hand must be a whole number >= 0, got ''"),
    ("W1,A", "expected 3 fields (warehouse_id,sku,on_hand), got 2"),
    ("W1,A,1,2", "expected 3 fields (warehouse_id,sku,on_hand), got 4"),
])
def test_a_bad_stock_row_is_reported_with_file_line_and_reason(row, reason):
    assert errors("stock.csv", f"warehouse_id,sku,on_hand\n{row}\n") == [f"stock.csv:2: {reason}"]


def test_zero_on_hand_is_a_valid_count():
    assert parsed("s.csv", "warehouse_id,sku,on_hand\nW1,A,0\n").records == (StockCount("W1", "A", 0, 2),)


def test_the_same_warehouse_and_sku_twice_in_a_stock_file_is_an_error():
    text = "warehouse_id,sku,on_hand\nW1,A,3\nW1,B,3\nW1,A,5\n"
    assert errors("s.csv", text) == ["s.csv:4: stock of sku 'A' in warehouse 'W1' appears twice (first on line 2)"]


REGION_KEY = "expected a 2-letter upper-case country (\"CN\"), optionally with a province (\"CN/浙江省\")"


@pytest.mark.parametrize(("row", "reason"), [
    ("W1,One,cn,10", f"region 'cn' is not a region key: {REGION_KEY}"),
    ("W1,One,CHN,10", f"region 'CHN' is not a region key: {REGION_KEY}"),
    ("W1,One,CN/,10", f"region 'CN/' is not a region key: {REGION_KEY}"),
    ("W1,One,CN/浙江/杭州,10", f"region 'CN/浙江/杭州' is not a region key: {REGION_KEY}"),
    ("W1,One,浙江省,10", f"region '浙江省' is not a region key: {REGION_KEY}"),
    ("W1,One,CN/浙#江,10", "region 'CN/浙#江' contains '#', which separates key parts"),
    ("W1,One, ; ,10", "regions is empty: list region keys separated by ';', e.g. CN/浙江省;CN/江苏省"),
    ("W1,,CN,10", "name is empty"),
    ("W1,One,CN,-5", "daily_capacity must be a whole number >= 0, got '-5'"),
    ("W1,One,CN,many", "daily_capacity must be a whole number >= 0, got 'many'"),
    ("W#1,One,CN,10", "warehouse_id 'W#1' contains '#', which separates key parts"),
])
def test_a_bad_warehouse_row_is_reported_with_file_line_and_reason(row, reason):
    assert errors("wh.csv", f"warehouse_id,name,regions,daily_capacity\n{row}\n") == [f"wh.csv:2: {reason}"]


def test_regions_are_stored_as_written_and_still_cover_the_provinces_they_name():
    text = "warehouse_id,name,regions,daily_capacity\nWH-HZ,杭州仓, CN/浙江省 ; CN/上海市 ;,500\nWH-ALL,全国,CN,0\n"
    hangzhou, national = parsed("wh.csv", text).records
    assert hangzhou == Warehouse("WH-HZ", "杭州仓", frozenset({"CN/浙江省", "CN/上海市"}), 500)
    assert hangzhou.covers(Destination("CN", "浙江")) and not hangzhou.covers(Destination("CN", "广东省"))
    assert national == Warehouse("WH-ALL", "全国", frozenset({"CN"}), 0)


def test_the_same_warehouse_twice_is_an_error():
    text = "warehouse_id,name,regions,daily_capacity\nW1,One,CN,1\nW1,Again,CN,2\n"
    assert errors("wh.csv", text) == ["wh.csv:3: warehouse 'W1' appears twice (first on line 2)"]


CHANNEL_CHOICES = "expected '*' (every channel) or one of taobao, jd, pdd, douyin, kuaishou, amazon, aliexpress, shopify"


@pytest.mark.parametrize(("row", "reason"), [
    ("tmall,X,A,1", f"channel 'tmall' is unknown: {CHANNEL_CHOICES}"),
    (",X,A,1", f"channel '' is unknown: {CHANNEL_CHOICES}"),
    ("*,,A,1", "channel_sku is empty"),
    ("*,X#1,A,1", "channel_sku 'X#1' contains '#', which separates key parts"),
    ("*,X,,1", "sku is empty"),
    ("*,X,A,0", "quantity must be a whole number >= 1, got '0'"),
    ("*,X,A,two", "quantity must be a whole number >= 1, got 'two'"),
])
def test_a_bad_sku_map_row_is_reported_with_file_line_and_reason(row, reason):
    assert errors("map.csv", f"channel,channel_sku,sku,quantity\n{row}\n") == [f"map.csv:2: {reason}"]


def test_every_problem_of_a_row_is_named_in_one_report():
    assert errors("s.csv", "warehouse_id,sku,on_hand\n,A#1,x\n") == [(
        "s.csv:2: warehouse_id is empty; sku 'A#1' contains '#', which separates key parts; "
        "on_hand must be a whole number >= 0, got 'x'")]


def test_every_bad_row_is_reported_and_no_record_is_returned():
    # GIVEN a stock file with good rows, blank lines and three bad rows
    text = "warehouse_id,sku,on_hand\nW1,A,1\nW1,,2\n\nW1,B,3\n,,\nW1,C,-1\nW2,A#,4\n"
    # WHEN it is parsed THEN each bad row is reported at its own line (blank lines counted), and nothing else
    assert errors("s.csv", text) == [
        "s.csv:3: sku is empty",
        "s.csv:7: on_hand must be a whole number >= 0, got '-1'",
        "s.csv:8: sku 'A#' contains '#', which separates key parts",
    ]


def test_a_quoted_field_spanning_lines_keeps_the_following_line_numbers_right():
    text = 'warehouse_id,name,regions,daily_capacity\nW1,"Two\nlines",CN,1\nW2,Two,cn,1\n'
    assert errors("wh.csv", text) == [f"wh.csv:4: region 'cn' is not a region key: {REGION_KEY}"]


# SKU map bundles ------------------------------------------------------------------------------


def test_rows_with_the_same_channel_and_channel_sku_form_one_bundle_in_row_order():
    # GIVEN a bundle whose rows are not adjacent, a one-to-one mapping, and a channel's own code
    text = ("channel,channel_sku,sku,quantity\n"
            "*,SET-1,STROLLER,1\n"
            "*,BOTTLE,BOTTLE,1\n"
            "*,SET-1,COVER,2\n"
            "Taobao,SET-1,STROLLER,1\n")
    # WHEN parsed THEN the bundle is one mapping with both components, and the channel is lower-cased
    result = parsed("map.csv", text)
    assert result.rows == 4
    assert result.records == (
        SkuMapping("*", "SET-1", (SkuComponent("STROLLER", 1), SkuComponent("COVER", 2))),
        SkuMapping("*", "BOTTLE", (SkuComponent("BOTTLE", 1),)),
        SkuMapping("taobao", "SET-1", (SkuComponent("STROLLER", 1),)),
    )


def test_the_same_component_twice_in_a_bundle_is_an_error():
    text = "channel,channel_sku,sku,quantity\n*,SET-1,A,1\n*,SET-1,B,1\n*,SET-1,A,2\n"
    assert errors("map.csv", text) == ["map.csv:4: sku 'A' in the mapping of */SET-1 appears twice (first on line 2)"]


def test_the_sample_files_parse_and_fit_together():
    warehouses, stock, sku_map = (parsed(name, (SAMPLES / name).read_bytes())
                                  for name in ("warehouses.csv", "stock.csv", "sku_map.csv"))
    assert (warehouses.kind, stock.kind, sku_map.kind) == (WAREHOUSES, STOCK, SKU_MAP)
    assert len(warehouses.records) == 4
    provinces = {region for w in warehouses.records for region in w.regions if "/" in region}
    assert len(provinces) >= 4
    assert {s.warehouse_id for s in stock.records} == {w.warehouse_id for w in warehouses.records}
    stocked = {s.sku for s in stock.records}
    assert {c.sku for m in sku_map.records for c in m.components} <= stocked
    assert any(len(m.components) > 1 for m in sku_map.records)


# All or nothing -------------------------------------------------------------------------------


def test_one_bad_row_in_any_file_means_nothing_is_written_at_all():
    # GIVEN a valid warehouses file and a SKU map with one bad row among good ones
    p = ports()
    files = [("wh.csv", "warehouse_id,name,regions,daily_capacity\nW1,One,CN,10\n"),
             ("map.csv", "channel,channel_sku,sku,quantity\n*,A,A,1\n*,B,B,0\n*,C,C,1\n")]
    # WHEN they are loaded THEN the bad row is reported and not even the valid file was written
    outcome = load(files, p)
    assert isinstance(outcome, LoadRejected)
    assert [str(e) for e in outcome.errors] == ["map.csv:3: quantity must be a whole number >= 1, got '0'"]
    assert nothing_written(p)


def test_stock_for_a_warehouse_not_in_the_table_is_refused_and_nothing_is_written():
    p = ports("W1")
    files = [("s.csv", "warehouse_id,sku,on_hand\nW1,A,1\nW9,A,2\nW1,B,3\nW8,B,1\n")]
    outcome = load(files, p)
    assert isinstance(outcome, LoadRejected)
    assert [str(e) for e in outcome.errors] == [
        "s.csv:3: warehouse 'W9' is not in the Warehouses table (load warehouses first)",
        "s.csv:5: warehouse 'W8' is not in the Warehouses table (load warehouses first)",
    ]
    assert nothing_written(p)


def test_warehouses_loaded_by_the_same_run_are_written_before_the_stock_that_names_them():
    # GIVEN an empty Warehouses table, and the stock file given before the warehouses file
    p = ports()
    files = [("s.csv", "warehouse_id,sku,on_hand\nW1,A,4\nW1,B,0\n"),
             ("wh.csv", "warehouse_id,name,regions,daily_capacity\nW1,One,CN/浙江省,10\n"),
             ("map.csv", "channel,channel_sku,sku,quantity\n*,SET,A,1\n*,SET,B,2\n")]
    # WHEN loaded THEN everything is written (warehouses first) and each file is summarised
    outcome = load(files, p)
    assert isinstance(outcome, LoadCompleted)
    assert [loaded.as_dict() for loaded in outcome.files] == [
        {"file": "wh.csv", "kind": "warehouses", "rows": 1, "written": 1},
        {"file": "map.csv", "kind": "sku_map", "rows": 2, "written": 1},
        {"file": "s.csv", "kind": "stock", "rows": 2, "written": 2},
    ]
    assert p.warehouses.written == [Warehouse("W1", "One", frozenset({"CN/浙江省"}), 10)]
    assert p.stock.on_hand == {("W1", "A"): 4, ("W1", "B"): 0}
    assert p.sku_map.mappings == [SkuMapping("*", "SET", (SkuComponent("A", 1), SkuComponent("B", 2)))]
