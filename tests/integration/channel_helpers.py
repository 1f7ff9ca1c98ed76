"""Steps shared by the channel integration tests (`test_channel_<channel>.py`): a shop's outcome of a
poll, two pollers at once while orders arrive, a shop connected from a chosen moment, the checks
against the Orders and Quarantine tables, and page hooks for simulators with `on_page(params)`."""

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from oms.adapters.cursors_table import CursorsTable
from oms.adapters.orders_table import OrdersTable
from oms.adapters.quarantine_table import QuarantineTable
from oms.settings import get_settings
from omsdev.demo import (
    Reconciliation,
    SimulatedShop,
    poller_function_id,
    reconcile,
    start_shop,
)
from omsdev.simulators.scenario import Scenario, ScenarioRunner


def unique_shop_id(name: str) -> str:
    """`name` with a random suffix: shops of different tests never share rows."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def poll_shop(cloud, shop: SimulatedShop, *, bypass_concurrency: bool = False) -> dict:
    """Run the shop's channel poller once and return the shop's outcome."""
    outcome = cloud.invoke(poller_function_id(shop.channel), {"channel": shop.channel},
                           bypass_concurrency=bypass_concurrency)
    return next(each for each in outcome["shops"] if each["shop_id"] == shop.shop_id)


def poll_until_stored(cloud, shop: SimulatedShop, *, polls: int | None = None, seconds: float | None = None,
                      bypass_concurrency: bool = False) -> list[dict]:
    """Poll until every order of the shop is stored, at most `polls` times or for `seconds`; the shop's outcomes."""
    deadline = math.inf if seconds is None else time.monotonic() + seconds
    outcomes: list[dict] = []
    while (polls is None or len(outcomes) < polls) and time.monotonic() < deadline:
        outcomes.append(poll_shop(cloud, shop, bypass_concurrency=bypass_concurrency))
        if not reconcile([shop])[shop.channel].stale_or_missing:
            break
    return outcomes


@contextmanager
def window_retries_wired(cloud) -> Iterator[None]:
    """The retry consumer wired to its queue, as in AWS, for the duration of the block."""
    cloud.start_wiring(only={"WindowRetryFunction"})
    try:
        yield
    finally:
        cloud.stop_wiring()


def poll_in_pairs_while_orders_arrive(cloud, shop: SimulatedShop, *, until_orders: int, per_round: int,
                                      backdate: timedelta, seconds: float,
                                      also_until: Callable[[], bool] = lambda: True) -> list[dict]:
    """Run two pollers at once, round after round, with the retry consumer wired to its queue as in AWS, adding
    `per_round` orders (`backdate` old) after each round until the shop has `until_orders`. Stops once all are
    stored and `also_until()` holds, or after `seconds`. Returns the shop's outcome of every poll."""
    outcomes: list[dict] = []

    def poll_past_reserved_concurrency() -> None:
        # As a redelivered schedule or a manual invoke would: the shop lease, not the function's reserved
        # concurrency of 1, is what must keep the two pollers apart.
        outcomes.append(poll_shop(cloud, shop, bypass_concurrency=True))

    with window_retries_wired(cloud):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pollers = [threading.Thread(target=poll_past_reserved_concurrency) for _ in range(2)]
            for poller in pollers:
                poller.start()
            for poller in pollers:
                poller.join()
            for _ in range(min(per_round, until_orders - len(shop.book))):
                shop.generator.create(datetime.now(UTC) - backdate)
            if (len(shop.book) >= until_orders and also_until()
                    and not reconcile([shop])[shop.channel].stale_or_missing):
                break
    return outcomes


def every_fault_kind_happened(shop: SimulatedShop, kinds: Iterable[str]) -> bool:
    """The shop's simulator has injected at least one fault of each kind."""
    outcomes = shop.simulator.stats.outcomes()
    return all(outcomes[f"fault_{kind}"] for kind in kinds)


