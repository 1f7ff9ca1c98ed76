"""`oms bench allocate`: paid orders through the allocation function, measured on the local cloud.

Setup (not measured): moto in its own process, four warehouses covering the destination with
ample stock of every SKU (every order fits one warehouse), fresh feed snapshots, SKU mappings (a
bundle among them), N paid orders stored in the Orders table and shaped as the stream delivers them
(batches of 25). Measured: 8 allocators (the stream's shards x ParallelizationFactor) work through
the batches at once, each batch one invocation of AllocationFunction in the local cloud's runtime.
Reported: allocated orders/s, AWS calls per allocated order (every boto3 call the handler makes, by
operation), and the endpoint's raw rate for the very same requests in the same run: every request
the function sent is recorded and replayed afterwards by as many threads, without the function
(order keys renamed, onto copies of the orders as they were before allocation, so each replayed
write lands on items in the state the original found). ratio = (orders/s x calls per order) / raw
calls/s: the share of the endpoint's own ceiling for these requests that allocation reaches. A smaller fixed call mix is timed too, for reference.
The orders go through in 5 rounds, each followed by its own replay and reference mix, so noise from
a neighbour on a shared machine hits both sides of a ratio alike; medians over the rounds are quoted.
"""

from __future__ import annotations

import copy
import json
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3

from omsdev.allocation_setup import WarehouseSetup, load_catalogue
from omsdev.awscalls import AwsCallCounter
from omsdev.bench_orders import THREADS, on_local_cloud, stored_as_stream_records
from omsdev.localcloud.cloud import LocalCloud

BATCH = 25
ROUNDS = 5
SKUS = ["TEA-OOLONG", "TEA-PUER", "TEA-JASMINE", "CUP-SET", "KETTLE"]
CODES = {"OOLONG-200": [("TEA-OOLONG", 1)], "PUER-357": [("TEA-PUER", 1)], "JASMINE-100": [("TEA-JASMINE", 1)],
         "KETTLE-1L": [("KETTLE", 1)], "GIFT-SET": [("TEA-OOLONG", 1), ("CUP-SET", 1)]}
WAREHOUSES = ["WH-HZ", "WH-SZ", "WH-BJ", "WH-CD"]
ORDER_PREFIX = "taobao#bench#"  # every benchmark order's key starts so


def register(commands) -> None:
    parser = commands.add_parser("allocate", help="paid orders through the allocation function")
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--json", default=None, help="also write the report to this file")
    parser.set_defaults(run=run)


def run(args) -> int:
    counter = AwsCallCounter().install()
    recorder = RequestRecorder().install()
    report = on_local_cloud("ba", lambda cloud: _measure(cloud, counter, recorder, args.orders), args.json)
    return 0 if report["allocated"] == args.orders and report["failed_records"] == 0 else 1


