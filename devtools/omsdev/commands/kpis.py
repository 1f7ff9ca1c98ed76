"""`oms kpis`: the six operating KPIs (SPEC C9) of the stack, and `--recommend`: recurring order peaks and
the provisioned-concurrency schedule to meet them.

`oms kpis [--from DAY --to DAY] [--channel C] [--json]` prints the KPI report of those UTC days (default:
today, at most 31) from the KPI counters table, by `oms.services.kpi_report` (what GET /kpis serves):
the six KPIs with their targets, one row per channel and per day; `--json` prints the whole report.

`oms kpis --recommend [--weeks N] [--timezone +08:00] [--seconds-per-order X] [--safety-factor F]` reads
the last N whole weeks of hourly counters (up to the current hour, or to the end of `--to`), adds up the
orders paid in each hour over the channels (the pseudo-channel `_system` holds no orders), and prints
the mean orders per weekday x hour of business time as a 7 x 24 table, the recurring peaks and a
provisioned-concurrency schedule with its cron expressions in UTC (`oms.domain.order_profile` has the
rule). The history starts no earlier than the first hour the counters hold: a stack running for three
days has three days of history, not four weeks of mostly zeros, and is told so.

Like the other stack commands it works against the local cloud (or `--endpoint`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from omsdev.commands._stack import add_stack_arguments, use_stack
from omsdev.kpi_summary import kpi_text

_ZONE = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def register(subparsers) -> None:
    from oms.domain import order_profile as rule

    parser = subparsers.add_parser(
        "kpis", help="the six operating KPIs; --recommend: recurring order peaks and a pre-scaling schedule",
        description="Prints the KPI report of the stack's KPI counters for the given UTC days. With --recommend, "
                    "prints instead the mean orders per weekday and hour of business time over the last weeks, the "
                    "recurring peaks, and a provisioned-concurrency schedule (cron expressions in UTC) to meet them.")
    parser.add_argument("--from", dest="first_day", type=_day, metavar="DAY", help="first UTC day (default: --to)")
    parser.add_argument("--to", dest="last_day", type=_day, metavar="DAY",
                        help="last UTC day (default: today); with --recommend, the history ends with this day")
    parser.add_argument("--channel", help="only this channel's counters")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    peaks = parser.add_argument_group("peak detection and pre-scaling")
    peaks.add_argument("--recommend", action="store_true",
                       help="print the weekday x hour profile, the recurring peaks and the recommended schedule")
    peaks.add_argument("--weeks", type=_positive_int, default=4, help="weeks of history to read (default: 4)")
    peaks.add_argument("--timezone", type=business_zone, default=rule.CHINA_TIME, metavar="+HH:MM",
                       help="the seller's business time, a whole-hour UTC offset (default: +08:00)")
    peaks.add_argument("--seconds-per-order", type=_positive_decimal, default=rule.DEFAULT_SECONDS_PER_ORDER,
                       metavar="X", help=f"processing seconds per order (default: {rule.DEFAULT_SECONDS_PER_ORDER})")
    peaks.add_argument("--safety-factor", type=_positive_decimal, default=rule.DEFAULT_SAFETY_FACTOR, metavar="F",
                       help=f"margin on the computed concurrency (default: {rule.DEFAULT_SAFETY_FACTOR})")
    peaks.add_argument("--lead-minutes", type=_lead_minutes, default=rule.DEFAULT_LEAD // timedelta(minutes=1),
                       metavar="M", help="switch provisioned concurrency on this many minutes before a peak "
                                         f"(default: {rule.DEFAULT_LEAD // timedelta(minutes=1)})")
    peaks.add_argument("--min-orders-per-hour", type=_non_negative_int, default=rule.DEFAULT_MIN_ORDERS_PER_HOUR,
                       metavar="N", help="an hour below this is never a peak "
                                         f"(default: {rule.DEFAULT_MIN_ORDERS_PER_HOUR})")
    add_stack_arguments(parser)
    parser.set_defaults(run=run)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _lead_minutes(text: str) -> int:
    minutes = _non_negative_int(text)
    if minutes >= 24 * 60:
        raise argparse.ArgumentTypeError("the lead must be under a day")
    return minutes


def _positive_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def business_zone(text: str) -> timezone:
    """`+08:00`, `+8`, `UTC+8`, `-05:00`, `UTC`, `Z` as a fixed offset of whole hours."""
    from oms.domain.order_profile import offset_hours

    cleaned = text.strip().upper()
    if cleaned in ("Z", "UTC", "GMT"):
        return timezone.utc
    match = _ZONE.match(cleaned)
    if match is None or int(match.group(2)) > 14 or int(match.group(3) or 0) > 59:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UTC offset (e.g. +08:00)")
    sign, hours, minutes = match.groups()
    zone = timezone((-1 if sign == "-" else 1) * timedelta(hours=int(hours), minutes=int(minutes or 0)))
    try:
        offset_hours(zone)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the hourly counters need a whole-hour offset") from None
    return zone


def run(args) -> int:
    if args.recommend and args.first_day:
        print("--recommend reads the last --weeks up to --to; --from does not apply", file=sys.stderr)
        return 2
    today = datetime.now(timezone.utc).date()
    last_day = args.last_day or today
    first_day = args.first_day or last_day
    if first_day > last_day:
        print(f"--from {first_day} is after --to {last_day}", file=sys.stderr)
        return 2
    if not use_stack(args):
        return 2
    return run_recommend(args) if args.recommend else run_report(args, first_day, last_day)


def run_report(args, first_day: date, last_day: date) -> int:
    from oms.adapters.kpi_counters_table import KpiCountersTable
    from oms.adapters.review_items_table import ReviewItemsTable
    from oms.services.kpi_report import KpiRangeError, kpi_report
    from oms.settings import get_settings

    settings = get_settings()
    try:
        report = kpi_report(KpiCountersTable(settings.kpi_table), ReviewItemsTable(settings.review_items_table),
                            first_day, last_day, datetime.now(timezone.utc), channel=args.channel)
    except KpiRangeError as error:
        print(f"--from {first_day} --to {last_day}: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    else:
        print(render_report(report))
    return 0


# Short column names of the six KPIs, in `oms.domain.kpis.kpis` order.
_KPI_COLUMNS = {"ingestion_latency_p95_seconds": "latency p95", "auto_allocation_rate": "auto-allocated",
                "first_shipment_on_time_rate": "on time", "exception_order_ratio": "exceptions",
                "orders_per_staff_day": "per staff-day", "availability": "availability"}


def render_report(report: dict) -> str:
    """The KPI report as text: the overall KPIs with their targets, then one row per channel and per day
    (a breach is marked !); the hourly detail and the chart data are in --json."""
    days = report["from"] if report["from"] == report["to"] else f"{report['from']} to {report['to']}"
    scope = f"channel {report['channel']}" if report.get("channel") else "all channels"
    counts, queue = report["overall"]["counts"], report["review_queue"]
    oldest = queue.get("oldest_open_age_seconds")
    lines = [f"KPIs {days} (UTC days), {scope}; generated {report['generated_at']}",
             f"{counts['orders_stored']} orders stored, {counts['orders_shipped']} shipped, "
             f"{report['allocation_outcomes']['sent_to_review']} sent to review by allocation, "
             f"{report['risk_holds']} risk holds; {queue['open_items']} review items open"
             + ("" if oldest is None else f" (oldest {_age(oldest)})"), ""]
    rows = [("kpi", "value", "target", "status")]
    rows += [(kpi["name"], kpi_text(kpi), kpi["target"], kpi["status"]) for kpi in report["overall"]["kpis"]]
    lines += _table(rows, right=(1,))
    for title, label, parts in (("per channel", "channel", report["channels"].items()),
                                ("per day", "day", ((day["day"], day) for day in report["days"]))):
        table = [(label, "stored", *_KPI_COLUMNS.values())]
        table += [(name, str(part["counts"]["orders_stored"]),
                   *(kpi_text(kpi) + ("!" if kpi["status"] == "breach" else "") for kpi in part["kpis"]))
                  for name, part in parts]
        if len(table) > 1:
            lines += ["", f"{title} (! = breach, - = no data):", *_table(table, right=range(1, len(table[0])))]
    return "\n".join(lines)


def _age(seconds: int) -> str:
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds % 60:02d}s"


def _table(rows: list[tuple[str, ...]], right=()) -> list[str]:
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(rows[0]))]
    return ["  " + "  ".join(str(cell).rjust(widths[column]) if column in right else str(cell).ljust(widths[column])
                             for column, cell in enumerate(row)).rstrip() for row in rows]


def hourly_orders(counters_by_hour, channel: str | None = None) -> tuple[list[tuple[datetime, int]], datetime | None]:
    """(UTC hour, orders paid) rows summed over the channels (or the one asked for), and the first hour the
    counters hold anything at all (any channel, `_system` included: it shows the stack was running)."""
    from oms.services.kpi_report import SYSTEM_CHANNEL

    per_hour: dict[datetime, int] = {}
    for (hour, row_channel), counts in counters_by_hour.items():
        if row_channel == SYSTEM_CHANNEL or (channel and row_channel != channel):
            continue
        per_hour[hour] = per_hour.get(hour, 0) + counts.orders_paid
    first_hour = min((hour for hour, _ in counters_by_hour), default=None)
    return sorted(per_hour.items()), first_hour


def history_span(weeks: int, last_day: date | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the history: whole hours only (the current hour is still filling up)."""
    end = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    if last_day is not None:
        end = min(end, datetime.combine(last_day + timedelta(days=1), datetime.min.time(), timezone.utc))
    return end - timedelta(weeks=weeks), end


