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
from oms.services.feeds import FeedPorts, PartialFeedError, refresh_source
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

    def set_on_hand(self, warehouse_id, sku, on_hand):
        self.on_hand[(warehouse_id, sku)] = on_hand

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


# Not configured ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["wms", "carrier", "attendance", "quality"])
def test_a_source_without_a_client_is_reported_as_not_configured_and_nothing_is_written(source):
    facts = MemoryFacts()
    outcome = refresh_source(source, FeedPorts(facts=facts, warehouses=MemoryWarehouses("WH-A")), T0)
    assert outcome.state == "not_configured" and outcome.as_dict()["state"] == "not_configured"
    assert facts.rows == {}


def test_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match="unknown source"):
        refresh_source("weather", FeedPorts(facts=MemoryFacts(), warehouses=MemoryWarehouses()), T0)
