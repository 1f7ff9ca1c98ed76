"""The AuditLog table: every reviewer decision, append-only.

Key `item_id` (S) and `entry` (S) = "{at}#{random}"; attributes who, role, action, reason, order_key,
before, after (maps), at. Entries are only ever put with `attribute_not_exists` (the reviewer API's
IAM policy allows PutItem and Query on it, nothing else), so nobody rewrites history. The index
`by_day` (day, entry) lists a day's decisions across items for an admin.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from oms.adapters import aws
from oms.adapters.dynamo_codec import document_value, from_item, to_item
from oms.domain.order import format_utc

DAY_INDEX = "by_day"


class AuditLogTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")

    def append(self, *, item_id: str, order_key: str, who: str, role: str, action: str, reason: str,
               before: dict, after: dict, at: datetime) -> dict:
        entry = {"item_id": item_id, "entry": f"{format_utc(at)}#{uuid.uuid4().hex[:8]}", "day": at.date().isoformat(),
                 "order_key": order_key, "who": who, "role": role, "action": action, "reason": reason,
                 "before": before, "after": after, "at": format_utc(at)}
        item = {**to_item({k: v for k, v in entry.items() if k not in ("before", "after")}),
                "before": document_value(before), "after": document_value(after)}
        # The entry's key is new to this call (time and a random part): a failed condition can only be
        # botocore's retry meeting this very write, whose answer was lost - it is recorded, once.
        aws.conditional(self._dynamodb.put_item, TableName=self.name, Item=item,
                        ConditionExpression="attribute_not_exists(item_id)")
        return entry

    def of_item(self, item_id: str, limit: int = 100) -> list[dict]:
        """The item's decisions, oldest first."""
        response = self._dynamodb.query(TableName=self.name, KeyConditionExpression="item_id = :id",
                                        ExpressionAttributeValues={":id": {"S": item_id}}, Limit=limit)
        return [from_item(item) for item in response["Items"]]

    def of_day(self, day: str, limit: int = 100) -> list[dict]:
        response = self._dynamodb.query(TableName=self.name, IndexName=DAY_INDEX, KeyConditionExpression="#d = :day",
                                        ExpressionAttributeNames={"#d": "day"},
                                        ExpressionAttributeValues={":day": {"S": day}}, Limit=limit)
        return [from_item(item) for item in response["Items"]]
