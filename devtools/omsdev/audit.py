"""The end-state audit of a scenario (issue 8, SPEC section 5): are the reliability promises kept?

Four checks over what a local cloud's stack holds once a scenario has run. Developer tooling: an
offline audit may Scan every table it reads (the system itself never does); production code never
imports this module.

1. `orders` - stored exactly once or quarantined with a reason.
   - Each expected order (from the channel simulators' order books, or a file of order keys) is in the
     Orders table under its key, or has an open Quarantine row with a non-empty reason; neither: `lost`.
     Stored at a version older than the simulator's latest `updated_at` (whole seconds): `stale` (a lost
     update). Found only under another key form of the same identity: `stored_under_other_key`.
   - Whatever is expected: no two stored keys share one identity (channel, shop id, platform order id,
     each trimmed and case-folded, leading zeros of numeric ids dropped): `duplicate`; no open
     Quarantine row for an order that is stored: `stored_and_quarantined`; no stored order whose key is
     not `{channel}#{shop_id}#{channel_order_id}`: `key_mismatch`; no open Quarantine row without a
     reason: `quarantined_without_reason`.
2. `stock` - reserved units equal the open orders' units and never exceed stock. Per stock row
   (warehouse x SKU): `reserved` = the units of the reservations in a holding state
   (`oms.domain.reservation.HOLDING`) at that row (`reserved_mismatch`), the row's reservation lines
   equal those reservations' units order by order (`lines_mismatch`), `reserved <= on_hand` (`oversold`;
   `oversold_units` sums reserved - on_hand), `available = on_hand - reserved` (`available_mismatch`),
   nothing negative (`negative`). Every holding reservation's units have a stock row
   (`missing_stock_row`) and its order is stored (`holding_for_missing_order`), not cancelled or refunded
   (`holding_for_closed_order`) and not shipped or completed (`holding_for_shipped_order`: the units
   should have been deducted). Every order whose fulfillment status says it holds units (reserving,
   allocated, ready_to_ship) has a holding reservation (`allocated_without_hold`).
3. `holds` - a held order never reaches fulfilment; a hold ends only by a recorded decision. An order whose
   `risk_status` is verifying, in_review or blocked is not ready_to_ship or shipped and its reservation is
   not deducted (`held_but_fulfilled`); a `rejected` one neither (`rejected_but_fulfilled`). An order
   that was ever held (its risk decision's action was verify, review or block, or it carries a
   verification outcome or a reviewer's move) and is `cleared` now has a recorded clearing: the SMS
   verification outcome `verified` on the order, or a reviewer's `approve` / `release_hold` in the audit
   log (`cleared_without_record`).
4. `queues` - dead-letter and failure queues hold only what the injected faults explain. The queues are
   the template's: every redrive target and every event source mapping's on-failure destination. Their
   messages are read without being consumed (received with a visibility timeout, then made visible again
   at once). Each message's reasons are sorted into categories (`classify_reason`, `classify_message`);
   with no faults injected every message is a violation (`unexplained`), with faults a message is
   explained when all of its categories are among those the injected kinds explain (`FAULT_EXPLAINS`).

The tables are read one after another, not as one snapshot: audit a quiet stack (the scenario over, the
event sources stopped or drained), or a change between two reads shows up as a violation.
`audit(...)` returns an `AuditReport`; `oms audit` prints it and exits 1 when a check fails.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from oms.adapters.dynamo_codec import from_item
from oms.domain.allocation import Shipment
from oms.domain.order import parse_utc
from oms.domain.reservation import DEDUCTED, HOLDING, units_of
from oms.domain.risk import HOLDING_ACTIONS

CHECKS = ("orders", "stock", "holds", "queues")
DEFAULT_LIMIT = 20  # concrete violations kept per check (all are counted)
PEEK_LIMIT = 1000  # messages read per queue; more are counted as `unread`

HELD_STATUSES = ("verifying", "in_review", "blocked")
CLEARED, REJECTED = "cleared", "rejected"
FULFILLED = ("ready_to_ship", "shipped")
HOLDING_FULFILLMENT = ("reserving", "allocated", "ready_to_ship")
CLOSED_STATUSES = ("cancelled", "refunded")
SHIPPED_STATUSES = ("shipped", "completed")
CLEARING_ACTIONS = ("approve", "release_hold")

# Which message categories an injected fault kind explains. A kind not listed explains the category of
# its own name (so a test may inject e.g. "auth" and expect `auth` reasons). Channel faults are the
# simulators' kinds (`omsdev.simulators.base.FAULT_KINDS`); a dropped connection may come from a timeout
# or a truncated answer. `aws` - any fault at the AWS endpoint, also named by the fault proxy's kinds
# (`omsdev.localcloud.fault_proxy.KINDS`: throttle, throughput, 500, drop, drop_after) - and `crash` (a
# handler killed or failing mid-batch) make stream batches give up and review messages bounce.
FAULT_EXPLAINS: dict[str, frozenset[str]] = {
    "5xx": frozenset({"5xx"}),
    "429": frozenset({"429"}),
    "timeout": frozenset({"timeout", "connection"}),
    "truncated": frozenset({"truncated", "connection"}),
    "aws": frozenset({"aws", "stream_batch_discarded", "review_not_taken"}),
    "crash": frozenset({"stream_batch_discarded", "review_not_taken"}),
}
for _alias in ("throttle", "throughput", "500", "drop", "drop_after", "aws_throttle", "aws_throughput", "aws_500",
               "aws_drop", "aws_drop_after"):
    FAULT_EXPLAINS[_alias] = FAULT_EXPLAINS["aws"]
for _alias in ("handler_crash", "kill", "redelivery"):
    FAULT_EXPLAINS[_alias] = FAULT_EXPLAINS["crash"]

# (category, pattern) in the order they are tried on a failure reason ("ExceptionType: message").
_REASON_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("aws", re.compile(r"ClientError|Throttling|ProvisionedThroughputExceeded|RequestLimitExceeded|"
                       r"TooManyRequestsException|SlowDown|InternalServerError|InternalFailure|ServiceUnavailable|"
                       r"EndpointConnectionError|ConnectionClosedError|endpoint URL|botocore", re.IGNORECASE)),
    ("429", re.compile(r"^ChannelThrottledError|throttl|HTTP 429|rate.?limit", re.IGNORECASE)),
    ("timeout", re.compile(r"timeout|timed out", re.IGNORECASE)),
    ("truncated", re.compile(r"truncated|broken body|invalid JSON|IncompleteRead|ChunkedEncoding", re.IGNORECASE)),
    ("5xx", re.compile(r"HTTP 5\d\d")),
    ("connection", re.compile(r"ConnectionError|Connection (reset|aborted|refused)|RemoteDisconnected",
                              re.IGNORECASE)),
    ("auth", re.compile(r"^ChannelAuthError|HTTP 40[13]")),
    ("request", re.compile(r"^ChannelRequestError|HTTP 4\d\d")),
    # What the adapters call a transient platform error (an error envelope of the Chinese platforms).
    ("5xx", re.compile(r"^TransientChannelError")),
)


# Expected orders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedOrder:
    """An order a simulator created: its key, and (if known) the time of its latest version."""

    order_key: str
    updated_at: datetime | None = None
    malformed: bool = False  # the simulator made it unparseable on purpose: it should be quarantined

    def as_dict(self) -> dict:
        shown: dict = {"order_key": self.order_key}
        if self.updated_at is not None:
            shown["updated_at"] = self.updated_at.isoformat().replace("+00:00", "Z")
        if self.malformed:
            shown["malformed"] = True
        return shown


def expected_from_shops(shops: Iterable) -> list[ExpectedOrder]:
    """Every order in the simulators' books (`omsdev.demo.SimulatedShop`), at its latest version."""
    expected = []
    for shop in shops:
        for entry in shop.book.entries():
            expected.append(ExpectedOrder(f"{shop.channel}#{shop.shop_id}#{entry.order_id}", entry.updated_at,
                                          entry.malformed))
    return expected


