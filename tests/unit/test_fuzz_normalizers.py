"""Every channel normalizer, fuzzed (issue 8): whatever JSON a platform sends, an order comes out valid or
is refused with a clear reason - never another exception, never a record lost on the way to storage.

Inputs are built from the channels' real sample shapes (shared/channels/*_synthetic.json), mutated the
way broken payloads are broken: fields removed, strings truncated, values of the wrong type, huge
strings / numbers / lists, NaN and infinities, bytes that were not UTF-8 (decoded leniently as
surrogates or as Latin-1 mojibake), injection-looking text and Unicode edge cases; plus arbitrary
JSON values and mutated whole list responses. Mutations of real shapes reach far deeper into a
normalizer than random dictionaries do.

The contract checked for every input:
- `normalize` returns a CanonicalOrder that re-validates from its stored form, keyed
  `channel#shop#order_id_of(raw)`, with decimal-string money, UTC `Z` times, whole quantities >= 0,
  and small enough to store (valid UTF-8, within MAX_ORDER_BYTES);
- or it raises MalformedOrderError with a short, non-empty, UTF-8 reason naming what is wrong, keyed by
  the same `order_id_of(raw)` the quarantine uses (which never raises and is short enough to key a row);
- a page mixing good and broken orders through the ingest path (`ingest_window`, with in-memory
  repositories that refuse what DynamoDB would refuse) stores every good one and quarantines every
  other one with its reason.

Reproducible in CI: derandomized, no example database, no deadline. The regression tests after the
properties are the defects the fuzzing found, one example each.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oms.domain.order import (
    MAX_ORDER_BYTES,
    MAX_ORDER_ID_CHARS,
    MAX_REASON_CHARS,
    CanonicalOrder,
    MalformedOrderError,
    OrderStatus,
    version_stamp,
)
from oms.domain.polling import PollWindow
from oms.normalizers import SUPPORTED, normalizer_for
from oms.normalizers._order_parts import ResponseShapeError
from oms.ports import KnownRecord, SaveResult
from oms.services.ingest import QUARANTINED, IngestPorts, ingest_window

from tests.unit.normalize_helpers import synthetic_document, synthetic_records

SHOP = "fuzz-shop"
FUZZ = {"derandomize": True, "database": None, "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

# Text a broken or hostile payload carries.
NASTY_TEXT = (
    "", " ", "\u3000", "\t\n", "\x00", "\udc80", "\ud800x", "abc\udcff",
    b"\xe4\xb8\xad\xe5\x9b\xbd".decode("latin-1"),  # 中国 read as Latin-1
    b"\xff\xfe\xfa".decode("utf-8", "surrogateescape"),
    "'; DROP TABLE orders; --", "\" OR 1=1 --", "<script>alert(1)</script>", "{{7*7}}", "${jndi:ldap://x/a}",
    '{"order_id": "1"}', "[1,2]", "null", "NaN", "-Infinity", "1e5", "-0", "0x1F", "1_000", "１２３", "²",
    "12,50", " 12.50 ", "+5", ".5", "5.", "#", "a#b", "\u202etxt", "e\u0301", "🙂", "\ufeff1", "%s%n",
    "../../etc/passwd", "2026-03-14 08:12:45", "2026-03-14T08:12:45Z", "2026-02-30 10:00:00",
    "9999-12-31 23:59:59", "0001-01-01 00:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
    "2026-03-14T08:12:45", "CN", "cn", "中国", "USD", "usd",
    "9" * 28, "9" * 29, "1" * 26 + ".5", "0." + "0" * 40 + "1",  # amounts at the edge of decimal precision
)
INJECTIONS = NASTY_TEXT[12:22]
HUGE_TEXT = "A" * 500_000
EDGE_INTEGERS = (0, -1, 1, 2**31, 2**53 + 1, 2**63, -(2**63), 10**27, 10**28, 10**30, 10**40, int("9" * 4300))
EDGE_FLOATS = (float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324, 59.9, 0.1, 1e21)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(EDGE_INTEGERS),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(EDGE_FLOATS),
    st.text(max_size=12), st.sampled_from(NASTY_TEXT),
)
# Any JSON-like value (what a parsed body can hold), nested a few levels.
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _places(value: object, prefix: tuple = ()):
    """Every place (a path of keys and indexes) inside a JSON-like value."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield (*prefix, key)
        yield from _places(inner, (*prefix, key))


