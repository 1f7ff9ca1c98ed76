"""The ReviewItems table: one item per (order, engine) that needs a person, listed without scans.

Key `item_id` (S) = a hash of "{source}#{order_key}" (URL-safe, stable: a second message about the
same order from the same engine updates its item). Attributes: order_key, channel, source, reason,
detail, facts (map), status (`open` | `resolved`), created_at, updated_at, occurrences, and while a
reviewer holds it `claimed_by` / `claim_expires_at` (ISO). The index `by_status` (status, created_at)
lists the open items oldest first; reason, channel and age narrow that Query.

Intake is idempotent and ordered by the message's own time (`at`): a message creates its item, or
refreshes an open one, or reopens a resolved one only if it is newer than the resolution (SQS may
redeliver an old message after a reviewer resolved the item; that must not reopen it).
"""

from __future__ import annotations

import hashlib

from botocore.exceptions import ClientError

from oms.adapters import aws
from oms.adapters.dynamo_codec import to_value
from oms.domain.order import format_utc
from oms.services.messages import ReviewMessage

STATUS_INDEX = "by_status"


def review_item_id(source: str, order_key: str) -> str:
    return hashlib.sha256(f"{source}#{order_key}".encode()).hexdigest()[:24]


class ReviewItemsTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")

    def take(self, message: ReviewMessage) -> str:
        """Record a review message: `created`, `refreshed`, `reopened`, or `stale` (older than what the item
        already says, or than its resolution: changes nothing)."""
        item_id = review_item_id(message.source, message.order_key)
        at = format_utc(message.at)
        values = {":reason": {"S": message.reason}, ":detail": {"S": message.detail}, ":facts": to_value(message.facts),
                  ":at": {"S": at}, ":one": {"N": "1"}, ":open": {"S": "open"}}
        fields = "reason = :reason, detail = :detail, facts = :facts, updated_at = :at"
        item = {"item_id": {"S": item_id}, "order_key": {"S": message.order_key},
                "channel": {"S": message.order_key.split("#", 1)[0]}, "source": {"S": message.source},
                "reason": values[":reason"], "detail": values[":detail"], "facts": values[":facts"],
                "status": {"S": "open"}, "created_at": {"S": at}, "updated_at": {"S": at}, "occurrences": {"N": "1"}}
        if self._put_new(item):
            return "created"
        if self._update(item_id, f"SET {fields} ADD occurrences :one", "#status = :open AND updated_at <= :at", values):
            return "refreshed"
        reopen = f"SET {fields}, #status = :open, created_at = :at ADD occurrences :one REMOVE resolution, resolved_at"
        if self._update(item_id, reopen, "#status = :resolved AND resolved_at < :at",
                        {**values, ":resolved": {"S": "resolved"}}):
            return "reopened"
        return "stale"

    def _put_new(self, item: dict) -> bool:
        try:
            self._dynamodb.put_item(TableName=self.name, Item=item, ConditionExpression="attribute_not_exists(item_id)")
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def _update(self, item_id: str, expression: str, condition: str, values: dict) -> bool:
        try:
            self._dynamodb.update_item(TableName=self.name, Key={"item_id": {"S": item_id}},
                                       UpdateExpression=expression, ConditionExpression=condition,
                                       ExpressionAttributeNames={"#status": "status"},
                                       ExpressionAttributeValues=values)
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
