"""The four data-source simulators (WMS, carrier, attendance, quality) over real HTTP, with plain
`requests` as the client: auth, paging, rate limits, faults, and the WMS's reservation confirmation
on an injected wall clock."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
import requests
from omsdev.simulators import attendance, carrier, quality, wms
from omsdev.simulators.attendance import AttendanceSimulator
from omsdev.simulators.base import FaultPlan, ManualClock
from omsdev.simulators.carrier import CarrierSimulator
from omsdev.simulators.quality import QualitySimulator
from omsdev.simulators.sources_common import ManualWallClock
from omsdev.simulators.wms import WmsSimulator

# A request each simulator answers with 200 when the key is right.
PROBES = {
    "wms": lambda sim: ("GET", "/v1/warehouses/WH-A/inventory", None),
    "carrier": lambda sim: ("GET", "/v1/transit-times?origin=WH-A", None),
    "attendance": lambda sim: ("GET", "/v1/attendance?date=2026-11-11", None),
    "quality": lambda sim: ("GET", "/v1/quality-reports?days=30", None),
}


def call(sim, method: str, path: str, body: dict | None = None, *, key: str | None = "right", timeout: float = 5):
    headers = {} if key is None else {"X-Api-Key": sim.api_key if key == "right" else key}
    return requests.request(method, sim.url + path, json=body, headers=headers, timeout=timeout)


def started(source: str, **kwargs):
    simulator = {"wms": WmsSimulator, "carrier": CarrierSimulator, "attendance": AttendanceSimulator,
                 "quality": QualitySimulator}[source](**kwargs)
    if source == "wms":
        simulator.add_warehouse("WH-A")
    if source == "carrier":
        simulator.set_route("WH-A", "CN", 48.0)
    return simulator.start()


@pytest.fixture
def clock() -> ManualWallClock:
    return ManualWallClock()


@pytest.fixture
def warehouse(clock):
    with WmsSimulator(warehouses=["WH-A"], clock=clock) as simulator:
        yield simulator


def reservation(reservation_id: str | None = None, **overrides) -> dict:
    return {"reservation_id": reservation_id or f"r-{uuid.uuid4().hex[:8]}", "order_key": "taobao#s1#1001",
            "lines": [{"sku": "SKU-1", "quantity": 2}], **overrides}


# Every source ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(PROBES))
def test_a_wrong_or_missing_api_key_is_a_401_envelope_and_the_right_one_is_served(source):
    # GIVEN a started simulator
    simulator = started(source)
    try:
        method, path, body = PROBES[source](simulator)
        # WHEN called with a wrong key, without one, and with its own
        wrong, missing = call(simulator, method, path, body, key="nope"), call(simulator, method, path, body, key=None)
        right = call(simulator, method, path, body)
        # THEN the first two are 401 with the error envelope, the last is served with its as_of
        for response in (wrong, missing):
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.json()["error"]["message"]
        assert right.status_code == 200 and "as_of" in right.json()
        assert simulator.stats.count("auth_failed") == 2 and simulator.stats.count("ok") == 1
    finally:
        simulator.stop()


@pytest.mark.parametrize("source", sorted(PROBES))
def test_over_the_token_bucket_a_429_says_when_to_come_back(source):
    # GIVEN a simulator allowing a burst of 2 and 1 request/s, on a clock that only a test moves
    monotonic = ManualClock()
    simulator = started(source, rate=1.0, burst=2, monotonic=monotonic)
    try:
        method, path, body = PROBES[source](simulator)
        # WHEN it is called three times at once
        statuses = [call(simulator, method, path, body) for _ in range(3)]
        # THEN the third is refused with Retry-After and the rate_limited envelope
        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert statuses[2].headers["Retry-After"] == "1"
        assert statuses[2].json()["error"]["code"] == "rate_limited"
        # AND after the second it names, the bucket has a token again
        monotonic.advance(1.0)
        assert call(simulator, method, path, body).status_code == 200
        assert simulator.stats.count("rate_limited") == 1
    finally:
        simulator.stop()


@pytest.mark.parametrize(("kind", "status", "code"), [("5xx", 503, "unavailable"), ("429", 429, "rate_limited")])
def test_injected_faults_answer_with_the_sources_own_envelopes(kind, status, code):
    # GIVEN a carrier API that fails every call with one kind of fault
    simulator = started("carrier", faults=FaultPlan(rate=1.0, kinds=(kind,), seed=1))
    try:
        # WHEN called
        response = call(simulator, "GET", "/v1/transit-times?origin=WH-A")
        # THEN the fault answers like the API's own errors (a 429 says when to retry)
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
        assert (response.headers.get("Retry-After") == "1") == (kind == "429")
        assert simulator.stats.count(f"fault_{kind}") == 1
    finally:
        simulator.stop()


def test_a_timeout_fault_answers_only_after_the_clients_read_timeout():
    # GIVEN a quality API whose every answer comes after 1 s
    simulator = started("quality", faults=FaultPlan(rate=1.0, kinds=("timeout",), timeout_seconds=1.0))
    try:
        # WHEN a client waits 0.2 s  THEN it times out
        with pytest.raises(requests.ReadTimeout):
            call(simulator, "GET", "/v1/quality-reports", timeout=0.2)
    finally:
        simulator.stop()


def test_unknown_paths_and_methods_are_404_and_405_and_the_log_names_each_endpoint(warehouse):
    # WHEN an unknown path and a wrong method are called next to a real endpoint
    unknown = call(warehouse, "GET", "/v1/nothing-here")
    wrong_method = call(warehouse, "PUT", "/v1/warehouses/WH-A/inventory")
    call(warehouse, "GET", "/v1/warehouses/WH-A/inventory")
    # THEN they are refused with envelopes, and the request log groups calls by endpoint template
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "GET"
    operations = warehouse.stats.by_operation()
    assert operations["GET /v1/warehouses/{warehouse_id}/inventory"]["ok"] == 1


# WMS inventory -----------------------------------------------------------------------------------------


def test_inventory_pages_list_every_sku_once_in_order_with_its_on_hand(warehouse, clock):
    # GIVEN 7 SKUs, one of them at zero
    for index in range(7):
        warehouse.set_stock("WH-A", f"SKU-{index}", index * 10)
    # WHEN the inventory is paged 3 at a time
    pages, token = [], None
    while True:
        response = call(warehouse, "GET", "/v1/warehouses/WH-A/inventory?page_size=3"
                        + (f"&page_token={token}" if token else ""))
        assert response.status_code == 200
        pages.append(response.json())
        token = pages[-1]["next_page_token"]
        if token is None:
            break
    # THEN 3 pages hold every SKU exactly once, sorted, zero included, each page stamped with the WMS's time
    assert [len(page["items"]) for page in pages] == [3, 3, 1]
    items = [item for page in pages for item in page["items"]]
    assert [(item["sku"], item["on_hand"]) for item in items] == [(f"SKU-{i}", i * 10) for i in range(7)]
    assert all(page["as_of"] == "2026-11-11T02:00:00.000Z" for page in pages)


def test_a_sku_added_between_pages_after_the_cursor_is_still_listed(warehouse):
    # GIVEN a first page read
    for sku in ("A", "C"):
        warehouse.set_stock("WH-A", sku, 1)
    first = call(warehouse, "GET", "/v1/warehouses/WH-A/inventory?page_size=1").json()
    # WHEN a SKU sorting after the cursor appears before the next page
    warehouse.set_stock("WH-A", "B", 5)
    second = call(warehouse, "GET", f"/v1/warehouses/WH-A/inventory?page_size=5&page_token={first['next_page_token']}")
    # THEN keyset paging serves it
    assert [item["sku"] for item in second.json()["items"]] == ["B", "C"]


@pytest.mark.parametrize("query", ["page_size=0", "page_size=501", "page_size=many", "page_token=%%%"])
def test_bad_paging_parameters_are_400(warehouse, query):
    response = call(warehouse, "GET", f"/v1/warehouses/WH-A/inventory?{query}")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"


def test_an_unknown_warehouse_is_404(warehouse):
    response = call(warehouse, "GET", "/v1/warehouses/WH-NOPE/inventory")
    assert response.status_code == 404 and response.json()["error"]["code"] == "warehouse_not_found"


# WMS reservation confirmation --------------------------------------------------------------------------


def test_a_reservation_is_confirmed_at_once_by_default(warehouse):
    response = call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-now"))
    assert response.status_code == 202
    assert response.json() == {"reservation_id": "r-now", "status": "confirmed"}


def test_a_reservation_stays_pending_until_the_wms_clock_passes_confirm_after(warehouse, clock):
    # GIVEN a warehouse that confirms 4 s after a reservation arrives
    warehouse.configure_warehouse("WH-A", confirm_after=timedelta(seconds=4))
    created = call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-slow"))
    path = "/v1/warehouses/WH-A/reservations/r-slow"
    # WHEN its clock moves 3.9 s, then past 4 s
    clock.advance(3.9)
    before = call(warehouse, "GET", path).json()
    clock.advance(0.2)
    after = call(warehouse, "GET", path).json()
    # THEN it was pending until then, and confirmed after
    assert created.status_code == 202 and created.json()["status"] == "pending"
    assert before["status"] == "pending"
    assert after == {"reservation_id": "r-slow", "status": "confirmed"}


def test_a_warehouse_with_a_reject_reason_rejects_with_it(warehouse):
    warehouse.configure_warehouse("WH-A", reject_reason="insufficient_stock: SKU-1")
    answer = call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-no")).json()
    assert answer == {"reservation_id": "r-no", "status": "rejected", "reason": "insufficient_stock: SKU-1"}
    # AND the reason sticks to that reservation even after the warehouse changes its mind
    warehouse.configure_warehouse("WH-A", reject_reason=None)
    assert call(warehouse, "GET", "/v1/warehouses/WH-A/reservations/r-no").json()["status"] == "rejected"


def test_posting_the_same_reservation_twice_is_idempotent_and_another_body_under_its_id_conflicts(warehouse, clock):
    # GIVEN a reservation created while the warehouse takes 10 s to confirm
    warehouse.configure_warehouse("WH-A", confirm_after=timedelta(seconds=10))
    body = reservation("r-twice")
    first = call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", body)
    clock.advance(11)
    # WHEN the same body is posted again (a client retry), and then a different one under the same id
    again = call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", body)
    other = call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-twice", order_key="other#1"))
    # THEN the retry answers the one reservation's current state, and the other body is a conflict
    assert first.json()["status"] == "pending"
    assert again.status_code == 202 and again.json()["status"] == "confirmed"
    assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
    assert len(warehouse.reservations("WH-A")) == 1


@pytest.mark.parametrize("body", [
    {"order_key": "k", "lines": [{"sku": "A", "quantity": 1}]},
    {"reservation_id": "r", "order_key": "k", "lines": []},
    {"reservation_id": "r", "order_key": "k", "lines": [{"sku": "A", "quantity": 0}]},
    {"reservation_id": "r", "order_key": "k", "lines": [{"sku": "A", "quantity": "2"}]},
    {"reservation_id": "r", "lines": [{"sku": "A", "quantity": 1}]},
])
def test_a_malformed_reservation_is_400(warehouse, body):
    response = call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    assert warehouse.reservations("WH-A") == []


def test_cancel_then_read_and_repeat(warehouse):
    # GIVEN a confirmed reservation
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-cancel"))
    path = "/v1/warehouses/WH-A/reservations/r-cancel"
    # WHEN it is cancelled (twice), read, and posted again
    cancelled = call(warehouse, "DELETE", path)
    repeat = call(warehouse, "DELETE", path)
    read = call(warehouse, "GET", path)
    revived = call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-cancel"))
    # THEN cancelling is idempotent, a cancelled reservation is gone and its id cannot be reused
    assert cancelled.status_code == repeat.status_code == 200
    assert cancelled.json() == {"reservation_id": "r-cancel", "status": "cancelled"}
    assert read.status_code == 404 and read.json()["error"]["code"] == "reservation_not_found"
    assert revived.status_code == 409


def test_reading_or_cancelling_an_unknown_reservation_is_404(warehouse):
    assert call(warehouse, "GET", "/v1/warehouses/WH-A/reservations/never").status_code == 404
    assert call(warehouse, "DELETE", "/v1/warehouses/WH-A/reservations/never").status_code == 404


def test_an_unresponsive_warehouse_never_confirms_and_can_also_stall_its_answers(warehouse, clock):
    # GIVEN an unresponsive warehouse
    warehouse.configure_warehouse("WH-A", unresponsive=True)
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-silent"))
    # WHEN any time passes THEN the reservation is still pending
    clock.advance(3600)
    assert call(warehouse, "GET", "/v1/warehouses/WH-A/reservations/r-silent").json()["status"] == "pending"
    # AND with a stall configured, a client's read timeout fires before the answer
    warehouse.configure_warehouse("WH-A", unresponsive_delay_seconds=1.0)
    with pytest.raises(requests.ReadTimeout):
        call(warehouse, "GET", "/v1/warehouses/WH-A/reservations/r-silent", timeout=0.2)


def test_launch_returns_a_started_wms_and_the_secret_our_client_reads():
    simulator, credentials = wms.launch(["WH-L"])
    try:
        assert credentials == {"base_url": simulator.url, "api_key": simulator.api_key}
        assert call(simulator, "GET", "/v1/warehouses/WH-L/inventory").json()["items"] == []
    finally:
        simulator.stop()


# WMS release for picking -----------------------------------------------------------------------------------


def test_releasing_a_confirmed_reservation_answers_its_release_time_and_a_repeat_answers_the_same(warehouse, clock):
    # GIVEN a confirmed reservation
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-go"))
    clock.advance(1.5)
    # WHEN it is released, and again a minute later
    first = release(warehouse, "r-go")
    clock.advance(60)
    again = release(warehouse, "r-go")
    # THEN both say it was released at the first call's time; it still reads as confirmed
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"reservation_id": "r-go", "status": "confirmed",
                                             "released_at": "2026-11-11T02:00:01.500Z"}
    assert call(warehouse, "GET", "/v1/warehouses/WH-A/reservations/r-go").json()["status"] == "confirmed"


def test_releasing_an_unknown_or_cancelled_reservation_is_404(warehouse):
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-cancel"))
    call(warehouse, "DELETE", "/v1/warehouses/WH-A/reservations/r-cancel")
    for reservation_id in ("never", "r-cancel"):
        response = release(warehouse, reservation_id)
        assert response.status_code == 404 and response.json()["error"]["code"] == "reservation_not_found"
    response = release(warehouse, "r-cancel", warehouse_id="WH-NOPE")
    assert response.status_code == 404 and response.json()["error"]["code"] == "warehouse_not_found"


def test_releasing_a_pending_or_rejected_reservation_is_a_conflict_and_releases_nothing(warehouse, clock):
    # GIVEN one reservation still pending (confirmed after 10 s) and one rejected
    warehouse.configure_warehouse("WH-A", confirm_after=timedelta(seconds=10), ship_after=timedelta(seconds=1))
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-pending"))
    warehouse.configure_warehouse("WH-A", reject_reason="cycle count")
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-rejected"))
    # WHEN either is released  THEN 409 conflict
    for reservation_id in ("r-pending", "r-rejected"):
        response = release(warehouse, reservation_id)
        assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    # AND once the pending one is confirmed it is still not released: it never ships by itself
    clock.advance(timedelta(days=1))
    assert not warehouse.reservation("WH-A", "r-pending").released
    assert shipments(warehouse).json()["items"] == []
    # AND released now, it can be (409 was no lasting refusal)
    assert release(warehouse, "r-pending").status_code == 200


def test_a_confirmed_reservation_never_ships_until_released_then_ships_ship_after_past_its_release(warehouse, clock):
    # GIVEN a warehouse that confirms after 2 s and ships 10 s after, and two confirmed reservations
    warehouse.configure_warehouse("WH-A", confirm_after=timedelta(seconds=2), ship_after=timedelta(seconds=10))
    t0 = clock.now()
    for reservation_id in ("r-held", "r-late"):
        call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation(reservation_id))
    # WHEN a day passes with neither released (the order is held by the risk engine, say)
    clock.advance(timedelta(days=1))
    # THEN nothing shipped
    assert shipments(warehouse).json()["items"] == [] and warehouse.shipments("WH-A") == []
    # WHEN one is released a day after it was confirmed
    released = release(warehouse, "r-late").json()["released_at"]
    clock.advance(9.9)
    before = warehouse.shipments("WH-A")
    clock.advance(0.2)
    # THEN it ships ship_after past its release, not past its confirmation; the other one still not
    [parcel] = warehouse.shipments("WH-A")
    assert before == [] and released == "2026-11-12T02:00:00.000Z"
    assert parcel.reservation_id == "r-late" and parcel.shipped_at == t0 + timedelta(days=1, seconds=10)
    clock.advance(timedelta(days=1))
    assert [r.reservation_id for r in warehouse.shipments("WH-A")] == ["r-late"]
    # AND releasing the shipped one again still answers the same release
    assert release(warehouse, "r-late").json()["released_at"] == released


# WMS shipments -------------------------------------------------------------------------------------------

SHIPMENTS = "/v1/warehouses/WH-A/shipments"


def shipments(sim, query: str = "", **kwargs):
    return call(sim, "GET", SHIPMENTS + (f"?{query}" if query else ""), **kwargs)


def all_shipment_pages(sim, query: str) -> list[dict]:
    pages, token = [], None
    while True:
        response = shipments(sim, query + (f"&page_token={token}" if token else ""))
        assert response.status_code == 200, response.text
        pages.append(response.json())
        token = pages[-1]["next_page_token"]
        if token is None:
            return pages


def release(sim, reservation_id: str, warehouse_id: str = "WH-A"):
    return call(sim, "POST", f"/v1/warehouses/{warehouse_id}/reservations/{reservation_id}/release")


def test_a_warehouse_ships_a_released_reservation_once_ship_after_has_passed(warehouse, clock):
    # GIVEN a warehouse that confirms after 2 s and ships 10 s after confirming, with 5 units on the shelf
    warehouse.set_stock("WH-A", "SKU-1", 5)
    warehouse.configure_warehouse("WH-A", confirm_after=timedelta(seconds=2), ship_after=timedelta(seconds=10))
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-ship"))
    # AND the order released to it the moment it confirmed
    clock.advance(2)
    assert release(warehouse, "r-ship").status_code == 200
    # WHEN its clock moves to 11.9 s, then to 12.1 s
    clock.advance(9.9)
    before = shipments(warehouse).json()
    clock.advance(0.2)
    after = shipments(warehouse).json()
    # THEN nothing had shipped before; after, the parcel is listed at confirmation + ship_after with its tracking
    assert before["items"] == []
    assert after["items"] == [{"reservation_id": "r-ship", "order_key": "taobao#s1#1001",
                               "shipped_at": "2026-11-11T02:00:12.000Z", "tracking_number": "SF000000000001",
                               "carrier": "SF", "lines": [{"sku": "SKU-1", "quantity": 2}]}]
    assert after["next_page_token"] is None and after["as_of"] == "2026-11-11T02:00:12.100Z"
    # AND its units left the shelf, and it still reads as confirmed
    assert warehouse.stock("WH-A") == {"SKU-1": 3}
    assert call(warehouse, "GET", "/v1/warehouses/WH-A/reservations/r-ship").json()["status"] == "confirmed"


def test_by_default_a_warehouse_never_ships_by_itself_and_a_test_can_ship_explicitly(warehouse, clock):
    # GIVEN a confirmed reservation at a warehouse without ship_after
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-manual"))
    clock.advance(timedelta(days=3))
    assert shipments(warehouse).json()["items"] == []
    # WHEN a test ships it at a time of its choosing, twice
    at = clock.now() - timedelta(hours=1)
    first = warehouse.ship("WH-A", "r-manual", at, tracking_number="YT123", carrier="YTO")
    again = warehouse.ship("WH-A", "r-manual")
    # THEN it is listed once, at that time, with that tracking number
    assert first is again and again.shipped_at == at
    items = shipments(warehouse).json()["items"]
    assert [(i["reservation_id"], i["tracking_number"], i["carrier"]) for i in items] == [("r-manual", "YT123", "YTO")]


def test_cancelled_rejected_and_pending_reservations_never_ship_and_a_shipped_one_cannot_be_cancelled(warehouse, clock):
    # GIVEN a warehouse shipping 5 s after confirming: two reservations released, then one of them cancelled
    # before its parcel left (the order was cancelled before picking)
    warehouse.configure_warehouse("WH-A", ship_after=timedelta(seconds=5))
    for reservation_id in ("r-cancelled", "r-shipped"):
        call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation(reservation_id))
        assert release(warehouse, reservation_id).status_code == 200
    assert call(warehouse, "DELETE", "/v1/warehouses/WH-A/reservations/r-cancelled").status_code == 200
    # AND one rejected, and one at a warehouse that stopped answering (so never confirmed)
    warehouse.configure_warehouse("WH-A", reject_reason="cycle count")
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-rejected"))
    warehouse.configure_warehouse("WH-A", reject_reason=None)
    # WHEN time passes
    clock.advance(60)
    # THEN only the live one shipped; it cannot be cancelled now, and a test cannot ship the others
    assert [item["reservation_id"] for item in shipments(warehouse).json()["items"]] == ["r-shipped"]
    refused = call(warehouse, "DELETE", "/v1/warehouses/WH-A/reservations/r-shipped")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    for reservation_id in ("r-cancelled", "r-rejected"):
        with pytest.raises(ValueError):
            warehouse.ship("WH-A", reservation_id)
    # AND an unresponsive warehouse confirms nothing, so ships nothing
    warehouse.configure_warehouse("WH-A", unresponsive=True)
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-silent"))
    clock.advance(600)
    assert len(shipments(warehouse).json()["items"]) == 1


def test_shipments_are_keyset_paged_by_time_then_reservation_id_each_listed_once(warehouse, clock):
    # GIVEN 5 shipments, three of them in the same millisecond, shipped out of id order
    t = clock.now()
    times = {"r-5": t + timedelta(seconds=1), "r-2": t + timedelta(seconds=3), "r-1": t + timedelta(seconds=3),
             "r-3": t + timedelta(seconds=3), "r-4": t}
    for reservation_id, at in times.items():
        call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation(reservation_id))
        warehouse.ship("WH-A", reservation_id, at)
    # WHEN they are paged 2 at a time
    pages = all_shipment_pages(warehouse, "page_size=2")
    # THEN 3 pages list each once, by (shipped_at, reservation_id)
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert [i["reservation_id"] for page in pages for i in page["items"]] == ["r-4", "r-5", "r-1", "r-2", "r-3"]


def test_since_is_inclusive_in_any_zone_and_a_shipment_after_the_page_position_is_still_listed(warehouse, clock):
    # GIVEN shipments at 02:00:01.250 and 02:00:02 UTC
    t = clock.now()
    for reservation_id, seconds in (("r-early", 1.25), ("r-late", 2)):
        call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation(reservation_id))
        warehouse.ship("WH-A", reservation_id, t + timedelta(seconds=seconds))

    def listed(since: str) -> list[str]:
        response = requests.get(warehouse.url + SHIPMENTS, params={"since": since},
                                headers={"X-Api-Key": warehouse.api_key}, timeout=5)
        assert response.status_code == 200, response.text
        return [item["reservation_id"] for item in response.json()["items"]]

    # WHEN listed since exactly the first one's time (UTC, and the same instant in China time), and 1 ms later
    # THEN the one at exactly `since` is listed, the one before it is not
    assert listed("2026-11-11T02:00:01.250Z") == ["r-early", "r-late"]
    assert listed("2026-11-11T10:00:01.250+08:00") == ["r-early", "r-late"]
    assert listed("2026-11-11T02:00:01.251Z") == ["r-late"]
    # AND a shipment scanned after a first page was read, sorting after its position, is on the next page
    first = shipments(warehouse, "page_size=1").json()
    call(warehouse, "POST", "/v1/warehouses/WH-A/reservations", reservation("r-new"))
    warehouse.ship("WH-A", "r-new", t + timedelta(seconds=1.5))
    rest = shipments(warehouse, f"page_size=5&page_token={first['next_page_token']}").json()
    assert [i["reservation_id"] for i in rest["items"]] == ["r-new", "r-late"]


@pytest.mark.parametrize("query", ["since=yesterday", "since=2026-11-11T02:00:00", "since=2026-13-01T00:00:00Z",
                                   "page_token=%%%", "page_token=eyJhZnRlciI6ICJTS1UtMSJ9", "page_size=0",
                                   "page_size=501"])
def test_a_bad_since_token_or_page_size_is_400(warehouse, query):
    # (the second token is a valid inventory token: not a shipments position)
    response = shipments(warehouse, query)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"


def test_shipments_of_an_unknown_warehouse_are_404_and_the_endpoint_keeps_the_apis_conventions(warehouse):
    unknown = call(warehouse, "GET", "/v1/warehouses/WH-NOPE/shipments")
    wrong_key = shipments(warehouse, key="nope")
    no_key = shipments(warehouse, key=None)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "warehouse_not_found"
    assert wrong_key.status_code == no_key.status_code == 401
    assert wrong_key.json()["error"]["code"] == "unauthorized"
    assert warehouse.stats.by_operation()["GET /v1/warehouses/{warehouse_id}/shipments"]["auth_failed"] == 2


def test_shipments_share_the_token_bucket_and_the_injected_faults():
    # GIVEN a WMS with a burst of 2 on a clock only the test moves, and one whose calls all fail
    limited = started("wms", rate=1.0, burst=2, monotonic=ManualClock())
    failing = started("wms", faults=FaultPlan(rate=1.0, kinds=("5xx",), seed=3))
    try:
        # WHEN the shipments endpoint is called
        statuses = [shipments(limited).status_code for _ in range(3)]
        fault = shipments(failing)
        # THEN it is rate limited like the others, and a fault answers with the API's envelope
        assert statuses == [200, 200, 429]
        assert fault.status_code in (500, 503) and fault.json()["error"]["code"] in ("unavailable", "internal")
        assert failing.stats.count("fault_5xx") == 1
    finally:
        limited.stop()
        failing.stop()


# Carrier, attendance, quality ----------------------------------------------------------------------------


def test_carrier_routes_from_an_origin_sorted_by_region():
    simulator, _ = carrier.launch({"WH-A": {"CN/浙江": 18.5, "CN": 60.0, "CN/广东": 36.0}})
    try:
        answer = call(simulator, "GET", "/v1/transit-times?origin=WH-A").json()
        assert answer["origin"] == "WH-A"
        assert answer["routes"] == [{"region": "CN", "hours": 60.0}, {"region": "CN/广东", "hours": 36.0},
                                    {"region": "CN/浙江", "hours": 18.5}]
        missing = call(simulator, "GET", "/v1/transit-times")
        unknown = call(simulator, "GET", "/v1/transit-times?origin=WH-Z")
        assert missing.status_code == 400 and missing.json()["error"]["code"] == "invalid_request"
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "origin_not_found"
    finally:
        simulator.stop()


@pytest.mark.parametrize("region", ["CN/浙江省", "CN/北京市", "CN/内蒙古自治区", "China", "cn/浙江"])
def test_the_carrier_only_takes_region_keys_in_the_apis_form(region):
    with pytest.raises(ValueError):
        CarrierSimulator().set_route("WH-A", region, 24)


def test_attendance_serves_the_standing_roster_overridden_by_a_dated_one():
    simulator, _ = attendance.launch({"WH-A": (30, 400), "WH-B": (12, 350)})
    try:
        simulator.set_attendance("WH-B", 4, 350, day=date(2026, 11, 11))
        double11 = call(simulator, "GET", "/v1/attendance?date=2026-11-11").json()
        other_day = call(simulator, "GET", "/v1/attendance?date=2026-11-12").json()
        assert double11["date"] == "2026-11-11"
        assert double11["warehouses"] == [
            {"warehouse_id": "WH-A", "staff_on_shift": 30, "orders_per_staff_day": 400},
            {"warehouse_id": "WH-B", "staff_on_shift": 4, "orders_per_staff_day": 350}]
        assert other_day["warehouses"][1]["staff_on_shift"] == 12
        for bad in ("", "?date=2026-13-01", "?date=20261111"):
            response = call(simulator, "GET", f"/v1/attendance{bad}")
            assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request", bad
    finally:
        simulator.stop()


def test_quality_reports_per_warehouse_and_the_window_is_checked():
    simulator, _ = quality.launch({"WH-B": (1000, 12), "WH-A": (0, 0)})
    try:
        answer = call(simulator, "GET", "/v1/quality-reports?days=30").json()
        assert answer["days"] == 30
        assert answer["reports"] == [{"warehouse_id": "WH-A", "shipments": 0, "errors": 0},
                                     {"warehouse_id": "WH-B", "shipments": 1000, "errors": 12}]
        for days in ("0", "366", "x"):
            assert call(simulator, "GET", f"/v1/quality-reports?days={days}").status_code == 400
        with pytest.raises(ValueError):
            simulator.set_report("WH-C", 5, 6)
    finally:
        simulator.stop()
