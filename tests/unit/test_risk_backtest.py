"""Backtesting risk rules over constructed order histories: pure, no mocks, no storage."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from oms.domain.risk import DEFAULT_RULES, parse_rule_set
from oms.services.risk_backtest import backtest, replay_order

NOW = datetime(2026, 11, 11, 12, tzinfo=UTC)
HOME = "文三路100号3栋2单元501室"
SHARED = "学院路77号1栋1单元101室"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def stored(buyer: str | None, paid_at: datetime | None, *, address: str = HOME, status: str = "paid",
           updated_at: datetime | None = None, channel: str = "taobao") -> dict:
    """An order as the Orders table keeps it (deserialised), with a unique key."""
    order_id = uuid.uuid4().hex[:16]
    item = {"order_key": f"{channel}#bt#{order_id}", "channel": channel, "channel_order_id": order_id,
            "status": status, "buyer_id": buyer, "total": "99.00", "currency": "CNY",
            "ship_to": {"country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
                        "address": address, "name": "张三", "phone": "+8613800000000", "encrypted": False}}
    times = {"paid_at": paid_at, "created_at": paid_at, "updated_at": updated_at or paid_at}
    item.update({name: iso(moment) for name, moment in times.items() if moment is not None})
    return item


def replayed(items: list[dict]) -> list:
    return [order for order in map(replay_order, items) if order is not None]


def rules(volume: int = 15, accounts: int = 5, *, address_first: bool = False, version: str = "candidate"):
    """The seed's two rules with other thresholds (and optionally the address rule first)."""
    volume_rule = {"id": "buyer-volume-returns", "action": "verify", "label": "suspicious", "when": [
        {"fact": "buyer_orders", "op": ">", "value": volume, "window_hours": 24},
        {"fact": "buyer_return_rate", "op": ">", "value": "0.6"}]}
    address_rule = {"id": "shared-address", "action": "review", "when": [
        {"fact": "address_accounts", "op": ">=", "value": accounts}]}
    ordered = [address_rule, volume_rule] if address_first else [volume_rule, address_rule]
    return parse_rule_set(json.dumps({"version": version, "rules": ordered}))


def returning_buyer(buyer: str = "returner", *, refunded_at: datetime | None = NOW - timedelta(days=1),
                    last_address: str = HOME) -> tuple[list[dict], list[dict]]:
    """30 orders two days ago, all refunded (at `refunded_at`), then 16 orders within the last 12 hours."""
    old = [stored(buyer, NOW - timedelta(days=2, minutes=-i), status="refunded", updated_at=refunded_at)
           for i in range(30)]
    if refunded_at is None:
        for item in old:
            del item["updated_at"]
    new = [stored(buyer, NOW - timedelta(hours=12, minutes=-i)) for i in range(15)]
    new.append(stored(buyer, NOW - timedelta(hours=12, minutes=-15), address=last_address))
    return old, new


def address_ring(accounts: int = 5, first_paid: datetime = NOW - timedelta(hours=13)) -> list[dict]:
    """Different accounts shipping to one address, a minute apart."""
    return [stored(f"ring-{uuid.uuid4().hex[:6]}", first_paid + timedelta(minutes=i), address=SHARED)
            for i in range(accounts)]


def keys(items: list[dict]) -> list[str]:
    return [item["order_key"] for item in items]


def test_the_seed_rules_hold_only_the_16th_order_of_a_returning_buyer_and_the_5th_account_at_one_address():
    # GIVEN a buyer whose 30 orders of two days ago were refunded, then 16 orders today; and 5 accounts on one address
    old, new = returning_buyer()
    ring = address_ring()
    # WHEN the history is replayed through the shipped rules
    report = backtest(replayed(old + new + ring), DEFAULT_RULES)
    # THEN the volume rule decides exactly the 16th new order (16 in 24 h, 30 of 46 returned) ...
    assert (report.rule("buyer-volume-returns").decides, report.rule("buyer-volume-returns").examples) == (
        1, [new[15]["order_key"]])
    # ... the address rule exactly the fifth account, and everything else is allowed
    address = report.rule("shared-address")
    assert (address.decides, address.examples) == (1, [ring[4]["order_key"]])
    assert report.actions == {"allow": 49, "verify": 1, "review": 1, "block": 0}
    assert (report.orders_replayed, report.orders_assessed, report.held, report.default_decides) == (51, 51, 2, 49)


