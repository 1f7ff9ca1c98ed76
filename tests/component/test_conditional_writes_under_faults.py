"""Conditional writes whose answer is lost after the write ("drop_after"), through the fault proxy.

botocore retries such a write; the retry meets our own write and its condition fails, although the
write landed (see `test_fault_proxy.test_a_write_whose_answer_is_lost_comes_back_as_conditional_check_failed`).
Each test loses the answer of one named DynamoDB call of an adapter (`lose_answer`) on the real moto
server and checks that the adapter, and the use-case above it, reports what really happened: our
write counted once and reported as done, while another caller's write is still refused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from oms.adapters import aws
from oms.adapters.dynamo_codec import from_item
from oms.adapters.reservation_store import ReservationStore
from oms.adapters.review_items_table import ReviewItemsTable, review_item_id
from oms.adapters.risk_decisions import RiskDecisionsTable
from oms.adapters.verifications_table import OPEN_INDEX, VerificationsTable
from oms.domain.allocation import Shipment
from oms.domain.reservation import RELEASED
from oms.services.allocate import release_order
from oms.services.messages import ReviewMessage
from oms.services.verify import SmsVerification, VerificationPorts, confirm_code, expire_verifications, verification_id
from omsdev.localcloud.fault_proxy import FaultProxy, FaultRule, FaultRules

from tests.component.test_fault_proxy import client

SECRET = b"conditional-writes-under-faults-key"


@pytest.fixture
def proxy(moto_endpoint, monkeypatch):
    """The fault proxy in front of the moto server; every adapter built in the test reaches AWS through it."""
    with FaultProxy(moto_endpoint, FaultRules(seed=11)) as running:
        monkeypatch.setattr(aws, "client", lambda service: client(service, running.url))
        yield running


@pytest.fixture
def make_table(moto_endpoint):
    """make(prefix, hash_key, range_key=None, indexes={}) -> the name of a new table on the moto server;
    `indexes`: name -> (hash key, range key of type N), as the template's sparse indexes."""
    made = []

    def make(prefix: str, hash_key: str, range_key: str | None = None, indexes: dict | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
        types = {key: "S" for key, _ in keys}
        secondary = []
        for index, (index_hash, index_range) in (indexes or {}).items():
            types.update({index_hash: "S", index_range: "N"})
            secondary.append({"IndexName": index, "Projection": {"ProjectionType": "ALL"}, "KeySchema": [
                {"AttributeName": index_hash, "KeyType": "HASH"}, {"AttributeName": index_range, "KeyType": "RANGE"}]})
        client("dynamodb", moto_endpoint).create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in keys],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": kind} for key, kind in types.items()],
            **({"GlobalSecondaryIndexes": secondary} if secondary else {}))
        made.append(name)
        return name

    yield make
    for name in made:
        client("dynamodb", moto_endpoint).delete_table(TableName=name)


class _LosingClient:
    """An adapter's DynamoDB client whose `call`-th `method` call has its answer lost after the write."""

    def __init__(self, inner, proxy: FaultProxy, method: str, call: int):
        self._inner, self._proxy, self._method, self._call, self._seen = inner, proxy, method, call, 0

    def __getattr__(self, name: str):
        attribute = getattr(self._inner, name)
        if name != self._method:
            return attribute

        def armed(**request):
            self._seen += 1
            if self._seen == self._call:  # botocore's first attempt loses its answer, its retry does not
                operation = "".join(part.title() for part in name.split("_"))
                self._proxy.rules.set(FaultRule("dynamodb", operation, rate=1.0, kinds=("drop_after",), budget=1))
            return attribute(**request)

        return armed


def lose_answer(proxy: FaultProxy, adapter, method: str, *, call: int = 1) -> None:
    """From now on, the answer of the adapter's `call`-th `method` call (e.g. "update_item") is lost."""
    adapter._dynamodb = _LosingClient(adapter._dynamodb, proxy, method, call)


def stored(moto_endpoint: str, table: str, **key: str) -> dict:
    item = client("dynamodb", moto_endpoint).get_item(
        TableName=table, Key={name: {"S": value} for name, value in key.items()}, ConsistentRead=True).get("Item")
    return {} if item is None else from_item(item)


# -- VerificationsTable and the SMS verification use-cases ----------------------------------------------

class _Sender:
    def __init__(self):
        self.codes: list[str] = []

    def send_code(self, phone: str, code: str, link: str | None = None):
        self.codes.append(code)
        return SimpleNamespace(provider="test", message_id=f"m-{len(self.codes)}", request_id="r")


class _Clock:
    def __init__(self):
        self.moment = datetime.now(UTC)

    def now(self) -> datetime:
        return self.moment


