"""Replay of a quarantined order after a fix: re-normalize the stored payload with today's code."""

from __future__ import annotations

from dataclasses import dataclass

from oms.domain.order import MalformedOrderError
from oms.normalizers import normalizer_for


class QuarantineItemNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class ReplayOutcome:
    quarantine_id: str
    state: str  # stored | still_malformed | already_replayed
    detail: str


def replay_quarantined(quarantine_id: str, quarantine, orders) -> ReplayOutcome:
    item = quarantine.get(quarantine_id)
    if item is None:
        raise QuarantineItemNotFoundError(f"no quarantined order {quarantine_id!r}")
    if item.get("state") != "open":
        return ReplayOutcome(quarantine_id, "already_replayed", item.get("replay_outcome", ""))
    raw = quarantine.raw_payload(item)
    try:
        order = normalizer_for(item["channel"]).normalize(raw, item["shop_id"])
    except MalformedOrderError as error:
        return ReplayOutcome(quarantine_id, "still_malformed", error.reason)
    result = orders.save(order, raw)
    quarantine.mark_replayed(quarantine_id, f"{result.value}: {order.order_key}")
    return ReplayOutcome(quarantine_id, "stored", f"{result.value}: {order.order_key}")
