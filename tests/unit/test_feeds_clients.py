"""The data-source clients against started simulators (real HTTP on loopback): typed answers, paging,
retries of transient failures, Retry-After, the caller's time budget, and clear errors for bad answers."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from oms.adapters.sources import (
    SourceAuthError,
    SourceEndpoint,
    SourceError,
    SourceHttp,
    SourceNotFoundError,
    SourceRequestError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from oms.adapters.sources.attendance import AttendanceClient
from oms.adapters.sources.carrier import CarrierClient
from oms.adapters.sources.quality import QualityClient
from oms.adapters.sources.wms import WmsClient
from oms.services.feeds import (
    ConfirmationStatus,
    ShipmentLine,
    StaffLoad,
    StockCount,
    TransitRoute,
    WarehouseShipment,
)
from omsdev.simulators import attendance, carrier, quality
from omsdev.simulators.base import FaultPlan, Reply
from omsdev.simulators.carrier import CarrierSimulator
from omsdev.simulators.sources_common import ManualWallClock
from omsdev.simulators.wms import WmsSimulator

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


class ScriptedFaults(FaultPlan):
    """The faults of the next calls, in order; then none."""

    def __init__(self, *script: str | None, timeout_seconds: float = 3.0):
        super().__init__(timeout_seconds=timeout_seconds)
        self.script = list(script)

    def draw(self) -> str | None:
        with self._lock:
            return self.script.pop(0) if self.script else None


def http(simulator, source: str, *, api_key: str | None = None, **kwargs) -> SourceHttp:
    return SourceHttp(SourceEndpoint(source, simulator.url, api_key or simulator.api_key), **kwargs)


@pytest.fixture
def clock() -> ManualWallClock:
    return ManualWallClock(T0)


@pytest.fixture
def wms_simulator(clock):
    with WmsSimulator(warehouses=["WH-A"], clock=clock) as simulator:
        yield simulator


# WMS stock -------------------------------------------------------------------------------------------


def test_the_inventory_is_read_page_by_page_into_stock_counts(wms_simulator):
    # GIVEN 5 SKUs in the WMS
    for index in range(5):
        wms_simulator.set_stock("WH-A", f"SKU-{index}", 10 + index)
    client = WmsClient(http(wms_simulator, "wms"), page_size=2)
    # WHEN the client reads the inventory
    pages = list(client.inventory("WH-A"))
    # THEN it followed every page token, and each page is typed with the WMS's as_of
    assert [len(page.items) for page in pages] == [2, 2, 1]
    assert [item for page in pages for item in page.items] == [StockCount(f"SKU-{i}", 10 + i) for i in range(5)]
    assert all(page.as_of == T0 for page in pages)
    assert wms_simulator.stats.count("ok") == 3


def test_an_inventory_answer_that_breaks_the_contract_is_a_source_error_naming_the_field(clock):
    # GIVEN a WMS that answers a negative on-hand
    class BrokenWms(WmsSimulator):
        def _inventory(self, request, warehouse_id):
            return Reply(200, {"items": [{"sku": "A", "on_hand": -3, "updated_at": "2026-11-11T00:00:00Z"}],
                               "next_page_token": None, "as_of": "2026-11-11T00:00:00Z"})

    with BrokenWms(warehouses=["WH-A"], clock=clock) as simulator:
        # WHEN the client reads it  THEN it refuses the answer and says where it is wrong
        with pytest.raises(SourceError, match=r"items\.0\.on_hand"):
            list(WmsClient(http(simulator, "wms")).inventory("WH-A"))


def test_an_unknown_warehouse_is_a_not_found_error_without_retries(wms_simulator):
    with pytest.raises(SourceNotFoundError, match="warehouse_not_found"):
        list(WmsClient(http(wms_simulator, "wms")).inventory("WH-NOPE"))
    assert wms_simulator.stats.total == 1


def test_a_refused_key_is_an_auth_error_without_retries(wms_simulator):
    with pytest.raises(SourceAuthError, match="unauthorized"):
        list(WmsClient(http(wms_simulator, "wms", api_key="wrong")).inventory("WH-A"))
    assert wms_simulator.stats.total == 1


# WMS shipments ---------------------------------------------------------------------------------------------


def test_shipments_are_read_from_since_page_by_page_into_typed_shipments(wms_simulator, clock):
    # GIVEN four shipped reservations, the first one before the time we ask from
    client = WmsClient(http(wms_simulator, "wms"), page_size=2)
    for index, minutes in enumerate((-5, 0, 1, 2)):
        client.request_confirmation("WH-A", f"k{index}#v1", f"k{index}", {"SKU-1": index + 1}, timeout_seconds=2)
        wms_simulator.ship("WH-A", f"k{index}#v1", T0 + timedelta(minutes=minutes))
    # WHEN the client reads the shipments since T0 (inclusive)
    pages = list(client.shipments("WH-A", T0))
    # THEN it followed the page tokens, and each shipment is typed with its warehouse and the WMS's as_of
    assert [len(page.items) for page in pages] == [2, 1]
    shipped = [item for page in pages for item in page.items]
    assert shipped[0] == WarehouseShipment("WH-A", "k1#v1", "k1", T0, (ShipmentLine("SKU-1", 2),),
                                           "SF000000000002", "SF")
    assert [item.shipped_at for item in shipped] == [T0 + timedelta(minutes=m) for m in (0, 1, 2)]
    assert all(page.as_of == T0 for page in pages)
    # AND without a since it reads from the first shipment
    assert sum(len(page.items) for page in client.shipments("WH-A", None)) == 4


def test_a_shipments_answer_that_breaks_the_contract_is_a_source_error_naming_the_field(clock):
    # GIVEN a WMS that answers a shipment time without a zone
    class BrokenWms(WmsSimulator):
        def _shipments(self, request, warehouse_id):
            item = {"reservation_id": "r", "order_key": "k", "shipped_at": "2026-11-11T00:00:00",
                    "lines": [{"sku": "A", "quantity": 1}]}
            return Reply(200, {"items": [item], "next_page_token": None, "as_of": "2026-11-11T00:00:00Z"})

    with BrokenWms(warehouses=["WH-A"], clock=clock) as simulator:
        # WHEN the client reads it  THEN it refuses the answer and says where it is wrong
        with pytest.raises(SourceError, match=r"shipments of WH-A: .*items\.0\.shipped_at"):
            list(WmsClient(http(simulator, "wms")).shipments("WH-A", T0))


def test_a_shipments_page_token_that_comes_back_again_stops_the_reading(clock):
    class LoopingWms(WmsSimulator):
        def _shipments(self, request, warehouse_id):
            return Reply(200, {"items": [], "next_page_token": "same", "as_of": "2026-11-11T00:00:00Z"})

    with LoopingWms(warehouses=["WH-A"], clock=clock) as simulator:
        with pytest.raises(SourceError, match="repeated"):
            list(WmsClient(http(simulator, "wms")).shipments("WH-A", T0))
        assert simulator.stats.total == 2


def test_shipments_of_an_unknown_warehouse_are_not_found_and_a_naive_since_is_refused(wms_simulator):
    client = WmsClient(http(wms_simulator, "wms"))
    with pytest.raises(SourceNotFoundError, match="warehouse_not_found"):
        list(client.shipments("WH-NOPE", T0))
    with pytest.raises(ValueError, match="timezone-aware"):
        list(client.shipments("WH-A", datetime(2026, 11, 11)))


def test_a_5xx_while_reading_shipments_is_retried(clock):
    with WmsSimulator(warehouses=["WH-A"], clock=clock, faults=ScriptedFaults("5xx")) as simulator:
        pages = list(WmsClient(http(simulator, "wms")).shipments("WH-A", T0))
        assert pages[0].items == () and simulator.stats.count("fault_5xx") == 1


# Transient failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["5xx", "truncated"])
def test_a_transient_failure_is_retried_and_the_answer_used(clock, fault):
    # GIVEN a WMS whose next two calls fail
    with WmsSimulator(warehouses=["WH-A"], clock=clock, faults=ScriptedFaults(fault, fault)) as simulator:
        simulator.set_stock("WH-A", "SKU-1", 4)
        # WHEN the client reads  THEN the third attempt's answer comes back
        pages = list(WmsClient(http(simulator, "wms")).inventory("WH-A"))
        assert pages[0].items == (StockCount("SKU-1", 4),)
        assert simulator.stats.count(f"fault_{fault}") == 2 and simulator.stats.count("ok") == 1


def test_a_read_timeout_is_retried(clock):
    # GIVEN a WMS whose first answer comes after the client's read timeout
    faults = ScriptedFaults("timeout", timeout_seconds=1.0)
    with WmsSimulator(warehouses=["WH-A"], clock=clock, faults=faults) as simulator:
        # WHEN the client reads with a 0.3 s timeout  THEN its second attempt succeeds
        pages = list(WmsClient(http(simulator, "wms", timeout_seconds=0.3)).inventory("WH-A"))
        assert pages[0].items == ()
        assert simulator.stats.total == 2


def test_persistent_5xx_gives_up_after_the_attempts_with_an_unavailable_error(clock):
    faults = ScriptedFaults(*["5xx"] * 10)
    with WmsSimulator(warehouses=["WH-A"], clock=clock, faults=faults) as simulator:
        with pytest.raises(SourceUnavailableError, match="HTTP 503"):
            list(WmsClient(http(simulator, "wms", max_attempts=3)).inventory("WH-A"))
        assert simulator.stats.total == 3


def test_a_429_is_retried_after_the_seconds_retry_after_names():
    # GIVEN a quality API with a burst of one request
    simulator, credentials = quality.launch({"WH-A": (100, 1)})
    simulator.bucket = simulator.new_bucket(1.0, 1)
    try:
        client = QualityClient(http(simulator, "quality"))
        client.quality_reports()
        # WHEN a second call comes at once
        started = time.monotonic()
        reports = client.quality_reports()
        waited = time.monotonic() - started
        # THEN it was refused once, waited what Retry-After said (1 s), and then served
        assert reports.reports[0].shipments == 100
        assert simulator.stats.count("rate_limited") == 1
        assert 0.9 <= waited < 3
    finally:
        simulator.stop()


# WMS reservation confirmation ----------------------------------------------------------------------------


def test_confirmation_is_pending_until_the_wms_clock_passes_confirm_after(wms_simulator, clock):
    # GIVEN a warehouse that confirms after 3 s
    wms_simulator.configure_warehouse("WH-A", confirm_after=timedelta(seconds=3))
    client = WmsClient(http(wms_simulator, "wms"))
    # WHEN a reservation is requested, then read before and after those 3 s
    requested = client.request_confirmation("WH-A", "r-1", "jd#s#1", {"SKU-1": 2, "SKU-2": 1}, timeout_seconds=2)
    clock.advance(2)
    early = client.confirmation_status("WH-A", "r-1", timeout_seconds=2)
    clock.advance(1)
    late = client.confirmation_status("WH-A", "r-1", timeout_seconds=2)
    # THEN pending, pending, confirmed, and the WMS got every line
    assert (requested, early, late) == (ConfirmationStatus("pending"), ConfirmationStatus("pending"),
                                        ConfirmationStatus("confirmed"))
    assert wms_simulator.reservation("WH-A", "r-1").lines == (("SKU-1", 2), ("SKU-2", 1))


def test_lines_may_also_be_pairs_or_the_dicts_allocation_sends(wms_simulator):
    client = WmsClient(http(wms_simulator, "wms"))
    client.request_confirmation("WH-A", "r-pairs", "k", [("SKU-1", 1)], timeout_seconds=2)
    client.request_confirmation("WH-A", "r-dicts", "k", [{"sku": "SKU-1", "quantity": 1}], timeout_seconds=2)
    assert wms_simulator.reservation("WH-A", "r-pairs").lines == wms_simulator.reservation("WH-A", "r-dicts").lines


def test_a_rejection_comes_back_with_its_reason(wms_simulator):
    wms_simulator.configure_warehouse("WH-A", reject_reason="cycle count in progress")
    status = WmsClient(http(wms_simulator, "wms")).request_confirmation("WH-A", "r-2", "k", {"SKU-1": 1},
                                                                         timeout_seconds=2)
    assert status == ConfirmationStatus("rejected", "cycle count in progress")


def test_an_unresponsive_wms_raises_a_timeout_within_the_callers_budget(wms_simulator):
    # GIVEN a warehouse that stalls its answers for 3 s
    wms_simulator.configure_warehouse("WH-A", unresponsive=True, unresponsive_delay_seconds=3.0)
    client = WmsClient(http(wms_simulator, "wms"))
    # WHEN allocation asks with 0.5 s left of its budget
    started = time.monotonic()
    with pytest.raises(SourceTimeoutError):
        client.request_confirmation("WH-A", "r-3", "k", {"SKU-1": 1}, timeout_seconds=0.5)
    # THEN it hears so after about those 0.5 s, not after the stall or more retries
    assert time.monotonic() - started < 1.5


def test_a_5xx_during_confirmation_is_retried_inside_the_budget(clock):
    with WmsSimulator(warehouses=["WH-A"], clock=clock, faults=ScriptedFaults("5xx")) as simulator:
        status = WmsClient(http(simulator, "wms")).request_confirmation("WH-A", "r-4", "k", {"SKU-1": 1},
                                                                         timeout_seconds=3)
        assert status.status == "confirmed"
        assert len(simulator.reservations("WH-A")) == 1


def test_cancelling_is_quiet_for_a_reservation_the_wms_never_got(wms_simulator):
    client = WmsClient(http(wms_simulator, "wms"))
    client.request_confirmation("WH-A", "r-5", "k", {"SKU-1": 1}, timeout_seconds=2)
    client.cancel("WH-A", "r-5", timeout_seconds=2)
    client.cancel("WH-A", "never-sent", timeout_seconds=2)
    assert wms_simulator.reservation("WH-A", "r-5").cancelled
    with pytest.raises(SourceNotFoundError):
        client.confirmation_status("WH-A", "r-5", timeout_seconds=2)


def test_releasing_returns_when_the_wms_took_it_and_a_repeat_returns_the_same_time(wms_simulator, clock):
    # GIVEN a confirmed reservation
    client = WmsClient(http(wms_simulator, "wms"))
    client.request_confirmation("WH-A", "jd#s#7#v1", "jd#s#7", {"SKU-1": 1}, timeout_seconds=2)
    clock.advance(5)
    # WHEN it is released, and released again a minute later (a redelivered stream record)
    first = client.release("WH-A", "jd#s#7#v1", timeout_seconds=2)
    clock.advance(60)
    again = client.release("WH-A", "jd#s#7#v1", timeout_seconds=2)
    # THEN both answers are the WMS's time of the first release, as an aware datetime
    assert first == again == T0 + timedelta(seconds=5)
    assert wms_simulator.reservation("WH-A", "jd#s#7#v1").released_at == T0 + timedelta(seconds=5)


def test_releasing_what_the_wms_does_not_hold_or_has_not_confirmed_is_an_error_not_a_quiet_no_op(wms_simulator):
    # GIVEN a cancelled reservation, a rejected one, and one still pending
    client = WmsClient(http(wms_simulator, "wms"))
    client.request_confirmation("WH-A", "r-gone", "k", {"SKU-1": 1}, timeout_seconds=2)
    client.cancel("WH-A", "r-gone", timeout_seconds=2)
    wms_simulator.configure_warehouse("WH-A", reject_reason="cycle count in progress")
    client.request_confirmation("WH-A", "r-rejected", "k", {"SKU-1": 1}, timeout_seconds=2)
    wms_simulator.configure_warehouse("WH-A", reject_reason=None, confirm_after=timedelta(minutes=5))
    client.request_confirmation("WH-A", "r-pending", "k", {"SKU-1": 1}, timeout_seconds=2)
    calls = wms_simulator.stats.total
    # WHEN each is released, and one never sent  THEN nothing would ship: each raises, without retries
    for reservation_id in ("r-gone", "never-sent"):
        with pytest.raises(SourceNotFoundError, match="reservation_not_found"):
            client.release("WH-A", reservation_id, timeout_seconds=2)
    for reservation_id in ("r-rejected", "r-pending"):
        with pytest.raises(SourceRequestError, match="409 .*conflict"):
            client.release("WH-A", reservation_id, timeout_seconds=2)
    assert wms_simulator.stats.total == calls + 4
    assert not any(r.released for r in wms_simulator.reservations("WH-A"))


def test_a_5xx_during_a_release_is_retried_inside_the_budget(clock):
    with WmsSimulator(warehouses=["WH-A"], clock=clock, faults=ScriptedFaults(None, "5xx")) as simulator:
        client = WmsClient(http(simulator, "wms"))
        client.request_confirmation("WH-A", "r-6", "k", {"SKU-1": 1}, timeout_seconds=3)
        assert client.release("WH-A", "r-6", timeout_seconds=3) == T0
        assert simulator.stats.count("ok") == 2 and simulator.stats.total == 3


def test_a_release_answer_for_another_reservation_or_without_a_zone_is_a_source_error(clock):
    # GIVEN a WMS whose release answers name another reservation, or give a time without its zone
    answers = [{"reservation_id": "r-other", "status": "confirmed", "released_at": "2026-11-11T02:00:00Z"},
               {"reservation_id": "r-7", "status": "confirmed", "released_at": "2026-11-11T02:00:00"}]

    class BrokenWms(WmsSimulator):
        def _release(self, request, warehouse_id, reservation_id):
            return Reply(200, answers.pop(0))

    with BrokenWms(warehouses=["WH-A"], clock=clock) as simulator:
        client = WmsClient(http(simulator, "wms"))
        # WHEN the client releases  THEN it refuses each answer and says what is wrong
        with pytest.raises(SourceError, match="answered for reservation 'r-other'"):
            client.release("WH-A", "r-7", timeout_seconds=2)
        with pytest.raises(SourceError, match=r"release of reservation r-7: .*released_at"):
            client.release("WH-A", "r-7", timeout_seconds=2)


# Carrier, attendance, quality -----------------------------------------------------------------------------


def test_transit_times_become_typed_routes_with_decimal_hours():
    simulator, _ = carrier.launch({"WH-A": {"CN": 60.0, "CN/浙江": 18.5}})
    try:
        answer = CarrierClient(http(simulator, "carrier")).transit_times("WH-A")
        assert answer.origin == "WH-A"
        assert answer.routes == (TransitRoute("CN", Decimal("60.0")), TransitRoute("CN/浙江", Decimal("18.5")))
        assert answer.as_of.tzinfo is not None
    finally:
        simulator.stop()


def test_a_carrier_region_written_with_its_province_suffix_is_a_bad_answer():
    simulator, _ = carrier.launch({})
    simulator._routes_by_origin["WH-A"] = {"CN/浙江省": 20.0}  # a carrier that breaks its own contract
    try:
        with pytest.raises(SourceError, match="without suffix"):
            CarrierClient(http(simulator, "carrier")).transit_times("WH-A")
    finally:
        simulator.stop()


def test_an_origin_the_carrier_does_not_serve_is_not_found():
    with CarrierSimulator() as simulator:
        with pytest.raises(SourceNotFoundError, match="origin_not_found"):
            CarrierClient(http(simulator, "carrier")).transit_times("WH-Z")


def test_attendance_of_a_day_is_typed_per_warehouse():
    simulator, _ = attendance.launch({"WH-A": (30, 400)})
    try:
        answer = AttendanceClient(http(simulator, "attendance")).attendance(date(2026, 11, 11))
        assert answer.day == date(2026, 11, 11)
        assert answer.warehouses == (StaffLoad("WH-A", 30, 400),)
    finally:
        simulator.stop()


def test_quality_reports_are_typed_and_a_report_with_more_errors_than_shipments_is_refused():
    simulator, _ = quality.launch({"WH-A": (1000, 12)})
    try:
        client = QualityClient(http(simulator, "quality"))
        reports = client.quality_reports().reports
        assert [(r.warehouse_id, r.shipments, r.errors) for r in reports] == [("WH-A", 1000, 12)]
        simulator._reports["WH-B"] = (5, 6)  # a report breaking the contract
        with pytest.raises(SourceError, match="6 errors in 5 shipments"):
            client.quality_reports()
    finally:
        simulator.stop()
