"""The seed's pre-reservation: the chosen warehouse's WMS must confirm within 5 s, or the units move
to the next-best warehouse. Over real HTTP to the WMS simulator, with one injected clock for the
allocator and the WMS, so the 5 s pass without anyone sleeping.

And the release for picking (SPEC C6, a held order never reaches fulfilment): a confirmed
reservation is only a hold; the AllocationFunction releases it to the WMS when the order becomes
`ready_to_ship` (allocated and risk-cleared), and only then does the warehouse ship it and the
shipments feed mark the order shipped."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from oms.adapters import aws
from oms.adapters.risk_decisions import RiskDecisionsTable
from oms.services.allocate import allocate_order, reassign_order
from oms.services.dependencies import allocation_ports, order_to_allocate
from oms.settings import get_settings
from omsdev.allocation_setup import WarehouseSetup, load_catalogue
from omsdev.localcloud.filters import compile_filters, matches_any
from omsdev.simulators import wms
from omsdev.simulators.sources_common import ManualWallClock, iso

from tests.integration.allocation_helpers import (
    drain_queue,
    paid_order,
    reservation,
    stock_rows,
    store,
    stored_image,
    stream_record,
)

WAREHOUSES = ["WH-FAST", "WH-NEXT", "WH-SLOW"]


class SteppingClock:
    """Wall time that moves only when someone waits: `sleep` advances it instead of blocking."""

    def __init__(self, start: datetime):
        self.moment = start
        self.slept = 0.0

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.moment += timedelta(seconds=seconds)


def wms_with_credentials(clock: SteppingClock):
    simulator, credentials = wms.launch(WAREHOUSES, clock=clock)
    secrets = aws.client("secretsmanager")
    name = f"{get_settings().secrets_prefix}/sources/wms"
    secrets.create_secret(Name=name, SecretString=json.dumps(credentials))
    return simulator, name


def set_up(cloud):
    # Three warehouses with the same stock; WH-FAST is the quickest to the buyer, WH-NEXT the next.
    load_catalogue([WarehouseSetup(warehouse_id, ("CN",), {"KETTLE": 10}, transit_hours={"CN": hours})
                    for warehouse_id, hours in zip(WAREHOUSES, (12.0, 24.0, 72.0), strict=True)],
                   {"KETTLE-1L": [("KETTLE", 1)]})


def remove_secret(name: str) -> None:
    aws.client("secretsmanager").delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_a_warehouse_that_does_not_confirm_within_5_s_is_released_and_the_next_best_one_is_used(cloud):
    # GIVEN the best warehouse's WMS takes 8 s to confirm, the next one confirms at once
    set_up(cloud)
    clock = SteppingClock(datetime.now(UTC))
    simulator, secret = wms_with_credentials(clock)
    try:
        simulator.configure_warehouse("WH-FAST", confirm_after=timedelta(seconds=8))
        order = paid_order("taobao", [("KETTLE-1L", 2)])
        store([order])
        started = time.monotonic()
        # WHEN the order is allocated
        outcome = allocate_order(order_to_allocate(_image(cloud, order.order_key)), allocation_ports(get_settings(), clock=clock))
        # THEN it waited 5 s of the injected clock, not of the wall, and went to the next-best warehouse
        assert outcome.state == "allocated" and outcome.warehouses == ["WH-NEXT"]
        assert 4.99 <= clock.slept < 6 and time.monotonic() - started < 5
        # AND the best warehouse holds nothing any more, and its WMS was told so
        rows = stock_rows(cloud)
        assert rows["WH-FAST#KETTLE"]["reserved"] == 0 and rows["WH-NEXT#KETTLE"]["reserved"] == 2
        assert [r.cancelled for r in simulator.reservations("WH-FAST")] == [True]
        assert [r.cancelled for r in simulator.reservations("WH-NEXT")] == [False]
        # AND the decision on the order says which warehouse was passed over
        item = reservation(cloud, order.order_key)
        assert item["state"]["S"] == "confirmed" and [e["S"] for e in item["excluded"]["L"]] == ["WH-FAST"]
        assert stored_image(cloud, order.order_key)["fulfillment_status"]["S"] == "allocated"
    finally:
        simulator.stop()
        remove_secret(secret)


def test_when_no_warehouse_confirms_the_units_go_back_and_the_order_goes_to_review(cloud):
    # GIVEN one WMS rejects, the others never answer in time
    set_up(cloud)
    clock = SteppingClock(datetime.now(UTC))
    simulator, secret = wms_with_credentials(clock)
    try:
        simulator.configure_warehouse("WH-FAST", reject_reason="shelf count differs")
        simulator.configure_warehouse("WH-NEXT", confirm_after=timedelta(minutes=5))
        simulator.configure_warehouse("WH-SLOW", confirm_after=timedelta(minutes=5))
        order = paid_order("jd", [("KETTLE-1L", 1)])
        store([order])
        # WHEN the order is allocated
        outcome = allocate_order(order_to_allocate(_image(cloud, order.order_key)), allocation_ports(get_settings(), clock=clock))
        # THEN it is in review with a machine-readable reason, holding nothing anywhere
        assert outcome.state == "review" and outcome.reason == "all_warehouses_excluded"
        assert all(row["reserved"] == 0 for row in stock_rows(cloud).values())
        assert reservation(cloud, order.order_key)["state"]["S"] == "refused"
        reviews = drain_queue(cloud, "ReviewQueue")
        assert [(m["order_key"], m["reason"]) for m in reviews] == [(order.order_key, "all_warehouses_excluded")]
        # AND two warehouses were waited on for 5 s each (the rejection needed no wait)
        assert 9.99 <= clock.slept < 11.5
    finally:
        simulator.stop()
        remove_secret(secret)


def test_a_crash_between_holding_and_the_wms_confirmation_is_finished_by_the_redelivery(cloud):
    # GIVEN every WMS confirms at once, but the allocator dies after holding, before recording the confirmation
    set_up(cloud)
    clock = SteppingClock(datetime.now(UTC))
    simulator, secret = wms_with_credentials(clock)
    try:
        order = paid_order("kuaishou", [("KETTLE-1L", 3)])
        store([order])
        ports = allocation_ports(get_settings(), clock=clock)
        original_confirm = ports.reservations.confirm

        def crash(held, allocation, now):
            raise ConnectionError("the container died between holding and confirming")

        ports.reservations.confirm = crash
        image = order_to_allocate(_image(cloud, order.order_key))
        with pytest.raises(ConnectionError):
            allocate_order(image, ports)
        assert reservation(cloud, order.order_key)["state"]["S"] == "pending"
        assert stored_image(cloud, order.order_key)["fulfillment_status"]["S"] == "reserving"
        # WHEN the record is delivered again
        ports.reservations.confirm = original_confirm
        outcome = allocate_order(image, ports)
        # THEN the pending hold is confirmed where it is, not held a second time
        assert outcome.state == "allocated" and outcome.warehouses == ["WH-FAST"]
        assert reservation(cloud, order.order_key)["state"]["S"] == "confirmed"
        assert stored_image(cloud, order.order_key)["fulfillment_status"]["S"] == "allocated"
        assert {wh: row["reserved"] for wh, row in stock_rows(cloud).items() if row["reserved"]} == {"WH-FAST#KETTLE": 3}
        assert [r.cancelled for r in simulator.reservations("WH-FAST")] == [False]
    finally:
        simulator.stop()
        remove_secret(secret)


def test_a_reviewers_reassignment_withdraws_the_old_warehouses_wms_reservation(cloud):
    # GIVEN an order held and confirmed by WH-FAST's WMS
    set_up(cloud)
    clock = SteppingClock(datetime.now(UTC))
    simulator, secret = wms_with_credentials(clock)
    try:
        order = paid_order("taobao", [("KETTLE-1L", 2)])
        store([order])
        ports = allocation_ports(get_settings(), clock=clock)
        image = order_to_allocate(_image(cloud, order.order_key))
        assert allocate_order(image, ports).warehouses == ["WH-FAST"]
        # WHEN a reviewer moves it to WH-SLOW
        outcome = reassign_order(image, "WH-SLOW", ports)
        # THEN WH-SLOW's WMS confirmed the new hold, and WH-FAST's WMS was told to drop the old one
        assert outcome.state == "allocated" and outcome.warehouses == ["WH-SLOW"]
        assert [(r.reservation_id, r.cancelled) for r in simulator.reservations("WH-FAST")] == [
            (f"{order.order_key}#v1", True)]
        assert [(r.reservation_id, r.cancelled) for r in simulator.reservations("WH-SLOW")] == [
            (f"{order.order_key}#v2", False)]
        # AND our stock moved with it
        assert {wh: row["reserved"] for wh, row in stock_rows(cloud).items() if row["reserved"]} == {"WH-SLOW#KETTLE": 2}
    finally:
        simulator.stop()
        remove_secret(secret)


def _image(cloud, order_key: str) -> dict:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in stored_image(cloud, order_key).items()}


# Release for picking ---------------------------------------------------------------------------------------

SHIPMENTS_EVENT = {"source": "shipments"}


@pytest.fixture
def shipping_wms(cloud):
    """The three warehouses (catalogue loaded) and their WMS, registered by its secret: it confirms at once
    and ships an hour after a release. Its clock runs 4 h behind ours, so what it ships is in our past."""
    set_up(cloud)
    clock = ManualWallClock(datetime.now(UTC).replace(microsecond=250_000) - timedelta(hours=4))
    simulator, secret = wms_with_credentials(clock)
    for warehouse_id in WAREHOUSES:
        simulator.configure_warehouse(warehouse_id, ship_after=timedelta(hours=1))
    try:
        yield simulator, clock
    finally:
        simulator.stop()
        remove_secret(secret)


def allocated_through_the_function(cloud, simulator) -> tuple[str, str]:
    """A paid order the AllocationFunction allocated (its INSERT record) and the WMS confirmed: key, WMS id."""
    order = paid_order("taobao", [("KETTLE-1L", 2)])
    store([order])
    answer = cloud.invoke("AllocationFunction", {"Records": [stream_record(stored_image(cloud, order.order_key))]})
    assert answer == {"batchItemFailures": []}
    assert reservation(cloud, order.order_key)["state"]["S"] == "confirmed"
    assert stored_image(cloud, order.order_key)["fulfillment_status"]["S"] == "allocated"
    wms_id = f"{order.order_key}#v1"
    assert simulator.reservation("WH-FAST", wms_id) is not None
    return order.order_key, wms_id


def risk_decided(cloud, order_key: str, risk_status: str) -> dict:
    """The risk engine's writes (`RiskFunction`): its decision, then `ready_to_ship` if allocated and cleared.
    The Orders stream's MODIFY record of the last write that changed the order."""
    decisions, now = RiskDecisionsTable(get_settings().orders_table), datetime.now(UTC)
    before = stored_image(cloud, order_key)
    assert decisions.record(order_key, risk_status, {"action": risk_status, "rule_id": "test"}, now)
    after_decision = stored_image(cloud, order_key)
    if not decisions.promote_ready(order_key, now):
        return stream_record(after_decision, event_name="MODIFY", old_image=before)
    return stream_record(stored_image(cloud, order_key), event_name="MODIFY", old_image=after_decision)