def _at(value: object, place: tuple) -> object:
    for key in place:
        value = value[key]
    return value


def _not_utf8(draw, old: object) -> str:
    """`old` as text with bytes that are not UTF-8 appended, decoded the lenient ways a client might."""
    raw = (old if isinstance(old, str) else json.dumps(old, ensure_ascii=False)).encode("utf-8", "surrogatepass")
    raw += bytes(draw(st.lists(st.integers(0x80, 0xFF), min_size=1, max_size=4)))
    return draw(st.sampled_from([raw.decode("latin-1"), raw.decode("utf-8", "surrogateescape"),
                                 raw.decode("utf-8", "replace")]))


def _huge(draw, old: object) -> object:
    if isinstance(old, str):
        return draw(st.sampled_from([(old or "x") * (200_000 // max(len(old), 1)), HUGE_TEXT, old[:100] + "9" * 5000]))
    if isinstance(old, list):
        return (old[:3] or [None]) * draw(st.sampled_from([50, 2000]))
    if isinstance(old, bool):
        return old
    if isinstance(old, int):
        return draw(st.sampled_from([10**40, -(10**40), int("9" * 4300), 2**64]))
    if isinstance(old, float):
        return draw(st.sampled_from(EDGE_FLOATS[:6]))
    return draw(json_values)


def _truncated(draw, old: object) -> object:
    if isinstance(old, (str, list)):
        return old[: draw(st.integers(0, max(len(old) - 1, 0)))]
    if isinstance(old, dict):
        return dict(list(old.items())[: draw(st.integers(0, max(len(old) - 1, 0)))])
    return str(old)[:-1] or None


def _retyped(draw, old: object) -> object:
    whole = isinstance(old, int) and not isinstance(old, bool)
    digits = isinstance(old, str) and re.fullmatch(r"-?\d{1,30}", old)
    return draw(st.sampled_from([
        str(old), [old], {"value": old}, json.dumps(old, ensure_ascii=False),
        float(old) if whole and abs(old) < 10**300 else old,
        int(old) if digits else old,
        bool(old) if not isinstance(old, (dict, list)) else old,
    ]))


MUTATIONS = ("delete", "json", "null", "nasty", "truncate", "retype", "huge", "not_utf8", "inject", "donor")


@st.composite
def mutated(draw, originals: list) -> object:
    """A copy of one real record (or document) with 1-4 places broken the ways payloads break.

    `donor` puts the value another original holds at the same place there (status combinations the
    samples do not show, ids of other orders); every other mutation is a kind of breakage.
    """
    value = copy.deepcopy(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 4))):
        places = list(_places(value))
        if not places:
            break
        place = draw(st.sampled_from(places))
        parent, key, old = _at(value, place[:-1]), place[-1], _at(value, place)
        mutation = draw(st.sampled_from(MUTATIONS))
        if mutation == "delete":
            del parent[key]
            continue
        if mutation == "json":
            new = draw(json_values)
        elif mutation == "null":
            new = None
        elif mutation == "nasty":
            new = draw(st.sampled_from(NASTY_TEXT))
        elif mutation == "truncate":
            new = _truncated(draw, old)
        elif mutation == "retype":
            new = _retyped(draw, old)
        elif mutation == "huge":
            new = _huge(draw, old)
        elif mutation == "not_utf8":
            new = _not_utf8(draw, old)
        elif mutation == "inject":
            injection = draw(st.sampled_from(INJECTIONS))
            new = draw(st.sampled_from([injection, f"{old}{injection}" if isinstance(old, str) else injection]))
        else:
            try:
                new = copy.deepcopy(_at(draw(st.sampled_from(originals)), place))
            except (KeyError, IndexError, TypeError):
                new = draw(json_values)
        parent[key] = new
    return value


# The checks -----------------------------------------------------------------------------------

DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d+)?$")
UTC_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z$")
CONTRACT_FIELDS = {"order_key", "channel", "shop_id", "channel_order_id", "status", "channel_status", "buyer_id",
                   "currency", "total", "lines", "ship_to", "created_at", "paid_at", "updated_at"}


def normalized_or_refused(normalizer, raw: object) -> CanonicalOrder | MalformedOrderError:
    """Normalize `raw`, check whichever of the two outcomes came, and return it. Any other exception
    propagates: that is the failure the fuzzing looks for."""
    order_id = normalizer.order_id_of(raw)  # must never raise: the quarantine keys a record by it
    assert order_id is None or (isinstance(order_id, str) and order_id.strip() == order_id
                                and 0 < len(order_id) <= MAX_ORDER_ID_CHARS), order_id
    try:
        order = normalizer.normalize(raw, SHOP)
    except MalformedOrderError as error:
        assert_clear_refusal(error, order_id)
        return error
    assert_valid_order(normalizer, order, order_id)
    return order


def assert_clear_refusal(error: MalformedOrderError, order_id: str | None) -> None:
    assert isinstance(error.reason, str) and error.reason.strip(), "a refusal without a reason"
    assert len(error.reason) <= MAX_REASON_CHARS, len(error.reason)
    error.reason.encode("utf-8")  # stored with the quarantined payload
    # Every refusal says what is wrong; the catch-all for unforeseen shapes is not a clear error.
    assert not error.reason.startswith("unreadable order"), error.reason
    assert error.channel_order_id == order_id


def assert_valid_order(normalizer, order: CanonicalOrder, order_id: str | None) -> None:
    assert isinstance(order, CanonicalOrder)
    stored = order.stored_dict()
    assert CanonicalOrder.model_validate(stored) == order  # the stored form re-validates to the same order
    contract = order.contract_dict()
    assert set(contract) == CONTRACT_FIELDS
    assert order.channel == normalizer.CHANNEL and order.shop_id == SHOP
    assert order_id is not None and order.channel_order_id == order_id
    assert order.order_key == f"{normalizer.CHANNEL}#{SHOP}#{order_id}"
    assert contract["status"] in {status.value for status in OrderStatus}
    assert re.fullmatch(r"[A-Z]{3}", contract["currency"])
    assert DECIMAL_TEXT.match(contract["total"]), contract["total"]
    for line in contract["lines"]:
        assert DECIMAL_TEXT.match(line["unit_price"]), line["unit_price"]
        assert type(line["quantity"]) is int and line["quantity"] >= 0
        assert isinstance(line["line_id"], str) and line["line_id"]
    assert contract["ship_to"]["country"] is None or re.fullmatch(r"[A-Z]{2}", contract["ship_to"]["country"])
    for moment in (contract["created_at"], contract["paid_at"], contract["updated_at"]):
        assert moment is None or UTC_TEXT.match(moment), moment
    body = json.dumps(stored, ensure_ascii=False).encode("utf-8")  # surrogates would raise here
    assert len(body) <= MAX_ORDER_BYTES + 1024  # the model's bound, give or take JSON spacing


def records_of(channel: str) -> tuple:
    normalizer = normalizer_for(channel)
    return normalizer, synthetic_records(normalizer)


# Properties -----------------------------------------------------------------------------------

@pytest.mark.parametrize("channel", SUPPORTED)
@settings(max_examples=300, **FUZZ)
@given(data=st.data())
def test_a_mutated_real_order_becomes_a_valid_order_or_a_reasoned_refusal(channel, data):
    # GIVEN one of the channel's real orders, broken in one to four places
    normalizer, records = records_of(channel)
    raw = data.draw(mutated(records), label="raw")
    # WHEN it is normalized THEN it is a valid canonical order or a clear refusal, nothing else
    normalized_or_refused(normalizer, raw)


@pytest.mark.parametrize("channel", SUPPORTED)
@settings(max_examples=60, **FUZZ)
@given(raw=json_values)
def test_any_json_value_is_refused_with_a_reason(channel, raw):
    # GIVEN any JSON value at all in place of an order WHEN normalized THEN a refusal or (by chance) an order
    normalized_or_refused(normalizer_for(channel), raw)


@pytest.mark.parametrize("channel", SUPPORTED)
@settings(max_examples=60, **FUZZ)
@given(data=st.data())
def test_a_broken_list_response_is_refused_whole_or_split_into_orders_each_valid_or_refused(channel, data):
    # GIVEN the channel's saved list response, broken in one to four places
    normalizer = normalizer_for(channel)
    document = data.draw(mutated([synthetic_document(channel)]), label="document")
    # WHEN it is split into order records
    try:
        records = normalizer.split_response(document)
    except ResponseShapeError as error:
        assert str(error).strip()  # THEN either the whole response is refused with what it should look like
        return
    # ... or each record it yields is an order or a refusal
    assert isinstance(records, list)
    for raw in records:
        normalized_or_refused(normalizer, raw)


# The batch property, through the ingest path ------------------------------------------------

WINDOW = PollWindow(datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC))
DYNAMODB_ITEM_BYTES = 400 * 1024
DYNAMODB_KEY_BYTES = 2048


