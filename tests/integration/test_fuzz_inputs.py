"""Every input the system takes from outside, fuzzed (issue 8): each gives a clear error (or does what a
valid input does), never a crash, a server error or a half-done change.

- The buyers' public endpoint `POST /verifications/{id}` through the local cloud's API Gateway front:
  ids and bodies of every kind (wrong types, huge, non-JSON, injection-looking, the code missing or
  not six digits) always get a 4xx with a JSON body - 404 for a well-formed unknown id - never a 5xx,
  and a real, open verification is left exactly as it was (the right code still works afterwards).
- The scheduled poller's and the feed's events (`ScheduledPollEvent`, `FeedEvent`): a known channel /
  source or a validation error naming the field.
- `oms inventory load` files (`load_inventory` with the real tables behind it): mutated sample CSVs and
  raw bytes are either loaded whole, every write accepted by the store, or refused with per-row
  reasons (`FILE:LINE: reason`) and nothing written.
- The risk rules document (`parse_rule_set`): a usable rule set or a ValueError naming the rule and field.

The reviewer API needs nothing here: tests/integration/test_review_api_properties.py runs schemathesis
over every operation of the committed OpenAPI document, GET /kpis and its query included.

Reproducible in CI: derandomized, no example database, no deadline. The `test_regression_*` tests are
the defects found here (in code outside the normalizers), one example each.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oms.domain.risk import DEFAULT_RULES, FACTS, RiskFacts, RiskRuleSet, evaluate, parse_rule_set
from oms.services.inventory_load import (
    InventoryLoadPorts,
    LoadCompleted,
    LoadRejected,
    RejectedFile,
    load_inventory,
    parse_inventory_csv,
)
from oms.services.verify import code_hash, verification_id
from oms.settings import get_settings
from pydantic import ValidationError

from tests.integration.conftest import serving_api
from tests.unit.test_fuzz_normalizers import INJECTIONS, NASTY_TEXT, json_values

FUZZ = {"derandomize": True, "database": None, "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                  HealthCheck.function_scoped_fixture]}
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "docs" / "samples"


@pytest.fixture(scope="module")
def cloud():
    """One local cloud for the file, serving the template's API routes on a free port."""
    with serving_api() as local:
        yield local


# POST /verifications/{id} --------------------------------------------------------------------

CODE = "482913"


@pytest.fixture(scope="module")
def open_verification(cloud):
    """A sent, open verification of an order (stored the way the risk engine stores one): its id."""
    from oms.adapters.secrets import secret_text
    from oms.adapters.verifications_table import VerificationsTable

    settings = get_settings()
    key = secret_text(settings.verification_key_secret).encode()
    vid = verification_id(key, f"taobao#fuzz#{uuid.uuid4().hex}")
    store = VerificationsTable(settings.verifications_table)
    now = datetime.now(UTC)
    assert store.create(vid, f"taobao#fuzz#{vid}", code_hash(key, vid, CODE), now + timedelta(hours=1), 5, "aliyun",
                        "138****0000", now)
    assert store.mark_sent(vid, "fuzz-message")
    return vid


def _verification_item(vid: str) -> dict:
    from oms.adapters import aws

    return aws.client("dynamodb").get_item(TableName=get_settings().verifications_table,
                                           Key={"verification_id": {"S": vid}}, ConsistentRead=True)["Item"]


