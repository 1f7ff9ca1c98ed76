"""The Orders table: exactly-once storage of canonical orders (SPEC C2).

- First sight of an order: PutItem with `attribute_not_exists(order_key)`; a redelivered or
  overlapping copy fails the condition and is counted as a duplicate, never stored twice.
- A later version (paid -> cancelled, refund started): UpdateItem of the channel-owned fields only,
  with the condition `updated_at_ms < :new`, so an older version can never overwrite a newer one,
  and fields written downstream (allocation, risk) survive. The change flows on through the stream.
- The raw platform payload is kept for audit and re-normalisation: zlib-compressed on the item, or
  in S3 when even compressed it would crowd DynamoDB's 400 KB item limit (oms.adapters.raw_payloads).
"""

from __future__ import annotations

import time
import uuid

from botocore.exceptions import ClientError

from oms.adapters import aws
from oms.adapters.dynamo_codec import from_item, to_item, to_value
from oms.adapters.raw_payloads import raw_fields, read_raw
from oms.domain.order import CanonicalOrder, version_stamp
from oms.ports import SaveResult

# Fields the channel owns; everything else on the item belongs to later stages.
_CHANNEL_FIELDS = (
    "status",
    "channel_status",
    "buyer_id",
    "currency",
    "total",
    "lines",
    "ship_to",
    "created_at",
    "paid_at",
    "updated_at",
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class OrdersTable:
    def __init__(self, table_name: str, bucket_name: str):
        self._table = table_name
        self._bucket = bucket_name
        self._dynamodb = aws.client("dynamodb")

    def save(self, order: CanonicalOrder, raw: dict) -> SaveResult:
        stamp = version_stamp(order)
        raw_fields = self._raw_fields(order, raw, stamp)
        now = _now_ms()
        # A token of this call on what it writes: when a write's answer is lost and botocore's retry
        # meets our own write, the condition fails, and the token tells it was us, not a rival.
        token = uuid.uuid4().hex
        item = {
            **order.stored_dict(),
            **raw_fields,
            "updated_at_ms": stamp,
            "version": 1,
            "stored_at_ms": now,
            "last_written_at_ms": now,
            "write_token": token,
        }
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(order_key)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return SaveResult.CREATED
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored = from_item(error.response.get("Item") or {})
        if stored.get("write_token") == token:
            return SaveResult.CREATED
        stored_stamp = int(stored.get("updated_at_ms", 0))
        if stamp == stored_stamp:
            return SaveResult.DUPLICATE
        if stamp < stored_stamp:
            return SaveResult.STALE
        return self._update(order, raw_fields, stamp, token)

    def _update(self, order: CanonicalOrder, raw_fields: dict, stamp: int, token: str) -> SaveResult:
        contract = order.stored_dict()
        values = {name: contract[name] for name in _CHANNEL_FIELDS}
        values.update(raw_fields)
        values["updated_at_ms"] = stamp
        values["last_written_at_ms"] = _now_ms()
        values["write_token"] = token
        set_parts, remove_parts, names, attr_values = [], [], {}, {":one": to_value(1)}
        for index, (name, value) in enumerate(values.items()):
            names[f"#f{index}"] = name
            if value is None:
                remove_parts.append(f"#f{index}")
            else:
                set_parts.append(f"#f{index} = :v{index}")
                attr_values[f":v{index}"] = to_value(value)
        if "raw_s3_key" in raw_fields:
            remove_parts.append("raw_gz")
        else:
            remove_parts.append("raw_s3_key")
        expression = "SET " + ", ".join(set_parts) + ", version = version + :one"
        if remove_parts:
            expression += " REMOVE " + ", ".join(remove_parts)
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"order_key": {"S": order.order_key}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(order_key) AND updated_at_ms < :stamp",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**attr_values, ":stamp": to_value(stamp)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return SaveResult.UPDATED
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            if (error.response.get("Item") or {}).get("write_token", {}).get("S") == token:
                return SaveResult.UPDATED  # our own write, whose answer was lost: the retry met it
            # A concurrent writer stored this or a newer version between our two calls.
            return SaveResult.STALE

    def _raw_fields(self, order: CanonicalOrder, raw: dict, stamp: int) -> dict:
        key = f"raw/{order.channel}/{order.shop_id}/{order.channel_order_id}/{stamp}.json.gz"
        return raw_fields(raw, bucket=self._bucket, key=key)

    def stored_versions(self, order_keys: list[str]) -> dict[str, int]:
        """updated_at_ms of those keys already stored: one BatchGetItem per 100 keys.

        Lets a poll skip the orders its overlap re-reads without a write each; the conditional
        writes in `save` stay the guarantee, so a stale answer here costs a call, never correctness.
        """
        keys = [{"order_key": {"S": key}} for key in dict.fromkeys(order_keys)]
        return {item["order_key"]["S"]: int(item.get("updated_at_ms", {"N": "0"})["N"])
                for item in aws.batch_get(self._table, keys, ProjectionExpression="order_key, updated_at_ms")}

    def get(self, order_key: str) -> dict | None:
        response = self._dynamodb.get_item(
            TableName=self._table, Key={"order_key": {"S": order_key}}, ConsistentRead=True
        )
        return from_item(response["Item"]) if "Item" in response else None

    def raw_payload(self, stored: dict) -> dict:
        """The platform payload stored with an order, from the item or from S3."""
        return read_raw(stored, bucket=self._bucket)