def write_expected(path: str | Path, source: Iterable) -> int:
    """Write the expected orders (from shops, or ExpectedOrder values) as JSON lines; how many."""
    orders = _expected_orders(source)
    with Path(path).open("w", encoding="utf-8") as file:
        for order in orders:
            file.write(json.dumps(order.as_dict(), ensure_ascii=False) + "\n")
    return len(orders)


def read_expected(path: str | Path) -> list[ExpectedOrder]:
    """Expected orders from a file: a JSON list, or JSON lines; each entry an order key or an object with
    `order_key` and optionally `updated_at` (ISO 8601 with zone) and `malformed`. ValueError names the
    entry that is neither."""
    text = Path(path).read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        entries = list(enumerate(json.loads(stripped), start=1))
    else:
        entries = [(number, json.loads(line)) for number, line in enumerate(text.splitlines(), start=1)
                   if line.strip()]
    return [_expected_entry(entry, f"{path}, entry {number}") for number, entry in entries]


def _expected_entry(entry: object, where: str) -> ExpectedOrder:
    if isinstance(entry, str) and entry.strip():
        return ExpectedOrder(entry.strip())
    if isinstance(entry, dict) and isinstance(entry.get("order_key"), str) and entry["order_key"].strip():
        updated_at = entry.get("updated_at")
        try:
            moment = parse_utc(updated_at) if updated_at else None
        except (TypeError, ValueError):
            raise ValueError(f"{where}: updated_at {updated_at!r} is not ISO 8601 with a zone") from None
        return ExpectedOrder(entry["order_key"].strip(), moment, bool(entry.get("malformed", False)))
    raise ValueError(f"{where}: expected an order key or an object with order_key, got {entry!r}")