@pytest.fixture
def verification(proxy, make_table, moto_endpoint):
    """A held order (`verifying` in an Orders table) and the verification use-cases over real tables."""
    orders = make_table("orders", "order_key")
    order_key = f"jd#shop#{uuid.uuid4().hex[:10]}"
    client("dynamodb", moto_endpoint).put_item(TableName=orders, Item={
        "order_key": {"S": order_key}, "risk_status": {"S": "verifying"}})
    sender, reviews = _Sender(), []
    ports = VerificationPorts(
        store=VerificationsTable(make_table("verifications", "verification_id",
                                            indexes={OPEN_INDEX: ("open", "expires_at")})),
        orders=RiskDecisionsTable(orders), review=SimpleNamespace(send=reviews.append),
        senders=lambda route: sender, route_of=lambda channel: "sns", secret_key=lambda: SECRET, clock=_Clock())
    order = SimpleNamespace(order_key=order_key, channel="jd", ship_to=SimpleNamespace(phone="13800138000"))
    return SimpleNamespace(ports=ports, order=order, sender=sender, reviews=reviews, orders=orders,
                           vid=verification_id(SECRET, order_key))


def test_a_verification_created_whose_answer_was_lost_sends_one_code_that_works(verification, proxy, moto_endpoint):
    # GIVEN a held order, and the answer of the verification's PutItem lost after the write
    lose_answer(proxy, verification.ports.store, "put_item")
    # WHEN its verification starts
    vid = SmsVerification(verification.ports).start(verification.order)
    # THEN one code was sent, the verification is `sent`, and that code verifies the order
    assert vid == verification.vid and proxy.rules.injected(kind="drop_after") == 1
    assert len(verification.sender.codes) == 1
    assert stored(moto_endpoint, verification.ports.store.name, verification_id=vid)["state"] == "sent"
    assert confirm_code(vid, verification.sender.codes[0], verification.ports).status == "verified"
    assert stored(moto_endpoint, verification.orders, order_key=verification.order.order_key)["risk_status"] == "cleared"


def test_a_code_submission_whose_answer_was_lost_uses_one_attempt(verification, proxy, moto_endpoint):
    # GIVEN a verification whose code was sent, and the answer of the next attempt's UpdateItem lost
    vid = SmsVerification(verification.ports).start(verification.order)
    lose_answer(proxy, verification.ports.store, "update_item")
    # WHEN the buyer types a wrong code
    outcome = confirm_code(vid, "not-the-code", verification.ports)
    # THEN it used one attempt of five, not two
    assert proxy.rules.injected(kind="drop_after") == 1
    assert (outcome.status, outcome.attempts_left) == ("wrong_code", 4)
    assert stored(moto_endpoint, verification.ports.store.name, verification_id=vid)["attempts"] == 1


def test_the_right_code_on_the_last_attempt_whose_answer_was_lost_verifies_the_order(verification, proxy,
                                                                                      moto_endpoint):
    # GIVEN a verification with four wrong codes typed, and the answer of the fifth attempt's count lost
    vid = SmsVerification(verification.ports).start(verification.order)
    assert [confirm_code(vid, "wrong", verification.ports).attempts_left for _ in range(4)] == [4, 3, 2, 1]
    lose_answer(proxy, verification.ports.store, "update_item")
    # WHEN the buyer types the right code
    outcome = confirm_code(vid, verification.sender.codes[0], verification.ports)
    # THEN it is verified (not refused as out of attempts) and the order is cleared
    assert proxy.rules.injected(kind="drop_after") == 1
    assert outcome.status == "verified"
    assert stored(moto_endpoint, verification.ports.store.name, verification_id=vid)["state"] == "verified"
    assert stored(moto_endpoint, verification.orders, order_key=verification.order.order_key)["risk_status"] == "cleared"


def test_a_code_whose_answer_was_lost_while_another_was_typed_counts_each_once(verification, proxy, moto_endpoint,
                                                                                monkeypatch):
    # GIVEN a verification whose code was sent, the answer of one attempt's count lost, and a second
    # attempt (another request of the buyer) counted after that write and before botocore's retry of it
    store = verification.ports.store
    vid = SmsVerification(verification.ports).start(verification.order)
    other = VerificationsTable(store.name)
    other._dynamodb = client("dynamodb", moto_endpoint)
    decide, counted = proxy.rules.decide, []

    def other_attempt_before_the_retry(service, operation, attempt=None):
        if operation == "UpdateItem" and proxy.rules.injected(kind="drop_after") == 1 and not counted:
            counted.append(other.use_attempt(vid, datetime.now(UTC)))
        return decide(service, operation, attempt)

    monkeypatch.setattr(proxy.rules, "decide", other_attempt_before_the_retry)
    lose_answer(proxy, store, "update_item")
    # WHEN the first attempt is counted
    attempts = store.use_attempt(vid, datetime.now(UTC))
    # THEN each attempt was counted once, in the order they landed
    assert proxy.rules.injected(kind="drop_after") == 1
    assert (attempts, counted) == (1, [2])
    assert stored(moto_endpoint, store.name, verification_id=vid)["attempts"] == 2


