"""The AllocationFacts table: allocation's snapshots of its data sources, one partition per source.

Key: `source` (S) and `key` (S). Row: `{"source", "key", "value", "as_of_ms", "as_of"}` where `as_of`
is when the *source* said the value held (ISO UTC) and `as_of_ms` the same in epoch milliseconds.

| source      | key                          | value                                            |
|-------------|------------------------------|--------------------------------------------------|
| `delivery`  | "{warehouse_id}#{region}"    | transit hours                                    |
| `labour`    | warehouse_id                 | {"staff_on_shift", "orders_per_staff_day"}       |
| `error`     | warehouse_id                 | errors / shipments (0 without shipments)         |
| `stock`     | warehouse_id                 | SKUs synced from the WMS (as_of: when)           |
| `allocated` | "{YYYY-MM-DD}#{warehouse_id}"| orders allocated that UTC day (one ADD per call) |

Numbers are written as Decimal (floats are converted through their shortest text) and read back as
Decimal; `allocated_on` gives ints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

from oms.adapters import aws
from oms.adapters.dynamo_codec import from_item, to_item
from oms.domain.order import format_utc
from oms.services.feeds import FACT_ALLOCATED, allocated_key

BATCH_WRITE_LIMIT = 25
UNPROCESSED_ATTEMPTS = 8
_NAMES = {"#source": "source", "#key": "key", "#value": "value"}  # all three are DynamoDB reserved words


class FactsWriteError(RuntimeError):
    """DynamoDB kept some batch writes unprocessed beyond our retries (sustained throttling)."""


def _number(value: object) -> object:
    if isinstance(value, bool):
        raise TypeError("a fact is a number or a map of numbers, not a bool")
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(name): _number(inner) for name, inner in value.items()}
    if isinstance(value, (int, Decimal)):
        return value
    raise TypeError(f"a fact is a number or a map of numbers, not {type(value).__name__}")


def _as_of_ms(as_of: datetime) -> int:
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    return int(as_of.timestamp() * 1000)


class FactsTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")

    # Writing a snapshot ---------------------------------------------------------------------------

    def _row(self, source: str, key: str, value: object, as_of: datetime) -> dict:
        return to_item({"source": source, "key": key, "value": _number(value),
                        "as_of_ms": _as_of_ms(as_of), "as_of": format_utc(as_of)})

    def put_row(self, source: str, key: str, value: object, as_of: datetime) -> None:
        self._dynamodb.put_item(TableName=self.name, Item=self._row(source, key, value, as_of))

    def put_source(self, source: str, rows: Mapping[str, object], as_of: datetime, *,
                   prune: Callable[[str], bool] | None = None) -> int:
        """Write every row with `as_of`, then delete the source's rows absent from `rows` (only those
        `prune(key)` accepts, when given). Returns how many were deleted."""
        requests = [{"PutRequest": {"Item": self._row(source, key, value, as_of)}} for key, value in rows.items()]
        self._batch_write(requests)
        stale = [key for key in self._keys(source) if key not in rows and (prune is None or prune(key))]
        return self.delete_rows(source, stale)

    def delete_rows(self, source: str, keys: Iterable[str]) -> int:
        requests = [{"DeleteRequest": {"Key": {"source": {"S": source}, "key": {"S": key}}}}
                    for key in dict.fromkeys(keys)]
        self._batch_write(requests)
        return len(requests)

    def _batch_write(self, requests: list[dict]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending = {self.name: requests[start:start + BATCH_WRITE_LIMIT]}
            for attempt in range(UNPROCESSED_ATTEMPTS):
                pending = self._dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2.0))  # AWS: back off before resending unprocessed items
            if pending:
                raise FactsWriteError(f"{len(pending[self.name])} writes to {self.name} stayed unprocessed")

    # Reading ----------------------------------------------------------------------------------------

    def _query(self, source: str, *, key_prefix: str | None = None, keys_only: bool = False) -> Iterator[dict]:
        condition = "#source = :source" + (" AND begins_with(#key, :prefix)" if key_prefix is not None else "")
        values = {":source": {"S": source}, **({":prefix": {"S": key_prefix}} if key_prefix is not None else {})}
        kwargs = {"TableName": self.name, "KeyConditionExpression": condition, "ConsistentRead": True,
                  "ExpressionAttributeValues": values}
        if keys_only:
            kwargs["ProjectionExpression"] = "#key"
        used = condition + kwargs.get("ProjectionExpression", "")
        kwargs["ExpressionAttributeNames"] = {name: attribute for name, attribute in _NAMES.items() if name in used}
        while True:
            page = self._dynamodb.query(**kwargs)
            yield from (from_item(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _keys(self, source: str) -> list[str]:
        return [row["key"] for row in self._query(source, keys_only=True)]

    def read_source(self, source: str) -> dict[str, tuple[object, datetime]]:
        """key -> (value, as_of) of every row of the source (consistent read, all pages)."""
        return {row["key"]: (row.get("value"), datetime.fromtimestamp(int(row["as_of_ms"]) / 1000, UTC))
                for row in self._query(source)}

    # Allocation counts ------------------------------------------------------------------------------

    def add_allocated(self, warehouse_id: str, day: date, count: int = 1) -> None:
        now = datetime.now(UTC)
        self._dynamodb.update_item(
            TableName=self.name,
            Key={"source": {"S": FACT_ALLOCATED}, "key": {"S": allocated_key(day, warehouse_id)}},
            UpdateExpression="SET as_of_ms = :ms, as_of = :iso ADD #value :count",
            ExpressionAttributeNames={"#value": "value"},
            ExpressionAttributeValues={":count": {"N": str(int(count))}, ":ms": {"N": str(_as_of_ms(now))},
                                       ":iso": {"S": format_utc(now)}},
        )

    def allocated_on(self, day: date) -> dict[str, int]:
        """warehouse_id -> orders allocated on that UTC day (one Query on the day's key prefix)."""
        prefix = f"{day.isoformat()}#"
        return {row["key"][len(prefix):]: int(row.get("value", 0))
                for row in self._query(FACT_ALLOCATED, key_prefix=prefix)}
