"""Order generation for the simulators: realistic Shopify and Amazon payloads arriving over time.

Payloads follow the platforms' shapes (CHANNELS.md sections 6 and 8, the `*_synthetic.json` files):
- Shopify REST order: int64 `id`, `name` "#1001", `line_items` {id, variant_id, sku, price, quantity},
  `shipping_address.country_code`, `customer.id`, `financial_status`, `fulfillment_status`,
  `cancelled_at`, times ISO 8601 with the shop's offset (+08:00, Hong Kong);
- Amazon getOrders `Order` (AmazonOrderId 3-7-7, PurchaseDate, LastUpdateDate, OrderStatus,
  OrderTotal, MarketplaceId, ShippingAddress, BuyerInfo.BuyerEmail) with its getOrderItems
  `OrderItem`s (ItemPrice = unit price x QuantityOrdered). A cancelled order loses its address,
  buyer info, total and prices, as on Amazon. The book holds `{"order": Order, "items": [OrderItem]}`.
- `updated_at` only moves forward (by at least a second) and has whole seconds, like the platforms.

A `Scenario` says how orders arrive: a steady day's rate, a Double 11 peak (50x), re-touched orders
(same content, newer updated_at: they show up in several windows), late cancellations, a share of
malformed orders, a `backdate` that shifts every timestamp into the past (Amazon only serves orders
updated at least 2 minutes ago), a seed (same seed, same orders apart from ids and times) and a
`speed` that compresses scenario time. Ids are unique across runs (wall-clock microseconds).

Normal buyers look like nobody the risk rules (SPEC C6) should hold: each ships to a home of its own
(`_home`: a street number and flat that follow from the buyer's number) and orders a few times a day at
most. A scenario's `fraud_ring` (`FraudRing`) adds the two patterns the rules must catch: new accounts
shipping to one flat, written in several ways, and a buyer who orders at volume and returns most of it.
"""

from __future__ import annotations

import importlib
import itertools
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from omsdev.simulators.orderbook import BookEntry, OrderBook

SHOP_TIMEZONE = timezone(timedelta(hours=8))  # the simulated Shopify store keeps Hong Kong time

# sku, title, variant title, price (HKD), variant id, product id, ASIN
_CATALOGUE = [
    ("OOLONG-200", "Tieguanyin Oolong", "200 g", "188.00", 44001122334455, 8001122334455, "B0CX1Y2Z3A"),
    ("PUER-357", "Menghai Pu-erh Cake", "357 g", "200.00", 44001122334466, 8001122334466, "B0CX1Y9K8L"),
    ("JASMINE-100", "Jasmine Silver Needle", "100 g", "56.00", 44001122334477, 8001122334477, "B0CX2A7Q4M"),
    ("LONGJING-250", "West Lake Longjing", "250 g", "318.00", 44001122334488, 8001122334488, "B0CX3D5R6N"),
]
# country code, country, province, city, address1, address2, zip, first name, last name, phone;
# {number} and {unit} in the address lines are the buyer's own (`_home`)
_PLACES = [
    ("HK", "Hong Kong", "Kowloon", "Kowloon", "Flat {unit}, {number} Nathan Road", "Tsim Sha Tsui", "", "Wing", "Chan", "+852 5123 4567"),
    ("US", "United States", "Washington", "Seattle", "{number} Terry Ave N", "Apt {unit}", "98109", "Dana", "Smith", "+1 206 555 0100"),
    ("CN", "China", "广东省", "深圳市", "南山区科技园科苑路{number}号", "{unit}室", "518057", "娜", "李", "+86 138 0013 8000"),
    ("DE", "Germany", "Baden-Württemberg", "Stuttgart", "Königstraße {number}", "Wohnung {unit}", "70173", "Jürgen", "Müller", "+49 711 555 0142"),
    ("JP", "Japan", "東京都", "港区", "六本木6丁目{number}-1", "六本木ヒルズ {unit}号室", "106-6112", "芳", "王", "03-5555-0199"),
]
_STREET_NUMBERS, _FLOORS = 400, 300  # `_home` is one-to-one for buyer numbers below 400 x 300
_SHOPIFY_CUSTOMERS = 5000  # customer numbers 1..5000; Amazon buyers are numbered above them
_AMAZON_BUYERS = (10_000, 119_999)
# The fraud ring's flat (Shenzhen, Nanshan, 科苑路15号, building 3, room 501) as its accounts write it:
# province, city, address line (the district in it: Shopify's form has no district field), postal code.
# Full-width digits, with and without 省/市, 3栋 / 3号楼 / 3幢, Chinese numerals: one address fingerprint.
_RING_FLAT = [
    ("广东省", "深圳市", "南山区科苑路15号3栋501室", "518057"),
    ("广东", "深圳", "南山区科苑路１５号３号楼５０１", ""),
    ("广东省", "深圳市", "广东省深圳市南山区科苑路15号3幢501房", "518057"),
    ("广东", "深圳市", "南山区科苑路十五号三号楼五〇一室", ""),
]
_RING_NAMES = ("王磊", "李静", "张伟", "刘洋", "陈晨", "杨帆", "赵敏", "黄涛")
# marketplace id -> sales channel, currency, HKD -> currency factor, decimal places
AMAZON_MARKETPLACES = {
    "A1PA6795UKMFR9": ("Amazon.de", "EUR", Decimal("0.1"), 2),
    "A1VC38T7YXB528": ("Amazon.co.jp", "JPY", Decimal("20"), 0),
    "ATVPDKIKX0DER": ("Amazon.com", "USD", Decimal("0.125"), 2),
}
_COUNTRY_OF = {"A1PA6795UKMFR9": "DE", "A1VC38T7YXB528": "JP", "ATVPDKIKX0DER": "US"}