def run_recommend(args) -> int:
    from oms.adapters.kpi_counters_table import KpiCountersTable
    from oms.domain.order_profile import find_peaks, recommend_prescaling, weekday_profile
    from oms.settings import get_settings

    start, end = history_span(args.weeks, args.last_day, datetime.now(timezone.utc))
    counters = KpiCountersTable(get_settings().kpi_table).hours(start.date(), (end - timedelta(hours=1)).date())
    rows, first_hour = hourly_orders(counters, args.channel)
    if first_hour is not None and first_hour > start:
        start = first_hour  # before it the stack did not exist: not zeros
    elif first_hour is None:
        start = end  # the counters hold nothing: no history at all
    profile = weekday_profile(rows, start, end, args.timezone)
    report = find_peaks(profile, min_orders_per_hour=args.min_orders_per_hour)
    plan = recommend_prescaling(report, lead=timedelta(minutes=args.lead_minutes),
                                seconds_per_order=args.seconds_per_order, safety_factor=args.safety_factor)
    if args.json:
        print(json.dumps({"channel": args.channel, "profile": profile.as_dict(), "peaks": report.as_dict(),
                          "recommendation": plan.as_dict()}, ensure_ascii=False, indent=2))
    else:
        print(render_recommendation(profile, report, plan, args.channel))
    return 0


