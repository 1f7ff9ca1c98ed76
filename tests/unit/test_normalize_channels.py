"""What every channel normalizer does alike: the registry finds it, and an order without a usable
platform id has no id to key it by and is refused with the field named (never rounded or guessed)."""

import importlib

import pytest
from oms.domain.order import CHANNELS
from oms.normalizers import aliexpress, douyin, jd, normalizer_for, pdd, taobao

from tests.unit.normalize_helpers import DELETE, refused, set_path, synthetic_record


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_registry_finds_each_channel_normalizer(channel):
    # GIVEN a channel of the contract WHEN its normalizer is asked for THEN it is that channel's module
    assert normalizer_for(channel) is importlib.import_module(f"oms.normalizers.{channel}")


@pytest.mark.parametrize(
    ("normalizer", "changes", "reason"),
    [
        pytest.param(aliexpress, {"order.order_id": 8190442233115566.0}, "order.order_id",
                     id="aliexpress: a float order id is malformed, not rounded"),
        pytest.param(douyin, {"order_id": 6.930587412369854e18}, "order_id",
                     id="douyin: an id that went through a float is malformed, not rounded"),
        pytest.param(douyin, {"order_id": DELETE}, "order_id: missing",
                     id="douyin: a missing order id is malformed with that reason"),
        pytest.param(jd, {"orderId": 3.18765432109e11}, "orderId",
                     id="jd: a float order id is malformed because it lost digits"),
        pytest.param(jd, {"orderId": DELETE}, "orderId: missing",
                     id="jd: a missing order id is malformed and has no id"),
        pytest.param(pdd, {"order_sn": None}, "order_sn: missing",
                     id="pdd: an order without an order_sn is malformed"),
        pytest.param(pdd, {"order_sn": 12.5}, "order_sn: 12.5 is not an order id",
                     id="pdd: a float order_sn is not an order id"),
        pytest.param(taobao, {"tid_str": DELETE, "tid": 4.310028839461574e18}, "tid: .* is not an exact id",
                     id="taobao: a float tid is malformed, not rounded"),
    ],
)
def test_an_order_without_a_usable_id_has_none_and_is_refused(normalizer, changes, reason):
    # GIVEN the channel's first synthetic order with its id lost to a float, or gone
    raw = synthetic_record(normalizer, 0)
    for path, value in changes.items():
        set_path(path, value)(raw)
    # WHEN its id is read THEN there is none to key it by
    assert normalizer.order_id_of(raw) is None
    # AND normalizing it is refused with the field named
    refused(normalizer, raw, match=reason)
