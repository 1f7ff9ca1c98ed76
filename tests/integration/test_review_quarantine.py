"""Quarantined orders reach the reviewers: the poller announces each one on the review queue, the
intake makes it a review item, and a reviewer replays it (refused while the payload still does not
normalize) or dismisses it - each decision in the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from oms.adapters.review_items_table import review_item_id
from oms.services import review
from oms.services.review_dependencies import review_ports
from oms.settings import get_settings
from omsdev.simulators.scenario import Scenario, ScenarioRunner

from tests.integration.channel_helpers import poll_shop
from tests.integration.review_helpers import ADMIN, REVIEWER, RISK_REVIEWER, take_reviews

BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)


def test_a_quarantined_order_becomes_a_review_item_that_a_reviewer_replays_or_dismisses(cloud):
    from omsdev.demo import start_shopify_shop

    # GIVEN a shop whose API returns one broken order among three good ones
    shop = start_shopify_shop("quarantine-review")
    try:
        ScenarioRunner([shop.generator], BACKDATED).seed_backlog(3)
        broken = shop.generator.create(datetime.now(timezone.utc) - timedelta(minutes=3), malformed=True)
        # WHEN the poller runs (twice: an overlapping window sees it again) and the intake takes the queue
        assert poll_shop(cloud, shop)["counts"]["quarantined"] == 1
        poll_shop(cloud, shop)
        taken = take_reviews(cloud)
    finally:
        shop.simulator.stop()
    key = f"shopify#quarantine-review#{broken}"
    item_id = review_item_id("quarantine", key)
    # THEN there is one review item for it, seen twice, with the normalizer's reason
    assert set(taken) == {item_id}
    ports = review_ports(get_settings())
    item = review.get_item(REVIEWER, item_id, ports)
    assert (item["source"], item["reason"], item["occurrences"]) == ("quarantine", "malformed_order", 2)
    assert "quantity" in item["detail"] and item["facts"]["quarantine_id"] == key
    # AND a risk reviewer does not work quarantine items
    with pytest.raises(review.ForbiddenError):
        review.claim_item(RISK_REVIEWER, item_id, ports)
    # WHEN a reviewer replays it before the cause is fixed THEN the engines refuse and nothing changes
    review.claim_item(REVIEWER, item_id, ports)
    with pytest.raises(review.ActionRefusedError, match="still does not normalize"):
        review.decide(REVIEWER, item_id, "replay", "the shop says it is fixed", ports)
    assert ports.items.get(item_id)["status"] == "open"
    # WHEN the reviewer dismisses it THEN the item is resolved and the audit log says so
    outcome = review.decide(REVIEWER, item_id, "reject", "a test order the shop deleted", ports)
    assert outcome["outcome"] == "dismissed" and ports.items.get(item_id)["status"] == "resolved"
    [entry] = review.audit_of(ADMIN, item_id, ports)
    assert (entry["action"], entry["who"]) == ("reject", REVIEWER.username)
