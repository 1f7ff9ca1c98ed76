"""The risk engine's rules and their evaluation (SPEC C6): pure, no storage, no clock.

A rule set is data - an ordered list of rules, each with conditions over an order's facts and an
action - loaded from configuration and validated by `RiskRuleSet` (a bad document is a ValueError
that says which rule and field are wrong). Evaluation works like a payment-risk rule engine: the
rules are tried in order and the FIRST rule whose conditions all hold decides the action; when none
does, the set's `default_action` (allow). Every decision carries the facts it was taken on and, for
the rule that fired, each condition with the value that met it, so a reviewer sees why.

Actions, from mildest: `allow` (goes on to fulfilment), `verify` (held until the buyer confirms by
SMS), `review` (held for a person), `block` (held; a reviewer can only cancel or overrule it).

Facts (computed by `oms.services.assess_risk` from aggregates kept in DynamoDB):
- `buyer_orders`: the buyer's orders paid in the last `window_hours` (this one included);
- `buyer_return_rate`: returned / paid over the buyer's orders (a Fraction, so 60% is exactly 0.6);
- `buyer_returns`, `buyer_paid_orders`: the two counts behind the rate;
- `address_accounts`: distinct buyer accounts that shipped to this address fingerprint (this one included);
- `order_total`: what the buyer paid (major units of the order's currency).
A fact that is unknown for an order (no buyer id, an encrypted address without a handle) is None,
and a condition on an unknown fact never holds: missing data does not hold an order by itself.

The shipped defaults are the seed's two rules: more than 15 orders in 24 h with a return rate above
60% -> `suspicious` -> verify; 5 or more accounts on one address -> secondary review.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Action = Literal["allow", "verify", "review", "block"]
ACTIONS: tuple[str, ...] = ("allow", "verify", "review", "block")
HOLDING_ACTIONS = ("verify", "review", "block")

FACTS = ("buyer_orders", "buyer_return_rate", "buyer_returns", "buyer_paid_orders", "address_accounts", "order_total")
WINDOWED_FACTS = ("buyer_orders",)
DEFAULT_WINDOW_HOURS = 24

_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
            "!=": operator.ne}


# Far beyond any count, rate or order total a rule may mean; keeps evaluation cheap (no huge integers).
MAX_CONDITION_VALUE = Decimal(10) ** 12


class Condition(BaseModel):
    """`fact op value`, e.g. buyer_orders > 15; `window_hours` only for windowed facts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fact: Literal["buyer_orders", "buyer_return_rate", "buyer_returns", "buyer_paid_orders", "address_accounts",
                  "order_total"]
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: Decimal
    window_hours: int | None = Field(default=None, ge=1, le=24 * 90)

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: Decimal) -> Decimal:
        # `adjusted()` (the exponent) first: comparing a 1e1000000 would overflow the decimal context.
        if not value.is_finite() or value.adjusted() > 12 or value.copy_abs() > MAX_CONDITION_VALUE:
            raise ValueError(f"must be a finite number within +-{MAX_CONDITION_VALUE:,}")
        return value

    @model_validator(mode="after")
    def _window_only_where_it_means_something(self) -> Condition:
        if self.window_hours is not None and self.fact not in WINDOWED_FACTS:
            raise ValueError(f"window_hours applies only to {', '.join(WINDOWED_FACTS)}, not to {self.fact}")
        if self.fact == "buyer_return_rate" and not 0 <= self.value <= 1:
            raise ValueError(f"buyer_return_rate is a share between 0 and 1, got {self.value}")
        return self

    @property
    def window(self) -> int:
        return self.window_hours or DEFAULT_WINDOW_HOURS

    @property
    def fact_key(self) -> str:
        """The name the fact has in `RiskFacts`: windowed facts carry their window."""
        return f"{self.fact}_{self.window}h" if self.fact in WINDOWED_FACTS else self.fact

    def holds(self, facts: RiskFacts) -> bool:
        actual = facts.get(self.fact_key)
        if actual is None:
            return False
        return _COMPARE[self.op](Fraction(actual), Fraction(self.value))

    def describe(self) -> str:
        window = f" in {self.window} h" if self.fact in WINDOWED_FACTS else ""
        return f"{self.fact}{window} {self.op} {self.value}"


class RiskRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str = ""
    when: tuple[Condition, ...] = Field(min_length=1)
    action: Action
    label: str = Field(default="", max_length=64)  # what the order is called when it fires (`suspicious`)
    enabled: bool = True


