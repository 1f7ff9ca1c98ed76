"""`oms audit` against the local cloud: a clean end state passes every check; each promise broken on purpose
(an order lost, a stale or duplicated one, reserved units off by one, a cancelled order still holding units,
a held order ready to ship, a DLQ message no fault explains) fails exactly its check and names the culprit."""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from oms.adapters.orders_table import OrdersTable
from oms.adapters.retry_queue import SqsRetryQueue
from oms.adapters.risk_decisions import RiskDecisionsTable
from oms.domain.order import CanonicalOrder, format_utc
from oms.services import review
from oms.services.messages import FailedWindowMessage, WindowFailure
from oms.services.review_dependencies import review_ports
from oms.settings import get_settings
from omsdev.audit import (
    ExpectedOrder,
    audit,
    classify_message,
    classify_reason,
    expected_from_shops,
    failure_queues,
    read_expected,
    write_expected,
)
from omsdev.cli import main
from omsdev.demo import start_shop
from omsdev.localcloud.cloud import LocalCloud

from tests.integration.allocation_helpers import drain_queue, dynamodb, stock_rows, stored_image, stream_record
from tests.integration.channel_helpers import poll_shop, unique_shop_id
from tests.integration.conftest import FAST_RETRIES
from tests.integration.review_helpers import RISK_REVIEWER, allocated_order, risk_held_order, warehouses


class EndState:
    """What a small scenario left behind, with the keys a test breaks."""

    def __init__(self, cloud):
        self.cloud = cloud
        # A Shopify shop's four orders and a malformed one, polled: four stored, one quarantined.
        self.shop = start_shop("shopify", unique_shop_id("audit"))
        moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        self.shop_orders = [self.shop.generator.create(moment + timedelta(seconds=i)) for i in range(4)]
        self.malformed = self.shop.generator.create(moment + timedelta(seconds=4), malformed=True)
        counts = poll_shop(cloud, self.shop)["counts"]
        assert (counts["created"], counts["quarantined"]) == (4, 1), counts
        # Stock and orders through the engines: one allocated, one cancelled (its units given back), one held
        # by risk, one held and then released by a risk reviewer and promoted to ready_to_ship.
        warehouses()
        self.allocated = allocated_order(cloud).order_key
        self.cancelled = cancelled_order(cloud)
        self.held = risk_held_order(cloud)[0].order_key
        self.cleared = released_by_a_reviewer(cloud)

    def key(self, order_id: str) -> str:
        return f"shopify#{self.shop.shop_id}#{order_id}"

    def audit(self, **options):
        return audit([self.shop], stack=self.cloud.stack, **options)

    def stop(self) -> None:
        self.shop.simulator.stop()


def cancelled_order(cloud) -> str:
    order = allocated_order(cloud)
    before = stored_image(cloud, order.order_key)
    later = format_utc(datetime.now(UTC) + timedelta(seconds=1))
    cancelled = CanonicalOrder.model_validate({**order.model_dump(), "status": "cancelled",
                                               "channel_status": "CANCELLED", "updated_at": later})
    OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket).save(cancelled, {})
    record = stream_record(stored_image(cloud, order.order_key), event_name="MODIFY", old_image=before)
    assert cloud.invoke("AllocationFunction", {"Records": [record]}, bypass_concurrency=True)["batchItemFailures"] == []
    return order.order_key


def released_by_a_reviewer(cloud) -> str:
    order, item = risk_held_order(cloud)
    ports = review_ports(get_settings())
    review.claim_item(RISK_REVIEWER, item, ports)
    review.decide(RISK_REVIEWER, item, "release_hold", "called the buyer: a real order", ports)
    assert RiskDecisionsTable(get_settings().orders_table).promote_ready(order.order_key, datetime.now(UTC))
    return order.order_key


@pytest.fixture(scope="module")
def end_state():
    """One local cloud and end state for the module (building them is most of the time); each test breaks
    the state inside `restored`, which puts back every item it changed."""
    cloud = LocalCloud(port=0, stack_name=f"t{uuid.uuid4().hex[:8]}", parameter_overrides=FAST_RETRIES,
                       start_event_sources=False)
    cloud.start()
    try:
        state = EndState(cloud)
        yield state
        state.stop()
    finally:
        cloud.stop()


