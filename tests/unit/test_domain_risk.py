"""The risk rules as data and their evaluation: pure, no mocks."""

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from oms.domain.risk import DEFAULT_RULES, RiskFacts, evaluate, parse_rule_set, return_rate


def facts(orders_24h=1, returns=0, paid=1, accounts=1, total="10.00") -> RiskFacts:
    return RiskFacts(buyer_orders_24h=orders_24h, buyer_returns=returns, buyer_paid_orders=paid,
                     buyer_return_rate=return_rate(returns, paid), address_accounts=accounts,
                     order_total=Decimal(total))


@pytest.mark.parametrize(("orders_24h", "returns", "paid", "action"), [
    pytest.param(15, 61, 100, "allow", id="15 orders in 24 h are not more than 15"),
    pytest.param(16, 61, 100, "verify", id="16 orders and 61% returned"),
    pytest.param(16, 60, 100, "allow", id="a return rate of exactly 60% is not above 60%"),
    pytest.param(16, 3, 5, "allow", id="3 of 5 is exactly 60%"),
    pytest.param(16, 2, 3, "verify", id="2 of 3 (66.7%)"),
    pytest.param(40, 0, 40, "allow", id="a big buyer who returns nothing"),
])
def test_the_seed_rule_on_volume_and_returns_fires_only_past_both_thresholds(orders_24h, returns, paid, action):
    # GIVEN the shipped rules WHEN a buyer's facts are evaluated
    decision = evaluate(DEFAULT_RULES, facts(orders_24h=orders_24h, returns=returns, paid=paid))
    # THEN the action is as the seed says, and a fired decision names the rule and the label
    assert decision.action == action
    if action == "verify":
        assert decision.rule_id == "buyer-volume-returns" and decision.label == "suspicious" and decision.holds
        assert decision.fired[0] == f"buyer_orders in 24 h > 15 (was {orders_24h})"
    else:
        assert decision.rule_id is None and not decision.holds


@pytest.mark.parametrize(("accounts", "action"), [(4, "allow"), (5, "review"), (12, "review")])
def test_the_seed_rule_on_one_address_fires_from_five_accounts(accounts, action):
    decision = evaluate(DEFAULT_RULES, facts(accounts=accounts))
    assert decision.action == action
    assert (decision.rule_id == "shared-address") == (action == "review")


def test_rules_are_tried_in_order_and_the_first_match_decides():
    # GIVEN a buyer who trips both seed rules
    both = facts(orders_24h=20, returns=9, paid=10, accounts=6)
    # THEN the first one (verify) decides, in the shipped order
    assert evaluate(DEFAULT_RULES, both).rule_id == "buyer-volume-returns"
    # AND reversing the order makes the address rule decide
    reversed_rules = DEFAULT_RULES.model_copy(update={"rules": tuple(reversed(DEFAULT_RULES.rules))})
    assert evaluate(reversed_rules, both).action == "review"


def test_an_unknown_fact_never_fires_a_rule():
    # GIVEN an order with no buyer id and an address the platform encrypted without a handle
    unknown = RiskFacts(buyer_orders_24h=None, buyer_return_rate=None, buyer_returns=None, buyer_paid_orders=None,
                        address_accounts=None, order_total=Decimal("99"))
    # THEN nothing holds it, and the decision shows the facts as unknown
    decision = evaluate(DEFAULT_RULES, unknown)
    assert decision.action == "allow" and decision.as_dict()["facts"]["address_accounts"] is None


def test_a_rule_set_from_json_with_windows_thresholds_and_a_disabled_rule():
    # GIVEN a rule set an analyst wrote: block huge orders from busy buyers over 7 days; a disabled rule
    document = {"version": "2026-11-30", "rules": [
        {"id": "off", "action": "block", "enabled": False, "when": [{"fact": "order_total", "op": ">=", "value": 0}]},
        {"id": "busy-week", "action": "block", "when": [
            {"fact": "buyer_orders", "op": ">=", "value": 50, "window_hours": 168},
            {"fact": "order_total", "op": ">", "value": "5000"}]},
    ]}
    rules = parse_rule_set(json.dumps(document))
    # THEN it asks for the 7-day window only (the disabled rule needs nothing)
    assert rules.windows() == (168,)
    busy = RiskFacts(buyer_orders_168h=50, order_total=Decimal("5000.01"))
    assert evaluate(rules, busy).action == "block"
    assert evaluate(rules, RiskFacts(buyer_orders_168h=49, order_total=Decimal("9000"))).action == "allow"


@pytest.mark.parametrize(("document", "message"), [
    ({"rules": [{"id": "x", "action": "hold", "when": [{"fact": "order_total", "op": ">", "value": 1}]}]},
     "rules.0.action"),
    ({"rules": [{"id": "x", "action": "review", "when": []}]}, "rules.0.when"),
    ({"rules": [{"id": "x", "action": "review", "when": [{"fact": "buyer_mood", "op": ">", "value": 1}]}]},
     "rules.0.when.0.fact"),
    ({"rules": [{"id": "x", "action": "review", "when": [{"fact": "buyer_return_rate", "op": ">", "value": 60}]}]},
     "between 0 and 1"),
    ({"rules": [{"id": "x", "action": "review", "when": [{"fact": "address_accounts", "op": ">", "value": 4,
                                                           "window_hours": 24}]}]}, "window_hours applies only"),
    ({"rules": [{"id": "x", "action": "review", "when": [{"fact": "address_accounts", "op": ">", "value": 4}]},
                {"id": "x", "action": "block", "when": [{"fact": "address_accounts", "op": ">", "value": 9}]}]},
     "used twice"),
    ({"rules": [], "extra": 1}, "extra"),
])
def test_a_bad_rule_set_is_refused_with_where_and_what(document, message):
    with pytest.raises(ValueError, match="risk rules are invalid") as error:
        parse_rule_set(json.dumps(document))
    assert message in str(error.value)


def test_the_return_rate_is_exact_and_unknown_before_any_paid_order():
    assert return_rate(3, 5) == Fraction(3, 5)
    assert return_rate(0, 0) is None
    assert return_rate(7, 5) == 1  # a return counted before its order's payment was: never above 100%


def test_the_decision_is_json_able_with_rates_rounded():
    decision = evaluate(DEFAULT_RULES, facts(orders_24h=16, returns=2, paid=3))
    document = json.loads(json.dumps(decision.as_dict()))
    assert document["facts"]["buyer_return_rate"] == "0.6667" and document["rules_version"] == "seed-1"
    assert document["fired"] == ["buyer_orders in 24 h > 15 (was 16)", "buyer_return_rate > 0.6 (was 0.6667)"]


def test_a_window_is_counted_only_as_far_as_the_thresholds_need_and_a_capped_count_says_so():
    # GIVEN the seed rules (buyer_orders > 15 in 24 h)
    cap = DEFAULT_RULES.count_cap(24)
    assert cap == 17
    # WHEN a buyer's count stopped at the cap THEN it decides as the full count would, shown as "17+"
    capped = facts(orders_24h=cap, returns=70, paid=100)
    capped.capped.add("buyer_orders_24h")
    decision = evaluate(DEFAULT_RULES, capped)
    assert decision.action == "verify" and decision.as_dict()["facts"]["buyer_orders_24h"] == "17+"
    # AND a count below the cap is exact
    assert evaluate(DEFAULT_RULES, facts(orders_24h=16, returns=70, paid=100)).as_dict()["facts"]["buyer_orders_24h"] == 16