class PagesClient:
    """A channel client that serves the given pages (what the channel adapters yield)."""

    pages_in_update_order = False

    def __init__(self, channel: str, pages: list[list]):
        self.channel, self._pages = channel, pages

    def fetch_window(self, window, known=None, **kwargs):
        yield from self._pages


class StrictOrders:
    """Orders in memory, refusing what the Orders table would: a key over 2048 bytes, an item over
    400 KB, text that is not UTF-8. Saves by version as the conditional writes do."""

    def __init__(self):
        self.stored: dict[str, int] = {}

    def save(self, order: CanonicalOrder, raw: dict) -> SaveResult:
        assert len(order.order_key.encode("utf-8")) <= DYNAMODB_KEY_BYTES
        item = json.dumps(order.stored_dict(), ensure_ascii=False).encode("utf-8")
        assert len(item) <= DYNAMODB_ITEM_BYTES
        json.dumps(raw)  # the payload is kept beside it
        stamp, known = version_stamp(order), self.stored.get(order.order_key)
        if known is None:
            self.stored[order.order_key] = stamp
            return SaveResult.CREATED
        if stamp <= known:
            return SaveResult.DUPLICATE if stamp == known else SaveResult.STALE
        self.stored[order.order_key] = stamp
        return SaveResult.UPDATED

    def stored_versions(self, order_keys):
        return {key: self.stored[key] for key in order_keys if key in self.stored}


