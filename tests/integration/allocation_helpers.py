"""Steps shared by the allocation tests: orders stored and shaped as the Orders stream delivers them;
what ended up reserved, refused and queued for review. (The catalogue: `omsdev.allocation_setup`.)"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from oms.adapters.orders_table import OrdersTable
from oms.domain.order import CanonicalOrder, OrderLine, ShipTo, order_key
from oms.settings import get_settings


def dynamodb(cloud):
    return cloud.stack.client("dynamodb")


def paid_order(channel: str, lines: list[tuple[str, int]], *, province: str = "浙江省", shop_id: str = "alloc",
               order_id: str | None = None) -> CanonicalOrder:
    order_id = order_id or uuid.uuid4().hex[:16]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return CanonicalOrder(
        order_key=order_key(channel, shop_id, order_id), channel=channel, shop_id=shop_id, channel_order_id=order_id,
        status="paid", channel_status="PAID", buyer_id="buyer-1", currency="CNY", total="10.00",
        lines=[OrderLine(line_id=str(i), sku=None, seller_sku=code, quantity=quantity, unit_price="5.00")
               for i, (code, quantity) in enumerate(lines)],
        ship_to=ShipTo(country="CN", province=province, city="杭州市", address="x", encrypted=False),
        created_at=now, paid_at=now, updated_at=now,
    )


def store(orders: list[CanonicalOrder]) -> None:
    table = OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda order: table.save(order, {"id": order.channel_order_id}), orders))


def stored_images(cloud, keys: list[str]) -> list[dict]:
    """`stored_image` of many orders, 100 per BatchGetItem, in the order of `keys`."""
    table, found = get_settings().orders_table, {}
    for start in range(0, len(keys), 100):
        request = {table: {"Keys": [{"order_key": {"S": key}} for key in keys[start:start + 100]], "ConsistentRead": True}}
        while request:
            response = dynamodb(cloud).batch_get_item(RequestItems=request)
            found.update({item["order_key"]["S"]: item for item in response["Responses"][table]})
            request = response.get("UnprocessedKeys") or {}
    return [found[key] for key in keys]


def stored_image(cloud, key: str) -> dict:
    """The order as stored, in the DynamoDB JSON a stream record carries as NewImage."""
    return dynamodb(cloud).get_item(TableName=get_settings().orders_table, Key={"order_key": {"S": key}},
                                    ConsistentRead=True)["Item"]


def stream_record(new_image: dict, *, event_name: str = "INSERT", old_image: dict | None = None,
                  sequence: int = 1) -> dict:
    record = {
        "eventID": uuid.uuid4().hex, "eventName": event_name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {"order_key": new_image["order_key"]}, "NewImage": new_image,
                     "SequenceNumber": str(sequence).rjust(21, "0"), "SizeBytes": 100,
                     "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000",
    }
    if old_image is not None:
        record["dynamodb"]["OldImage"] = old_image
    return record


def with_status(image: dict, status: str) -> dict:
    return {**image, "status": {"S": status}}


def reservation(cloud, key: str) -> dict | None:
    item = dynamodb(cloud).get_item(TableName=get_settings().reservations_table, Key={"order_key": {"S": key}},
                                    ConsistentRead=True).get("Item")
    return None if item is None else {k: v for k, v in item.items()}


def stock_rows(cloud) -> dict[str, dict]:
    """Every stock row (warehouse#sku -> on_hand, reserved, available) and the lines' sum per row."""
    rows, lines = {}, {}
    kwargs = {"TableName": get_settings().inventory_table, "ConsistentRead": True}
    while True:
        page = dynamodb(cloud).scan(**kwargs)  # a test's view of everything: fine here, never in the system
        for item in page["Items"]:
            item_id = item["stock_id"]["S"]
            if item["entry"]["S"] == "stock":
                rows[item_id] = {name: int(item[name]["N"]) for name in ("on_hand", "reserved", "available")}
            else:
                lines[item_id] = lines.get(item_id, 0) + int(item["quantity"]["N"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    for item_id, row in rows.items():
        row["lines"] = lines.get(item_id, 0)
    return rows


def drain_queue(cloud, logical_id: str) -> list[dict]:
    sqs = cloud.stack.client("sqs")
    url = cloud.stack.ref(logical_id)
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def wait_for(predicate, seconds: float = 20.0):
    """The predicate's first truthy value, asked every 0.2 s; AssertionError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")
