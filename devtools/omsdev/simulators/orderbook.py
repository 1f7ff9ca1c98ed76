"""One shop's orders inside a simulator: the current raw payload of each order, its version history,
and when each order and version became visible. Tests read it as ground truth.

Thread-safe. Queries select by update time like the platforms do, ascending by (updated_at, id): an
order updated later moves out of earlier windows into later ones, which is exactly what makes
polling hard. A *malformed* order keeps a valid id but a payload our normalizer must reject
(non-numeric quantity or price, a missing quantity): it must end up quarantined, never dropped.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone


@dataclass(frozen=True)
class OrderVersion:
    payload: dict
    updated_at: datetime
    appeared_at: float  # wall time (time.time()) when this version became readable


@dataclass
class BookEntry:
    order_id: str
    payload: dict  # the latest version, as the platform serves it
    updated_at: datetime  # aware, UTC
    created_at: datetime  # aware, UTC
    appeared_at: float  # wall time when the order first became readable
    open: bool = True  # not cancelled and not closed
    malformed: bool = False
    versions: list[OrderVersion] = field(default_factory=list)

    @property
    def version_appeared_at(self) -> float:
        """Wall time when the latest version became readable."""
        return self.versions[-1].appeared_at


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(timezone.utc)


def by_updated_at(entry: BookEntry) -> datetime:
    return entry.updated_at


def by_created_at(entry: BookEntry) -> datetime:
    return entry.created_at


class OrderBook:
    """The orders of one shop (or one Amazon marketplace); `channel` says whose payloads it holds."""

    def __init__(self, channel: str | None = None):
        self.channel = channel
        self._entries: dict[str, BookEntry] = {}
        # (updated_at, order_id), kept sorted: a window query is a bisect, not a scan of the book.
        self._by_update: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()

    def put(
        self,
        order_id: str,
        payload: dict,
        *,
        updated_at: datetime,
        created_at: datetime,
        open: bool = True,
        malformed: bool = False,
    ) -> BookEntry:
        """Add an order, or replace it with a newer version (kept in its history)."""
        updated_at, created_at = _utc(updated_at, "updated_at"), _utc(created_at, "created_at")
        now = time.time()
        with self._lock:
            entry = self._entries.get(order_id)
            if entry is None:
                entry = BookEntry(order_id, payload, updated_at, created_at, now, open, malformed)
                self._entries[order_id] = entry
            else:
                del self._by_update[bisect.bisect_left(self._by_update, (entry.updated_at, order_id))]
                entry.payload, entry.updated_at, entry.created_at = payload, updated_at, created_at
                entry.open, entry.malformed = open, malformed
            bisect.insort(self._by_update, (updated_at, order_id))
            entry.versions.append(OrderVersion(payload, updated_at, now))
            return entry

    def add_malformed(self, order_id: str, payload: dict, *, updated_at: datetime, created_at: datetime) -> BookEntry:
        """An order whose payload the normalizer must reject (the id stays valid)."""
        return self.put(order_id, payload, updated_at=updated_at, created_at=created_at, malformed=True)

    def select(
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        key: Callable[[BookEntry], datetime] = by_updated_at,
    ) -> list[BookEntry]:
        """Entries whose key lies in [start, end] (both inclusive), ascending by (key, id)."""
        if key is by_updated_at:
            return self._select_by_update(start, end)
        with self._lock:
            chosen = [
                e for e in self._entries.values()
                if (start is None or key(e) >= start) and (end is None or key(e) <= end)
            ]
        return sorted(chosen, key=lambda e: (key(e), e.order_id))

    def _select_by_update(self, start: datetime | None, end: datetime | None) -> list[BookEntry]:
        with self._lock:
            low = 0 if start is None else bisect.bisect_left(self._by_update, (start, ""))
            # Order ids are never empty, so (end, "\U0010ffff") sorts after every key at `end`.
            high = len(self._by_update) if end is None else bisect.bisect_right(self._by_update, (end, "\U0010ffff"))
            return [self._entries[order_id] for _, order_id in self._by_update[low:high]]

    def get(self, order_id: str) -> BookEntry | None:
        with self._lock:
            return self._entries.get(order_id)

    def entries(self) -> list[BookEntry]:
        with self._lock:
            return list(self._entries.values())

    # Ground truth for tests -------------------------------------------------------------------

    def order_ids(self, *, include_malformed: bool = True) -> set[str]:
        return {e.order_id for e in self.entries() if include_malformed or not e.malformed}

    def malformed_ids(self) -> set[str]:
        return {e.order_id for e in self.entries() if e.malformed}

    def latest(self) -> dict[str, dict]:
        """order id -> latest payload."""
        return {e.order_id: e.payload for e in self.entries()}

    def appearance_times(self) -> dict[str, float]:
        """order id -> wall time when the order first became readable."""
        return {e.order_id: e.appeared_at for e in self.entries()}

    def versions(self, order_id: str) -> list[OrderVersion]:
        with self._lock:
            entry = self._entries.get(order_id)
            return list(entry.versions) if entry else []

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, order_id: object) -> bool:
        with self._lock:
            return order_id in self._entries
