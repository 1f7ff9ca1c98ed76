"""The feed function on the local cloud: the four simulated sources' answers end up in the
AllocationFacts snapshots (and, for the WMS, in the Inventory table); the WMS's shipments deduct the
held units and ship the orders; the FactsTable adapter against the same endpoint."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from boto3.dynamodb.types import TypeDeserializer
from oms.adapters import aws
from oms.adapters.facts_table import FactsTable
from oms.adapters.inventory_table import InventoryTable
from oms.adapters.sources import SourceEndpoint, SourceHttp
from oms.adapters.sources.wms import WmsClient
from oms.services.allocate import allocate_order, deduct_order, release_order, release_to_warehouse
from oms.services.dependencies import allocation_ports, order_to_allocate
from oms.services.feeds import PartialFeedError, SourceError, business_day, cursor_value
from oms.settings import get_settings
from omsdev.allocation_setup import WarehouseSetup, load_catalogue
from omsdev.simulators import attendance, carrier, quality, wms
from omsdev.simulators.sources_common import ManualWallClock, iso
from pydantic import ValidationError

from tests.integration.allocation_helpers import paid_order, reservation, stock_rows, store, stored_image

SHIPMENTS_EVENT = json.loads((Path(__file__).parents[2] / "events" / "feeds" / "shipments.json").read_text())


def register_warehouse(warehouse_id: str, regions: list[str], daily_capacity: int = 5000) -> None:
    aws.client("dynamodb").put_item(TableName=get_settings().warehouses_table, Item={
        "warehouse_id": {"S": warehouse_id}, "name": {"S": f"Warehouse {warehouse_id}"},
        "regions": {"SS": regions}, "daily_capacity": {"N": str(daily_capacity)},
    })


def secret_name(source: str) -> str:
    return f"{get_settings().secrets_prefix}/sources/{source}"


def delete_source_secret(source: str) -> None:
    secrets = aws.client("secretsmanager")
    try:
        secrets.delete_secret(SecretId=secret_name(source), ForceDeleteWithoutRecovery=True)
    except secrets.exceptions.ResourceNotFoundException:
        pass


@pytest.fixture(autouse=True)
def no_source_secrets(cloud_factory):
    """The secrets' names are fixed per deployment and the in-process moto keeps them across local clouds:
    every test ends without them (removed while its local cloud still runs)."""
    yield
    for source in ("wms", "carrier", "attendance", "quality"):
        delete_source_secret(source)


def store_source_secret(source: str, credentials: dict) -> None:
    """What an operator does once per source: `oms/sources/<source>` = {"base_url", "api_key"}."""
    secrets = aws.client("secretsmanager")
    try:
        secrets.create_secret(Name=secret_name(source), SecretString=json.dumps(credentials))
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=secret_name(source), SecretString=json.dumps(credentials))


@pytest.fixture
def simulators():
    started = []

    def keep(launched):
        started.append(launched[0])
        return launched

    yield keep
    for simulator in started:
        simulator.stop()


def facts() -> FactsTable:
    return FactsTable(get_settings().allocation_facts_table)


def test_each_source_is_fed_into_its_snapshot_and_the_wms_stock_into_the_inventory(cloud, simulators):
    # GIVEN two registered warehouses and the four sources' APIs, each registered by its secret
    hz, gz = f"WH-HZ-{uuid.uuid4().hex[:4]}", f"WH-GZ-{uuid.uuid4().hex[:4]}"
    register_warehouse(hz, ["CN/浙江", "CN/江苏"])
    register_warehouse(gz, ["CN/广东"])
    wms_api, wms_credentials = simulators(wms.launch([hz, gz]))
    for index in range(3):
        wms_api.set_stock(hz, f"STROLLER-{index}", 10 * (index + 1))
    wms_api.set_stock(gz, "STROLLER-0", 4)
    carrier_api, carrier_credentials = simulators(carrier.launch({hz: {"CN": 60.0, "CN/浙江": 12.0}, gz: {"CN": 48.0}}))
    attendance_api, attendance_credentials = simulators(attendance.launch({hz: (40, 450), gz: (12, 380)}))
    quality_api, quality_credentials = simulators(quality.launch({hz: (2000, 14), gz: (0, 0)}))
    for source, credentials in (("wms", wms_credentials), ("carrier", carrier_credentials),
                                ("attendance", attendance_credentials), ("quality", quality_credentials)):
        store_source_secret(source, credentials)
    # AND a reservation holding 3 strollers in Hangzhou, which the WMS sync must keep
    inventory = InventoryTable(get_settings().inventory_table)
    inventory.set_on_hand(hz, "STROLLER-0", 5)
    before = datetime.now(UTC) - timedelta(seconds=1)

    # WHEN the scheduled feed runs once per source
    outcomes = {source: cloud.invoke("FeedFunction", {"source": source})
                for source in ("wms", "carrier", "attendance", "quality")}

    # THEN every source refreshed
    assert {source: outcome["state"] for source, outcome in outcomes.items()} == dict.fromkeys(outcomes, "refreshed")
    assert outcomes["wms"]["skus_synced"] == 4 and sorted(outcomes["wms"]["warehouses"]) == sorted([hz, gz])
    # AND the Inventory table holds the WMS's on-hand counts
    levels = inventory.levels([(hz, f"STROLLER-{i}") for i in range(3)] + [(gz, "STROLLER-0")])
    assert {(w, s): level.on_hand for (w, s), level in levels.items()} == {
        (hz, "STROLLER-0"): 10, (hz, "STROLLER-1"): 20, (hz, "STROLLER-2"): 30, (gz, "STROLLER-0"): 4}
    # AND each snapshot holds the source's values with its as_of
    snapshot = {source: facts().read_source(source) for source in ("stock", "delivery", "labour", "error")}
    assert {key: value for key, (value, _) in snapshot["stock"].items()} == {hz: 3, gz: 1}
    assert {key: value for key, (value, _) in snapshot["delivery"].items()} == {
        f"{hz}#CN": Decimal(60), f"{hz}#CN/浙江": Decimal(12), f"{gz}#CN": Decimal(48)}
    assert {key: value for key, (value, _) in snapshot["labour"].items()} == {
        hz: {"staff_on_shift": 40, "orders_per_staff_day": 450},
        gz: {"staff_on_shift": 12, "orders_per_staff_day": 380}}
    assert {key: value for key, (value, _) in snapshot["error"].items()} == {hz: Decimal("0.007"), gz: Decimal(0)}
    # AND the day's roster is the KPIs' staff-days (52 people on shift across both warehouses)
    from oms.adapters.kpi_counters_table import KpiCountersTable

    roster_day = datetime.now(UTC).date()
    assert KpiCountersTable(get_settings().kpi_table).staff_days(roster_day, roster_day) == {roster_day: 52}
    for rows in snapshot.values():
        assert all(before <= as_of <= datetime.now(UTC) for _, as_of in rows.values())
    # AND every source was asked exactly as often as needed, with no refusals
    assert wms_api.stats.count("ok") == 2 and carrier_api.stats.count("ok") == 2
    assert attendance_api.stats.count("ok") == quality_api.stats.count("ok") == 1


def test_the_wms_sync_keeps_reservations_and_zeroes_what_the_wms_no_longer_lists(cloud, simulators):
    # GIVEN a warehouse where 3 of 10 units are held by an order, and a SKU the WMS has stopped listing
    warehouse = f"WH-{uuid.uuid4().hex[:6]}"
    register_warehouse(warehouse, ["CN"])
    wms_api, credentials = simulators(wms.launch([warehouse]))
    wms_api.set_stock(warehouse, "HELD", 8)
    store_source_secret("wms", credentials)
    inventory = InventoryTable(get_settings().inventory_table)
    inventory.set_on_hand(warehouse, "HELD", 10)
    inventory.set_on_hand(warehouse, "DELISTED", 6)
    _hold(warehouse, "HELD", 3)

    # WHEN the WMS feed runs
    outcome = cloud.invoke("FeedFunction", {"source": "wms"})

    # THEN on hand follows the WMS, the held units stay held, and the delisted SKU has none left
    levels = inventory.levels([(warehouse, "HELD"), (warehouse, "DELISTED")])
    assert (levels[(warehouse, "HELD")].on_hand, levels[(warehouse, "HELD")].reserved) == (8, 3)
    assert levels[(warehouse, "HELD")].available == 5
    assert levels[(warehouse, "DELISTED")].on_hand == 0
    assert outcome["skus_zeroed"] == 1


def _hold(warehouse_id: str, sku: str, units: int) -> None:
    """Units held by an order, as a reservation leaves the stock row (reserved and available moved together)."""
    aws.client("dynamodb").update_item(
        TableName=get_settings().inventory_table,
        Key={"stock_id": {"S": f"{warehouse_id}#{sku}"}, "entry": {"S": "stock"}},
        UpdateExpression="SET reserved = :units, available = available - :units ADD version :one",
        ExpressionAttributeValues={":units": {"N": str(units)}, ":one": {"N": "1"}},
    )


def test_a_warehouse_the_wms_does_not_know_fails_the_run_after_the_others_are_synced(cloud, simulators):
    # GIVEN two registered warehouses, only one of them served by the WMS
    known, unknown = f"WH-{uuid.uuid4().hex[:6]}", f"WH-{uuid.uuid4().hex[:6]}"
    register_warehouse(known, ["CN"])
    register_warehouse(unknown, ["CN"])
    wms_api, credentials = simulators(wms.launch([known]))
    wms_api.set_stock(known, "SKU-1", 2)
    store_source_secret("wms", credentials)
    # WHEN the WMS feed runs  THEN the invocation fails naming the unknown warehouse
    with pytest.raises(PartialFeedError, match=unknown):
        cloud.invoke("FeedFunction", {"source": "wms"})
    # AND the known one was synced all the same
    assert set(facts().read_source("stock")) == {known}
    assert InventoryTable(get_settings().inventory_table).levels([(known, "SKU-1")])[(known, "SKU-1")].on_hand == 2


def test_a_source_with_neither_a_url_nor_a_secret_is_reported_not_configured(cloud):
    # GIVEN the template's default: no carrier API URL, and no secret
    delete_source_secret("carrier")
    # WHEN its feed runs  THEN it says so and writes nothing
    outcome = cloud.invoke("FeedFunction", {"source": "carrier"})
    assert outcome["state"] == "not_configured"
    assert facts().read_source("delivery") == {}


def test_the_secrets_base_url_wins_over_the_settings_url(cloud_factory, simulators):
    # GIVEN a deployment whose settings name a quality API nobody answers at, and a secret naming the real one
    local = cloud_factory(QualityApiUrl="http://127.0.0.1:9")
    _, credentials = simulators(quality.launch({"WH-A": (100, 5)}))
    store_source_secret("quality", credentials)
    # WHEN the feed runs  THEN it reached the secret's API
    assert local.invoke("FeedFunction", {"source": "quality"})["state"] == "refreshed"
    assert facts().read_source("error")["WH-A"][0] == Decimal("0.05")


def test_a_settings_url_without_a_key_in_secrets_manager_fails_clearly(cloud_factory):
    local = cloud_factory(AttendanceApiUrl="http://127.0.0.1:9")
    delete_source_secret("attendance")
    with pytest.raises(SourceError, match="holds no api_key"):
        local.invoke("FeedFunction", {"source": "attendance"})


def test_an_unknown_source_is_refused_with_the_known_ones(cloud):
    with pytest.raises(ValidationError, match="known sources: wms, carrier, attendance, quality"):
        cloud.invoke("FeedFunction", {"source": "weather"})


def test_a_failing_source_fails_the_invocation_and_leaves_the_snapshot_alone(cloud, simulators):
    # GIVEN a labour snapshot from an earlier run, and an attendance API that now refuses our key
    facts().put_source("labour", {"WH-A": {"staff_on_shift": 3, "orders_per_staff_day": 100}},
                       datetime(2026, 11, 1, tzinfo=UTC))
    _, credentials = simulators(attendance.launch({"WH-A": (30, 400)}))
    store_source_secret("attendance", {**credentials, "api_key": "revoked"})
    # WHEN the feed runs  THEN the invocation fails and the old snapshot is still there, as old as it was
    with pytest.raises(SourceError, match="401"):
        cloud.invoke("FeedFunction", {"source": "attendance"})
    assert facts().read_source("labour")["WH-A"][1] == datetime(2026, 11, 1, tzinfo=UTC)


# WMS shipments ---------------------------------------------------------------------------------------------


class ShippingWarehouse:
    """One warehouse with 10 kettles in our Inventory table, its WMS (on a clock the test moves) registered
    by its secret, and allocation's ports, as the AllocationFunction builds them."""

    def __init__(self, cloud, simulators):
        self.cloud = cloud
        self.warehouse_id = f"WH-{uuid.uuid4().hex[:6]}"
        load_catalogue([WarehouseSetup(self.warehouse_id, ("CN",), {"KETTLE": 10}, transit_hours={"CN": 24.0})],
                       {"KETTLE-1L": [("KETTLE", 1)]})
        # The WMS's clock runs 4 h behind ours (with milliseconds), so what it ships is in our past.
        self.clock = ManualWallClock(datetime.now(UTC).replace(microsecond=250_000) - timedelta(hours=4))
        self.wms, credentials = simulators(wms.launch([self.warehouse_id], clock=self.clock))
        store_source_secret("wms", credentials)
        self.ports = allocation_ports(get_settings())

    def allocated_order(self, units: int) -> str:
        order = paid_order("taobao", [("KETTLE-1L", units)])
        store([order])
        outcome = allocate_order(order_to_allocate(_plain(stored_image(self.cloud, order.order_key))), self.ports)
        assert outcome.state == "allocated" and outcome.warehouses == [self.warehouse_id]
        return order.order_key

    def stock(self) -> dict:
        return stock_rows(self.cloud)[f"{self.warehouse_id}#KETTLE"]


