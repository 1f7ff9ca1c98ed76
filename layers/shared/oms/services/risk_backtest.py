"""Backtesting a risk rule set (issue 5, item 6): how many stored orders each rule would hold.

A risk analyst tunes thresholds before a rule goes live: `backtest` replays stored orders through a
rule set and reports, per rule, how many orders it DECIDES (the first enabled rule that matches: what
the live engine would do) and how many it MATCHES (whatever comes before it, so a rule shadowed by an
earlier one still shows), the totals per action, and a few example order keys. Given a second rule
set (the live one), it also reports the orders whose action would change.

The aggregates are rebuilt in memory by `MemoryRiskAggregates`, which keeps the live engine's
`RiskAggregates` contract, and the facts are read by the live engine's own `count_and_read_facts` /
`read_facts`: same windows (ending at the order's payment, start excluded), same paid and return
totals, same accounts per address fingerprint (counted only when a buyer is known). Orders paid
before `since` are counted into the aggregates but left out of the report.

Where a replay can only approximate the live order of events (stored orders keep their latest state,
not their history):
- Orders are replayed in `paid_at` order (ties by order key); the live engine counts them in the
  order the stream delivers them, which is nearly the same.
- A return is an order whose stored status is refunding or refunded. It counts from its refund time
  onwards, taken as the order's `updated_at` (its latest version: a refund that went refunding ->
  refunded is dated at its last step, where the live engine counted it at the first); never before its
  payment, and from its payment when the order has no `updated_at`. A refund the platform later
  reverted is not seen, though the live engine counted it.
- Every stored order that was paid is counted (status not pending_payment; a cancelled order only
  with a `paid_at`), including one first stored already shipped, which the live engine (assessing
  on the transition to paid) never counted. Without `paid_at`, its created or updated time stands in,
  as `order_to_assess` does.
- One rule set decides every order, whereas the live rules may have changed over the period.

Pure: no storage and no clock; the caller reads the orders (`omsdev.commands.risk` scans the table).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from oms.domain.address_fingerprint import address_fingerprint
from oms.domain.order import parse_utc
from oms.domain.risk import ACTIONS, HOLDING_ACTIONS, RiskRuleSet, buyer_key, evaluate
from oms.services.assess_risk import RETURN_STATUSES, OrderToAssess, count_and_read_facts, read_facts

EXAMPLES_PER_RULE = 5
CHANGED_EXAMPLES = 20
DEFAULT_RULE = "(default)"  # how the report names "no rule fired": the set's default action decided


@dataclass(frozen=True)
class ReplayOrder:
    """A stored order as the replay needs it: what risk assesses, and when it became a return (if it did)."""

    order: OrderToAssess
    returned_at: datetime | None = None


def replay_order(image: dict) -> ReplayOrder | None:
    """A stored order (the Orders item, deserialised) as a ReplayOrder; None when it was never paid."""
    from oms.services.risk_dependencies import order_to_assess

    status = image.get("status")
    if not image.get("order_key") or not image.get("channel") or status in (None, "pending_payment"):
        return None
    if status == "cancelled" and not image.get("paid_at"):
        return None  # cancelled before payment: the live engine never saw it paid
    if not (image.get("paid_at") or image.get("created_at") or image.get("updated_at")):
        return None  # nowhere to place it in time (order_to_assess would say "now")
    order = order_to_assess(image)
    returned_at = None
    if status in RETURN_STATUSES:
        updated = image.get("updated_at")
        returned_at = max(order.paid_at, parse_utc(updated)) if updated else order.paid_at
    return ReplayOrder(order, returned_at)


class MemoryRiskAggregates:
    """The live `RiskAggregates` contract kept in memory: each count once, windows exact to the microsecond."""

    def __init__(self) -> None:
        self._paid_times: dict[str, list[datetime]] = defaultdict(list)
        self._counted: set[tuple[str, str, str]] = set()
        self._buyer_totals: dict[str, Counter] = defaultdict(Counter)
        self._accounts: dict[str, set[str]] = defaultdict(set)

    def _once(self, *marker: str) -> bool:
        if marker in self._counted:
            return False
        self._counted.add(marker)
        return True

    def count_paid_order(self, buyer: str, order_key: str, paid_at: datetime) -> bool:
        if not self._once("paid", buyer, order_key):
            return False
        insort(self._paid_times[buyer], paid_at)
        self._buyer_totals[buyer]["paid_orders"] += 1
        return True

    def count_return(self, buyer: str, order_key: str) -> bool:
        if not self._once("returned", buyer, order_key):
            return False
        self._buyer_totals[buyer]["returns"] += 1
        return True

    def count_account(self, address: str, buyer: str) -> bool:
        if buyer in self._accounts[address]:
            return False
        self._accounts[address].add(buyer)
        return True

    def paid_orders_between(self, buyer: str, start: datetime, end: datetime, at_most: int | None = None) -> int:
        """Paid orders with `start < paid_at <= end`, like the table's Query (capped like it)."""
        times = self._paid_times.get(buyer, [])
        count = bisect_right(times, end) - bisect_right(times, start)
        return count if at_most is None else min(count, at_most)

    def totals(self, buyer: str | None, address: str | None) -> tuple[dict, dict]:
        buyer_totals = dict(self._buyer_totals.get(buyer, {})) if buyer is not None else {}
        accounts = len(self._accounts.get(address, ())) if address is not None else 0
        return buyer_totals, ({"accounts": accounts} if accounts else {})