class _Ids:
    """Unique across runs: wall-clock microseconds, bumped when two ids fall in the same microsecond."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


next_id = _Ids()  # 16 digits, below 2**53 until the 23rd century


def _home(place: tuple, buyer: int) -> tuple[str, str]:
    """Address lines 1 and 2 of a buyer's own flat in one of `_PLACES`: its street number and flat follow
    from the buyer's number, so two buyers never share an address (a shared one is what risk looks for)."""
    floor, street_number = divmod(buyer % (_STREET_NUMBERS * _FLOORS), _STREET_NUMBERS)
    parts = {"number": street_number + 1, "unit": f"{floor + 1}{'ABCD'[buyer % 4]}"}
    return place[4].format(**parts), place[5].format(**parts)


def _mobile(account: int) -> str:
    """A mainland mobile number (1[3-9] and 9 digits) that follows from an account number."""
    return f"1{3 + account % 7}{account // 7 % 10**9:09d}"


@dataclass(frozen=True)
class Persona:
    """A buyer the scenario chooses instead of the generator: a fraud ring's account, the serial returner.

    A mainland buyer: `account` becomes the channel's buyer id (same account, same id), the receiver is
    in plain text. `line` is the address line as the buyer typed it, which may repeat the district or the
    province (Shopify's form has no district field, so the ring's lines carry it); `district` fills a
    channel's district field where it has one.
    """

    account: int
    name: str
    phone: str  # 11 digits
    province: str
    city: str
    district: str
    line: str
    postal_code: str = ""


def ring_accounts(count: int) -> list[Persona]:
    """`count` new accounts (fresh numbers) shipping to one flat, each writing it one of `_RING_FLAT`'s ways."""
    accounts = []
    for index in range(count):
        province, city, line, postal_code = _RING_FLAT[index % len(_RING_FLAT)]
        account = next_id()
        accounts.append(Persona(account, _RING_NAMES[index % len(_RING_NAMES)], _mobile(account), province, city,
                                "南山区", line, postal_code))
    return accounts


def serial_returner() -> Persona:
    """The buyer who orders at volume and sends most of it back (a fresh account number per run)."""
    account = next_id()
    return Persona(account, "周凯", _mobile(account), "湖北省", "武汉市", "洪山区",
                   "珞喻路1037号华中科技大学西十二舍302", "430074")


def _whole_seconds(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"order times must be timezone-aware, got {moment!r}")
    return moment.astimezone(timezone.utc).replace(microsecond=0)


