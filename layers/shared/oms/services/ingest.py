"""Ingestion use-cases: poll a shop's next window, retry a failed window (SPEC C1-C3).

- `ingest_window` reads every page of one window, normalizes each order and stores it exactly
  once; a malformed order is quarantined with its reason and the rest of the page proceeds.
- `poll_shop` is what the scheduled poller does per shop: lease, plan the window from the cursor,
  ingest, and move the cursor only when every page succeeded; then the next window, until the
  live edge or the invocation's deadline (a backlog of many windows drains in one invocation). A failed window is handed to the
  retry queue (only the part not handed over before) and the cursor stays where it was, so the next
  scheduled poll reads it again too. A window the invocation's deadline cuts short is no failure:
  when the client's pages come in update order, the stored prefix is kept (the cursor moves to
  the latest update read); otherwise the next poll reads a shorter window. The overlap a window
  re-reads before its cursor shrinks to nothing when the cursor was set well behind the live edge
  (`overlap_needed`).
- `retry_window` is what the retry consumer does: ingest the window again; on success (or when the
  schedule is exhausted and the window is dead-lettered with its reasons) a cursor that waits inside
  that window moves past it.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import ModuleType

from oms.domain.order import MalformedOrderError, epoch_ms, order_key, version_stamp
from oms.domain.polling import (
    ChannelWindowRules,
    PollWindow,
    RetrySchedule,
    plan_poll_window,
)
from oms.ports import (
    ChannelClient,
    Clock,
    CursorRepository,
    InvocationDeadlineError,
    KnownRecord,
    OrderRepository,
    QuarantineRepository,
    ResumablePage,
    ResumePoint,
    RetryQueue,
    ReviewQueue,
    SaveResult,
    ShopCursor,
)
from oms.services.messages import FailedWindowMessage, ReviewMessage, WindowFailure

QUARANTINED = "quarantined"
# The shortest window a deadline can shrink a poll to; must stay longer than the overlap re-read.
MIN_SPAN = timedelta(minutes=6)

# Writes of one page fan out: each is an independent conditional put, and the table scales.
_writers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="order-writer")


@dataclass
class WindowCounts:
    pages: int = 0
    fetched: int = 0
    outcomes: Counter = field(default_factory=Counter)
    # Latest updated_at (epoch ms) among the orders of pages stored in full: with pages in update
    # order, everything updated before it is stored (not reported: it is bookkeeping).
    latest_stored_ms: int | None = None
    # The page token that lists the page being stored again (`ResumablePage`); None: from the start.
    resume_from: str | None = None
    resumable: bool = False  # the client pages by token: a cut window can go on where it stopped

    def as_dict(self) -> dict:
        return {"pages": self.pages, "fetched": self.fetched, **self.outcomes}


@dataclass(frozen=True)
class IngestPorts:
    orders: OrderRepository
    quarantine: QuarantineRepository
    normalizer: ModuleType
    review: ReviewQueue | None = None  # where a quarantined order is announced to the reviewers


def ingest_window(
    client: ChannelClient,
    shop_id: str,
    window: PollWindow,
    ports: IngestPorts,
    counts: WindowCounts | None = None,
    on_saved: Callable[[str, str], None] | None = None,
    recent: RecentVersions | None = None,
    start_token: str | None = None,
) -> WindowCounts:
    """Read and store every page; `counts` (if given) keeps what was done even when a page fails.

    `start_token`: go on with a window a deadline cut, from that page (`ResumePoint`).

    `on_saved(order key, outcome)` hears of every order written or quarantined (reconciliation
    reports exactly what it repaired). `recent`: versions this container already knows to be
    stored, so an overlap re-read needs no lookup (polling passes it; reconciliation, whose job is
    to distrust what polling believes, does not). Exactly once rests on the conditional write.
    """
    counts = counts if counts is not None else WindowCounts()
    # Versions the client's `known` question already looked up in this window (-1: not stored):
    # the page that follows needs no second lookup of the same orders.
    answered: dict[str, int] = {}
    # The page's orders with a broken earlier version open in quarantine (set per page, before storing).
    superseded: set[str] = set()

    def stored_versions(stamps: dict[str, int]) -> dict[str, int]:
        found = recent.versions(stamps) if recent is not None else {}
        unknown = [key for key, stamp in stamps.items() if found.get(key, -1) < stamp]
        if unknown:
            looked_up = ports.orders.stored_versions(unknown)
            found.update(looked_up)
            if recent is not None:
                recent.remember(looked_up)
        return found

    def normalize(raw: dict):
        try:
            return ports.normalizer.normalize(raw, shop_id)
        except MalformedOrderError as error:
            return error

    def store(pair) -> str:
        raw, order = pair
        if isinstance(order, MalformedOrderError):
            order_id = ports.normalizer.order_id_of(raw)
            quarantined = ports.quarantine.quarantine(
                channel=client.channel, shop_id=shop_id, channel_order_id=order_id, reason=order.reason, raw=raw
            )
            if ports.review is not None:  # a person fixes the cause, then replays it (reviewer API)
                ports.review.send(ReviewMessage(
                    order_key=quarantined, source="quarantine", reason="malformed_order", detail=order.reason,
                    at=datetime.now(UTC), facts={"quarantine_id": quarantined, "channel": client.channel,
                                                 "shop_id": shop_id}))
            if on_saved is not None:
                on_saved(order_key(client.channel, shop_id, order_id or "?"), QUARANTINED)
            return QUARANTINED
        outcome = ports.orders.save(order, raw).value
        if order.order_key in superseded and outcome in (SaveResult.CREATED.value, SaveResult.UPDATED.value):
            # A broken earlier version waits in quarantine: this one, stored, settles it.
            settled = f"superseded: {outcome} at version {version_stamp(order)}"
            ports.quarantine.mark_replayed(order.order_key, settled)
            if ports.review is not None:  # and its review item needs nobody any more
                ports.review.send(ReviewMessage(
                    order_key=order.order_key, source="quarantine", reason="superseded", settled=True,
                    detail=f"a later version of the order was valid and is stored ({settled})", at=datetime.now(UTC)))
        if recent is not None:  # whatever the outcome, this version (or a newer one) is stored now
            recent.remember({order.order_key: version_stamp(order)})
        if on_saved is not None:
            on_saved(order.order_key, outcome)
        return outcome

    def known(pairs: list[tuple[str | None, str | None]]) -> set[str]:
        stamps = {}
        for order_id, updated_text in pairs:
            try:
                stamps[order_id] = epoch_ms(updated_text)
            except (TypeError, ValueError, AttributeError):
                continue  # unreadable: let the normalizer judge (and quarantine) it
        keyed = {order_key(client.channel, shop_id, i): (i, stamp) for i, stamp in stamps.items() if i}
        stored = stored_versions({key: stamp for key, (_, stamp) in keyed.items()}) if keyed else {}
        answered.update({key: stored.get(key, -1) for key in keyed})
        return {i for key, (i, stamp) in keyed.items() if stored.get(key, -1) >= stamp}

    resuming = {} if start_token is None else {"start_token": start_token}
    for page in prefetched(client.fetch_window(window, known=known, **resuming)):
        if isinstance(page, ResumablePage):
            counts.resumable, counts.resume_from = True, page.resume_from
        counts.pages += 1
        counts.fetched += len(page)
        # Only the client's own marker type means "already stored"; anything else, a platform record
        # with a `known` field or one that is not even an object, is judged (and maybe quarantined)
        # by the normalizer, never dropped and never stopping its page.
        skipped = [raw for raw in page if isinstance(raw, KnownRecord)]
        counts.outcomes[SaveResult.DUPLICATE.value] += len(skipped)
        pairs = [(raw, normalize(raw)) for raw in page if not isinstance(raw, KnownRecord)]
        # Overlapping windows re-read stored orders: skip those already stored at this version or newer.
        readable = {o.order_key: version_stamp(o) for _, o in pairs if not isinstance(o, MalformedOrderError)}
        unanswered = {key: stamp for key, stamp in readable.items() if key not in answered}
        stored = {key: answered[key] for key in readable if key in answered}
        stored.update(stored_versions(unanswered) if unanswered else {})
        fresh = []
        for raw, order in pairs:
            known = None if isinstance(order, MalformedOrderError) else stored.get(order.order_key)
            if known is not None and known >= version_stamp(order):
                counts.outcomes[SaveResult.DUPLICATE.value if known == version_stamp(order) else SaveResult.STALE.value] += 1
            else:
                fresh.append((raw, order))
        superseded = ports.quarantine.open_among(
            [order.order_key for _, order in fresh if not isinstance(order, MalformedOrderError)])
        counts.outcomes.update(_writers.map(store, fresh))
        if readable:
            counts.latest_stored_ms = max(counts.latest_stored_ms or 0, max(readable.values()))
    return counts


class RecentVersions:
    """Order versions a warm container stored or found stored: what a poll's overlap re-reads.

    Each poll re-reads the last minutes before its cursor (late-indexed orders); without this, every
    re-read order costs a lookup on every poll. A stored version is only ever replaced by a newer
    one, so "stored at version >= v" stays true; a cold container simply starts empty and looks
    up. Per shop, entries older than the window being read are dropped.
    """

    def __init__(self) -> None:
        self._by_shop: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _shop(key: str) -> str:
        channel, shop_id, _ = key.split("#", 2)  # order ids may hold "#"; channels and shops may not
        return f"{channel}#{shop_id}"

    def versions(self, stamps: dict[str, int]) -> dict[str, int]:
        with self._lock:
            found = {}
            for key in stamps:
                stamp = self._by_shop.get(self._shop(key), {}).get(key)
                if stamp is not None:
                    found[key] = stamp
            return found

    def remember(self, stamps: dict[str, int]) -> None:
        with self._lock:
            for key, stamp in stamps.items():
                shop = self._by_shop.setdefault(self._shop(key), {})
                if stamp > shop.get(key, -1):
                    shop[key] = stamp

    def forget_older_than(self, channel: str, shop_id: str, moment: datetime) -> None:
        cutoff = int(moment.timestamp() * 1000)
        with self._lock:
            shop = self._by_shop.get(f"{channel}#{shop_id}", {})
            self._by_shop[f"{channel}#{shop_id}"] = {key: stamp for key, stamp in shop.items() if stamp >= cutoff}

    def __len__(self) -> int:
        with self._lock:
            return sum(len(shop) for shop in self._by_shop.values())


_DONE = object()


def prefetched(pages: Iterator[list[dict]]) -> Iterator[list[dict]]:
    """The same pages, with the next one already being read while the caller stores this one.

    Reading a page (channel HTTP, detail calls, normalising) and storing one (DynamoDB writes) wait
    on different services; overlapping them keeps both busy. One page ahead at most: a window that
    fails stops after the page in hand, and memory stays bounded. The reader's exception is
    raised here, in the caller, at the page where it happened.
    """
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        ahead.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the caller, who raises it
            ahead.put(error)

    reader = threading.Thread(target=read, name="page-reader", daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the caller stopped early (an error while storing): let the reader go
        reader.join(timeout=5)


@dataclass(frozen=True)
class PollSettings:
    overlap: timedelta
    initial_lookback: timedelta
    lease: timedelta
    retry_schedule: RetrySchedule


@dataclass(frozen=True)
class PollPorts:
    ingest: IngestPorts
    cursors: CursorRepository
    retry_queue: RetryQueue
    clock: Clock
    client_for: Callable[[str, str], ChannelClient]
    recent: RecentVersions = field(default_factory=RecentVersions)


@dataclass
class ShopPollOutcome:
    channel: str
    shop_id: str
    state: str  # polled | idle | busy | partial (stopped by the deadline before the live edge) | failed
    window: PollWindow | None = None  # from the first window's start to the last one's end
    counts: WindowCounts | None = None  # summed over the windows
    reason: str | None = None
    windows: int = 0  # windows read in full

    def as_dict(self) -> dict:
        return {
            "channel": self.channel,
            "shop_id": self.shop_id,
            "state": self.state,
            "window": None
            if self.window is None
            else {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
            "windows": self.windows,
            "counts": None if self.counts is None else self.counts.as_dict(),
            "reason": self.reason,
        }


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def poll_shop(channel: str, shop_id: str, ports: PollPorts, settings: PollSettings) -> ShopPollOutcome:
    """Read the shop's windows one after another, from its cursor towards the live edge.

    One window is at most the platform's span: after a backlog (an outage, a new shop) one
    invocation reads as many windows as its deadline allows, moving the cursor after each
    (`checkpoint`, keeping the lease), and stops at the live edge, at its deadline, at the end of
    its lease, or at a failed window (handed to the retry queue).
    """
    owner = uuid.uuid4().hex
    started = ports.clock.now()
    lease_until = started + settings.lease
    cursor = ports.cursors.acquire_lease(channel, shop_id, owner, until=lease_until)
    if cursor is None:
        return ShopPollOutcome(channel, shop_id, "busy", reason="another poll holds this shop's lease")
    poll = ShopPollOutcome(channel, shop_id, "polled", counts=WindowCounts())
    window: PollWindow | None = None
    client: ChannelClient | None = None
    unsaved = False  # the cursor moved past a window without a checkpoint yet
    try:
        client = ports.client_for(channel, shop_id)
        while True:
            now = ports.clock.now()
            resumed = cursor.resume
            window = resumed.window if resumed is not None else plan_poll_window(
                cursor=cursor.updated_through,
                now=now,
                rules=_with_span_hint(client.rules, cursor.span_hint),
                overlap=overlap_needed(cursor.updated_through, cursor.read_at, client.rules.lag, settings.overlap),
                initial_lookback=settings.initial_lookback,
            )
            if window is None:
                break
            poll.window = window if poll.window is None else PollWindow(poll.window.start, window.end)
            ports.recent.forget_older_than(channel, shop_id, window.start)
            poll.counts.latest_stored_ms = poll.counts.resume_from = None  # bookkeeping per window
            ingest_window(client, shop_id, window, ports.ingest, poll.counts, recent=ports.recent,
                          start_token=None if resumed is None else resumed.page_token)
            poll.windows += 1
            # A resumed window was planned by an earlier poll: when is not kept, so the full overlap is re-read.
            cursor = replace(cursor, updated_through=window.end, read_at=None if resumed else now, resume=None,
                             span_hint=_grown(cursor.span_hint, client.rules.max_span))
            window, unsaved = None, True
            if cursor.updated_through >= now - client.rules.lag:
                break  # at the live edge
            if ports.clock.now() >= lease_until:
                poll.state, poll.reason = "partial", "the lease ended before the live edge"
                break
            if not ports.cursors.checkpoint(channel, shop_id, owner, updated_through=cursor.updated_through,
                                            read_at=now, span_hint=cursor.span_hint,
                                            clear_span_hint=cursor.span_hint is None):
                return poll  # the lease has passed to another poll, which goes on from this cursor
            unsaved = False
    except InvocationDeadlineError as error:
        # Not a fault: the backlog is bigger than one invocation (Amazon's 0.5/s item quota). What
        # was stored stays stored.
        poll.state, poll.reason = "partial", _describe(error)
        kept = _stored_prefix_end(client, window, poll.counts, settings.overlap)
        if kept is not None:  # the next poll starts after the stored prefix (less its overlap)
            ports.cursors.release_lease(channel, shop_id, owner, updated_through=kept, read_at=now)
        elif window is not None and poll.counts.resumable:  # the next poll goes on from the page in hand
            resume = None if poll.counts.resume_from is None else ResumePoint(window, poll.counts.resume_from)
            ports.cursors.release_lease(channel, shop_id, owner, resume=resume, **_cursor_fields(cursor, unsaved))
        elif window is not None and poll.windows == 0:  # not one window fitted: the next one is half as long
            shorter = max((window.end - window.start) / 2, MIN_SPAN)
            ports.cursors.release_lease(channel, shop_id, owner, span_hint=shorter)
        else:  # the windows before it fitted; the cut one is read again from its start
            ports.cursors.release_lease(channel, shop_id, owner, **_cursor_fields(cursor, unsaved))
        return poll
    except Exception as error:  # noqa: BLE001 - every failure of a window is retried, then dead-lettered
        poll.state, poll.reason = "failed", _describe(error)
        handed_over = _hand_over_failed_window(channel, shop_id, window, cursor.retry_enqueued_through,
                                               poll.reason, ports, settings)
        # A resumed window that fails is retried whole; its page token may be what failed.
        ports.cursors.release_lease(channel, shop_id, owner, retry_enqueued_through=handed_over,
                                    clear_resume=cursor.resume is not None, **_cursor_fields(cursor, unsaved))
        return poll
    if poll.windows == 0:
        poll.state = "idle"
    ports.cursors.release_lease(channel, shop_id, owner, **_cursor_fields(cursor, unsaved))
    return poll


def _cursor_fields(cursor: ShopCursor, unsaved: bool) -> dict:
    """What releasing the lease must write: the cursor, if it moved since the last checkpoint."""
    if not unsaved:
        return {}
    return {"updated_through": cursor.updated_through, "read_at": cursor.read_at,
            "span_hint": cursor.span_hint, "clear_span_hint": cursor.span_hint is None}


def _grown(hint: timedelta | None, max_span: timedelta | None) -> timedelta | None:
    """A window that fitted lets the next one grow back; no hint = the platform's own maximum."""
    if hint is None:
        return None
    grown = hint * 2
    return None if max_span is not None and grown >= max_span else grown