@pytest.mark.parametrize("ending", ["verified", "failed", "expired"])
def test_a_verification_whose_closing_answer_was_lost_settles_its_order(verification, proxy, moto_endpoint, ending):
    # GIVEN a verification whose code was sent (four wrong codes typed, for the failing one)
    ports = verification.ports
    vid = SmsVerification(ports).start(verification.order)
    if ending == "failed":
        assert [confirm_code(vid, "wrong", ports).attempts_left for _ in range(4)] == [4, 3, 2, 1]
    # WHEN the verification is closed - the right code, a fifth wrong one, the sweep past its expiry -
    # and the answer of the closing UpdateItem is lost
    if ending == "expired":
        ports.clock.moment += timedelta(minutes=31)
        lose_answer(proxy, ports.store, "update_item")
        outcome = expire_verifications(ports)
    else:
        lose_answer(proxy, ports.store, "update_item", call=2)  # the attempt's count first, then the closing
        outcome = confirm_code(vid, verification.sender.codes[0] if ending == "verified" else "wrong", ports).status
    # THEN the use-case reports it, the order is settled, and a failed or expired one went to review
    assert proxy.rules.injected(kind="drop_after") == 1
    assert outcome == ([verification.order.order_key] if ending == "expired" else ending)
    assert stored(moto_endpoint, ports.store.name, verification_id=vid)["state"] == ending
    order = stored(moto_endpoint, verification.orders, order_key=verification.order.order_key)
    assert order["risk_status"] == ("cleared" if ending == "verified" else "in_review")
    assert [m.reason for m in verification.reviews] == ([] if ending == "verified" else [f"verification_{ending}"])
    # AND another close of it (another caller) is still refused
    assert ports.store.close(vid, "expired", ports.clock.now()) is False


# -- ReviewItemsTable ----------------------------------------------------------------------------------

@pytest.fixture
def review_items(proxy, make_table):
    return ReviewItemsTable(make_table("review-items", "item_id"))


def review_message(order_key: str, at: datetime, reason: str = "insufficient_stock") -> ReviewMessage:
    return ReviewMessage(order_key=order_key, source="allocation", reason=reason, detail="no stock", at=at)


@pytest.mark.parametrize(("step", "method", "call"), [("created", "put_item", 1), ("refreshed", "update_item", 1),
                                                      ("reopened", "update_item", 2)])
def test_a_review_message_taken_whose_answer_was_lost_is_taken_once(review_items, proxy, moto_endpoint, step, method,
                                                                      call):
    # GIVEN an order's review item (none yet; open; resolved by a reviewer) and a newer message about it
    order_key, at = f"jd#shop#{uuid.uuid4().hex[:10]}", datetime.now(UTC)
    item_id = review_item_id("allocation", order_key)
    if step != "created":
        assert review_items.take(review_message(order_key, at)) == "created"
    if step == "reopened":
        assert review_items.claim(item_id, "li.na", at, at + timedelta(minutes=10)) is not None
        assert review_items.resolve(item_id, "li.na", {"action": "approve"}, at + timedelta(seconds=1))
    # WHEN the message is taken and the answer of its write is lost (for a reopening: the second
    # UpdateItem, after the refresh's, which does not apply to a resolved item)
    lose_answer(proxy, review_items, method, call=call)
    outcome = review_items.take(review_message(order_key, at + timedelta(seconds=2), reason="wms_unconfirmed"))
    # THEN the take says what it did, and the item counts the message once
    assert proxy.rules.injected(kind="drop_after") == 1
    assert outcome == step
    item = stored(moto_endpoint, review_items.name, item_id=item_id)
    assert (item["status"], item["reason"], item["occurrences"]) == ("open", "wms_unconfirmed", 1 if step == "created"
                                                                     else 2)
    # AND the same message taken again (SQS redelivers) is counted as before: as a refresh
    assert review_items.take(review_message(order_key, at + timedelta(seconds=2), reason="wms_unconfirmed")) \
        == "refreshed"


