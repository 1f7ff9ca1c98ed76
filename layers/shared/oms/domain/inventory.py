"""Inventory: from an order's channel lines to warehouse demand, and what a warehouse can still give (SPEC C4).

Channels sell *channel SKUs*; warehouses hold *warehouse SKUs*. A `SkuMapping` turns one channel SKU into
one or more warehouse SKUs with a count each, so a bundle ("stroller + rain cover") becomes several
warehouse units. `demand_for` applies the mappings to every line of an order and merges the result into one
`Demand` (warehouse SKU -> units), the input of allocation and reservation.

An order with any unmapped line cannot be reserved correctly, so `demand_for` returns `UnmappedSkus`
(a value, not an exception) listing every unmapped code at once: the order goes to review with that reason
and a reviewer fixes all mappings in one pass.

Pure domain: stdlib only, no I/O. Where the mappings and stock levels live is the adapters' business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

WILDCARD_CHANNEL = "*"

Demand = dict[str, int]
"""Warehouse SKU -> units wanted by one order: lines merged, bundles expanded, zero-quantity lines left out."""


@dataclass(frozen=True)
class SkuComponent:
    """One warehouse SKU inside a channel SKU, and how many of it each channel unit takes."""

    sku: str
    quantity: int

    def __post_init__(self) -> None:
        if not self.sku:
            raise ValueError("a SKU component needs a warehouse SKU")
        if self.quantity < 1:
            raise ValueError(f"component {self.sku!r} has quantity {self.quantity}: each channel unit takes >= 1")


@dataclass(frozen=True)
class SkuMapping:
    """What one channel SKU is made of in the warehouse; channel `"*"` applies to every channel."""

    channel: str
    channel_sku: str
    components: tuple[SkuComponent, ...]

    def __post_init__(self) -> None:
        # A mapping with no components would make the line vanish from the demand: an order
        # would be "allocated" without reserving anything for that line.
        if not self.components:
            raise ValueError(f"mapping of {self.channel}/{self.channel_sku} has no components")


@dataclass(frozen=True)
class UnmappedSkus:
    """The channel SKUs of an order that have no mapping (sorted, unique): the order's review reason.

    A line with neither `sku` nor `seller_sku` cannot be mapped at all and appears as `"line <line_id>"`.
    """

    skus: tuple[str, ...]


@dataclass(frozen=True)
class StockLevel:
    """Stock of one warehouse SKU in one warehouse."""

    warehouse_id: str
    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        """Units still free to reserve; never below 0 even if reservations drifted above the count."""
        return max(self.on_hand - self.reserved, 0)


def _code(value: str | None) -> str | None:
    """A channel SKU as given, or None when missing or blank (platforms send "" for 'no merchant code')."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def demand_for(
    channel: str,
    lines: Iterable,
    mapping_of: Callable[[str, str], SkuMapping | None],
) -> Demand | UnmappedSkus:
    """The warehouse demand of an order's lines, or every channel SKU that has no mapping.

    Each line is looked up by its `seller_sku` first (the seller's merchant code, the same on every
    platform) and then by its `sku` (the platform's own id) when the merchant code is empty or unmapped.
    `mapping_of(channel, channel_sku)` is the caller's lookup, which already falls back to channel `"*"`.
    An unmapped line is reported by its `seller_sku` when it has one (the code a reviewer would map),
    else by its `sku`. Lines with quantity 0 are ignored entirely, so an order of only such lines gives an
    empty demand.
    """
    demand: Demand = {}
    unmapped: set[str] = set()
    for line in lines:
        if line.quantity == 0:
            continue
        seller_sku, platform_sku = _code(line.seller_sku), _code(line.sku)
        if seller_sku is None and platform_sku is None:
            unmapped.add(f"line {line.line_id}")
            continue
        mapping = None
        for code in (seller_sku, platform_sku):
            if code is not None:
                mapping = mapping_of(channel, code)
                if mapping is not None:
                    break
        if mapping is None:
            unmapped.add(seller_sku or platform_sku)
            continue
        for component in mapping.components:
            demand[component.sku] = demand.get(component.sku, 0) + component.quantity * line.quantity
    if unmapped:
        return UnmappedSkus(skus=tuple(sorted(unmapped)))
    return demand