class OrderGenerator:
    """Writes one channel's orders into a book: create, re-touch (same content), cancel.

    A channel's generator implements `build`, `touch` and `cancel`; it lives in
    `omsdev.simulators.<channel>` as `ORDER_GENERATOR` (Shopify and Amazon, the first two, live here).
    A channel that can play a part in a `FraudRing` also implements `for_buyer` (and `refund` for the
    serial returner).
    """

    channel = ""
    malformations: tuple[str, ...] = ()

    def __init__(self, book: OrderBook, rng: random.Random):
        if book.channel is None:
            book.channel = self.channel
        self.book, self.rng = book, rng

    def _later(self, entry: BookEntry, moment: datetime) -> datetime:
        # A platform's updated_at never goes back, and a change always moves it.
        return max(_whole_seconds(moment), entry.updated_at + timedelta(seconds=1))

    def _rewrite(self, order_id: str, moment: datetime, change, *, cancel: bool = False) -> datetime:
        entry = self.book.get(order_id)
        if entry is None:
            raise KeyError(f"no order {order_id} in this book")
        moment = self._later(entry, moment)
        payload = change(entry, moment)
        self.book.put(order_id, payload, updated_at=moment, created_at=entry.created_at,
                      open=entry.open and not cancel, malformed=entry.malformed)
        return moment

    def create(self, moment: datetime, *, malformed: bool | str = False, buyer: Persona | None = None) -> str:
        """Write a new order; `malformed` True (the first of `malformations`) or one of them by name;
        `buyer` a chosen buyer and receiver instead of the generator's own."""
        moment = _whole_seconds(moment)
        kind = self.malformations[0] if malformed is True else (malformed or None)
        if kind is not None and kind not in self.malformations:
            raise ValueError(f"unknown malformation {kind!r}; known: {self.malformations}")
        order_id, payload = self.build(moment, malformed=kind)
        if buyer is not None:
            payload = self.for_buyer(payload, buyer)
        self.book.put(order_id, payload, updated_at=moment, created_at=moment, malformed=kind is not None)
        return order_id

    def build(self, moment: datetime, *, malformed: str | None = None) -> tuple[str, dict]:
        raise NotImplementedError

    def for_buyer(self, payload: dict, buyer: Persona) -> dict:
        """A built payload with `buyer` as its buyer and receiver."""
        raise NotImplementedError(f"{self.channel} orders cannot carry a chosen buyer")

    def refund(self, order_id: str, moment: datetime) -> datetime:
        """The buyer sends the order back and is refunded: a newer version with the platform's refund status."""
        raise NotImplementedError(f"{self.channel} orders have no refund here")