@pytest.fixture
def cloud(end_state):
    return end_state.cloud


@contextmanager
def restored(cloud, table: str, *keys: dict):
    """Put the items under `keys` back as they were (deleting those that did not exist) after the block."""
    before = [(key, dynamodb(cloud).get_item(TableName=table, Key=key, ConsistentRead=True).get("Item"))
              for key in keys]
    try:
        yield
    finally:
        for key, item in before:
            if item is None:
                dynamodb(cloud).delete_item(TableName=table, Key=key)
            else:
                dynamodb(cloud).put_item(TableName=table, Item=item)


def order_key_of(key: str) -> dict:
    return {"order_key": {"S": key}}


def stock_key(stock_id: str) -> dict:
    return {"stock_id": {"S": stock_id}, "entry": {"S": "stock"}}


def update_order(cloud, key: str, **fields: str) -> None:
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": {"S": value} for i, value in enumerate(fields.values())}
    dynamodb(cloud).update_item(TableName=get_settings().orders_table, Key={"order_key": {"S": key}},
                                UpdateExpression="SET " + ", ".join(f"{n} = {v}" for n, v in zip(names, values)),
                                ExpressionAttributeNames=names, ExpressionAttributeValues=values)


def failed_checks(report) -> list[str]:
    return [check.name for check in report.checks if not check.ok]


def dead_lettered_window(shop_id: str, reason: str) -> FailedWindowMessage:
    now = datetime.now(UTC)
    return FailedWindowMessage(channel="shopify", shop_id=shop_id, window_start=now - timedelta(minutes=10),
                               window_end=now - timedelta(minutes=5), failed_attempts=4,
                               failures=[WindowFailure(at=now, reason=reason)] * 4)


# A clean end state --------------------------------------------------------------------------------------


def test_a_clean_end_state_passes_every_check_with_its_numbers(end_state):
    # WHEN the end state of the small scenario is audited against the shop's order book
    report = end_state.audit()
    # THEN every check passes, and the numbers say what was looked at
    assert report.ok, report.lines()
    orders, stock, holds, queues = (report.check(name) for name in ("orders", "stock", "holds", "queues"))
    assert (orders.counts["expected"], orders.counts["stored"], orders.counts["quarantined"]) == (5, 4, 1)
    assert orders.counts["lost"] == orders.counts["stale"] == orders.counts["duplicates"] == 0
    assert orders.counts["expected_malformed"] == 1 and orders.counts["unexpected_stored"] == 4
    assert stock.counts["holding_reservations"] == 3  # allocated, held, cleared (the cancelled one gave back)
    assert stock.counts["reserved_units"] == stock.counts["held_units"] == 3 and stock.counts["oversold_units"] == 0
    assert holds.counts["held_in_review"] == 1 and holds.counts["cleared_by_review"] == 1
    assert holds.counts["reached_fulfilment"] == 1
    assert set(queues.counts) >= {"RetryDeadLetterQueue", "ReviewDeadLetterQueue", "AllocationFailureQueue",
                                  "RiskFailureQueue", "KpiFailureQueue"}
    # AND the report is plain data
    assert json.loads(json.dumps(report.as_dict()))["ok"] is True


def test_without_expected_orders_only_counts_and_duplicates_are_checked(end_state):
    report = audit(stack=end_state.cloud.stack, checks=("orders",))
    assert report.ok
    assert [check.name for check in report.checks] == ["orders"]
    assert "expected" not in report.check("orders").counts
    assert report.check("orders").counts["stored_total"] == 8 and report.check("orders").counts["quarantined_total"] == 1


# Each promise broken on purpose ------------------------------------------------------------------------


