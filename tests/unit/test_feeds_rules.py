"""The feed's pure rules: error-rate arithmetic, the warehouses' business day, snapshot keys."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from oms.services.feeds import allocated_key, business_day, delivery_key, error_rate


@pytest.mark.parametrize(("errors", "shipments", "rate"), [
    (3, 200, Decimal("0.015")),
    (0, 500, Decimal("0")),
    (7, 7, Decimal("1")),
    (1, 3, Decimal("0.333333")),  # six places, half-even
    (2, 3, Decimal("0.666667")),
])
def test_the_error_rate_is_errors_over_shipments_to_six_places(errors, shipments, rate):
    assert error_rate(errors, shipments) == rate
    assert isinstance(error_rate(errors, shipments), Decimal)


def test_a_warehouse_without_shipments_has_an_error_rate_of_zero():
    assert error_rate(0, 0) == 0


def test_negative_counts_are_refused():
    with pytest.raises(ValueError):
        error_rate(-1, 10)


@pytest.mark.parametrize(("moment", "day"), [
    (datetime(2026, 11, 10, 15, 59, 59, tzinfo=UTC), date(2026, 11, 10)),  # 23:59:59 in Hangzhou
    (datetime(2026, 11, 10, 16, 0, tzinfo=UTC), date(2026, 11, 11)),  # midnight in Hangzhou: Double 11
    (datetime(2026, 11, 11, 1, 0, tzinfo=timezone(timedelta(hours=-8))), date(2026, 11, 11)),
])
def test_the_business_day_is_the_china_calendar_day(moment, day):
    assert business_day(moment) == day


def test_the_business_day_needs_an_aware_time():
    with pytest.raises(ValueError):
        business_day(datetime(2026, 11, 11, 12, 0))


def test_snapshot_keys():
    assert delivery_key("WH-HZ", "CN/浙江") == "WH-HZ#CN/浙江"
    assert allocated_key(date(2026, 11, 11), "WH-HZ") == "2026-11-11#WH-HZ"
