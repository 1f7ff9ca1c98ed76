"""What the stream-consumer benchmarks share: orders stored in the Orders table and handed to a
function exactly as the Orders stream would deliver them (INSERT records with the stored image)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

THREADS = 8  # the stream's shards x ParallelizationFactor: invocations at once


def stored_as_stream_records(cloud, orders: list) -> list[dict]:
    """Store the CanonicalOrders (8 writers) and return their INSERT records, in the orders' order.
    The images are read with the stack's own session, so the benchmark's AWS call counts skip them."""
    from oms.adapters.orders_table import OrdersTable
    from oms.settings import get_settings

    settings = get_settings()
    table = OrdersTable(settings.orders_table, settings.raw_payload_bucket)
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda order: table.save(order, {"tid": order.channel_order_id}), orders))
    dynamodb = cloud.stack.client("dynamodb")
    images = [dynamodb.get_item(TableName=settings.orders_table, Key={"order_key": {"S": order.order_key}})["Item"]
              for order in orders]
    return [{
        "eventID": uuid.uuid4().hex, "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": cloud.stack.region,
        "dynamodb": {"Keys": {"order_key": image["order_key"]}, "NewImage": image,
                     "SequenceNumber": str(index + 1).rjust(21, "0"), "SizeBytes": 1000,
                     "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/bench/stream/0",
    } for index, image in enumerate(images)]


def invoke_batches(cloud, function_id: str, records: list[dict], batch_size: int = 25) -> int:
    """Every batch one invocation, THREADS at once (no reserved concurrency); the failed records."""
    batches = [records[start:start + batch_size] for start in range(0, len(records), batch_size)]

    def one(batch: list[dict]) -> int:
        return len(cloud.invoke(function_id, {"Records": batch}, bypass_concurrency=True)["batchItemFailures"])

    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(one, batches))


def on_local_cloud(name_prefix: str, measure, json_path: str | None) -> dict:
    """Run `measure(cloud)` on a fresh local cloud (moto in its own process, no event sources: the
    benchmark drives the function itself), print the report and write it to `json_path` if given."""
    import json

    from omsdev.localcloud.cloud import LocalCloud

    cloud = LocalCloud(port=0, stack_name=f"{name_prefix}{uuid.uuid4().hex[:6]}",
                       parameter_overrides={"LogLevel": "ERROR"}, start_event_sources=False, server="process")
    cloud.start()
    try:
        report = measure(cloud)
    finally:
        cloud.stop()
    print(json.dumps(report, indent=2))
    if json_path:
        with open(json_path, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    return report
