"""Reviewer use-cases (SPEC C8): list and read review items, claim one, decide it, with an audit trail.

Every decision runs the same way: the item exists (else ItemNotFoundError), the role may take this
action on this kind of item (ForbiddenError / InvalidActionError, `oms.domain.review`), the
reviewer holds the item's claim (ClaimConflictError), the action's effect is applied through the
engines' own idempotent use-cases (allocation's reassign and release, risk's status transition,
verification's resend), the item is resolved, and an audit entry records who, role, when, action,
reason, and the order's state before and after. An effect the engines refuse (a warehouse that
cannot take the order, a buyer no SMS can reach) is ActionRefusedError and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from oms.domain.review import (
    DEFAULT_CLAIM,
    ClaimConflictError,
    ForbiddenError,
    InvalidActionError,
    ItemNotFoundError,
    Reviewer,
    ReviewError,
    check_action,
    may_work_on,
    ship_to_for,
    sources_for,
    stamp,
)
from oms.observability import logger
from oms.ports import Clock

HELD_STATUSES = ("in_review", "blocked", "verifying")


class ActionRefusedError(ReviewError):
    """The engines cannot do what the reviewer asked (nothing was changed)."""


@dataclass
class ReviewPorts:
    items: object  # oms.adapters.review_items_table.ReviewItemsTable
    audit: object  # oms.adapters.audit_log_table.AuditLogTable
    orders: object  # oms.adapters.orders_table.OrdersTable (get)
    reservations: object  # oms.adapters.reservation_store.ReservationStore (get)
    allocation: Callable[[], object]  # -> AllocationPorts (built on first use)
    risk: object  # oms.adapters.risk_decisions.RiskDecisionsTable
    verification: Callable[[], object]  # -> SmsVerification
    quarantine: object  # oms.adapters.quarantine_table.QuarantineTable
    clock: Clock
    claim_for: timedelta = DEFAULT_CLAIM


@dataclass(frozen=True)
class ListQuery:
    status: str = "open"
    reason: str | None = None
    channel: str | None = None
    source: str | None = None
    older_than_minutes: int | None = None
    limit: int = 50
    cursor: str | None = None


def list_items(reviewer: Reviewer, query: ListQuery, ports: ReviewPorts) -> tuple[list[dict], str | None]:
    sources = sources_for(reviewer)
    if query.source is not None:
        if query.source not in sources:
            raise ForbiddenError(f"role {reviewer.role} may not list {query.source} items")
        sources = (query.source,)
    if not sources:
        raise ForbiddenError(f"role {reviewer.role} may not list review items")
    before = None
    if query.older_than_minutes:
        before = ports.clock.now() - timedelta(minutes=query.older_than_minutes)
    items, cursor = ports.items.list(status=query.status, sources=sources, reason=query.reason, channel=query.channel,
                                     created_before=before, limit=query.limit, cursor=query.cursor)
    return [item_view(item, ports.clock.now()) for item in items], cursor


def get_item(reviewer: Reviewer, item_id: str, ports: ReviewPorts) -> dict:
    item = _readable_item(reviewer, item_id, ports)
    view = item_view(item, ports.clock.now())
    view["order"] = _order_view(reviewer, item["order_key"], ports)
    return view


def claim_item(reviewer: Reviewer, item_id: str, ports: ReviewPorts) -> dict:
    item = _readable_item(reviewer, item_id, ports)
    now = ports.clock.now()
    claimed = ports.items.claim(item_id, reviewer.username, now, now + ports.claim_for)
    if claimed is None:
        current = ports.items.get(item_id) or item
        if current.get("status") != "open":
            raise ClaimConflictError(f"item {item_id} is {current.get('status')} already")
        raise ClaimConflictError(f"item {item_id} is claimed by {current.get('claimed_by')} until "
                                 f"{current.get('claim_expires_at')}")
    return item_view(claimed, now)


def audit_of(reviewer: Reviewer, item_id: str, ports: ReviewPorts) -> list[dict]:
    if "admin" not in reviewer.roles:
        raise ForbiddenError("the audit log is for admins")
    if ports.items.get(item_id) is None:
        raise ItemNotFoundError(f"no review item {item_id}")
    return [_plain(entry) for entry in ports.audit.of_item(item_id)]


def audit_of_day(reviewer: Reviewer, day: str, ports: ReviewPorts) -> list[dict]:
    if "admin" not in reviewer.roles:
        raise ForbiddenError("the audit log is for admins")
    return [_plain(entry) for entry in ports.audit.of_day(day)]


def decide(reviewer: Reviewer, item_id: str, action: str, reason: str, ports: ReviewPorts, *,
           warehouse_id: str | None = None) -> dict:
    item = ports.items.get(item_id)
    if item is None:
        raise ItemNotFoundError(f"no review item {item_id}")
    check_action(reviewer, item["source"], action)
    now = ports.clock.now()
    if item.get("status") != "open":
        raise ClaimConflictError(f"item {item_id} is {item.get('status')} already")
    held_until = str(item.get("claim_expires_at", ""))
    if item.get("claimed_by") != reviewer.username or held_until <= stamp(now):
        if item.get("claimed_by") and item.get("claimed_by") != reviewer.username and held_until > stamp(now):
            raise ClaimConflictError(f"item {item_id} is claimed by {item['claimed_by']}")
        raise ClaimConflictError(f"claim item {item_id} first")
    order_key = item["order_key"]
    before = _order_state(order_key, ports)
    if before is None and item["source"] != "quarantine":  # a quarantined order may never have been stored
        raise ActionRefusedError(f"order {order_key} is not stored")
    outcome = _apply(action, item, before, reason, warehouse_id, ports)
    after = _order_state(order_key, ports)
    resolution = {"action": action, "reason": reason, "by": reviewer.username, "role": reviewer.role,
                  "at": _iso(now), "outcome": outcome}
    if warehouse_id:
        resolution["warehouse_id"] = warehouse_id
    # Recorded before the item is resolved: a crash between the effect and the record leaves the item
    # open under this reviewer's claim, so the retry (the engines' steps are idempotent) records it.
    # A decision is thus never applied unrecorded; a retried one may be recorded twice.
    ports.audit.append(item_id=item_id, order_key=order_key, who=reviewer.username, role=reviewer.role, action=action,
                       reason=reason, before=_stored(before), after=_stored(after), at=now)
    resolved = ports.items.resolve(item_id, reviewer.username, resolution, now)
    logger.info("review decision", extra={"item_id": item_id, "order_key": order_key, "action": action,
                                          "by": reviewer.username, "outcome": outcome})
    if not resolved:  # the claim ran out while the effect was applied: effect and audit stand
        logger.warning("review item claim expired during the decision", extra={"item_id": item_id})
    return {"item_id": item_id, "order_key": order_key, "action": action, "outcome": outcome,
            "order": _plain(_stored(after))}


def _apply(action: str, item: dict, before: dict, reason: str, warehouse_id: str | None,
           ports: ReviewPorts) -> str:
    from oms.services.allocate import reassign_order, release_order
    from oms.services.dependencies import order_to_allocate
    from oms.services.risk_dependencies import order_to_assess

    order_key, now = item["order_key"], ports.clock.now()
    note = {"by_review": item["item_id"], "reason": reason, "at": _iso(now)}
    if item["source"] == "quarantine":
        return _settle_quarantined(action, item, ports)
    if action in ("approve", "release_hold") and item["source"] in ("risk", "verification"):
        if not ports.risk.transition(order_key, "cleared", HELD_STATUSES, {**note, "action": action}, now):
            if _cleared_by(before, item["item_id"]):  # this decision's retry: already applied
                return "cleared"
            raise ActionRefusedError(f"order {order_key} is not held by risk (risk_status {before.get('risk_status')})")
        return "cleared"
    if action in ("approve", "reassign"):
        if action == "reassign" and not warehouse_id:
            raise InvalidActionError("reassign needs a warehouse_id")
        outcome = reassign_order(order_to_allocate(before["image"]), warehouse_id, ports.allocation())
        if outcome.state in ("refused", "closed"):
            raise ActionRefusedError(f"order {order_key} cannot be allocated"
                                     + (f" at {warehouse_id}" if warehouse_id else "") + f": {outcome.reason}")
        return f"{outcome.state}: {', '.join(outcome.warehouses)}"
    if action == "reject":
        outcome = release_order(order_key, f"rejected by a reviewer: {reason}", ports.allocation())
        if item["source"] in ("risk", "verification"):
            ports.risk.transition(order_key, "rejected", (*HELD_STATUSES, "cleared"), {**note, "action": action}, now)
        return outcome.state
    if action == "resend_code":
        if ports.verification().start(order_to_assess(before["image"]), again=True) is None:
            raise ActionRefusedError(f"no SMS can reach the buyer of {order_key} (phone encrypted or missing, "
                                     "or already verified)")
        ports.risk.transition(order_key, "verifying", HELD_STATUSES, {**note, "action": action}, now)
        return "code_sent"
    raise InvalidActionError(f"{action} is not available through the API yet")


def _cleared_by(before: dict, item_id: str) -> bool:
    """The order's risk hold was already cleared by a decision on this item (a retried decision)."""
    image = before.get("image") or {}
    return image.get("risk_status") == "cleared" and (image.get("risk_review") or {}).get("by_review") == item_id