class SentReviews:
    """The review queue: what ingest sent."""

    def __init__(self):
        self.sent: list = []

    def send(self, message) -> None:
        self.sent.append(message)


class StrictQuarantine:
    """Quarantined payloads in memory, refusing a row DynamoDB would refuse (key, reason, payload)."""

    def __init__(self):
        self.rows: list[dict] = []

    def quarantine(self, *, channel, shop_id, channel_order_id, reason, raw) -> str:
        key = f"{channel}#{shop_id}#{channel_order_id or 'unknown#digest'}"
        assert len(key.encode("utf-8")) <= DYNAMODB_KEY_BYTES
        assert reason.strip() and len(reason.encode("utf-8")) <= 4 * MAX_REASON_CHARS
        json.dumps(raw)  # escaped JSON carries any text, lone surrogates included
        self.rows.append({"channel_order_id": channel_order_id, "reason": reason, "raw": raw, "key": key})
        return key

    def open_among(self, order_keys):
        return {row["key"] for row in self.rows if row["key"] in order_keys and not row.get("settled")}

    def mark_replayed(self, item_id, outcome):
        for row in self.rows:
            if row["key"] == item_id:
                row["settled"] = outcome


@pytest.mark.parametrize("channel", SUPPORTED)
@settings(max_examples=40, **FUZZ)
@given(data=st.data())
def test_a_page_of_good_and_broken_orders_stores_every_good_one_and_quarantines_every_other(channel, data):
    # GIVEN pages mixing the channel's real orders with broken ones (every record an object, as listed)
    normalizer, records = records_of(channel)
    broken = st.one_of(mutated(records), st.dictionaries(st.text(max_size=6), json_values, max_size=4))
    page_records = st.one_of(st.sampled_from(records).map(copy.deepcopy), broken)
    pages = data.draw(st.lists(st.lists(page_records, min_size=1, max_size=6), min_size=1, max_size=3),
                      label="pages")
    outcomes = [(raw, normalized_or_refused(normalizer, copy.deepcopy(raw))) for page in pages for raw in page]
    orders, quarantine = StrictOrders(), StrictQuarantine()
    # WHEN the ingest path reads the window
    counts = ingest_window(PagesClient(channel, pages), SHOP, WINDOW,
                           IngestPorts(orders=orders, quarantine=quarantine, normalizer=normalizer))
    # THEN every record is accounted for: stored, a duplicate of a stored version, or quarantined
    assert counts.fetched == len(outcomes) == sum(counts.outcomes.values())
    refused = [(raw, outcome) for raw, outcome in outcomes if isinstance(outcome, MalformedOrderError)]
    assert counts.outcomes[QUARANTINED] == len(refused) == len(quarantine.rows)
    # ... every broken one quarantined with its reason and the id the normalizer read
    assert sorted((row["channel_order_id"] or "", row["reason"]) for row in quarantine.rows) == sorted(
        (error.channel_order_id or "", error.reason) for _, error in refused)
    # ... and every good one stored at its version or a newer one
    for _, order in outcomes:
        if isinstance(order, CanonicalOrder):
            assert orders.stored[order.order_key] >= version_stamp(order)


