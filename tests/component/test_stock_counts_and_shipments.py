"""The WMS's count and our record of its shipments on one stock row (oms.adapters.inventory_table):
each shipped unit leaves on hand once, whichever of the two arrives first, and an older count never
undoes a shipment we took off. Real moto endpoint, the real InventoryTable and ReservationStore."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from oms.adapters import aws
from oms.adapters.inventory_table import InventoryTable
from oms.adapters.reservation_store import ReservationStore
from oms.domain.allocation import Shipment
from oms.domain.reservation import DEDUCTED

from tests.component.test_conditional_writes_under_faults import make_table, proxy, stored  # noqa: F401 - fixtures

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def held_kettles(make_table, units: int, on_hand: int):
    """An inventory of `on_hand` kettles at WH-EAST counted at T0, and an order holding `units` of them:
    (inventory, reservations, the order's key, the orders table)."""
    inventory = InventoryTable(make_table("inventory", "stock_id", "entry"))
    assert inventory.set_on_hand("WH-EAST", "KETTLE", on_hand, T0)
    orders = make_table("orders", "order_key")
    reservations = ReservationStore(make_table("reservations", "order_key"), inventory.name, orders)
    order_key = paid_order(orders)
    assert reservations.reserve(order_key, (Shipment("WH-EAST", (("KETTLE", units),)),), {"rule": "test"},
                                T0, confirmed_allocation={"shipments": []}) is not None
    return inventory, reservations, order_key, orders


def paid_order(orders: str) -> str:
    order_key = f"jd#shop#{uuid.uuid4().hex[:10]}"
    aws.client("dynamodb").put_item(TableName=orders, Item={"order_key": {"S": order_key}, "status": {"S": "paid"}})
    return order_key


def stock(moto_endpoint, inventory: InventoryTable) -> tuple[int, int, int]:
    row = stored(moto_endpoint, inventory.name, stock_id="WH-EAST#KETTLE", entry="stock")
    return row["on_hand"], row["reserved"], row["available"]


def test_a_count_taken_after_the_wms_shipped_and_before_we_recorded_it_takes_the_units_off_once(
        proxy, make_table, moto_endpoint):
    # GIVEN 10 kettles counted at T0, 4 of them held by an order the WMS ships at T0+1 min
    inventory, reservations, order_key, _ = held_kettles(make_table, units=4, on_hand=10)
    # WHEN the WMS's count at T0+2 min (6 on the shelf) arrives before we record the shipment
    assert inventory.set_on_hand("WH-EAST", "KETTLE", 6, T0 + timedelta(minutes=2))
    assert stock(moto_endpoint, inventory) == (6, 4, 2)  # the 4 are still held by us: cautious, never more
    held = reservations.get(order_key)
    assert reservations.close(held, DEDUCTED, "shipped", T0 + timedelta(minutes=3), fulfillment_status="shipped",
                              shipped_at=T0 + timedelta(minutes=1))
    # THEN the shipment gives back its hold only: 6 on hand, as the WMS counts, all 6 available (not 2)
    assert stock(moto_endpoint, inventory) == (6, 0, 6)


def test_a_shipment_recorded_before_the_next_count_is_taken_off_and_an_older_count_does_not_undo_it(
        proxy, make_table, moto_endpoint):
    # GIVEN 10 kettles counted at T0, 4 held by an order shipped at T0+5 min and recorded at once
    inventory, reservations, order_key, _ = held_kettles(make_table, units=4, on_hand=10)
    assert reservations.close(reservations.get(order_key), DEDUCTED, "shipped", T0 + timedelta(minutes=5),
                              fulfillment_status="shipped", shipped_at=T0 + timedelta(minutes=5))
    assert stock(moto_endpoint, inventory) == (6, 0, 6)
    # WHEN a count taken at T0+4 min (still 10 on the shelf) arrives late
    applied = inventory.set_on_hand("WH-EAST", "KETTLE", 10, T0 + timedelta(minutes=4))
    # THEN it is not applied (it would sell the 4 shipped kettles again); the next count is
    assert not applied and stock(moto_endpoint, inventory) == (6, 0, 6)
    assert inventory.set_on_hand("WH-EAST", "KETTLE", 7, T0 + timedelta(minutes=6))  # one returned to the shelf
    assert stock(moto_endpoint, inventory) == (7, 0, 7)


def test_two_shipments_recorded_out_of_order_both_leave_on_hand_once(proxy, make_table, moto_endpoint):
    # GIVEN 10 kettles counted at T0, held by two orders (3 and 2) shipped at T0+2 and T0+1 min
    inventory, reservations, first, orders = held_kettles(make_table, units=3, on_hand=10)
    second = paid_order(orders)
    assert reservations.reserve(second, (Shipment("WH-EAST", (("KETTLE", 2),)),), {"rule": "test"}, T0,
                                confirmed_allocation={"shipments": []}) is not None
    # WHEN the later shipment is recorded first, then the earlier one, then a count from before both
    for order_key, minute in ((first, 2), (second, 1)):
        assert reservations.close(reservations.get(order_key), DEDUCTED, "shipped", T0 + timedelta(minutes=3),
                                  fulfillment_status="shipped", shipped_at=T0 + timedelta(minutes=minute))
    late_count = inventory.set_on_hand("WH-EAST", "KETTLE", 10, T0 + timedelta(seconds=30))
    # THEN each left on hand once, and the count from before them changed nothing
    assert not late_count and stock(moto_endpoint, inventory) == (5, 0, 5)
