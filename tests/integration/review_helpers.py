"""Steps shared by the reviewer tests: orders that end in review for a known reason, their items taken
in as the intake does, and reviewers of each role."""

from __future__ import annotations

from oms.adapters.review_items_table import ReviewItemsTable, review_item_id
from oms.domain.review import Reviewer
from oms.services.messages import ReviewMessage
from oms.settings import get_settings
from omsdev.allocation_setup import WarehouseSetup, load_catalogue

from tests.integration.allocation_helpers import drain_queue, paid_order, store, stored_image, stream_record
from tests.integration.risk_helpers import a_phone

REVIEWER = Reviewer("wang.fang@example.com", ("reviewer",))
RISK_REVIEWER = Reviewer("zhao.lei@example.com", ("risk_reviewer",))
ADMIN = Reviewer("chen.jing@example.com", ("admin",))


def warehouses() -> None:
    """WH-EAST has 2 kettles, WH-WEST 10; both serve CN."""
    load_catalogue([WarehouseSetup("WH-EAST", ("CN",), {"KETTLE": 2}, transit_hours={"CN": 12.0}),
                    WarehouseSetup("WH-WEST", ("CN",), {"KETTLE": 10}, transit_hours={"CN": 48.0})],
                   {"KETTLE-1L": [("KETTLE", 1)]})


def take_reviews(cloud) -> list[str]:
    """What the ReviewIntakeFunction does with the queue's messages; the item ids."""
    items = ReviewItemsTable(get_settings().review_items_table)
    taken = []
    for body in drain_queue(cloud, "ReviewQueue"):
        message = ReviewMessage.model_validate(body)
        items.take(message)
        taken.append(review_item_id(message.source, message.order_key))
    return taken


def allocated_order(cloud, quantity: int = 1):
    """A paid order allocated by the AllocationFunction (to WH-EAST, the faster one, while it has stock)."""
    order = paid_order("taobao", [("KETTLE-1L", quantity)])
    order = order.model_copy(update={"ship_to": order.ship_to.model_copy(update={"phone": a_phone(), "name": "张伟"})})
    store([order])
    assert cloud.invoke("AllocationFunction", {"Records": [stream_record(stored_image(cloud, order.order_key))]},
                        bypass_concurrency=True)["batchItemFailures"] == []
    return order


def refused_order(cloud, quantity: int = 13):
    """A paid order no warehouse can fill (more kettles than anyone has): in review, its item taken in."""
    order = paid_order("jd", [("KETTLE-1L", quantity)])
    store([order])
    assert cloud.invoke("AllocationFunction", {"Records": [stream_record(stored_image(cloud, order.order_key))]},
                        bypass_concurrency=True)["batchItemFailures"] == []
    [item_id] = [i for i in take_reviews(cloud) if i == review_item_id("allocation", order.order_key)]
    return order, item_id


def risk_held_order(cloud, quantity: int = 1):
    """A paid order allocated (units held at WH-EAST) and held by risk for review, its item taken in.
    The hold is recorded and queued through the risk engine's own adapters, as a `review` rule does."""
    from datetime import UTC, datetime

    from oms.adapters.review_queue import SqsReviewQueue
    from oms.adapters.risk_decisions import RiskDecisionsTable

    order = allocated_order(cloud, quantity)
    now = datetime.now(UTC)
    decision = {"action": "review", "rule_id": "shared-address", "label": "shared_address", "rules_version": "seed-1",
                "facts": {"address_accounts": 6}, "fired": ["address_accounts >= 5 (was 6)"]}
    assert RiskDecisionsTable(get_settings().orders_table).record(order.order_key, "in_review", decision, now)
    SqsReviewQueue(get_settings().review_queue_url).send(ReviewMessage(
        order_key=order.order_key, source="risk", reason="risk_review", detail="rule shared-address", at=now,
        facts=decision))
    [item_id] = [i for i in take_reviews(cloud) if i == review_item_id("risk", order.order_key)]
    return order, item_id


def quarantine_item(cloud) -> str:
    """A review item for a quarantined order, as the pollers announce one (no stored payload behind it)."""
    import uuid
    from datetime import UTC, datetime

    from oms.adapters.review_queue import SqsReviewQueue

    key = f"shopify#matrix#{uuid.uuid4().int % 10**12}"
    SqsReviewQueue(get_settings().review_queue_url).send(ReviewMessage(
        order_key=key, source="quarantine", reason="malformed_order", detail="line_items[0].quantity: 'two'",
        at=datetime.now(UTC), facts={"quarantine_id": key, "channel": "shopify", "shop_id": "matrix"}))
    [item_id] = [i for i in take_reviews(cloud) if i == review_item_id("quarantine", key)]
    return item_id