def _is_code_submission(body: bytes) -> bool:
    """A body the endpoint accepts as a code: it would rightly use one of the verification's attempts."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return (isinstance(document, dict) and set(document) == {"code"} and isinstance(document["code"], str)
            and re.fullmatch(r"[0-9]{6}", document["code"]) is not None)


well_formed_ids = st.text("0123456789abcdef", min_size=32, max_size=32)
verification_ids = st.one_of(
    well_formed_ids,
    st.text(max_size=40),
    st.sampled_from(NASTY_TEXT),
    st.text("0123456789abcdefABCDEF", min_size=31, max_size=33),
    st.sampled_from(["A" * 5000, "0" * 32 + "/claim", "../" * 10, "%00" * 11, "0" * 31 + "\u0660"]),
)
codes = st.one_of(
    json_values, st.sampled_from(NASTY_TEXT), st.integers(100000, 999999),
    st.sampled_from(["12345", "1234567", "１２３４５６", "123456\n", " 123456", "12345a", "1" * 1_000_000]),
)
bodies = st.one_of(
    st.text("0123456789", min_size=6, max_size=6).map(lambda code: json.dumps({"code": code}).encode()),  # well-formed
    st.binary(max_size=64),
    json_values.map(lambda value: json.dumps(value).encode()),
    codes.map(lambda code: json.dumps({"code": code}).encode()),
    st.tuples(st.text("0123456789", min_size=6, max_size=6), st.text(min_size=1, max_size=8), json_values).map(
        lambda extra: json.dumps({"code": extra[0], extra[1]: extra[2]}).encode()),  # an unknown field next to it
    st.sampled_from([b"", b"{", b"code=123456", b"\xff\xfe{}", b'{"code": "123456"', b"null", b"[]",
                     b'{"code": "' + "\udc80".encode("utf-8", "surrogatepass") + b'"}',
                     json.dumps({"code": "A" * 2_000_000}).encode()]),
    st.sampled_from(INJECTIONS).map(lambda text: json.dumps({"code": text}).encode()),
)
content_types = st.sampled_from(["application/json", "text/plain", None, "application/x-www-form-urlencoded"])


class Pacer:
    """Below the VerificationApi stage throttle (20 requests/s, burst 40), so every case reaches the function."""

    def __init__(self, per_second: float):
        self.gap, self.last = 1 / per_second, 0.0

    def wait(self) -> None:
        delay = self.last + self.gap - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.last = time.monotonic()


def test_any_verification_request_gets_a_4xx_with_json_and_never_changes_a_verification(cloud, open_verification):
    before = _verification_item(open_verification)
    pacer, tried, unknown_ids = Pacer(15), [], []

    @settings(max_examples=200, **FUZZ)
    @given(vid=st.one_of(verification_ids, st.just(open_verification)), body=bodies, content_type=content_types)
    def submit(vid, body, content_type):
        if vid == open_verification and _is_code_submission(body):
            return  # a well-formed code for the real verification is a real attempt, not bad input
        pacer.wait()
        headers = {} if content_type is None else {"Content-Type": content_type}
        # WHEN a buyer (or anyone) posts it
        path = quote(vid.encode("utf-8", "surrogatepass"), safe="")
        answer = requests.post(f"{cloud.api_url}/verifications/{path}", data=body, headers=headers, timeout=30)
        tried.append(answer.status_code)
        # THEN a 4xx with a JSON body: never a server error, never a success for bad input
        assert 400 <= answer.status_code < 500, (vid[:80], body[:80], answer.status_code, answer.text[:300])
        assert isinstance(answer.json(), dict), answer.text[:300]
        if re.fullmatch(r"[0-9a-f]{32}", vid) and _is_code_submission(body) and content_type == "application/json":
            assert (answer.status_code, answer.json()) == (404, {"status": "not_found", "attempts_left": None})
            unknown_ids.append(vid)

    submit()
    # AND the open verification is exactly as it was: no attempt used, not closed
    assert _verification_item(open_verification) == before
    # AND its right code still works
    confirmed = requests.post(f"{cloud.api_url}/verifications/{open_verification}", json={"code": CODE}, timeout=30)
    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "verified")
    # (the fuzzing reached the use-case: unknown ids with a well-formed code, and refused bodies)
    assert len(tried) > 150 and unknown_ids and 422 in tried, sorted(set(tried))


# Scheduled events --------------------------------------------------------------------------

def _events(kind: str) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((ROOT / "events" / kind).glob("*.json"))]


def _event_values(samples: list[dict], field: str):
    """Sample events, the field broken in every way, other keys added, or any JSON value at all."""
    broken_field = st.one_of(json_values, st.sampled_from(NASTY_TEXT), st.sampled_from(
        [value.upper() for event in samples for value in event.values()] + [f" {samples[0][field]}",
                                                                            f"{samples[0][field]}\x00", "A" * 100_000]))
    return st.one_of(
        json_values,
        st.builds(lambda event, value: {**event, field: value}, st.sampled_from(samples), broken_field),
        st.builds(lambda event, extra: {**extra, **event}, st.sampled_from(samples),
                  st.dictionaries(st.text(max_size=8), json_values, max_size=3)),
        st.sampled_from(samples).map(lambda event: {}),
    )


@pytest.mark.parametrize(("kind", "field", "model"), [("poller", "channel", "ScheduledPollEvent"),
                                                      ("feeds", "source", "FeedEvent")])
@settings(max_examples=300, **FUZZ)
@given(data=st.data())
def test_a_scheduled_event_is_a_known_target_or_a_validation_error_naming_the_field(kind, field, model, data):
    handler = __import__(f"{kind}.handler", fromlist=[model])
    event_model = getattr(handler, model)
    known = {event[field] for event in _events(kind)}
    event = data.draw(_event_values(_events(kind), field), label="event")
    as_json = data.draw(st.booleans(), label="as_json")  # the Scheduler's Input text, or the parsed event
    try:
        if as_json:
            parsed = event_model.model_validate_json(json.dumps(event).encode("utf-8", "surrogatepass"))
        else:
            parsed = event_model.model_validate(event)
    except ValidationError as error:
        # THEN a clear error: which field, and why
        assert error.errors() and all(problem["msg"] for problem in error.errors())
        assert any(problem["loc"] in ((), (field,)) for problem in error.errors()), error.errors()
        return
    assert getattr(parsed, field) in known


# oms inventory load ------------------------------------------------------------------------

SAMPLE_FILES = {path.name: path.read_bytes() for path in sorted(SAMPLES.glob("*.csv"))}


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _csv(rows: list[list[str]], newline: str) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=newline).writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


# Cells as spreadsheets and hand edits break them. (Keys stay under 600 characters and numbers under 31
# digits here: longer ones are the known defects below.)
bad_cells = st.one_of(
    st.sampled_from(NASTY_TEXT), st.text(max_size=10),
    st.sampled_from(["-1", "1.5", "1e3", "１２", " 7 ", "0x10", "9" * 30, "", "WH#1", "CN/", "CN/a/b", "cn", "XX;;",
                     "*", "TAOBAO", "=1+1", "@SUM(A1)", "\"quoted\"", "a,b", "line\nbreak", "X" * 600]),
)


@st.composite
def inventory_files(draw) -> list[tuple[str, bytes]]:
    """One to three sample files, each possibly broken: cells replaced, rows cut or doubled, columns
    added or dropped, bytes that are not UTF-8, cut anywhere, a BOM, another line ending."""
    names = draw(st.lists(st.sampled_from(sorted(SAMPLE_FILES)), min_size=1, max_size=3, unique=True))
    files = []
    for name in names:
        rows = _rows(SAMPLE_FILES[name])
        for _ in range(draw(st.integers(0, 4))):
            row = draw(st.integers(0, len(rows) - 1))
            mutation = draw(st.sampled_from(["cell", "cell", "drop_row", "double_row", "add_cell", "drop_cell"]))
            if mutation == "cell" and rows[row]:
                rows[row][draw(st.integers(0, len(rows[row]) - 1))] = draw(bad_cells)
            elif mutation == "drop_row" and len(rows) > 1:
                del rows[row]
            elif mutation == "double_row":
                rows.insert(row, list(rows[row]))
            elif mutation == "add_cell":
                rows[row].append(draw(bad_cells))
            elif rows[row]:
                rows[row].pop()
        data = _csv(rows, draw(st.sampled_from(["\n", "\r\n", "\r"])))
        byte_damage = draw(st.sampled_from(["none", "none", "cut", "insert", "bom", "random"]))
        if byte_damage == "cut":
            data = data[: draw(st.integers(0, len(data)))]
        elif byte_damage == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:]
        elif byte_damage == "bom":
            data = b"\xef\xbb\xbf" + data
        elif byte_damage == "random":
            data = draw(st.binary(max_size=200))
        files.append((f"{uuid.uuid4().hex[:6]}-{name}", data))
    return files


class Recorded:
    """An adapter whose writes are recorded (then made for real): proof that a refused load wrote nothing."""

    def __init__(self, adapter, writes: list):
        self._adapter, self._writes = adapter, writes

    def __getattr__(self, name):
        method = getattr(self._adapter, name)
        if name in ("put", "set_on_hand"):
            def write(*args):
                self._writes.append((name, args))
                return method(*args)
            return write
        return method


def test_an_inventory_load_is_refused_with_row_reasons_and_no_write_or_loaded_whole(cloud):
    from oms.adapters.inventory_table import InventoryTable
    from oms.adapters.sku_map_table import SkuMapTable
    from oms.adapters.warehouses_table import WarehousesTable

    settings_ = get_settings()
    tables = (WarehousesTable(settings_.warehouses_table), InventoryTable(settings_.inventory_table),
              SkuMapTable(settings_.sku_map_table))
    outcomes = []

    @settings(max_examples=200, **FUZZ)
    @given(files=inventory_files())
    def load(files):
        writes: list = []
        ports = InventoryLoadPorts(*(Recorded(table, writes) for table in tables))
        # WHEN the files are loaded (into the real tables)
        outcome = load_inventory(files, ports)
        outcomes.append(type(outcome).__name__)
        if isinstance(outcome, LoadRejected):
            # THEN either refused: every reason names its file and line, and nothing at all was written
            assert outcome.errors and writes == []
            lines = {name: data.count(b"\n") + data.count(b"\r") + 2 for name, data in files}
            for error in outcome.errors:
                assert error.file in lines and 1 <= error.line <= lines[error.file] and error.reason.strip()
                assert re.match(rf"^{re.escape(error.file)}:\d+: \S", str(error))
        else:
            # ... or loaded whole: every record of every file written, each write accepted by the store
            assert isinstance(outcome, LoadCompleted)
            assert len(writes) == sum(loaded.written for loaded in outcome.files)
            assert {loaded.file for loaded in outcome.files} == {name for name, _ in files}

    load()
    assert {"LoadRejected", "LoadCompleted"} <= set(outcomes)  # the fuzzing reached both outcomes


def test_regression_a_number_of_thousands_of_digits_is_a_row_error():
    outcome = parse_inventory_csv("stock.csv", b"warehouse_id,sku,on_hand\nWH-A,SKU-1," + b"9" * 5000 + b"\n")
    assert [str(error) for error in outcome.errors][0].startswith("stock.csv:2: on_hand")


def test_regression_a_number_beyond_what_the_store_holds_is_a_row_error():
    outcome = parse_inventory_csv("stock.csv", b"warehouse_id,sku,on_hand\nWH-A,SKU-1," + b"9" * 40 + b"\n")
    assert isinstance(outcome, RejectedFile)


def test_regression_a_key_too_long_to_store_is_a_row_error_and_nothing_is_written(cloud):
    from oms.adapters.inventory_table import InventoryTable
    from oms.adapters.sku_map_table import SkuMapTable
    from oms.adapters.warehouses_table import WarehousesTable

    settings_, writes = get_settings(), []
    ports = InventoryLoadPorts(Recorded(WarehousesTable(settings_.warehouses_table), writes),
                               Recorded(InventoryTable(settings_.inventory_table), writes),
                               Recorded(SkuMapTable(settings_.sku_map_table), writes))
    long_id = "W" * 3000
    files = [("sku_map.csv", SAMPLE_FILES["sku_map.csv"]),
             ("warehouses.csv", f"warehouse_id,name,regions,daily_capacity\n{long_id},Far,CN,10\n".encode())]
    outcome = load_inventory(files, ports)  # raises a ClientError (ValidationException) from the second file
    assert isinstance(outcome, LoadRejected) and writes == []


# A refused order's payload ------------------------------------------------------------------

def test_regression_a_payload_too_large_for_a_row_can_be_quarantined(cloud):
    # It was kept on the row: over 400 KB compressed, the write failed (ValidationException) and its window
    # with it, on every retry. How it is kept instead: tests/integration/test_quarantine_payloads.py.
    import os

    from oms.adapters.quarantine_table import QuarantineTable

    # GIVEN a payload the normalizer refuses as too large (1.2 MB of incompressible text)
    raw = {"orderId": "318765400001", "orderRemark": os.urandom(600_000).hex()}
    # WHEN it is quarantined THEN it is kept, to be replayed after a fix
    quarantine = QuarantineTable(get_settings().quarantine_table)
    key = quarantine.quarantine(channel="jd", shop_id="fuzz", channel_order_id="318765400001",
                                reason="order: too large", raw=raw)
    assert quarantine.raw_payload(quarantine.get(key)) == raw


# The risk rules document --------------------------------------------------------------------

RULES_DOCUMENT = json.loads(DEFAULT_RULES.model_dump_json())
rule_values = st.one_of(
    json_values, st.sampled_from(NASTY_TEXT),
    st.sampled_from(["15", "0.6", "-1", "1.5", "1e30", "NaN", "Infinity", "1e400", 1e400, "٣", "0x10", 10**30]),
    st.sampled_from(["buyer_orders", "order_total", "nope", ">", "=>", "verify", "block", "deny", "seed-2", 0, 24,
                     25 * 90 * 24, "a" * 63, "a" * 64, "A-rule", "-rule", "rule id"]),
)


@st.composite
def rule_documents(draw) -> str:
    """The shipped rules as a document, broken in one to four places (or replaced by any JSON, or not JSON)."""
    from tests.unit.test_fuzz_normalizers import mutated

    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "values", "json", "text"]))
    if kind == "json":
        return json.dumps(draw(json_values))
    if kind == "text":
        return draw(st.one_of(st.text(max_size=40), st.sampled_from(NASTY_TEXT),
                              st.just(json.dumps(RULES_DOCUMENT)[: draw(st.integers(0, 200))])))
    document = draw(mutated([RULES_DOCUMENT]))
    if kind == "values" and isinstance(document, dict):
        rule = draw(st.sampled_from(["rules.0.when.0", "rules.1.when.0", "rules.0", "rules.1"]))
        target = document
        for part in rule.split("."):
            target = target[int(part)] if isinstance(target, list) and part.isdigit() and len(target) > int(part) \
                else target.get(part, {}) if isinstance(target, dict) and not part.isdigit() else {}
        if isinstance(target, dict):
            target[draw(st.sampled_from(["value", "op", "fact", "window_hours", "id", "action", "label"]))] = \
                draw(rule_values)
    return json.dumps(document)


facts = st.builds(RiskFacts, st.fixed_dictionaries({name: st.one_of(st.none(), st.integers(0, 10**6))
                                                    for name in (*FACTS, "buyer_orders_24h")}))


@settings(max_examples=600, **FUZZ)
@given(text=rule_documents(), order_facts=facts)
def test_a_rules_document_is_a_usable_rule_set_or_an_error_naming_rule_and_field(text, order_facts):
    try:
        rules = parse_rule_set(text)
    except ValueError as error:
        # THEN a clear error: what is wrong, and where (`rules.0.when.0.op: ...`, or the document itself)
        message = str(error)
        assert message.startswith("risk rules are invalid: ")
        assert re.match(r"^risk rules are invalid: ([\w.]+|document): \S", message), message
        return
    # ... or a rule set the engine can use as it is
    assert isinstance(rules, RiskRuleSet)
    for hours in rules.windows():
        assert rules.count_cap(hours) >= 2
    assert evaluate(rules, order_facts).action in ("allow", "verify", "review", "block")


def test_regression_a_rule_value_of_absurd_magnitude_is_refused():
    document = {"rules": [{"id": "huge", "action": "verify",
                           "when": [{"fact": "buyer_orders", "op": ">", "value": "1e1000000"}]}]}
    with pytest.raises(ValueError, match=r"rules\.0\.when\.0\.value"):
        parse_rule_set(json.dumps(document))
