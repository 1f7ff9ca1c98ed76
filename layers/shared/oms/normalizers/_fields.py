"""Defensive readers shared by the normalizers: each failure names the field it came from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation

from oms.domain.order import MalformedOrderError, format_utc


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


def money(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise MalformedOrderError(f"{where}: {value!r} is not a decimal amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise MalformedOrderError(f"{where}: {value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise MalformedOrderError(f"{where}: {value!r} is not a finite amount")
    return amount


def whole_number(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise MalformedOrderError(f"{where}: {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise MalformedOrderError(f"{where}: {value!r} is not an integer")


def iso_time(value: object, where: str) -> str | None:
    """An ISO 8601 time with its zone, as UTC text; absent stays None."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedOrderError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise MalformedOrderError(f"{where}: {value!r} has no time zone")
    return format_utc(moment)


def joined(*parts: object) -> str | None:
    present = [p for p in (text(part) for part in parts) if p]
    return ", ".join(present) or None


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
