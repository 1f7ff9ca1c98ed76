"""Reservations: all of an order's units held, moved, released or deducted in one transaction.

Every change is one TransactWriteItems over the Reservations table (one item per order: what is
held where, and its state), the Inventory table (each stock row with `available >= qty` as its
condition, and the order's line in that item's partition) and, where the outcome is final, the
order itself (its fulfillment status and allocation; on shipment, when and how it shipped). So an
order is never half-reserved, a unit is never held twice, and the reservation item's conditional put
makes a redelivered record a no-op.
(States: `oms.domain.reservation`.)
"""

from __future__ import annotations

import random
import time
from datetime import datetime

from botocore.exceptions import ClientError

from oms.adapters import aws
from oms.adapters.dynamo_codec import document_value, from_item, to_item, to_value
from oms.adapters.inventory_table import STOCK_ENTRY, epoch_ms, line_entry, stock_id
from oms.domain.allocation import Shipment
from oms.domain.order import format_utc
from oms.domain.reservation import (
    CONFIRMED,
    DEDUCTED,
    PENDING,
    REFUSED,
    RELEASED,
    InsufficientStockError,
    Reservation,
    ReservationChangedError,
    units_of,
)

# DynamoDB cancels a transaction that meets another one on the same item: try again, briefly.
_CONFLICT_ATTEMPTS = 8


