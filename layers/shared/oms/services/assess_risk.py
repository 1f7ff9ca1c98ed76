"""Risk use-cases (SPEC C6): count what the rules need, decide, hold what must be held.

- `assess_order`: a newly paid order is counted into its buyer's and its address's aggregates (each
  count exactly once, however often the record comes), the rules are evaluated over the counts, and
  the decision is stored on the order with the facts behind it: `allow` -> `risk_status: cleared`;
  `verify` -> an SMS code is sent (`verifying`), or, where the platform encrypts the phone, a person
  decides (`in_review`); `review` -> `in_review`; `block` -> `blocked`. Everything not cleared also
  goes to the ReviewQueue with a machine-readable reason.
- `count_return`: a refund arriving as an order update counts as the buyer's return.
- `promote_ready`: an order both allocated and risk-cleared becomes `ready_to_ship` (whichever of the
  two finished last triggers it through the stream); a held order never does.

Idempotent: counts move with marker items; the decision is written only if the order has none yet,
so a redelivered record decides nothing twice and sends no second review message once recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from oms.domain.address_fingerprint import address_fingerprint
from oms.domain.risk import RiskDecision, RiskFacts, RiskRuleSet, buyer_key, evaluate, return_rate
from oms.observability import logger
from oms.ports import Clock, ReviewQueue
from oms.services.messages import ReviewMessage

CLEARED, VERIFYING, IN_REVIEW, BLOCKED = "cleared", "verifying", "in_review", "blocked"
RETURN_STATUSES = ("refunding", "refunded")


@dataclass(frozen=True)
class OrderToAssess:
    """What risk needs of a stored order (from the stream's NewImage)."""

    order_key: str
    channel: str
    channel_order_id: str
    buyer_id: str | None
    paid_at: datetime
    total: Decimal
    ship_to: object  # oms.domain.order.ShipTo


class RiskAggregates(Protocol):
    def count_paid_order(self, buyer: str, order_key: str, paid_at: datetime) -> bool: ...
    def count_return(self, buyer: str, order_key: str) -> bool: ...
    def count_account(self, address: str, buyer: str) -> bool: ...
    def paid_orders_between(self, buyer: str, start: datetime, end: datetime, at_most: int | None = None) -> int: ...
    def totals(self, buyer: str | None, address: str | None) -> tuple[dict, dict]: ...


class RiskDecisions(Protocol):
    def record(self, order_key: str, risk_status: str, decision: dict, now: datetime) -> bool: ...
    def promote_ready(self, order_key: str, now: datetime) -> bool: ...


class Verifications(Protocol):
    def start(self, order: OrderToAssess, decision: RiskDecision) -> str | None:
        """Send the buyer a code; the verification id, or None when no SMS can reach the buyer."""
        ...


@dataclass
class RiskPorts:
    aggregates: RiskAggregates
    decisions: RiskDecisions
    review: ReviewQueue
    verifications: Verifications
    rules: Callable[[], RiskRuleSet]
    clock: Clock


@dataclass
class RiskOutcome:
    order_key: str
    state: str  # cleared | verifying | in_review | blocked | already_decided | return_counted | ...
    rule_id: str | None = None

    def as_dict(self) -> dict:
        return {"order_key": self.order_key, "state": self.state, "rule_id": self.rule_id}


def assess_order(order: OrderToAssess, ports: RiskPorts) -> RiskOutcome:
    rules = ports.rules()
    facts = count_and_read_facts(order, rules, ports.aggregates)
    decision = evaluate(rules, facts)
    now = ports.clock.now()
    if decision.action == "allow":
        status = CLEARED
    elif decision.action == "block":
        status = BLOCKED
    elif decision.action == "verify" and ports.verifications.start(order, decision) is not None:
        status = VERIFYING
    else:
        status = IN_REVIEW
    if status != CLEARED and status != VERIFYING:
        reason = _review_reason(decision, status)
        ports.review.send(ReviewMessage(order_key=order.order_key, source="risk", reason=reason,
                                        detail=_detail(decision, reason), at=now, facts=decision.as_dict()))
    if not ports.decisions.record(order.order_key, status, decision.as_dict(), now):
        return RiskOutcome(order.order_key, "already_decided", decision.rule_id)
    logger.info("risk decision", extra={"order_key": order.order_key, "risk_status": status,
                                        "rule_id": decision.rule_id, "facts": decision.facts.as_dict()})
    return RiskOutcome(order.order_key, status, decision.rule_id)


def count_and_read_facts(order: OrderToAssess, rules: RiskRuleSet, aggregates: RiskAggregates) -> RiskFacts:
    """Count the order into its buyer's and address's aggregates (once), then read the rules' facts."""
    buyer = buyer_key(order.channel, order.buyer_id) if order.buyer_id else None
    fingerprint = address_fingerprint(order.channel, order.ship_to)
    address = fingerprint.value if fingerprint is not None else None
    if buyer is not None:
        aggregates.count_paid_order(buyer, order.order_key, order.paid_at)
        if address is not None:
            aggregates.count_account(address, buyer)
    return read_facts(order, rules, aggregates, buyer, address)


def read_facts(order: OrderToAssess, rules: RiskRuleSet, aggregates: RiskAggregates, buyer: str | None,
               address: str | None) -> RiskFacts:
    buyer_totals, address_totals = aggregates.totals(buyer, address)
    facts = RiskFacts(order_total=order.total, address_accounts=None, buyer_paid_orders=None, buyer_returns=None,
                      buyer_return_rate=None)
    for hours in rules.windows():
        # The window ends at this order's payment: the decision does not depend on when it is assessed.
        name, cap = f"buyer_orders_{hours}h", rules.count_cap(hours)
        facts[name] = None if buyer is None else aggregates.paid_orders_between(
            buyer, order.paid_at - timedelta(hours=hours), order.paid_at, at_most=cap)
        if facts[name] is not None and facts[name] >= cap:
            facts.capped.add(name)
    if buyer is not None:
        paid, returns = buyer_totals.get("paid_orders", 0), buyer_totals.get("returns", 0)
        facts.update(buyer_paid_orders=paid, buyer_returns=returns, buyer_return_rate=return_rate(returns, paid))
    if address is not None:
        facts["address_accounts"] = address_totals.get("accounts", 0)
    return facts


def count_return(order_key: str, channel: str, buyer_id: str | None, ports: RiskPorts) -> RiskOutcome:
    """A refunded (or refunding) order: one more return for its buyer, once."""
    if not buyer_id:
        return RiskOutcome(order_key, "return_without_buyer")
    counted = ports.aggregates.count_return(buyer_key(channel, buyer_id), order_key)
    return RiskOutcome(order_key, "return_counted" if counted else "return_already_counted")


def promote_ready(order_key: str, ports: RiskPorts) -> RiskOutcome:
    """Allocated and cleared -> ready to ship (a no-op when either is missing or it happened already)."""
    promoted = ports.decisions.promote_ready(order_key, ports.clock.now())
    return RiskOutcome(order_key, "ready_to_ship" if promoted else "not_ready")


def _review_reason(decision: RiskDecision, status: str) -> str:
    if decision.action == "verify":
        return "verification_unavailable"  # the platform encrypts the phone, or there is none
    return "risk_blocked" if status == BLOCKED else "risk_review"


def _detail(decision: RiskDecision, reason: str) -> str:
    if reason == "verification_unavailable":
        return (f"rule {decision.rule_id} asks for SMS verification, but no SMS can reach the buyer (the phone "
                "is encrypted by the platform or missing, or the SMS provider refused it): a reviewer decides")
    return f"rule {decision.rule_id} ({decision.label or decision.action}): " + "; ".join(decision.fired)


_RETURNS = RETURN_STATUSES
_PAID_BEFORE = (None, "pending_payment")


def stream_actions(event_name: str, old: dict, new: dict) -> list[str]:
    """What an Orders stream change asks of risk: assess, count a return, promote to ready_to_ship.

    The function's FilterCriteria pass only these changes; this repeats the rules so that a record
    that slips through (a replayed event) still does the right thing, and nothing twice."""
    actions = []
    new_status, old_status = new.get("status"), old.get("status")
    if new_status == "paid" and (event_name == "INSERT" or old_status in _PAID_BEFORE) and "risk_status" not in new:
        actions.append("assess")
    if new_status in _RETURNS and old_status not in _RETURNS:
        actions.append("count_return")
    if new.get("fulfillment_status") == "allocated" and new.get("risk_status") == CLEARED:
        actions.append("promote")
    return actions
