"""Inventory domain: channel lines become warehouse demand through SKU mappings; stock availability."""

from decimal import Decimal

import pytest
from oms.domain.inventory import (
    SkuComponent,
    SkuMapping,
    StockLevel,
    UnmappedSkus,
    demand_for,
)
from oms.domain.order import OrderLine


def line(line_id: str, quantity: int, *, sku: str | None = None, seller_sku: str | None = None) -> OrderLine:
    return OrderLine(line_id=line_id, sku=sku, seller_sku=seller_sku, quantity=quantity, unit_price=Decimal("9.90"))


def catalogue(*mappings: SkuMapping):
    """A lookup like the adapters': the channel's own mapping first, then the "*" one."""
    table = {(m.channel, m.channel_sku): m for m in mappings}

    def mapping_of(channel: str, channel_sku: str) -> SkuMapping | None:
        return table.get((channel, channel_sku)) or table.get(("*", channel_sku))

    return mapping_of


def one_to_one(channel_sku: str, warehouse_sku: str, channel: str = "*") -> SkuMapping:
    return SkuMapping(channel=channel, channel_sku=channel_sku, components=(SkuComponent(warehouse_sku, 1),))


def test_a_bundle_expands_into_each_component_times_the_line_quantity():
    # GIVEN a stroller bundle made of one frame and two rain covers
    bundle = SkuMapping(
        channel="*",
        channel_sku="STROLLER-SET",
        components=(SkuComponent("WH-FRAME", 1), SkuComponent("WH-COVER", 2)),
    )
    # WHEN an order buys three bundles
    demand = demand_for("tmall", [line("L1", 3, seller_sku="STROLLER-SET")], catalogue(bundle))
    # THEN the warehouse must give three frames and six covers
    assert demand == {"WH-FRAME": 3, "WH-COVER": 6}


def test_lines_that_map_to_the_same_warehouse_sku_are_merged_into_one_demand():
    # GIVEN a single cover sold on its own and inside a bundle
    mapping_of = catalogue(
        one_to_one("COVER", "WH-COVER"),
        SkuMapping("*", "SET", (SkuComponent("WH-FRAME", 1), SkuComponent("WH-COVER", 1))),
    )
    # WHEN one order has two cover lines and a bundle line
    lines = [line("L1", 2, seller_sku="COVER"), line("L2", 1, seller_sku="SET"), line("L3", 4, seller_sku="COVER")]
    demand = demand_for("jd", lines, mapping_of)
    # THEN the covers add up across the three lines
    assert demand == {"WH-COVER": 7, "WH-FRAME": 1}


def test_the_seller_merchant_code_is_preferred_over_the_platform_sku():
    # GIVEN both the merchant code and the platform's own id are mapped, to different warehouse SKUs
    mapping_of = catalogue(one_to_one("MERCHANT-1", "WH-BY-MERCHANT"), one_to_one("9876543", "WH-BY-PLATFORM"))
    # WHEN a line carries both
    demand = demand_for("taobao", [line("L1", 1, sku="9876543", seller_sku="MERCHANT-1")], mapping_of)
    # THEN the merchant code decides, as it is the same on every platform
    assert demand == {"WH-BY-MERCHANT": 1}


def test_the_platform_sku_is_used_when_the_merchant_code_is_unmapped_or_blank():
    # GIVEN only platform ids are mapped
    mapping_of = catalogue(one_to_one("PDD-111", "WH-A"), one_to_one("PDD-222", "WH-B"))
    # WHEN one line's merchant code is unknown and another's is blank
    lines = [line("L1", 1, sku="PDD-111", seller_sku="NOT-MAPPED"), line("L2", 2, sku="PDD-222", seller_sku="  ")]
    demand = demand_for("pdd", lines, mapping_of)
    # THEN both fall back to the platform id
    assert demand == {"WH-A": 1, "WH-B": 2}


