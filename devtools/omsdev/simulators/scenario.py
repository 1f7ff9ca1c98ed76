"""Order generation for the simulators: realistic Shopify and Amazon payloads over time.

A `Scenario` says how many orders arrive and how: a steady day's rate, a Double 11 peak (50x),
re-touched orders (same content, newer updated_at: they show up in several windows), late
cancellations, a share of malformed orders, and a `backdate` that shifts every timestamp into the
past (Amazon only serves orders updated more than 2 minutes ago). Ids are unique across runs.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from omsdev.simulators.orderbook import OrderBook

_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)
_SKUS = [("OOLONG-200", "188.00"), ("PUER-357", "200.00"), ("JASMINE-100", "56.00"), ("LONGJING-250", "318.00")]
_PLACES = [
    ("HK", "Kowloon", "Kowloon", "Flat 8B, 23 Nathan Road", "", "Wing Chan"),
    ("US", "Washington", "Seattle", "410 Terry Ave N", "98109", "Dana Smith"),
    ("CN", "广东省", "深圳市", "南山区科技园科苑路15号", "518057", "李娜"),
    ("DE", "Baden-Württemberg", "Stuttgart", "Königstraße 12", "70173", "Jürgen Müller"),
]


def next_id() -> int:
    return next(_ids)


@dataclass(frozen=True)
class Scenario:
    orders_per_day: float = 3000
    peak_factor: float = 1.0  # 50 for Double 11
    duplicate_share: float = 0.05  # re-touched a little later, unchanged
    cancel_share: float = 0.05  # cancelled a little later
    malformed_share: float = 0.0
    late_update_seconds: float = 20.0
    backdate: timedelta = timedelta(0)
    seed: int = 7

    @property
    def orders_per_second(self) -> float:
        return self.orders_per_day * self.peak_factor / 86400


STEADY_DAY = Scenario()
DOUBLE_11 = Scenario(peak_factor=50)


class ShopifyOrders:
    """Builds Shopify Admin REST order objects and writes them into a book."""

    channel = "shopify"

    def __init__(self, book: OrderBook, rng: random.Random):
        self.book, self.rng = book, rng

    def create(self, moment: datetime, *, malformed: bool = False) -> str:
        order_id = 6_000_000_000_000 + next_id()
        lines = []
        for index in range(self.rng.choice((1, 1, 2, 3))):
            sku, price = self.rng.choice(_SKUS)
            lines.append({
                "id": order_id * 10 + index, "variant_id": 44_000_000_000_000 + index, "product_id": 8_000_000_000_000,
                "sku": sku, "title": sku.title(), "quantity": self.rng.randint(1, 3), "price": price,
                "price_set": {"shop_money": {"amount": price, "currency_code": "HKD"}},
            })
        if malformed:
            lines[0]["quantity"] = "two"  # what a broken upstream integration really sends
        total = sum((Decimal(l["price"]) * l["quantity"] for l in lines if isinstance(l["quantity"], int)), Decimal(0))
        country, province, city, address, postal, name = self.rng.choice(_PLACES)
        stamp = moment.isoformat(timespec="seconds")
        payload = {
            "id": order_id, "name": f"#{order_id % 100000}", "order_number": order_id % 100000,
            "created_at": stamp, "processed_at": stamp, "updated_at": stamp,
            "cancelled_at": None, "cancel_reason": None, "closed_at": None,
            "financial_status": "paid", "fulfillment_status": None, "currency": "HKD",
            "total_price": f"{total:.2f}", "customer": {"id": 7_700_000_000_000 + self.rng.randint(1, 5000)},
            "shipping_address": {"name": name, "address1": address, "address2": "", "city": city, "province": province,
                                 "country_code": country, "zip": postal, "phone": "+852 5123 4567"},
            "line_items": lines,
        }
        self.book.put(str(order_id), payload, updated_at=moment, created_at=moment, malformed=malformed)
        return str(order_id)

    def touch(self, order_id: str, moment: datetime) -> None:
        entry = self.book.get(order_id)
        payload = {**entry.payload, "updated_at": moment.isoformat(timespec="seconds")}
        self.book.put(order_id, payload, updated_at=moment, created_at=entry.created_at, open=entry.open, malformed=entry.malformed)

    def cancel(self, order_id: str, moment: datetime) -> None:
        entry = self.book.get(order_id)
        stamp = moment.isoformat(timespec="seconds")
        payload = {**entry.payload, "updated_at": stamp, "cancelled_at": stamp, "cancel_reason": "customer",
                   "financial_status": "voided"}
        self.book.put(order_id, payload, updated_at=moment, created_at=entry.created_at, open=False, malformed=entry.malformed)


class AmazonOrders:
    """Builds SP-API Order + OrderItems records (`{"order", "items"}`) and writes them into a book."""

    channel = "amazon"
    marketplace = "A1PA6795UKMFR9"

    def __init__(self, book: OrderBook, rng: random.Random):
        self.book, self.rng = book, rng

    def create(self, moment: datetime, *, malformed: bool = False) -> str:
        serial = next_id()
        order_id = f"{300 + serial % 600:03d}-{serial % 10**7:07d}-{self.rng.randint(0, 10**7 - 1):07d}"
        items = []
        for index in range(self.rng.choice((1, 1, 2))):
            sku, price = self.rng.choice(_SKUS)
            quantity = self.rng.randint(1, 3)
            items.append({
                "ASIN": f"B0{serial % 10**8:08d}", "SellerSKU": sku, "OrderItemId": f"{serial}{index:02d}",
                "Title": sku.title(), "QuantityOrdered": quantity, "QuantityShipped": 0,
                "ItemPrice": {"CurrencyCode": "EUR", "Amount": f"{Decimal(price) / 10 * quantity:.2f}"},
            })
        if malformed:
            items[0]["ItemPrice"]["Amount"] = "N/A"
        total = sum((Decimal(i["ItemPrice"]["Amount"]) for i in items if i["ItemPrice"]["Amount"] != "N/A"), Decimal(0))
        country, province, city, address, postal, name = self.rng.choice(_PLACES)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        order = {
            "AmazonOrderId": order_id, "PurchaseDate": stamp, "LastUpdateDate": stamp, "OrderStatus": "Unshipped",
            "FulfillmentChannel": "MFN", "SalesChannel": "Amazon.de", "MarketplaceId": self.marketplace,
            "OrderTotal": {"CurrencyCode": "EUR", "Amount": f"{total:.2f}"},
            "NumberOfItemsShipped": 0, "NumberOfItemsUnshipped": len(items),
            "ShippingAddress": {"Name": name, "AddressLine1": address, "City": city, "StateOrRegion": province,
                                "PostalCode": postal, "CountryCode": country, "Phone": "+49 711 555 0142"},
            "BuyerInfo": {"BuyerEmail": f"{self.rng.randint(1, 5000)}@marketplace.amazon.de"},
        }
        self.book.put(order_id, {"order": order, "items": items}, updated_at=moment, created_at=moment, malformed=malformed)
        return order_id

    def touch(self, order_id: str, moment: datetime) -> None:
        entry = self.book.get(order_id)
        order = {**entry.payload["order"], "LastUpdateDate": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.book.put(order_id, {**entry.payload, "order": order}, updated_at=moment, created_at=entry.created_at, malformed=entry.malformed)

    def cancel(self, order_id: str, moment: datetime) -> None:
        entry = self.book.get(order_id)
        order = {**entry.payload["order"], "LastUpdateDate": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "OrderStatus": "Canceled"}
        self.book.put(order_id, {**entry.payload, "order": order}, updated_at=moment, created_at=entry.created_at, open=False, malformed=entry.malformed)


def generator_for(channel: str, book: OrderBook, seed: int = 7):
    rng = random.Random(seed)
    return {"shopify": ShopifyOrders, "amazon": AmazonOrders}[channel](book, rng)


class ScenarioRunner:
    """Feeds generators with orders at the scenario's rate, plus its duplicates and cancellations."""

    def __init__(self, generators: list, scenario: Scenario):
        self.generators = generators
        self.scenario = scenario
        self._rng = random.Random(scenario.seed)
        self._later: list[tuple[float, str, object, str]] = []  # (due, action, generator, order id)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.created = 0

    def _now(self) -> datetime:
        return datetime.now(timezone.utc) - self.scenario.backdate

    def create_one(self, generator) -> str:
        malformed = self._rng.random() < self.scenario.malformed_share
        order_id = generator.create(self._now(), malformed=malformed)
        due = time.time() + self.scenario.late_update_seconds
        if self._rng.random() < self.scenario.cancel_share:
            self._later.append((due, "cancel", generator, order_id))
        elif self._rng.random() < self.scenario.duplicate_share:
            self._later.append((due, "touch", generator, order_id))
        self.created += 1
        return order_id

    def seed_backlog(self, count_per_generator: int, spread: timedelta = timedelta(hours=1)) -> None:
        """Orders that arrived over the last `spread` (before the backdate), written at once."""
        for generator in self.generators:
            for index in range(count_per_generator):
                moment = self._now() - spread + spread * (index + 1) / (count_per_generator + 1)
                generator.create(moment, malformed=self._rng.random() < self.scenario.malformed_share)
                self.created += 1

    def apply_due_updates(self, *, all_now: bool = False) -> int:
        applied = 0
        with self._lock:
            due_now = [item for item in self._later if all_now or item[0] <= time.time()]
            self._later = [item for item in self._later if item not in due_now]
        for _due, action, generator, order_id in due_now:
            getattr(generator, action)(order_id, self._now())
            applied += 1
        return applied

    def start(self, *, total: int | None = None, duration: float | None = None) -> "ScenarioRunner":
        def run() -> None:
            interval = 1 / max(self.scenario.orders_per_second, 1e-9)
            started, made, turn = time.monotonic(), 0, 0
            while not self._stop.is_set():
                if (total is not None and made >= total) or (duration is not None and time.monotonic() - started >= duration):
                    break
                due = started + made * interval
                if time.monotonic() < due:
                    self._stop.wait(min(due - time.monotonic(), 0.2))
                    self.apply_due_updates()
                    continue
                self.create_one(self.generators[turn % len(self.generators)])
                made, turn = made + 1, turn + 1
            while not self._stop.is_set() and self._later:
                self.apply_due_updates()
                self._stop.wait(0.2)

        self._thread = threading.Thread(target=run, name="scenario", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self.wait(5)
