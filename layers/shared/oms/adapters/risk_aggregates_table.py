"""The RiskAggregates table: what the risk rules count, kept up to date order by order (no scans).

Key `pk` (S), `sk` (S); `expires_at` (epoch seconds) is the table's TTL attribute. Buyers and
addresses appear only as hashes (`oms.domain.risk.buyer_key`, `oms.domain.address_fingerprint`): no
personal data is stored here.

| pk               | sk                              | what                                               |
|------------------|---------------------------------|----------------------------------------------------|
| `buyer#{hash}`   | `paid#{paid_at}#{order_key}`    | one paid order (sliding windows: a Query COUNT)    |
| `buyer#{hash}`   | `returned#{order_key}`          | marks a return as counted                          |
| `buyer#{hash}`   | `totals`                        | `paid_orders`, `returns` (ADD, exact)              |
| `addr#{hash}`    | `acct#{buyer hash}`             | marks an account as counted for this address       |
| `addr#{hash}`    | `totals`                        | `accounts` (ADD, exact)                            |

Every count moves in one transaction with a marker item put with `attribute_not_exists`: a
redelivered or concurrent record for the same order (or the same account at the same address)
cancels on the marker and counts nothing, so counts stay exact however the stream redelivers.
A sliding window is exact to the second: it counts the paid rows whose `paid_at` falls in it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from oms.adapters import aws

TOTALS = "totals"
# Paid rows live as long as the longest window a rule may use (90 days), and a little more.
PAID_ROW_LIFETIME = timedelta(days=91)
_CONFLICT_ATTEMPTS = 8


class RiskAggregatesTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")

    # Counting ------------------------------------------------------------------------------------

    def count_paid_order(self, buyer: str, order_key: str, paid_at: datetime) -> bool:
        """The buyer's paid order, once: its window row and the buyer's paid total. False: counted before."""
        expires = int((paid_at + PAID_ROW_LIFETIME).timestamp())
        return self._count_once(
            marker={"pk": {"S": f"buyer#{buyer}"}, "sk": {"S": f"paid#{_sortable(paid_at)}#{order_key}"},
                    "expires_at": {"N": str(expires)}},
            totals_key={"pk": {"S": f"buyer#{buyer}"}, "sk": {"S": TOTALS}}, counter="paid_orders")

    def count_return(self, buyer: str, order_key: str) -> bool:
        """The buyer's returned (refunded) order, once. False: counted before."""
        return self._count_once(
            marker={"pk": {"S": f"buyer#{buyer}"}, "sk": {"S": f"returned#{order_key}"}},
            totals_key={"pk": {"S": f"buyer#{buyer}"}, "sk": {"S": TOTALS}}, counter="returns")

    def count_account(self, address: str, buyer: str) -> bool:
        """The account as one of the address's accounts, once. False: it was counted there before."""
        return self._count_once(
            marker={"pk": {"S": f"addr#{address}"}, "sk": {"S": f"acct#{buyer}"}},
            totals_key={"pk": {"S": f"addr#{address}"}, "sk": {"S": TOTALS}}, counter="accounts")

    def _count_once(self, marker: dict, totals_key: dict, counter: str) -> bool:
        items = [
            {"Put": {"TableName": self.name, "Item": marker, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": self.name, "Key": totals_key, "UpdateExpression": "ADD #c :one",
                        "ExpressionAttributeNames": {"#c": counter}, "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        ]
        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                self._dynamodb.transact_write_items(TransactItems=items)
                return True
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False
                if "TransactionConflict" not in reasons:
                    raise
            # Another order of the same buyer or address is counted this instant: meet it again shortly.
            time.sleep(0.01 * 2 ** attempt)
        raise RuntimeError("risk counts kept meeting concurrent transactions on the same totals")

    # Reading ---------------------------------------------------------------------------------------

    def paid_orders_between(self, buyer: str, start: datetime, end: datetime, at_most: int | None = None) -> int:
        """The buyer's paid orders with `start < paid_at <= end` (a Query COUNT over the paid rows),
        counted up to `at_most` when given (the read stops there: newest first)."""
        # "~" sorts after any order key: a row paid exactly at `start` is out, one paid at `end` is in.
        low = f"paid#{_sortable(start)}#~"
        high = f"paid#{_sortable(end)}#~"
        count, kwargs = 0, {
            "TableName": self.name, "Select": "COUNT", "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": {"S": f"buyer#{buyer}"}, ":low": {"S": low}, ":high": {"S": high}},
            "ScanIndexForward": False,
        }
        while True:
            if at_most is not None:
                kwargs["Limit"] = at_most - count
            page = self._dynamodb.query(**kwargs)
            count += page["Count"]
            if "LastEvaluatedKey" not in page or (at_most is not None and count >= at_most):
                return count
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def totals(self, buyer: str | None, address: str | None) -> tuple[dict, dict]:
        """(buyer totals, address totals) in one read; {} for an unknown or never-counted key."""
        keys = []
        if buyer is not None:
            keys.append({"pk": {"S": f"buyer#{buyer}"}, "sk": {"S": TOTALS}})
        if address is not None:
            keys.append({"pk": {"S": f"addr#{address}"}, "sk": {"S": TOTALS}})
        found = {item["pk"]["S"]: {name: int(value["N"]) for name, value in item.items() if "N" in value}
                 for item in aws.batch_get(self.name, keys, ConsistentRead=True)}
        return found.get(f"buyer#{buyer}", {}), found.get(f"addr#{address}", {})


def _sortable(moment: datetime) -> str:
    """UTC with a fixed width (microseconds always written), so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("paid_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