def test_an_order_lost_and_an_update_missed_fail_the_orders_check_naming_them(end_state, cloud):
    # GIVEN one of the shop's orders vanishes from the store, and another is stored at an older version than the
    # channel's latest (its last update missed)
    lost, missed = end_state.key(end_state.shop_orders[0]), end_state.key(end_state.shop_orders[1])
    with restored(cloud, get_settings().orders_table, order_key_of(lost), order_key_of(missed)):
        dynamodb(cloud).delete_item(TableName=get_settings().orders_table, Key=order_key_of(lost))
        update_order(cloud, missed, updated_at="2026-01-01T00:00:00Z")
        # WHEN audited
        report = end_state.audit()
    # THEN only the orders check fails, with both orders named for what happened to them
    assert failed_checks(report) == ["orders"]
    orders = report.check("orders")
    assert {(v.kind, v.key) for v in orders.violations} == {("lost", lost), ("stale", missed)}
    assert (orders.counts["lost"], orders.counts["stale"], orders.counts["stored"]) == (1, 1, 3)


def test_one_order_stored_under_two_key_forms_is_a_duplicate(end_state, cloud):
    # GIVEN a copy of a stored order under the same shop id in capitals (what a case-sensitive key lets in)
    original = end_state.key(end_state.shop_orders[2])
    shop = end_state.shop.shop_id.upper()
    copy = f"shopify#{shop}#{end_state.shop_orders[2]}"
    with restored(cloud, get_settings().orders_table, order_key_of(copy)):
        dynamodb(cloud).put_item(TableName=get_settings().orders_table, Item={
            **stored_image(cloud, original), "order_key": {"S": copy}, "shop_id": {"S": shop}})
        # WHEN audited
        report = end_state.audit()
    # THEN the orders check fails on a duplicate naming both keys, and nothing else fails
    assert failed_checks(report) == ["orders"]
    [violation] = report.check("orders").violations
    assert violation.kind == "duplicate" and set(violation.orders) == {original, copy}
    assert report.check("orders").counts["duplicates"] == 1


def test_reserved_units_off_by_one_fail_the_stock_check_naming_the_row_and_its_orders(end_state, cloud):
    # GIVEN a kettle row that holds units says one more is reserved than its reservations hold (available kept
    # consistent with it, and still under what is on hand, so only the reservations disagree)
    stock_id = next(item for item, row in sorted(stock_rows(cloud).items()) if 0 < row["reserved"] < row["on_hand"])
    with restored(cloud, get_settings().inventory_table, stock_key(stock_id)):
        dynamodb(cloud).update_item(TableName=get_settings().inventory_table, Key=stock_key(stock_id),
                                    UpdateExpression="SET reserved = reserved + :one, available = available - :one",
                                    ExpressionAttributeValues={":one": {"N": "1"}})
        # WHEN audited
        report = end_state.audit()
    # THEN only the stock check fails, on that row, with the orders holding units there
    assert failed_checks(report) == ["stock"]
    [violation] = report.check("stock").violations
    assert (violation.kind, violation.key) == ("reserved_mismatch", stock_id)
    assert violation.orders and set(violation.orders) <= {end_state.allocated, end_state.held, end_state.cleared}
    assert report.check("stock").counts["oversold_units"] == 0


def test_more_reserved_than_on_hand_counts_the_oversold_units(end_state, cloud):
    # GIVEN a recount says the row holding the units has none on the shelf any more
    stock_id, row = max(stock_rows(cloud).items(), key=lambda item_and_row: item_and_row[1]["reserved"])
    with restored(cloud, get_settings().inventory_table, stock_key(stock_id)):
        dynamodb(cloud).update_item(TableName=get_settings().inventory_table, Key=stock_key(stock_id),
                                    UpdateExpression="SET on_hand = :zero, available = :available",
                                    ExpressionAttributeValues={":zero": {"N": "0"},
                                                               ":available": {"N": str(-row["reserved"])}})
        report = end_state.audit()
    # THEN the stock check fails with every reserved unit oversold, on that row only
    assert failed_checks(report) == ["stock"]
    stock = report.check("stock")
    assert row["reserved"] > 0 and stock.counts["oversold_units"] == row["reserved"]
    assert {v.kind for v in stock.violations} == {"oversold", "negative"}
    assert {v.key for v in stock.violations} == {stock_id}


def test_a_cancelled_order_whose_reservation_still_holds_fails_the_stock_check(end_state, cloud):
    # GIVEN an allocated order is cancelled behind the engines' back (no release ever ran)
    with restored(cloud, get_settings().orders_table, order_key_of(end_state.allocated)):
        update_order(cloud, end_state.allocated, status="cancelled")
        # WHEN audited
        report = end_state.audit()
    # THEN only the stock check fails, naming the order
    assert failed_checks(report) == ["stock"]
    [violation] = report.check("stock").violations
    assert (violation.kind, violation.key) == ("holding_for_closed_order", end_state.allocated)


