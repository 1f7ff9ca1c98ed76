"""`oms bench drain`: the rate each channel's limits allow, the backlog reconciliation, and the
quota a shop's secret grants its adapter."""

from datetime import UTC, datetime, timedelta

import pytest
from oms.adapters.channels.limiters import JITTER_TOKENS, granted_rate
from omsdev.commands.bench_drain import (
    DEFAULT_SCALES,
    CallPattern,
    allowed_rate,
    reconcile_backlog,
)
from omsdev.demo import SimulatedShop
from omsdev.simulators.orderbook import OrderBook

# channel -> (scale, orders/s by hand from the simulator's enforced limit and the adapter's page size)
EXPECTED = {
    "pdd": (0.025, 3000 / 60 * 0.025 * 100),  # 1.25 list calls/s x 100
    "jd": (0.25, 10 * 0.25 * 50),  # 2.5 list calls/s x 50
    "douyin": (0.0625, 20 * 0.0625 * 100),  # 1.25 list calls/s x 100
    "kuaishou": (1 / 120, 300 / 120 * 50),  # 2.5 list calls/s x 50
    "shopify": (0.25, 2 * 0.25 * 250),  # leak 0.5/s x 250
    "taobao": (3.0, 40 * 3 * 50 / 51),  # 120 calls/s, 1 list call per 50 trades + 1 fullinfo each
    "aliexpress": (25.0, 5 * 25 * 50 / 51),  # 125 calls/s, 1 list call per 50 orders + 1 detail each
    "amazon": (250.0, min(0.0167 * 250 * 100, 0.5 * 250)),  # getOrderItems binds: 125/s
}


@pytest.mark.parametrize("channel", sorted(EXPECTED))
def test_the_allowed_rate_follows_the_channels_limits_and_call_pattern(channel):
    # GIVEN the channel's default scale
    scale, expected = EXPECTED[channel]
    assert DEFAULT_SCALES[channel] == pytest.approx(scale)
    # WHEN the allowed rate is computed THEN it is the hand-computed one, about 120-125 orders/s
    assert allowed_rate(channel, scale) == pytest.approx(expected)
    assert 115 <= allowed_rate(channel, scale) <= 130


def test_the_allowed_rate_scales_with_the_limits():
    assert allowed_rate("pdd", 0.05) == pytest.approx(2 * allowed_rate("pdd", 0.025))


def test_with_a_separate_detail_quota_the_scarcer_quota_binds():
    # GIVEN Amazon's pattern: getOrders pages of 100 and one getOrderItems per order, separate quotas
    pattern = CallPattern(0.0167, 100, "separate", 0.5)
    # THEN the items quota binds at its own rate, and the list quota where it is the scarcer
    assert pattern.allowed(0.0167, 0.5) == pytest.approx(0.5)
    assert pattern.allowed(0.001, 0.5) == pytest.approx(0.1)


def _shop_with(count: int) -> tuple[SimulatedShop, dict]:
    book = OrderBook("pdd")
    moment = datetime(2026, 11, 11, tzinfo=UTC)
    stored = {}
    for index in range(count):
        updated = moment + timedelta(seconds=index)
        book.put(f"o{index}", {}, updated_at=updated, created_at=moment)
        stored[f"pdd#s1#o{index}"] = (updated.strftime("%Y-%m-%dT%H:%M:%SZ"), 0)
    return SimulatedShop("pdd", "s1", simulator=type("Sim", (), {"book": book})(), generator=None), stored


def test_reconciliation_finds_no_loss_and_no_duplicate_when_every_order_is_stored_once():
    shop, stored = _shop_with(5)
    result = reconcile_backlog(shop, stored)
    assert (result["losses"], result["duplicates"], result["stale_versions"]) == (0, 0, 0)
    assert result["stored_exactly_once_at_latest_version"] == 5


def test_reconciliation_reports_a_lost_order_a_stale_version_and_an_order_stored_twice():
    # GIVEN a table missing one order, holding an older version of another and one order under a second key
    shop, stored = _shop_with(5)
    del stored["pdd#s1#o1"]
    stored["pdd#s1#o2"] = ("2026-11-10T00:00:00Z", 0)
    stored["pdd#s1#o3.0"] = stored["pdd#s1#o3"]
    # WHEN reconciled THEN each is counted for what it is
    result = reconcile_backlog(shop, stored)
    assert result["losses"] == 1 and result["lost_examples"] == ["o1"]
    assert result["stale_versions"] == 1
    assert result["duplicates"] == 1
    assert result["stored_exactly_once_at_latest_version"] == 3


def test_a_secret_without_a_quota_leaves_the_adapters_defaults():
    assert granted_rate({}, 10.0, 5) == (10.0, 5)


def test_a_secrets_quota_is_used_in_full_keeping_a_little_of_the_burst_for_jitter():
    assert granted_rate({"calls_per_second": 120, "burst": 40}, 10.0, 5) == (120.0, 40 - JITTER_TOKENS)
    # a rate without a burst allows one second's worth at once; never less than one call
    assert granted_rate({"calls_per_second": 2.5}, 10.0, 5) == (2.5, 1.0)
    assert granted_rate({"calls_per_second": 50}, 10.0, 5) == (50.0, 50 - JITTER_TOKENS)


def test_a_quota_that_is_not_positive_is_refused():
    with pytest.raises(ValueError):
        granted_rate({"calls_per_second": 0}, 10.0, 5)