# Defects found outside the normalizers (ingest, adapters), one example each.

def test_regression_a_stored_version_settles_the_quarantined_broken_one_of_its_order():
    # GIVEN a Douyin order quarantined for a status outside the enum (found by oms bench peak: the order
    # was later cancelled, the cancelled version stored, and the broken one left open in quarantine)
    normalizer, records = records_of("douyin")
    good = copy.deepcopy(records[0])
    broken = {**copy.deepcopy(good), "order_status": 9}
    orders, quarantine, review = StrictOrders(), StrictQuarantine(), SentReviews()
    ports = IngestPorts(orders=orders, quarantine=quarantine, normalizer=normalizer, review=review)
    ingest_window(PagesClient("douyin", [[broken]]), SHOP, WINDOW, ports)
    assert [row.get("settled") for row in quarantine.rows] == [None]
    # WHEN a later window brings a version that normalizes
    ingest_window(PagesClient("douyin", [[good]]), SHOP, WINDOW, ports)
    # THEN it is stored and the quarantine row is settled as superseded by it
    assert len(orders.stored) == 1
    assert quarantine.rows[0]["settled"].startswith("superseded: created at version ")
    # AND the reviewers were told twice about that order: quarantined, then settled (its item closes itself)
    (key,) = orders.stored
    assert [(m.order_key, m.source, m.reason, m.settled) for m in review.sent] == [
        (key, "quarantine", "malformed_order", False), (key, "quarantine", "superseded", True)]


def test_regression_a_record_that_is_not_an_object_is_quarantined_and_the_rest_of_its_page_stored():
    normalizer, records = records_of("jd")
    good = copy.deepcopy(records[0])
    orders, quarantine = StrictOrders(), StrictQuarantine()
    ingest_window(PagesClient("jd", [[good, 42]]), SHOP, WINDOW,
                  IngestPorts(orders=orders, quarantine=quarantine, normalizer=normalizer))
    assert len(orders.stored) == 1 and len(quarantine.rows) == 1


def test_regression_a_platform_record_holding_a_known_key_is_not_dropped():
    # ingest took any record with a top-level "known": true for the client's "already stored" marker
    normalizer, records = records_of("shopify")
    raw = {**copy.deepcopy(records[0]), "known": True}  # the platform's data, not the adapter's marker
    orders, quarantine = StrictOrders(), StrictQuarantine()
    ingest_window(PagesClient("shopify", [[raw]]), SHOP, WINDOW,
                  IngestPorts(orders=orders, quarantine=quarantine, normalizer=normalizer))
    assert len(orders.stored) + len(quarantine.rows) == 1


def test_a_record_the_client_yields_as_known_is_counted_a_duplicate_without_being_read():
    # GIVEN the client's out-of-band marker around a record it did not fetch in full (it would not normalize)
    normalizer, records = records_of("shopify")
    good = copy.deepcopy(records[0])
    orders, quarantine = StrictOrders(), StrictQuarantine()
    # WHEN ingested beside a good record
    counts = ingest_window(PagesClient("shopify", [[KnownRecord({"id": "already-stored"}), good]]), SHOP, WINDOW,
                           IngestPorts(orders=orders, quarantine=quarantine, normalizer=normalizer))
    # THEN the marked one is a duplicate, neither stored nor quarantined; the good one is stored
    assert counts.outcomes[SaveResult.DUPLICATE.value] == 1 and not quarantine.rows
    assert len(orders.stored) == 1


