"""Loading warehouses, stock counts and SKU mappings from CSV files (`oms inventory load FILE.csv ...`).

One kind of data per file, recognised by its header (UTF-8, a BOM tolerated, names case-insensitive and
trimmed, columns in any order):

- warehouses: `warehouse_id,name,regions,daily_capacity`; regions separated by ";", each a region key as
  `Warehouse.covers` reads it: "CN" (a 2-letter upper-case country) or "CN/浙江省" (country/province);
- stock: `warehouse_id,sku,on_hand`; sets the shelf count, reservations held against it are kept;
- SKU map: `channel,channel_sku,sku,quantity`; channel "*" means every channel; several rows with the same
  (channel, channel_sku) are one bundle, its components in row order.

`parse_inventory_csv` is pure: it checks the WHOLE file and returns either a `ParsedFile` of typed records
or a `RejectedFile` naming every bad row as `FILE:LINE: reason`, so one pass over a spreadsheet fixes all
of it. `load_inventory` is the use-case: it refuses to write anything unless every file given is valid,
including the stock files' warehouses (known in the Warehouses table or loaded by the same run), then
writes warehouses first, so a run with a warehouses file and a stock file works in one go.

Every write is a put or a set of an absolute value, so re-running a load after a transient failure (or
with the same files) converges on the same tables.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from oms.domain.allocation import Warehouse
from oms.domain.inventory import WILDCARD_CHANNEL, SkuComponent, SkuMapping
from oms.domain.order import CHANNELS
from oms.ports import SkuMappings, StockCounts, WarehouseRegistry

WAREHOUSES = "warehouses"
STOCK = "stock"
SKU_MAP = "sku_map"

HEADERS: dict[str, tuple[str, ...]] = {
    WAREHOUSES: ("warehouse_id", "name", "regions", "daily_capacity"),
    STOCK: ("warehouse_id", "sku", "on_hand"),
    SKU_MAP: ("channel", "channel_sku", "sku", "quantity"),
}
# Warehouses are written first: a stock file of the same run may name them.
_WRITE_ORDER = (WAREHOUSES, SKU_MAP, STOCK)

KEY_SEPARATOR = "#"  # joins key parts in the tables (stock_id "WH#SKU", facts "WH#CN/浙江")
REGION_SEPARATOR = ";"
_REGION = re.compile(r"^(?P<country>[A-Z]{2})(?:/(?P<province>.*))?$")
_WHOLE_NUMBER = re.compile(r"^[0-9]+$")
# What DynamoDB stores: numbers of up to 38 significant digits, key attributes of up to 1024 bytes
# (a sort key; the partition key allows 2048) - checked here, so no file is written before a bad row.
MAX_NUMBER_DIGITS = 38
MAX_IDENTIFIER_BYTES = 256


# Records --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockCount:
    """One stock row: what the shelf holds of a warehouse SKU (the line is kept to report it)."""

    warehouse_id: str
    sku: str
    on_hand: int
    line: int


Record = Warehouse | StockCount | SkuMapping


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class ParsedFile:
    """A valid file: its kind, how many data rows it had and the records they make (bundles grouped)."""

    file: str
    kind: str
    rows: int
    records: tuple[Record, ...]


@dataclass(frozen=True)
class RejectedFile:
    file: str
    errors: tuple[RowError, ...]


@dataclass(frozen=True)
class FileLoaded:
    """The one-line summary of a written file."""

    file: str
    kind: str
    rows: int
    written: int

    def as_dict(self) -> dict:
        return {"file": self.file, "kind": self.kind, "rows": self.rows, "written": self.written}


@dataclass(frozen=True)
class LoadRejected:
    """Nothing was written: every problem found, across all files."""

    errors: tuple[RowError, ...]


@dataclass(frozen=True)
class LoadCompleted:
    files: tuple[FileLoaded, ...]


# Ports ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InventoryLoadPorts:
    warehouses: WarehouseRegistry
    stock: StockCounts
    sku_map: SkuMappings


# Parsing --------------------------------------------------------------------------------------


class _BadRow(ValueError):
    """One row's problem; becomes a `RowError` with the file and line."""


class _UnreadableCsvError(ValueError):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line


def _accepted_headers() -> str:
    return "; ".join(f"{','.join(columns)} ({kind})" for kind, columns in HEADERS.items())


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    return data.decode("utf-8-sig")