def overlap_needed(cursor: datetime | None, read_at: datetime | None, lag: timedelta, overlap: timedelta) -> timedelta:
    """How much before the cursor the next window must re-read.

    The overlap is for orders indexed late. Orders updated before `read_at - lag - overlap` were
    visible when the cursor's window was read (that is what lag + overlap promise), so only the
    part of the overlap after that point can hold one. A cursor at the live edge (read_at - lag)
    needs the whole overlap; one an overlap or more behind it (a backlog being drained) none.
    Without `read_at` (a cursor moved by a retry) the whole overlap is re-read.
    """
    if cursor is None or read_at is None:
        return overlap
    settled_through = read_at - lag - overlap
    return min(overlap, max(cursor - settled_through, timedelta(0)))


def _stored_prefix_end(
    client: ChannelClient | None, window: PollWindow | None, counts: WindowCounts, overlap: timedelta
) -> datetime | None:
    """Where a cursor may move after a poll cut short, or None to keep it where it is.

    Only a client whose pages come in update order stored a prefix of the window: every order not
    read yet was updated at or after the latest one stored (ties are re-read: the next window starts
    at the cursor or before). Worth it only when the next window, which may start an overlap
    earlier, starts later than this one; otherwise a slow window would be re-read forever and
    shrinking it is the way on.
    """
    if window is None or counts.latest_stored_ms is None or not getattr(client, "pages_in_update_order", False):
        return None
    latest = min(datetime.fromtimestamp(counts.latest_stored_ms / 1000, tz=UTC), window.end)
    return latest if latest - overlap > window.start else None


