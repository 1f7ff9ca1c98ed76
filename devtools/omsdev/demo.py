"""Channel shops for the local cloud: simulators, their registration, ground truth and a tally.

Used by `oms local up`, `oms bench ingest` and the integration tests, so all three exercise the
same path: simulator HTTP -> poller -> Orders table.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from oms.adapters.orders_table import OrdersTable
from oms.settings import get_settings

from omsdev.shops import register_shop
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.orderbook import OrderBook
from omsdev.simulators.scenario import generator_for


@dataclass
class SimulatedShop:
    channel: str
    shop_id: str
    simulator: object
    generator: object

    @property
    def book(self) -> OrderBook:
        return self.simulator.book


def simulated_channels() -> list[str]:
    """Channels with a simulator, an adapter and a normalizer, in the contract's order."""
    from oms.domain.order import CHANNELS
    from oms.normalizers import SUPPORTED

    return [c for c in CHANNELS if c in SUPPORTED and importlib.util.find_spec(f"omsdev.simulators.{c}")
            and importlib.util.find_spec(f"oms.adapters.channels.{c}")]


def start_shop(
    channel: str, shop_id: str, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0, seed: int = 1,
    **generator_options,
) -> SimulatedShop:
    """Start the channel's simulator for one shop, register the shop, and return it with a generator.

    Every channel's simulator module offers `launch(shop_id, book, faults=, rate_multiplier=)` ->
    (started simulator, credentials secret).
    """
    book = OrderBook(channel)
    launch = importlib.import_module(f"omsdev.simulators.{channel}").launch
    simulator, credentials = launch(shop_id, book, faults=faults, rate_multiplier=rate_multiplier)
    register_shop(channel, shop_id, credentials)
    return SimulatedShop(channel, shop_id, simulator, generator_for(channel, book, seed, **generator_options))


def start_shopify_shop(shop_id: str, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0, seed: int = 1) -> SimulatedShop:
    return start_shop("shopify", shop_id, faults=faults, rate_multiplier=rate_multiplier, seed=seed)


def start_amazon_shop(shop_id: str, *, faults: FaultPlan | None = None, rate_multiplier: float = 1.0, seed: int = 2) -> SimulatedShop:
    return start_shop("amazon", shop_id, faults=faults, rate_multiplier=rate_multiplier, seed=seed)


@dataclass
class IngestTally:
    """Adds up what the pollers report, per channel (fed by the runtime's listener hook)."""

    counts: dict = field(default_factory=lambda: defaultdict(Counter))
    failed_windows: Counter = field(default_factory=Counter)
    states: dict = field(default_factory=lambda: defaultdict(Counter))  # channel -> polled, partial, failed ...
    reasons: dict = field(default_factory=lambda: defaultdict(Counter))  # channel -> why polls failed or stopped short
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, function_id: str, event: dict, outcome) -> None:
        if not isinstance(outcome, dict) or "shops" not in outcome:
            return
        with self._lock:
            for shop in outcome["shops"]:
                self.states[shop["channel"]][shop["state"]] += 1
                if shop.get("reason"):
                    self.reasons[shop["channel"]][shop["reason"][:120]] += 1
                if shop["state"] == "failed":
                    self.failed_windows[shop["channel"]] += 1
                if shop.get("counts"):
                    self.counts[shop["channel"]].update(
                        {k: v for k, v in shop["counts"].items() if k not in ("pages",)}
                    )

    def snapshot(self) -> dict:
        with self._lock:
            return {channel: Counter(counter) for channel, counter in self.counts.items()}


@dataclass
class Reconciliation:
    expected: int = 0
    stored_exactly_once: int = 0
    stale_or_missing: list = field(default_factory=list)
    missing: int = 0
    stored_items: int = 0  # items in the Orders table under this channel's shops
    quarantined_expected: int = 0


def reconcile(shops: list[SimulatedShop]) -> dict[str, Reconciliation]:
    """Compare each simulator's latest versions with the Orders table (one GetItem per order)."""
    from oms.domain.order import parse_utc

    settings = get_settings()
    table = OrdersTable(settings.orders_table, settings.raw_payload_bucket)
    results: dict[str, Reconciliation] = defaultdict(Reconciliation)
    for shop in shops:
        result = results[shop.channel]
        for entry in shop.book.entries():
            if entry.malformed:
                result.quarantined_expected += 1
                continue
            result.expected += 1
            stored = table.get(f"{shop.channel}#{shop.shop_id}#{entry.order_id}")
            if stored and stored.get("updated_at") and parse_utc(stored["updated_at"]) == entry.updated_at.replace(microsecond=0):
                result.stored_exactly_once += 1
            else:
                result.stale_or_missing.append(entry.order_id)
                result.missing += stored is None
        result.stored_items += _count_items(settings.orders_table, f"{shop.channel}#{shop.shop_id}#")
    return dict(results)


def _count_items(table_name: str, key_prefix: str) -> int:
    """How many items the table holds under a key prefix (a scan: tooling over a small local table)."""
    from oms.adapters import aws

    total, kwargs = 0, {
        "TableName": table_name,
        "Select": "COUNT",
        "FilterExpression": "begins_with(order_key, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": key_prefix}},
    }
    while True:
        page = aws.client("dynamodb").scan(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def poller_function_id(channel: str) -> str:
    """The template's poller for a channel: `ShopifyPollerFunction`, `JdPollerFunction`, ..."""
    return f"{channel.capitalize()}PollerFunction"
