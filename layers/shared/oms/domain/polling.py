"""Poll windows and the retry schedule: pure rules of incremental polling (SPEC C1, C3).

A shop's cursor says "every order updated before this instant is stored, or is held by the retry
queue or its DLQ". Each poll reads [cursor - overlap, now - lag] (capped at the platform's maximum
span), so late-indexed orders are read twice and dedup makes that safe. The cursor only moves to a
window's end after every page of that window succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class PollWindow:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("poll windows use aware datetimes")
        if self.end <= self.start:
            raise ValueError(f"empty poll window {self.start.isoformat()} .. {self.end.isoformat()}")


@dataclass(frozen=True)
class ChannelWindowRules:
    """What the platform allows: how far behind now a window must end, and its longest span."""

    lag: timedelta
    max_span: timedelta | None


def plan_poll_window(
    *,
    cursor: datetime | None,
    now: datetime,
    rules: ChannelWindowRules,
    overlap: timedelta,
    initial_lookback: timedelta,
    not_before: datetime | None = None,
) -> PollWindow | None:
    """The next window to read for one shop, or None when nothing is due yet.

    `not_before` lets a poll skip a range already handed to the retry queue.
    """
    start = now - initial_lookback if cursor is None else cursor - overlap
    if not_before is not None and not_before > start:
        start = not_before
    end = now - rules.lag
    if rules.max_span is not None:
        end = min(end, start + rules.max_span)
    if end <= start:
        return None
    return PollWindow(start=start, end=end)


class RetrySchedule(BaseModel):
    """Backoff before each retry of a failed window; after the last one the window is dead-lettered."""

    model_config = ConfigDict(frozen=True)

    delays_seconds: tuple[int, ...] = Field(min_length=1)

    def delay_after(self, failed_attempts: int) -> int | None:
        """Delay before the next attempt after `failed_attempts` failures; None means dead-letter."""
        if failed_attempts < 1:
            raise ValueError("a window is only scheduled for retry after it failed")
        index = failed_attempts - 1
        return self.delays_seconds[index] if index < len(self.delays_seconds) else None