class ShopifyOrders(OrderGenerator):
    """Shopify Admin REST order objects."""

    channel = "shopify"
    currency = "HKD"
    malformations = ("quantity_text", "quantity_missing", "price_text")

    def __init__(self, book: OrderBook, rng: random.Random):
        super().__init__(book, rng)
        self._numbers = itertools.count(1001)

    @staticmethod
    def _stamp(moment: datetime) -> str:
        return moment.astimezone(SHOP_TIMEZONE).isoformat(timespec="seconds")

    def _money(self, amount: str) -> dict:
        money = {"amount": amount, "currency_code": self.currency}
        return {"shop_money": money, "presentment_money": dict(money)}

    def build(self, moment: datetime, *, malformed: str | None = None) -> tuple[str, dict]:
        order_id, number = next_id(), next(self._numbers)
        lines = []
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            sku, title, variant, price, variant_id, product_id, _asin = self.rng.choice(_CATALOGUE)
            quantity, line_id = self.rng.randint(1, 3), next_id()
            lines.append({
                "id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
                "variant_id": variant_id, "product_id": product_id, "sku": sku, "title": title,
                "variant_title": variant, "name": f"{title} - {variant}", "quantity": quantity,
                "current_quantity": quantity, "fulfillable_quantity": quantity, "fulfillment_status": None,
                "price": price, "price_set": self._money(price), "total_discount": "0.00",
            })
        subtotal = sum((Decimal(line["price"]) * line["quantity"] for line in lines), Decimal(0))
        shipping = Decimal("50.00")
        total = f"{subtotal + shipping:.2f}"
        customer = self.rng.randint(1, _SHOPIFY_CUSTOMERS)
        place = _PLACES[customer % len(_PLACES)]  # a customer ships to their own home
        code, country, province, city, _line1, _line2, postal, first, last, phone = place
        address1, address2 = _home(place, customer)
        address = {
            "first_name": first, "last_name": last, "name": f"{first} {last}", "address1": address1,
            "address2": address2, "city": city, "province": province, "province_code": None, "country": country,
            "country_code": code, "zip": postal, "phone": phone, "company": None, "latitude": None, "longitude": None,
        }
        customer_id = 7_700_000_000_000 + customer
        email = f"buyer{customer_id}@example.com"
        stamp = self._stamp(moment)
        if malformed == "quantity_text":  # what broken upstream integrations really send
            lines[0]["quantity"] = "two"
        elif malformed == "quantity_missing":
            del lines[0]["quantity"]
        elif malformed == "price_text":
            lines[0]["price"] = "N/A"
        payload = {
            "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "name": f"#{number}", "order_number": number, "number": number - 1000,
            "created_at": stamp, "processed_at": stamp, "updated_at": stamp,
            "cancelled_at": None, "cancel_reason": None, "closed_at": None, "confirmed": True, "test": False,
            "financial_status": "paid", "fulfillment_status": None,
            "currency": self.currency, "presentment_currency": self.currency,
            "subtotal_price": f"{subtotal:.2f}", "total_discounts": "0.00", "total_tax": "0.00",
            "taxes_included": False, "total_price": total, "total_price_set": self._money(total),
            "total_shipping_price_set": self._money(f"{shipping:.2f}"), "current_total_price": total,
            "total_outstanding": "0.00", "payment_gateway_names": ["shopify_payments"],
            "email": email, "contact_email": email, "phone": None,
            "customer": {"id": customer_id, "email": email, "first_name": first, "last_name": last,
                         "currency": self.currency, "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}"},
            "shipping_address": address, "billing_address": dict(address),
            "shipping_lines": [{"id": next_id(), "title": "SF Express", "code": "SF", "price": f"{shipping:.2f}",
                                "price_set": self._money(f"{shipping:.2f}"), "source": "shopify"}],
            "line_items": lines,
        }
        return str(order_id), payload

    def for_buyer(self, payload: dict, buyer: Persona) -> dict:
        """A Chinese buyer's account and address (a cross-border order from the Hong Kong store)."""
        family, given = buyer.name[:1], buyer.name[1:]
        email = f"buyer{buyer.account}@example.com"
        address = {**payload["shipping_address"], "first_name": given, "last_name": family, "name": buyer.name,
                   "address1": buyer.line, "address2": "", "city": buyer.city, "province": buyer.province,
                   "country": "China", "country_code": "CN", "zip": buyer.postal_code, "phone": f"+86 {buyer.phone}"}
        customer = {**payload["customer"], "id": buyer.account, "email": email, "first_name": given,
                    "last_name": family, "admin_graphql_api_id": f"gid://shopify/Customer/{buyer.account}"}
        return {**payload, "email": email, "contact_email": email, "customer": customer,
                "shipping_address": address, "billing_address": dict(address)}

    def touch(self, order_id: str, moment: datetime) -> datetime:
        """A new version with only `updated_at` changed (e.g. a note or tag edited)."""
        return self._rewrite(order_id, moment, lambda entry, at: {**entry.payload, "updated_at": self._stamp(at)})

    def cancel(self, order_id: str, moment: datetime) -> datetime:
        def cancelled(entry: BookEntry, at: datetime) -> dict:
            stamp = self._stamp(at)
            return {**entry.payload, "updated_at": stamp, "cancelled_at": stamp, "cancel_reason": "customer",
                    "financial_status": "voided"}

        return self._rewrite(order_id, moment, cancelled, cancel=True)