def _measure(cloud: LocalCloud, counter: AwsCallCounter, recorder: "RequestRecorder", count: int) -> dict:
    load_catalogue([
        WarehouseSetup(warehouse_id, ("CN",), {sku: 10_000_000 for sku in SKUS},
                       transit_hours={"CN": 24.0 + 6 * index, "CN/浙江": 12.0 + 6 * index})
        for index, warehouse_id in enumerate(WAREHOUSES)
    ], CODES)
    print(f"storing {count} paid orders ...", flush=True)
    records = _stored_orders(cloud, count)
    batches = [records[start:start + BATCH] for start in range(0, len(records), BATCH)]

    def allocate_batch(batch: list[dict]) -> int:
        # As the stream's pollers do: one invocation per batch, several at once (no reserved concurrency).
        return len(cloud.invoke("AllocationFunction", {"Records": batch}, bypass_concurrency=True)["batchItemFailures"])

    # Rounds: allocation, then the endpoint's raw rates, in turn, so a neighbour's load on this shared
    # machine hits both sides of a round alike; the report quotes the medians over the rounds.
    rounds, failed, all_calls = [], 0, Counter()
    per_round = -(-len(batches) // ROUNDS)
    for number in range(ROUNDS):
        chunk = batches[number * per_round:(number + 1) * per_round]
        if not chunk:
            break
        orders = sum(len(batch) for batch in chunk)
        tag = f"replay-r{number}-"
        _twin_orders(cloud, [record for batch in chunk for record in batch], tag)
        before = counter.snapshot()
        recorder.start()
        started = time.monotonic()
        with ThreadPoolExecutor(THREADS) as pool:
            chunk_failed = sum(pool.map(allocate_batch, chunk))
        seconds = time.monotonic() - started
        requests = recorder.stop()
        calls = counter.snapshot() - before
        failed += chunk_failed
        all_calls += calls
        calls_per_order = sum(calls.values()) / orders
        replay_rate = _replay_rate(cloud, requests, tag)
        mix_rate = _raw_call_rate(cloud, 300)
        rounds.append({"orders": orders, "failed_records": chunk_failed, "seconds": round(seconds, 1),
                       "orders_per_second": round(orders / seconds, 1),
                       "aws_calls_per_order": round(calls_per_order, 3),
                       "raw_calls_per_second_same_requests": round(replay_rate, 1),
                       "ratio": round(orders / seconds * calls_per_order / replay_rate, 3),
                       "raw_calls_per_second_small_mix": round(mix_rate, 1),
                       "ratio_to_small_mix": round(orders / seconds * calls_per_order / mix_rate, 3)})
        print(json.dumps(rounds[-1]), flush=True)
    states = _reservation_states(cloud, [r["dynamodb"]["Keys"]["order_key"]["S"] for r in records])
    allocated = states.get("confirmed", 0)

    def median(name: str) -> float:
        return statistics.median(row[name] for row in rounds)

    return {
        "orders": count,
        "allocated": allocated,
        "reservation_states": dict(states),
        "failed_records": failed,
        "allocators": THREADS,
        "rounds": rounds,
        "allocated_orders_per_second_median": median("orders_per_second"),
        "aws_calls_per_allocated_order": round(sum(all_calls.values()) / max(allocated, 1), 3),
        "aws_calls_by_operation": dict(all_calls.most_common()),
        "raw_calls_per_second_same_requests_median": median("raw_calls_per_second_same_requests"),
        "ratio_median": median("ratio"),
        "raw_calls_per_second_small_mix_median": median("raw_calls_per_second_small_mix"),
        "ratio_to_small_mix_median": median("ratio_to_small_mix"),
    }


class RequestRecorder:
    """Keeps every DynamoDB request made through boto3's default session while started (the
    function's clients; the benchmark's own reads use the stack's session and are not kept)."""

    def __init__(self) -> None:
        self._requests: list[tuple[str, dict]] = []
        self._on = False
        self._lock = threading.Lock()

    def install(self) -> "RequestRecorder":
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-parameter-build.dynamodb.*", self._keep)
        return self

    def _keep(self, params, model, **_ignored) -> None:
        if self._on:
            with self._lock:
                self._requests.append((model.name, copy.deepcopy(params)))

    def start(self) -> None:
        with self._lock:
            self._requests = []
        self._on = True

    def stop(self) -> list[tuple[str, dict]]:
        self._on = False
        return list(self._requests)


def _twin_orders(cloud: LocalCloud, records: list[dict], tag: str) -> None:
    """A copy of each order as it was before allocation, under the key its replay will use."""
    from oms.settings import get_settings

    table = get_settings().orders_table
    dynamodb = cloud.stack.client("dynamodb")
    twins = [{**record["dynamodb"]["NewImage"], "order_key": {"S": tag + record["dynamodb"]["Keys"]["order_key"]["S"]}}
             for record in records]
    for start in range(0, len(twins), 25):
        request = {table: [{"PutRequest": {"Item": twin}} for twin in twins[start:start + 25]]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def _replay_rate(cloud: LocalCloud, requests: list[tuple[str, dict]], tag: str) -> float:
    """Calls/s the endpoint takes for exactly the function's requests, sent again by as many threads.

    The orders' keys are renamed (`_twin_orders` made each order's pre-allocation copy under its new
    key), so every replayed write lands on an item in the state the original found: reservations and
    lines are new, the order's update meets the order as it was. Reads go to the same items."""
    dynamodb = cloud.stack.client("dynamodb")
    calls = {"TransactWriteItems": dynamodb.transact_write_items, "BatchGetItem": dynamodb.batch_get_item,
             "GetItem": dynamodb.get_item, "Query": dynamodb.query, "UpdateItem": dynamodb.update_item,
             "PutItem": dynamodb.put_item, "Scan": dynamodb.scan}
    unknown = {operation for operation, _ in requests} - set(calls)
    if unknown:
        raise RuntimeError(f"the replay does not know how to send {sorted(unknown)}")
    prepared = [(calls[operation], json.loads(json.dumps(params).replace(ORDER_PREFIX, tag + ORDER_PREFIX)))
                for operation, params in requests]

    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda call: call[0](**call[1]), prepared))
    return len(prepared) / (time.monotonic() - started)