def test_a_claim_whose_answer_was_lost_is_held_by_its_reviewer(review_items, proxy):
    # GIVEN an open review item, and the answer of the claim's UpdateItem lost
    order_key, now = f"jd#shop#{uuid.uuid4().hex[:10]}", datetime.now(UTC)
    assert review_items.take(review_message(order_key, now)) == "created"
    item_id = review_item_id("allocation", order_key)
    lose_answer(proxy, review_items, "update_item")
    # WHEN a reviewer claims it
    claimed = review_items.claim(item_id, "li.na", now, now + timedelta(minutes=10))
    # THEN the reviewer holds it (the retry met the same reviewer's claim), and another reviewer does not get it
    assert proxy.rules.injected(kind="drop_after") == 1
    assert claimed is not None and claimed["claimed_by"] == "li.na"
    assert review_items.claim(item_id, "zhou.qiang", now, now + timedelta(minutes=10)) is None


def test_a_resolution_whose_answer_was_lost_is_reported_as_resolved(review_items, proxy, moto_endpoint):
    # GIVEN an open review item claimed by a reviewer, and the answer of the resolving UpdateItem lost
    order_key, now = f"jd#shop#{uuid.uuid4().hex[:10]}", datetime.now(UTC)
    assert review_items.take(review_message(order_key, now)) == "created"
    item_id = review_item_id("allocation", order_key)
    assert review_items.claim(item_id, "li.na", now, now + timedelta(minutes=10)) is not None
    lose_answer(proxy, review_items, "update_item")
    # WHEN the reviewer resolves it
    resolved = review_items.resolve(item_id, "li.na", {"action": "reject"}, now + timedelta(seconds=1))
    # THEN it is resolved, and says so (not "the claim ran out")
    assert proxy.rules.injected(kind="drop_after") == 1
    assert resolved is True
    assert stored(moto_endpoint, review_items.name, item_id=item_id)["status"] == "resolved"
    # AND resolving it again is refused
    assert review_items.resolve(item_id, "li.na", {"action": "reject"}, now + timedelta(seconds=2)) is False


# -- RiskDecisionsTable ------------------------------------------------------------------------------

RISK_WRITES = {
    # write -> (the order before, the call, what it writes)
    "record": ({"status": "paid"},
               lambda table, key, now: table.record(key, "cleared", {"rule_id": "r1"}, now), ("risk_status", "cleared")),
    "settle_verification": ({"risk_status": "verifying"},
                            lambda table, key, now: table.settle_verification(key, "cleared", {"outcome": "verified"},
                                                                              now), ("risk_status", "cleared")),
    "transition": ({"risk_status": "in_review"},
                   lambda table, key, now: table.transition(key, "cleared", ("in_review", "blocked"),
                                                            {"action": "release_hold"}, now), ("risk_status", "cleared")),
    "promote_ready": ({"fulfillment_status": "allocated", "risk_status": "cleared"},
                      lambda table, key, now: table.promote_ready(key, now), ("fulfillment_status", "ready_to_ship")),
}


@pytest.mark.parametrize("write", sorted(RISK_WRITES))
def test_a_risk_write_whose_answer_was_lost_is_reported_as_done(proxy, make_table, moto_endpoint, write):
    # GIVEN an order in the state the write expects, and the answer of its UpdateItem lost
    before, call, (field, value) = RISK_WRITES[write]
    orders, order_key = make_table("orders", "order_key"), f"jd#shop#{uuid.uuid4().hex[:10]}"
    client("dynamodb", moto_endpoint).put_item(TableName=orders, Item={
        "order_key": {"S": order_key}, **{name: {"S": text} for name, text in before.items()}})
    table = RiskDecisionsTable(orders)
    lose_answer(proxy, table, "update_item")
    # WHEN the write is made
    done = call(table, order_key, datetime.now(UTC))
    # THEN it says it was done, and it was
    assert proxy.rules.injected(kind="drop_after") == 1
    assert done is True
    assert stored(moto_endpoint, orders, order_key=order_key)[field] == value
    # AND the same write made again (a redelivery, a second reviewer) is refused
    assert call(RiskDecisionsTable(orders), order_key, datetime.now(UTC)) is False


# -- ReservationStore -----------------------------------------------------------------------------------