def allocation_filters(cloud) -> list[dict]:
    function = cloud.template.function("AllocationFunction")
    return compile_filters(function.events["OrdersStream"]["Properties"]["FilterCriteria"])


def test_a_cleared_order_is_released_to_its_warehouse_when_ready_to_ship_and_then_ships(cloud, shipping_wms):
    simulator, clock = shipping_wms
    # GIVEN an order allocated by the AllocationFunction, its hold confirmed by WH-FAST's WMS, not yet released
    order_key, wms_id = allocated_through_the_function(cloud, simulator)
    assert not simulator.reservation("WH-FAST", wms_id).released
    # AND the risk engine cleared it: it became ready_to_ship
    record = risk_decided(cloud, order_key, "cleared")
    assert record["dynamodb"]["NewImage"]["fulfillment_status"] == {"S": "ready_to_ship"}
    assert record["dynamodb"]["OldImage"]["fulfillment_status"] == {"S": "allocated"}

    # WHEN Lambda delivers that change to the AllocationFunction (its filter passes it), twice
    assert matches_any(allocation_filters(cloud), record)
    released_at = clock.now()
    assert cloud.invoke("AllocationFunction", {"Records": [record]}) == {"batchItemFailures": []}
    clock.advance(60)
    assert cloud.invoke("AllocationFunction", {"Records": [record]}) == {"batchItemFailures": []}

    # THEN the WMS has it released, at the first delivery's time; our reservation still holds the units
    assert simulator.reservation("WH-FAST", wms_id).released_at == released_at
    assert reservation(cloud, order_key)["state"]["S"] == "confirmed"
    # AND nothing has shipped before ship_after has passed since the release
    clock.advance(timedelta(hours=1) - timedelta(seconds=61))
    early = cloud.invoke("FeedFunction", SHIPMENTS_EVENT)
    assert (early["state"], early["shipments_recorded"]) == ("refreshed", 0)
    assert stored_image(cloud, order_key)["fulfillment_status"]["S"] == "ready_to_ship"

    # WHEN ship_after has passed and the shipments feed runs
    clock.advance(2)
    outcome = cloud.invoke("FeedFunction", SHIPMENTS_EVENT)
    # THEN the parcel left an hour after the release, and the feed recorded the order shipped at that time
    [parcel] = simulator.shipments("WH-FAST")
    assert parcel.reservation_id == wms_id and parcel.shipped_at == released_at + timedelta(hours=1)
    assert (outcome["shipments_recorded"], outcome["shipments_unmatched"]) == (1, 0)
    image = stored_image(cloud, order_key)
    assert image["fulfillment_status"]["S"] == "shipped" and image["shipped_at"]["S"] == iso(parcel.shipped_at)
    assert reservation(cloud, order_key)["state"]["S"] == "deducted"
    assert stock_rows(cloud)["WH-FAST#KETTLE"] == {"on_hand": 8, "reserved": 0, "available": 8, "lines": 0}