class AmazonOrders(OrderGenerator):
    """SP-API Orders v0 records: `{"order": Order, "items": [OrderItem, ...]}` for one marketplace."""

    channel = "amazon"
    malformations = ("price_text", "quantity_missing")

    def __init__(self, book: OrderBook, rng: random.Random, marketplace: str = "A1PA6795UKMFR9"):
        super().__init__(book, rng)
        if marketplace not in AMAZON_MARKETPLACES:
            raise ValueError(f"unknown marketplace {marketplace}; known: {sorted(AMAZON_MARKETPLACES)}")
        self.marketplace = marketplace
        self.sales_channel, self.currency, self._factor, self._decimals = AMAZON_MARKETPLACES[marketplace]

    @staticmethod
    def _stamp(moment: datetime) -> str:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _money(self, amount: Decimal) -> dict:
        return {"CurrencyCode": self.currency, "Amount": f"{amount:.{self._decimals}f}"}

    def _price(self, hkd: str) -> Decimal:
        return (Decimal(hkd) * self._factor).quantize(Decimal(1).scaleb(-self._decimals))

    def build(self, moment: datetime, *, malformed: str | None = None) -> tuple[str, dict]:
        serial = next_id() % 10**14
        order_id = f"{self.rng.choice(('028', '302', '303', '304', '305', '306'))}-{serial // 10**7:07d}-{serial % 10**7:07d}"
        items, total, count = [], Decimal(0), 0
        for index in range(self.rng.choice((1, 1, 2))):
            sku, title, variant, hkd, _variant_id, _product_id, asin = self.rng.choice(_CATALOGUE)
            quantity = self.rng.randint(1, 3)
            unit = self._price(hkd)
            shipping = self._price("45") if index == 0 else Decimal(0)
            items.append({
                "ASIN": asin, "SellerSKU": sku, "OrderItemId": f"{next_id() % 10**14:014d}",
                "Title": f"{title} {variant}", "QuantityOrdered": quantity, "QuantityShipped": 0,
                "ItemPrice": self._money(unit * quantity), "ShippingPrice": self._money(shipping),
                "PromotionDiscount": self._money(Decimal(0)), "IsGift": "false", "ConditionId": "New",
            })
            total, count = total + unit * quantity + shipping, count + quantity
        if malformed == "price_text":
            items[0]["ItemPrice"]["Amount"] = "N/A"
        elif malformed == "quantity_missing":
            del items[0]["QuantityOrdered"]
        country = _COUNTRY_OF[self.marketplace]
        place = next(p for p in _PLACES if p[0] == country)
        code, _country, province, city, _line1, _line2, postal, first, last, phone = place
        buyer = self.rng.randint(*_AMAZON_BUYERS)
        address1, address2 = _home(place, buyer)
        name = f"{first} {last}" if code != "JP" else f"{last}{first}"
        stamp = self._stamp(moment)
        order = {
            "AmazonOrderId": order_id, "SellerOrderId": order_id, "PurchaseDate": stamp, "LastUpdateDate": stamp,
            "OrderStatus": "Unshipped", "FulfillmentChannel": "MFN", "SalesChannel": self.sales_channel,
            "ShipServiceLevel": "Std Dom", "OrderTotal": self._money(total),
            "NumberOfItemsShipped": 0, "NumberOfItemsUnshipped": count,
            "PaymentMethod": "Other", "PaymentMethodDetails": ["Standard"], "MarketplaceId": self.marketplace,
            "ShipmentServiceLevelCategory": "Standard", "OrderType": "StandardOrder",
            "EarliestShipDate": self._stamp(moment + timedelta(days=1)),
            "LatestShipDate": self._stamp(moment + timedelta(days=2)),
            "IsBusinessOrder": False, "IsPrime": False, "IsPremiumOrder": False, "IsGlobalExpressEnabled": False,
            "IsReplacementOrder": False, "IsSoldByAB": False, "IsISPU": False, "IsAccessPointOrder": False,
            "ShippingAddress": {"Name": name, "AddressLine1": address1, **({"AddressLine2": address2} if address2 else {}),
                                "City": city, "StateOrRegion": province, "PostalCode": postal, "CountryCode": code,
                                "Phone": phone, "AddressType": "Residential"},
            # Amazon's anonymised buyer email, one per buyer (an odd multiplier is one-to-one modulo 2**60)
            "BuyerInfo": {"BuyerEmail": f"{buyer * 0x9E3779B97F4A7C15 % 2**60:015x}"
                                        f"@marketplace.{self.sales_channel.lower()}"},
        }
        return order_id, {"order": order, "items": items}

    def touch(self, order_id: str, moment: datetime) -> datetime:
        def touched(entry: BookEntry, at: datetime) -> dict:
            return {**entry.payload, "order": {**entry.payload["order"], "LastUpdateDate": self._stamp(at)}}

        return self._rewrite(order_id, moment, touched)

    def cancel(self, order_id: str, moment: datetime) -> datetime:
        def cancelled(entry: BookEntry, at: datetime) -> dict:
            order = {**entry.payload["order"], "LastUpdateDate": self._stamp(at), "OrderStatus": "Canceled",
                     "NumberOfItemsUnshipped": 0}
            for hidden in ("ShippingAddress", "BuyerInfo", "OrderTotal"):  # Amazon drops them once cancelled
                order.pop(hidden, None)
            items = entry.payload["items"]
            if not entry.malformed:  # cancelled orders carry no prices; a malformed one stays malformed
                items = [{k: v for k, v in item.items() if k not in ("ItemPrice", "ShippingPrice", "PromotionDiscount")}
                         for item in items]
            return {"order": order, "items": items}

        return self._rewrite(order_id, moment, cancelled, cancel=True)


