"""`oms bench drain --channel C`: a backlog drained by the channel's poller at the platform's limits.

Issue 3's acceptance: a backlog of N orders (default 50,000) sits at one simulated shop, spread
over the last day; the channel's poller runs back to back (its schedule with reserved
concurrency 1) until every order is stored. Measured: stored orders/s against the rate the
platform's limits allow for that channel's call pattern, zero losses and zero duplicates against
the simulator's book, calls per endpoint and refusals from the simulator's request log, and AWS
calls per order (every boto3 call the function makes).

The rate the limits allow (orders/s), from the simulator's enforced limits x `--scale`:
- list-only channels (JD, PDD, Douyin, Kuaishou, Shopify): list calls/s x page size;
- a detail call per order from the same quota (Taobao fullinfo, AliExpress detail): each page of
  P orders costs 1 + P calls, so calls/s x P / (P + 1);
- a detail call per order from its own quota (Amazon getOrderItems): the lower of what either
  quota allows, min(getOrders/s x page size, getOrderItems/s).
`--scale K` multiplies the platform's limits (the simulator's `rate_multiplier`, which the
simulator also writes into the shop's secret, as a seller copies the console's quota), so the
allowed rate stays well below what the local DynamoDB endpoint absorbs (~400 PutItem/s) and the
benchmark measures the channel side, not moto. Buckets start full, so a run is also compared
with the ceiling including the platforms' bursts.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from omsdev.awscalls import AwsCallCounter
from omsdev.demo import IngestTally, poller_function_id, start_shop
from omsdev.localcloud.cloud import LocalCloud

# The backlog covers the last day (a new shop's first day, or a day-long outage); it ends well
# behind every platform's lag (PDD's 3 min 15 s is the longest) so all of it is readable at once.
BACKLOG_SPAN = timedelta(hours=24)
LIVE_EDGE_MARGIN = timedelta(minutes=5)
PROGRESS_SECONDS = 5


@dataclass(frozen=True)
class CallPattern:
    """How a channel's poller spends its quota (rates at scale 1, as the simulator enforces them)."""

    list_calls_per_second: float
    page_size: int  # orders per list call, as the adapter asks
    detail: str = "none"  # none | shared (one detail call per order, same quota) | separate
    detail_calls_per_second: float | None = None  # the detail call's own quota (separate)
    source: str = ""

    def allowed(self, list_calls: float, detail_calls: float | None = None) -> float:
        """Orders the given list (and detail) calls can carry; calls per second give orders/s."""
        if self.detail == "shared":
            return list_calls * self.page_size / (self.page_size + 1)
        if self.detail == "separate":
            return min(list_calls * self.page_size, detail_calls)
        return list_calls * self.page_size

    def explain(self, scale: float) -> str:
        rate, page = self.list_calls_per_second * scale, self.page_size
        if self.detail == "shared":
            return f"{rate:g} calls/s x {page} / ({page} + 1) (list + one detail call per order, one quota)"
        if self.detail == "separate":
            detail = self.detail_calls_per_second * scale
            return f"min(list {rate:g}/s x {page}, detail {detail:g}/s)"
        return f"{rate:g} list calls/s x {page} orders/page"


def call_patterns() -> dict[str, CallPattern]:
    """Per channel, from the simulators' enforced limits and the adapters' page sizes."""
    from oms.adapters.channels import aliexpress as aliexpress_client
    from oms.adapters.channels import amazon as amazon_client
    from oms.adapters.channels import douyin as douyin_client
    from oms.adapters.channels import jd as jd_client
    from oms.adapters.channels import kuaishou as kuaishou_client
    from oms.adapters.channels import pdd as pdd_client
    from oms.adapters.channels import shopify as shopify_client
    from oms.adapters.channels import taobao as taobao_client

    from omsdev.simulators import (
        aliexpress,
        amazon,
        douyin,
        jd,
        kuaishou,
        pdd,
        shopify,
        taobao,
    )

    return {
        "taobao": CallPattern(taobao.APP_RATE, taobao_client.PAGE_SIZE, "shared", source="TOP app quota (console)"),
        "jd": CallPattern(jd.RATE, jd_client.PAGE_SIZE, source="JOS app rate (ISV wrappers: 10/s)"),
        "pdd": CallPattern(pdd.RATE, pdd_client.PAGE_SIZE, source="3000 calls / 60 s per shop"),
        "douyin": CallPattern(douyin.RATE, douyin_client.PAGE_SIZE, source="app quota (console)"),
        "kuaishou": CallPattern(kuaishou.QPS_LIMIT, kuaishou_client.PAGE_SIZE, source="300 QPS per app"),
        "amazon": CallPattern(amazon.RATES["getOrders"][0], amazon_client.PAGE_SIZE, "separate",
                              amazon.RATES["getOrderItems"][0], source="SP-API usage plans"),
        "aliexpress": CallPattern(aliexpress.RATE, aliexpress_client.PAGE_SIZE, "shared", source="app flow control (console)"),
        "shopify": CallPattern(shopify.LEAK_PER_SECOND, shopify_client.PAGE_LIMIT, source="leaky bucket 40, 2/s"),
    }