def _plain(image: dict) -> dict:
    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in image.items()}


def test_a_wms_shipment_deducts_the_held_units_and_ships_the_order_at_the_wms_time(cloud, simulators):
    # GIVEN an order holding 2 of the warehouse's 10 kettles, confirmed by its WMS, and released to it for
    # picking (ready to ship), which it ships 3 h later
    warehouse = ShippingWarehouse(cloud, simulators)
    warehouse.wms.configure_warehouse(warehouse.warehouse_id, ship_after=timedelta(hours=3), carrier="ZTO")
    order_key = warehouse.allocated_order(2)
    assert release_to_warehouse(order_key, warehouse.ports).state == "released_to_warehouse"
    assert warehouse.stock() == {"on_hand": 10, "reserved": 2, "available": 8, "lines": 2}
    warehouse.clock.advance(timedelta(hours=3, seconds=1))
    [parcel] = warehouse.wms.shipments(warehouse.warehouse_id)

    # WHEN the shipments feed runs (its scheduled event)
    outcome = cloud.invoke("FeedFunction", SHIPMENTS_EVENT)

    # THEN the shipment was recorded: the reservation is deducted, on hand and reserved both went down by 2
    assert (outcome["state"], outcome["shipments_recorded"], outcome["shipments_unmatched"]) == ("refreshed", 1, 0)
    assert reservation(cloud, order_key)["state"]["S"] == "deducted"
    assert warehouse.stock() == {"on_hand": 8, "reserved": 0, "available": 8, "lines": 0}
    # AND the order is shipped at the WMS's time, to the millisecond, with the parcel's tracking number
    image = stored_image(cloud, order_key)
    assert image["fulfillment_status"]["S"] == "shipped"
    assert image["shipped_at"]["S"] == iso(parcel.shipped_at) == iso(warehouse.clock.now() - timedelta(seconds=1))
    assert _plain(image)["shipment"] == {"warehouse_id": warehouse.warehouse_id, "reservation_id": f"{order_key}#v1",
                                         "tracking_number": parcel.tracking_number, "carrier": "ZTO"}
    # AND the warehouse's cursor is that shipment's time
    assert facts().read_source("shipments")[warehouse.warehouse_id][0] == cursor_value(parcel.shipped_at)

    # WHEN the feed runs again  THEN it reads the shipment again and changes nothing
    again = cloud.invoke("FeedFunction", SHIPMENTS_EVENT)
    assert (again["shipments_recorded"], again["shipments_already_recorded"]) == (0, 1)
    assert stored_image(cloud, order_key) == image
    assert warehouse.stock() == {"on_hand": 8, "reserved": 0, "available": 8, "lines": 0}


