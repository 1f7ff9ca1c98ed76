"""Reconciliation (SPEC C3): list a shop's past windows again, compare with the store, backfill the gap.

Overlapping polls should leave no gaps; peers still lost orders to them (an order indexed late
beyond the overlap, a 5xx mid-window on a platform that pages by number, a row lost by an
operator). This is the independent check. For each slice of [since, until] (an hour, or the
platform's maximum window if shorter) the platform's list is read again and every listed order is
compared with its stored version: one BatchGetItem per page, as polling does, and detail calls only
for orders missing or outdated in the store. Those are stored (conditional writes, so a race with
the poller cannot duplicate anything) and named in the slice's report; each slice's report is
recorded, and the counts go out as metrics by the handler.

Reconciliation never reads past the shop's cursor: what polling has not reached yet is not a gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from oms.domain.polling import PollWindow
from oms.ports import ChannelClient, Clock, InvocationDeadlineError, SaveResult
from oms.services.ingest import QUARANTINED, IngestPorts, WindowCounts, ingest_window

SLICE = timedelta(hours=1)


@dataclass
class SliceReport:
    window: PollWindow
    platform_orders: int = 0  # orders the platform listed in the slice
    already_stored: int = 0  # stored at this version or newer before the check
    backfilled: list[str] = field(default_factory=list)  # order keys that were missing
    refreshed: list[str] = field(default_factory=list)  # stored at an older version
    quarantined: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> int:
        return len(self.backfilled) + len(self.refreshed) + len(self.quarantined)

    def as_dict(self) -> dict:
        return {
            "start": self.window.start.isoformat(), "end": self.window.end.isoformat(),
            "platform_orders": self.platform_orders, "already_stored": self.already_stored,
            "backfilled": self.backfilled, "refreshed": self.refreshed, "quarantined": self.quarantined,
        }


@dataclass
class ReconcileReport:
    channel: str
    shop_id: str
    state: str  # complete | partial (the invocation's deadline came first) | failed | nothing_to_check
    slices: list[SliceReport] = field(default_factory=list)
    reason: str | None = None

    def total(self, name: str) -> int:
        values = [getattr(report, name) for report in self.slices]
        return sum(len(v) if isinstance(v, list) else v for v in values)

    def as_dict(self) -> dict:
        return {
            "channel": self.channel, "shop_id": self.shop_id, "state": self.state, "reason": self.reason,
            "platform_orders": self.total("platform_orders"), "already_stored": self.total("already_stored"),
            "backfilled": self.total("backfilled"), "refreshed": self.total("refreshed"),
            "quarantined": self.total("quarantined"), "slices": [report.as_dict() for report in self.slices],
        }


class ReconciliationLog(Protocol):
    def record(self, channel: str, shop_id: str, report: SliceReport, at: datetime) -> None: ...


@dataclass(frozen=True)
class ReconcilePorts:
    ingest: IngestPorts
    client_for: Callable[[str, str], ChannelClient]
    log: ReconciliationLog
    clock: Clock


def slices(start: datetime, end: datetime, longest: timedelta) -> list[PollWindow]:
    """[start, end) cut into consecutive windows no longer than `longest`."""
    windows, cursor = [], start
    while cursor < end:
        windows.append(PollWindow(cursor, min(cursor + longest, end)))
        cursor = windows[-1].end
    return windows


def reconcile_shop(
    channel: str, shop_id: str, since: datetime, until: datetime, ports: ReconcilePorts
) -> ReconcileReport:
    report = ReconcileReport(channel, shop_id, "complete")
    try:
        client = ports.client_for(channel, shop_id)
        until = min(until, ports.clock.now() - client.rules.lag)
        longest = SLICE if client.rules.max_span is None else min(SLICE, client.rules.max_span)
        windows = slices(since, until, longest)
        if not windows:
            report.state = "nothing_to_check"
            return report
        for window in windows:
            report.slices.append(_reconcile_slice(client, shop_id, window, ports))
            ports.log.record(channel, shop_id, report.slices[-1], ports.clock.now())
    except InvocationDeadlineError as error:
        report.state, report.reason = "partial", str(error)
    except Exception as error:  # noqa: BLE001 - reported; the next scheduled run checks the range again
        report.state, report.reason = "failed", f"{type(error).__name__}: {error}"[:2000]
    return report


def _reconcile_slice(client: ChannelClient, shop_id: str, window: PollWindow, ports: ReconcilePorts) -> SliceReport:
    result = SliceReport(window)
    buckets = {SaveResult.CREATED.value: result.backfilled, SaveResult.UPDATED.value: result.refreshed,
               QUARANTINED: result.quarantined}

    def saved(key: str, outcome: str) -> None:
        if outcome in buckets:
            buckets[outcome].append(key)

    counts = WindowCounts()
    ingest_window(client, shop_id, window, ports.ingest, counts, on_saved=saved)
    result.platform_orders = counts.fetched
    result.already_stored = counts.outcomes[SaveResult.DUPLICATE.value] + counts.outcomes[SaveResult.STALE.value]
    return result
