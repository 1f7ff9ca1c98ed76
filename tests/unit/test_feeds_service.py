"""refresh_source end to end through the real clients and simulators, with in-memory stand-ins for the
three tables (the DynamoDB adapters are tested against the local cloud in tests/integration/test_feeds.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from oms.adapters.sources import SourceEndpoint, SourceError, SourceHttp
from oms.adapters.sources.attendance import AttendanceClient
from oms.adapters.sources.carrier import CarrierClient
from oms.adapters.sources.quality import QualityClient
from oms.adapters.sources.wms import WmsClient
from oms.services.feeds import FeedPorts, PartialFeedError, ShipmentRecorded, cursor_value, refresh_source
from omsdev.simulators import attendance, carrier, quality, wms
from omsdev.simulators.base import Reply
from omsdev.simulators.sources_common import ManualWallClock

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
LONG_AGO = datetime(2026, 11, 1, tzinfo=UTC)


class MemoryFacts:
    """The FactsStore port in memory: source -> key -> (value, as_of)."""

    def __init__(self):
        self.rows: dict[str, dict[str, tuple[object, datetime]]] = {}

    def put_source(self, source, rows, as_of, *, prune=None):
        partition = self.rows.setdefault(source, {})
        partition.update({key: (value, as_of) for key, value in rows.items()})
        stale = [key for key in partition if key not in rows and (prune is None or prune(key))]
        return self.delete_rows(source, stale)

    def put_row(self, source, key, value, as_of):
        self.rows.setdefault(source, {})[key] = (value, as_of)

    def read_source(self, source):
        return dict(self.rows.get(source, {}))

    def delete_rows(self, source, keys):
        keys = list(keys)
        for key in keys:
            self.rows.get(source, {}).pop(key, None)
        return len(keys)


class MemoryWarehouses:
    def __init__(self, *warehouse_ids: str):
        self.ids = warehouse_ids

    def list(self):
        return [{"warehouse_id": warehouse_id, "regions": {"CN"}, "daily_capacity": Decimal(1000)}
                for warehouse_id in self.ids]


class MemoryLedger:
    def __init__(self):
        self.on_hand: dict[tuple[str, str], int] = {}

    def set_on_hand(self, warehouse_id, sku, on_hand, counted_at=None):
        self.on_hand[(warehouse_id, sku)] = on_hand
        return True

    def skus_in_stock(self, warehouse_id):
        return {sku for (warehouse, sku), units in self.on_hand.items() if warehouse == warehouse_id and units > 0}


def http(credentials: dict, source: str) -> SourceHttp:
    return SourceHttp(SourceEndpoint(source, credentials["base_url"], credentials["api_key"]), max_attempts=2)


@pytest.fixture
def clock() -> ManualWallClock:
    return ManualWallClock(T0)


@pytest.fixture
def started():
    simulators = []

    def start(launched):
        simulators.append(launched[0])
        return launched

    yield start
    for simulator in simulators:
        simulator.stop()


# WMS stock -------------------------------------------------------------------------------------------


def test_the_wms_feed_mirrors_every_warehouses_stock_and_stamps_its_sync(started, clock):
    # GIVEN two warehouses in the WMS, one with more SKUs than a page holds
    simulator, credentials = started(wms.launch(["WH-A", "WH-B"], clock=clock))
    for index in range(5):
        simulator.set_stock("WH-A", f"SKU-{index}", index)
    simulator.set_stock("WH-B", "SKU-0", 7)
    ports = FeedPorts(facts=MemoryFacts(), warehouses=MemoryWarehouses("WH-A", "WH-B"),
                      wms=WmsClient(http(credentials, "wms"), page_size=2), inventory=MemoryLedger())
    # WHEN the feed runs
    outcome = refresh_source("wms", ports, T0 + timedelta(seconds=5))
    # THEN on hand is mirrored per SKU, and each warehouse's stock row counts its SKUs as of the WMS's time
    assert ports.inventory.on_hand == {**{("WH-A", f"SKU-{i}"): i for i in range(5)}, ("WH-B", "SKU-0"): 7}
    assert ports.facts.read_source("stock") == {"WH-A": (5, T0), "WH-B": (1, T0)}
    assert (outcome.state, outcome.warehouses, outcome.skus_synced, outcome.as_of) == (
        "refreshed", ("WH-A", "WH-B"), 6, T0)


def test_a_sku_the_wms_stopped_listing_is_set_to_zero_on_hand(started, clock):
    # GIVEN a SKU we count 12 of, which the WMS no longer lists
    simulator, credentials = started(wms.launch(["WH-A"], clock=clock))
    simulator.set_stock("WH-A", "SKU-KEPT", 3)
    ledger = MemoryLedger()
    ledger.set_on_hand("WH-A", "SKU-GONE", 12)
    ports = FeedPorts(facts=MemoryFacts(), warehouses=MemoryWarehouses("WH-A"),
                      wms=WmsClient(http(credentials, "wms")), inventory=ledger)
    # WHEN the feed runs  THEN it is zeroed (it is not on the shelves any more) and counted as such
    outcome = refresh_source("wms", ports, T0)
    assert ledger.on_hand == {("WH-A", "SKU-KEPT"): 3, ("WH-A", "SKU-GONE"): 0}
    assert outcome.skus_zeroed == 1


def test_one_failing_warehouse_does_not_stop_the_others_and_the_feed_then_fails_naming_it(started, clock):
    # GIVEN three registered warehouses, one unknown to the WMS; old stock rows for it and for a removed one
    simulator, credentials = started(wms.launch(["WH-A", "WH-B"], clock=clock))
    simulator.set_stock("WH-A", "SKU-1", 1)
    simulator.set_stock("WH-B", "SKU-1", 2)
    facts = MemoryFacts()
    facts.put_row("stock", "WH-C", 40, LONG_AGO)
    facts.put_row("stock", "WH-RETIRED", 9, LONG_AGO)
    ports = FeedPorts(facts=facts, warehouses=MemoryWarehouses("WH-A", "WH-B", "WH-C"),
                      wms=WmsClient(http(credentials, "wms")), inventory=MemoryLedger())
    # WHEN the feed runs
    with pytest.raises(PartialFeedError) as raised:
        refresh_source("wms", ports, T0)
    # THEN the others were synced, the failed one keeps its old (aging) row, the retired one's row is gone
    assert list(raised.value.failed) == ["WH-C"] and "warehouse_not_found" in str(raised.value)
    assert raised.value.outcome.warehouses == ("WH-A", "WH-B")
    assert ports.inventory.on_hand == {("WH-A", "SKU-1"): 1, ("WH-B", "SKU-1"): 2}
    assert facts.read_source("stock") == {"WH-A": (1, T0), "WH-B": (1, T0), "WH-C": (40, LONG_AGO)}


# Carrier ---------------------------------------------------------------------------------------------------


def test_transit_times_become_delivery_rows_and_a_failed_origin_keeps_its_old_rows(started, clock):
    # GIVEN routes from WH-A (one region dropped since the last run) and none from WH-B (unknown origin)
    _, credentials = started(carrier.launch({"WH-A": {"CN": 60.0, "CN/浙江": 18.5}}, clock=clock))
    facts = MemoryFacts()
    facts.put_source("delivery", {"WH-A#CN/广东": Decimal(30), "WH-B#CN": Decimal(50)}, LONG_AGO)
    ports = FeedPorts(facts=facts, warehouses=MemoryWarehouses("WH-A", "WH-B"),
                      carrier=CarrierClient(http(credentials, "carrier")))
    # WHEN the feed runs
    with pytest.raises(PartialFeedError, match="WH-B"):
        refresh_source("carrier", ports, T0)
    # THEN WH-A's routes are replaced, WH-B's stay as they were
    assert facts.read_source("delivery") == {
        "WH-A#CN": (Decimal("60.0"), T0), "WH-A#CN/浙江": (Decimal("18.5"), T0), "WH-B#CN": (Decimal(50), LONG_AGO)}


# Attendance -----------------------------------------------------------------------------------------------


def test_attendance_is_read_for_the_china_business_day(started, clock):
    # GIVEN a roster for Double 11 only; it is 17:30 UTC on the 10th, already the 11th in China
    simulator, credentials = started(attendance.launch(clock=clock))
    simulator.set_attendance("WH-A", 45, 420, day=date(2026, 11, 11))
    facts = MemoryFacts()
    facts.put_source("labour", {"WH-GONE": {"staff_on_shift": 1, "orders_per_staff_day": 1}}, LONG_AGO)
    ports = FeedPorts(facts=facts, warehouses=MemoryWarehouses(),
                      attendance=AttendanceClient(http(credentials, "attendance")))
    # WHEN the feed runs
    outcome = refresh_source("attendance", ports, datetime(2026, 11, 10, 17, 30, tzinfo=UTC))
    # THEN it read that day's roster, and the snapshot is exactly it
    assert facts.read_source("labour") == {"WH-A": ({"staff_on_shift": 45, "orders_per_staff_day": 420}, T0)}
    assert (outcome.rows_written, outcome.rows_removed) == (1, 1)


def test_an_attendance_answer_for_another_day_is_refused(started, clock):
    class OffByOne(attendance.AttendanceSimulator):
        def _attendance(self, request):
            return Reply(200, {"date": "2026-11-10", "warehouses": [], "as_of": "2026-11-11T00:00:00Z"})

    simulator = OffByOne(clock=clock).start()
    started((simulator, simulator.credentials()))
    ports = FeedPorts(facts=MemoryFacts(), warehouses=MemoryWarehouses(),
                      attendance=AttendanceClient(http(simulator.credentials(), "attendance")))
    with pytest.raises(SourceError, match="asked for 2026-11-11"):
        refresh_source("attendance", ports, T0)
    assert ports.facts.rows == {}


# Quality --------------------------------------------------------------------------------------------------


def test_quality_reports_become_error_rates(started, clock):
    _, credentials = started(quality.launch({"WH-A": (1000, 12), "WH-B": (0, 0)}, clock=clock))
    facts = MemoryFacts()
    ports = FeedPorts(facts=facts, warehouses=MemoryWarehouses(), quality=QualityClient(http(credentials, "quality")))
    outcome = refresh_source("quality", ports, T0)
    assert facts.read_source("error") == {"WH-A": (Decimal("0.012"), T0), "WH-B": (Decimal(0), T0)}
    assert outcome.as_of == T0


def test_a_failed_source_raises_and_writes_nothing(started, clock):
    simulator, credentials = started(quality.launch({"WH-A": (10, 1)}, clock=clock))
    facts = MemoryFacts()
    ports = FeedPorts(facts=facts, warehouses=MemoryWarehouses(),
                      quality=QualityClient(http({**credentials, "api_key": "revoked"}, "quality")))
    with pytest.raises(SourceError, match="401"):
        refresh_source("quality", ports, T0)
    assert facts.rows == {}


# WMS shipments ------------------------------------------------------------------------------------------------


class MemoryShipping:
    """allocation's record_shipment in memory: the orders we hold, each recorded once; `failing` orders
    raise as a storage error would."""

    def __init__(self, *held: str, failing: tuple[str, ...] = ()):
        self.held, self.failing = set(held), set(failing)
        self.recorded: dict[str, object] = {}
        self.calls: list[str] = []

    def __call__(self, shipment):
        self.calls.append(shipment.reservation_id)
        if shipment.order_key in self.failing:
            raise ConnectionError(f"could not record {shipment.order_key}")
        if shipment.order_key in self.recorded:
            return ShipmentRecorded("already_recorded")
        if shipment.order_key not in self.held:
            return ShipmentRecorded("unmatched", "no_reservation")
        self.recorded[shipment.order_key] = shipment
        return ShipmentRecorded("recorded")


def shipped(simulator, warehouse_id: str, order_key: str, at: datetime, client: WmsClient) -> str:
    """A reservation of `order_key` confirmed by the WMS and shipped at `at`; its reservation id."""
    reservation_id = f"{order_key}#v1"
    client.request_confirmation(warehouse_id, reservation_id, order_key, {"SKU-1": 1}, timeout_seconds=2)
    simulator.ship(warehouse_id, reservation_id, at)
    return reservation_id


def test_the_shipments_feed_records_each_shipment_and_moves_each_warehouses_cursor(started, clock):
    # GIVEN WH-A shipped three orders (more than a page), WH-B one
    simulator, credentials = started(wms.launch(["WH-A", "WH-B"], clock=clock))
    client = WmsClient(http(credentials, "wms"), page_size=2)
    for key, minutes in (("a1", -30), ("a2", -10), ("a3", -2)):
        shipped(simulator, "WH-A", key, T0 + timedelta(minutes=minutes), client)
    shipped(simulator, "WH-B", "b1", T0 - timedelta(minutes=1), client)
    shipping = MemoryShipping("a1", "a2", "a3", "b1")
    facts = MemoryFacts()
    ports = FeedPorts(facts=facts, warehouses=MemoryWarehouses("WH-A", "WH-B"), shipments=client,
                      record_shipment=shipping)
    # WHEN the feed runs
    outcome = refresh_source("shipments", ports, T0)
    # THEN every shipment reached allocation with the warehouse's details
    assert sorted(shipping.recorded) == ["a1", "a2", "a3", "b1"]
    first = shipping.recorded["a1"]
    assert (first.warehouse_id, first.reservation_id, first.shipped_at, first.carrier) == (
        "WH-A", "a1#v1", T0 - timedelta(minutes=30), "SF")
    # AND each warehouse's cursor is its latest shipment, as of the WMS's time
    assert facts.read_source("shipments") == {"WH-A": (cursor_value(T0 - timedelta(minutes=2)), T0),
                                              "WH-B": (cursor_value(T0 - timedelta(minutes=1)), T0)}
    assert (outcome.state, outcome.warehouses, outcome.shipments_recorded, outcome.shipments_unmatched) == (
        "refreshed", ("WH-A", "WH-B"), 4, 0)
    # WHEN it runs again
    shipping.calls.clear()
    again = refresh_source("shipments", ports, T0 + timedelta(minutes=1))
    # THEN it read only the last 5 minutes before each cursor again, and recorded nothing new
    assert sorted(shipping.calls) == ["a3#v1", "b1#v1"]
    assert (again.shipments_recorded, again.shipments_already_recorded) == (0, 2)


def test_a_shipment_at_the_cursors_instant_or_scanned_a_little_late_is_not_lost(started, clock):
    # GIVEN a first run that left WH-A's cursor at T0 - 2 min
    simulator, credentials = started(wms.launch(["WH-A"], clock=clock))
    client = WmsClient(http(credentials, "wms"))
    shipped(simulator, "WH-A", "first", T0 - timedelta(minutes=2), client)
    shipping = MemoryShipping("first", "same-instant", "late-scan")
    ports = FeedPorts(facts=MemoryFacts(), warehouses=MemoryWarehouses("WH-A"), shipments=client,
                      record_shipment=shipping)
    refresh_source("shipments", ports, T0)
    # WHEN the WMS then lists one shipment at that very instant and one 4 minutes before it (scanned late)
    shipped(simulator, "WH-A", "same-instant", T0 - timedelta(minutes=2), client)
    shipped(simulator, "WH-A", "late-scan", T0 - timedelta(minutes=6), client)
    outcome = refresh_source("shipments", ports, T0 + timedelta(minutes=1))
    # THEN both are recorded
    assert sorted(shipping.recorded) == ["first", "late-scan", "same-instant"]
    assert outcome.shipments_recorded == 2


def test_a_shipment_of_an_order_we_do_not_hold_is_counted_and_named_and_the_others_are_recorded(started, clock):
    simulator, credentials = started(wms.launch(["WH-A"], clock=clock))
    client = WmsClient(http(credentials, "wms"))
    for minutes, key in enumerate(("ours-1", "stranger", "ours-2")):
        shipped(simulator, "WH-A", key, T0 - timedelta(minutes=10 - minutes), client)
    shipping = MemoryShipping("ours-1", "ours-2")
    facts = MemoryFacts()
    ports = FeedPorts(facts=facts, warehouses=MemoryWarehouses("WH-A"), shipments=client, record_shipment=shipping)
    # WHEN the feed runs  THEN it does not fail; the stranger is counted and named with the reason, and the cursor
    # moved past all three
    outcome = refresh_source("shipments", ports, T0)
    assert sorted(shipping.recorded) == ["ours-1", "ours-2"]
    assert (outcome.shipments_recorded, outcome.shipments_unmatched) == (2, 1)
    assert outcome.unmatched == {"WH-A/stranger#v1": "no_reservation"}
    assert outcome.as_dict()["unmatched"] == {"WH-A/stranger#v1": "no_reservation"}
    assert facts.read_source("shipments")["WH-A"][0] == cursor_value(T0 - timedelta(minutes=8))


def test_a_shipment_that_cannot_be_recorded_holds_its_warehouses_cursor_and_fails_the_run_after_the_others(
        started, clock):
    # GIVEN WH-A's second page holds a shipment whose recording fails, WH-B is fine, WH-C unknown to the WMS
    simulator, credentials = started(wms.launch(["WH-A", "WH-B"], clock=clock))
    client = WmsClient(http(credentials, "wms"), page_size=2)
    for minutes, key in enumerate(("a1", "a2", "a3", "a4")):
        shipped(simulator, "WH-A", key, T0 - timedelta(minutes=20 - minutes), client)
    shipped(simulator, "WH-B", "b1", T0 - timedelta(minutes=1), client)
    shipping = MemoryShipping("a1", "a2", "a3", "a4", "b1", failing=("a3",))
    facts = MemoryFacts()
    ports = FeedPorts(facts=facts, warehouses=MemoryWarehouses("WH-A", "WH-B", "WH-C"), shipments=client,
                      record_shipment=shipping)
    # WHEN the feed runs
    with pytest.raises(PartialFeedError) as raised:
        refresh_source("shipments", ports, T0)
    # THEN it fails naming WH-A and WH-C, after WH-B's shipment was recorded
    assert sorted(raised.value.failed) == ["WH-A", "WH-C"] and "could not record a3" in raised.value.failed["WH-A"]
    assert raised.value.outcome.warehouses == ("WH-B",) and "b1" in shipping.recorded
    # AND WH-A's cursor stayed after its first page (a2), not past the shipment that failed
    assert facts.read_source("shipments")["WH-A"][0] == cursor_value(T0 - timedelta(minutes=19))
    # WHEN the trouble is over and the feed runs again  THEN it goes on from there: a3 is recorded (a4, on the
    # same page, was recorded in the failed run and is found recorded)
    shipping.failing.clear()
    ports.warehouses = MemoryWarehouses("WH-A", "WH-B")
    outcome = refresh_source("shipments", ports, T0 + timedelta(minutes=1))
    assert sorted(shipping.recorded) == ["a1", "a2", "a3", "a4", "b1"]
    assert (outcome.shipments_recorded, outcome.failed) == (1, {})
    assert facts.read_source("shipments")["WH-A"][0] == cursor_value(T0 - timedelta(minutes=17))


def test_a_warehouse_without_a_cursor_is_read_from_a_week_back(started, clock):
    simulator, credentials = started(wms.launch(["WH-A"], clock=clock))
    client = WmsClient(http(credentials, "wms"))
    shipped(simulator, "WH-A", "eight-days-ago", T0 - timedelta(days=8), client)
    shipped(simulator, "WH-A", "six-days-ago", T0 - timedelta(days=6), client)
    shipping = MemoryShipping("eight-days-ago", "six-days-ago")
    ports = FeedPorts(facts=MemoryFacts(), warehouses=MemoryWarehouses("WH-A"), shipments=client,
                      record_shipment=shipping)
    refresh_source("shipments", ports, T0)
    assert list(shipping.recorded) == ["six-days-ago"]


# Not configured ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["wms", "carrier", "attendance", "quality", "shipments"])
def test_a_source_without_a_client_is_reported_as_not_configured_and_nothing_is_written(source):
    facts = MemoryFacts()
    outcome = refresh_source(source, FeedPorts(facts=facts, warehouses=MemoryWarehouses("WH-A")), T0)
    assert outcome.state == "not_configured" and outcome.as_dict()["state"] == "not_configured"
    assert facts.rows == {}


def test_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match="unknown source"):
        refresh_source("weather", FeedPorts(facts=MemoryFacts(), warehouses=MemoryWarehouses()), T0)
