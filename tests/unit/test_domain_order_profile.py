"""Weekday x hour order profile, recurring peaks and the pre-scaling schedule, on constructed histories
(pure, no mocks)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from oms.domain.order_profile import (
    CHINA_TIME,
    NO_ORDERS,
    NOT_ENOUGH_HISTORY,
    OK,
    concurrency_for,
    find_peaks,
    recommend_prescaling,
    weekday_profile,
    weekly_cron,
)

MONDAY = datetime(2026, 3, 2, tzinfo=CHINA_TIME)  # Monday 00:00 business time (Sunday 16:00 UTC)
WED, MON, SUN = 2, 0, 6


def history(weeks: float, base: int = 100, special=None, start: datetime = MONDAY, open_hours=range(24)):
    """Hourly (UTC hour start, orders) rows from `start` over `weeks`, `base` orders in every open hour of
    business time; `special(week, weekday, hour)` may return another count for an hour."""
    rows, hour = [], start
    end = start + timedelta(weeks=weeks)
    while hour < end:
        local = hour.astimezone(start.tzinfo)
        week = (hour - start) // timedelta(weeks=1)
        orders = (special and special(week, local.weekday(), local.hour))
        if orders is None:
            orders = base if local.hour in open_hours else 0
        if orders:  # a quiet hour leaves no row at all, as in the counters table
            rows.append((hour.astimezone(timezone.utc), orders))
        hour += timedelta(hours=1)
    return rows, start, end


def wednesday_10(values):
    """Wednesday 10:00 business time has values[week] orders."""
    return lambda week, weekday, hour: values[week] if (weekday, hour) == (WED, 10) else None


def report_of(rows_start_end, business_tz=CHINA_TIME, **options):
    rows, start, end = rows_start_end
    return find_peaks(weekday_profile(rows, start, end, business_tz), **options)


def test_a_recurring_wednesday_10_peak_is_found_with_its_mean_and_ratio():
    # GIVEN four weeks of 100 orders an hour, and Wednesday 10:00 (UTC+8) at 380, 400, 420, 400
    report = report_of(history(4, special=wednesday_10([380, 400, 420, 400])))
    # THEN the typical hour is 100, the threshold 2x that, and the one peak is Wed 10:00 with mean 400
    assert report.status == OK and report.typical_hour == 100 and report.threshold == 200
    assert [(p.label, p.mean, p.ratio, p.weeks_above, p.weeks_observed) for p in report.peaks] == [
        ("Wed 10:00", 400, 4, 4, 4)]


def test_the_business_hour_is_read_from_the_utc_hour_across_the_day_boundary():
    # GIVEN the Wednesday 10:00 UTC+8 peak, which the counters hold at Wednesday 02:00 UTC
    rows, start, end = history(4, special=wednesday_10([400] * 4))
    peak_rows = sorted({hour for hour, orders in rows if orders == 400})
    assert {(hour.weekday(), hour.hour) for hour in peak_rows} == {(WED, 2)}
    # WHEN profiled in UTC+8 and in UTC
    china = weekday_profile(rows, start, end, CHINA_TIME)
    utc = weekday_profile(rows, start, end, timezone.utc)
    # THEN each sees the peak at its own wall time
    assert china.mean(WED, 10) == 400 and china.mean(WED, 2) == 100
    assert utc.mean(WED, 2) == 400 and utc.mean(WED, 10) == 100


def test_a_one_off_spike_in_one_week_is_not_a_recurring_peak():
    # GIVEN a promotion lifting one Wednesday 10:00 to 1000 orders, a normal 100 the other weeks
    report = report_of(history(4, special=wednesday_10([100, 100, 1000, 100])))
    # THEN the slot's mean (325) passes the threshold, but one week is not a recurrence: no peak
    assert report.status == OK and report.peaks == ()
    # AND no pre-scaling is recommended
    plan = recommend_prescaling(report)
    assert plan.status == OK and plan.windows == () and "no recurring peak" in plan.reason


@pytest.mark.parametrize(("values", "is_peak"), [
    ([400, 100, 400, 100], True),  # every other week: half the weeks, at least two
    ([1000, 1000, 100, 100, 100, 100, 100, 100], False),  # two weeks of eight: a promotion, not a habit
    ([400, 400, 400, 400, 100, 400, 400, 400], True),  # one quiet week does not hide a habit
    ([250, 250, 190, 190, 190], False),  # mean 214 passes, but two weeks of five is less than half
])
def test_recurrence_needs_two_weeks_and_half_of_those_observed(values, is_peak):
    # GIVEN the Wednesday 10:00 counts of len(values) weeks, 100 orders in every other hour
    report = report_of(history(len(values), special=wednesday_10(values)))
    # THEN it is a peak only when it recurs (and its mean reaches the threshold)
    assert bool(report.peaks) is is_peak


def test_a_peak_needs_its_mean_over_the_threshold_not_only_some_weeks():
    # GIVEN Wednesday 10:00 at 200, 200, 150, 150: two weeks at the threshold, mean 175 below it
    report = report_of(history(4, special=wednesday_10([200, 200, 150, 150])))
    # THEN it is not a peak
    assert report.threshold == 200 and report.peaks == ()


def test_a_flat_history_has_no_peaks():
    # GIVEN four weeks of exactly 100 orders in every hour
    report = report_of(history(4))
    # THEN nothing stands out
    assert report.status == OK and report.typical_hour == 100 and report.peaks == ()


def test_hours_with_no_orders_do_not_drag_the_typical_hour_down():
    # GIVEN a shop open 12:00-24:00 only (half the week has no orders) and Wed 20:00 at 250
    rows = history(4, open_hours=range(12, 24),
                   special=lambda week, weekday, hour: 250 if (weekday, hour) == (WED, 20) else None)
    report = report_of(rows)
    # THEN the typical hour is an open hour's 100 (not 50), so only Wed 20:00 is a peak
    assert report.typical_hour == 100
    assert [peak.label for peak in report.peaks] == ["Wed 20:00"]


def test_small_volumes_are_not_peaks_below_the_minimum_orders_per_hour():
    # GIVEN a small shop: 5 orders an hour, Wednesday 10:00 at 20 (4x)
    rows = history(4, base=5, special=wednesday_10([20] * 4))
    # THEN with the default minimum of 60 an hour that is no peak; with a minimum of 10 it is
    assert report_of(rows).threshold == 60 and report_of(rows).peaks == ()
    assert [p.label for p in report_of(rows, min_orders_per_hour=10).peaks] == ["Wed 10:00"]


def test_an_empty_history_over_a_long_span_reports_no_orders():
    # GIVEN four weeks in which nothing was ordered (no rows)
    _, start, end = history(4)
    report = find_peaks(weekday_profile([], start, end))
    # THEN the answer says so, and the plan carries it through
    assert report.status == NO_ORDERS and report.peaks == () and "no orders" in report.reason
    assert recommend_prescaling(report).status == NO_ORDERS


@pytest.mark.parametrize("weeks", [0, 1, 1.9])
def test_a_history_shorter_than_two_weeks_is_not_enough(weeks):
    # GIVEN fewer than two whole weeks, even with a striking Wednesday
    rows = history(weeks, special=wednesday_10([900, 900]))
    report = report_of(rows)
    # THEN no peak is claimed and the reason says why, without an exception
    assert report.status == NOT_ENOUGH_HISTORY and report.peaks == ()
    assert "not enough history" in report.reason
    plan = recommend_prescaling(report)
    assert plan.status == NOT_ENOUGH_HISTORY and plan.windows == () and "not enough history" in plan.reason


def test_an_inverted_span_is_an_empty_profile_not_an_error():
    # GIVEN an end before the start
    profile = weekday_profile([(MONDAY, 5)], MONDAY, MONDAY - timedelta(days=3))
    # THEN nothing is covered
    assert profile.hours_covered == 0 and profile.total_orders == 0
    assert find_peaks(profile).status == NOT_ENOUGH_HISTORY


def test_a_partly_covered_week_is_averaged_over_the_weeks_that_covered_each_slot():
    # GIVEN 2.5 weeks from Monday 00:00: Monday to Thursday noon are seen three times, the rest twice
    rows, start, end = history(2.5)
    profile = weekday_profile(rows, start, end)
    # THEN every slot's mean is still 100 (not 100 x 2/3), with its own number of weeks
    assert profile.slot(MON, 9).weeks == 3 and profile.slot(SUN, 9).weeks == 2
    assert profile.mean(MON, 9) == 100 and profile.mean(SUN, 9) == 100
    assert profile.whole_weeks == 2 and profile.hours_covered == 420


def test_missing_hours_inside_the_span_count_as_zero_and_rows_outside_are_ignored():
    # GIVEN two weeks where the second Tuesday 09:00 has no row, one row before the span, one after
    rows, start, end = history(2)
    tuesday_9 = (MONDAY + timedelta(days=8, hours=9)).astimezone(timezone.utc)
    rows = [row for row in rows if row[0] != tuesday_9]
    rows += [(start - timedelta(hours=1), 10_000), (end, 10_000)]
    profile = weekday_profile(rows, start, end)
    # THEN the missing hour is a zero in that slot's mean and the outside rows count nowhere
    assert profile.slot(1, 9).observations == (100, 0) and profile.mean(1, 9) == 50
    assert profile.total_orders == 100 * 2 * 168 - 100


def test_rows_of_the_same_hour_add_up_and_only_whole_hours_of_the_span_count():
    # GIVEN two channels' rows for one hour, and a span that starts and ends mid-hour
    hour = datetime(2026, 3, 4, 2, tzinfo=timezone.utc)  # Wed 10:00 UTC+8
    profile = weekday_profile([(hour, 3), (hour, 4), (hour - timedelta(hours=1), 9)],
                              hour - timedelta(minutes=30), hour + timedelta(minutes=90))
    # THEN the hour holds 7 and the half-covered hour before it is not part of the span
    assert profile.hours_covered == 1 and profile.slot(WED, 10).observations == (7,)
    assert profile.total_orders == 7


def test_adjacent_peak_hours_make_one_window_sized_by_its_busiest_hour():
    # GIVEN Wednesday 10:00 at 21,600 and 11:00 at 7,200 orders every week (100 elsewhere)
    busy = {(WED, 10): 21_600, (WED, 11): 7_200}
    report = report_of(history(4, special=lambda week, weekday, hour: busy.get((weekday, hour))))
    # WHEN a schedule is recommended with the defaults (15 min lead, 0.5 s an order, 2x)
    plan = recommend_prescaling(report)
    # THEN both hours are peaks, largest first, and they make one window 09:45-12:00 at concurrency 6
    assert [peak.label for peak in report.peaks] == ["Wed 10:00", "Wed 11:00"]
    assert len(plan.windows) == 1
    window = plan.windows[0]
    assert (window.hours, window.peak_orders_per_hour, window.concurrency) == (2, 21_600, 6)
    assert window.description == "Wed 09:45–12:00 UTC+8: provisioned concurrency 6 on the stream consumers"
    assert (window.scale_out_cron, window.scale_in_cron) == ("cron(45 1 ? * WED *)", "cron(0 4 ? * WED *)")


def test_the_wednesday_10_utc8_schedule_runs_at_0145_to_0300_utc():
    # GIVEN the recurring Wednesday 10:00 UTC+8 peak of 400 orders
    plan = recommend_prescaling(report_of(history(4, special=wednesday_10([400] * 4))))
    # THEN provisioned concurrency goes on at 01:45 UTC and off at 03:00 UTC on Wednesdays
    (window,) = plan.windows
    assert window.scale_out_cron == "cron(45 1 ? * WED *)" and window.scale_in_cron == "cron(0 3 ? * WED *)"
    assert window.description == "Wed 09:45–11:00 UTC+8: provisioned concurrency 1 on the stream consumers"
    assert window.as_dict()["window"] == "Wed 09:45–11:00"


def test_a_monday_01_utc8_peak_is_scheduled_on_sunday_in_utc():
    # GIVEN a recurring peak on Monday 01:00 UTC+8, which is Sunday 17:00 UTC
    rows = history(4, special=lambda week, weekday, hour: 500 if (weekday, hour) == (MON, 1) else None)
    assert {(h.weekday(), h.hour) for h, orders in rows[0] if orders == 500} == {(SUN, 17)}
    plan = recommend_prescaling(report_of(rows))
    # THEN warm-up is Monday 00:45 business time = Sunday 16:45 UTC, the end Monday 02:00 = Sunday 18:00 UTC
    (window,) = plan.windows
    assert window.scale_out_cron == "cron(45 16 ? * SUN *)" and window.scale_in_cron == "cron(0 18 ? * SUN *)"
    assert window.description.startswith("Mon 00:45–02:00 UTC+8:")


def test_a_peak_at_midnight_monday_warms_up_late_sunday_and_merges_across_the_week_boundary():
    # GIVEN recurring peaks at Sunday 23:00 and Monday 00:00 business time
    busy = {(SUN, 23): 300, (MON, 0): 400}
    report = report_of(history(4, special=lambda week, weekday, hour: busy.get((weekday, hour))))
    plan = recommend_prescaling(report)
    # THEN they are one window from Sunday 22:45 to Monday 01:00, sized by Monday 00:00
    (window,) = plan.windows
    assert (window.weekday, window.hour, window.hours, window.peak_orders_per_hour) == (SUN, 23, 2, 400)
    assert window.description.startswith("Sun 22:45–Mon 01:00 UTC+8:")
    assert window.scale_out_cron == "cron(45 14 ? * SUN *)" and window.scale_in_cron == "cron(0 17 ? * SUN *)"


def test_separate_peaks_make_separate_windows_in_week_order():
    # GIVEN recurring peaks on Friday 20:00 and Wednesday 10:00
    busy = {(WED, 10): 400, (4, 20): 600}
    plan = recommend_prescaling(report_of(history(4, special=lambda week, weekday, hour: busy.get((weekday, hour)))))
    # THEN two windows, Wednesday first
    assert [w.description.split(" UTC")[0] for w in plan.windows] == ["Wed 09:45–11:00", "Fri 19:45–21:00"]


def test_a_window_ending_at_midnight_reads_24_00_and_a_zero_lead_starts_on_the_hour():
    # GIVEN a recurring Wednesday 23:00 peak and no warm-up lead
    rows = history(4, special=lambda week, weekday, hour: 400 if (weekday, hour) == (WED, 23) else None)
    (window,) = recommend_prescaling(report_of(rows), lead=timedelta(0)).windows
    # THEN the window is Wed 23:00-24:00 business time, 15:00-16:00 UTC
    assert window.description.startswith("Wed 23:00–24:00 UTC+8:")
    assert window.scale_out_cron == "cron(0 15 ? * WED *)" and window.scale_in_cron == "cron(0 16 ? * WED *)"


def test_another_business_time_zone_shifts_the_cron_the_other_way():
    # GIVEN a seller in UTC-5 with a recurring Wednesday 10:00 (local) peak
    new_york_winter = timezone(timedelta(hours=-5))
    start = datetime(2026, 3, 2, tzinfo=new_york_winter)
    rows = history(4, special=wednesday_10([400] * 4), start=start)
    (window,) = recommend_prescaling(report_of(rows, business_tz=new_york_winter)).windows
    # THEN 09:45 local is 14:45 UTC
    assert window.scale_out_cron == "cron(45 14 ? * WED *)" and window.scale_in_cron == "cron(0 16 ? * WED *)"
    assert window.description.startswith("Wed 09:45–11:00 UTC-5:")


@pytest.mark.parametrize(("orders_per_hour", "seconds_per_order", "safety_factor", "expected"), [
    (21_600, Decimal("0.5"), Decimal("2.0"), 6),  # 360 a minute x 0.5 s / 60 x 2 = 6 exactly
    (21_660, Decimal("0.5"), Decimal("2.0"), 7),  # 6.03 rounds up
    (36_000, 0.1, 2, 2),  # 600 x 0.1 / 60 x 2 = 2 exactly: a float 0.1 must not make it 3
    (400, Decimal("0.5"), Decimal("2.0"), 1),  # 0.11: never below one
    (0, Decimal("0.5"), Decimal("2.0"), 1),
    (Fraction(7201, 2), 3, Decimal("1.5"), 5),  # 60.008 a minute x 3 s / 60 x 1.5 = 4.5006 -> 5
])
def test_concurrency_is_the_rounded_up_busy_executions_with_a_margin(orders_per_hour, seconds_per_order,
                                                                      safety_factor, expected):
    # GIVEN a peak hour's orders, the processing seconds per order and the safety factor
    # THEN concurrency = ceil(orders a minute x seconds / 60 x factor), at least 1
    assert concurrency_for(orders_per_hour, seconds_per_order, safety_factor) == expected


def test_the_plan_uses_the_given_processing_time_and_factor():
    # GIVEN the 21,600-an-hour Wednesday peak, 1.2 s an order and a factor of 1.5
    rows = history(4, special=wednesday_10([21_600] * 4))
    plan = recommend_prescaling(report_of(rows), seconds_per_order=Decimal("1.2"), safety_factor=Decimal("1.5"),
                                lead=timedelta(minutes=30))
    # THEN 360 a minute x 1.2 / 60 x 1.5 = 10.8 -> 11, switched on 30 minutes ahead
    (window,) = plan.windows
    assert window.concurrency == 11 and window.scale_out_cron == "cron(30 1 ? * WED *)"
    assert plan.as_dict()["windows"][0]["concurrency"] == 11


@pytest.mark.parametrize(("minute_of_week", "cron"), [
    (0, "cron(0 0 ? * MON *)"), (-15, "cron(45 23 ? * SUN *)"), (2 * 1440 + 105, "cron(45 1 ? * WED *)"),
    (7 * 1440, "cron(0 0 ? * MON *)"),
])
def test_weekly_cron_wraps_around_the_week(minute_of_week, cron):
    assert weekly_cron(minute_of_week) == cron


def test_naive_times_and_half_hour_zones_are_refused():
    # GIVEN times without a zone, or a business zone the hourly UTC counts cannot be split into
    naive = datetime(2026, 3, 2)
    # THEN the caller hears of it at once
    with pytest.raises(ValueError, match="timezone-aware"):
        weekday_profile([], naive, naive + timedelta(weeks=2))
    with pytest.raises(ValueError, match="timezone-aware"):
        weekday_profile([(naive, 1)], MONDAY, MONDAY + timedelta(weeks=2))
    with pytest.raises(ValueError, match="whole hours"):
        weekday_profile([], MONDAY, MONDAY + timedelta(weeks=2), timezone(timedelta(hours=5, minutes=30)))
    with pytest.raises(ValueError, match="negative"):
        weekday_profile([(MONDAY, -1)], MONDAY, MONDAY + timedelta(weeks=2))


def test_the_reports_are_json_able():
    # GIVEN a report and a plan
    report = report_of(history(4, special=wednesday_10([400] * 4)))
    profile = weekday_profile(*history(4, special=wednesday_10([400] * 4)))
    # THEN their dicts carry the slot, the means (rounded) and the schedule
    assert report.as_dict()["peaks"][0] == {"slot": "Wed 10:00", "weekday": "Wed", "hour": 10, "mean_orders": 400.0,
                                            "ratio_to_typical": 4.0, "weeks_above": 4, "weeks_observed": 4}
    assert profile.as_dict()["mean_orders_per_hour"]["Wed"][10] == 400.0
    assert profile.as_dict()["business_time"] == "UTC+8"
    assert recommend_prescaling(report).as_dict()["windows"][0]["scale_out_cron_utc"] == "cron(45 1 ? * WED *)"