def test_a_looser_threshold_holds_more_orders():
    # GIVEN the same history
    old, new = returning_buyer()
    ring = address_ring()
    orders = replayed(old + new + ring)
    # WHEN the thresholds are lowered to more than 10 orders and 3 accounts
    report = backtest(orders, rules(volume=10, accounts=3))
    # THEN the 11th to 16th new orders and the 3rd to 5th accounts are held
    assert report.rule("buyer-volume-returns").decides == 6
    assert report.rule("buyer-volume-returns").examples == keys(new[10:15])  # five examples at most
    assert report.rule("shared-address").examples == keys(ring[2:])
    assert report.held == 9 and report.actions["verify"] == 6 and report.actions["review"] == 3


def test_orders_before_since_are_not_reported_but_still_count_in_the_aggregates():
    old, new = returning_buyer()
    ring = address_ring(first_paid=NOW - timedelta(days=3))  # four accounts before `since`, the fifth after
    ring[4] = stored("ring-late", NOW - timedelta(hours=1), address=SHARED)
    since = NOW - timedelta(hours=13)
    # WHEN only orders paid in the last 13 hours are reported
    report = backtest(replayed(old + new + ring), DEFAULT_RULES, since=since)
    # THEN only they are assessed, yet the old refunds and the four early accounts still count
    assert (report.orders_replayed, report.orders_assessed) == (51, 17)
    assert report.rule("buyer-volume-returns").examples == [new[15]["order_key"]]
    assert report.rule("shared-address").examples == [ring[4]["order_key"]]
    assert report.as_dict()["since"] == "2026-11-10T23:00:00Z"
    # AND without the earlier history in the replay nothing would be held: the aggregates made the difference
    assert backtest(replayed(new + ring[4:]), DEFAULT_RULES).held == 0


@pytest.mark.parametrize(("refunded_at", "held_old", "held_new"), [
    pytest.param(NOW - timedelta(days=1), 0, 1, id="refunded before the new orders: the returns count for them"),
    pytest.param(NOW, 0, 0, id="refunded after the new orders: not yet returns when they were paid"),
    # Each return then counts right after its own payment: the old burst's 16th to 30th orders are held too.
    pytest.param(None, 15, 1, id="refund time unknown: counted from the order's payment"),
])
def test_a_return_counts_only_from_its_refund_time(refunded_at, held_old, held_new):
    # GIVEN the returning buyer's history, its 30 refunds dated as the case says
    old, new = returning_buyer(refunded_at=refunded_at)
    # WHEN replayed through the shipped rules
    report = backtest(replayed(old + new), DEFAULT_RULES, examples=100)
    # THEN the orders held are those paid after enough refunds
    held = set(report.rule("buyer-volume-returns").examples)
    assert (len(held & set(keys(old))), len(held & set(keys(new)))) == (held_old, held_new)
    assert held_new == 0 or new[15]["order_key"] in held


def test_the_first_matching_rule_decides_and_every_matching_rule_is_counted():
    # GIVEN the returning buyer's 16th order shipped to an address four other accounts used before
    ring = address_ring(accounts=4)
    old, new = returning_buyer(last_address=SHARED)
    orders = replayed(old + new + ring)
    # WHEN replayed in the seed order, the volume rule decides it and the address rule only matches it
    seed = backtest(orders, DEFAULT_RULES)
    assert [(t.rule_id, t.decides, t.matches) for t in seed.rules] == [
        ("buyer-volume-returns", 1, 1), ("shared-address", 0, 1)]
    assert seed.actions["verify"] == 1 and seed.actions["review"] == 0
    # AND with the address rule first, it decides: review instead of verify
    flipped = backtest(orders, rules(address_first=True))
    assert [(t.rule_id, t.decides, t.matches) for t in flipped.rules] == [
        ("shared-address", 1, 1), ("buyer-volume-returns", 0, 1)]
    assert flipped.rule("shared-address").examples == [new[15]["order_key"]]