def _with_span_hint(rules: ChannelWindowRules, hint: timedelta | None) -> ChannelWindowRules:
    if hint is None:
        return rules
    span = hint if rules.max_span is None else min(hint, rules.max_span)
    return ChannelWindowRules(lag=rules.lag, max_span=span)


def _hand_over_failed_window(
    channel: str,
    shop_id: str,
    window: PollWindow | None,
    already_enqueued_through: datetime | None,
    reason: str,
    ports: PollPorts,
    settings: PollSettings,
) -> datetime | None:
    """Queue the part of a failed window that no earlier failure queued; returns the new high mark."""
    if window is None:  # failed before a window existed (e.g. credentials): the next poll tries again
        return None
    start = window.start
    if already_enqueued_through is not None and already_enqueued_through > start:
        start = already_enqueued_through
    if start >= window.end:
        return None
    message = FailedWindowMessage(
        channel=channel,
        shop_id=shop_id,
        window_start=start,
        window_end=window.end,
        failed_attempts=1,
        failures=[WindowFailure(at=ports.clock.now(), reason=reason)],
    )
    ports.retry_queue.schedule(message, settings.retry_schedule.delay_after(1))
    return window.end


@dataclass
class RetryOutcome:
    state: str  # recovered | rescheduled | dead_lettered
    message: FailedWindowMessage
    counts: WindowCounts | None = None
    delay_seconds: int | None = None


def retry_window(message: FailedWindowMessage, ports: PollPorts, settings: PollSettings) -> RetryOutcome:
    try:
        client = ports.client_for(message.channel, message.shop_id)
        counts = ingest_window(client, message.shop_id, message.window, ports.ingest)
    except Exception as error:  # noqa: BLE001 - the failure is recorded on the message
        failed = message.after_failure(ports.clock.now(), _describe(error))
        delay = settings.retry_schedule.delay_after(failed.failed_attempts)
        if delay is None:
            ports.retry_queue.dead_letter(failed)
            # The window now waits in the DLQ with its reasons; the poller must not stall behind it.
            ports.cursors.advance_past(message.channel, message.shop_id, message.window)
            return RetryOutcome("dead_lettered", failed)
        ports.retry_queue.schedule(failed, delay)
        return RetryOutcome("rescheduled", failed, delay_seconds=delay)
    ports.cursors.advance_past(message.channel, message.shop_id, message.window)
    return RetryOutcome("recovered", message, counts=counts)
