"""The canonical order contract: field names, money as strings, UTC times, derived dedup key."""

from decimal import Decimal

import pytest

from oms.domain.order import CanonicalOrder, MalformedOrderError, build_order, format_utc, parse_utc

CONTRACT_FIELDS = {
    "order_key", "channel", "shop_id", "channel_order_id", "status", "channel_status", "buyer_id",
    "currency", "total", "lines", "ship_to", "created_at", "paid_at", "updated_at",
}


def an_order(**overrides) -> CanonicalOrder:
    fields = dict(
        channel="amazon",
        shop_id="eu-main",
        channel_order_id="028-4417392-5539521",
        status="paid",
        channel_status="Unshipped",
        buyer_id="x@marketplace.amazon.de",
        currency="EUR",
        total=Decimal("87.48"),
        lines=[{"line_id": "1", "sku": "B0C", "seller_sku": "TEA", "quantity": 2, "unit_price": Decimal("25.99")}],
        ship_to={"country": "DE", "city": "Stuttgart"},
        created_at="2026-03-14T08:12:45Z",
        paid_at="2026-03-14T08:12:45Z",
        updated_at="2026-03-14T16:43:10+08:00",
    )
    fields.update(overrides)
    return build_order(**fields)


def test_the_contract_form_has_exactly_the_specified_fields_and_string_money():
    # GIVEN an order built from channel data
    contract = an_order().contract_dict()
    # THEN the contract has exactly the SPEC's fields, money as decimal strings, times in UTC with Z
    assert set(contract) == CONTRACT_FIELDS
    assert contract["order_key"] == "amazon#eu-main#028-4417392-5539521"
    assert contract["total"] == "87.48"
    assert contract["lines"][0]["unit_price"] == "25.99"
    assert contract["updated_at"] == "2026-03-14T08:43:10Z"


def test_money_is_never_rendered_in_exponent_notation():
    assert an_order(total=Decimal("1E+2")).contract_dict()["total"] == "100"


def test_a_bad_field_becomes_a_malformed_order_naming_the_field():
    with pytest.raises(MalformedOrderError) as caught:
        an_order(currency="euro")
    assert "currency" in caught.value.reason
    assert caught.value.channel_order_id == "028-4417392-5539521"


def test_negative_quantities_and_unknown_statuses_are_malformed():
    with pytest.raises(MalformedOrderError):
        an_order(lines=[{"line_id": "1", "sku": None, "seller_sku": None, "quantity": -1, "unit_price": "1"}])
    with pytest.raises(MalformedOrderError):
        an_order(status="lost")


def test_times_without_a_zone_are_refused():
    with pytest.raises(MalformedOrderError):
        an_order(created_at="2026-03-14 08:12:45")


def test_newer_versions_compare_by_instant_not_by_text():
    order = an_order(updated_at="2026-03-14T08:43:10.5Z")
    assert order.is_newer_than("2026-03-14T08:43:10Z")
    assert not order.is_newer_than("2026-03-14T16:43:11+08:00")


def test_utc_formatting_keeps_milliseconds_only_when_present():
    assert format_utc(parse_utc("2026-03-14T18:05:12+08:00")) == "2026-03-14T10:05:12Z"
    assert format_utc(parse_utc("2026-03-14T18:05:12.250+08:00")) == "2026-03-14T10:05:12.250Z"