def test_a_channel_specific_mapping_wins_over_the_every_channel_one():
    # GIVEN a generic mapping and a Kuaishou-only one for the same code
    mapping_of = catalogue(one_to_one("CUP", "WH-CUP"), one_to_one("CUP", "WH-CUP-LIVE-PACK", channel="kuaishou"))
    # WHEN the same code is ordered on Kuaishou and on JD
    on_kuaishou = demand_for("kuaishou", [line("L1", 1, seller_sku="CUP")], mapping_of)
    on_jd = demand_for("jd", [line("L1", 1, seller_sku="CUP")], mapping_of)
    # THEN each channel gets its own mapping (the lookup is the caller's, demand_for passes the channel)
    assert on_kuaishou == {"WH-CUP-LIVE-PACK": 1}
    assert on_jd == {"WH-CUP": 1}


def test_every_unmapped_sku_is_listed_once_sorted_and_lines_without_any_code_by_line_id():
    # GIVEN one mapped code and several unknown ones, one of them ordered twice, and a line with no code
    mapping_of = catalogue(one_to_one("KNOWN", "WH-KNOWN"))
    lines = [
        line("L1", 1, seller_sku="KNOWN"),
        line("L2", 1, seller_sku="ZEBRA"),
        line("L3", 1, sku="platform-only-42"),
        line("L4", 2, seller_sku="ZEBRA"),
        line("L5", 1),
    ]
    # WHEN the demand is computed
    result = demand_for("douyin", lines, mapping_of)
    # THEN the order is not half-mapped: every missing code is reported for the reviewer in one go
    assert result == UnmappedSkus(skus=("ZEBRA", "line L5", "platform-only-42"))


def test_an_unmapped_line_is_reported_by_its_merchant_code_when_it_has_one():
    # GIVEN a line whose merchant code and platform id are both unknown
    result = demand_for("jd", [line("L1", 1, sku="JD-555", seller_sku="MERCH-9")], catalogue())
    # THEN the merchant code is the one named, being the one a reviewer would map
    assert result == UnmappedSkus(skus=("MERCH-9",))


def test_zero_quantity_lines_are_ignored_even_when_unmapped():
    # GIVEN an order with a real line and a zero-quantity line (a refunded gift) that is not mapped
    mapping_of = catalogue(one_to_one("TEA", "WH-TEA"))
    lines = [line("L1", 2, seller_sku="TEA"), line("L2", 0, seller_sku="FREE-GIFT")]
    # WHEN the demand is computed
    demand = demand_for("shopify", lines, mapping_of)
    # THEN only the real line counts and the gift does not send the order to review
    assert demand == {"WH-TEA": 2}


def test_an_order_of_only_zero_quantity_lines_has_empty_demand():
    demand = demand_for("amazon", [line("L1", 0, seller_sku="TEA")], catalogue(one_to_one("TEA", "WH-TEA")))
    assert demand == {}


def test_mappings_reject_components_that_would_make_a_line_vanish():
    # GIVEN mappings that would reserve nothing for an ordered unit
    # THEN they are refused when built, not discovered after an order shipped without its items
    with pytest.raises(ValueError, match="no components"):
        SkuMapping(channel="*", channel_sku="EMPTY", components=())
    with pytest.raises(ValueError, match="quantity 0"):
        SkuComponent("WH-X", 0)


def test_available_stock_is_on_hand_minus_reserved():
    level = StockLevel(warehouse_id="WH-HZ", sku="WH-FRAME", on_hand=40, reserved=37)
    assert level.available == 3


def test_available_stock_never_goes_below_zero_when_reservations_drifted_above_the_count():
    # GIVEN a recount lowered on-hand below what is already reserved
    level = StockLevel(warehouse_id="WH-HZ", sku="WH-FRAME", on_hand=5, reserved=8)
    # THEN nothing more is available, rather than a negative amount that could be mis-added
    assert level.available == 0
