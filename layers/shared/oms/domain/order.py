"""The canonical order: the one shape every channel's order becomes (SPEC section 3).

Pure domain: stdlib + pydantic only. Field names are the public contract printed by
`oms normalize` and stored in the Orders table; do not rename them.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

CHANNELS = ("taobao", "jd", "pdd", "douyin", "kuaishou", "amazon", "aliexpress", "shopify")

# Bounds that keep every order (and every refusal) storable. The order key is the Orders table's
# partition key (DynamoDB: at most 2048 bytes) and the quarantine id: platform ids are 12-30
# characters, so a longer one is a broken payload. A stored order item may take 400 KB in all, shared
# with its raw payload (up to 64 KB inline) and what allocation and risk add later: the channel's
# part gets a third. A reason is stored with the quarantined payload and shown to a reviewer.
MAX_ORDER_ID_CHARS = 128
MAX_ORDER_BYTES = 128 * 1024
MAX_REASON_CHARS = 1000


class MalformedOrderError(ValueError):
    """A channel payload that cannot become a canonical order; carries the reason for quarantine.

    The reason is bounded (MAX_REASON_CHARS) and always valid UTF-8, whatever value it quotes.
    """

    def __init__(self, reason: str, channel_order_id: str | None = None):
        reason = str(reason).encode("utf-8", "backslashreplace").decode("utf-8")
        if len(reason) > MAX_REASON_CHARS:
            reason = f"{reason[:MAX_REASON_CHARS - 40]}... ({len(reason)} characters in all)"
        super().__init__(reason)
        self.reason = reason
        self.channel_order_id = channel_order_id


class OrderStatus(str, enum.Enum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDING = "refunding"
    REFUNDED = "refunded"


def format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`; seconds precision unless the platform gave sub-seconds."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: every platform time must carry its zone before formatting")
    moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    if not moment.microsecond:
        return moment.isoformat(timespec="seconds") + "Z"
    precision = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.isoformat(timespec=precision) + "Z"


def parse_utc(text: str) -> datetime:
    """Parse an ISO 8601 string that carries a zone (or `Z`) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return moment.astimezone(timezone.utc)


def decimal_text(value: Decimal) -> str:
    """Money as a plain decimal string (never exponent notation, never float)."""
    return format(value, "f")


def _utc_text(value: str | None) -> str | None:
    if value is None:
        return None
    return format_utc(parse_utc(value))