class RiskRuleSet(BaseModel):
    """The whole configuration: rules in evaluation order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(default="1", min_length=1, max_length=64)
    rules: tuple[RiskRule, ...]
    default_action: Action = "allow"

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: tuple[RiskRule, ...]) -> tuple[RiskRule, ...]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return rules

    def windows(self) -> tuple[int, ...]:
        """The buyer-order windows (hours) the enabled rules need counted."""
        return tuple(sorted({c.window for r in self.rules if r.enabled for c in r.when if c.fact in WINDOWED_FACTS}))

    def count_cap(self, hours: int) -> int:
        """How far a window's orders are counted: two past the largest threshold. A count capped there
        compares with every threshold as the full count would, and one below the cap is exact (the
        decision shows a capped one as "17+"), so a buyer with hundreds of orders a day costs a short
        read, not one item per order."""
        values = [c.value for r in self.rules if r.enabled for c in r.when
                  if c.fact in WINDOWED_FACTS and c.window == hours]
        return int(max(values, default=Decimal(0)).to_integral_value(rounding="ROUND_FLOOR")) + 2


DEFAULT_RULES = RiskRuleSet(
    version="seed-1",
    rules=(
        RiskRule(id="buyer-volume-returns", action="verify", label="suspicious",
                 description="More than 15 orders in 24 hours and a return rate above 60%: confirm by SMS.",
                 when=(Condition(fact="buyer_orders", op=">", value=Decimal(15), window_hours=24),
                       Condition(fact="buyer_return_rate", op=">", value=Decimal("0.6")))),
        RiskRule(id="shared-address", action="review", label="shared_address",
                 description="One shipping address used by 5 or more different accounts: secondary review.",
                 when=(Condition(fact="address_accounts", op=">=", value=Decimal(5)),)),
    ),
)


def parse_rule_set(text: str) -> RiskRuleSet:
    """A rule set from its JSON document; ValueError naming every problem (`rules.1.when.0.op: ...`)."""
    try:
        return RiskRuleSet.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"risk rules are invalid: {problems}") from None


class RiskFacts(dict):
    """Fact name -> value (int, Fraction, Decimal) or None when unknown for this order. `capped`:
    counts that stopped at their cap (the true count is at least that)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.capped: set[str] = set()

    def as_dict(self) -> dict[str, str | int | None]:
        """JSON-able: rates as decimal strings rounded to 4 places (0.61, not 0.6100), counts as ints
        ("17+" for a capped count)."""
        shown: dict[str, str | int | None] = {}
        for name, value in sorted(self.items()):
            if name in self.capped:
                shown[name] = f"{value}+"
            elif value is None or isinstance(value, int):
                shown[name] = value
            elif isinstance(value, Fraction):
                rounded = round(Decimal(value.numerator) / Decimal(value.denominator), 4).normalize()
                shown[name] = f"{rounded:f}"
            else:
                shown[name] = str(value)
        return shown


@dataclass(frozen=True)
class RiskDecision:
    action: str
    rule_id: str | None  # None: no rule fired, the default action
    label: str | None
    rules_version: str
    facts: RiskFacts
    fired: tuple[str, ...] = field(default=())  # the firing rule's conditions, with the values that met them

    @property
    def holds(self) -> bool:
        return self.action in HOLDING_ACTIONS

    def as_dict(self) -> dict:
        return {"action": self.action, "rule_id": self.rule_id, "label": self.label,
                "rules_version": self.rules_version, "facts": self.facts.as_dict(), "fired": list(self.fired)}


def evaluate(rules: RiskRuleSet, facts: RiskFacts) -> RiskDecision:
    """The first enabled rule whose every condition holds decides; else the default action."""
    for rule in rules.rules:
        if rule.enabled and all(condition.holds(facts) for condition in rule.when):
            shown = facts.as_dict()
            fired = tuple(f"{c.describe()} (was {shown.get(c.fact_key)})" for c in rule.when)
            return RiskDecision(rule.action, rule.id, rule.label or None, rules.version, facts, fired)
    return RiskDecision(rules.default_action, None, None, rules.version, facts)


def return_rate(returns: int, paid_orders: int) -> Fraction | None:
    """Exact share of returned orders; None before the buyer has a paid order."""
    if paid_orders <= 0:
        return None
    return Fraction(min(returns, paid_orders), paid_orders)


def buyer_key(channel: str, buyer_id: str) -> str:
    """How the aggregates know a buyer: a hash of the platform's id, scoped by platform (ids of two
    platforms are unrelated), so no buyer id is stored in the aggregates."""
    return hashlib.sha256(f"{channel}#{buyer_id}".encode()).hexdigest()[:32]
