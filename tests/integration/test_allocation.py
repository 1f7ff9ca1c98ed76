"""Allocation against the local cloud's endpoint: concurrent allocators never oversell and never
half-reserve; redelivered and bisected batches change nothing; cancellation releases exactly the
order's units; the recount finds no drift."""

import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import allocate.handler
import pytest
from oms.settings import get_settings
from omsdev.allocation_setup import WarehouseSetup, load_catalogue, set_allocation_rules
from omsdev.localcloud.cloud import LocalCloud
from omsdev.localcloud.runtime import LambdaContext

from tests.integration.allocation_helpers import (
    drain_queue,
    paid_order,
    reservation,
    stock_rows,
    store,
    stored_image,
    stored_images,
    stream_record,
    with_status,
)

pytestmark = pytest.mark.long_running  # minutes: scheduled first (tests/conftest.py)

WAREHOUSES = ["WH-EAST", "WH-NORTH", "WH-SOUTH", "WH-WEST"]
# 1,000 units over four warehouses: A 400, B 240, C 200, D 160.
STOCK = {"A": 100, "B": 60, "C": 50, "D": 40}
CHANNELS = ["taobao", "jd", "pdd", "douyin", "kuaishou"]


def invoke(records: list[dict]) -> dict:
    return allocate.handler.lambda_handler({"Records": records}, LambdaContext("AllocationFunction", 512, 180))


def set_up_catalog(cloud) -> None:
    load_catalogue(
        [WarehouseSetup(warehouse_id, ("CN",), dict(STOCK), transit_hours={"CN": 24.0 + 12 * index})
         for index, warehouse_id in enumerate(WAREHOUSES)],
        {**{f"{sku}-CODE": [(sku, 1)] for sku in STOCK},
         "BUNDLE-AB": [("A", 1), ("B", 1)],  # one channel SKU, two warehouse SKUs
         "PACK-C2": [("C", 2)]},  # a two-pack of C
    )
    set_allocation_rules(max_split_warehouses=4)


def demand_of(order) -> Counter:
    units = Counter()
    components = {"BUNDLE-AB": [("A", 1), ("B", 1)], "PACK-C2": [("C", 2)]}
    for line in order.lines:
        for sku, quantity in components.get(line.seller_sku, [(line.seller_sku.removesuffix("-CODE"), 1)]):
            units[sku] += quantity * line.quantity
    return units


def reserved_units(item: dict) -> Counter:
    units = Counter()
    for shipment in item["shipments"]["L"]:
        for line in shipment["M"]["lines"]["L"]:
            units[line["M"]["sku"]["S"]] += int(line["M"]["quantity"]["N"])
    return units


@pytest.fixture
def remote_cloud():
    """The local cloud with its endpoint in a process of its own (as AWS is remote): the allocators'
    threads and the endpoint do not share one interpreter."""
    local = LocalCloud(port=0, stack_name=f"t{uuid.uuid4().hex[:8]}", start_event_sources=False, server="process",
                       parameter_overrides={"LogLevel": "ERROR"})
    local.start()
    yield local
    local.stop()


def test_eight_concurrent_allocators_reserve_exactly_the_stock_and_send_every_other_order_to_review(remote_cloud):
    cloud = remote_cloud
    # GIVEN 1,000 units over four warehouses, and 5,000 paid orders from five channels competing for them:
    # single lines, multi-line orders and bundles
    set_up_catalog(cloud)
    rng = random.Random(7)
    codes = ["A-CODE", "B-CODE", "C-CODE", "D-CODE", "BUNDLE-AB", "PACK-C2"]
    orders = []
    for index in range(5000):
        kind = rng.random()
        if kind < 0.6:
            lines = [(rng.choice(codes[:4]), rng.randint(1, 2))]
        elif kind < 0.85:
            lines = [(code, rng.randint(1, 2)) for code in rng.sample(codes[:4], 2)]
        else:
            lines = [(rng.choice(codes[4:]), 1), (rng.choice(codes[:4]), 1)]
        orders.append(paid_order(CHANNELS[index % len(CHANNELS)], lines, order_id=f"c{index:05d}"))
    store(orders)
    images = stored_images(cloud, [order.order_key for order in orders])
    batches = [[stream_record(image, sequence=i) for i, image in enumerate(images[start:start + 25])]
               for start in range(0, len(images), 25)]
    # WHEN eight allocators work through the stream batches at once
    failures = []
    with ThreadPoolExecutor(8) as pool:
        for response in pool.map(invoke, batches):
            failures += response["batchItemFailures"]
    # THEN no record failed, and every order either holds all of its units or holds none and is in review
    assert failures == []
    refused, allocated = [], Counter()
    for order in orders:
        item = reservation(cloud, order.order_key)
        assert item is not None, order.order_key
        if item["state"]["S"] == "confirmed":
            assert reserved_units(item) == demand_of(order)  # never half-reserved
            allocated.update(demand_of(order))
        else:
            assert item["state"]["S"] == "refused" and reserved_units(item) == Counter()
            refused.append(order)
    # AND the stock rows hold exactly the allocated orders' units: none oversold, lines adding up
    rows = stock_rows(cloud)
    assert all(0 <= row["reserved"] <= row["on_hand"] and row["available"] >= 0 for row in rows.values())
    assert all(row["reserved"] == row["lines"] for row in rows.values())
    reserved_by_sku = Counter()
    for item_id, row in rows.items():
        reserved_by_sku[item_id.split("#")[1]] += row["reserved"]
    assert reserved_by_sku == allocated
    # AND every refused order really could not be filled from what is left, and is in the review queue with its reason
    left = Counter({sku: 4 * units - reserved_by_sku[sku] for sku, units in STOCK.items()})
    assert all(any(demand_of(order)[sku] > left[sku] for sku in demand_of(order)) for order in refused)
    reviews = drain_queue(cloud, "ReviewQueue")
    assert sorted(message["order_key"] for message in reviews) == sorted(order.order_key for order in refused)
    assert {message["reason"] for message in reviews} == {"insufficient_stock"}
    assert len(refused) > 3000 and sum(allocated.values()) > 900
    # AND the recount finds no drift
    report = cloud.invoke("RecountFunction", {})
    assert report["repairs"] == [] and report["unsettled"] == [] and report["stock_items"] == 16