def test_shipments_of_orders_we_do_not_hold_are_reported_and_the_others_recorded(cloud, simulators):
    # GIVEN four parcels shipped by the WMS: an order we hold, one the channel cancelled after the parcel
    # left (we released its units), one we never heard of, and a hold of an order that we know by another
    # reservation (not the one we hold)
    warehouse = ShippingWarehouse(cloud, simulators)
    wms_id = warehouse.warehouse_id
    shipped_key, cancelled_key, other_key = (warehouse.allocated_order(n) for n in (1, 3, 1))
    stranger = f"taobao#alloc#{uuid.uuid4().hex[:8]}"
    client = WmsClient(SourceHttp(SourceEndpoint("wms", warehouse.wms.url, warehouse.wms.api_key)))
    client.request_confirmation(wms_id, f"{stranger}#v1", stranger, {"KETTLE": 1}, timeout_seconds=2)
    client.request_confirmation(wms_id, f"{other_key}#v7", other_key, {"KETTLE": 1}, timeout_seconds=2)
    for reservation_id in (f"{cancelled_key}#v1", f"{stranger}#v1", f"{other_key}#v7", f"{shipped_key}#v1"):
        warehouse.wms.ship(wms_id, reservation_id)
        warehouse.clock.advance(1)
    assert release_order(cancelled_key, "order cancelled", warehouse.ports).state == "released"

    # WHEN the shipments feed runs
    outcome = cloud.invoke("FeedFunction", SHIPMENTS_EVENT)

    # THEN it succeeds: the held order is recorded, the three others are counted and named with their reason
    assert (outcome["state"], outcome["shipments_recorded"], outcome["shipments_unmatched"]) == ("refreshed", 1, 3)
    assert outcome["unmatched"] == {f"{wms_id}/{cancelled_key}#v1": "released",
                                    f"{wms_id}/{stranger}#v1": "no_reservation",
                                    f"{wms_id}/{other_key}#v7": "other_reservation"}
    assert stored_image(cloud, shipped_key)["fulfillment_status"]["S"] == "shipped"
    # AND nothing was written for them: the cancelled order's units stay released, the stranger gets no record,
    # the other order still holds its unit
    assert reservation(cloud, cancelled_key)["state"]["S"] == "released" and reservation(cloud, stranger) is None
    assert "shipped_at" not in stored_image(cloud, cancelled_key)
    assert reservation(cloud, other_key)["state"]["S"] == "confirmed"
    assert stored_image(cloud, other_key)["fulfillment_status"]["S"] == "allocated"
    assert warehouse.stock() == {"on_hand": 9, "reserved": 1, "available": 8, "lines": 1}


