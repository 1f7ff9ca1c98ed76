"""Review intake: every engine's review message becomes one review item per (order, engine), through
the template's SQS wiring on the local cloud; duplicates and stale redeliveries change nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from oms.adapters.review_items_table import ReviewItemsTable, review_item_id
from oms.adapters.review_queue import SqsReviewQueue
from oms.services.messages import ReviewMessage
from oms.settings import get_settings

from tests.integration.allocation_helpers import dynamodb, wait_for


def message(order_key: str, source: str, reason: str, at: datetime) -> ReviewMessage:
    return ReviewMessage(order_key=order_key, source=source, reason=reason, detail=f"{reason} detail", at=at,
                         facts={"why": reason})


def item(cloud, source: str, order_key: str) -> dict | None:
    found = dynamodb(cloud).get_item(TableName=get_settings().review_items_table, ConsistentRead=True,
                                     Key={"item_id": {"S": review_item_id(source, order_key)}}).get("Item")
    return None if found is None else {k: v.get("S", v.get("N")) for k, v in found.items()}


def test_each_engines_messages_become_one_item_per_order_and_engine_through_the_queue(cloud):
    # GIVEN the ReviewQueue wired to the ReviewIntakeFunction as the template says
    cloud.start_wiring(only={"ReviewIntakeFunction"})
    queue = SqsReviewQueue(get_settings().review_queue_url)
    order = f"taobao#shop#{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    # WHEN allocation and risk each send one, and allocation's is delivered twice
    queue.send(message(order, "allocation", "insufficient_stock", now))
    queue.send(message(order, "allocation", "insufficient_stock", now))
    queue.send(message(order, "risk", "risk_review", now))
    # THEN there are two items, open, the duplicate counted as an occurrence
    allocation = wait_for(lambda: (i := item(cloud, "allocation", order)) and i["occurrences"] == "2" and i)
    risk = wait_for(lambda: item(cloud, "risk", order))
    assert (allocation["status"], allocation["reason"], allocation["channel"]) == ("open", "insufficient_stock", "taobao")
    assert (risk["status"], risk["reason"]) == ("open", "risk_review")


def test_a_resolved_item_reopens_only_for_a_newer_message(cloud):
    items = ReviewItemsTable(get_settings().review_items_table)
    order = f"jd#shop#{uuid.uuid4().hex[:10]}"
    first = datetime.now(UTC) - timedelta(minutes=10)
    assert items.take(message(order, "verification", "verification_expired", first)) == "created"
    # GIVEN a reviewer resolved it
    dynamodb(cloud).update_item(TableName=get_settings().review_items_table,
                                Key={"item_id": {"S": review_item_id("verification", order)}},
                                UpdateExpression="SET #s = :r, resolved_at = :at",
                                ExpressionAttributeNames={"#s": "status"},
                                ExpressionAttributeValues={":r": {"S": "resolved"},
                                                           ":at": {"S": (first + timedelta(minutes=5)).isoformat()}})
    # WHEN SQS redelivers the old message THEN nothing changes
    assert items.take(message(order, "verification", "verification_expired", first)) == "stale"
    assert item(cloud, "verification", order)["status"] == "resolved"
    # WHEN the engine sends it to review again later THEN it is open again with the new reason
    assert items.take(message(order, "verification", "verification_failed", datetime.now(UTC))) == "reopened"
    reopened = item(cloud, "verification", order)
    assert (reopened["status"], reopened["reason"]) == ("open", "verification_failed")
    # AND an older message than what an open item says does not overwrite it
    assert items.take(message(order, "verification", "verification_expired", first)) == "stale"
    assert item(cloud, "verification", order)["reason"] == "verification_failed"


def settled(order_key: str, at: datetime) -> ReviewMessage:
    return ReviewMessage(order_key=order_key, source="quarantine", reason="superseded", settled=True,
                         detail="a later version of the order was valid and is stored", at=at)


def test_a_settled_message_closes_the_open_quarantine_item_and_ends_its_claim(cloud):
    # GIVEN an open quarantine item that a reviewer has claimed
    items = ReviewItemsTable(get_settings().review_items_table)
    order, first = f"douyin#shop#{uuid.uuid4().hex[:10]}", datetime.now(UTC) - timedelta(minutes=3)
    assert items.take(message(order, "quarantine", "malformed_order", first)) == "created"
    assert items.claim(review_item_id("quarantine", order), "ana", first + timedelta(minutes=1),
                       first + timedelta(minutes=16)) is not None
    # WHEN ingest says a later version was stored
    assert items.take(settled(order, first + timedelta(minutes=2))) == "settled"
    # THEN the item is resolved by the system, with why, and nobody holds it
    closed = items.get(review_item_id("quarantine", order))
    assert closed["status"] == "resolved" and "claimed_by" not in closed
    assert (closed["resolution"]["action"], closed["resolution"]["by"]) == ("settled", "system")
    # AND a redelivery of the old quarantine message does not reopen it; a newer broken version does
    assert items.take(message(order, "quarantine", "malformed_order", first)) == "stale"
    assert items.take(message(order, "quarantine", "malformed_order", datetime.now(UTC))) == "reopened"


def test_a_settled_message_that_overtakes_the_quarantine_message_keeps_the_item_closed(cloud):
    # GIVEN SQS delivers the settlement before the message that announced the quarantine
    items = ReviewItemsTable(get_settings().review_items_table)
    order, first = f"pdd#shop#{uuid.uuid4().hex[:10]}", datetime.now(UTC) - timedelta(minutes=3)
    assert items.take(settled(order, first + timedelta(minutes=1))) == "settled"
    # WHEN the older announcement arrives THEN it finds the item resolved and changes nothing
    assert items.take(message(order, "quarantine", "malformed_order", first)) == "stale"
    assert item(cloud, "quarantine", order)["status"] == "resolved"
    # AND a second delivery of the settlement is stale too
    assert items.take(settled(order, first + timedelta(minutes=1))) == "stale"


def test_a_message_that_is_not_a_review_message_fails_alone(cloud):
    order = f"pdd#shop#{uuid.uuid4().hex[:10]}"
    good = message(order, "allocation", "unmapped_sku", datetime.now(UTC)).model_dump_json()
    event = {"Records": [
        {"messageId": "m1", "receiptHandle": "r1", "body": "{not json", "attributes": {}, "messageAttributes": {},
         "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"},
        {"messageId": "m2", "receiptHandle": "r2", "body": good, "attributes": {}, "messageAttributes": {},
         "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"},
    ]}
    response = cloud.invoke("ReviewIntakeFunction", event)
    assert response["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    assert json.loads(good)["order_key"] == item(cloud, "allocation", order)["order_key"]
