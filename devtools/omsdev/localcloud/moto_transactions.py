"""TransactWriteItems for the local cloud's moto: all or nothing, without copying whole tables.

moto backs up every table a transaction touches (a deep copy of all its items) before applying it,
so each transaction costs time in proportion to the data held: with a few thousand orders stored, a
reservation takes tens of milliseconds and a concurrency test minutes. The local cloud serves
DynamoDB requests one at a time, so nothing can run between a transaction's checks and its writes;
this version therefore first checks every item's condition against the current items and, if one
fails, writes nothing and answers with the cancellation reasons DynamoDB gives (per item, in order).
Only then are the writes applied. A write that still fails (an update expression moto rejects) puts
back the items already written and re-raises, as before.

It also honours `ClientRequestToken` as DynamoDB does, which moto ignores: botocore fills one in and
sends it again when it retries, so a transaction whose answer was lost after it landed is answered as
done for 10 minutes instead of being applied again (or cancelled by its own writes); the same token
with a different request is an IdempotentParameterMismatchException.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    DynamodbException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

_OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")
TOKEN_SECONDS = 600  # DynamoDB's idempotency window for ClientRequestToken


class IdempotentParameterMismatchException(DynamodbException):
    def __init__(self) -> None:
        super().__init__(ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                         "The request uses the same client token as a previous, but non-identical request.")


class _CompletedTransactions:
    """Client tokens of the transactions that succeeded, with a digest of their request, for 10 minutes."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()  # oldest first: expired ones lead
        self._lock = threading.Lock()

    def digest_of(self, token: str) -> str | None:
        with self._lock:
            now = time.monotonic()
            while self._seen and next(iter(self._seen.values()))[1] <= now:
                self._seen.popitem(last=False)
            entry = self._seen.get(token)
            return entry[0] if entry else None

    def remember(self, token: str, digest: str) -> None:
        with self._lock:
            self._seen[token] = (digest, time.monotonic() + TOKEN_SECONDS)
            self._seen.move_to_end(token)


_completed = _CompletedTransactions()
_moto_handler = DynamoHandler.transact_write_items


def install() -> None:
    """Replace moto's TransactWriteItems in this process (idempotent)."""
    DynamoDBBackend.transact_write_items = _transact_write_items
    DynamoHandler.transact_write_items = _transact_write_items_once


def _transact_write_items_once(self: DynamoHandler):
    token = self.body.get("ClientRequestToken")
    if token is None:
        return _moto_handler(self)
    digest = hashlib.sha256(json.dumps(self.body["TransactItems"], sort_keys=True).encode()).hexdigest()
    key = f"{self.current_account}:{self.region}:{token}"
    done = _completed.digest_of(key)
    if done is not None:
        if done != digest:
            raise IdempotentParameterMismatchException()
        return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
    result = _moto_handler(self)
    _completed.remember(key, digest)
    return result


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    operations, seen = [], set()
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        kind, operation = next(iter(entry.items()))
        if kind not in _OPERATIONS:
            raise ValueError("Unsupported transaction operation")
        table = self.get_table(operation["TableName"])
        key = _key(table, kind, operation)
        marker = (table.name, json.dumps(key, sort_keys=True))
        if marker in seen:  # DynamoDB refuses two operations on one item in a transaction
            raise MultipleTransactionsException()
        seen.add(marker)
        operations.append((kind, operation, key))

    reasons = [_check(self, operation, key) for _, operation, key in operations]
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    before = [(operation["TableName"], key, copy.deepcopy(self.get_item(operation["TableName"], key)))
              for kind, operation, key in operations if kind != "ConditionCheck"]
    try:
        for kind, operation, key in operations:
            _apply(self, kind, operation, key)
    except Exception:
        for table_name, key, item in before:
            if item is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, item.to_json()["Attributes"])
        raise


def _key(table, kind: str, operation: dict) -> dict:
    if kind != "Put":
        return operation["Key"]
    item = operation["Item"]
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _check(backend: DynamoDBBackend, operation: dict, key: dict) -> tuple:
    """(None, None, None) when the item's condition holds, else DynamoDB's cancellation reason."""
    condition = operation.get("ConditionExpression")
    if condition is None:
        return None, None, None
    current = backend.get_item(operation["TableName"], key)
    expression = get_filter_expression(condition, operation.get("ExpressionAttributeNames"),
                                       operation.get("ExpressionAttributeValues"))
    if expression.expr(current):
        return None, None, None
    returned = None
    if operation.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
        returned = current.to_json()["Attributes"]
    return "ConditionalCheckFailed", "The conditional request failed", returned


def _apply(backend: DynamoDBBackend, kind: str, operation: dict, key: dict) -> None:
    names, values = operation.get("ExpressionAttributeNames"), operation.get("ExpressionAttributeValues")
    if kind == "Put":
        backend.put_item(operation["TableName"], operation["Item"], expression_attribute_names=names,
                         expression_attribute_values=values)
    elif kind == "Delete":
        backend.delete_item(operation["TableName"], key, expression_attribute_names=names,
                            expression_attribute_values=values)
    elif kind == "Update":
        backend.update_item(operation["TableName"], key, update_expression=operation["UpdateExpression"],
                            expression_attribute_names=names, expression_attribute_values=values)