def _settle_quarantined(action: str, item: dict, ports: ReviewPorts) -> str:
    """Replay (or approve: the same) re-normalizes the stored payload with today's code; reject dismisses it."""
    from oms.services.quarantine import QuarantineItemNotFoundError, replay_quarantined

    if action == "reject":
        return "dismissed"
    quarantine_id = (item.get("facts") or {}).get("quarantine_id") or item["order_key"]
    try:
        outcome = replay_quarantined(quarantine_id, ports.quarantine, ports.orders)
    except QuarantineItemNotFoundError as error:
        raise ActionRefusedError(str(error)) from None
    if outcome.state == "still_malformed":
        raise ActionRefusedError(f"{quarantine_id} still does not normalize: {outcome.detail}")
    return f"{outcome.state}: {outcome.detail}"


def _readable_item(reviewer: Reviewer, item_id: str, ports: ReviewPorts) -> dict:
    item = ports.items.get(item_id)
    if item is None:
        raise ItemNotFoundError(f"no review item {item_id}")
    if not may_work_on(reviewer, item["source"]):
        raise ForbiddenError(f"role {reviewer.role} may not see {item['source']} items")
    return item


def _order_state(order_key: str, ports: ReviewPorts) -> dict | None:
    image = ports.orders.get(order_key)
    if image is None:
        return None
    held = ports.reservations.get(order_key)
    return {"image": image, "status": image.get("status"), "fulfillment_status": image.get("fulfillment_status"),
            "risk_status": image.get("risk_status"),
            "reservation": None if held is None else {
                "state": held.state, "version": held.version,
                "shipments": [{"warehouse_id": s.warehouse_id, "lines": [list(line) for line in s.lines]}
                              for s in held.shipments]}}