def _unicode_text(value: str) -> str:
    """Text that UTF-8 can carry: a lone surrogate (bytes that were not UTF-8, decoded leniently)
    cannot be stored, sent or shown, so it makes the order malformed instead of failing its store."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"not valid Unicode text: a lone surrogate {value[error.start]!r} at character {error.start} "
            "(bytes that were not UTF-8)"
        ) from None
    return value


Money = Annotated[Decimal, PlainSerializer(decimal_text, return_type=str)]
Text = Annotated[str, AfterValidator(_unicode_text)]
UtcTime = Annotated[str | None, Field(default=None)]


def order_key(channel: str, shop_id: str, channel_order_id: str) -> str:
    """The dedup key: one stored order per (channel, shop, platform order id)."""
    return f"{channel}#{shop_id}#{channel_order_id}"


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    line_id: Text
    sku: Text | None
    seller_sku: Text | None
    quantity: int = Field(ge=0)
    unit_price: Money


class ShipTo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    province: Text | None = None
    city: Text | None = None
    district: Text | None = None
    address: Text | None = None
    postal_code: Text | None = None
    name: Text | None = None
    phone: Text | None = None
    encrypted: bool = False
    # The platform's stable handle for this address where it encrypts the data (Taobao OAID,
    # PDD/Douyin/Kuaishou open address id or cipher index): what risk rules fingerprint. Kept off
    # the `oms normalize` contract output, stored with the order.
    address_handle: Text | None = None


class CanonicalOrder(BaseModel):
    """One order of one channel, as the rest of the system sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_key: Text
    channel: str
    shop_id: Text = Field(min_length=1, pattern=r"^[^#]+$")
    channel_order_id: Text = Field(min_length=1, max_length=MAX_ORDER_ID_CHARS)
    status: OrderStatus
    channel_status: Text
    buyer_id: Text | None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total: Money
    lines: list[OrderLine]
    ship_to: ShipTo
    created_at: UtcTime
    paid_at: UtcTime
    updated_at: UtcTime

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}")
        return value

    @field_validator("created_at", "paid_at", "updated_at")
    @classmethod
    def _utc(cls, value: str | None) -> str | None:
        return _utc_text(value)

    @field_validator("order_key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        if value.count("#") < 2:
            raise ValueError("order_key must be channel#shop_id#channel_order_id")
        return value

    @model_validator(mode="after")
    def _key_matches_parts(self) -> "CanonicalOrder":
        expected = order_key(self.channel, self.shop_id, self.channel_order_id)
        if self.order_key != expected:
            raise ValueError(f"order_key {self.order_key!r} does not match {expected!r}")
        return self

    @model_validator(mode="after")
    def _fits_its_store(self) -> CanonicalOrder:
        size = len(self.model_dump_json().encode("utf-8"))
        if size > MAX_ORDER_BYTES:
            place, length = _longest_text(self.stored_dict())
            raise ValueError(
                f"the order takes {size} bytes as stored, more than the {MAX_ORDER_BYTES} an order may take "
                f"(its longest text: {place}, {length} characters; lines: {len(self.lines)})"
            )
        return self

    def contract_dict(self) -> dict:
        """The JSON-ready contract form (money as strings, status as its value): exactly SPEC section 3."""
        return self.model_dump(mode="json", exclude={"ship_to": {"address_handle"}})

    def stored_dict(self) -> dict:
        """The contract form plus what the system keeps beside it (the address handle)."""
        return self.model_dump(mode="json")

    def is_newer_than(self, stored_updated_at: str | None) -> bool:
        """True when this version was updated after the stored one (no updated_at = oldest)."""
        if self.updated_at is None:
            return False
        if stored_updated_at is None:
            return True
        return parse_utc(self.updated_at) > parse_utc(stored_updated_at)


def _longest_text(value: object, place: str = "order") -> tuple[str, int]:
    """Where the longest text of a stored order is (what to name when the order is too large)."""
    if isinstance(value, str):
        return place, len(value)
    if isinstance(value, dict):
        children = [_longest_text(inner, f"{place}.{key}" if place != "order" else key) for key, inner in value.items()]
    elif isinstance(value, list):
        children = [_longest_text(inner, f"{place}[{index}]") for index, inner in enumerate(value)]
    else:
        children = []
    return max(children, key=lambda found: found[1], default=(place, 0))


def version_stamp(order: CanonicalOrder) -> int:
    """Comparable version of an order (epoch ms of updated_at; 0 when the platform gives none).

    ISO strings with and without fractions do not sort as text, so versions compare as numbers.
    """
    return 0 if order.updated_at is None else epoch_ms(order.updated_at)


def epoch_ms(text: str) -> int:
    """An ISO 8601 time with its zone as epoch milliseconds: the unit every version compare uses."""
    return int(parse_utc(text).timestamp() * 1000)


def build_order(
    *,
    channel: str,
    shop_id: str,
    channel_order_id: str,
    **fields: object,
) -> CanonicalOrder:
    """Build a canonical order, deriving its key; pydantic errors become MalformedOrderError."""
    from pydantic import ValidationError

    try:
        return CanonicalOrder(
            order_key=order_key(channel, shop_id, channel_order_id),
            channel=channel,
            shop_id=shop_id,
            channel_order_id=channel_order_id,
            **fields,
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'order'}: {e['msg']}" for e in error.errors()
        )
        raise MalformedOrderError(problems, channel_order_id) from error