def test_a_shipment_the_channel_reported_first_changes_nothing_when_the_wms_reports_it(cloud, simulators):
    # GIVEN an order the channel reported shipped (the Orders stream's deduct step ran)
    warehouse = ShippingWarehouse(cloud, simulators)
    order_key = warehouse.allocated_order(2)
    assert deduct_order(order_key, warehouse.ports).state == "deducted"
    image = stored_image(cloud, order_key)
    # WHEN the WMS's shipment of it is read afterwards
    warehouse.wms.ship(warehouse.warehouse_id, f"{order_key}#v1")
    outcome = cloud.invoke("FeedFunction", SHIPMENTS_EVENT)
    # THEN it is found recorded: no second deduction, the order as the channel's report left it
    assert (outcome["shipments_recorded"], outcome["shipments_already_recorded"], outcome["failed"]) == (0, 1, {})
    assert warehouse.stock() == {"on_hand": 8, "reserved": 0, "available": 8, "lines": 0}
    assert stored_image(cloud, order_key) == image and image["fulfillment_status"]["S"] == "shipped"


# The FactsTable adapter ------------------------------------------------------------------------------------


def test_put_source_writes_in_batches_and_removes_the_rows_no_longer_there(cloud):
    # GIVEN 60 rows written (three BatchWriteItem chunks)
    table, as_of = facts(), datetime(2026, 11, 11, 2, 0, 0, 123000, tzinfo=UTC)
    table.put_source("delivery", {f"WH-{i:02d}#CN": 24.5 + i for i in range(60)}, as_of)
    # WHEN the next snapshot has only 10 of them, and a pruning rule that spares WH-5x
    removed = table.put_source("delivery", {f"WH-{i:02d}#CN": Decimal(20) for i in range(10)}, as_of,
                               prune=lambda key: not key.startswith("WH-5"))
    # THEN 40 were removed, the 10 spared ones and the 10 written are there, with their as_of to the millisecond
    rows = table.read_source("delivery")
    assert removed == 40
    assert sorted(rows) == [f"WH-{i:02d}#CN" for i in [*range(10), *range(50, 60)]]
    assert rows["WH-00#CN"] == (Decimal(20), as_of)
    assert rows["WH-55#CN"][0] == Decimal("79.5")


def test_allocation_counts_add_up_per_warehouse_and_day(cloud):
    table = facts()
    day, next_day = date(2026, 11, 11), date(2026, 11, 12)
    for warehouse_id, count in (("WH-A", 1), ("WH-A", 4), ("WH-B", 2)):
        table.add_allocated(warehouse_id, day, count)
    table.add_allocated("WH-A", next_day)
    assert table.allocated_on(day) == {"WH-A": 5, "WH-B": 2}
    assert table.allocated_on(next_day) == {"WH-A": 1}
    assert table.allocated_on(date(2026, 11, 13)) == {}


def test_business_day_used_by_the_attendance_feed_matches_the_simulators_date(cloud, simulators):
    # GIVEN a roster for today's China business day only
    simulator, credentials = simulators(attendance.launch())
    simulator.set_attendance("WH-A", 9, 300, day=business_day(datetime.now(UTC)))
    store_source_secret("attendance", credentials)
    # WHEN the feed runs THEN that day's roster is the snapshot
    assert cloud.invoke("FeedFunction", {"source": "attendance"})["rows_written"] == 1
    assert facts().read_source("labour")["WH-A"][0] == {"staff_on_shift": 9, "orders_per_staff_day": 300}