def _stored_orders(cloud: LocalCloud, count: int) -> list[dict]:
    """Paid orders (1-3 lines, a bundle among the codes) stored, as the stream's INSERT records."""
    from oms.domain.order import CanonicalOrder, OrderLine, ShipTo, order_key

    rng = random.Random(11)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    orders = []
    for index in range(count):
        order_id = f"b{index:07d}"
        codes = rng.sample(sorted(CODES), rng.choice((1, 1, 2, 3)))
        orders.append(CanonicalOrder(
            order_key=order_key("taobao", "bench", order_id), channel="taobao", shop_id="bench",
            channel_order_id=order_id, status="paid", channel_status="WAIT_SELLER_SEND_GOODS", buyer_id="b",
            currency="CNY", total="100.00",
            lines=[OrderLine(line_id=str(i), sku=None, seller_sku=code, quantity=rng.choice((1, 1, 2)),
                             unit_price="50.00") for i, code in enumerate(codes)],
            ship_to=ShipTo(country="CN", province="浙江省", city="杭州市", address="x", encrypted=False),
            created_at=now, paid_at=now, updated_at=now,
        ))
    return stored_as_stream_records(cloud, orders)


def _reservation_states(cloud: LocalCloud, keys: list[str]) -> Counter:
    from oms.settings import get_settings

    dynamodb = cloud.stack.client("dynamodb")
    table = get_settings().reservations_table
    states = Counter()
    for start in range(0, len(keys), 100):
        request = {table: {"Keys": [{"order_key": {"S": key}} for key in keys[start:start + 100]],
                           "ProjectionExpression": "#s", "ExpressionAttributeNames": {"#s": "state"}}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            states.update(item["state"]["S"] for item in response["Responses"][table])
            request = response.get("UnprocessedKeys") or {}
    return states


def _raw_call_rate(cloud: LocalCloud, rounds: int) -> float:
    """Calls/s the endpoint takes for a small fixed mix like allocation's (GetItem, BatchGetItem, a
    three-item and a two-item TransactWriteItems, small items), same threads: for reference."""
    from oms.settings import get_settings

    settings = get_settings()
    dynamodb = cloud.stack.client("dynamodb")
    stock_keys = [{"stock_id": {"S": f"{w}#{sku}"}, "entry": {"S": "stock"}} for w in WAREHOUSES for sku in SKUS[:2]]
    order_keys = [image["order_key"]["S"] for image in dynamodb.scan(TableName=settings.orders_table, Limit=50,
                                                                        ProjectionExpression="order_key")["Items"]]

    def one_round(index: int) -> None:
        key = f"raw#{uuid.uuid4().hex}"
        dynamodb.get_item(TableName=settings.reservations_table, Key={"order_key": {"S": key}}, ConsistentRead=True)
        dynamodb.batch_get_item(RequestItems={settings.inventory_table: {"Keys": stock_keys, "ConsistentRead": True}})
        stock_key = stock_keys[index % len(stock_keys)]
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": settings.reservations_table, "Item": {"order_key": {"S": key}, "state": {"S": "raw"}},
                     "ConditionExpression": "attribute_not_exists(order_key)"}},
            {"Update": {"TableName": settings.inventory_table, "Key": stock_key,
                        "UpdateExpression": "SET reserved = reserved + :q, available = available - :q ADD version :one",
                        "ConditionExpression": "available >= :q",
                        "ExpressionAttributeValues": {":q": {"N": "1"}, ":one": {"N": "1"}}}},
            {"Put": {"TableName": settings.inventory_table,
                     "Item": {"stock_id": stock_key["stock_id"], "entry": {"S": f"raw#{key}"}, "quantity": {"N": "1"}}}},
        ])
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": settings.reservations_table, "Key": {"order_key": {"S": key}},
                        "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": {":s": {"S": "raw-confirmed"}}}},
            {"Update": {"TableName": settings.orders_table, "Key": {"order_key": {"S": order_keys[index % len(order_keys)]}},
                        "UpdateExpression": "SET raw_touch = :t", "ExpressionAttributeValues": {":t": {"N": str(index)}}}},
        ])

    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one_round, range(rounds)))
    return rounds * 5 / (time.monotonic() - started)