# Scale per channel: an allowed rate of about 120-125 orders/s (see the module docstring).
DEFAULT_SCALES = {
    "taobao": 3.0, "jd": 0.25, "pdd": 0.025, "douyin": 0.0625, "kuaishou": 1 / 120,
    "amazon": 250.0, "aliexpress": 25.0, "shopify": 0.25,
}


def allowed_rate(channel: str, scale: float) -> float:
    """Orders/s the platform's limits (x scale) allow for the channel's call pattern."""
    pattern = call_patterns()[channel]
    detail = None if pattern.detail_calls_per_second is None else pattern.detail_calls_per_second * scale
    return pattern.allowed(pattern.list_calls_per_second * scale, detail)


def register(bench_subparsers) -> None:
    drain = bench_subparsers.add_parser("drain", help="a backlog at one channel drained at its rate limits")
    drain.add_argument("--channel", required=True, choices=sorted(DEFAULT_SCALES))
    drain.add_argument("--orders", type=int, default=50000)
    drain.add_argument("--scale", type=float, default=None,
                       help="multiplies the platform's limits (default per channel: ~120-125 orders/s allowed)")
    drain.add_argument("--timeout", type=float, default=1800.0)
    drain.add_argument("--json", default=None, help="also write the report to this file")
    drain.set_defaults(run=run)


def _limit_buckets(shop) -> list:
    """The simulator's enforcing buckets: (list bucket, detail bucket or None)."""
    simulator = shop.simulator
    if shop.channel == "amazon":
        return [simulator.limits["getOrders"], simulator.limits["getOrderItems"]]
    if shop.channel == "shopify":
        return [simulator.bucket, None]
    return [simulator.limit, None]


def _write_backlog(shop, count: int) -> tuple[datetime, datetime]:
    """`count` orders spread evenly over BACKLOG_SPAN, ending LIVE_EDGE_MARGIN before now."""
    end = datetime.now(UTC) - LIVE_EDGE_MARGIN
    start = end - BACKLOG_SPAN
    for index in range(count):
        shop.generator.create(start + BACKLOG_SPAN * (index + 0.5) / count)
    return start, end


def _set_cursor(channel: str, shop_id: str, through: datetime) -> None:
    """The shop's cursor at the backlog's start: the first poll reads from there (less its overlap)."""
    from oms.adapters.cursors_table import CursorsTable
    from oms.settings import get_settings

    cursors, owner = CursorsTable(get_settings().shop_cursors_table), uuid.uuid4().hex
    cursors.acquire_lease(channel, shop_id, owner, until=datetime.now(UTC) + timedelta(minutes=1))
    cursors.release_lease(channel, shop_id, owner, updated_through=through)


def _stored(cloud: LocalCloud, key_prefix: str) -> dict[str, tuple[str | None, int]]:
    """order key -> (updated_at, stored_at_ms) of every item under the prefix (one paged scan)."""
    dynamodb = cloud.stack.client("dynamodb")
    kwargs = {
        "TableName": cloud.stack.ref("OrdersTable"),
        "ProjectionExpression": "order_key, updated_at, stored_at_ms",
        "FilterExpression": "begins_with(order_key, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": key_prefix}},
    }
    found, items = {}, 0
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page["Items"]:
            items += 1
            found[item["order_key"]["S"]] = (item.get("updated_at", {}).get("S"), int(item["stored_at_ms"]["N"]))
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def reconcile_backlog(shop, stored: dict[str, tuple[str | None, int]]) -> dict:
    """Every order of the book stored exactly once at its latest version (the book is the truth)."""
    from oms.domain.order import parse_utc

    prefix = f"{shop.channel}#{shop.shop_id}#"
    lost, stale = [], []
    for entry in shop.book.entries():
        found = stored.get(prefix + entry.order_id)
        if found is None:
            lost.append(entry.order_id)
        elif found[0] is None or parse_utc(found[0]) != entry.updated_at.replace(microsecond=0):
            stale.append(entry.order_id)
    expected = len(shop.book)
    return {
        "orders_in_book": expected,
        "items_in_table": len(stored),
        "stored_exactly_once_at_latest_version": expected - len(lost) - len(stale),
        "losses": len(lost),
        "stale_versions": len(stale),
        # Items the table holds beyond the book's orders: an order stored under a second key.
        "duplicates": max(len(stored) - (expected - len(lost)), 0),
        "lost_examples": lost[:5],
    }