def test_regression_a_payload_with_a_lone_surrogate_can_be_quarantined():
    from oms.adapters.quarantine_table import quarantine_id

    assert quarantine_id("jd", SHOP, None, {"orderId": "\udc80"}).startswith("jd#")


# Regressions: the defects the fuzzing found in the normalizers and the canonical order -----------

def _refusal(channel: str, change, index: int = 0) -> MalformedOrderError:
    normalizer, records = records_of(channel)
    raw = copy.deepcopy(records[index])
    change(raw)
    outcome = normalized_or_refused(normalizer, raw)
    assert isinstance(outcome, MalformedOrderError), outcome
    return outcome


def test_regression_an_integer_order_id_of_thousands_of_digits_is_refused_not_a_value_error():
    # order_id_of ran str() on it outside the reader's guard: ValueError (int max str digits) escaped
    error = _refusal("shopify", lambda raw: raw.update(id=10**4300))
    assert error.reason == ("id: an integer of about 4301 digits is longer than any order id (at most 128 characters)")
    assert error.channel_order_id is None


def test_regression_an_order_id_too_long_to_key_a_row_is_refused_and_quarantined_by_digest():
    # was accepted: the order key (DynamoDB partition key, at most 2048 bytes) could be stored neither as
    # an order nor as a quarantine row, so the window failed on every retry
    error = _refusal("jd", lambda raw: raw.update(orderId="9" * 3000))
    assert error.channel_order_id is None and "longer than any order id (at most 128 characters)" in error.reason
    assert normalizer_for("jd").order_id_of({"orderId": "9" * 3000}) is None
    amazon = _refusal("amazon", lambda raw: raw["order"].update(AmazonOrderId="A" * 129))
    assert amazon.reason.startswith("order.AmazonOrderId: 'AAAA") and amazon.channel_order_id is None


def test_regression_a_lone_surrogate_in_a_name_makes_the_order_malformed_not_unstorable():
    # was a valid order whose store failed (UTF-8 cannot encode it), failing the window on every retry
    error = _refusal("shopify", lambda raw: raw["shipping_address"].update(name="Ren\udce9e"))
    assert error.reason.startswith("ship_to.name: Value error, not valid Unicode text: a lone surrogate '\\udce9'")


def test_regression_an_order_id_with_a_lone_surrogate_is_no_key_and_the_payload_is_quarantined_by_digest():
    # order_id_of returned it: the quarantine row keyed by it could not be written (UTF-8), failing the window
    error = _refusal("pdd", lambda raw: raw.update(order_sn="260314-5173\udc80"))
    assert error.channel_order_id is None
    assert error.reason == ("order_sn: '260314-5173\\udc80' is not valid Unicode text "
                            "(a lone surrogate: bytes that were not UTF-8)")


def test_regression_a_huge_text_field_makes_the_order_malformed_not_too_large_to_store():
    # was a valid order of 500 KB: over DynamoDB's 400 KB item limit, its store failed on every retry
    error = _refusal("taobao", lambda raw: raw.update(receiver_address="A" * 500_000))
    assert ("more than the 131072 an order may take (its longest text: ship_to.address, 500000 characters"
            in error.reason)


def test_regression_thousands_of_lines_make_the_order_malformed_not_too_large_to_store():
    error = _refusal("shopify", lambda raw: raw.update(line_items=raw["line_items"] * 3000))
    assert "an order may take" in error.reason and "lines: 6000" in error.reason


def test_regression_a_refusal_quoting_a_huge_value_keeps_its_reason_short():
    # the reason quoted the whole value: a 1 MB status made a 1 MB reason, too large for its quarantine row
    error = _refusal("jd", lambda raw: raw.update(orderState="X" * 1_000_000))
    assert error.reason == "orderState: unknown value " + repr("X" * 60) + "... (1000000 characters)"


def test_regression_an_object_in_a_text_field_is_refused_naming_the_field():
    # was stored as the text "{'first': 'Ada'}"
    error = _refusal("shopify", lambda raw: raw["shipping_address"].update(name={"first": "Ada"}))
    assert error.reason == "shipping_address.name: expected text, got an object ({'first': 'Ada'})"
    line = _refusal("jd", lambda raw: raw["itemInfoList"][0].update(skuId=["1", "2"]))
    assert line.reason == "itemInfoList[0].skuId: ['1', '2'] is not an id"


