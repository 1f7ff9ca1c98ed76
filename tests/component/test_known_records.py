"""Records the channel clients skip as already stored come as `KnownRecord`s (the type is the mark, not a
key in the record) and cost no detail call: Amazon and AliExpress against their simulators over HTTP.
(Taobao's: tests/component/test_simulator_taobao.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from oms.adapters.channels import limiters
from oms.adapters.channels.aliexpress import DETAIL_METHOD, AliexpressClient
from oms.adapters.channels.amazon import AmazonClient
from oms.adapters.channels.http import ChannelHttp
from oms.domain.polling import PollWindow
from oms.ports import KnownRecord
from omsdev.simulators import aliexpress, amazon
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import generator_for

CLIENTS = {"amazon": (amazon, AmazonClient), "aliexpress": (aliexpress, AliexpressClient)}


def now() -> datetime:
    return datetime.now(timezone.utc)


def order_id(record: dict) -> str:
    order = record["order"]
    return str(order.get("AmazonOrderId") or order.get("order_id"))


def detail_calls(channel: str, simulator) -> int:
    if channel == "amazon":
        return sum(1 for entry in simulator.stats.log() if entry.path.endswith("/orderItems"))
    return sum(counts.total() for operation, counts in simulator.stats.by_operation().items()
               if operation == DETAIL_METHOD)


@pytest.mark.parametrize("channel", sorted(CLIENTS))
def test_orders_known_at_their_version_come_marked_by_type_without_a_detail_call(channel):
    limiters.forget_all()
    simulators, client_type = CLIENTS[channel]
    # GIVEN five orders in the window, two of which the `known` question answers as stored
    book = OrderBook(channel)
    generator = generator_for(channel, book, seed=3)
    made = [generator.create(now() - timedelta(minutes=30) + timedelta(minutes=i)) for i in range(5)]
    simulator, credentials = simulators.launch("known", book, rate_multiplier=100)
    asked: list = []

    def known(pairs):
        asked.extend(pairs)
        return {made[0], made[1]}

    try:
        client = client_type("known", credentials, ChannelHttp(requests.Session(), 5))
        # WHEN the window is read
        window = PollWindow(now() - timedelta(hours=1), now() - timedelta(minutes=3))
        records = [r for page in client.fetch_window(window, known=known) for r in page]
    finally:
        simulator.stop()
    # THEN the two come as KnownRecords holding the listed order only, their own fields untouched
    marked = [r for r in records if isinstance(r, KnownRecord)]
    assert {order_id(r) for r in marked} == {made[0], made[1]}
    assert all(set(r) == {"order"} for r in marked)
    # ... every other one is a plain record with its details, and none carries a "known" key
    assert {order_id(r) for r in records if not isinstance(r, KnownRecord)} == set(made[2:])
    assert not any("known" in r for r in records)
    # ... and only the other three cost a detail call, after every order was asked about
    assert detail_calls(channel, simulator) == 3
    assert {order for order, _ in asked} == set(made)