def test_a_held_order_ready_to_ship_fails_the_holds_check(end_state, cloud):
    # GIVEN the order held for review becomes ready to ship
    with restored(cloud, get_settings().orders_table, order_key_of(end_state.held)):
        update_order(cloud, end_state.held, fulfillment_status="ready_to_ship")
        # WHEN audited
        report = end_state.audit()
    # THEN only the holds check fails, naming it
    assert failed_checks(report) == ["holds"]
    assert [(v.kind, v.key) for v in report.check("holds").violations] == [("held_but_fulfilled", end_state.held)]


def test_a_hold_cleared_without_a_decision_fails_the_holds_check(end_state, cloud):
    # GIVEN the order held for review is cleared with neither an SMS verification nor a reviewer's decision
    with restored(cloud, get_settings().orders_table, order_key_of(end_state.held)):
        update_order(cloud, end_state.held, risk_status="cleared")
        report = end_state.audit()
    assert failed_checks(report) == ["holds"]
    assert [(v.kind, v.key) for v in report.check("holds").violations] == [("cleared_without_record", end_state.held)]


def test_dlq_messages_fail_unless_the_injected_faults_explain_them_and_stay_in_their_queues(end_state, cloud):
    # GIVEN a poll window dead-lettered after four HTTP 503s, and a stream batch the allocation gave up on
    settings = get_settings()
    SqsRetryQueue(settings.retry_queue_url, settings.retry_dlq_url).dead_letter(dead_lettered_window(
        end_state.shop.shop_id, "TransientChannelError: HTTP 503: {\"errors\": \"Service Unavailable\"}"))
    cloud.stack.client("sqs").send_message(QueueUrl=cloud.stack.ref("AllocationFailureQueue"), MessageBody=json.dumps({
        "requestContext": {"requestId": "r-1", "functionArn": "arn:aws:lambda:us-east-1:1:function:AllocationFunction",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"}, "version": "1.0",
        "DDBStreamBatchInfo": {"batchSize": 3, "startSequenceNumber": "7", "endSequenceNumber": "9"}}))
    try:
        # WHEN audited with no faults injected
        clean = end_state.audit()
        # THEN the queues check fails on both messages, with their reasons
        assert failed_checks(clean) == ["queues"]
        queues = clean.check("queues")
        assert {v.key for v in queues.violations} == {"RetryDeadLetterQueue", "AllocationFailureQueue"}
        assert queues.counts["RetryDeadLetterQueue"] == 1
        assert queues.counts["RetryDeadLetterQueue_reasons"] == {"5xx": 1}
        window = next(v for v in queues.violations if v.key == "RetryDeadLetterQueue")
        assert end_state.shop.shop_id in window.detail and "HTTP 503" in window.detail
        # AND with 5xx faults only the discarded stream batch is unexplained; with a handler crash too, nothing is
        assert {v.key for v in end_state.audit(explained_by={"5xx"}).check("queues").violations} == {
            "AllocationFailureQueue"}
        assert {v.key for v in end_state.audit(explained_by={"429", "crash"}).check("queues").violations} == {
            "RetryDeadLetterQueue"}
        assert end_state.audit(explained_by={"5xx", "crash"}).ok
        # AND reading them consumed nothing
        again = end_state.audit().check("queues").counts
        assert again["AllocationFailureQueue"] == again["RetryDeadLetterQueue"] == 1
    finally:
        drain_queue(cloud, "RetryDeadLetterQueue")
        drain_queue(cloud, "AllocationFailureQueue")


# The command --------------------------------------------------------------------------------------------


def oms_audit(cloud, *arguments: str) -> int:
    return main(["audit", *arguments, "--endpoint", cloud.endpoint, "--stack-name", cloud.stack_name])


def test_the_command_exits_0_on_a_clean_state_and_1_naming_a_lost_order_with_json(end_state, cloud, tmp_path,
                                                                                 capsys):
    # GIVEN the shop's orders written as the expectation file `oms local up` leaves behind
    expected = tmp_path / "expected.jsonl"
    assert write_expected(expected, [end_state.shop]) == 5
    assert read_expected(expected) == expected_from_shops([end_state.shop])
    # WHEN audited clean: exit 0, a line per check with OK
    assert oms_audit(cloud, "--expected", str(expected)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [["orders", "OK"], ["stock", "OK"], ["holds", "OK"],
                                                        ["queues", "OK"]]
    assert "expected 5, " in lines[0] and lines[-1] == "audit: OK"
    # WHEN an order is lost: exit 1, FAIL on the orders line, the key in the text and in the JSON
    lost = end_state.key(end_state.shop_orders[3])
    with restored(cloud, get_settings().orders_table, order_key_of(lost)):
        dynamodb(cloud).delete_item(TableName=get_settings().orders_table, Key=order_key_of(lost))
        assert oms_audit(cloud, "--expected", str(expected)) == 1
        text = capsys.readouterr().out
        assert oms_audit(cloud, "--expected", str(expected), "--json") == 1
        document = json.loads(capsys.readouterr().out)
    assert text.splitlines()[0].split()[:2] == ["orders", "FAIL"] and f"lost {lost}" in text
    assert document["ok"] is False and document["failed"] == ["orders"]
    [orders] = [check for check in document["checks"] if check["name"] == "orders"]
    assert orders["violations"] == [{"kind": "lost", "key": lost, "detail": "neither stored nor quarantined with a "
                                     "reason", "orders": [lost]}]


def test_the_command_reads_a_json_list_of_keys_and_exits_2_without_a_cloud_or_with_a_bad_file(cloud, tmp_path,
                                                                                            capsys):
    # GIVEN an expectation of one order key that was never stored
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(["shopify#nowhere#1001"]))
    assert oms_audit(cloud, "--expected", str(keys), "--json") == 1
    assert json.loads(capsys.readouterr().out)["checks"][0]["violations"][0]["key"] == "shopify#nowhere#1001"
    # AND a bad file or no cloud: exit 2 with a reason
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"order_key": "shopify#a#1"}\n{"updated_at": "2026-01-01T00:00:00Z"}\n')
    assert oms_audit(cloud, "--expected", str(bad)) == 2
    assert "entry 2" in capsys.readouterr().err
    assert main(["audit", "--endpoint", "http://127.0.0.1:9"]) == 2
    assert "no local cloud" in capsys.readouterr().err


