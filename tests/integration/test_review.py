"""The reviewer use-cases against the local cloud's endpoint: claims that two reviewers never share,
decisions that move real reservations, an audit entry for each, personal data by role."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from oms.adapters.inventory_table import InventoryTable
from oms.domain.review import ClaimConflictError, ForbiddenError, Reviewer
from oms.services import review
from oms.services.review_dependencies import review_ports
from oms.settings import get_settings

from tests.integration.allocation_helpers import reservation, stock_rows, stored_image
from tests.integration.review_helpers import (
    ADMIN,
    REVIEWER,
    RISK_REVIEWER,
    refused_order,
    risk_held_order,
    warehouses,
)


class Clock:
    def __init__(self):
        self.moment = datetime.now(UTC)

    def now(self):
        return self.moment


def test_ten_reviewers_claiming_the_same_items_at_once_get_each_item_exactly_once(cloud):
    # GIVEN five refused orders in review
    warehouses()
    items = [refused_order(cloud)[1] for _ in range(5)]
    ports = review_ports(get_settings())
    reviewers = [Reviewer(f"reviewer-{n}@example.com", ("reviewer",)) for n in range(10)]
    winners: dict[str, list[str]] = {item: [] for item in items}
    lock = threading.Lock()
    start = threading.Barrier(10)

    def claim_all(reviewer: Reviewer) -> None:
        start.wait()
        for item in items:
            try:
                review.claim_item(reviewer, item, ports)
            except ClaimConflictError:
                continue
            with lock:
                winners[item].append(reviewer.username)

    # WHEN ten reviewers claim all five at the same moment
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(claim_all, reviewers))
    # THEN every item has exactly one holder, and the store says the same
    assert all(len(holders) == 1 for holders in winners.values()), winners
    for item, [holder] in winners.items():
        assert ports.items.get(item)["claimed_by"] == holder


def test_a_claim_expires_and_then_another_reviewer_may_take_the_item(cloud):
    warehouses()
    _, item = refused_order(cloud)
    clock = Clock()
    ports = review_ports(get_settings(), clock=clock)
    other = Reviewer("li.wei@example.com", ("reviewer",))
    review.claim_item(REVIEWER, item, ports)
    with pytest.raises(ClaimConflictError, match="claimed by wang.fang"):
        review.claim_item(other, item, ports)
    clock.moment += ports.claim_for + timedelta(seconds=1)
    assert review.claim_item(other, item, ports)["claimed_by"] == other.username
    # AND the first reviewer's decision is refused now: the claim is no longer theirs
    with pytest.raises(ClaimConflictError, match="claimed by li.wei"):
        review.decide(REVIEWER, item, "reject", "out of stock", ports)


def test_reject_releases_exactly_the_orders_units_and_the_audit_log_says_who_and_why(cloud):
    # GIVEN an allocated order (3 kettles held at WH-EAST... 2 in stock: held at WH-WEST) held by risk
    warehouses()
    order, item = risk_held_order(cloud, quantity=3)
    ports = review_ports(get_settings())
    held_before = {k: v["reserved"] for k, v in stock_rows(cloud).items() if v["reserved"]}
    assert held_before == {"WH-WEST#KETTLE": 3}
    # WHEN a risk reviewer claims it and rejects it
    review.claim_item(RISK_REVIEWER, item, ports)
    outcome = review.decide(RISK_REVIEWER, item, "reject", "six accounts on one flat, buyer unreachable", ports)
    # THEN the units are back, the reservation released, the order rejected by risk, the item resolved
    assert outcome["outcome"] == "released"
    assert all(row["reserved"] == 0 and row["lines"] == 0 for row in stock_rows(cloud).values())
    assert reservation(cloud, order.order_key)["state"]["S"] == "released"
    assert stored_image(cloud, order.order_key)["risk_status"]["S"] == "rejected"
    assert ports.items.get(item)["status"] == "resolved"
    # AND the audit log has the decision with the order's state before and after
    [entry] = review.audit_of(ADMIN, item, ports)
    assert (entry["who"], entry["role"], entry["action"]) == (RISK_REVIEWER.username, "risk_reviewer", "reject")
    assert entry["before"]["reservation"]["state"] == "confirmed" and entry["after"]["reservation"]["state"] == "released"
    # AND only admins read the audit log
    with pytest.raises(ForbiddenError):
        review.audit_of(RISK_REVIEWER, item, ports)


def test_an_admin_reassign_moves_the_held_units_atomically_and_a_risk_reviewer_may_not(cloud):
    # GIVEN an order holding 2 kettles at the warehouse the engine chose, held by risk
    warehouses()
    order, item = risk_held_order(cloud, quantity=2)
    ports = review_ports(get_settings())
    [chosen] = [key.split("#")[0] for key, row in stock_rows(cloud).items() if row["reserved"]]
    target = "WH-EAST" if chosen == "WH-WEST" else "WH-WEST"
    # WHEN a risk reviewer tries to move it THEN only admins may, on a risk item
    review.claim_item(RISK_REVIEWER, item, ports)
    with pytest.raises(ForbiddenError, match="only admins"):
        review.decide(RISK_REVIEWER, item, "reassign", "ship from elsewhere", ports, warehouse_id=target)
    # WHEN an admin takes the item over after the claim ran out and moves it
    later = review_ports(get_settings(), clock=_after_claim(ports))
    review.claim_item(ADMIN, item, later)
    outcome = review.decide(ADMIN, item, "reassign", "the first warehouse is flooded", later, warehouse_id=target)
    # THEN both units moved in one step: none left behind, none held twice
    assert outcome["outcome"] == f"allocated: {target}"
    rows = stock_rows(cloud)
    assert (rows[f"{chosen}#KETTLE"]["reserved"], rows[f"{target}#KETTLE"]["reserved"]) == (0, 2)
    assert all(row["reserved"] == row["lines"] for row in rows.values())
    assert [s["warehouse_id"] for s in outcome["order"]["reservation"]["shipments"]] == [target]


def _after_claim(ports):
    clock = Clock()
    clock.moment = datetime.now(UTC) + ports.claim_for + timedelta(seconds=1)
    return clock


def test_a_refused_order_is_reserved_where_the_reviewer_says_once_stock_arrived(cloud):
    # GIVEN 13 kettles asked: the warehouses (2 + 10) cannot fill it even split: refused, in review
    warehouses()
    order, item = refused_order(cloud, quantity=13)
    ports = review_ports(get_settings())
    review.claim_item(REVIEWER, item, ports)
    # WHEN the reviewer tries WH-WEST before the restock THEN the engines refuse and nothing changes
    with pytest.raises(review.ActionRefusedError, match="insufficient_stock"):
        review.decide(REVIEWER, item, "reassign", "try the west", ports, warehouse_id="WH-WEST")
    assert reservation(cloud, order.order_key)["state"]["S"] == "refused"
    # WHEN WH-WEST counts 20 on the shelf and the reviewer reassigns there
    InventoryTable(get_settings().inventory_table).set_on_hand("WH-WEST", "KETTLE", 20)
    outcome = review.decide(REVIEWER, item, "reassign", "restocked this morning", ports, warehouse_id="WH-WEST")
    # THEN all 13 units are held there, confirmed, and the order is allocated
    assert outcome["outcome"] == "allocated: WH-WEST"
    assert stock_rows(cloud)["WH-WEST#KETTLE"]["reserved"] == 13
    assert reservation(cloud, order.order_key)["state"]["S"] == "confirmed"
    assert stored_image(cloud, order.order_key)["fulfillment_status"]["S"] == "allocated"


def test_personal_data_is_shown_in_full_only_to_roles_that_need_it(cloud):
    warehouses()
    order, item = risk_held_order(cloud)
    ports = review_ports(get_settings())
    for_risk = review.get_item(RISK_REVIEWER, item, ports)["order"]
    assert for_risk["ship_to"]["address"] == "x" and for_risk["risk_decision"]["rule_id"] == "shared-address"
    assert for_risk["allocation_decision"]["candidates"]  # the scores are there for the reviewer
    with pytest.raises(ForbiddenError):
        review.get_item(REVIEWER, item, ports)  # a stock reviewer does not work risk items
    _, refused_item = refused_order(cloud)
    shown = review.get_item(REVIEWER, refused_item, ports)["order"]
    assert shown["ship_to"]["address"] == "*" and shown["buyer_id"] is None
    assert shown["ship_to"]["province"] == "浙江省"


def test_a_decision_that_crashed_before_its_audit_entry_is_recorded_by_the_retry(cloud):
    # Regression (found by `oms audit`): the effect was applied and the item resolved before the audit
    # entry was written, so a crash in between left a released hold with no who/why, for good.
    # GIVEN a risk hold claimed by a risk reviewer, and an audit log that fails once
    import dataclasses

    warehouses()
    order, item = risk_held_order(cloud)
    ports = review_ports(get_settings())
    review.claim_item(RISK_REVIEWER, item, ports)
    real_audit, failures = ports.audit, []

    class AuditFailingOnce:
        def __getattr__(self, name):
            return getattr(real_audit, name)

        def append(self, **entry):
            if not failures:
                failures.append(entry)
                raise RuntimeError("the function died here")
            return real_audit.append(**entry)

    flaky = dataclasses.replace(ports, audit=AuditFailingOnce())
    # WHEN the release is decided and the function dies before the audit entry
    with pytest.raises(RuntimeError):
        review.decide(RISK_REVIEWER, item, "release_hold", "buyer called back, order confirmed", flaky)
    # THEN the item is still open under the reviewer's claim, so nothing stands unrecorded for good
    assert ports.items.get(item)["status"] == "open"
    # AND the reviewer's retry completes it: effect in place, item resolved, the decision recorded
    review.decide(RISK_REVIEWER, item, "release_hold", "buyer called back, order confirmed", flaky)
    assert ports.items.get(item)["status"] == "resolved"
    assert stored_image(cloud, order.order_key)["risk_status"]["S"] == "cleared"
    [entry] = review.audit_of(ADMIN, item, ports)
    assert (entry["who"], entry["action"]) == (RISK_REVIEWER.username, "release_hold")