@dataclass
class RuleTally:
    rule_id: str
    action: str
    label: str | None
    enabled: bool
    decides: int = 0  # orders this rule would decide (first match): what it holds when its action holds
    matches: int = 0  # orders whose facts meet every condition, whatever rule comes first
    examples: list[str] = field(default_factory=list)  # the first order keys it decides

    def as_dict(self) -> dict:
        return {"rule_id": self.rule_id, "action": self.action, "label": self.label, "enabled": self.enabled,
                "decides": self.decides, "matches": self.matches, "examples": list(self.examples)}


@dataclass(frozen=True)
class ActionChange:
    """An order whose action differs between the compared rule set (before) and the tested one (after)."""

    order_key: str
    before: str
    before_rule: str
    after: str
    after_rule: str

    def as_dict(self) -> dict:
        return {"order_key": self.order_key, "before": self.before, "before_rule": self.before_rule,
                "after": self.after, "after_rule": self.after_rule}


@dataclass
class Comparison:
    rules_version: str
    actions: dict[str, int]
    changed: int = 0
    transitions: Counter = field(default_factory=Counter)  # "allow -> verify" -> orders
    examples: list[ActionChange] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"rules_version": self.rules_version, "actions": dict(self.actions), "changed": self.changed,
                "transitions": dict(sorted(self.transitions.items())),
                "examples": [change.as_dict() for change in self.examples]}


@dataclass
class BacktestReport:
    rules_version: str
    since: datetime | None
    orders_replayed: int  # paid orders counted into the aggregates (before `since` included)
    orders_assessed: int  # of those, paid at or after `since`: the ones decided and reported
    rules: list[RuleTally]
    default_action: str
    default_decides: int  # assessed orders no rule decided: the set's default action decided them
    actions: dict[str, int]
    compared: Comparison | None = None

    @property
    def held(self) -> int:
        return sum(self.actions[action] for action in HOLDING_ACTIONS)

    def rule(self, rule_id: str) -> RuleTally:
        return next(tally for tally in self.rules if tally.rule_id == rule_id)

    def as_dict(self) -> dict:
        return {"rules_version": self.rules_version,
                "since": None if self.since is None else self.since.isoformat().replace("+00:00", "Z"),
                "orders_replayed": self.orders_replayed, "orders_assessed": self.orders_assessed,
                "held": self.held, "actions": dict(self.actions), "default_action": self.default_action,
                "default_decides": self.default_decides,
                "rules": [tally.as_dict() for tally in self.rules],
                "compared": None if self.compared is None else self.compared.as_dict()}


def backtest(orders: Iterable[ReplayOrder], rules: RiskRuleSet, *, since: datetime | None = None,
             compare: RiskRuleSet | None = None, examples: int = EXAMPLES_PER_RULE,
             changed_examples: int = CHANGED_EXAMPLES) -> BacktestReport:
    """Replay `orders` through `rules` (and `compare`, when given) and count what each rule would do."""
    tallies = [RuleTally(rule.id, rule.action, rule.label or None, rule.enabled) for rule in rules.rules]
    by_id = {tally.rule_id: tally for tally in tallies}
    actions = dict.fromkeys(ACTIONS, 0)
    comparison = None if compare is None else Comparison(compare.version, dict.fromkeys(ACTIONS, 0))
    aggregates = MemoryRiskAggregates()
    replayed = assessed = by_default = 0
    for kind, _, replay in _events(orders):
        order = replay.order
        if kind == _RETURN:
            if order.buyer_id:
                aggregates.count_return(buyer_key(order.channel, order.buyer_id), order.order_key)
            continue
        replayed += 1
        facts = count_and_read_facts(order, rules, aggregates)
        if since is not None and order.paid_at < since:
            continue
        assessed += 1
        decision = evaluate(rules, facts)
        actions[decision.action] += 1
        for rule in rules.rules:
            if rule.enabled and all(condition.holds(facts) for condition in rule.when):
                by_id[rule.id].matches += 1
        if decision.rule_id is None:
            by_default += 1
        else:
            tally = by_id[decision.rule_id]
            tally.decides += 1
            if len(tally.examples) < examples:
                tally.examples.append(order.order_key)
        if comparison is not None:
            before = evaluate(compare, read_facts(order, compare, aggregates, *_keys(order)))
            comparison.actions[before.action] += 1
            if before.action != decision.action:
                comparison.changed += 1
                comparison.transitions[f"{before.action} -> {decision.action}"] += 1
                if len(comparison.examples) < changed_examples:
                    comparison.examples.append(ActionChange(
                        order.order_key, before.action, before.rule_id or DEFAULT_RULE,
                        decision.action, decision.rule_id or DEFAULT_RULE))
    return BacktestReport(rules.version, since, replayed, assessed, tallies, rules.default_action, by_default, actions,
                          comparison)


_PAID, _RETURN = 0, 1  # at the same instant a payment goes first: an order is paid before it is returned


def _events(orders: Iterable[ReplayOrder]) -> list[tuple[int, str, ReplayOrder]]:
    """Payments and returns on one timeline, oldest first."""
    timeline = []
    for replay in orders:
        timeline.append((replay.order.paid_at, _PAID, replay.order.order_key, replay))
        if replay.returned_at is not None:
            timeline.append((replay.returned_at, _RETURN, replay.order.order_key, replay))
    timeline.sort(key=lambda event: event[:3])
    return [(kind, key, replay) for _, kind, key, replay in timeline]


def _keys(order: OrderToAssess) -> tuple[str | None, str | None]:
    """The buyer and address keys the aggregates know the order by (as `count_and_read_facts` makes them)."""
    buyer = buyer_key(order.channel, order.buyer_id) if order.buyer_id else None
    fingerprint = address_fingerprint(order.channel, order.ship_to)
    return buyer, None if fingerprint is None else fingerprint.value
