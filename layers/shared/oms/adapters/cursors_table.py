"""The ShopCursors table: the registry of shops per channel and each shop's poll cursor.

One item per (channel, shop_id). A shop is registered by adding its item (`oms shops add`); the
poller queries its channel's partition, so adding a shop needs no deploy. A short lease keeps two
polls of one shop from running at once (they would only burn the shop's rate limit: dedup already
keeps the data right). All moves of the cursor are conditional and only ever forward.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from botocore.exceptions import ClientError

from oms.adapters import aws
from oms.adapters.dynamo_codec import from_item
from oms.domain.order import format_utc
from oms.domain.polling import PollWindow
from oms.ports import ResumePoint, ShopCursor

# Where a window a deadline cut goes on (`ResumePoint`), dropped once the cursor moves past a window.
_RESUME_FIELDS = ("resume_start_ms", "resume_end_ms", "resume_token")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(value) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)


def _is_condition_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class CursorsTable:
    def __init__(self, table_name: str):
        self._table = table_name
        self._dynamodb = aws.client("dynamodb")

    def register_shop(self, channel: str, shop_id: str) -> bool:
        """Add a shop to its channel's poll list; False if it was already registered."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "channel": {"S": channel},
                    "shop_id": {"S": shop_id},
                    "registered_at": {"S": format_utc(datetime.now(timezone.utc))},
                },
                ConditionExpression="attribute_not_exists(shop_id)",
            )
            return True
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise

    def list_shops(self, channel: str) -> list[ShopCursor]:
        shops: list[ShopCursor] = []
        kwargs = {
            "TableName": self._table,
            "KeyConditionExpression": "channel = :channel",
            "ExpressionAttributeValues": {":channel": {"S": channel}},
            "ConsistentRead": True,
        }
        while True:
            page = self._dynamodb.query(**kwargs)
            shops.extend(self._cursor(from_item(item)) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return shops
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, channel: str, shop_id: str) -> ShopCursor | None:
        response = self._dynamodb.get_item(
            TableName=self._table,
            Key=self._key(channel, shop_id),
            ConsistentRead=True,
        )
        return self._cursor(from_item(response["Item"])) if "Item" in response else None

    def acquire_lease(self, channel: str, shop_id: str, owner: str, until: datetime) -> ShopCursor | None:
        """Take the shop's poll lease; None when another poll holds an unexpired lease."""
        now_ms = _ms(datetime.now(timezone.utc))
        try:
            response = self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(channel, shop_id),
                UpdateExpression="SET lease_owner = :owner, lease_until_ms = :until",
                # `lease_owner = :owner`: this very poll took it already, and the answer was lost
                # (botocore's retry meets our own write; without this the shop waits out the lease).
                ConditionExpression=(
                    "attribute_exists(shop_id) AND "
                    "(attribute_not_exists(lease_until_ms) OR lease_until_ms < :now OR lease_owner = :owner)"
                ),
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":until": {"N": str(_ms(until))},
                    ":now": {"N": str(now_ms)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            raise
        return self._cursor(from_item(response["Attributes"]))

    def release_lease(
        self,
        channel: str,
        shop_id: str,
        owner: str,
        *,
        updated_through: datetime | None = None,
        retry_enqueued_through: datetime | None = None,
        span_hint: timedelta | None = None,
        clear_span_hint: bool = False,
        read_at: datetime | None = None,
        resume: ResumePoint | None = None,
        clear_resume: bool = False,
    ) -> bool:
        """Give the lease back, moving the cursor (forward only) when a window completed.

        `read_at` (with `updated_through`): when that window was planned, so the next poll knows
        how settled the cursor was (`oms.services.ingest.overlap_needed`); without it the next
        poll re-reads the full overlap. `resume`: where a window a deadline cut goes on; a moved
        cursor without one, or `clear_resume`, drops any earlier resume point.
        Returns False when the lease had already passed to someone else.
        """
        return self._write_cursor(
            channel, shop_id, owner, release=True, updated_through=updated_through,
            retry_enqueued_through=retry_enqueued_through, span_hint=span_hint,
            clear_span_hint=clear_span_hint, read_at=read_at, resume=resume, clear_resume=clear_resume,
        )

    def checkpoint(
        self,
        channel: str,
        shop_id: str,
        owner: str,
        *,
        updated_through: datetime,
        read_at: datetime,
        span_hint: timedelta | None = None,
        clear_span_hint: bool = False,
    ) -> bool:
        """Move the cursor (forward only) after one window of a poll that goes on reading, keeping the lease.

        Returns False when the lease has passed to someone else (the poll must stop).
        """
        return self._write_cursor(
            channel, shop_id, owner, release=False, updated_through=updated_through,
            span_hint=span_hint, clear_span_hint=clear_span_hint, read_at=read_at,
        )

    def _write_cursor(
        self,
        channel: str,
        shop_id: str,
        owner: str,
        *,
        release: bool,
        updated_through: datetime | None = None,
        retry_enqueued_through: datetime | None = None,
        span_hint: timedelta | None = None,
        clear_span_hint: bool = False,
        read_at: datetime | None = None,
        resume: ResumePoint | None = None,
        clear_resume: bool = False,
    ) -> bool:
        sets, values = [], {":owner": {"S": owner}}
        condition = "lease_owner = :owner"
        if updated_through is not None:
            sets += ["updated_through = :through", "updated_through_ms = :through_ms"]
            values[":through"] = {"S": format_utc(updated_through)}
            values[":through_ms"] = {"N": str(_ms(updated_through))}
            condition += " AND (attribute_not_exists(updated_through_ms) OR updated_through_ms < :through_ms)"
            if read_at is not None:
                sets.append("updated_through_read_at_ms = :read_at")
                values[":read_at"] = {"N": str(_ms(read_at))}
        if retry_enqueued_through is not None:
            sets.append("retry_enqueued_through_ms = :enqueued_ms")
            values[":enqueued_ms"] = {"N": str(_ms(retry_enqueued_through))}
        if span_hint is not None:
            sets.append("span_hint_ms = :span")
            values[":span"] = {"N": str(int(span_hint.total_seconds() * 1000))}
        if resume is not None:
            sets += ["resume_start_ms = :resume_start", "resume_end_ms = :resume_end", "resume_token = :resume_token"]
            values[":resume_start"] = {"N": str(_ms(resume.window.start))}
            values[":resume_end"] = {"N": str(_ms(resume.window.end))}
            values[":resume_token"] = {"S": resume.page_token}
        removes = (["lease_owner", "lease_until_ms"] if release else []) + (["span_hint_ms"] if clear_span_hint else [])
        if clear_resume or (updated_through is not None and resume is None):
            removes += list(_RESUME_FIELDS)
        if updated_through is not None and read_at is None:
            removes.append("updated_through_read_at_ms")  # unknown: the next poll re-reads the full overlap
        expression = " ".join(
            part for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            ) if part
        )
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(channel, shop_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
        if updated_through is None:
            return False
        # The cursor was already at or past this window (a retry got there first): the rest still applies.
        if not release and not (span_hint is not None or clear_span_hint or resume is not None or clear_resume):
            return self._holds_lease(channel, shop_id, owner)
        return self._write_cursor(
            channel, shop_id, owner, release=release, retry_enqueued_through=retry_enqueued_through,
            span_hint=span_hint, clear_span_hint=clear_span_hint, resume=resume, clear_resume=clear_resume,
        )

    def _holds_lease(self, channel: str, shop_id: str, owner: str) -> bool:
        response = self._dynamodb.get_item(TableName=self._table, Key=self._key(channel, shop_id), ConsistentRead=True)
        return response.get("Item", {}).get("lease_owner", {}).get("S") == owner

    def advance_past(self, channel: str, shop_id: str, window: PollWindow) -> bool:
        """After a retried window succeeded (or was dead-lettered): move a cursor that sits inside it to its end.

        A cursor before the window's start stays put: the gap before it is not resolved yet.
        """
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(channel, shop_id),
                # When the retried window was read is not known here: the next poll re-reads the full overlap.
                UpdateExpression="SET updated_through = :through, updated_through_ms = :end REMOVE updated_through_read_at_ms",
                ConditionExpression=(
                    "attribute_exists(shop_id) AND (attribute_not_exists(updated_through_ms) OR "
                    "updated_through_ms BETWEEN :start AND :before_end)"
                ),
                ExpressionAttributeValues={
                    ":through": {"S": format_utc(window.end)},
                    ":end": {"N": str(_ms(window.end))},
                    ":before_end": {"N": str(_ms(window.end) - 1)},
                    ":start": {"N": str(_ms(window.start))},
                },
            )
            return True
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise

    @staticmethod
    def _key(channel: str, shop_id: str) -> dict:
        return {"channel": {"S": channel}, "shop_id": {"S": shop_id}}

    @staticmethod
    def _cursor(item: dict) -> ShopCursor:
        return ShopCursor(
            channel=item["channel"],
            shop_id=item["shop_id"],
            updated_through=_from_ms(item.get("updated_through_ms")),
            retry_enqueued_through=_from_ms(item.get("retry_enqueued_through_ms")),
            span_hint=None if item.get("span_hint_ms") is None else timedelta(milliseconds=int(item["span_hint_ms"])),
            read_at=_from_ms(item.get("updated_through_read_at_ms")),
            resume=None if "resume_token" not in item else ResumePoint(
                PollWindow(_from_ms(item["resume_start_ms"]), _from_ms(item["resume_end_ms"])), item["resume_token"]
            ),
        )