def test_an_order_closed_before_holding_anything_whose_tombstone_answer_was_lost_holds_nothing(proxy, make_table,
                                                                                               moto_endpoint):
    # GIVEN an order without a reservation, and the answer of its tombstone's PutItem lost
    reservations = ReservationStore(make_table("reservations", "order_key"), "unused-inventory", "unused-orders")
    order_key = f"jd#shop#{uuid.uuid4().hex[:10]}"
    lose_answer(proxy, reservations, "put_item")
    ports = SimpleNamespace(reservations=reservations, clock=_Clock(), wms=None)
    # WHEN it is cancelled
    outcome = release_order(order_key, "cancelled", ports)
    # THEN nothing was held and the tombstone is there, once: a stray later delivery holds nothing
    assert proxy.rules.injected(kind="drop_after") == 1
    assert outcome.state == "nothing_held"
    assert stored(moto_endpoint, reservations._reservations, order_key=order_key)["state"] == RELEASED


def test_a_reservation_whose_transaction_answer_was_lost_holds_the_units_once(proxy, make_table, moto_endpoint):
    # (botocore sends TransactWriteItems with a ClientRequestToken and sends it again on a retry: DynamoDB, and
    # the local cloud's moto_transactions, answer the retry of a transaction that landed as done)
    # GIVEN a stock row of 5 kettles, a paid order, and the answer of its reserving transaction lost
    inventory = make_table("inventory", "stock_id", "entry")
    orders, order_key = make_table("orders", "order_key"), f"jd#shop#{uuid.uuid4().hex[:10]}"
    direct = client("dynamodb", moto_endpoint)
    direct.put_item(TableName=inventory, Item={"stock_id": {"S": "WH-EAST#KETTLE"}, "entry": {"S": "stock"},
                                               "available": {"N": "5"}, "reserved": {"N": "0"},
                                               "on_hand": {"N": "5"}, "version": {"N": "1"}})
    direct.put_item(TableName=orders, Item={"order_key": {"S": order_key}, "status": {"S": "paid"}})
    reservations = ReservationStore(make_table("reservations", "order_key"), inventory, orders)
    lose_answer(proxy, reservations, "transact_write_items")
    # WHEN its units are held
    held = reservations.reserve(order_key, (Shipment("WH-EAST", (("KETTLE", 2),)),), {"rule": "test"},
                                datetime.now(UTC), confirmed_allocation={"shipments": []})
    # THEN the reservation is reported as held (not as a redelivery's), and the units are held once
    assert proxy.rules.injected(kind="drop_after") == 1
    stock = stored(moto_endpoint, inventory, stock_id="WH-EAST#KETTLE", entry="stock")
    assert (stock["available"], stock["reserved"]) == (3, 2)
    assert held is not None


def test_a_client_token_answers_its_transaction_once_and_refuses_a_different_request(make_table, moto_endpoint):
    # GIVEN a counter row, and a transaction adding 1 to it under an explicit client token
    table, direct = make_table("counters", "pk"), client("dynamodb", moto_endpoint)
    direct.put_item(TableName=table, Item={"pk": {"S": "c"}, "n": {"N": "0"}})

    def add(amount: int, token: str) -> None:
        direct.transact_write_items(ClientRequestToken=token, TransactItems=[{"Update": {
            "TableName": table, "Key": {"pk": {"S": "c"}}, "UpdateExpression": "ADD n :a",
            "ExpressionAttributeValues": {":a": {"N": str(amount)}}}}])

    token = uuid.uuid4().hex
    # WHEN it is sent twice with that token, then once with another token
    add(1, token)
    add(1, token)
    add(1, uuid.uuid4().hex)
    # THEN the repeat was answered as done without applying again; the other token applied
    assert stored(moto_endpoint, table, pk="c")["n"] == 2
    # AND the same token with a different request is refused as DynamoDB refuses it
    with pytest.raises(direct.exceptions.IdempotentParameterMismatchException):
        add(5, token)
    assert stored(moto_endpoint, table, pk="c")["n"] == 2


def test_an_audit_entry_whose_answer_was_lost_is_recorded_once_and_reported_written(proxy, make_table, moto_endpoint):
    from oms.adapters.audit_log_table import AuditLogTable

    # GIVEN the audit log (item_id + entry), and the answer of the next entry's write lost
    audit = AuditLogTable(make_table("audit", "item_id", "entry"))
    item_id = f"allocation#jd#shop#{uuid.uuid4().hex[:10]}"
    lose_answer(proxy, audit, "put_item")
    # WHEN a reviewer's decision is appended
    entry = audit.append(item_id=item_id, order_key="jd#shop#1", who="li.na", role="reviewer", action="approve",
                         reason="checked", before={"status": "open"}, after={"status": "resolved"},
                         at=datetime.now(UTC))
    # THEN it is reported written (not a failure that would make the reviewer decide again), and is there once
    assert proxy.rules.injected(kind="drop_after") == 1
    assert [row["entry"] for row in audit.of_item(item_id)] == [entry["entry"]]
