"""Recurring order peaks per weekday and hour, and the provisioned concurrency to meet them (pure).

Input: orders per UTC hour, `(hour_start, orders)` rows, over an explicit span `[start, end)`. Only whole
hours inside the span count; an hour of the span with no row had 0 orders (the counters add up as
things happen, so a quiet hour leaves no row), rows for the same hour add up (one per channel is
fine) and rows outside the span are ignored (there is no denominator for them).

**Profile.** Each covered hour falls in one of 168 slots (weekday x hour) of the seller's business time
(a fixed UTC offset, UTC+8 by default: China has no daylight saving). A slot's mean is its orders over
the weeks that covered it, so a span of 3.5 weeks does not average a half-covered week as zeros.

**Peaks.** The *typical hour* is the median of the slot means over the slots that had any order at all
(a shop that sleeps 00:00-07:00 would otherwise halve its typical hour and make every afternoon a
"peak"). The *threshold* is max(`ratio` x typical hour, `min_orders_per_hour`): defaults 2x and 60
orders an hour (one a minute; below that one warm instance copes anyway). A slot is a peak when

- its mean reaches the threshold, and
- it recurs: the threshold was reached in at least `min_weeks` (default 2) of the weeks observed, and
  in at least half of them. One promotion that lifts one Wednesday lifts the mean too, but it is not a
  peak to pre-scale for every week.

A span shorter than `min_weeks` whole weeks cannot show recurrence: the result says "not enough
history" (never raises). Peaks come sorted by mean, largest first.

**Recommendation.** Adjacent peak hours (also across midnight and Sunday -> Monday) form one window.
For each window, provisioned concurrency is switched on `lead` (default 15 min) before the window and
off at its end, at

    concurrency = ceil(peak orders per minute x seconds_per_order / 60 x safety_factor), at least 1

i.e. the executions busy at once at the window's busiest hour (Little's law) times a margin;
`seconds_per_order` defaults to 0.5 s of processing, `safety_factor` to 2 (arrivals within an hour are
not even). Arithmetic is exact (fractions), so 2.0 never rounds up to 3. Both switches are given as
cron expressions in UTC, the six-field `cron(minutes hours ? * DAY *)` form that Application Auto
Scaling scheduled actions and EventBridge Scheduler take (day of week by name: no 1 = Sunday
confusion), plus a line in business time for people.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

HOURS_PER_WEEK = 7 * 24
MINUTES_PER_WEEK = HOURS_PER_WEEK * 60
CHINA_TIME = timezone(timedelta(hours=8))
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # datetime.weekday() order
CRON_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")

DEFAULT_PEAK_RATIO = Fraction(2)
DEFAULT_MIN_ORDERS_PER_HOUR = 60
DEFAULT_MIN_WEEKS = 2
DEFAULT_LEAD = timedelta(minutes=15)
DEFAULT_SECONDS_PER_ORDER = Decimal("0.5")
DEFAULT_SAFETY_FACTOR = Decimal("2.0")

OK = "ok"
NOT_ENOUGH_HISTORY = "not_enough_history"
NO_ORDERS = "no_orders"

_HOUR = timedelta(hours=1)


def _exact(value: Fraction | Decimal | int | float | str) -> Fraction:
    """A number as an exact fraction; a float by its decimal text (0.1 is one tenth, not 0.1000000000000000055)."""
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def _shown(value: Fraction | None, places: int = 2) -> float | None:
    return None if value is None else float(round(Decimal(value.numerator) / Decimal(value.denominator), places))


def offset_hours(business_tz: timezone) -> int:
    """The business time zone's offset from UTC in whole hours; ValueError for anything else (the counts
    are per UTC hour, so a half-hour offset would split every slot between two counted hours)."""
    offset = business_tz.utcoffset(None)
    if offset is None:
        raise ValueError("the business time zone needs a fixed UTC offset (e.g. timezone(timedelta(hours=8)))")
    if offset % _HOUR:
        raise ValueError(f"the business time zone's offset must be whole hours, got {offset}")
    return offset // _HOUR


def zone_label(business_tz: timezone) -> str:
    """`UTC+8`, `UTC-5`, `UTC`."""
    hours = offset_hours(business_tz)
    return "UTC" if hours == 0 else f"UTC{hours:+d}"


def slot_label(weekday: int, hour: int) -> str:
    return f"{WEEKDAY_NAMES[weekday]} {hour:02d}:00"


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(timezone.utc)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + _HOUR


@dataclass(frozen=True)
class HourSlot:
    """One weekday x hour of business time and its orders in each week that covered it, oldest first."""

    weekday: int  # 0 = Monday
    hour: int
    observations: tuple[int, ...] = ()

    @property
    def weeks(self) -> int:
        return len(self.observations)

    @property
    def mean(self) -> Fraction | None:
        """Mean orders in this hour over the weeks observed (None: no week covered it)."""
        return Fraction(sum(self.observations), self.weeks) if self.observations else None

    @property
    def label(self) -> str:
        return slot_label(self.weekday, self.hour)


@dataclass(frozen=True)
class WeekdayProfile:
    """Mean orders per weekday x hour of business time over a span of UTC hours."""

    business_tz: timezone
    start: datetime  # first covered hour, UTC
    end: datetime  # end of the last covered hour, UTC
    slots: tuple[HourSlot, ...]  # 168, Monday 00:00 first

    @property
    def hours_covered(self) -> int:
        return max(0, (self.end - self.start) // _HOUR)

    @property
    def whole_weeks(self) -> int:
        return self.hours_covered // HOURS_PER_WEEK

    @property
    def total_orders(self) -> int:
        return sum(sum(slot.observations) for slot in self.slots)

    def slot(self, weekday: int, hour: int) -> HourSlot:
        return self.slots[weekday * 24 + hour]

    def mean(self, weekday: int, hour: int) -> Fraction | None:
        return self.slot(weekday, hour).mean

    @property
    def typical_hour(self) -> Fraction | None:
        """The median of the slot means over the slots with any order (None: no orders at all)."""
        means = [slot.mean for slot in self.slots if slot.mean]
        return statistics.median(means) if means else None

    def as_dict(self) -> dict:
        return {
            "business_time": zone_label(self.business_tz),
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "hours_covered": self.hours_covered, "whole_weeks": self.whole_weeks,
            "total_orders": self.total_orders, "typical_hour": _shown(self.typical_hour),
            "mean_orders_per_hour": {WEEKDAY_NAMES[day]: [_shown(self.mean(day, hour), 1) for hour in range(24)]
                                     for day in range(7)},
            "weeks_observed": {WEEKDAY_NAMES[day]: [self.slot(day, hour).weeks for hour in range(24)]
                               for day in range(7)},
        }


def weekday_profile(hourly_orders: Iterable[tuple[datetime, int]], start: datetime, end: datetime,
                    business_tz: timezone = CHINA_TIME) -> WeekdayProfile:
    """The weekday x hour profile of the whole UTC hours in [start, end) (see the module docstring).

    An empty or inverted span gives a profile with no observations, not an error; a naive time, a
    negative count or a zone that is not a whole-hour fixed offset is a caller's mistake (ValueError).
    """
    offset = timedelta(hours=offset_hours(business_tz))
    first, stop = _ceil_hour(_aware(start, "start")), _floor_hour(_aware(end, "end"))
    stop = max(first, stop)
    per_hour: dict[datetime, int] = {}
    for hour_start, orders in hourly_orders:
        if orders < 0:
            raise ValueError(f"orders cannot be negative ({orders} at {hour_start})")
        hour = _floor_hour(_aware(hour_start, "hour_start"))
        if first <= hour < stop:
            per_hour[hour] = per_hour.get(hour, 0) + orders
    observed: list[list[int]] = [[] for _ in range(HOURS_PER_WEEK)]
    hour = first
    while hour < stop:  # chronological, so each slot's observations are oldest first
        local = hour + offset  # wall time in business time, still labelled UTC: only weekday/hour are read
        observed[local.weekday() * 24 + local.hour].append(per_hour.get(hour, 0))
        hour += _HOUR
    slots = tuple(HourSlot(index // 24, index % 24, tuple(values)) for index, values in enumerate(observed))
    return WeekdayProfile(business_tz, first, stop, slots)


@dataclass(frozen=True)
class Peak:
    """A recurring busy hour of business time."""

    weekday: int
    hour: int
    mean: Fraction  # orders in this hour, mean over the weeks observed
    ratio: Fraction  # mean / typical hour
    weeks_above: int  # weeks in which this hour reached the threshold
    weeks_observed: int

    @property
    def label(self) -> str:
        return slot_label(self.weekday, self.hour)

    def as_dict(self) -> dict:
        return {"slot": self.label, "weekday": WEEKDAY_NAMES[self.weekday], "hour": self.hour,
                "mean_orders": _shown(self.mean, 1), "ratio_to_typical": _shown(self.ratio),
                "weeks_above": self.weeks_above, "weeks_observed": self.weeks_observed}


@dataclass(frozen=True)
class PeakReport:
    status: str  # ok | not_enough_history | no_orders
    reason: str  # for people; empty when ok
    business_tz: timezone
    typical_hour: Fraction | None
    threshold: Fraction | None
    peaks: tuple[Peak, ...] = ()

    def as_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason, "business_time": zone_label(self.business_tz),
                "typical_hour": _shown(self.typical_hour), "threshold": _shown(self.threshold),
                "peaks": [peak.as_dict() for peak in self.peaks]}


def find_peaks(profile: WeekdayProfile, *, ratio: Fraction | Decimal | int | float = DEFAULT_PEAK_RATIO,
               min_orders_per_hour: int = DEFAULT_MIN_ORDERS_PER_HOUR,
               min_weeks: int = DEFAULT_MIN_WEEKS) -> PeakReport:
    """The recurring peaks of the profile, largest first (the rule is in the module docstring)."""
    ratio = _exact(ratio)
    if ratio < 1 or min_orders_per_hour < 0 or min_weeks < 1:
        raise ValueError("ratio must be >= 1, min_orders_per_hour >= 0 and min_weeks >= 1")
    typical = profile.typical_hour
    if profile.whole_weeks < min_weeks:
        weeks = profile.hours_covered / HOURS_PER_WEEK
        return PeakReport(NOT_ENOUGH_HISTORY, f"not enough history: {weeks:.1f} weeks covered, a recurring peak "
                          f"needs at least {min_weeks} whole weeks", profile.business_tz, typical, None)
    if typical is None:
        return PeakReport(NO_ORDERS, f"no orders in the {profile.whole_weeks} weeks covered", profile.business_tz,
                          None, None)
    threshold = max(ratio * typical, Fraction(min_orders_per_hour))
    peaks = []
    for slot in profile.slots:
        weeks_above = sum(1 for orders in slot.observations if orders >= threshold)
        recurring = weeks_above >= min_weeks and 2 * weeks_above >= slot.weeks
        if slot.mean is not None and slot.mean >= threshold and recurring:
            peaks.append(Peak(slot.weekday, slot.hour, slot.mean, slot.mean / typical, weeks_above, slot.weeks))
    peaks.sort(key=lambda peak: (-peak.mean, peak.weekday, peak.hour))
    return PeakReport(OK, "", profile.business_tz, typical, threshold, tuple(peaks))


@dataclass(frozen=True)
class PrescaleWindow:
    """Provisioned concurrency for one run of adjacent peak hours."""

    weekday: int  # the window's first peak hour, business time
    hour: int
    hours: int  # length of the window
    peak_orders_per_hour: Fraction  # the busiest hour's mean
    concurrency: int
    warm_from_minute: int  # minute of the business week (Mon 00:00 = 0) the concurrency is switched on
    until_minute: int  # and off (the window's end)
    scale_out_cron: str  # UTC
    scale_in_cron: str  # UTC
    description: str  # business time, for people

    def as_dict(self) -> dict:
        return {"window": _window_text(self), "hours": self.hours,
                "peak_orders_per_hour": _shown(self.peak_orders_per_hour, 1), "concurrency": self.concurrency,
                "scale_out_cron_utc": self.scale_out_cron, "scale_in_cron_utc": self.scale_in_cron,
                "description": self.description}


@dataclass(frozen=True)
class PrescalePlan:
    status: str  # ok | not_enough_history | no_orders (from the peaks)
    reason: str
    business_tz: timezone
    windows: tuple[PrescaleWindow, ...]
    seconds_per_order: Fraction
    safety_factor: Fraction
    lead: timedelta

    def as_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason, "business_time": zone_label(self.business_tz),
                "seconds_per_order": _shown(self.seconds_per_order, 3),
                "safety_factor": _shown(self.safety_factor, 3), "lead_minutes": self.lead // timedelta(minutes=1),
                "windows": [window.as_dict() for window in self.windows]}


def concurrency_for(orders_per_hour: Fraction | int, seconds_per_order: Fraction | Decimal | int | float,
                    safety_factor: Fraction | Decimal | int | float) -> int:
    """ceil(orders per minute x seconds per order / 60 x safety factor), at least 1, computed exactly."""
    per_minute = _exact(orders_per_hour) / 60
    return max(1, math.ceil(per_minute * _exact(seconds_per_order) / 60 * _exact(safety_factor)))


def _clock(minute_of_week: int) -> tuple[int, int, int]:
    minute_of_week %= MINUTES_PER_WEEK
    return minute_of_week // (24 * 60), minute_of_week // 60 % 24, minute_of_week % 60


def weekly_cron(minute_of_week_utc: int) -> str:
    """`cron(45 1 ? * WED *)`: every week at this UTC minute of the week (Mon 00:00 = 0)."""
    day, hour, minute = _clock(minute_of_week_utc)
    return f"cron({minute} {hour} ? * {CRON_DAYS[day]} *)"


def _window_text(window: PrescaleWindow) -> str:
    """`Wed 09:45–11:00`, or `Sun 23:45–Mon 01:00` when it crosses midnight."""
    start_day, start_hour, start_minute = _clock(window.warm_from_minute)
    end_day, end_hour, end_minute = _clock(window.until_minute)
    end_text = f"{end_hour:02d}:{end_minute:02d}"
    if end_day != start_day and window.until_minute % (24 * 60):
        end_text = f"{WEEKDAY_NAMES[end_day]} {end_text}"
    elif end_day != start_day:  # ends at midnight: "Tue 23:45–24:00" reads better than "...–Wed 00:00"
        end_text = "24:00" if (end_day - start_day) % 7 == 1 else f"{WEEKDAY_NAMES[end_day]} {end_text}"
    return f"{WEEKDAY_NAMES[start_day]} {start_hour:02d}:{start_minute:02d}–{end_text}"


def _runs(indexes: set[int]) -> list[tuple[int, int]]:
    """Runs of adjacent hour-of-week indexes, circular over the week: (first index, length), by first index."""
    if len(indexes) == HOURS_PER_WEEK:
        return [(0, HOURS_PER_WEEK)]
    runs = []
    for index in sorted(indexes):
        if (index - 1) % HOURS_PER_WEEK in indexes:
            continue  # inside a run that starts earlier
        length = 1
        while (index + length) % HOURS_PER_WEEK in indexes:
            length += 1
        runs.append((index, length))
    return runs


def recommend_prescaling(report: PeakReport, *, lead: timedelta = DEFAULT_LEAD,
                         seconds_per_order: Fraction | Decimal | int | float = DEFAULT_SECONDS_PER_ORDER,
                         safety_factor: Fraction | Decimal | int | float = DEFAULT_SAFETY_FACTOR,
                         target: str = "the stream consumers") -> PrescalePlan:
    """A weekly provisioned-concurrency schedule for the report's peaks, one window per run of adjacent
    peak hours, in business week order (the rule is in the module docstring)."""
    per_order, factor = _exact(seconds_per_order), _exact(safety_factor)
    if per_order <= 0 or factor <= 0:
        raise ValueError("seconds_per_order and safety_factor must be positive")
    if lead < timedelta(0) or lead >= timedelta(days=1) or lead % timedelta(minutes=1):
        raise ValueError("the warm-up lead must be whole minutes, from 0 to under a day")
    if report.status != OK or not report.peaks:
        reason = report.reason or "no recurring peak: nothing to pre-scale"
        return PrescalePlan(report.status, reason, report.business_tz, (), per_order, factor, lead)
    lead_minutes = lead // timedelta(minutes=1)
    utc_shift = offset_hours(report.business_tz) * 60
    zone = zone_label(report.business_tz)
    by_index = {peak.weekday * 24 + peak.hour: peak for peak in report.peaks}
    windows = []
    for first, length in _runs(set(by_index)):
        busiest = max(by_index[(first + step) % HOURS_PER_WEEK].mean for step in range(length))
        concurrency = concurrency_for(busiest, per_order, factor)
        warm_from = (first * 60 - lead_minutes) % MINUTES_PER_WEEK
        until = ((first + length) * 60) % MINUTES_PER_WEEK
        window = PrescaleWindow(first // 24, first % 24, length, busiest, concurrency, warm_from, until,
                                weekly_cron(warm_from - utc_shift), weekly_cron(until - utc_shift), "")
        description = f"{_window_text(window)} {zone}: provisioned concurrency {concurrency} on {target}"
        windows.append(replace(window, description=description))
    return PrescalePlan(OK, "", report.business_tz, tuple(windows), per_order, factor, lead)
