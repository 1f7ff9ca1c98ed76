"""Risk's writes to the Orders table: the decision, the verification outcome, and `ready_to_ship`.

Each is one conditional UpdateItem on the order, so concurrent or repeated deliveries settle on one
outcome: the decision is written only if the order has none; a verification outcome only moves an
order that is still `verifying`; `ready_to_ship` only when the order is allocated AND cleared.
Each carries a token of its call (`risk_write_token`): when its answer is lost after the write and
botocore's retry meets our own write, the retry does not apply again and its failed condition is read
as done, not as another writer's (a first decision would otherwise be reported `already_decided`, a
reviewer's release of a hold refused).
"""

from __future__ import annotations

from datetime import datetime

from oms.adapters import aws
from oms.adapters.dynamo_codec import to_value
from oms.domain.order import format_utc

TOKEN = "risk_write_token"  # not the OrdersTable's own `write_token`: a risk write must not replace it


class RiskDecisionsTable:
    def __init__(self, orders_table: str):
        self._orders = orders_table
        self._dynamodb = aws.client("dynamodb")

    def record(self, order_key: str, risk_status: str, decision: dict, now: datetime) -> bool:
        """The first decision for the order, with the facts behind it. False: it had one already."""
        return self._update(order_key, "SET risk_status = :status, risk_decision = :decision, risk_updated_at = :now",
                            "attribute_exists(order_key) AND attribute_not_exists(risk_decision)",
                            {":status": {"S": risk_status}, ":decision": to_value(decision),
                             ":now": {"S": format_utc(now)}})

    def settle_verification(self, order_key: str, risk_status: str, outcome: dict, now: datetime) -> bool:
        """A `verifying` order's verification ended (verified -> cleared; failed or expired -> in_review)."""
        return self._update(order_key, "SET risk_status = :status, risk_verification = :outcome, risk_updated_at = :now",
                            "risk_status = :verifying",
                            {":status": {"S": risk_status}, ":outcome": to_value(outcome),
                             ":now": {"S": format_utc(now)}, ":verifying": {"S": "verifying"}})

    def transition(self, order_key: str, to: str, allowed_from: tuple[str, ...], outcome: dict, now: datetime) -> bool:
        """A reviewer's move of the order's risk status (release a hold, verify again); False when the
        order is not in one of `allowed_from` any more."""
        values = {":status": {"S": to}, ":outcome": to_value(outcome), ":now": {"S": format_utc(now)}}
        allowed = []
        for index, status in enumerate(allowed_from):
            values[f":from{index}"] = {"S": status}
            allowed.append(f":from{index}")
        return self._update(order_key, "SET risk_status = :status, risk_review = :outcome, risk_updated_at = :now",
                            f"risk_status IN ({', '.join(allowed)})", values)

    def promote_ready(self, order_key: str, now: datetime) -> bool:
        """Allocated and cleared -> `ready_to_ship`. False when either is missing (or it is done)."""
        return self._update(order_key, "SET fulfillment_status = :ready, ready_at = :now",
                            "fulfillment_status = :allocated AND risk_status = :cleared",
                            {":ready": {"S": "ready_to_ship"}, ":now": {"S": format_utc(now)},
                             ":allocated": {"S": "allocated"}, ":cleared": {"S": "cleared"}})

    def _update(self, order_key: str, expression: str, condition: str, values: dict) -> bool:
        return aws.update_once(self._dynamodb.update_item, TOKEN, TableName=self._orders,
                               Key={"order_key": {"S": order_key}}, UpdateExpression=expression,
                               ConditionExpression=condition, ExpressionAttributeValues=values)