def _order_view(reviewer: Reviewer, order_key: str, ports: ReviewPorts) -> dict | None:
    state = _order_state(order_key, ports)
    if state is None:
        return None
    image = state["image"]
    shown = {name: image.get(name) for name in ("order_key", "channel", "shop_id", "channel_order_id", "status",
                                                  "channel_status", "currency", "total", "lines", "created_at",
                                                  "paid_at", "updated_at", "fulfillment_status", "risk_status",
                                                  "allocation_decision", "allocation", "risk_decision")}
    shown["ship_to"] = ship_to_for(reviewer, image.get("ship_to"))
    shown["buyer_id"] = image.get("buyer_id") if reviewer.sees_everything() else None
    shown["reservation"] = state["reservation"]
    return _plain(shown)


def item_view(item: dict, now: datetime) -> dict:
    claimed = item.get("claimed_by") and str(item.get("claim_expires_at", "")) > stamp(now)
    return _plain({
        "item_id": item["item_id"], "order_key": item["order_key"], "channel": item.get("channel"),
        "source": item["source"], "reason": item["reason"], "detail": item.get("detail", ""),
        "facts": item.get("facts", {}), "status": item.get("status"), "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"), "occurrences": item.get("occurrences", 1),
        "claimed_by": item.get("claimed_by") if claimed else None,
        "claim_expires_at": item.get("claim_expires_at") if claimed else None,
        "resolution": item.get("resolution"),
    })


def _stored(state: dict | None) -> dict:
    """The order state for the audit entry (without the whole image)."""
    if state is None:
        return {}
    return {key: value for key, value in state.items() if key != "image" and value is not None}


def _plain(value):
    """JSON-ready: Decimal -> int or str, sets -> sorted lists, binary values (the raw payload) dropped."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items() if not _binary(inner)}
    if isinstance(value, list | tuple):
        return [_plain(inner) for inner in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(inner) for inner in value)
    return value


def _binary(value) -> bool:
    return isinstance(value, bytes | bytearray) or type(value).__name__ == "Binary"  # boto3's Binary wrapper


def _iso(moment: datetime) -> str:
    from oms.domain.order import format_utc

    return format_utc(moment)
