"""`oms risk backtest` against the local cloud: the stored orders replayed through a rules file, compared
with the stack's live rules; a bad rules file refused with parse_rule_set's message."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from oms.domain.order import CanonicalOrder
from oms.domain.risk import parse_rule_set
from omsdev.cli import main

from tests.integration.allocation_helpers import store
from tests.integration.risk_helpers import days_ago, risk_order

SHARED = "学院路77号1栋1单元101室"


def refunded(order: CanonicalOrder, at) -> CanonicalOrder:
    iso = at.isoformat().replace("+00:00", "Z")
    return CanonicalOrder.model_validate({**order.model_dump(), "status": "refunded", "channel_status": "REFUNDED",
                                          "updated_at": iso})


def a_history() -> tuple[list[CanonicalOrder], list[CanonicalOrder], list[CanonicalOrder]]:
    """Stored: a buyer's 30 orders of two days ago, refunded a day ago, and 16 orders in the last 12 hours;
    five accounts on one address; and an order still awaiting payment (never replayed)."""
    old = [refunded(risk_order(buyer="returner", paid_at=days_ago(2) + timedelta(minutes=i)), days_ago(1))
           for i in range(30)]
    new = [risk_order(buyer="returner", paid_at=days_ago(0.5) + timedelta(minutes=i)) for i in range(16)]
    ring = [risk_order(buyer=f"ring-{i}", address=SHARED, paid_at=days_ago(0.4) + timedelta(minutes=i))
            for i in range(5)]
    unpaid = CanonicalOrder.model_validate({**risk_order(buyer="later").model_dump(), "status": "pending_payment",
                                            "paid_at": None})
    store(old + new + ring + [unpaid])
    return old, new, ring


def rules_file(tmp_path, volume: int = 15, accounts: int = 5) -> str:
    document = {"version": f"try-{volume}-{accounts}", "rules": [
        {"id": "buyer-volume-returns", "action": "verify", "label": "suspicious", "when": [
            {"fact": "buyer_orders", "op": ">", "value": volume, "window_hours": 24},
            {"fact": "buyer_return_rate", "op": ">", "value": 0.6}]},
        {"id": "shared-address", "action": "review", "when": [
            {"fact": "address_accounts", "op": ">=", "value": accounts}]},
    ]}
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    return str(path)


def oms_backtest(cloud, *arguments: str) -> int:
    return main(["risk", "backtest", *arguments, "--endpoint", cloud.endpoint, "--stack-name", cloud.stack_name])


def test_the_seed_thresholds_replayed_over_the_stored_orders_hold_the_16th_order_and_the_5th_account(
        cloud, tmp_path, capsys):
    # GIVEN the stored history
    old, new, ring = a_history()
    # WHEN the seed's thresholds are backtested, as JSON
    code = oms_backtest(cloud, "--rules", rules_file(tmp_path), "--json")
    # THEN every paid order was replayed, and each rule holds exactly what the live engine would
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["rules_version"], report["orders_replayed"], report["orders_assessed"]) == ("try-15-5", 51, 51)
    rules = {rule["rule_id"]: rule for rule in report["rules"]}
    assert (rules["buyer-volume-returns"]["decides"], rules["buyer-volume-returns"]["examples"]) == (
        1, [new[15].order_key])
    assert (rules["shared-address"]["decides"], rules["shared-address"]["examples"]) == (1, [ring[4].order_key])
    assert report["actions"] == {"allow": 49, "verify": 1, "review": 1, "block": 0} and report["held"] == 2


def test_a_looser_rule_set_is_shown_as_a_table_compared_with_the_stacks_live_rules(cloud, tmp_path, capsys):
    # GIVEN the stored history, and the stack's live rules (the seed's, from the template's parameter)
    old, new, ring = a_history()
    # WHEN thresholds of more than 10 orders and 3 accounts are backtested over the last 13 hours, against live
    code = oms_backtest(cloud, "--rules", rules_file(tmp_path, volume=10, accounts=3), "--compare-live",
                        "--since", (days_ago(0.5) - timedelta(hours=1)).isoformat())
    # THEN the table shows per rule what it decides and matches, and the orders are counted before `since` too
    assert code == 0
    out = capsys.readouterr().out
    assert "rules try-10-3: 21 orders assessed, paid since " in out and "(51 replayed into the aggregates)" in out
    assert re.search(r"^buyer-volume-returns +verify +6 +6 +" + re.escape(new[10].order_key), out, re.M)
    assert re.search(r"^shared-address +review +3 +3 +" + re.escape(ring[2].order_key), out, re.M)
    assert re.search(r"^\(default\) +allow +12 +-$", out, re.M)
    assert "actions: allow 12, verify 6, review 3, block 0  (held 9 of 21)" in out
    # AND the orders whose action would change from the live (seed) rules are listed
    assert "compared with live rules seed-1: 7 orders would change action" in out
    assert "  allow -> review: 2" in out and "  allow -> verify: 5" in out
    assert f"  {new[10].order_key}: allow (default) -> verify (buyer-volume-returns)" in out
    assert f"  {ring[2].order_key}: allow (default) -> review (shared-address)" in out


def _missing(tmp_path):
    return str(tmp_path / "nowhere.json"), "cannot read the rules file (No such file or directory)"


def _not_json(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text("rules: [verify everyone]")
    return str(path), _message_of(path.read_text())


def _bad_schema(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"id": "x", "action": "hold", "when": [
        {"fact": "buyer_return_rate", "op": ">", "value": 60}]}]}))
    return str(path), _message_of(path.read_text())


def _message_of(text: str) -> str:
    with pytest.raises(ValueError) as error:
        parse_rule_set(text)
    return str(error.value)


@pytest.mark.parametrize("bad_file", [_missing, _not_json, _bad_schema], ids=["missing", "not JSON", "bad schema"])
def test_a_bad_rules_file_exits_non_zero_with_the_message_parse_rule_set_gives(tmp_path, capsys, bad_file):
    # GIVEN a rules file that cannot be used (no local cloud is needed to find out: it is checked first)
    path, message = bad_file(tmp_path)
    # WHEN it is backtested
    code = main(["risk", "backtest", "--rules", path, "--endpoint", "http://127.0.0.1:9"])
    # THEN the exit code is 2 and stderr says which file and what is wrong, as the live engine would log it
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"{path}: {message}" and captured.out == ""
    assert message.startswith(("risk rules are invalid: ", "cannot read"))