def generator_for(channel: str, book: OrderBook, seed: int = 7, **options) -> OrderGenerator:
    generators = {"shopify": ShopifyOrders, "amazon": AmazonOrders}
    generator_class = generators.get(channel)
    if generator_class is None:
        try:
            generator_class = importlib.import_module(f"omsdev.simulators.{channel}").ORDER_GENERATOR
        except (ModuleNotFoundError, AttributeError):
            raise ValueError(f"no order generator for channel {channel!r}") from None
    return generator_class(book, random.Random(seed), **options)


@dataclass(frozen=True)
class FraudRing:
    """The two patterns the risk rules (SPEC C6) must catch, mixed into a scenario's orders.

    - The ring: `accounts` new accounts on `ring_channel`, one order each over the backlog's span, all to
      one flat written four ways (`_RING_FLAT`): one address fingerprint, so from the 5th account on the
      shared-address rule sends their orders to review.
    - The serial returner on `returner_channel`: `orders` orders over the backlog's span; `returns` of them
      sent back `refund_after` seconds after the scenario's orders begin (newer versions with the platform's
      refund status); one more order `late_after` seconds in. By then the buyer has more than 15 orders in
      24 h and returned more than 60% (14 of 19 by default): the volume-and-returns rule holds that order.
    The delays are wall seconds from the backlog's seeding (or the run's start), set for the demo's pollers,
    which read every shop every 15-20 s: the first orders must have been read as paid before their refunds
    arrive (a refund seen before the sale counts no paid order), and the next order must come a poll later
    than the refunds (a poll writes a page's orders in parallel: in one poll it could be assessed first).
    """

    ring_channel: str = "shopify"
    accounts: int = 8
    returner_channel: str = "douyin"
    orders: int = 18
    returns: int = 14
    refund_after: float = 20.0
    late_after: float = 45.0

    def __post_init__(self) -> None:
        if not 0 <= self.returns <= self.orders or self.accounts < 0 or not 0 <= self.refund_after <= self.late_after:
            raise ValueError(f"an impossible fraud ring: {self}")


@dataclass(frozen=True)
class Scenario:
    orders_per_day: float = 3000
    peak_factor: float = 1.0  # 50 for Double 11
    duplicate_share: float = 0.05  # re-touched a little later, content unchanged
    cancel_share: float = 0.05  # cancelled a little later
    malformed_share: float = 0.0
    late_update_seconds: float = 20.0  # mean delay of a re-touch or cancellation (0.5x..1.5x)
    backdate: timedelta = timedelta(0)
    # Per channel instead of `backdate` (e.g. each channel's window lag: orders are visible to the
    # poller at once, and the measured ingestion latency is the one a live shop would see).
    channel_backdates: Mapping[str, timedelta] = field(default_factory=dict, hash=False)
    seed: int = 7
    speed: float = 1.0  # scenario seconds per wall second: arrivals and late updates come this much faster
    fraud_ring: FraudRing | None = None  # off by default; the demo turns it on

    @property
    def orders_per_second(self) -> float:
        return self.orders_per_day * self.peak_factor * self.speed / 86400


def _spaced(end: datetime, spread: timedelta, count: int) -> list[datetime]:
    """`count` moments evenly spaced over the `spread` before `end`, oldest first, neither end included."""
    return [end - spread + spread * (index + 1) / (count + 1) for index in range(count)]


