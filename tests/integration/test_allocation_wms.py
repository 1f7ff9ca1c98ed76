"""The seed's pre-reservation: the chosen warehouse's WMS must confirm within 5 s, or the units move
to the next-best warehouse. Over real HTTP to the WMS simulator, with one injected clock for the
allocator and the WMS, so the 5 s pass without anyone sleeping."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from oms.adapters import aws
from oms.services.allocate import allocate_order
from oms.services.dependencies import allocation_ports, order_to_allocate
from oms.settings import get_settings
from omsdev.allocation_setup import WarehouseSetup, load_catalogue
from omsdev.simulators import wms

from tests.integration.allocation_helpers import drain_queue, paid_order, reservation, stock_rows, store, stored_image

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


def _image(cloud, order_key: str) -> dict:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in stored_image(cloud, order_key).items()}
