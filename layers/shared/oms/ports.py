"""Protocols the services need; adapters implement them, tests may use the real adapters."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from oms.domain.allocation import Warehouse
from oms.domain.inventory import SkuMapping, StockLevel
from oms.domain.order import CanonicalOrder
from oms.domain.polling import ChannelWindowRules, PollWindow
from oms.services.messages import FailedWindowMessage, ReviewMessage


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


class KnownRecord(dict):
    """A record the client did not fetch in full because `known` answered it is already stored at
    this version (e.g. Amazon's order without its items): ingest counts it a duplicate unread.

    The mark is the type, never a key in the record: a platform payload may carry any field
    (a top-level `known` included) and is still just data for the normalizer to judge.
    """


class ResumablePage(list):
    """A page of raw records from a client that pages by token: `resume_from` is the token that
    lists this page again (None: the window's first page). A poll cut short while storing it
    resumes there next time instead of listing the window again from its start."""

    def __init__(self, records, resume_from: str | None):
        super().__init__(records)
        self.resume_from = resume_from


@dataclass(frozen=True)
class ResumePoint:
    """Where a window a deadline cut goes on: the same window, from a page token."""

    window: PollWindow
    page_token: str


class ChannelClient(Protocol):
    channel: str
    rules: ChannelWindowRules
    # True when every order of a later page was updated no earlier than every order of an earlier
    # one (ties aside): a poll stopped by its deadline has then stored a prefix of its window.
    # Clients that cannot promise it (an undocumented sort) leave it out.
    pages_in_update_order: bool

    def fetch_window(self, window: PollWindow, known: KnownVersions | None = None) -> Iterator[list[dict]]:
        """Every page of raw order records updated inside the window; raises ChannelError.

        Records the client yields as `KnownRecord`s were skipped as already stored (see `known`);
        every other record, whatever its fields, is the platform's data.
        A client that yields `ResumablePage`s also takes `start_token=` (a page's `resume_from`)
        to go on from that page.
        """
        ...


class OrderRepository(Protocol):
    def save(self, order: CanonicalOrder, raw: dict) -> SaveResult: ...

    def stored_versions(self, order_keys: list[str]) -> dict[str, int]: ...


class QuarantineRepository(Protocol):
    def quarantine(
        self, *, channel: str, shop_id: str, channel_order_id: str | None, reason: str, raw: dict
    ) -> str: ...

    def open_among(self, order_keys: list[str]) -> set[str]:
        """The keys (an order's quarantine id is its order key) with an open quarantine row."""
        ...

    def mark_replayed(self, item_id: str, outcome: str) -> None:
        """Settle an open row (replayed by a person, or superseded by a version that was stored)."""
        ...


@dataclass(frozen=True)
class ShopCursor:
    channel: str
    shop_id: str
    updated_through: datetime | None
    retry_enqueued_through: datetime | None = None
    span_hint: timedelta | None = None  # a shorter window after one did not fit an invocation
    read_at: datetime | None = None  # when the poll that moved `updated_through` there planned its window
    resume: ResumePoint | None = None  # a window a deadline cut, to go on with from a page token


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
        resume: ResumePoint | None = None,
        clear_resume: bool = False,
    ) -> bool: ...

    def checkpoint(
        self,
        channel: str,
        shop_id: str,
        owner: str,
        *,
        updated_through: datetime,
        read_at: datetime,
        span_hint: timedelta | None = None,
        clear_span_hint: bool = False,
    ) -> bool: ...

    def advance_past(self, channel: str, shop_id: str, window: PollWindow) -> bool: ...


class RetryQueue(Protocol):
    def schedule(self, message: FailedWindowMessage, delay_seconds: int) -> None: ...

    def dead_letter(self, message: FailedWindowMessage) -> None: ...



# Allocation ------------------------------------------------------------------------------------


class WaitingClock(Clock, Protocol):
    """A clock that can also wait (tests advance a fake one instead of sleeping)."""

    def sleep(self, seconds: float) -> None: ...


class StockReader(Protocol):
    def levels(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StockLevel]: ...


class SkuCatalog(Protocol):
    def prefetch(self, channel: str, channel_skus: Iterable[str]) -> None: ...

    def mapping_of(self, channel: str, channel_sku: str) -> SkuMapping | None: ...


class WarehouseDirectory(Protocol):
    def list(self) -> list[dict]: ...  # warehouse_id, name, regions, daily_capacity


class FactsSnapshots(Protocol):
    def read_source(self, source: str) -> dict[str, tuple[object, datetime]]: ...

    def allocated_on(self, day: date) -> dict[str, int]: ...

    def add_allocated(self, warehouse_id: str, day: date, count: int = 1) -> None: ...


class ReviewQueue(Protocol):
    def send(self, message: ReviewMessage) -> None: ...


class WmsConfirmations(Protocol):
    """The warehouses' WMS: confirms (or rejects) a reservation, perhaps after a while; picks and ships
    it only once released (the order may leave)."""

    def request_confirmation(self, warehouse_id: str, reservation_id: str, order_key: str,
                             lines: list[dict], timeout_seconds: float): ...  # -> .status, .reason

    def confirmation_status(self, warehouse_id: str, reservation_id: str, timeout_seconds: float): ...

    def cancel(self, warehouse_id: str, reservation_id: str, timeout_seconds: float) -> None: ...

    def release(self, warehouse_id: str, reservation_id: str, timeout_seconds: float): ...  # -> released_at


class WarehouseRegistry(WarehouseDirectory, Protocol):
    def put(self, warehouse: Warehouse) -> None: ...


class StockCounts(Protocol):
    def set_on_hand(self, warehouse_id: str, sku: str, on_hand: int) -> None: ...


class SkuMappings(Protocol):
    def put(self, mapping: SkuMapping) -> None: ...


class SmsDeliveryError(RuntimeError):
    """The SMS provider did not take the message. `retryable` says whether the same send can succeed later."""

    retryable = False

    def __init__(self, provider: str, code: str, message: str, *, phone: str | None = None,
                 request_id: str | None = None):
        from oms.observability import mask_phone

        super().__init__(f"{provider} SMS to {mask_phone(phone)}: {code}: {message}"
                         + (f" (request id {request_id})" if request_id else ""))
        self.provider, self.code, self.message, self.request_id = provider, code, message, request_id


class SmsTransientError(SmsDeliveryError):
    """Throttling, 5xx, timeouts, dropped connections: retry later. After a timeout the message may have
    gone out all the same (SendSms is not idempotent), so a retry can mean a second SMS."""

    retryable = True


class SmsRejectedError(SmsDeliveryError):
    """Refused for good: illegal number, unknown sign name or template, refused credentials, or the phone's
    own flow control (Aliyun isv.BUSINESS_LIMIT_CONTROL: retrying only burns the day's quota). Escalate."""


class SmsSender(Protocol):
    """Sends a one-time code by SMS (Aliyun SMS or Amazon SNS, see `oms.adapters.sms`).

    Returns the provider's receipt (`.provider`, `.message_id`, `.request_id`). Raises SmsTransientError
    for throttling, 5xx and timeouts (retry later), SmsRejectedError for refusals that a retry cannot
    fix (illegal number, the phone's flow control, bad configuration: escalate to review). `link`, when
    given, is where the buyer types the code (SNS puts it in the text; an Aliyun template has a fixed text).
    """

    def send_code(self, phone: str, code: str, *, link: str | None = None): ...  # -> SmsSent
