"""`oms bench ingest`: orders through the real pollers into the Orders table, measured.

Orders appear at the simulators (two Shopify stores, one Amazon seller) faster than one poller per
channel can store them; each channel's poller runs back to back, as its schedule would with
reserved concurrency 1. Reported: stored orders/s, AWS API calls per stored order (every boto3
call the functions make), p50/p95 latency from an order's appearance at its simulator to its
storage, and, on the same endpoint in the same run, the raw PutItem rate: copies of the items
ingestion stored (same attributes and compressed payload, same condition), written with the same
number of writer threads. ratio = (orders/s x calls per order) / raw PutItem rate.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from omsdev.awscalls import AwsCallCounter
from omsdev.commands import bench_allocate, bench_drain, bench_peak, bench_risk
from omsdev.demo import IngestTally, start_amazon_shop, start_shopify_shop
from omsdev.localcloud.cloud import LocalCloud
from omsdev.simulators.scenario import Scenario, ScenarioRunner

WRITER_THREADS = 8  # the poller's per-page write fan-out (oms.services.ingest)


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks")
    commands = bench.add_subparsers(dest="bench_command", required=True)
    ingest = commands.add_parser("ingest", help="simulated orders through the pollers into the Orders table")
    ingest.add_argument("--orders", type=int, default=20000)
    ingest.add_argument("--arrival-rate", type=float, default=2000.0, help="orders per second appearing at the simulators")
    ingest.add_argument("--timeout", type=float, default=900.0)
    ingest.add_argument("--json", default=None, help="also write the report to this file")
    ingest.set_defaults(run=run_ingest)
    bench_drain.register(commands)
    bench_allocate.register(commands)
    bench_risk.register(commands)
    bench_peak.register(commands)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def _stored_at(cloud: LocalCloud) -> dict[str, int]:
    dynamodb = cloud.stack.client("dynamodb")
    found, kwargs = {}, {"TableName": cloud.stack.ref("OrdersTable"), "ProjectionExpression": "order_key, stored_at_ms"}
    while True:
        page = dynamodb.scan(**kwargs)
        found.update({item["order_key"]["S"]: int(item["stored_at_ms"]["N"]) for item in page["Items"]})
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _raw_put_rate(cloud: LocalCloud, count: int) -> float:
    """PutItem/s the endpoint takes for items like the ones ingestion stored (same attributes, same
    compressed raw payload), written by as many threads as the poller's writers, with the same
    attribute_not_exists condition: the ceiling ingestion is measured against."""
    dynamodb = cloud.stack.client("dynamodb")
    table = cloud.stack.ref("OrdersTable")
    samples = dynamodb.scan(TableName=table, Limit=50)["Items"]

    def put(index: int) -> None:
        item = {**samples[index % len(samples)], "order_key": {"S": f"raw#{uuid.uuid4().hex}#{index}"}}
        dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(order_key)")

    started = time.monotonic()
    with ThreadPoolExecutor(WRITER_THREADS) as pool:
        list(pool.map(put, range(count)))
    return count / (time.monotonic() - started)


def run_ingest(args) -> int:
    counter = AwsCallCounter().install()
    cloud = LocalCloud(port=0, stack_name="bench", parameter_overrides={"LogLevel": "ERROR"}, start_event_sources=False,
                       server="process")  # the endpoint on its own core, as a remote service
    cloud.start()
    shops = [
        start_shopify_shop("bench-1", rate_multiplier=10),
        start_shopify_shop("bench-2", rate_multiplier=10, seed=3),
        start_amazon_shop("bench-eu", rate_multiplier=400),
    ]
    # Amazon only serves orders updated >= 2 min ago: its orders carry timestamps 3 min in the past.
    shopify_runner = ScenarioRunner([s.generator for s in shops[:2]], Scenario(orders_per_day=args.arrival_rate * 0.95 * 86400, cancel_share=0, duplicate_share=0))
    amazon_runner = ScenarioRunner([shops[2].generator], Scenario(orders_per_day=args.arrival_rate * 0.05 * 86400, cancel_share=0, duplicate_share=0, backdate=timedelta(minutes=3)))
    stop = threading.Event()
    tally = IngestTally()
    cloud.runtime.listeners.append(tally)

    failed_polls: Counter = Counter()

    def poll_forever(function_id: str, channel: str) -> None:
        while not stop.is_set():
            try:
                cloud.invoke(function_id, {"channel": channel})
            except Exception as error:  # noqa: BLE001 - as on a schedule: reported, and the next poll comes
                failed_polls[f"{channel}: {type(error).__name__}"] += 1

    started = time.monotonic()
    shopify_runner.start(total=int(args.orders * 0.95))
    amazon_runner.start(total=args.orders - int(args.orders * 0.95))
    pollers = [threading.Thread(target=poll_forever, args=pair, daemon=True)
               for pair in (("ShopifyPollerFunction", "shopify"), ("AmazonPollerFunction", "amazon"))]
    for poller in pollers:
        poller.start()
    expected = args.orders
    # Progress comes from the pollers' own reports: scanning the table here would load the endpoint.
    while time.monotonic() - started < args.timeout:
        time.sleep(2)
        created = sum(counts["created"] for counts in tally.snapshot().values())
        print(f"[{time.monotonic() - started:5.0f}s] appeared {shopify_runner.created + amazon_runner.created}, stored {created}", flush=True)
        if created >= expected:
            break
    stop.set()
    for poller in pollers:
        poller.join(timeout=120)
    calls = counter.snapshot()
    stored = _stored_at(cloud)
    appeared = {f"{s.channel}#{s.shop_id}#{e.order_id}": e.appeared_at for s in shops for e in s.book.entries()}
    latencies = [stored[key] / 1000 - appeared[key] for key in stored if key in appeared]
    first_appearance = min(appeared.values())
    last_store = max(stored.values()) / 1000
    orders_per_second = len(stored) / (last_store - first_appearance)
    raw_rate = _raw_put_rate(cloud, 5000)
    calls_per_order = sum(calls.values()) / max(len(stored), 1)
    report = {
        "orders_generated": expected,
        "orders_stored": len(stored),
        "stored_orders_per_second": round(orders_per_second, 1),
        "aws_calls_per_stored_order": round(calls_per_order, 3),
        "aws_calls_by_operation": dict(calls.most_common()),
        "latency_p50_seconds": round(statistics.median(latencies), 2),
        "latency_p95_seconds": round(_percentile(latencies, 0.95), 2),
        "raw_putitem_per_second": round(raw_rate, 1),
        "ratio": round(orders_per_second * calls_per_order / raw_rate, 3),
        "simulator_requests": {s.shop_id: dict(s.simulator.stats.outcomes()) for s in shops},
        "failed_polls": dict(failed_polls),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    shopify_runner.stop()
    amazon_runner.stop()
    for shop in shops:
        shop.simulator.stop()
    cloud.stop()
    return 0 if len(stored) >= expected else 1