def test_a_redelivered_and_a_bisected_batch_change_no_reservation_and_cancellation_releases_exactly_its_units(cloud):
    # GIVEN 40 paid orders allocated by one batch, and two with an unmapped SKU sent to review by it
    set_up_catalog(cloud)
    orders = [paid_order("jd", [("A-CODE", 1), ("BUNDLE-AB", 1)], order_id=f"r{i:03d}") for i in range(40)]
    unmapped = [paid_order("jd", [("NO-SUCH-CODE", 1)], order_id=f"u{i:03d}") for i in range(2)]
    store(orders + unmapped)
    records = [stream_record(stored_image(cloud, order.order_key), sequence=i)
               for i, order in enumerate(orders + unmapped)]
    assert invoke(records)["batchItemFailures"] == []
    first_reviews = drain_queue(cloud, "ReviewQueue")
    assert sorted((m["order_key"], m["reason"]) for m in first_reviews) == sorted(
        (order.order_key, "unmapped_sku") for order in unmapped)
    before = stock_rows(cloud)
    states_before = {order.order_key: reservation(cloud, order.order_key) for order in orders}
    # WHEN the same batch is delivered again, and then bisected as after a crash half way
    assert invoke(records)["batchItemFailures"] == []
    assert invoke(records[:20])["batchItemFailures"] == [] and invoke(records[20:])["batchItemFailures"] == []
    # THEN nothing changed: same stock rows, same reservations, no second review message
    assert stock_rows(cloud) == before
    assert drain_queue(cloud, "ReviewQueue") == []
    assert {order.order_key: reservation(cloud, order.order_key) for order in orders} == states_before
    assert sum(row["reserved"] for row in before.values()) == 40 * 3
    # WHEN one order is cancelled (a MODIFY to cancelled arrives through the stream), twice
    cancelled = orders[0]
    image = stored_image(cloud, cancelled.order_key)
    change = stream_record(with_status(image, "cancelled"), event_name="MODIFY", old_image=image)
    assert invoke([change])["batchItemFailures"] == [] and invoke([change])["batchItemFailures"] == []
    # THEN exactly its three units are back, and its reservation says released
    after = stock_rows(cloud)
    assert sum(row["reserved"] for row in after.values()) == 40 * 3 - 3
    assert sum(row["available"] for row in after.values()) == sum(row["available"] for row in before.values()) + 3
    assert reservation(cloud, cancelled.order_key)["state"]["S"] == "released"
    # AND the order records its fulfillment status
    assert stored_image(cloud, cancelled.order_key)["fulfillment_status"]["S"] == "released"
    assert stored_image(cloud, orders[1].order_key)["fulfillment_status"]["S"] == "allocated"