def render_recommendation(profile, report, plan, channel: str | None = None) -> str:
    """The 7 x 24 table of mean orders per hour (peaks marked *), the peaks and the schedule."""
    from oms.domain.order_profile import OK, WEEKDAY_NAMES, zone_label

    zone = zone_label(profile.business_tz)
    weeks = profile.hours_covered / (7 * 24)
    scope = f"channel {channel}" if channel else "all channels"
    lines = [f"Orders paid per hour, {scope}: mean per weekday and hour in business time {zone}, over "
             f"{weeks:.1f} weeks ({profile.start:%Y-%m-%d %H:%M} to {profile.end:%Y-%m-%d %H:%M} UTC)"]
    if profile.hours_covered:
        peak_slots = {(peak.weekday, peak.hour) for peak in report.peaks}
        cells = {(day, hour): _cell(profile.mean(day, hour)) + ("*" if (day, hour) in peak_slots else "")
                 for day in range(7) for hour in range(24)}
        width = max(3, *(len(cell) for cell in cells.values()))
        lines.append("     " + " ".join(f"{hour:02d}".rjust(width) for hour in range(24)))
        lines += [f"{WEEKDAY_NAMES[day]}  " + " ".join(cells[day, hour].rjust(width) for hour in range(24))
                  for day in range(7)]
        lines.append("(mean orders in the hour; - not covered; * recurring peak)")
    lines.append("")
    if report.status != OK:
        lines.append(report.reason)
        return "\n".join(lines)
    lines.append(f"Typical hour {_number(report.typical_hour)} orders (median of the hours with orders); a peak "
                 f"reaches {_number(report.threshold)} orders (2x typical, at least the minimum per hour) in at "
                 "least 2 weeks and half of the weeks observed.")
    if not report.peaks:
        lines.append("No recurring peak: nothing to pre-scale.")
        return "\n".join(lines)
    lines.append("Recurring peaks, largest first:")
    lines += [f"  {peak.label}  mean {_number(peak.mean)} orders  {_number(peak.ratio)}x typical  "
              f"above the threshold in {peak.weeks_above} of {peak.weeks_observed} weeks" for peak in report.peaks]
    lines += ["", f"Recommended provisioned concurrency ({_number(plan.seconds_per_order)} s an order, safety factor "
                  f"{_number(plan.safety_factor)}, switched on {plan.lead // timedelta(minutes=1)} min ahead; "
                  "Application Auto Scaling scheduled actions on lambda:function:ProvisionedConcurrency, cron in UTC):"]
    for window in plan.windows:
        lines += [f"  {window.description} (busiest hour {_number(window.peak_orders_per_hour)} orders)",
                  f"    scale out  {window.scale_out_cron}  to {window.concurrency}",
                  f"    scale in   {window.scale_in_cron}  back to the baseline"]
    return "\n".join(lines)


def _cell(mean) -> str:
    return "-" if mean is None else str(round(mean))


def _number(value) -> str:
    """A Fraction or Decimal for people: at most one decimal place, none when whole."""
    shown = round(float(value), 1)
    return str(int(shown)) if shown == int(shown) else str(shown)
