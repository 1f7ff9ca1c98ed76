"""The Inventory table: stock per (warehouse, SKU) and the reservation lines held against it.

One partition per stock item (`stock_id` = "{warehouse_id}#{sku}"): the stock row (`entry` =
"stock": on_hand, reserved, available = on_hand - reserved, version) and one row per order holding
units of it (`entry` = "res#{order_key}": quantity). A reservation changes the stock row and its
line in the same transaction (`oms.adapters.reservation_store`), so the lines always add up to
`reserved`; the recount reads a partition to prove it, and repairs the stock row if not.

`available` is kept as its own attribute because a condition expression cannot do arithmetic:
`available >= :qty` is what makes a reservation atomic against every other one.

The WMS's count and our record of its shipments meet on the stock row: `counted_at` is the time of the
count on hand was last set from (epoch ms), `last_deducted_at` the latest shipment we took off on
hand ourselves. A shipment up to `counted_at` is already out of the count, so recording it only
gives back its reservation; a later one is taken off on hand. A count older than a shipment we took
off is not applied (it still holds those units); the next one is. Without this, a count taken
between the WMS's shipping and our recording of it had the units taken off twice (on hand below
zero, found by `oms bench peak`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from oms.adapters import aws
from oms.domain.inventory import StockLevel

STOCK_ENTRY = "stock"
LINE_PREFIX = "res#"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def stock_id(warehouse_id: str, sku: str) -> str:
    return f"{warehouse_id}#{sku}"


def line_entry(order_key: str) -> str:
    return LINE_PREFIX + order_key


@dataclass(frozen=True)
class StockPartition:
    """A stock row as read with the lines held against it (for the recount)."""

    level: StockLevel
    version: int
    lines: dict[str, int]  # order_key -> units


class InventoryTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")

    # Stock levels ---------------------------------------------------------------------------

    def set_on_hand(self, warehouse_id: str, sku: str, on_hand: int, counted_at: datetime | None = None) -> bool:
        """What the WMS counts on the shelf (at `counted_at`, when the count says); reservations are kept
        (available = on_hand - reserved). False when the count is older than what the row already
        reflects (an earlier count, or a shipment we took off since): it is not applied.

        Optimistic: the update is conditional on the version read, and read again on a race with a
        reservation.
        """
        if on_hand < 0:
            raise ValueError(f"{warehouse_id}/{sku}: on hand cannot be negative ({on_hand})")
        key = {"stock_id": {"S": stock_id(warehouse_id, sku)}, "entry": {"S": STOCK_ENTRY}}
        counted = {} if counted_at is None else {"counted_at": {"N": str(epoch_ms(counted_at))}}
        for _ in range(20):
            current = self._dynamodb.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")
            try:
                if current is None:
                    self._dynamodb.put_item(
                        TableName=self.name,
                        Item={**key, "warehouse_id": {"S": warehouse_id}, "sku": {"S": sku},
                              "on_hand": {"N": str(on_hand)}, "reserved": {"N": "0"},
                              "available": {"N": str(on_hand)}, "version": {"N": "1"}, **counted},
                        ConditionExpression="attribute_not_exists(stock_id)",
                    )
                else:
                    if counted and any(int(current[name]["N"]) > int(counted["counted_at"]["N"])
                                       for name in ("counted_at", "last_deducted_at") if name in current):
                        return False
                    reserved = int(current["reserved"]["N"])
                    self._dynamodb.update_item(
                        TableName=self.name,
                        Key=key,
                        UpdateExpression="SET on_hand = :on_hand, available = :available"
                                         + (", counted_at = :counted" if counted else "") + " ADD version :one",
                        ConditionExpression="version = :version",
                        ExpressionAttributeValues={
                            ":on_hand": {"N": str(on_hand)}, ":available": {"N": str(on_hand - reserved)},
                            ":version": current["version"], ":one": {"N": "1"},
                            **({":counted": counted["counted_at"]} if counted else {}),
                        },
                    )
                return True
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise RuntimeError(f"{warehouse_id}/{sku}: stock kept changing while on hand was set")

    def levels(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StockLevel]:
        """Stock of each (warehouse_id, sku) that has a stock row; missing ones are absent."""
        keys = [{"stock_id": {"S": stock_id(w, s)}, "entry": {"S": STOCK_ENTRY}} for w, s in dict.fromkeys(pairs)]
        # Only what a StockLevel holds: the response (and its parsing) is half the size.
        levels = (_level(item) for item in aws.batch_get(
            self.name, keys, ConsistentRead=True, ProjectionExpression="#w, #s, #h, #r",
            ExpressionAttributeNames={"#w": "warehouse_id", "#s": "sku", "#h": "on_hand", "#r": "reserved"}))
        return {(level.warehouse_id, level.sku): level for level in levels}

    # Recount -------------------------------------------------------------------------------

    def stock_ids_of(self, warehouse_id: str) -> list[str]:
        """Every stock item of a warehouse (sparse index on stock rows: no scan)."""
        ids, kwargs = [], {
            "TableName": self.name, "IndexName": "by_warehouse",
            "KeyConditionExpression": "warehouse_id = :w", "ExpressionAttributeValues": {":w": {"S": warehouse_id}},
        }
        while True:
            page = self._dynamodb.query(**kwargs)
            ids.extend(item["stock_id"]["S"] for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return ids
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def read_partition(self, item_id: str) -> StockPartition | None:
        """The stock row and its lines, as of one moment: None if a reservation changed the row
        while the lines were read (the caller tries again later) or the row does not exist.

        The stock row sorts after the lines ("res#" < "stock"), so it is read last: if its version is
        still the one read first, no transaction touched the item in between, and the lines match it.
        """
        key = {"stock_id": {"S": item_id}, "entry": {"S": STOCK_ENTRY}}
        before = self._dynamodb.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")
        if before is None:
            return None
        lines: dict[str, int] = {}
        stock_row = None
        kwargs = {"TableName": self.name, "KeyConditionExpression": "stock_id = :id",
                  "ExpressionAttributeValues": {":id": {"S": item_id}}, "ConsistentRead": True}
        while True:
            page = self._dynamodb.query(**kwargs)
            for item in page["Items"]:
                if item["entry"]["S"] == STOCK_ENTRY:
                    stock_row = item
                else:
                    lines[item["order_key"]["S"]] = int(item["quantity"]["N"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if stock_row is None or stock_row["version"]["N"] != before["version"]["N"]:
            return None
        return StockPartition(_level(stock_row), int(stock_row["version"]["N"]), lines)

    def repair_reserved(self, item_id: str, version: int, reserved: int, on_hand: int) -> bool:
        """Set reserved (and available) to what the lines add up to, if nothing changed since `version`."""
        try:
            self._dynamodb.update_item(
                TableName=self.name,
                Key={"stock_id": {"S": item_id}, "entry": {"S": STOCK_ENTRY}},
                UpdateExpression="SET reserved = :reserved, available = :available ADD version :one",
                ConditionExpression="version = :version",
                ExpressionAttributeValues={
                    ":reserved": {"N": str(reserved)}, ":available": {"N": str(on_hand - reserved)},
                    ":version": {"N": str(version)}, ":one": {"N": "1"},
                },
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise


def _level(item: dict) -> StockLevel:
    return StockLevel(
        warehouse_id=item["warehouse_id"]["S"],
        sku=item["sku"]["S"],
        on_hand=int(item["on_hand"]["N"]),
        reserved=int(item["reserved"]["N"]),
    )
