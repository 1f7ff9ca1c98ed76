"""Protocols the services need; adapters implement them, tests may use the real adapters."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
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


class InvocationDeadlineError(ChannelError):
    """The window could not be read before the invocation must stop: poll a shorter one next time."""


# Given (platform order id, platform updated-at text) pairs, the ids already stored at that version.
KnownVersions = Callable[[list[tuple[str | None, str | None]]], set[str]]


class ChannelClient(Protocol):
    channel: str
    rules: ChannelWindowRules
    # True when every order of a later page was updated no earlier than every order of an earlier
    # one (ties aside): a poll stopped by its deadline has then stored a prefix of its window.
    # Clients that cannot promise it (an undocumented sort) leave it out.
    pages_in_update_order: bool

    def fetch_window(self, window: PollWindow, known: KnownVersions | None = None) -> Iterator[list[dict]]:
        """Every page of raw order records updated inside the window; raises ChannelError.

        Records the client marks `"known": True` were skipped as already stored (see `known`).
        """
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
    span_hint: timedelta | None = None  # a shorter window after one did not fit an invocation
    read_at: datetime | None = None  # when the poll that moved `updated_through` there planned its window


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
        span_hint: timedelta | None = None,
        clear_span_hint: bool = False,
        read_at: datetime | None = None,
    ) -> bool: ...

    def advance_past(self, channel: str, shop_id: str, window: PollWindow) -> bool: ...


class RetryQueue(Protocol):
    def schedule(self, message: FailedWindowMessage, delay_seconds: int) -> None: ...

    def dead_letter(self, message: FailedWindowMessage) -> None: ...

