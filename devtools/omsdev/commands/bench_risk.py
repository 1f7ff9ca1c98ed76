"""`oms bench risk`: paid orders through the risk function, measured on the local cloud.

Setup (not measured): moto in its own process; N paid orders of a realistic crowd stored in the
Orders table and shaped as the stream delivers them (batches of 25): most buyers order once or a
few times, a few order often; each buyer ships to their own address (written in varying forms),
and one address is shared by a ring of 8 new accounts (so the review path is exercised). No refunds:
no SMS is sent, so the figure is the assessment itself, not an SMS provider's latency.
Measured: 8 invocations at once (the stream's shards x ParallelizationFactor) work through the
batches. Reported: assessments/s, AWS calls per assessed order by operation, the decisions, and
the aggregates' exactness (paid totals = orders per buyer).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from omsdev.awscalls import AwsCallCounter
from omsdev.bench_orders import THREADS, invoke_batches, on_local_cloud, stored_as_stream_records
from omsdev.localcloud.cloud import LocalCloud

RING_ACCOUNTS = 8


def register(commands) -> None:
    parser = commands.add_parser("risk", help="paid orders through the risk function")
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--json", default=None, help="also write the report to this file")
    parser.set_defaults(run=run)


def run(args) -> int:
    counter = AwsCallCounter().install()
    report = on_local_cloud("br", lambda cloud: _measure(cloud, counter, args.orders), args.json)
    return 0 if report["assessed"] == args.orders and report["failed_records"] == 0 and report["exact"] else 1


def _measure(cloud: LocalCloud, counter: AwsCallCounter, count: int) -> dict:
    print(f"storing {count} paid orders ...", flush=True)
    orders = _crowd(count)
    records = stored_as_stream_records(cloud, orders)
    before = counter.snapshot()
    started = time.monotonic()
    failed = invoke_batches(cloud, "RiskFunction", records)
    seconds = time.monotonic() - started
    calls = counter.snapshot() - before
    statuses = _risk_statuses(cloud, [order.order_key for order in orders])
    assessed = sum(count for status, count in statuses.items() if status is not None)
    exact = _paid_totals_match(cloud, orders)
    return {
        "orders": count,
        "assessed": assessed,
        "risk_status": {str(status): n for status, n in statuses.items()},
        "failed_records": failed,
        "invocations_at_once": THREADS,
        "seconds": round(seconds, 1),
        "assessments_per_second": round(assessed / seconds, 1),
        "aws_calls_per_assessed_order": round(sum(calls.values()) / max(assessed, 1), 3),
        "aws_calls_by_operation": dict(calls.most_common()),
        "exact": exact,
    }


def _crowd(count: int) -> list:
    """Paid orders of many buyers: Zipf-like order counts, own addresses in varying forms, one ring."""
    from oms.domain.order import CanonicalOrder, OrderLine, ShipTo, order_key

    rng = random.Random(7)
    buyers = max(count // 3, RING_ACCOUNTS + 1)
    weights = [1 / (rank + 1) for rank in range(buyers)]
    start = datetime.now(UTC) - timedelta(hours=6)
    orders = []
    for index in range(count):
        ring = index % 50 == 0  # 2% of the orders come from the ring's accounts, all to one address
        buyer = f"ring-{index // 50 % RING_ACCOUNTS}" if ring else f"b{rng.choices(range(buyers), weights)[0]}"
        number = 999 if ring else int(buyer[1:]) % 900 + 1  # the ring's address is theirs alone
        form = rng.choice(("{n}号{b}栋{r}室", "{n}号{b}号楼{r}", "{n} 号 {b} 幢 {r} 房"))
        address = "文三路" + form.format(n=number, b=number % 9 + 1, r=100 + number % 30)
        paid = (start + timedelta(seconds=index * 4)).isoformat().replace("+00:00", "Z")
        order_id = f"r{index:07d}"
        orders.append(CanonicalOrder(
            order_key=order_key("taobao", "bench", order_id), channel="taobao", shop_id="bench",
            channel_order_id=order_id, status="paid", channel_status="WAIT_SELLER_SEND_GOODS", buyer_id=buyer,
            currency="CNY", total="100.00",
            lines=[OrderLine(line_id="1", sku=None, seller_sku="OOLONG-200", quantity=1, unit_price="100.00")],
            ship_to=ShipTo(country="CN", province="浙江省", city="杭州市", district="西湖区", address=address,
                           name="买家", phone=f"+86138{index:08d}", encrypted=False),
            created_at=paid, paid_at=paid, updated_at=paid,
        ))
    return orders


def _risk_statuses(cloud: LocalCloud, keys: list[str]) -> Counter:
    from oms.settings import get_settings

    dynamodb = cloud.stack.client("dynamodb")
    table = get_settings().orders_table
    statuses: Counter = Counter()
    for start in range(0, len(keys), 100):
        request = {table: {"Keys": [{"order_key": {"S": key}} for key in keys[start:start + 100]],
                           "ProjectionExpression": "risk_status"}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            statuses.update(item.get("risk_status", {}).get("S") for item in response["Responses"][table])
            request = response.get("UnprocessedKeys") or {}
    return statuses


def _paid_totals_match(cloud: LocalCloud, orders: list) -> bool:
    """Each buyer's paid total in the aggregates equals the orders the benchmark paid for them."""
    from oms.domain.risk import buyer_key
    from oms.settings import get_settings

    expected = Counter(buyer_key(order.channel, order.buyer_id) for order in orders)
    dynamodb = cloud.stack.client("dynamodb")
    table = get_settings().risk_aggregates_table
    keys = [{"pk": {"S": f"buyer#{buyer}"}, "sk": {"S": "totals"}} for buyer in expected]
    found = {}
    for start in range(0, len(keys), 100):
        request = {table: {"Keys": keys[start:start + 100]}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            found.update({item["pk"]["S"][6:]: int(item["paid_orders"]["N"]) for item in response["Responses"][table]})
            request = response.get("UnprocessedKeys") or {}
    return found == dict(expected)
