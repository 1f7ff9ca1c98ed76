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

from oms.domain.order import MAX_ORDER_ID_CHARS, MalformedOrderError, format_utc

CHINA_TIME = timezone(timedelta(hours=8), "GMT+8")  # Taobao, JD, PDD local times; no daylight saving
US_PACIFIC = ZoneInfo("America/Los_Angeles")  # AliExpress local times, with daylight saving
_PLAIN_DECIMAL = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")
_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
# No amount, count or epoch time has more digits than this: Python's decimal arithmetic (sums, fen to
# yuan) keeps 28 significant digits and rounds silently beyond; DynamoDB's numbers hold 38; and Python
# refuses to convert integers of more than 4300 digits to or from text.
MAX_DIGITS = 28
_INT_TEXT_BITS = 14_000  # about 4200 digits: Python renders integers of at most 4300 digits as text
_SHOWN_CHARS = 60


def shown(value: object) -> str:
    """A platform value as a reason quotes it: its repr, cut short when long (a reason stays readable)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * _SHOWN_CHARS:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return f"{value[:_SHOWN_CHARS]!r}... ({len(value)} characters)"
    if isinstance(value, dict) and _room_left(value) < 0:
        return f"an object of {len(value)} {'entry' if len(value) == 1 else 'entries'}"
    if isinstance(value, list) and _room_left(value) < 0:
        return f"a list of {len(value)} {'item' if len(value) == 1 else 'items'}"
    return repr(value)


def _room_left(value: object, room: int = _SHOWN_CHARS) -> int:
    """Roughly what is left of `room` characters once `value` is rendered (below 0: too long to quote),
    found without rendering it: a payload's object can be huge, or hold integers repr cannot render."""
    if isinstance(value, (dict, list)):
        pairs = value.items() if isinstance(value, dict) else ((None, inner) for inner in value)
        for key, inner in pairs:
            room = _room_left(inner, room - 2 if key is None else _room_left(key, room - 4))
            if room < 0:
                return room
        return room - 2
    if isinstance(value, str):
        return room - len(value) - 2
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * _SHOWN_CHARS:
        return -1
    return room - 6  # a number, a boolean, None: near enough


class NotTextError(TypeError):
    """An object, a list, a boolean (or an integer too long to render) where the platform sends text
    or a number; `reading_order` names the field it came from."""

    def __init__(self, value: object):
        super().__init__(f"expected text, got {_kind(value)}")
        self.value = value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (dict, list)) and _room_left(value) >= 0:
        return f"{'an object' if isinstance(value, dict) else 'a list'} ({value!r})"
    return shown(value)


def text(value: object) -> str | None:
    """A platform value (text or a number) as text; blank strings count as absent.

    An object, a list or a boolean is no text: its Python rendering ("{'a': 1}", "True") would pass
    for a name or a SKU, so it raises NotTextError (a malformed order naming the field).
    """
    if value is None:
        return None
    if isinstance(value, (dict, list, bool)) or (isinstance(value, int) and value.bit_length() > _INT_TEXT_BITS):
        raise NotTextError(value)
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
        raise MalformedOrderError(f"{where}: {shown(value)} is not a decimal amount")
    if isinstance(value, int) and value.bit_length() > 4 * MAX_DIGITS:
        raise MalformedOrderError(f"{where}: {shown(value)} has more digits than an amount can ({MAX_DIGITS})")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if text.lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
        raise MalformedOrderError(f"{where}: {shown(value)} is not a finite amount")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise MalformedOrderError(f"{where}: {shown(value)} is not a decimal amount")
    if sum(character.isdigit() for character in text.lstrip("-0.")) > MAX_DIGITS:
        raise MalformedOrderError(f"{where}: {shown(value)} has more digits than an amount can ({MAX_DIGITS})")
    return Decimal(text)


def fen(value: object, where: str) -> Decimal:
    """An integer amount in fen (Douyin, Kuaishou) as yuan."""
    return Decimal(whole_number(value, where)).scaleb(-2)


def id_text(value: object, where: str) -> str:
    """A platform id as text. JSON integers keep every digit in Python; a float has lost them."""
    if isinstance(value, (bool, float)):
        raise MalformedOrderError(f"{where}: {shown(value)} is not an exact id (a float loses digits of 19-digit ids)")
    if isinstance(value, (dict, list)):
        raise MalformedOrderError(f"{where}: {shown(value)} is not an id")
    result = text(value)
    if result is None:
        raise MalformedOrderError(f"{where}: missing")
    return result