def _calls_by_endpoint(shop) -> dict[str, dict]:
    return {operation: dict(outcomes) for operation, outcomes in sorted(shop.simulator.stats.by_operation().items())}


def _drain(cloud: LocalCloud, channel: str, expected: int, timeout: float, tally: IngestTally) -> tuple[float, bool]:
    """Invoke the poller back to back until the pollers report every order created."""
    stop = threading.Event()

    def poll_back_to_back() -> None:
        while not stop.is_set():
            cloud.invoke(poller_function_id(channel), {"channel": channel})

    started_wall = time.time()
    poller = threading.Thread(target=poll_back_to_back, name="drain-poller", daemon=True)
    poller.start()
    done, last_print = False, started_wall
    while time.time() - started_wall < timeout:
        time.sleep(0.5)
        created = tally.snapshot().get(channel, Counter())["created"]
        if created >= expected:
            done = True
            break
        if time.time() - last_print >= PROGRESS_SECONDS:
            last_print = time.time()
            print(f"[{last_print - started_wall:6.1f}s] stored {created} of {expected}", flush=True)
    stop.set()
    poller.join(timeout=120)
    return started_wall, done


def _report(args, shop, scale: float, started_wall: float, stored: dict, calls: Counter, tally: IngestTally) -> dict:
    pattern = call_patterns()[args.channel]
    allowed = allowed_rate(args.channel, scale)
    last_store = max((at for _, at in stored.values()), default=int(started_wall * 1000)) / 1000
    seconds = max(last_store - started_wall, 1e-6)
    rate = len(stored) / seconds
    list_bucket, detail_bucket = _limit_buckets(shop)
    # What the platform would let through in the same seconds, bursts (full buckets) included.
    ceiling = pattern.allowed(list_bucket.burst + list_bucket.rate * seconds,
                              None if detail_bucket is None else detail_bucket.burst + detail_bucket.rate * seconds)
    by_endpoint = _calls_by_endpoint(shop)
    refusals = sum(outcomes.get("rate_limited", 0) for outcomes in by_endpoint.values())
    return {
        "channel": args.channel,
        "orders": args.orders,
        "scale": scale,
        "allowed_orders_per_second": round(allowed, 2),
        "allowed_rate_computed_as": pattern.explain(scale),
        "limit_source": pattern.source,
        "enforced_buckets": [{"rate": round(b.rate, 4), "burst": b.burst} for b in (list_bucket, detail_bucket) if b],
        "seconds": round(seconds, 1),
        "stored_orders_per_second": round(rate, 2),
        "efficiency": round(rate / allowed, 3),
        "efficiency_vs_ceiling_with_bursts": round(len(stored) / ceiling, 3),
        "calls_by_endpoint": by_endpoint,
        "platform_refusals": refusals,
        "poll_outcomes": dict(tally.states[args.channel]),
        "poll_stop_reasons": dict(tally.reasons[args.channel].most_common(5)),
        "aws_calls_per_order": round(sum(calls.values()) / max(len(stored), 1), 3),
        "aws_calls_by_operation": dict(calls.most_common()),
    }


def run(args) -> int:
    scale = args.scale if args.scale is not None else DEFAULT_SCALES[args.channel]
    counter = AwsCallCounter().install()
    cloud = LocalCloud(port=0, stack_name="drain", parameter_overrides={"LogLevel": "ERROR"}, start_event_sources=False,
                       server="process")  # the endpoint on its own core, as a remote service
    cloud.start()
    shop = start_shop(args.channel, f"drain-{args.channel}", rate_multiplier=scale)
    try:
        print(f"writing a backlog of {args.orders} orders ...", flush=True)
        backlog_start, _ = _write_backlog(shop, args.orders)
        _set_cursor(args.channel, shop.shop_id, backlog_start)
        tally = IngestTally()
        cloud.runtime.listeners.append(tally)
        before = counter.snapshot()
        started_wall, done = _drain(cloud, args.channel, args.orders, args.timeout, tally)
        calls = counter.snapshot() - before
        stored = _stored(cloud, f"{args.channel}#{shop.shop_id}#")
        report = {**_report(args, shop, scale, started_wall, stored, calls, tally),
                  "reconciliation": reconcile_backlog(shop, stored), "drained_before_timeout": done}
    finally:
        shop.simulator.stop()
        cloud.stop()
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    check = report["reconciliation"]
    return 0 if done and check["losses"] == 0 and check["duplicates"] == 0 and check["stale_versions"] == 0 else 1
