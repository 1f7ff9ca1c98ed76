"""Which allocation step an Orders stream change asks for, and releasing an order to its warehouses
once it may leave (in-memory reservations and WMS, no AWS, no HTTP)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from oms.domain.allocation import Shipment
from oms.domain.reservation import CONFIRMED, DEDUCTED, PENDING, REFUSED, RELEASED, Reservation
from oms.services.allocate import AllocationPorts, release_to_warehouse, stream_action

# --- stream_action ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("old_fulfillment", ["allocated", None, "reserving"])
def test_an_order_that_becomes_ready_to_ship_is_released_to_its_warehouses(old_fulfillment):
    assert stream_action("MODIFY", "paid", "paid", old_fulfillment=old_fulfillment,
                         new_fulfillment="ready_to_ship") == "release_to_warehouse"


@pytest.mark.parametrize("event_name, old_status, new_status, old_fulfillment, new_fulfillment", [
    ("MODIFY", "paid", "paid", "ready_to_ship", "ready_to_ship"),  # already ready: a later write to the order
    ("MODIFY", "paid", "paid", "reserving", "allocated"),  # allocated, the risk engine has not cleared it
    ("MODIFY", "paid", "paid", None, "in_review"),
    ("MODIFY", "paid", "paid", "ready_to_ship", "shipped"),  # the shipments feed's own write
    ("MODIFY", "paid", "paid", None, None),
])
def test_other_fulfillment_changes_ask_for_nothing(event_name, old_status, new_status, old_fulfillment,
                                                  new_fulfillment):
    assert stream_action(event_name, old_status, new_status, old_fulfillment=old_fulfillment,
                         new_fulfillment=new_fulfillment) is None


@pytest.mark.parametrize("event_name, old_status, new_status, expected", [
    ("INSERT", None, "paid", "allocate"),
    ("MODIFY", "pending_payment", "paid", "allocate"),
    ("MODIFY", "paid", "cancelled", "release"),
    ("MODIFY", "paid", "shipped", "deduct"),
    ("MODIFY", "paid", "paid", None),
])
def test_status_changes_still_ask_for_their_step_whatever_the_fulfillment_status_says(event_name, old_status,
                                                                                        new_status, expected):
    # A status change wins: a cancellation of a ready order releases its units (and cancels at the WMS)
    assert stream_action(event_name, old_status, new_status) == expected
    assert stream_action(event_name, old_status, new_status, old_fulfillment="allocated",
                         new_fulfillment="ready_to_ship") == (expected or "release_to_warehouse")


# --- release_to_warehouse -----------------------------------------------------------------------------------


class MemoryReservations:
    def __init__(self, *held: Reservation):
        self.held = {reservation.order_key: reservation for reservation in held}

    def get(self, order_key: str) -> Reservation | None:
        return self.held.get(order_key)


class MemoryWms:
    """Releases per (warehouse, reservation id), first time kept; `failing` warehouses raise."""

    def __init__(self, *failing: str):
        self.failing = set(failing)
        self.released: dict[tuple[str, str], datetime] = {}
        self.calls: list[tuple[str, str]] = []
        self.moment = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)

    def release(self, warehouse_id: str, reservation_id: str, timeout_seconds: float) -> datetime:
        self.calls.append((warehouse_id, reservation_id))
        if warehouse_id in self.failing:
            raise ConnectionError(f"{warehouse_id} does not answer")
        self.moment += timedelta(seconds=1)
        return self.released.setdefault((warehouse_id, reservation_id), self.moment)


def held(state: str, *warehouses: str, version: int = 1) -> Reservation:
    shipments = tuple(Shipment(warehouse_id, (("KETTLE", 1),)) for warehouse_id in warehouses)
    return Reservation(f"taobao#s1#{uuid.uuid4().hex[:8]}", state, version, shipments)


def ports(reservations: MemoryReservations, wms: MemoryWms | None) -> AllocationPorts:
    # Releasing needs only the reservations and the WMS.
    return AllocationPorts(reservations=reservations, catalog=None, facts=None, review=None, clock=None,
                           rules=None, wms=wms)


def test_a_confirmed_split_order_is_released_at_each_of_its_warehouses_and_a_redelivery_changes_nothing():
    # GIVEN an order confirmed at two warehouses under its second reservation version
    reservation = held(CONFIRMED, "WH-A", "WH-B", version=2)
    wms = MemoryWms()
    allocation = ports(MemoryReservations(reservation), wms)
    # WHEN it is released to the warehouses, and the record comes again
    first = release_to_warehouse(reservation.order_key, allocation)
    released = dict(wms.released)
    again = release_to_warehouse(reservation.order_key, allocation)
    # THEN both warehouses were told, under the WMS's name of the hold, and the repeat only told them again
    wms_id = f"{reservation.order_key}#v2"
    assert first.as_dict() == again.as_dict() == {"order_key": reservation.order_key, "state": "released_to_warehouse",
                                                  "warehouses": ["WH-A", "WH-B"], "reason": None}
    assert wms.calls == [("WH-A", wms_id), ("WH-B", wms_id)] * 2
    assert wms.released == released and set(released) == {("WH-A", wms_id), ("WH-B", wms_id)}


@pytest.mark.parametrize("state", [PENDING, RELEASED, DEDUCTED, REFUSED])
def test_a_hold_that_is_not_a_confirmed_one_is_not_released(state):
    reservation = held(state, "WH-A")
    wms = MemoryWms()
    outcome = release_to_warehouse(reservation.order_key, ports(MemoryReservations(reservation), wms))
    assert (outcome.state, outcome.reason) == ("nothing_to_release", state)
    assert wms.calls == []


def test_without_a_wms_or_a_reservation_there_is_nothing_to_release():
    reservation = held(CONFIRMED, "WH-A")
    assert release_to_warehouse(reservation.order_key, ports(MemoryReservations(reservation), None)).as_dict() == {
        "order_key": reservation.order_key, "state": "nothing_to_release", "warehouses": [], "reason": "no_wms"}
    wms = MemoryWms()
    outcome = release_to_warehouse("taobao#s1#unknown", ports(MemoryReservations(), wms))
    assert (outcome.state, outcome.reason, wms.calls) == ("nothing_to_release", "no_reservation", [])


def test_a_wms_that_fails_raises_so_that_the_stream_retries_the_record():
    # GIVEN the second warehouse's WMS does not answer
    reservation = held(CONFIRMED, "WH-A", "WH-B")
    wms = MemoryWms("WH-B")
    # WHEN the order is released  THEN the error comes out (the first release stands; the retry repeats it)
    with pytest.raises(ConnectionError, match="WH-B"):
        release_to_warehouse(reservation.order_key, ports(MemoryReservations(reservation), wms))
    assert [warehouse for warehouse, _ in wms.released] == ["WH-A"]