def _expected_orders(source: Iterable | None) -> list[ExpectedOrder] | None:
    """ExpectedOrder values from SimulatedShops, ExpectedOrders, order keys, or a key -> updated_at mapping."""
    if source is None:
        return None
    if isinstance(source, Mapping):
        return [ExpectedOrder(key, _moment(value)) for key, value in source.items()]
    orders: list[ExpectedOrder] = []
    for item in source:
        if isinstance(item, ExpectedOrder):
            orders.append(item)
        elif isinstance(item, str):
            orders.append(ExpectedOrder(item))
        elif hasattr(item, "book") and hasattr(item, "shop_id"):
            orders.extend(expected_from_shops([item]))
        else:
            raise TypeError(f"not an expected order: {item!r}")
    return orders


def _moment(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_utc(str(value))


# The report -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    kind: str
    key: str  # what is wrong: an order key, a stock id (warehouse#sku), a queue
    detail: str
    orders: tuple[str, ...] = ()  # the orders involved

    def as_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "detail": self.detail, "orders": list(self.orders)}


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    counts: dict = field(default_factory=dict)  # what was looked at, and violations per kind
    violations: tuple[Violation, ...] = ()  # the first `limit` of them
    violation_count: int = 0

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "counts": dict(self.counts), "violation_count": self.violation_count,
                "violations": [violation.as_dict() for violation in self.violations]}

    def keys(self) -> set[str]:
        """The keys and orders the reported violations name."""
        return {violation.key for violation in self.violations} | {
            order for violation in self.violations for order in violation.orders}