def test_a_crash_in_the_middle_of_a_batch_leaves_no_half_reservation_and_the_retry_finishes_it(cloud):
    # GIVEN 20 orders and an allocator whose container dies on the sixth order right after its units
    # were held and confirmed (the write committed, the batch response never sent)
    set_up_catalog(cloud)
    orders = [paid_order("pdd", [("D-CODE", 2)], order_id=f"x{i:03d}") for i in range(20)]
    store(orders)
    records = [stream_record(stored_image(cloud, order.order_key), sequence=i) for i, order in enumerate(orders)]
    ports = allocate.handler._ports()
    original_reserve = ports.reservations.reserve
    calls = {"n": 0}
    lock = threading.Lock()

    def reserve_then_crash_once(*args, **kwargs):
        held = original_reserve(*args, **kwargs)
        with lock:
            calls["n"] += 1
            crash = calls["n"] == 6
        if crash:
            raise ConnectionError("the container died after the reservation committed")
        return held

    ports.reservations.reserve = reserve_then_crash_once
    try:
        # WHEN the batch runs: the crashed record is reported failed
        failed = invoke(records)["batchItemFailures"]
        assert failed and failed[0]["itemIdentifier"] == records[5]["dynamodb"]["SequenceNumber"]
        # AND the stream redelivers from the failed record
        first_failed = int(failed[0]["itemIdentifier"])
        assert invoke(records[first_failed:])["batchItemFailures"] == []
    finally:
        ports.reservations.reserve = original_reserve
    # THEN every order holds exactly its two units once, confirmed, and is allocated
    for order in orders:
        assert reservation(cloud, order.order_key)["state"]["S"] == "confirmed"
        assert stored_image(cloud, order.order_key)["fulfillment_status"]["S"] == "allocated"
    rows = stock_rows(cloud)
    assert sum(row["reserved"] for row in rows.values()) == 40
    assert all(row["reserved"] == row["lines"] for row in rows.values())


def test_the_recount_repairs_drift_between_stock_rows_and_reservation_lines_and_reports_each_repair(cloud):
    # GIVEN ten orders allocated, then two stock rows edited behind the system's back
    set_up_catalog(cloud)
    orders = [paid_order("douyin", [("B-CODE", 1)], order_id=f"d{i:03d}") for i in range(10)]
    store(orders)
    assert invoke([stream_record(stored_image(cloud, o.order_key), sequence=i)
                   for i, o in enumerate(orders)])["batchItemFailures"] == []
    held = {item_id: row["reserved"] for item_id, row in stock_rows(cloud).items() if row["reserved"]}
    drifted = sorted(held)[0]
    settings = get_settings()
    dynamodb = cloud.stack.client("dynamodb")
    dynamodb.update_item(TableName=settings.inventory_table, Key={"stock_id": {"S": drifted}, "entry": {"S": "stock"}},
                         UpdateExpression="SET reserved = reserved + :seven, available = available - :seven",
                         ExpressionAttributeValues={":seven": {"N": "7"}})  # a phantom reservation
    dynamodb.update_item(TableName=settings.inventory_table, Key={"stock_id": {"S": "WH-WEST#D"}, "entry": {"S": "stock"}},
                         UpdateExpression="SET reserved = :three, available = available - :three",
                         ExpressionAttributeValues={":three": {"N": "3"}})  # reserved with no order behind it
    # WHEN the recount runs
    report = cloud.invoke("RecountFunction", {})
    # THEN it repaired exactly those two rows, back to what their lines add up to, and says so
    assert sorted((r["stock_id"], r["reserved_before"], r["reserved_after"]) for r in report["repairs"]) == sorted(
        [(drifted, held[drifted] + 7, held[drifted]), ("WH-WEST#D", 3, 0)])
    rows = stock_rows(cloud)
    assert all(row["reserved"] == row["lines"] and row["available"] == row["on_hand"] - row["reserved"]
               for row in rows.values())
    # AND a second recount finds nothing to repair
    assert cloud.invoke("RecountFunction", {})["repairs"] == []


def test_rules_change_without_a_deploy_and_a_bad_value_falls_back_to_the_defaults(cloud):
    # GIVEN a well-stocked warehouse 24 h away and a nearly empty one 12 h away
    load_catalogue([WarehouseSetup("WH-DEEP", ("CN",), {"A": 100}, transit_hours={"CN": 24.0}),
                    WarehouseSetup("WH-NEAR", ("CN",), {"A": 10}, transit_hours={"CN": 12.0})],
                   {"A-CODE": [("A", 1)]})

    def allocated_to(rules: dict | None) -> list[str]:
        if rules is not None:
            set_allocation_rules(**rules)
        allocate.handler._ports.cache_clear()  # a container started after the change
        order = paid_order("kuaishou", [("A-CODE", 1)])
        store([order])
        assert invoke([stream_record(stored_image(cloud, order.order_key))])["batchItemFailures"] == []
        return [shipment["M"]["warehouse_id"]["S"] for shipment in reservation(cloud, order.order_key)["shipments"]["L"]]

    # WHEN / THEN the shipped weights favour stock: the deep warehouse
    assert allocated_to(None) == ["WH-DEEP"]
    # WHEN an operator weights delivery time only (an SSM change, no deploy) THEN the near one
    assert allocated_to({"weights": {"stock": 0, "delivery": 1, "labour": 0, "error": 0}}) == ["WH-NEAR"]
    # WHEN the parameter is broken (weights not adding up to 1) THEN allocation goes on, with the defaults
    assert allocated_to({"weights": {"stock": 1, "delivery": 1, "labour": 0, "error": 0}}) == ["WH-DEEP"]
