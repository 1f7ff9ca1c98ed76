"""Adapters against their simulators over real HTTP (no AWS): each simulator writes the quota it
enforces into the shop's secret and the adapter runs at it, and the clients that promise
`pages_in_update_order` yield pages whose orders never go back in update time."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
import requests
from oms.adapters.channels import limiters
from oms.adapters.channels.http import ChannelHttp
from oms.adapters.channels.registry import _CLIENTS
from oms.domain.order import epoch_ms
from oms.domain.polling import PollWindow
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import generator_for

CONSOLE_QUOTA_CHANNELS = ("taobao", "jd", "pdd", "douyin", "kuaishou", "aliexpress", "shopify")


def client_for(channel: str, credentials: dict):
    module_name, class_name = _CLIENTS[channel]
    client_class = getattr(importlib.import_module(module_name), class_name)
    return client_class(f"{channel}-shop", credentials, ChannelHttp(requests.Session(), timeout_seconds=5))


def launched(channel: str, book: OrderBook, rate_multiplier: float = 1.0):
    launch = importlib.import_module(f"omsdev.simulators.{channel}").launch
    return launch(f"{channel}-shop", book, rate_multiplier=rate_multiplier)


@pytest.mark.parametrize("channel", CONSOLE_QUOTA_CHANNELS)
def test_the_secret_carries_the_quota_the_platform_enforces_and_the_adapter_runs_at_it(channel):
    # GIVEN a simulator at half its platform's limits
    limiters.forget_all()
    simulator, credentials = launched(channel, OrderBook(channel), rate_multiplier=0.5)
    try:
        # THEN the secret holds exactly the enforced rate and burst
        enforced = simulator.bucket if channel == "shopify" else simulator.limit
        assert credentials["calls_per_second"] == pytest.approx(enforced.rate)
        assert credentials["burst"] == pytest.approx(enforced.burst)
        # AND the adapter's bucket runs at that rate (keeping a little of the burst for jitter)
        client = client_for(channel, credentials)
        bucket = getattr(client, "_bucket", None) or client._list_bucket
        assert bucket.rate == pytest.approx(enforced.rate)
    finally:
        simulator.stop()


def _update_times(channel: str, pages: list[list[dict]]) -> list[int]:
    normalizer = importlib.import_module(f"oms.normalizers.{channel}")
    return [epoch_ms(normalizer.normalize(raw, "s").updated_at) for page in pages for raw in page]


@pytest.mark.parametrize("channel", ["taobao", "jd", "douyin", "kuaishou", "shopify"])
def test_clients_that_promise_it_yield_orders_oldest_first_across_and_within_pages(channel):
    # GIVEN 230 orders over the last two hours (several pages, read backwards where the client does)
    limiters.forget_all()
    book = OrderBook(channel)
    simulator, credentials = launched(channel, book, rate_multiplier=20)
    generator = generator_for(channel, book, seed=5)
    end = datetime.now(UTC) - timedelta(minutes=5)
    for index in range(230):
        generator.create(end - timedelta(hours=2) + timedelta(minutes=index * 0.5))
    try:
        client = client_for(channel, credentials)
        assert client.pages_in_update_order is True
        # WHEN one window covering them is read
        pages = list(client.fetch_window(PollWindow(end - timedelta(hours=3), end)))
        # THEN every order comes once, never earlier in update time than one before it
        times = _update_times(channel, pages)
        assert len(times) == 230
        assert times == sorted(times)
    finally:
        simulator.stop()