def test_comparing_with_the_live_rules_lists_the_orders_whose_action_would_change():
    old, new = returning_buyer()
    ring = address_ring()
    # WHEN a looser volume rule is compared with the shipped (live) rules
    report = backtest(replayed(old + new + ring), rules(volume=10), compare=DEFAULT_RULES)
    # THEN the 11th to 15th new orders change from allow to verify; the 16th and the ring's fifth do not change
    compared = report.compared
    assert (compared.rules_version, compared.changed) == ("seed-1", 5)
    assert dict(compared.transitions) == {"allow -> verify": 5}
    assert [c.order_key for c in compared.examples] == keys(new[10:15])
    assert {(c.before, c.before_rule, c.after, c.after_rule) for c in compared.examples} == {
        ("allow", "(default)", "verify", "buyer-volume-returns")}
    assert compared.actions == {"allow": 49, "verify": 1, "review": 1, "block": 0}
    # AND a rule set compared with itself changes nothing
    assert backtest(replayed(old + new + ring), DEFAULT_RULES, compare=DEFAULT_RULES).compared.changed == 0


@pytest.mark.parametrize(("first_before_last", "held"), [
    pytest.param(timedelta(hours=24, seconds=1), 0, id="24 h 1 s before: out of the window"),
    pytest.param(timedelta(hours=24), 0, id="exactly 24 h before: the window's start is excluded"),
    pytest.param(timedelta(hours=23, minutes=59, seconds=59), 1, id="just inside the window"),
])
def test_the_window_ends_at_the_orders_payment_and_excludes_its_start(first_before_last, held):
    # GIVEN 16 orders of one buyer; the first paid some time before the last, the other 14 in between
    last = NOW
    items = [stored("slider", last - first_before_last)]
    items += [stored("slider", last - timedelta(hours=1, minutes=i)) for i in range(14)]
    items.append(stored("slider", last))
    sixteen = parse_rule_set(json.dumps({"rules": [{"id": "sixteen", "action": "block", "when": [
        {"fact": "buyer_orders", "op": ">=", "value": 16, "window_hours": 24}]}]}))
    # THEN only a first order inside (last - 24 h, last] makes the last one the 16th in 24 h
    assert backtest(replayed(items), sixteen).rule("sixteen").decides == held


def test_unpaid_orders_are_not_replayed_and_orders_without_a_buyer_add_no_account():
    # GIVEN an order awaiting payment and one cancelled before payment
    assert replay_order(stored("a", None, status="pending_payment")) is None
    assert replay_order(stored("a", None, status="cancelled", updated_at=NOW)) is None
    # AND a cancelled order that was paid is replayed (the live engine counted its payment)
    assert replay_order(stored("a", NOW, status="cancelled")) is not None
    # GIVEN four accounts on one address, three buyer-less orders there, then a fifth account
    ring = address_ring(accounts=4)
    anonymous = [stored(None, NOW - timedelta(hours=2, minutes=-i), address=SHARED) for i in range(3)]
    fifth = stored("fifth", NOW - timedelta(hours=1), address=SHARED)
    report = backtest(replayed(ring + anonymous + [fifth]), DEFAULT_RULES)
    # THEN only the fifth ACCOUNT is held (a buyer-less order counts no account, but sees the count)
    assert report.rule("shared-address").examples == [fifth["order_key"]]
    assert report.rule("shared-address").matches == 1


def test_a_disabled_rule_is_listed_but_decides_and_matches_nothing_and_the_report_is_json():
    document = {"version": "try-2", "rules": [
        {"id": "big", "action": "block", "enabled": False, "when": [{"fact": "order_total", "op": ">", "value": 0}]},
        {"id": "any", "action": "review", "when": [{"fact": "order_total", "op": ">=", "value": "99"}]}]}
    report = backtest(replayed(address_ring(accounts=2)), parse_rule_set(json.dumps(document)))
    shown = json.loads(json.dumps(report.as_dict()))
    assert [(r["rule_id"], r["enabled"], r["decides"], r["matches"]) for r in shown["rules"]] == [
        ("big", False, 0, 0), ("any", True, 2, 2)]
    assert shown["actions"] == {"allow": 0, "verify": 0, "review": 2, "block": 0} and shown["held"] == 2
    assert shown["rules_version"] == "try-2" and shown["compared"] is None and shown["default_action"] == "allow"
