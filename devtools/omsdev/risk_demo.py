"""Risk in the demo (`oms local up`): the Aliyun SMS simulator the verification codes go to, and a view of
what the risk engine (SPEC C6, C7) decided about the scenario's orders.

The scenario's fraud ring (`omsdev.simulators.scenario.FraudRing`) is the ground truth: its accounts
shipping to one flat must end in review by the shared-address rule once the flat has 5 accounts, the
serial returner's order after the returns must be held for an SMS code (the code visible on the
simulator), and no other order may be held.
"""

from __future__ import annotations

import json
from collections import Counter

from oms.adapters import aws
from oms.adapters.dynamo_codec import from_item
from oms.domain.order import order_key
from oms.settings import get_settings

from omsdev.simulators import aliyun_sms

SHARED_ADDRESS, VOLUME_AND_RETURNS = "shared-address", "buyer-volume-returns"


def start_sms(faults=None) -> aliyun_sms.AliyunSmsSimulator:
    """The Aliyun SMS simulator, its account stored in `{SECRETS_PREFIX}/sms/aliyun` (created or updated)."""
    simulator, credentials = aliyun_sms.launch(faults=faults)
    secrets = aws.client("secretsmanager")
    name = f"{get_settings().secrets_prefix}/sms/aliyun"
    try:
        secrets.create_secret(Name=name, SecretString=json.dumps(credentials))
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=name, SecretString=json.dumps(credentials))
    return simulator


def fraud_keys(runner, shops: list) -> tuple[set[str], set[str]]:
    """The order keys of the scenario's fraud ring and of its serial returner (empty without a ring)."""
    fraud = runner.scenario.fraud_ring
    if fraud is None:
        return set(), set()
    shop_of = {shop.channel: shop.shop_id for shop in shops}

    def keys(channel: str, ids: list[str]) -> set[str]:
        return {order_key(channel, shop_of[channel], order_id) for order_id in ids} if channel in shop_of else set()

    return keys(fraud.ring_channel, runner.ring_ids), keys(fraud.returner_channel, runner.returner_ids)


def summary(runner, shops: list, sms: aliyun_sms.AliyunSmsSimulator) -> list[str]:
    """Lines for the console: decisions by risk_status, the ring, the returner, and the normal orders held."""
    from oms.services.assess_risk import CLEARED

    decisions, undecided = _decisions()
    states = Counter(decision["risk_status"] for decision in decisions.values())
    lines = ["risk: " + ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
             + f" | {undecided} paid orders not yet decided (RiskFunction reads the stream in order)"]
    ring, returner = fraud_keys(runner, shops)
    fraud = runner.scenario.fraud_ring
    if ring:
        lines.append(_ring_line(fraud.ring_channel, ring, decisions))
    if returner:
        lines += _returner_lines(fraud.returner_channel, returner, len(runner.refunded_ids), decisions, sms)
    normal_held = sorted(key for key, decision in decisions.items()
                         if decision["risk_status"] != CLEARED and key not in ring | returner)
    lines.append(f"  normal buyers held: {len(normal_held)}")
    for key in normal_held[:3]:  # what went wrong, if anything did
        decision = decisions[key]
        lines.append(f"    {key}: {decision['risk_status']} by {decision['rule_id']} ({'; '.join(decision['fired'])})")
    return lines


def _ring_line(channel: str, keys: set[str], decisions: dict) -> str:
    from oms.services.assess_risk import CLEARED, IN_REVIEW

    held = [decisions[k] for k in keys
            if decisions.get(k, {}).get("rule_id") == SHARED_ADDRESS and decisions[k]["risk_status"] == IN_REVIEW]
    cleared = [k for k in keys if decisions.get(k, {}).get("risk_status") == CLEARED]
    accounts = sorted(int(decision["facts"]["address_accounts"]) for decision in held)
    text = (f"  fraud ring {'caught' if held else 'NOT caught'}: {len(keys)} new {channel} accounts, one flat written "
            f"several ways -> {len(held)} in review by {SHARED_ADDRESS}")
    if accounts:
        text += f" (accounts at the address: {accounts[0]}..{accounts[-1]})"
    text += f", {len(cleared)} cleared before the address reached 5 accounts"
    others = len(keys) - len(held) - len(cleared)
    return text + (f", {others} not decided or held otherwise" if others else "")


def _returner_lines(channel: str, keys: set[str], returned: int, decisions: dict, sms) -> list[str]:
    from oms.observability import mask_phone
    from oms.services.assess_risk import VERIFYING

    held = sorted(k for k in keys if decisions.get(k, {}).get("rule_id") == VOLUME_AND_RETURNS)
    lines = [(f"  serial returner {'caught' if held else 'NOT caught'}: {len(keys)} {channel} orders, {returned} "
              f"sent back -> {len(held)} held by {VOLUME_AND_RETURNS}")]
    for key in held:
        decision = decisions[key]
        text = f"    {key}: {decision['risk_status']} ({'; '.join(decision['fired'])})"
        phone = decision["phone"]
        delivered = sms.messages(phone) if phone and decision["risk_status"] == VERIFYING else []
        if delivered:
            text += (f"; SMS code {delivered[-1].template_params.get('code')} to {mask_phone(phone)} "
                     "on the Aliyun SMS simulator")
        elif decision["risk_status"] == VERIFYING:
            text += "; no SMS on the simulator"
        lines.append(text)
    return lines


def _decisions() -> tuple[dict[str, dict], int]:
    """(order key -> risk_status, rule, fired conditions, facts and phone of every decided order,
    how many paid orders have no decision yet)."""
    kwargs = {"TableName": get_settings().orders_table,
              "ProjectionExpression": "order_key, #status, risk_status, risk_decision, ship_to.phone",
              "ExpressionAttributeNames": {"#status": "status"}}
    decisions, undecided = {}, 0
    while True:  # the demo's few thousand orders: a console view, not a code path of the system
        page = aws.client("dynamodb").scan(**kwargs)
        for item in map(from_item, page["Items"]):
            if "risk_status" not in item:
                undecided += item.get("status") == "paid"
                continue
            decision = item.get("risk_decision") or {}
            decisions[item["order_key"]] = {
                "risk_status": item["risk_status"], "rule_id": decision.get("rule_id"),
                "fired": decision.get("fired") or [], "facts": decision.get("facts") or {},
                "phone": (item.get("ship_to") or {}).get("phone"),
            }
        if "LastEvaluatedKey" not in page:
            return decisions, undecided
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