def _rows(text: str) -> Iterable[tuple[int, list[str]]]:
    """(line where the row starts, cells trimmed) for every row that is not blank."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as error:
            raise _UnreadableCsvError(start, f"not readable as CSV ({error})") from error
        if cells is None:
            return
        trimmed = [cell.strip() for cell in cells]
        if any(trimmed):  # blank lines and spreadsheet leftovers such as ",,," carry nothing
            yield start, trimmed
        start = reader.line_num + 1


def _identifier(column: str, value: str) -> str:
    if not value:
        raise _BadRow(f"{column} is empty")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_IDENTIFIER_BYTES:
        raise _BadRow(f"{column} is longer than {MAX_IDENTIFIER_BYTES} bytes")
    if KEY_SEPARATOR in value:
        raise _BadRow(f"{column} {value!r} contains {KEY_SEPARATOR!r}, which separates key parts")
    return value


def _whole_number(column: str, value: str, minimum: int) -> int:
    if len(value) > MAX_NUMBER_DIGITS:
        raise _BadRow(f"{column} has more than {MAX_NUMBER_DIGITS} digits, got {value[:20]}...")
    if not _WHOLE_NUMBER.match(value) or int(value) < minimum:
        raise _BadRow(f"{column} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _region(value: str) -> str:
    match = _REGION.match(value)
    province = match["province"] if match else None
    if match is None or (province is not None and (not province.strip() or "/" in province)):
        raise _BadRow(f"region {value!r} is not a region key: expected a 2-letter upper-case country "
                      f"(\"CN\"), optionally with a province (\"CN/浙江省\")")
    if KEY_SEPARATOR in value:
        raise _BadRow(f"region {value!r} contains {KEY_SEPARATOR!r}, which separates key parts")
    return value


def _regions(value: str) -> frozenset[str]:
    pieces = [piece.strip() for piece in value.split(REGION_SEPARATOR)]
    regions = [_region(piece) for piece in pieces if piece]  # a trailing ";" is harmless
    if not regions:
        raise _BadRow(f"regions is empty: list region keys separated by {REGION_SEPARATOR!r}, e.g. CN/浙江省;CN/江苏省")
    return frozenset(regions)


def _channel(value: str) -> str:
    channel = value.lower()
    if channel != WILDCARD_CHANNEL and channel not in CHANNELS:
        raise _BadRow(f"channel {value!r} is unknown: expected {WILDCARD_CHANNEL!r} (every channel) "
                      f"or one of {', '.join(CHANNELS)}")
    return channel


def _name(value: str) -> str:
    if not value:
        raise _BadRow("name is empty")
    return value


class _RowCheck:
    """Runs a row's field checks and keeps every problem, so one report names all of a row's faults."""

    def __init__(self):
        self.problems: list[str] = []

    def __call__(self, check, *args):
        try:
            return check(*args)
        except _BadRow as problem:
            self.problems.append(str(problem))
            return None

    def done(self) -> None:
        if self.problems:
            raise _BadRow("; ".join(self.problems))


class _Collector:
    """Turns the rows of one kind into records; remembers what it saw to catch duplicates."""

    def __init__(self, kind: str):
        self.kind = kind
        self.first_seen: dict[tuple, int] = {}
        self.records: list[Record] = []
        self.bundles: dict[tuple[str, str], list[SkuComponent]] = {}

    def _once(self, key: tuple, line: int, what: str) -> None:
        if key in self.first_seen:
            raise _BadRow(f"{what} appears twice (first on line {self.first_seen[key]})")
        self.first_seen[key] = line

    def add(self, line: int, row: dict[str, str]) -> None:
        if self.kind == WAREHOUSES:
            self._add_warehouse(line, row)
        elif self.kind == STOCK:
            self._add_stock(line, row)
        else:
            self._add_mapping(line, row)

    def _add_warehouse(self, line: int, row: dict[str, str]) -> None:
        check = _RowCheck()
        warehouse_id = check(_identifier, "warehouse_id", row["warehouse_id"])
        name = check(_name, row["name"])
        regions = check(_regions, row["regions"])
        capacity = check(_whole_number, "daily_capacity", row["daily_capacity"], 0)  # 0: closed for new orders
        check.done()
        self._once((warehouse_id,), line, f"warehouse {warehouse_id!r}")
        self.records.append(Warehouse(warehouse_id, name, regions, capacity))

    def _add_stock(self, line: int, row: dict[str, str]) -> None:
        check = _RowCheck()
        warehouse_id = check(_identifier, "warehouse_id", row["warehouse_id"])
        sku = check(_identifier, "sku", row["sku"])
        on_hand = check(_whole_number, "on_hand", row["on_hand"], 0)
        check.done()
        self._once((warehouse_id, sku), line, f"stock of sku {sku!r} in warehouse {warehouse_id!r}")
        self.records.append(StockCount(warehouse_id, sku, on_hand, line))

    def _add_mapping(self, line: int, row: dict[str, str]) -> None:
        check = _RowCheck()
        channel = check(_channel, row["channel"])
        channel_sku = check(_identifier, "channel_sku", row["channel_sku"])
        sku = check(_identifier, "sku", row["sku"])
        quantity = check(_whole_number, "quantity", row["quantity"], 1)
        check.done()
        self._once((channel, channel_sku, sku), line, f"sku {sku!r} in the mapping of {channel}/{channel_sku}")
        self.bundles.setdefault((channel, channel_sku), []).append(SkuComponent(sku, quantity))

    def result(self) -> tuple[Record, ...]:
        if self.kind == SKU_MAP:
            return tuple(SkuMapping(channel, channel_sku, tuple(components))
                         for (channel, channel_sku), components in self.bundles.items())
        return tuple(self.records)


def _kind_of(header: list[str]) -> str | None:
    names = [name.lower() for name in header]
    for kind, columns in HEADERS.items():
        if len(names) == len(columns) and set(names) == set(columns):
            return kind
    return None


def parse_inventory_csv(file: str, data: bytes | str) -> ParsedFile | RejectedFile:
    """The records of one CSV file, or every reason it cannot be loaded (see the module docstring)."""
    try:
        text = _decode(data)
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        return RejectedFile(file, (RowError(file, line, f"not UTF-8 text (byte 0x{data[error.start]:02x})"),))
    errors: list[RowError] = []
    try:
        rows = iter(_rows(text))
        header_line, header = next(rows, (1, None))
        if header is None:
            return RejectedFile(file, (RowError(file, 1, f"empty file: expected a header, one of {_accepted_headers()}"),))
        kind = _kind_of(header)
        if kind is None:
            return RejectedFile(file, (RowError(
                file, header_line, f"unknown header {','.join(header)!r}: expected one of {_accepted_headers()}"),))
        collector = _Collector(kind)
        count = 0
        for line, cells in rows:
            count += 1
            try:
                if len(cells) != len(header):
                    raise _BadRow(f"expected {len(header)} fields ({','.join(header)}), got {len(cells)}")
                collector.add(line, {name.lower(): value for name, value in zip(header, cells, strict=True)})
            except _BadRow as problem:
                errors.append(RowError(file, line, str(problem)))
    except _UnreadableCsvError as error:
        # The reader cannot go on past this point, so the rows after it are unknown: report what was found.
        return RejectedFile(file, (*errors, RowError(file, error.line, str(error))))
    if errors:
        return RejectedFile(file, tuple(errors))
    return ParsedFile(file, kind, count, collector.result())


def unknown_warehouses(parsed: ParsedFile, known: set[str]) -> tuple[RowError, ...]:
    """The stock rows of a file whose warehouse is neither in the table nor loaded by the same run."""
    if parsed.kind != STOCK:
        return ()
    return tuple(
        RowError(parsed.file, record.line,
                 f"warehouse {record.warehouse_id!r} is not in the Warehouses table (load warehouses first)")
        for record in parsed.records
        if record.warehouse_id not in known
    )


# Writing --------------------------------------------------------------------------------------


def apply(parsed: ParsedFile, ports: InventoryLoadPorts) -> FileLoaded:
    """Write one valid file's records through the adapters."""
    for record in parsed.records:
        if parsed.kind == WAREHOUSES:
            ports.warehouses.put(record)
        elif parsed.kind == STOCK:
            ports.stock.set_on_hand(record.warehouse_id, record.sku, record.on_hand)
        else:
            ports.sku_map.put(record)
    return FileLoaded(parsed.file, parsed.kind, parsed.rows, len(parsed.records))


def load_inventory(files: Sequence[tuple[str, bytes | str]], ports: InventoryLoadPorts) -> LoadRejected | LoadCompleted:
    """Check every file (name, content), then write them all, warehouses first; or write nothing at all."""
    outcomes = [parse_inventory_csv(name, data) for name, data in files]
    errors = [error for outcome in outcomes if isinstance(outcome, RejectedFile) for error in outcome.errors]
    if errors:
        return LoadRejected(tuple(errors))
    if any(parsed.kind == STOCK for parsed in outcomes):
        known = {str(row["warehouse_id"]) for row in ports.warehouses.list()}
        known |= {w.warehouse_id for parsed in outcomes if parsed.kind == WAREHOUSES for w in parsed.records}
        errors = [error for parsed in outcomes for error in unknown_warehouses(parsed, known)]
        if errors:
            return LoadRejected(tuple(errors))
    ordered = sorted(outcomes, key=lambda parsed: _WRITE_ORDER.index(parsed.kind))
    return LoadCompleted(tuple(apply(parsed, ports) for parsed in ordered))
