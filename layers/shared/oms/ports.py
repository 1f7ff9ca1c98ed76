"""Protocols the services need; adapters implement them, tests may use the real adapters."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from oms.domain.order import CanonicalOrder
from oms.domain.polling import ChannelWindowRules, PollWindow
from oms.services.messages import FailedWindowMessage


class ChannelError(RuntimeError):
    """A transient channel failure (timeout, 5xx, throttling beyond budget, broken body): retry the window."""


class ChannelAuthError(ChannelError):
    """Credentials were refused; retrying may help after a rotation, so it is still retried."""


class SaveResult(str, enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    DUPLICATE = "duplicate"  # same version already stored
    STALE = "stale"  # an older version than the stored one: never overwrites


class Clock(Protocol):
    def now(self) -> datetime: ...


class ChannelClient(Protocol):
    channel: str
    rules: ChannelWindowRules

    def fetch_window(self, window: PollWindow) -> Iterator[list[dict]]:
        """Every page of raw order records updated inside the window; raises ChannelError."""
        ...


class OrderRepository(Protocol):
    def save(self, order: CanonicalOrder, raw: dict) -> SaveResult: ...

    def stored_versions(self, order_keys: list[str]) -> dict[str, int]: ...


class QuarantineRepository(Protocol):
    def quarantine(
        self, *, channel: str, shop_id: str, channel_order_id: str | None, reason: str, raw: dict
    ) -> str: ...


@dataclass(frozen=True)
class ShopCursor:
    channel: str
    shop_id: str
    updated_through: datetime | None
    retry_enqueued_through: datetime | None = None


class CursorRepository(Protocol):
    def list_shops(self, channel: str) -> list[ShopCursor]: ...

    def acquire_lease(self, channel: str, shop_id: str, owner: str, until: datetime) -> ShopCursor | None: ...

    def release_lease(
        self,
        channel: str,
        shop_id: str,
        owner: str,
        *,
        updated_through: datetime | None = None,
        retry_enqueued_through: datetime | None = None,
    ) -> bool: ...

    def advance_past(self, channel: str, shop_id: str, window: PollWindow) -> bool: ...


class RetryQueue(Protocol):
    def schedule(self, message: FailedWindowMessage, delay_seconds: int) -> None: ...

    def dead_letter(self, message: FailedWindowMessage) -> None: ...

