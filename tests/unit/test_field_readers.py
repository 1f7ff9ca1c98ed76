"""The normalizers' shared field readers: every odd value becomes a MalformedOrderError naming the field."""

from decimal import Decimal

import pytest

from oms.domain.order import MalformedOrderError
from oms.normalizers._fields import CHINA_TIME, US_PACIFIC, epoch_time, fen, id_text, iso_time, local_time, money, whole_number


@pytest.mark.parametrize(("value", "expected"), [("12.50", "12.50"), (" 7 ", "7"), (12, "12"), ("-0.5", "-0.5"),
                                                 (".5", "0.5"), ("3.", "3"), (Decimal("1.10"), "1.10")])
def test_money_reads_plain_decimals_exactly(value, expected):
    assert money(value, "total") == Decimal(expected)


@pytest.mark.parametrize(("value", "reason"), [
    ("1e5", "'1e5' is not a decimal amount"),
    ("12,00", "'12,00' is not a decimal amount"),
    ("", "'' is not a decimal amount"),
    ("0x10", "'0x10' is not a decimal amount"),
    ("NaN", "'NaN' is not a finite amount"),
    ("-Infinity", "'-Infinity' is not a finite amount"),
    (12.5, "12.5 is not a decimal amount"),  # a float where the platform sends strings: broken payload
    (True, "True is not a decimal amount"),
    (["1"], "['1'] is not a decimal amount"),
])
def test_money_rejects_anything_but_a_plain_decimal(value, reason):
    with pytest.raises(MalformedOrderError) as caught:
        money(value, "total")
    assert caught.value.reason == f"total: {reason}"


def test_money_from_json_numbers_keeps_the_digits_the_platform_sent():
    assert money(59.9, "pay_amount", json_number=True) == Decimal("59.9")
    assert money(0.1, "pay_amount", json_number=True) + money(0.2, "x", json_number=True) == Decimal("0.3")
    with pytest.raises(MalformedOrderError, match="not a decimal amount"):
        money(1e21, "pay_amount", json_number=True)  # repr "1e+21": not plain digits


@pytest.mark.parametrize(("value", "expected"), [(12345, "123.45"), ("990", "9.90"), (0, "0.00"), (-5, "-0.05")])
def test_fen_is_an_integer_amount_in_hundredths(value, expected):
    assert fen(value, "totalFee") == Decimal(expected)


@pytest.mark.parametrize("value", [12.5, "12.5", "١٢", "½", None])
def test_fen_and_whole_numbers_accept_only_ascii_integers(value):
    with pytest.raises(MalformedOrderError):
        fen(value, "totalFee")
    with pytest.raises(MalformedOrderError):
        whole_number(value, "num")


def test_ids_stay_exact_text_and_a_float_id_is_refused():
    assert id_text(4310028839461573812, "tid") == "4310028839461573812"
    assert id_text(" 260314-517384962018445 ", "order_sn") == "260314-517384962018445"
    with pytest.raises(MalformedOrderError, match="float loses digits"):
        id_text(4.310028839461574e18, "tid")
    with pytest.raises(MalformedOrderError, match="tid: missing"):
        id_text("  ", "tid")


def test_china_local_times_are_eight_hours_ahead_of_utc():
    assert local_time("2026-03-14 18:05:12", "created", CHINA_TIME) == "2026-03-14T10:05:12Z"
    assert local_time("2026-01-01 03:00:00", "created", CHINA_TIME) == "2025-12-31T19:00:00Z"
    assert local_time(None, "created", CHINA_TIME) is None


def test_us_pacific_times_follow_daylight_saving():
    assert local_time("2026-01-15 10:00:00", "gmt_create", US_PACIFIC) == "2026-01-15T18:00:00Z"  # PST -8
    assert local_time("2026-07-15 10:00:00", "gmt_create", US_PACIFIC) == "2026-07-15T17:00:00Z"  # PDT -7


@pytest.mark.parametrize("value", ["2026-03-14T18:05:12", "14/03/2026 18:05", "2026-02-30 10:00:00", 20260314])
def test_local_times_in_another_shape_are_malformed(value):
    with pytest.raises(MalformedOrderError, match="modified: .* is not a yyyy-MM-dd HH:mm:ss time"):
        local_time(value, "modified", CHINA_TIME)


def test_epoch_seconds_and_milliseconds():
    assert epoch_time(1773460001, "update_time", unit_seconds=1) == "2026-03-14T03:46:41Z"
    assert epoch_time("1773460001230", "updateTime", unit_seconds=0.001) == "2026-03-14T03:46:41.230Z"
    assert epoch_time(0, "pay_time", unit_seconds=1) is None  # the platforms' "not yet"
    with pytest.raises(MalformedOrderError, match="out of range"):
        epoch_time(10**20, "update_time", unit_seconds=1)
    with pytest.raises(MalformedOrderError, match="not an integer"):
        epoch_time("soon", "update_time", unit_seconds=1)


@pytest.mark.parametrize(("value", "reason"), [
    ("yesterday", "is not an ISO 8601 time"),
    ("10000-01-01T00:00:00Z", "is not an ISO 8601 time (or out of range)"),
    ("2026-03-14T18:05:12", "has no time zone"),
])
def test_iso_times_name_what_is_wrong(value, reason):
    with pytest.raises(MalformedOrderError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        iso_time(value, "updated_at")
