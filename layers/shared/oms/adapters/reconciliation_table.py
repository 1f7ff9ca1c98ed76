"""The Reconciliation table: one row per reconciled slice of a shop, with what it repaired.

Key: `shop_key` = "{channel}#{shop_id}", `window_start` (ISO UTC). Rows expire after 90 days (TTL).
The repaired order keys are listed (at most `LISTED` of each kind) beside their full counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from oms.adapters import aws
from oms.adapters.dynamo_codec import from_item, to_item
from oms.domain.order import format_utc
from oms.services.reconcile import SliceReport

LISTED = 200
KEEP = timedelta(days=90)


class ReconciliationTable:
    def __init__(self, table_name: str):
        self._table = table_name
        self._dynamodb = aws.client("dynamodb")

    def record(self, channel: str, shop_id: str, report: SliceReport, at: datetime) -> None:
        item = {
            "shop_key": f"{channel}#{shop_id}",
            "window_start": format_utc(report.window.start),
            "window_end": format_utc(report.window.end),
            "reconciled_at": format_utc(at),
            "platform_orders": report.platform_orders,
            "already_stored": report.already_stored,
            "backfilled_count": len(report.backfilled),
            "refreshed_count": len(report.refreshed),
            "quarantined_count": len(report.quarantined),
            "backfilled": report.backfilled[:LISTED],
            "refreshed": report.refreshed[:LISTED],
            "quarantined": report.quarantined[:LISTED],
            "expires_at": int((at + KEEP).timestamp()),
        }
        self._dynamodb.put_item(TableName=self._table, Item=to_item({k: v for k, v in item.items() if v != []}))

    def history(self, channel: str, shop_id: str) -> list[dict]:
        """Every recorded slice of a shop, oldest first (a Query on the key, never a scan)."""
        items, kwargs = [], {
            "TableName": self._table,
            "KeyConditionExpression": "shop_key = :key",
            "ExpressionAttributeValues": {":key": {"S": f"{channel}#{shop_id}"}},
        }
        while True:
            page = self._dynamodb.query(**kwargs)
            items.extend(from_item(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
