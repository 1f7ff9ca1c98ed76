"""The ReviewItems table: one item per (order, engine) that needs a person, listed without scans.

Key `item_id` (S) = a hash of "{source}#{order_key}" (URL-safe, stable: a second message about the
same order from the same engine updates its item). Attributes: order_key, channel, source, reason,
detail, facts (map), status (`open` | `resolved`), created_at, updated_at, occurrences, and while a
reviewer holds it `claimed_by` / `claim_expires_at` (ISO). The index `by_status` (status, created_at)
lists the open items oldest first; reason, channel and age narrow that Query.

Intake is idempotent and ordered by the message's own time (`at`): a message creates its item, or
refreshes an open one, or reopens a resolved one only if it is newer than the resolution (SQS may
redeliver an old message after a reviewer resolved the item; that must not reopen it).
Intake's writes and the resolution carry a token of their call (`write_token`): when a write's answer
is lost after the write and botocore's retry meets our own write, the retry does not apply again (no
second occurrence) and its failed condition is read as done.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import datetime

from oms.adapters import aws
from oms.adapters.dynamo_codec import document_value, from_item
from oms.domain.order import format_utc
from oms.domain.review import stamp
from oms.services.messages import ReviewMessage

STATUS_INDEX = "by_status"
TOKEN = "write_token"


def review_item_id(source: str, order_key: str) -> str:
    return hashlib.sha256(f"{source}#{order_key}".encode()).hexdigest()[:24]


class ReviewItemsTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")

    def take(self, message: ReviewMessage) -> str:
        """Record a review message: `created`, `refreshed`, `reopened`, `settled` (a `settled` message closed
        the item), or `stale` (older than what the item already says, or than its resolution: changes nothing)."""
        item_id = review_item_id(message.source, message.order_key)
        at = format_utc(message.at)
        if message.settled:
            return self._settle(item_id, message, at)
        values = {":reason": {"S": message.reason}, ":detail": {"S": message.detail}, ":facts": document_value(message.facts),
                  ":at": {"S": at}, ":one": {"N": "1"}, ":open": {"S": "open"}}
        fields = "reason = :reason, detail = :detail, facts = :facts, updated_at = :at"
        if self._put_new(_new_item(item_id, message, at, status={"S": "open"}, occurrences={"N": "1"})):
            return "created"
        if self._update(item_id, f"SET {fields} ADD occurrences :one", "#status = :open AND updated_at <= :at", values):
            return "refreshed"
        reopen = f"SET {fields}, #status = :open, created_at = :at ADD occurrences :one REMOVE resolution, resolved_at"
        if self._update(item_id, reopen, "#status = :resolved AND resolved_at < :at",
                        {**values, ":resolved": {"S": "resolved"}}):
            return "reopened"
        return "stale"

    def _settle(self, item_id: str, message: ReviewMessage, at: str) -> str:
        """Close the item for the engine (any claim ends with it). An item not there yet is written closed,
        so the message that would have opened it, older, finds it resolved and is stale (SQS keeps no order)."""
        resolution = document_value({"action": "settled", "by": "system", "reason": message.detail, "at": at,
                                     "outcome": message.reason})
        if self._update(item_id, "SET #status = :resolved, resolution = :resolution, resolved_at = :at, updated_at = :at "
                                 "REMOVE claimed_by, claim_expires_at", "#status = :open AND updated_at <= :at",
                        {":resolved": {"S": "resolved"}, ":resolution": resolution, ":at": {"S": at},
                         ":open": {"S": "open"}}):
            return "settled"
        closed = _new_item(item_id, message, at, status={"S": "resolved"}, resolution=resolution,
                           resolved_at={"S": at}, occurrences={"N": "0"})
        return "settled" if self._put_new(closed) else "stale"

    def _put_new(self, item: dict) -> bool:
        token = uuid.uuid4().hex
        return aws.landed(self._dynamodb.put_item, TOKEN, token, TableName=self.name,
                          Item={**item, TOKEN: {"S": token}}, ConditionExpression="attribute_not_exists(item_id)")

    def _update(self, item_id: str, expression: str, condition: str, values: dict) -> bool:
        return aws.update_once(self._dynamodb.update_item, TOKEN, TableName=self.name, Key={"item_id": {"S": item_id}},
                               UpdateExpression=expression, ConditionExpression=condition,
                               ExpressionAttributeNames={"#status": "status"}, ExpressionAttributeValues=values)

    # Reviewers ----------------------------------------------------------------------------------

    def get(self, item_id: str) -> dict | None:
        item = self._dynamodb.get_item(TableName=self.name, Key={"item_id": {"S": item_id}},
                                       ConsistentRead=True).get("Item")
        return None if item is None else from_item(item)

    def list(self, *, status: str, sources: tuple[str, ...], reason: str | None = None, channel: str | None = None,
             created_before: datetime | None = None, limit: int = 50, cursor: str | None = None) -> tuple[list, str | None]:
        """A page of items in `status`, oldest first, of the given sources (and reason, channel, age);
        the cursor of the next page or None. A Query on `by_status`; the filters narrow each page."""
        names = {"#status": "status", "#source": "source"}
        values = {":status": {"S": status}}
        condition = "#status = :status"
        if created_before is not None:
            condition += " AND created_at <= :before"
            values[":before"] = {"S": format_utc(created_before)}
        sources_in = []
        for index, source in enumerate(sources):
            values[f":s{index}"] = {"S": source}
            sources_in.append(f":s{index}")
        filters = [f"#source IN ({', '.join(sources_in)})"]
        if reason:
            filters.append("reason = :reason")
            values[":reason"] = {"S": reason}
        if channel:
            filters.append("channel = :channel")
            values[":channel"] = {"S": channel}
        kwargs = {"TableName": self.name, "IndexName": STATUS_INDEX, "KeyConditionExpression": condition,
                  "FilterExpression": " AND ".join(filters), "ExpressionAttributeNames": names,
                  "ExpressionAttributeValues": values}
        start = _decode_cursor(cursor)
        if start is not None and start["status"]["S"] != status:
            raise ValueError("cursor belongs to a listing of another status")
        found: list[dict] = []
        last_key: dict = {}
        while True:
            if start:
                kwargs["ExclusiveStartKey"] = start
            kwargs["Limit"] = max(limit - len(found), 1) * 2  # a filtered page may hold fewer
            page = self._dynamodb.query(**kwargs)
            for item in page["Items"]:
                if len(found) == limit:
                    return found, _encode_cursor(last_key)
                found.append(from_item(item))
                last_key = {name: item[name] for name in ("item_id", "status", "created_at")}
            start = page.get("LastEvaluatedKey")
            if not start:
                return found, None
            if len(found) == limit:
                return found, _encode_cursor(last_key)

    def open_summary(self, now: datetime) -> dict:
        """How many items are open, per source, and the age of the oldest: the open partition of
        `by_status`, keys and two attributes only (a queue is hundreds of items, not millions)."""
        kwargs = {"TableName": self.name, "IndexName": STATUS_INDEX, "KeyConditionExpression": "#status = :open",
                  "ProjectionExpression": "#source, created_at", "ExpressionAttributeNames": {
                      "#status": "status", "#source": "source"}, "ExpressionAttributeValues": {":open": {"S": "open"}}}
        by_source: dict[str, int] = {}
        oldest: str | None = None
        while True:
            page = self._dynamodb.query(**kwargs)
            for item in page["Items"]:
                source = item["source"]["S"]
                by_source[source] = by_source.get(source, 0) + 1
                created = item["created_at"]["S"]
                oldest = created if oldest is None or created < oldest else oldest
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        age = None if oldest is None else max(int((now - datetime.fromisoformat(oldest.replace("Z", "+00:00")))
                                                  .total_seconds()), 0)
        return {"open_items": sum(by_source.values()), "oldest_open_age_seconds": age, "by_source": by_source}

    def claim(self, item_id: str, reviewer: str, now: datetime, until: datetime) -> dict | None:
        """Hold an open item until `until` unless someone else holds it; the item, or None when refused."""
        response = aws.conditional(
            self._dynamodb.update_item, TableName=self.name, Key={"item_id": {"S": item_id}},
            UpdateExpression="SET claimed_by = :who, claim_expires_at = :until",
            ConditionExpression="#status = :open AND (attribute_not_exists(claimed_by) OR claimed_by = :who "
                                "OR claim_expires_at <= :now)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":who": {"S": reviewer}, ":until": {"S": stamp(until)},
                                       ":now": {"S": stamp(now)}, ":open": {"S": "open"}},
            ReturnValues="ALL_NEW")
        return None if response is None else from_item(response["Attributes"])

    def resolve(self, item_id: str, reviewer: str, resolution: dict, now: datetime) -> bool:
        """Close the item with the decision, only while this reviewer's claim holds."""
        return self._update(
            item_id, "SET #status = :resolved, resolution = :resolution, resolved_at = :now "
                     "REMOVE claimed_by, claim_expires_at",
            "#status = :open AND claimed_by = :who AND claim_expires_at > :now",
            {":resolved": {"S": "resolved"}, ":resolution": document_value(resolution), ":now": {"S": stamp(now)},
             ":open": {"S": "open"}, ":who": {"S": reviewer}})


def _new_item(item_id: str, message: ReviewMessage, at: str, **attributes: dict) -> dict:
    """An item as a message first writes it (open, or already closed by a settlement), `attributes` added."""
    return {"item_id": {"S": item_id}, "order_key": {"S": message.order_key},
            "channel": {"S": message.order_key.split("#", 1)[0]}, "source": {"S": message.source},
            "reason": {"S": message.reason}, "detail": {"S": message.detail}, "facts": document_value(message.facts),
            "created_at": {"S": at}, "updated_at": {"S": at}, **attributes}


def _encode_cursor(key: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("cursor is not one this API gave out") from None
    if not isinstance(key, dict) or set(key) != {"item_id", "status", "created_at"} or not all(
            isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str) and value["S"]
            for value in key.values()):
        raise ValueError("cursor is not one this API gave out")
    return key