@dataclass(frozen=True)
class AuditReport:
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]

    def check(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def as_dict(self) -> dict:
        return {"ok": self.ok, "failed": self.failed, "checks": [check.as_dict() for check in self.checks]}

    def lines(self) -> list[str]:
        """The report for a person: a line per check with its numbers, then its violations."""
        lines = []
        for check in self.checks:
            numbers = ", ".join(f"{name} {_shown(value)}" for name, value in check.counts.items())
            lines.append(f"{check.name:<7} {'OK' if check.ok else 'FAIL':<4}  {numbers}")
            for violation in check.violations:
                involved = f" (orders: {', '.join(violation.orders)})" if violation.orders else ""
                lines.append(f"    {violation.kind} {violation.key}: {violation.detail}{involved}")
            if check.violation_count > len(check.violations):
                lines.append(f"    ... and {check.violation_count - len(check.violations)} more")
        lines.append("audit: OK" if self.ok else f"audit: FAIL ({', '.join(self.failed)})")
        return lines


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return "(" + " ".join(f"{key}:{inner}" for key, inner in value.items()) + ")"
    return str(value)


class _Findings:
    """Violations of one check: all counted per kind, the first `limit` kept."""

    def __init__(self, name: str, limit: int):
        self.name, self.limit = name, limit
        self.kept: list[Violation] = []
        self.by_kind: Counter = Counter()

    def add(self, kind: str, key: str, detail: str, orders: Iterable[str] = ()) -> None:
        self.by_kind[kind] += 1
        if len(self.kept) < self.limit:
            self.kept.append(Violation(kind, key, detail, tuple(sorted(set(orders)))))

    def result(self, counts: dict) -> CheckResult:
        total = sum(self.by_kind.values())
        return CheckResult(self.name, total == 0, {**counts, **dict(sorted(self.by_kind.items()))},
                           tuple(self.kept), total)


# Reading the stack --------------------------------------------------------------------------------

_ORDER_FIELDS = ("order_key", "channel", "shop_id", "channel_order_id", "status", "updated_at", "fulfillment_status",
                 "risk_status", "risk_decision", "risk_verification", "risk_review")


@dataclass
class _State:
    orders: dict[str, dict]
    quarantine: list[dict]
    stock_rows: dict[str, dict]  # stock_id -> row
    lines: dict[str, dict[str, int]]  # stock_id -> order_key -> units
    reservations: dict[str, dict]  # order_key -> item
    decisions: dict[str, list[dict]]  # order_key -> audit log entries


def _scan(client, table: str, fields: tuple[str, ...] | None = None) -> list[dict]:
    kwargs: dict = {"TableName": table, "ConsistentRead": True}
    if fields:
        names = {f"#a{index}": name for index, name in enumerate(fields)}
        kwargs.update(ProjectionExpression=", ".join(names), ExpressionAttributeNames=names)
    items = []
    while True:
        page = client.scan(**kwargs)
        items.extend(from_item(item) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _read_state(stack) -> _State:
    dynamodb = stack.client("dynamodb")
    orders = {item["order_key"]: item for item in _scan(dynamodb, stack.ref("OrdersTable"), _ORDER_FIELDS)}
    quarantine = _scan(dynamodb, stack.ref("QuarantineTable"),
                       ("quarantine_id", "channel", "shop_id", "channel_order_id", "reason", "state"))
    stock_rows: dict[str, dict] = {}
    lines: dict[str, dict[str, int]] = defaultdict(dict)
    for item in _scan(dynamodb, stack.ref("InventoryTable")):
        if item["entry"] == "stock":
            stock_rows[item["stock_id"]] = item
        else:
            lines[item["stock_id"]][item["order_key"]] = int(item["quantity"])
    reservations = {item["order_key"]: item for item in _scan(dynamodb, stack.ref("ReservationsTable"))}
    decisions: dict[str, list[dict]] = defaultdict(list)
    for entry in _scan(dynamodb, stack.ref("AuditLogTable"), ("order_key", "action", "who", "at", "item_id")):
        decisions[entry.get("order_key", "")].append(entry)
    return _State(orders, quarantine, stock_rows, dict(lines), reservations, dict(decisions))


# 1. orders ----------------------------------------------------------------------------------------


def identity(channel: str, shop_id: str, channel_order_id: str) -> tuple[str, str, str]:
    """What makes two keys the same order: case, surrounding blanks and a numeric id's leading zeros
    do not count."""
    order_id = str(channel_order_id).strip().lower()
    if order_id.isdigit():
        order_id = order_id.lstrip("0") or "0"
    return str(channel).strip().lower(), str(shop_id).strip().lower(), order_id


def _key_identity(order_key: str) -> tuple[str, str, str] | None:
    parts = order_key.split("#", 2)
    return identity(*parts) if len(parts) == 3 and all(parts) else None


def _stored_identity(order: dict) -> tuple[str, str, str] | None:
    if all(order.get(name) for name in ("channel", "shop_id", "channel_order_id")):
        return identity(order["channel"], order["shop_id"], order["channel_order_id"])
    return _key_identity(order["order_key"])


def check_orders(state: _State, expected: list[ExpectedOrder] | None, limit: int) -> CheckResult:
    findings = _Findings("orders", limit)
    by_identity: dict[tuple, list[str]] = defaultdict(list)
    for key, order in state.orders.items():
        found = _stored_identity(order)
        if found is not None:
            by_identity[found].append(key)
        fields = (order.get("channel"), order.get("shop_id"), order.get("channel_order_id"))
        if all(fields) and key != "#".join(str(part) for part in fields):
            findings.add("key_mismatch", key, f"stored fields say {'#'.join(str(part) for part in fields)}")
    duplicates = 0
    for keys in by_identity.values():
        if len(keys) > 1:
            duplicates += len(keys) - 1
            findings.add("duplicate", sorted(keys)[0], f"one order stored under {len(keys)} keys", keys)
    open_rows = [row for row in state.quarantine if row.get("state", "open") == "open"]
    quarantined: dict[tuple, dict] = {}
    for row in open_rows:
        if not str(row.get("reason") or "").strip():
            findings.add("quarantined_without_reason", row["quarantine_id"], "quarantined with an empty reason")
        found = (identity(row.get("channel", ""), row.get("shop_id", ""), row["channel_order_id"])
                 if row.get("channel_order_id") else None)
        if found is None:
            continue
        quarantined[found] = row
        if found in by_identity:
            findings.add("stored_and_quarantined", by_identity[found][0],
                         f"stored, and quarantined as {row['quarantine_id']}: {row.get('reason')}", by_identity[found])
    counts = {"stored_total": len(state.orders), "quarantined_total": len(open_rows),
              "replayed_total": len(state.quarantine) - len(open_rows),
              "quarantined_without_id": sum(1 for row in open_rows if not row.get("channel_order_id")),
              "duplicates": duplicates}
    if expected is not None:
        counts.update(_expected_counts(state, expected, by_identity, quarantined, findings))
    return findings.result(counts)


def _expected_counts(state: _State, expected: list[ExpectedOrder], by_identity: dict, quarantined: dict,
                     findings: _Findings) -> dict:
    stored = in_quarantine = lost = stale = 0
    unique = {order.order_key: order for order in expected}
    for key, order in unique.items():
        found = _key_identity(key)
        row = quarantined.get(found) if found is not None else None
        stored_order = state.orders.get(key)
        if stored_order is None and found in by_identity:
            other = by_identity[found]
            findings.add("stored_under_other_key", key, f"stored as {', '.join(other)}", [key, *other])
            stored_order = state.orders[other[0]]
        if stored_order is not None:
            stored += 1
            if _older(stored_order.get("updated_at"), order.updated_at):
                stale += 1
                findings.add("stale", key, f"stored version updated_at {stored_order.get('updated_at')}, the channel's "
                                           f"latest {order.as_dict()['updated_at']}", [key])
        elif row is not None and str(row.get("reason") or "").strip():
            in_quarantine += 1
        else:
            lost += 1
            findings.add("lost", key, "neither stored nor quarantined with a reason"
                         + (" (the simulator made it malformed)" if order.malformed else ""), [key])
    return {"expected": len(unique), "expected_malformed": sum(1 for o in unique.values() if o.malformed),
            "stored": stored, "quarantined": in_quarantine, "lost": lost, "stale": stale,
            "unexpected_stored": len(set(state.orders) - set(unique))}


def _older(stored: object, latest: datetime | None) -> bool:
    if latest is None:
        return False
    if not stored:
        return True
    try:
        moment = parse_utc(str(stored))
    except ValueError:
        return True
    return moment.replace(microsecond=0) < latest.replace(microsecond=0)


# 2. stock -----------------------------------------------------------------------------------------


def _units(reservation: dict) -> dict[tuple[str, str], int]:
    shipments = tuple(Shipment(part["warehouse_id"], tuple((line["sku"], int(line["quantity"]))
                                                           for line in part.get("lines", [])))
                      for part in reservation.get("shipments") or [])
    return units_of(shipments)


def check_stock(state: _State, limit: int) -> CheckResult:
    findings = _Findings("stock", limit)
    holding = {key: _units(item) for key, item in state.reservations.items() if item.get("state") in HOLDING}
    held_at: dict[str, dict[str, int]] = defaultdict(dict)  # stock_id -> order_key -> units
    for order_key, units in holding.items():
        for (warehouse_id, sku), quantity in units.items():
            held_at[f"{warehouse_id}#{sku}"][order_key] = quantity
    oversold_units = reserved_units = 0
    for stock_id, row in sorted(state.stock_rows.items()):
        on_hand, reserved, available = (int(row.get(name, 0)) for name in ("on_hand", "reserved", "available"))
        reserved_units += reserved
        holders = held_at.get(stock_id, {})
        lines = state.lines.get(stock_id, {})
        involved = set(holders) | set(lines)
        if reserved != sum(holders.values()):
            findings.add("reserved_mismatch", stock_id, f"reserved {reserved}, holding reservations hold "
                                                        f"{sum(holders.values())}", involved)
        differing = {key for key in involved if holders.get(key) != lines.get(key)}
        if differing:
            findings.add("lines_mismatch", stock_id, "reservation lines differ from the holding reservations for "
                                                     f"{len(differing)} order(s)", differing)
        if reserved > on_hand:
            oversold_units += reserved - on_hand
            findings.add("oversold", stock_id, f"reserved {reserved} > on hand {on_hand}", involved)
        if available != on_hand - reserved:
            findings.add("available_mismatch", stock_id,
                         f"available {available}, on hand {on_hand} - reserved {reserved} = {on_hand - reserved}")
        if min(on_hand, reserved, available) < 0:
            findings.add("negative", stock_id, f"on hand {on_hand}, reserved {reserved}, available {available}",
                         involved)
    for stock_id in sorted(set(held_at) - set(state.stock_rows)):
        findings.add("missing_stock_row", stock_id, "units held at a stock item that has no stock row", held_at[stock_id])
    for order_key in sorted(holding):
        order = state.orders.get(order_key)
        if order is None:
            findings.add("holding_for_missing_order", order_key, "a holding reservation of an order not stored",
                         [order_key])
        elif order.get("status") in CLOSED_STATUSES:
            findings.add("holding_for_closed_order", order_key,
                         f"the order is {order['status']} but its reservation still holds "
                         f"{sum(holding[order_key].values())} unit(s)", [order_key])
        elif order.get("status") in SHIPPED_STATUSES:
            findings.add("holding_for_shipped_order", order_key,
                         f"the order is {order['status']} but its units were never deducted", [order_key])
    for order_key, order in sorted(state.orders.items()):
        if order.get("fulfillment_status") in HOLDING_FULFILLMENT and order_key not in holding:
            state_now = (state.reservations.get(order_key) or {}).get("state", "no reservation")
            findings.add("allocated_without_hold", order_key,
                         f"fulfillment_status {order['fulfillment_status']} but reservation {state_now}", [order_key])
    return findings.result({"stock_rows": len(state.stock_rows), "holding_reservations": len(holding),
                            "reserved_units": reserved_units,
                            "held_units": sum(sum(units.values()) for units in holding.values()),
                            "oversold_units": oversold_units})


# 3. holds -----------------------------------------------------------------------------------------


def _ever_held(order: dict) -> bool:
    decision = order.get("risk_decision") or {}
    return (decision.get("action") in HOLDING_ACTIONS or bool(order.get("risk_verification"))
            or bool(order.get("risk_review")))


def _clearing(order: dict, decisions: list[dict]) -> str | None:
    """How the order's hold was cleared, if that is recorded: `verified` or `review`."""
    if (order.get("risk_verification") or {}).get("outcome") == "verified":
        return "verified"
    if any(entry.get("action") in CLEARING_ACTIONS for entry in decisions):
        return "review"
    return None


def check_holds(state: _State, limit: int) -> CheckResult:
    findings = _Findings("holds", limit)
    held: Counter = Counter()
    cleared_by: Counter = Counter()
    for order_key, order in sorted(state.orders.items()):
        risk_status = order.get("risk_status")
        fulfillment = order.get("fulfillment_status")
        deducted = (state.reservations.get(order_key) or {}).get("state") == DEDUCTED
        reached = fulfillment in FULFILLED or deducted
        where = f"fulfillment_status {fulfillment}" + (", reservation deducted" if deducted else "")
        if risk_status in HELD_STATUSES:
            held[risk_status] += 1
            if reached:
                findings.add("held_but_fulfilled", order_key, f"risk_status {risk_status} but {where}", [order_key])
        elif risk_status == REJECTED and reached:
            findings.add("rejected_but_fulfilled", order_key, f"rejected by a reviewer but {where}", [order_key])
        elif risk_status == CLEARED and _ever_held(order):
            how = _clearing(order, state.decisions.get(order_key, []))
            if how is None:
                action = (order.get("risk_decision") or {}).get("action")
                findings.add("cleared_without_record", order_key,
                             f"held (decision {action}) and now cleared, with neither a verified SMS code nor a "
                             f"reviewer's approve/release_hold in the audit log; {where}", [order_key])
            else:
                cleared_by[how] += 1
    counts = {"held": sum(held.values()), **{f"held_{status}": held[status] for status in HELD_STATUSES},
              "cleared_by_verification": cleared_by["verified"], "cleared_by_review": cleared_by["review"],
              "reached_fulfilment": sum(1 for order in state.orders.values()
                                            if order.get("fulfillment_status") in FULFILLED)}
    return findings.result(counts)


# 4. queues ----------------------------------------------------------------------------------------


def failure_queues(template) -> dict[str, str]:
    """The template's dead-letter and failure queues: logical id -> what puts messages there."""
    found: dict[str, str] = {}
    for logical_id, resource in template.resources.items():
        policy = (resource.get("Properties") or {}).get("RedrivePolicy") or {}
        target = _logical_id_of(policy.get("deadLetterTargetArn"))
        if resource.get("Type") == "AWS::SQS::Queue" and target:
            found.setdefault(target, f"dead-letter queue of {logical_id}")
    for function in template.functions():
        for event_id, event in (function.events or {}).items():
            destination = (((event.get("Properties") or {}).get("DestinationConfig") or {}).get("OnFailure") or {})
            target = _logical_id_of(destination.get("Destination"))
            if target and template.resources.get(target, {}).get("Type") == "AWS::SQS::Queue":
                found.setdefault(target, f"on-failure destination of {function.logical_id} ({event_id})")
    return dict(sorted(found.items()))


def _logical_id_of(reference: object) -> str | None:
    """The queue a `!GetAtt Queue.Arn` (or `!Ref`) names."""
    if isinstance(reference, dict):
        if "Fn::GetAtt" in reference:
            target = reference["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else str(target).partition(".")[0]
        if "Ref" in reference:
            return reference["Ref"]
    return None


def classify_reason(reason: str) -> str:
    """The category of one failure reason (see `_REASON_PATTERNS`); `other` when none fits."""
    for category, pattern in _REASON_PATTERNS:
        if pattern.search(reason or ""):
            return category
    return "other"


@dataclass(frozen=True)
class QueuedMessage:
    """What a dead-lettered message says: its categories, a reason for a person, and what it is about."""

    categories: frozenset[str]
    reason: str
    subject: str  # an order key, a channel#shop window, a stream batch


def classify_message(body: str) -> QueuedMessage:
    """Read a DLQ message body: a failed poll window (`FailedWindowMessage`: one category per failure),
    a stream source's on-failure record (`stream_batch_discarded`), a review message the intake did not
    take (`review_not_taken`), anything else (`unreadable`)."""
    try:
        document = json.loads(body)
    except ValueError:
        return QueuedMessage(frozenset({"unreadable"}), f"not JSON: {body[:120]!r}", "?")
    if not isinstance(document, dict):
        return QueuedMessage(frozenset({"unreadable"}), f"not an object: {body[:120]!r}", "?")
    if isinstance(document.get("failures"), list) and document.get("channel"):
        reasons = [str(failure.get("reason", "")) for failure in document["failures"] if isinstance(failure, dict)]
        subject = (f"{document['channel']}#{document.get('shop_id')} "
                   f"{document.get('window_start')}..{document.get('window_end')}")
        return QueuedMessage(frozenset(classify_reason(reason) for reason in reasons) or frozenset({"other"}),
                             reasons[-1] if reasons else "no reason given", subject)
    context = document.get("requestContext")
    if isinstance(context, dict) and "condition" in context:
        batch = document.get("DDBStreamBatchInfo") or document.get("SQSBatchResponse") or {}
        function = str(context.get("functionArn", "?")).rpartition(":")[2]
        error = (document.get("responseContext") or {}).get("functionError")
        reason = (f"{function} gave up on a batch of {batch.get('batchSize', '?')}: {context['condition']} after "
                  f"{context.get('approximateInvokeCount', '?')} invocation(s)" + (f", {error}" if error else ""))
        subject = f"{function} {batch.get('startSequenceNumber', '?')}..{batch.get('endSequenceNumber', '?')}"
        return QueuedMessage(frozenset({"stream_batch_discarded"}), reason, subject)
    if document.get("order_key") and document.get("source"):
        return QueuedMessage(frozenset({"review_not_taken"}),
                             f"review message {document['source']}/{document.get('reason')} not taken in",
                             str(document["order_key"]))
    return QueuedMessage(frozenset({"unreadable"}), f"unknown message: {body[:120]!r}", "?")


def explained_categories(kinds: Iterable[str]) -> frozenset[str]:
    categories: set[str] = set()
    for kind in kinds:
        categories |= FAULT_EXPLAINS.get(kind, frozenset({kind}))
    return frozenset(categories)


def peek_messages(sqs, url: str, limit: int = PEEK_LIMIT) -> list[dict]:
    """Up to `limit` messages of the queue, left in it: received with a visibility timeout (so one pass
    sees each once), then made visible again at once."""
    seen: dict[str, dict] = {}
    handles: list[str] = []
    try:
        while len(seen) < limit:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                           WaitTimeSeconds=0, AttributeNames=["All"],
                                           MessageAttributeNames=["All"]).get("Messages", [])
            fresh = [message for message in messages if message["MessageId"] not in seen]
            handles.extend(message["ReceiptHandle"] for message in messages)
            if not fresh:
                break
            seen.update((message["MessageId"], message) for message in fresh)
    finally:
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                       for index, handle in enumerate(handles[start:start + 10])]
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    return list(seen.values())


def _depth(sqs, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


def check_queues(stack, explained_by: Iterable[str], limit: int) -> CheckResult:
    findings = _Findings("queues", limit)
    sqs = stack.client("sqs")
    kinds = sorted(set(explained_by))
    allowed = explained_categories(kinds)
    counts: dict = {}
    for logical_id, role in failure_queues(stack.template).items():
        url = stack.ref(logical_id)
        depth = _depth(sqs, url)
        counts[logical_id] = depth
        if depth == 0:
            continue
        messages = peek_messages(sqs, url)
        reasons: Counter = Counter()
        for message in messages:
            read = classify_message(message.get("Body", ""))
            reasons.update(read.categories)
            unexplained = sorted(read.categories - allowed)
            if unexplained:
                why = ("no faults were injected" if not kinds
                       else f"{', '.join(unexplained)} not explained by the injected {', '.join(kinds)}")
                orders = [read.subject] if read.subject.count("#") == 2 and " " not in read.subject else []
                findings.add("unexplained", logical_id, f"{read.subject}: {read.reason} ({why})", orders)
        counts[f"{logical_id}_reasons"] = dict(sorted(reasons.items()))
        if depth > len(messages):
            findings.add("unread", logical_id, f"{depth - len(messages)} message(s) beyond the {len(messages)} read "
                                               f"could not be checked ({role})")
    return findings.result(counts)


# The audit ----------------------------------------------------------------------------------------


def audit(expected_orders: Iterable | Mapping | None = None, *, stack, explained_by: Iterable[str] = (),
          limit: int = DEFAULT_LIMIT, checks: Iterable[str] = CHECKS) -> AuditReport:
    """Audit the end state of the stack (`omsdev.localcloud.provision.Stack`, e.g. `LocalCloud.stack`).

    `expected_orders`: the orders the simulators created - SimulatedShops (their books), ExpectedOrders,
    order keys, or a mapping key -> updated_at; None: only the counts and the duplicate checks of `orders`.
    `explained_by`: the fault kinds injected in the scenario (`FAULT_EXPLAINS`); empty: no DLQ message is
    expected. `limit`: concrete violations kept per check (all are counted).
    """
    wanted = [name for name in CHECKS if name in set(checks)]
    expected = _expected_orders(expected_orders)
    state = _read_state(stack) if set(wanted) & {"orders", "stock", "holds"} else None
    results = []
    for name in wanted:
        if name == "orders":
            results.append(check_orders(state, expected, limit))
        elif name == "stock":
            results.append(check_stock(state, limit))
        elif name == "holds":
            results.append(check_holds(state, limit))
        else:
            results.append(check_queues(stack, explained_by, limit))
    return AuditReport(tuple(results))