# The parts that need no cloud --------------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "category"), [
    ("TransientChannelError: HTTP 503: {\"errors\": \"Service Unavailable\"}", "5xx"),
    ("TransientChannelError: throttled: HTTP 429 {\"errors\": \"Exceeded 2 calls per second\"}", "429"),
    ("ChannelThrottledError: isv.api-limit: App Call Limited, ban will last 1 seconds", "429"),
    ("TransientChannelError: ReadTimeout: HTTPConnectionPool(host='127.0.0.1', port=1): Read timed out.", "timeout"),
    ("TransientChannelError: broken body: ('Connection broken: IncompleteRead(10 bytes read)')", "truncated"),
    ("ClientError: An error occurred (ThrottlingException) when calling the PutItem operation", "aws"),
    ("ChannelAuthError: HTTP 401: invalid token", "auth"),
    ("ValueError: something nobody planned", "other"),
])
def test_failure_reasons_are_sorted_into_the_fault_kinds_that_explain_them(reason, category):
    assert classify_reason(reason) == category


def test_messages_are_read_by_their_shape_and_the_template_names_every_failure_queue():
    from omsdev.localcloud.cloud import DEFAULT_TEMPLATE
    from omsdev.localcloud.template import Template

    assert classify_message('{"order_key": "jd#s#1", "source": "risk", "reason": "x"}').categories == {
        "review_not_taken"}
    assert classify_message("not json").categories == {"unreadable"}
    assert set(failure_queues(Template.load(DEFAULT_TEMPLATE))) == {
        "RetryDeadLetterQueue", "ReviewDeadLetterQueue", "AllocationFailureQueue", "RiskFailureQueue",
        "KpiFailureQueue"}
    assert ExpectedOrder("a#b#c").as_dict() == {"order_key": "a#b#c"}