STEADY_DAY = Scenario()
DOUBLE_11 = Scenario(peak_factor=50)


class ScenarioRunner:
    """Feeds order books (or generators) at the scenario's rate, with its re-touches and cancellations.

    `targets`: an OrderBook whose `channel` is set, a generator, or a list of them. Records what it
    did in `created_ids`, `touched_ids`, `cancelled_ids` and `malformed_ids`, and for a fraud ring in
    `ring_ids`, `returner_ids` and `refunded_ids` (ground truth for tests and the demo's summary). A part
    of the ring whose channel has no generator here is left out.
    """

    def __init__(self, targets, scenario: Scenario = STEADY_DAY):
        targets = targets if isinstance(targets, (list, tuple)) else [targets]
        if not targets:
            raise ValueError("a scenario needs at least one order book or generator")
        self.scenario = scenario
        self.generators = [
            generator_for(t.channel, t, seed=scenario.seed + index) if isinstance(t, OrderBook) else t
            for index, t in enumerate(targets)
        ]
        self._rng = random.Random(scenario.seed)
        # (due monotonic, action, generator, order id; for "returner_order" the buyer)
        self._later: list[tuple[float, str, OrderGenerator, str | Persona]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._turn = itertools.count()
        self.created = 0
        self.created_ids: list[str] = []
        self.touched_ids: list[str] = []
        self.cancelled_ids: list[str] = []
        self.malformed_ids: list[str] = []
        self.ring_ids: list[str] = []
        self.returner_ids: list[str] = []
        self.refunded_ids: list[str] = []
        self.returner: Persona | None = None
        self._fraud_planted = False
        self._ring_generator, self._returner_generator = self._fraud_generators()

    def _fraud_generators(self) -> tuple[OrderGenerator | None, OrderGenerator | None]:
        fraud = self.scenario.fraud_ring
        if fraud is None:
            return None, None
        first_of: dict[str, OrderGenerator] = {}
        for generator in self.generators:
            first_of.setdefault(generator.channel, generator)
        ring, returner = first_of.get(fraud.ring_channel), first_of.get(fraud.returner_channel)
        for generator, needs in ((ring, ("for_buyer",)), (returner, ("for_buyer", "refund"))):
            missing = [name for name in needs
                       if generator is not None and getattr(type(generator), name) is getattr(OrderGenerator, name)]
            if missing:
                raise ValueError(f"{generator.channel} orders cannot play their part in a fraud ring: "
                                 f"no {', '.join(missing)}")
        return ring, returner

    def now(self, generator: OrderGenerator | None = None) -> datetime:
        """The scenario's "now" (for a generator's channel): wall time shifted by the backdate."""
        backdate = self.scenario.backdate
        if generator is not None:
            backdate = self.scenario.channel_backdates.get(generator.channel, backdate)
        return datetime.now(timezone.utc) - backdate

    def _decide(self, generator: OrderGenerator) -> tuple[str | bool, str | None, float]:
        """(malformation or False, late action, its delay in wall seconds), all from the seeded stream."""
        scenario = self.scenario
        with self._lock:
            malformed = self._rng.random() < scenario.malformed_share and self._rng.choice(generator.malformations)
            draw = self._rng.random()
            delay = self._rng.uniform(0.5, 1.5) * scenario.late_update_seconds / scenario.speed
        action = "cancel" if draw < scenario.cancel_share else (
            "touch" if draw < scenario.cancel_share + scenario.duplicate_share else None)
        return malformed, action, delay

    def _created(self, generator: OrderGenerator, moment: datetime, malformed: str | bool) -> str:
        order_id = generator.create(moment, malformed=malformed)
        with self._lock:
            self.created += 1
            self.created_ids.append(order_id)
            if malformed:
                self.malformed_ids.append(order_id)
        return order_id

    def _apply(self, action: str, generator: OrderGenerator, target: str | Persona, moment: datetime) -> None:
        if action == "returner_order":
            self._chosen_buyer_order(generator, moment, target, self.returner_ids)
            return
        getattr(generator, action)(target, moment)
        done = {"cancel": self.cancelled_ids, "touch": self.touched_ids, "refund": self.refunded_ids}[action]
        with self._lock:
            done.append(target)

    def _chosen_buyer_order(self, generator: OrderGenerator, moment: datetime, buyer: Persona,
                            ids: list[str]) -> str:
        order_id = generator.create(moment, buyer=buyer)
        with self._lock:
            self.created += 1
            self.created_ids.append(order_id)
            ids.append(order_id)
        return order_id

    def plant_fraud(self, spread: timedelta = timedelta(hours=1)) -> None:
        """The fraud ring's orders and the returner's first ones over the last `spread`; the returns and the
        returner's next order scheduled. Once per runner (`seed_backlog` and `start` call it)."""
        fraud = self.scenario.fraud_ring
        with self._lock:
            if fraud is None or self._fraud_planted:
                return
            self._fraud_planted = True
        begun = time.monotonic()
        if self._ring_generator is not None:
            moments = _spaced(self.now(self._ring_generator), spread, fraud.accounts)
            for moment, account in zip(moments, ring_accounts(fraud.accounts), strict=True):
                self._chosen_buyer_order(self._ring_generator, moment, account, self.ring_ids)
        if self._returner_generator is not None:
            self.returner = serial_returner()
            first = [self._chosen_buyer_order(self._returner_generator, moment, self.returner, self.returner_ids)
                     for moment in _spaced(self.now(self._returner_generator), spread, fraud.orders)]
            returned = random.Random(self.scenario.seed).sample(first, fraud.returns)
            with self._lock:
                self._later += [(begun + fraud.refund_after, "refund", self._returner_generator, order_id)
                                for order_id in returned]
                self._later.append((begun + fraud.late_after, "returner_order", self._returner_generator, self.returner))

    def create_one(self, generator: OrderGenerator | None = None) -> str:
        """One order now, with its late update (if any) scheduled."""
        generator = generator or self.generators[next(self._turn) % len(self.generators)]
        malformed, action, delay = self._decide(generator)
        order_id = self._created(generator, self.now(generator), malformed)
        if action:
            with self._lock:
                self._later.append((time.monotonic() + delay, action, generator, order_id))
        return order_id

    def seed_backlog(self, count_per_generator: int, spread: timedelta = timedelta(hours=1)) -> list[str]:
        """Orders that arrived over the last `spread` (before the backdate), written at once, with
        their late updates already applied (capped at the scenario's now); a fraud ring planted among them."""
        self.plant_fraud(spread)
        made = []
        for generator in self.generators:
            end = self.now(generator)
            for moment in _spaced(end, spread, count_per_generator):
                malformed, action, delay = self._decide(generator)
                order_id = self._created(generator, moment, malformed)
                if action:
                    self._apply(action, generator, order_id, min(moment + timedelta(seconds=delay), end))
                made.append(order_id)
        return made

    @property
    def pending_updates(self) -> int:
        with self._lock:
            return len(self._later)

    def apply_due_updates(self, *, all_now: bool = False) -> int:
        with self._lock:
            now = time.monotonic()
            due = [item for item in self._later if all_now or item[0] <= now]
            self._later = [item for item in self._later if not (all_now or item[0] <= now)]
        for _due, action, generator, target in due:
            self._apply(action, generator, target, self.now(generator))
        return len(due)

    def start(self, *, total: int | None = None, duration: float | None = None) -> ScenarioRunner:
        """Create orders in a background thread until `total` orders or `duration` seconds (or stop())."""
        self.plant_fraud()

        def run() -> None:
            interval = 1 / max(self.scenario.orders_per_second, 1e-9)
            started, made = time.monotonic(), 0
            while not self._stop.is_set():
                if (total is not None and made >= total) or (duration is not None and time.monotonic() - started >= duration):
                    break
                due = started + made * interval
                if time.monotonic() < due:
                    self._stop.wait(min(due - time.monotonic(), 0.2))
                    self.apply_due_updates()
                    continue
                self.create_one()
                made += 1
                if made % 50 == 0:  # a run behind schedule never waits: apply late updates as it goes
                    self.apply_due_updates()
            while not self._stop.is_set() and self.pending_updates:
                self.apply_due_updates()
                self._stop.wait(0.05)

        self._thread = threading.Thread(target=run, name="scenario", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> None:
        """Until the run (including its pending late updates) is over."""
        if self._thread:
            self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self.wait(5)
