"""What every channel normalizer does alike while it assembles one order.

- `require_order_id`: the quarantine reason when a record has no usable platform order id;
- `require_object`, `each_object`: an element that is not an object is refused, named by its place;
- `known_value`: a status outside the platform's closed enum is refused, never guessed;
- `region`, `protected_receiver`: the parts of a ship-to that several platforms send alike;
- `ResponseShapeError`: a saved list response in a shape the channel's normalizer does not read.

Pure: stdlib and the domain only (the field readers are in `_fields`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TypeVar

from oms.domain.order import MalformedOrderError
from oms.normalizers._fields import as_list, id_problem, shown, text

Value = TypeVar("Value")


class ResponseShapeError(ValueError):
    """A saved list response that is not the shape this channel answers with (nothing to normalize)."""


def require_order_id(order_id: str | None, found: object, field: str, problem: str = "is not an order id") -> str:
    """`order_id` when the record had one; else why not: `field` missing, or holding no usable id."""
    if order_id is not None:
        return order_id
    if found in (None, ""):
        raise MalformedOrderError(f"{field}: missing")
    raise MalformedOrderError(f"{field}: {shown(found)} {id_problem(found) or problem}")


def require_object(value: object, where: str) -> dict:
    """`value` when it is an object (a JSON object: a dict); else malformed, naming what came instead."""
    if not isinstance(value, dict):
        raise MalformedOrderError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def each_object(value: object, where: str) -> Iterator[tuple[str, dict]]:
    """The elements of a platform list, each with its place (`where[0]`, `where[1]`, ...).

    A missing list is empty. An element that is not an object is refused only when it is reached,
    after the elements before it were read: the first fault in list order is the one reported.
    """
    for index, element in enumerate(as_list(value, where)):
        place = f"{where}[{index}]"
        yield place, require_object(element, place)


def known_value(value: Value, known: Collection[Value], where: str) -> Value:
    """`value` when it is one of the platform's `known` values; an unknown status is never guessed."""
    if value not in known:
        raise MalformedOrderError(f"{where}: unknown value {shown(value)}")
    return value


def region(address: dict, province: str, city: str, district: str | None) -> dict:
    """The plain-text province / city / district of an address record, from the platform's keys."""
    return {
        "province": text(address.get(province)),
        "city": text(address.get(city)),
        "district": None if district is None else text(address.get(district)),
    }


def protected_receiver(ciphers: tuple[str | None, ...], plain: tuple[str | None, ...]) -> tuple[tuple, bool]:
    """The receiver's ciphertexts, kept as received, when the platform sent any; else its plain values.

    Returns (values, encrypted). Platforms that encrypt (Douyin, Kuaishou) leave the plain fields
    empty; older payloads carry plain values only.
    """
    encrypted = any(ciphers)
    return (ciphers if encrypted else plain), encrypted