def start_cursor(shop: SimulatedShop, moment: datetime) -> None:
    """Connect the shop from `moment` on, instead of the default day of history."""
    cursors = CursorsTable(get_settings().shop_cursors_table)
    owner = uuid.uuid4().hex
    assert cursors.acquire_lease(shop.channel, shop.shop_id, owner, until=datetime.now(UTC) + timedelta(minutes=1))
    assert cursors.release_lease(shop.channel, shop.shop_id, owner, updated_through=moment)


def start_shop_connected_before_its_backlog(channel: str, scenario: Scenario, name: str, count: int,
                                            spread: timedelta, **options) -> SimulatedShop:
    """A shop with `count` orders spread over `spread`, its cursor a minute before the oldest one (what an
    operator does when connecting a shop), so a few windows cover the backlog."""
    shop = start_shop(channel, unique_shop_id(name), **options)
    ScenarioRunner([shop.generator], scenario).seed_backlog(count, spread=spread)
    start_cursor(shop, datetime.now(UTC) - scenario.backdate - spread - timedelta(minutes=1))
    return shop


def orders_table() -> OrdersTable:
    """The stack's Orders table (with its raw payload bucket)."""
    return OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket)


def order_key(shop: SimulatedShop, order_id: str) -> str:
    """The Orders table key of one of the shop's orders."""
    return f"{shop.channel}#{shop.shop_id}#{order_id}"


def not_stored(shop: SimulatedShop, order_ids: Iterable[str]) -> list[str]:
    """Those of `order_ids` that the Orders table does not hold (at any version)."""
    table = orders_table()
    return [order_id for order_id in order_ids if table.get(order_key(shop, order_id)) is None]


def assert_every_order_stored_once(shop: SimulatedShop, count: int | None = None) -> Reconciliation:
    """Every order of the shop is stored once at its latest version, nothing else is stored, and (if given)
    there are `count` of them."""
    result = reconcile([shop])[shop.channel]
    assert result.stale_or_missing == []
    assert result.stored_exactly_once == result.expected == result.stored_items
    if count is not None:
        assert result.expected == count
    return result


def quarantined_items(shop: SimulatedShop | None = None) -> list[dict]:
    """Every quarantined record, or only the shop's."""
    items = QuarantineTable(get_settings().quarantine_table).list()
    return items if shop is None else [item for item in items if item["shop_id"] == shop.shop_id]


def assert_only_order_quarantined(outcome: dict, order_id: str, *, created: int,
                                  shop: SimulatedShop | None = None) -> dict:
    """The poll created `created` orders and quarantined one, `order_id`, the only quarantined record (of the
    shop, if given). Returns that record, for the channel's reason."""
    assert outcome["counts"]["created"] == created and outcome["counts"]["quarantined"] == 1
    items = quarantined_items(shop)
    assert [item["channel_order_id"] for item in items] == [order_id]
    return items[0]


def move_an_early_order_out_of_the_window_before_every_page(shop: SimulatedShop, window_end_param: str) -> list[str]:
    """Before every list page, the earliest order not moved yet changes to 5 s after the window's end (the page
    request's `window_end_param`, epoch seconds): it leaves the window, and the orders behind it shift one place
    towards the first page. Returns the moved order ids, filled in as pages are requested. For simulators whose
    `on_page(params)` runs before each list page is served (PDD, Douyin)."""
    by_update = sorted(shop.book.order_ids(), key=lambda order_id: (shop.book.get(order_id).updated_at, order_id))
    moved: list[str] = []

    def update_an_early_order(params: dict) -> None:
        end = datetime.fromtimestamp(int(params[window_end_param]), UTC)
        order_id = by_update[len(moved)]
        shop.generator.touch(order_id, end + timedelta(seconds=5))
        moved.append(order_id)

    shop.simulator.on_page = update_an_early_order
    return moved


def expire_tokens_after_the_first_page(shop: SimulatedShop) -> None:
    """The shop's access tokens expire once the first list page has been requested (`on_page(params)`: PDD, Douyin)."""
    pages: list[int] = []

    def expire_after_first_call(_params: dict) -> None:
        pages.append(1)
        if len(pages) == 1:
            shop.simulator.expire_tokens()

    shop.simulator.on_page = expire_after_first_call