def whole_number(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise MalformedOrderError(f"{where}: {value!r} is not an integer")
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        digits = value.strip().lstrip("-").lstrip("0")
        if len(digits) > MAX_DIGITS:
            raise MalformedOrderError(f"{where}: {shown(value)} is out of range (more than {MAX_DIGITS} digits)")
        return int(value.strip())
    if isinstance(value, int):
        if abs(value) >= 10**MAX_DIGITS:
            raise MalformedOrderError(f"{where}: {shown(value)} is out of range (more than {MAX_DIGITS} digits)")
        return value
    raise MalformedOrderError(f"{where}: {shown(value)} is not an integer")


def quantity(value: object, where: str) -> int:
    """A line's ordered quantity: a whole number, never negative."""
    count = whole_number(value, where)
    if count < 0:
        raise MalformedOrderError(f"{where}: {count} is negative")
    return count


def order_id_text(value: object) -> str | None:
    """A platform order id (a string or an exact JSON integer) as text; anything else is no id.

    Never raises: callers use it to key a quarantine record, before the order is read. A float has
    already lost digits of a 16-19 digit id and a bool is not an id, so both give None; so does an
    id that could key neither an order nor a quarantine record (the quarantine keys such a payload
    by its digest): one longer than any platform's (MAX_ORDER_ID_CHARS), or text UTF-8 cannot
    carry (a lone surrogate from bytes that were not UTF-8).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)) or id_problem(value) is not None:
        return None
    return text(value)


def id_problem(value: object) -> str | None:
    """Why a text or integer order id cannot key an order or a quarantine row; None when it can."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 4 * MAX_ORDER_ID_CHARS or len(str(value)) > MAX_ORDER_ID_CHARS:
            return f"is longer than any order id (at most {MAX_ORDER_ID_CHARS} characters)"
    elif isinstance(value, str):
        if len(value.strip()) > MAX_ORDER_ID_CHARS:
            return f"is longer than any order id (at most {MAX_ORDER_ID_CHARS} characters)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode text (a lone surrogate: bytes that were not UTF-8)"
    return None


def iso_time(value: object, where: str) -> str | None:
    """An ISO 8601 time with its zone, as UTC text; absent stays None."""
    if value in (None, ""):
        return None
    try:
        # The explicit rewrite stays: bare fromisoformat would also take a `Z` between date and
        # time ("2026-03-14Z08:00"), which this reader has always refused.
        moment = datetime.fromisoformat(_time_text(value, where).replace("Z", "+00:00"))  # noqa: FURB162
    except ValueError:
        raise MalformedOrderError(f"{where}: {shown(value)} is not an ISO 8601 time (or out of range)") from None
    if moment.tzinfo is None:
        raise MalformedOrderError(f"{where}: {shown(value)} has no time zone")
    return _utc(moment, value, where)


def _time_text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise MalformedOrderError(f"{where}: {shown(value)} is not a time (expected text)")
    return value


def _utc(moment: datetime, value: object, where: str) -> str:
    """`moment` as UTC text; a time at the edge of the calendar may have no UTC equivalent."""
    try:
        return format_utc(moment)
    except (OverflowError, ValueError):
        raise MalformedOrderError(f"{where}: {shown(value)} is out of range once converted to UTC") from None


def local_time(value: object, where: str, zone) -> str | None:
    """A platform's `yyyy-MM-dd HH:mm:ss` local time (GMT+8, US Pacific) as UTC text."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.strptime(_time_text(value, where).strip(), _LOCAL_FORMAT)
    except ValueError:
        raise MalformedOrderError(f"{where}: {shown(value)} is not a yyyy-MM-dd HH:mm:ss time") from None
    return _utc(moment.replace(tzinfo=zone), value, where)


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
        raise MalformedOrderError(f"{where}: {shown(value)} is out of range for an epoch time") from None
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
def reading_order(order_id: str | None, raw: object = None) -> Iterator[None]:
    """Every failure while reading one order becomes a MalformedOrderError carrying its id.

    Shapes the readers do not foresee (a date out of range, a list where an object belongs) are
    still a quarantine with a reason, never a crash that would block the rest of the page. `raw`:
    the record being read, where an object or a list found in place of text is looked up to name
    its field.
    """
    try:
        yield
    except MalformedOrderError as error:
        raise MalformedOrderError(error.reason, order_id) from error
    except NotTextError as error:
        raise MalformedOrderError(f"{_place_of(raw, error.value)}: {error}", order_id) from error
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
        raise MalformedOrderError(f"unreadable order: {error}", order_id) from error


def _place_of(raw: object, value: object) -> str:
    """The dotted path of `value` inside `raw` (found by identity); several for a boolean, which
    JSON shares between fields; "a text field" when it cannot be told."""
    found: list[str] = []

    def walk(node: object, place: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, inner in items:
            if len(found) > 3:
                return
            inner_place = f"{place}[{key}]" if isinstance(node, list) else f"{place}.{key}" if place else str(key)
            if inner is value:
                found.append(inner_place)
            elif isinstance(inner, (dict, list)):
                walk(inner, inner_place)

    walk(raw, "")
    if not found:
        return "a text field"
    return found[0] if len(found) == 1 else f"one of {', '.join(found[:3])}"