class ReservationStore:
    def __init__(self, reservations_table: str, inventory_table: str, orders_table: str):
        self._reservations = reservations_table
        self._inventory = inventory_table
        self._orders = orders_table
        self._dynamodb = aws.client("dynamodb")

    def get(self, order_key: str) -> Reservation | None:
        item = self._dynamodb.get_item(
            TableName=self._reservations, Key={"order_key": {"S": order_key}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else _reservation(from_item(item))

    # Holding units --------------------------------------------------------------------------

    def reserve(self, order_key: str, shipments: tuple[Shipment, ...], decision: dict, now: datetime, *,
                confirmed_allocation: dict | None = None, excluded: tuple[str, ...] = (),
                replacing: Reservation | None = None) -> Reservation | None:
        """Hold every unit of the plan and put the decision on the order; None when the order already
        has a reservation. State pending (the order `reserving`) until the WMS confirms - or, where
        nothing needs confirming, `confirmed_allocation` given: confirmed and the order `allocated`
        in this same transaction (one write of the order instead of two). `replacing`: a refusal
        (nothing held) that a reviewer overrules; it must still be that refusal."""
        state = PENDING if confirmed_allocation is None else CONFIRMED
        version = 1 if replacing is None else replacing.version + 1
        record = {"order_key": order_key, "state": state, "version": version, "shipments": _shipments_value(shipments),
                  "created_at": format_utc(now), "updated_at": format_utc(now), "excluded": list(excluded)}
        put = {"TableName": self._reservations, "Item": to_item(record),
               "ConditionExpression": "attribute_not_exists(order_key)"}
        if replacing is not None:
            put.update(ConditionExpression="#state = :refused AND version = :version",
                       ExpressionAttributeNames={"#state": "state"},
                       ExpressionAttributeValues={":refused": {"S": REFUSED}, ":version": {"N": str(replacing.version)}})
        items = [{"Put": put}]
        items += self._stock_changes(order_key, {}, units_of(shipments))
        items.append(self._order_update(order_key, "reserving" if confirmed_allocation is None else "allocated", now,
                                        decision=decision, allocation=confirmed_allocation))
        reasons = self._transact(items)
        if reasons is None:
            return Reservation(order_key, state, version, shipments, excluded=tuple(excluded))
        if reasons[0] == "ConditionalCheckFailed":
            return None
        raise InsufficientStockError(self._short(items, reasons))

    def move(self, held: Reservation, shipments: tuple[Shipment, ...], excluded: tuple[str, ...], decision: dict,
             now: datetime) -> Reservation:
        """Hold the order's units at other warehouses instead, in one step (WMS fallback, reassignment)."""
        items = [{"Update": {
            "TableName": self._reservations, "Key": {"order_key": {"S": held.order_key}},
            "UpdateExpression": "SET shipments = :shipments, #state = :pending, excluded = :excluded, "
                                "updated_at = :now ADD version :one",
            "ConditionExpression": "version = :version AND #state IN (:pending, :confirmed)",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {
                ":shipments": to_value(_shipments_value(shipments)), ":pending": {"S": PENDING},
                ":confirmed": {"S": CONFIRMED}, ":excluded": to_value(list(excluded)), ":now": {"S": format_utc(now)},
                ":one": {"N": "1"}, ":version": {"N": str(held.version)},
            },
        }}]
        items += self._stock_changes(held.order_key, held.units(), units_of(shipments))
        items.append(self._order_update(held.order_key, "reserving", now, decision=decision))
        reasons = self._transact(items)
        if reasons is None:
            return Reservation(held.order_key, PENDING, held.version + 1, shipments, excluded=excluded)
        if reasons[0] == "ConditionalCheckFailed":
            raise ReservationChangedError(held.order_key)
        raise InsufficientStockError(self._short(items, reasons))

    def confirm(self, held: Reservation, allocation: dict, now: datetime) -> bool:
        """The WMS confirmed: the reservation is confirmed and the order allocated, together (the
        decision with every candidate's scores is on the order since `reserve`/`move`)."""
        items = [
            # No new version: the WMS knows the reservation by this one (`wms_reservation_id`).
            self._state_change(held, CONFIRMED, None, now, bump=False),
            self._order_update(held.order_key, "allocated", now, allocation=allocation),
        ]
        return self._transact(items) is None

    def close(self, held: Reservation, state: str, reason: str, now: datetime, *,
              fulfillment_status: str | None, decision: dict | None = None, shipped_at: datetime | None = None,
              shipment: dict | None = None) -> bool:
        """Give the units back (released, refused) or take them off the shelf (deducted); the order's
        fulfillment status follows when given, with its shipment's time (`shipped_at`) and details
        (`shipment`: warehouse, tracking number, carrier) when known. False when the reservation
        changed meanwhile."""
        if state not in (RELEASED, DEDUCTED, REFUSED):
            raise ValueError(f"cannot close a reservation as {state!r}")
        items = [self._state_change(held, state, reason, now, clear_shipments=state == REFUSED)]
        counts = self._counts(held) if state == DEDUCTED else {}
        for (warehouse_id, sku), quantity in held.units().items():
            item_id = stock_id(warehouse_id, sku)
            update = {"UpdateExpression": "SET reserved = reserved - :q, available = available + :q ADD version :one",
                      "ConditionExpression": "attribute_exists(stock_id)",
                      "ExpressionAttributeValues": {":q": {"N": str(quantity)}, ":one": {"N": "1"}}}
            if state == DEDUCTED:
                update = _shipment_update(quantity, epoch_ms(shipped_at or now), counts.get(item_id, {}))
            items.append({"Update": {
                "TableName": self._inventory, "Key": {"stock_id": {"S": item_id}, "entry": {"S": STOCK_ENTRY}},
                **update}})
            items.append({"Delete": {"TableName": self._inventory,
                                     "Key": {"stock_id": {"S": item_id}, "entry": {"S": line_entry(held.order_key)}}}})
        if fulfillment_status is not None:
            items.append(self._order_update(held.order_key, fulfillment_status, now, decision=decision,
                                            shipped_at=shipped_at, shipment=shipment))
        return self._transact(items) is None

    # Orders that hold nothing -----------------------------------------------------------------

    def refuse(self, order_key: str, reason: str, decision: dict, now: datetime) -> bool:
        """Record that the order holds nothing and went to review (the order says `in_review`).
        False when the order already has a reservation record (a redelivery)."""
        record = {"order_key": order_key, "state": REFUSED, "version": 1, "shipments": [], "reason": reason,
                  "created_at": format_utc(now), "updated_at": format_utc(now)}
        items = [
            {"Put": {"TableName": self._reservations, "Item": to_item(record),
                     "ConditionExpression": "attribute_not_exists(order_key)"}},
            self._order_update(order_key, "in_review", now, decision=decision),
        ]
        return self._transact(items) is None

    def tombstone(self, order_key: str, state: str, reason: str, now: datetime) -> bool:
        """An order closed before anything was held: record it, so a stray later delivery holds nothing."""
        record = {"order_key": order_key, "state": state, "version": 1, "shipments": [], "reason": reason,
                  "created_at": format_utc(now), "updated_at": format_utc(now)}
        return aws.conditional(self._dynamodb.put_item, TableName=self._reservations, Item=to_item(record),
                               ConditionExpression="attribute_not_exists(order_key)") is not None

    # Building blocks ------------------------------------------------------------------------

    def _counts(self, held: Reservation) -> dict[str, dict]:
        """stock_id -> the row's `counted_at` / `last_deducted_at` (what a shipment's update depends on)."""
        keys = [{"stock_id": {"S": stock_id(warehouse_id, sku)}, "entry": {"S": STOCK_ENTRY}}
                for warehouse_id, sku in held.units()]
        return {item["stock_id"]["S"]: {name: int(item[name]["N"]) for name in ("counted_at", "last_deducted_at")
                                        if name in item}
                for item in aws.batch_get(self._inventory, keys, ConsistentRead=True,
                                          ProjectionExpression="stock_id, counted_at, last_deducted_at")}

    def _stock_changes(self, order_key: str, before: dict, after: dict) -> list[dict]:
        """Per stock item, one net update (a transaction may touch an item once) and its line."""
        items = []
        for warehouse_id, sku in sorted(set(before) | set(after)):
            delta = after.get((warehouse_id, sku), 0) - before.get((warehouse_id, sku), 0)
            item_id = stock_id(warehouse_id, sku)
            key = {"stock_id": {"S": item_id}, "entry": {"S": STOCK_ENTRY}}
            if delta > 0:
                items.append({"Update": {
                    "TableName": self._inventory, "Key": key,
                    "UpdateExpression": "SET reserved = reserved + :q, available = available - :q ADD version :one",
                    "ConditionExpression": "available >= :q",
                    "ExpressionAttributeValues": {":q": {"N": str(delta)}, ":one": {"N": "1"}},
                }})
            elif delta < 0:
                items.append({"Update": {
                    "TableName": self._inventory, "Key": key,
                    "UpdateExpression": "SET reserved = reserved - :q, available = available + :q ADD version :one",
                    "ConditionExpression": "attribute_exists(stock_id)",
                    "ExpressionAttributeValues": {":q": {"N": str(-delta)}, ":one": {"N": "1"}},
                }})
            line_key = {"stock_id": {"S": item_id}, "entry": {"S": line_entry(order_key)}}
            if (warehouse_id, sku) in after and delta != 0:
                items.append({"Put": {"TableName": self._inventory, "Item": {
                    **line_key, "order_key": {"S": order_key}, "quantity": {"N": str(after[(warehouse_id, sku)])},
                }}})
            elif (warehouse_id, sku) not in after:
                items.append({"Delete": {"TableName": self._inventory, "Key": line_key}})
        return items

    def _state_change(self, held: Reservation, state: str, reason: str | None, now: datetime, *,
                      clear_shipments: bool = False, bump: bool = True) -> dict:
        expression = "SET #state = :state, updated_at = :now" + (", reason = :reason" if reason else "")
        values = {":state": {"S": state}, ":now": {"S": format_utc(now)}, ":version": {"N": str(held.version)}}
        if bump:
            values[":one"] = {"N": "1"}
        if reason:
            values[":reason"] = {"S": reason}
        if clear_shipments:
            expression += ", shipments = :none"
            values[":none"] = {"L": []}
        return {"Update": {
            "TableName": self._reservations, "Key": {"order_key": {"S": held.order_key}},
            "UpdateExpression": expression + (" ADD version :one" if bump else ""),
            "ConditionExpression": "version = :version", "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": values,
        }}

    def _order_update(self, order_key: str, fulfillment_status: str, now: datetime, *,
                      allocation: dict | None = None, decision: dict | None = None,
                      shipped_at: datetime | None = None, shipment: dict | None = None) -> dict:
        sets, values = ["fulfillment_status = :status", "fulfillment_updated_at = :now"], {
            ":status": {"S": fulfillment_status}, ":now": {"S": format_utc(now)}}
        if shipped_at is not None:
            sets.append("shipped_at = :shipped_at")
            values[":shipped_at"] = {"S": format_utc(shipped_at)}
        if shipment is not None:
            sets.append("shipment = :shipment")
            values[":shipment"] = document_value(shipment)
        if allocation is not None:
            sets.append("allocation = :allocation")
            values[":allocation"] = document_value(allocation)
        if decision is not None:
            sets.append("allocation_decision = :decision")
            values[":decision"] = document_value(decision)
        return {"Update": {
            "TableName": self._orders, "Key": {"order_key": {"S": order_key}},
            "UpdateExpression": "SET " + ", ".join(sets), "ConditionExpression": "attribute_exists(order_key)",
            "ExpressionAttributeValues": values,
        }}

    def _transact(self, items: list[dict]) -> list[str] | None:
        """None when the transaction committed; else each item's cancellation reason code."""
        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                self._dynamodb.transact_write_items(TransactItems=items)
                return None
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
                if "TransactionConflict" not in reasons and reasons:
                    return reasons
                if not reasons:
                    raise
            time.sleep(random.uniform(0, 0.05 * 2 ** attempt))  # jittered backoff before meeting it again
        raise RuntimeError("a reservation kept meeting concurrent transactions on the same items")

    def _short(self, items: list[dict], reasons: list[str]) -> list[tuple[str, str]]:
        short = []
        for item, reason in zip(items, reasons):
            update = item.get("Update")
            if reason == "ConditionalCheckFailed" and update and update["TableName"] == self._inventory:
                warehouse_id, _, sku = update["Key"]["stock_id"]["S"].partition("#")
                short.append((warehouse_id, sku))
        return short


def _shipments_value(shipments: tuple[Shipment, ...]) -> list[dict]:
    return [{"warehouse_id": s.warehouse_id, "lines": [{"sku": sku, "quantity": q} for sku, q in s.lines]}
            for s in shipments]


def _reservation(item: dict) -> Reservation:
    shipments = tuple(
        Shipment(s["warehouse_id"], tuple((line["sku"], int(line["quantity"])) for line in s["lines"]))
        for s in item.get("shipments", [])
    )
    return Reservation(
        order_key=item["order_key"], state=item["state"], version=int(item["version"]), shipments=shipments,
        reason=item.get("reason"),
        excluded=tuple(item.get("excluded", [])),
    )


def _shipment_update(quantity: int, shipped_ms: int, row: dict) -> dict:
    """The stock row's update for `quantity` units shipped at `shipped_ms`, given the row as read (see
    oms.adapters.inventory_table): a shipment the WMS's count already left out gives back its
    reservation only; a later one is taken off on hand too. Each form is conditional on what chose it,
    so a count landing in between cancels the transaction and the close is tried again."""
    values = {":q": {"N": str(quantity)}, ":one": {"N": "1"}, ":shipped": {"N": str(shipped_ms)}}
    if "counted_at" in row and shipped_ms <= row["counted_at"]:
        return {"UpdateExpression": "SET reserved = reserved - :q, available = available + :q ADD version :one",
                "ConditionExpression": "attribute_exists(stock_id) AND counted_at >= :shipped",
                "ExpressionAttributeValues": values}
    after_count = "attribute_exists(stock_id) AND (attribute_not_exists(counted_at) OR counted_at < :shipped)"
    if row.get("last_deducted_at", -1) > shipped_ms:  # an earlier shipment recorded late: the mark stays
        return {"UpdateExpression": "SET on_hand = on_hand - :q, reserved = reserved - :q ADD version :one",
                "ConditionExpression": f"{after_count} AND last_deducted_at > :shipped",
                "ExpressionAttributeValues": values}
    return {"UpdateExpression": "SET on_hand = on_hand - :q, reserved = reserved - :q, last_deducted_at = :shipped "
                                "ADD version :one",
            "ConditionExpression": f"{after_count} AND (attribute_not_exists(last_deducted_at) "
                                   "OR last_deducted_at <= :shipped)",
            "ExpressionAttributeValues": values}
