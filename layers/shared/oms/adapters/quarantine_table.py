"""The Quarantine table: malformed orders kept with their reason, listed by state, replayable.

One row per broken order: the id is (channel, shop, platform order id), so re-reading it in an
overlapping window, or a later version that is still broken, bumps `seen_count` and keeps the
latest payload and reason instead of adding a row; a broken sighting re-opens a replayed row.
Only a payload without a readable order id is keyed by a digest of its content. Listing uses the
`by-state` index, never a scan.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import datetime, timezone

from oms.adapters import aws
from oms.adapters.dynamo_codec import from_item, to_value
from oms.domain.order import format_utc

OPEN = "open"
REPLAYED = "replayed"


def quarantine_id(channel: str, shop_id: str, channel_order_id: str | None, raw: dict) -> str:
    if channel_order_id:
        return f"{channel}#{shop_id}#{channel_order_id}"
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{channel}#{shop_id}#unknown#{digest}"


class QuarantineTable:
    def __init__(self, table_name: str):
        self._table = table_name
        self._dynamodb = aws.client("dynamodb")

    def quarantine(
        self, *, channel: str, shop_id: str, channel_order_id: str | None, reason: str, raw: dict
    ) -> str:
        item_id = quarantine_id(channel, shop_id, channel_order_id, raw)
        packed = zlib.compress(json.dumps(raw, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        now = format_utc(datetime.now(timezone.utc))
        values = {
            ":channel": channel,
            ":shop": shop_id,
            ":reason": reason,
            ":raw": packed,
            ":state": OPEN,
            ":now": now,
            ":one": 1,
        }
        names = {"#state": "state"}
        expression = (
            "SET channel = :channel, shop_id = :shop, reason = :reason, raw_gz = :raw, "
            "#state = :state, quarantined_at = if_not_exists(quarantined_at, :now), "
            "last_seen_at = :now ADD seen_count :one"
        )
        if channel_order_id is not None:
            values[":order_id"] = channel_order_id
            expression = expression.replace("SET ", "SET channel_order_id = :order_id, ", 1)
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"quarantine_id": {"S": item_id}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={key: to_value(value) for key, value in values.items()},
        )
        return item_id

    def list(self, state: str = OPEN, limit: int = 100) -> list[dict]:
        items: list[dict] = []
        kwargs = {
            "TableName": self._table,
            "IndexName": "by-state",
            "KeyConditionExpression": "#state = :state",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {":state": {"S": state}},
        }
        while len(items) < limit:
            page = self._dynamodb.query(**kwargs)
            items.extend(from_item(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items[:limit]

    def get(self, item_id: str) -> dict | None:
        response = self._dynamodb.get_item(
            TableName=self._table, Key={"quarantine_id": {"S": item_id}}, ConsistentRead=True
        )
        return from_item(response["Item"]) if "Item" in response else None

    @staticmethod
    def raw_payload(item: dict) -> dict:
        return json.loads(zlib.decompress(bytes(item["raw_gz"])))

    def mark_replayed(self, item_id: str, outcome: str) -> None:
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"quarantine_id": {"S": item_id}},
            UpdateExpression="SET #state = :replayed, replay_outcome = :outcome, replayed_at = :now",
            ConditionExpression="#state = :open",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":replayed": {"S": REPLAYED},
                ":open": {"S": OPEN},
                ":outcome": {"S": outcome},
                ":now": {"S": format_utc(datetime.now(timezone.utc))},
            },
        )
