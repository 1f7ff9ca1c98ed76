"""The Quarantine table: malformed orders kept with their reason, listed by state, replayable.

One row per broken order: the id is (channel, shop, platform order id), so re-reading it in an
overlapping window, or a later version that is still broken, bumps `seen_count` and keeps the
latest payload and reason instead of adding a row; a broken sighting re-opens a replayed row.
Only a payload without a readable order id is keyed by a digest of its content. Listing uses the
`by-state` index, never a scan.

The refused payload is kept the way the Orders table keeps one (oms.adapters.raw_payloads): on the
row when small, else in the raw payload bucket under `quarantine/` at a key derived from the row's
id, so a retried window overwrites its own object. (A row holds at most 400 KB: a larger payload kept
inline failed its window on every retry.) The row names the object's bucket and key, so
`raw_payload(row)` needs nothing else to read it back.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from oms.adapters import aws
from oms.adapters.dynamo_codec import from_item, to_value
from oms.adapters.raw_payloads import raw_fields, read_raw
from oms.domain.order import format_utc
from oms.settings import get_settings

OPEN = "open"
REPLAYED = "replayed"


def quarantine_id(channel: str, shop_id: str, channel_order_id: str | None, raw: dict) -> str:
    if channel_order_id:
        return f"{channel}#{shop_id}#{channel_order_id}"
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{channel}#{shop_id}#unknown#{digest}"


def spill_key(channel: str, item_id: str) -> str:
    """The S3 key of a quarantined payload too large for its row: one per row, whatever its id holds
    (an order id may be long or hold any character; a digest is neither)."""
    return f"quarantine/{channel}/{hashlib.sha256(item_id.encode('utf-8', 'surrogatepass')).hexdigest()}.json.gz"


class QuarantineTable:
    def __init__(self, table_name: str, bucket_name: str | None = None):
        self._table = table_name
        # None: the deployment's raw payload bucket, from the settings when a payload first needs it
        self._bucket_name = bucket_name
        self._dynamodb = aws.client("dynamodb")

    def quarantine(
        self, *, channel: str, shop_id: str, channel_order_id: str | None, reason: str, raw: dict
    ) -> str:
        item_id = quarantine_id(channel, shop_id, channel_order_id, raw)
        bucket = self._bucket_name or get_settings().raw_payload_bucket
        kept = raw_fields(raw, bucket=bucket, key=spill_key(channel, item_id))
        now = format_utc(datetime.now(timezone.utc))
        values = {
            ":channel": channel,
            ":shop": shop_id,
            ":reason": reason,
            ":state": OPEN,
            ":now": now,
            ":one": 1,
        }
        names = {"#state": "state"}
        # The latest payload replaces the one before, wherever either is kept.
        if "raw_gz" in kept:
            values[":raw"] = kept["raw_gz"]
            raw_set, raw_remove = "raw_gz = :raw", "raw_s3_bucket, raw_s3_key"
        else:
            values[":raw_bucket"], values[":raw_key"] = bucket, kept["raw_s3_key"]
            raw_set, raw_remove = "raw_s3_bucket = :raw_bucket, raw_s3_key = :raw_key", "raw_gz"
        expression = (
            f"SET channel = :channel, shop_id = :shop, reason = :reason, {raw_set}, "
            "#state = :state, quarantined_at = if_not_exists(quarantined_at, :now), "
            f"last_seen_at = :now REMOVE {raw_remove} ADD seen_count :one"
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
        """The refused payload, from the row or from the S3 object the row names."""
        return read_raw(item, bucket=item.get("raw_s3_bucket"))

    def open_among(self, order_keys: list[str]) -> set[str]:
        """The keys with an open row (an order's quarantine id is its order key): one BatchGetItem per
        100, so a page of orders costs one read to learn which of them wait in quarantine."""
        keys = [{"quarantine_id": {"S": key}} for key in dict.fromkeys(order_keys)]
        return {item["quarantine_id"]["S"] for item in aws.batch_get(
                    self._table, keys, ProjectionExpression="quarantine_id, #state",
                    ExpressionAttributeNames={"#state": "state"})
                if item.get("state", {}).get("S") == OPEN}

    def mark_replayed(self, item_id: str, outcome: str) -> None:
        """Settle an open row; one settled already (by a person, or a retry of this call) stays as it is."""
        aws.conditional(
            self._dynamodb.update_item,
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
