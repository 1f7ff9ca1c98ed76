"""Defensive readers of platform fields, shared by the normalizers: each failure names the field.

(What the normalizers do alike with a whole record, such as refusing an unknown status or an
order without an id, is in `_order_parts`.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from oms.domain.order import MalformedOrderError, format_utc

CHINA_TIME = timezone(timedelta(hours=8), "GMT+8")  # Taobao, JD, PDD local times; no daylight saving
US_PACIFIC = ZoneInfo("America/Los_Angeles")  # AliExpress local times, with daylight saving
_PLAIN_DECIMAL = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")
_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"


def text(value: object) -> str | None:
    """A platform value as text; blank strings count as absent."""
    if value is None:
        return None
    result = str(value).strip()
    return result or None


def required_text(record: dict, key: str, where: str) -> str:
    value = text(record.get(key)) if isinstance(record, dict) else None
    if value is None:
        raise MalformedOrderError(f"{where}{key}: missing")
    return value


def money(value: object, where: str, *, json_number: bool = False) -> Decimal:
    """A plain decimal amount ("12.50" or 12); never "1e5", "12,00" or "NaN".

    `json_number`: the platform sends amounts as JSON numbers (PDD's 59.9); a float is then read
    through its shortest round-trip text, which is the digits the platform sent. Elsewhere a float
    means a broken payload.
    """
    allowed = (str, int, float, Decimal) if json_number else (str, int, Decimal)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise MalformedOrderError(f"{where}: {value!r} is not a decimal amount")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if text.lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
        raise MalformedOrderError(f"{where}: {value!r} is not a finite amount")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise MalformedOrderError(f"{where}: {value!r} is not a decimal amount")
    return Decimal(text)


def fen(value: object, where: str) -> Decimal:
    """An integer amount in fen (Douyin, Kuaishou) as yuan."""
    return Decimal(whole_number(value, where)).scaleb(-2)


def id_text(value: object, where: str) -> str:
    """A platform id as text. JSON integers keep every digit in Python; a float has lost them."""
    if isinstance(value, (bool, float)):
        raise MalformedOrderError(f"{where}: {value!r} is not an exact id (a float loses digits of 19-digit ids)")
    result = text(value)
    if result is None:
        raise MalformedOrderError(f"{where}: missing")
    return result


def whole_number(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise MalformedOrderError(f"{where}: {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value.strip())
    raise MalformedOrderError(f"{where}: {value!r} is not an integer")


def quantity(value: object, where: str) -> int:
    """A line's ordered quantity: a whole number, never negative."""
    count = whole_number(value, where)
    if count < 0:
        raise MalformedOrderError(f"{where}: {count} is negative")
    return count


def order_id_text(value: object) -> str | None:
    """A platform order id (a string or an exact JSON integer) as text; anything else is no id.

    Never raises: callers use it to key a quarantine record, before the order is read. A float has
    already lost digits of a 16-19 digit id and a bool is not an id, so both give None.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return text(value)


def iso_time(value: object, where: str) -> str | None:
    """An ISO 8601 time with its zone, as UTC text; absent stays None."""
    if value in (None, ""):
        return None
    try:
        # The explicit rewrite stays: bare fromisoformat would also take a `Z` between date and
        # time ("2026-03-14Z08:00"), which this reader has always refused.
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))  # noqa: FURB162
    except ValueError:
        raise MalformedOrderError(f"{where}: {value!r} is not an ISO 8601 time (or out of range)") from None
    if moment.tzinfo is None:
        raise MalformedOrderError(f"{where}: {value!r} has no time zone")
    return format_utc(moment)


def local_time(value: object, where: str, zone) -> str | None:
    """A platform's `yyyy-MM-dd HH:mm:ss` local time (GMT+8, US Pacific) as UTC text."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.strptime(str(value).strip(), _LOCAL_FORMAT)
    except ValueError:
        raise MalformedOrderError(f"{where}: {value!r} is not a yyyy-MM-dd HH:mm:ss time") from None
    return format_utc(moment.replace(tzinfo=zone))


def china_time(value: object, where: str) -> str | None:
    """A Taobao / JD / PDD `yyyy-MM-dd HH:mm:ss` GMT+8 time as UTC text."""
    return local_time(value, where, CHINA_TIME)


def pacific_time(value: object, where: str) -> str | None:
    """An AliExpress `yyyy-MM-dd HH:mm:ss` US Pacific time (daylight saving included) as UTC text."""
    return local_time(value, where, US_PACIFIC)


def epoch_time(value: object, where: str, *, unit_seconds: float) -> str | None:
    """Epoch seconds (Douyin: unit 1) or milliseconds (Kuaishou: unit 0.001) as UTC text; 0 is absent."""
    if value in (None, "", 0, "0"):
        return None
    count = whole_number(value, where)
    try:
        moment = datetime.fromtimestamp(count * unit_seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedOrderError(f"{where}: {value!r} is out of range for an epoch time") from None
    return format_utc(moment)


def epoch_seconds(value: object, where: str) -> str | None:
    """Douyin's epoch seconds as UTC text; 0 is absent."""
    return epoch_time(value, where, unit_seconds=1)


def epoch_millis(value: object, where: str) -> str | None:
    """Kuaishou's epoch milliseconds as UTC text; 0 is absent."""
    return epoch_time(value, where, unit_seconds=0.001)


def joined(*parts: object) -> str | None:
    present = [p for p in (text(part) for part in parts) if p]
    return ", ".join(present) or None


def dig(value: object, *keys: str) -> object:
    """`value[k1][k2]...`, or None as soon as a level is not an object: never raises."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def as_list(value: object, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedOrderError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def as_dict(value: object, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedOrderError(f"{where}: expected an object, got {type(value).__name__}")
    return value


@contextmanager
def reading_order(order_id: str | None) -> Iterator[None]:
    """Every failure while reading one order becomes a MalformedOrderError carrying its id.

    Shapes the readers do not foresee (a date out of range, a list where an object belongs) are
    still a quarantine with a reason, never a crash that would block the rest of the page.
    """
    try:
        yield
    except MalformedOrderError as error:
        raise MalformedOrderError(error.reason, order_id) from error
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
        raise MalformedOrderError(f"unreadable order: {error}", order_id) from error
