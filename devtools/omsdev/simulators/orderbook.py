"""One shop's orders inside a simulator: current versions, history, and when each appeared.

Thread-safe. Queries select by update time like the platforms do: an order updated later moves
out of earlier windows, which is exactly what makes polling hard and what the tests exercise.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class BookEntry:
    order_id: str
    payload: dict
    updated_at: datetime
    created_at: datetime
    appeared_at: float  # wall time (time.time()) when this version became readable
    open: bool = True  # Shopify status=open: not cancelled, not closed
    malformed: bool = False
    versions: list[dict] = field(default_factory=list)


class OrderBook:
    def __init__(self) -> None:
        self._entries: dict[str, BookEntry] = {}
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
    ) -> None:
        """Add an order or replace it with a newer version."""
        with self._lock:
            entry = self._entries.get(order_id)
            if entry is None:
                entry = BookEntry(order_id, payload, updated_at, created_at, time.time(), open, malformed)
                self._entries[order_id] = entry
            else:
                entry.payload, entry.updated_at, entry.open = payload, updated_at, open
                entry.appeared_at, entry.malformed = time.time(), malformed
            entry.versions.append(payload)

    def select(self, start: datetime | None, end: datetime | None, *, key=lambda e: e.updated_at) -> list[BookEntry]:
        """Entries whose key lies in [start, end], ascending by (key, id)."""
        with self._lock:
            chosen = [
                e for e in self._entries.values()
                if (start is None or key(e) >= start) and (end is None or key(e) <= end)
            ]
        return sorted(chosen, key=lambda e: (key(e), e.order_id))

    def get(self, order_id: str) -> BookEntry | None:
        with self._lock:
            return self._entries.get(order_id)

    def entries(self) -> list[BookEntry]:
        with self._lock:
            return list(self._entries.values())

    def order_ids(self, *, include_malformed: bool = True) -> set[str]:
        return {e.order_id for e in self.entries() if include_malformed or not e.malformed}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