def test_regression_a_boolean_in_a_text_field_is_refused():
    # was stored as the text "True"
    error = _refusal("kuaishou", lambda raw: raw["orderAddress"].update(encryptedConsignee=True))
    assert error.reason == "orderAddress.encryptedConsignee: expected text, got a boolean (true)"


def test_regression_an_amount_of_more_digits_than_storable_is_refused():
    # a 100-digit price was a valid order: decimal arithmetic rounds past 28 digits, DynamoDB holds 38
    error = _refusal("pdd", lambda raw: raw.update(pay_amount="1" * 100))
    assert error.reason.startswith("pay_amount: '111")
    assert error.reason.endswith("has more digits than an amount can (28)")
    assert _refusal("pdd", lambda raw: raw["item_list"][0].update(goods_count=10**40)).reason == (
        "item_list[0].goods_count: 10000000000000000000000000000000000000000 is out of range (more than 28 digits)")


def test_regression_a_large_amazon_item_price_divides_exactly_instead_of_an_unreadable_order():
    # ItemPrice / QuantityOrdered was rounded at the default 28 digits: "unreadable order: [InvalidOperation]"
    normalizer, records = records_of("amazon")
    raw = copy.deepcopy(records[0])
    raw["items"][0].update(QuantityOrdered=3, ItemPrice={"CurrencyCode": "EUR", "Amount": "1" * 26 + ".5"})
    order = normalized_or_refused(normalizer, raw)
    assert order.lines[0].unit_price == Decimal("3703703703703703703703703.8333")  # half-even, 4 places
    raw["items"][0]["ItemPrice"]["Amount"] = "1" * 30
    assert normalized_or_refused(normalizer, raw).reason.startswith("items[0].ItemPrice.Amount: '111")


def test_regression_a_time_with_no_utc_equivalent_names_its_field():
    # was "unreadable order: date value out of range"
    error = _refusal("shopify", lambda raw: raw.update(created_at="0001-01-01T00:00:00+01:00"))
    assert error.reason == "created_at: '0001-01-01T00:00:00+01:00' is out of range once converted to UTC"


def test_regression_a_count_of_thousands_of_digits_names_its_field():
    # was "unreadable order: Exceeds the limit (4300 digits) for integer string conversion ..."
    error = _refusal("douyin", lambda raw: raw.update(update_time="9" * 5000))
    assert error.reason.startswith("update_time: '999") and error.reason.endswith("out of range (more than 28 digits)")


def test_regression_a_refusal_reason_is_bounded_and_valid_utf8_whatever_it_quotes():
    error = MalformedOrderError("status: " + "\udc80" * 5000, "1")
    assert len(error.reason) <= MAX_REASON_CHARS and error.reason.startswith("status: \\udc80")
    error.reason.encode("utf-8")


def test_an_ordinary_order_is_untouched_by_the_bounds():
    # GIVEN every real sample WHEN normalized THEN each is still a valid order, its money exact
    for channel in SUPPORTED:
        normalizer, records = records_of(channel)
        for raw in records:
            assert isinstance(normalized_or_refused(normalizer, raw), CanonicalOrder)
    pdd = normalizer_for("pdd")  # JSON-number amounts keep the digits the platform sent
    totals = [pdd.normalize(raw, SHOP).total for raw in records_of("pdd")[1]]
    assert totals == [Decimal("156.8"), Decimal("49.9"), Decimal("23.8")]


def test_the_fuzz_strategies_reach_both_outcomes_for_every_channel():
    # A fuzzer that only ever produced refusals (or only orders) would prove little: GIVEN a fixed draw of
    # mutations per channel THEN some become orders and some are refused.
    seen: dict[str, set[str]] = {channel: set() for channel in SUPPORTED}

    @settings(max_examples=60, **FUZZ)
    @given(data=st.data())
    def draw(data):
        for channel in SUPPORTED:
            normalizer, records = records_of(channel)
            outcome = normalized_or_refused(normalizer, data.draw(mutated(records)))
            seen[channel].add(type(outcome).__name__)

    draw()
    assert all(kinds == {"CanonicalOrder", "MalformedOrderError"} for kinds in seen.values()), seen