@pytest.mark.parametrize("risk_status", ["verifying", "in_review", "blocked"])
def test_a_risk_held_order_is_never_released_so_the_wms_never_ships_it(cloud, shipping_wms, risk_status):
    simulator, clock = shipping_wms
    # GIVEN an order allocated and confirmed by WH-FAST's WMS, which the risk engine holds
    order_key, wms_id = allocated_through_the_function(cloud, simulator)
    record = risk_decided(cloud, order_key, risk_status)
    assert record["dynamodb"]["NewImage"]["fulfillment_status"] == {"S": "allocated"}
    # AND the risk decision's change reaches the AllocationFunction all the same (a wider filter, a replay)
    assert not matches_any(allocation_filters(cloud), record)
    assert cloud.invoke("AllocationFunction", {"Records": [record]}) == {"batchItemFailures": []}

    # WHEN two days pass on the WMS's clock (ship_after is an hour) and the shipments feed runs
    clock.advance(timedelta(days=2))
    outcome = cloud.invoke("FeedFunction", SHIPMENTS_EVENT)

    # THEN the warehouse was never released the order and shipped nothing; the feed recorded nothing
    assert not simulator.reservation("WH-FAST", wms_id).released
    assert simulator.shipments("WH-FAST") == []
    assert (outcome["state"], outcome["shipments_recorded"], outcome["shipments_unmatched"]) == ("refreshed", 0, 0)
    # AND the order is still allocated and held, not shipped
    image = stored_image(cloud, order_key)
    assert image["fulfillment_status"]["S"] == "allocated" and "shipped_at" not in image
    assert image["risk_status"]["S"] == risk_status
    assert reservation(cloud, order_key)["state"]["S"] == "confirmed"
    assert stock_rows(cloud)["WH-FAST#KETTLE"] == {"on_hand": 10, "reserved": 2, "available": 8, "lines": 2}
