"""The risk engine against the local cloud (moto endpoint): aggregates at the rules' boundaries, exact
under concurrency and redelivery, holds that hold, and SMS verification end to end over HTTP."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from oms.domain.risk import buyer_key
from oms.services.risk_dependencies import verification_ports
from oms.services.verify import confirm_code, expire_verifications, verification_id
from oms.settings import get_settings
from omsdev.allocation_setup import WarehouseSetup, load_catalogue
from omsdev.simulators.base import FaultPlan

from tests.integration.allocation_helpers import drain_queue, store, stored_image
from tests.integration.conftest import serving_api
from tests.integration.risk_helpers import (
    aggregates,
    assess,
    days_ago,
    launch_aliyun_sms,
    modify_record,
    paid_records,
    refund_records,
    risk_of,
    risk_order,
)

pytestmark = pytest.mark.long_running  # minutes: scheduled first (tests/conftest.py)


@pytest.fixture
def api_cloud():
    """A local cloud that also serves the template's API routes on a free port."""
    with serving_api() as local:
        yield local


@pytest.fixture
def sms(cloud):
    simulator = launch_aliyun_sms()
    yield simulator
    simulator.stop()


def test_the_sixteenth_order_in_24_h_of_a_buyer_who_returns_most_is_held_and_the_fifteenth_is_not(cloud, sms):
    # GIVEN a buyer whose 30 orders of two days ago were all refunded (outside the 24 h window)
    old = [risk_order(paid_at=days_ago(2)) for _ in range(30)]
    store(old)
    assert assess(cloud, paid_records(cloud, old))["batchItemFailures"] == []
    assert assess(cloud, refund_records(cloud, old))["batchItemFailures"] == []
    # WHEN 16 new orders of the same buyer are paid within the last hours
    new = [risk_order(paid_at=days_ago(0.5) + timedelta(minutes=i)) for i in range(16)]
    store(new)
    assert assess(cloud, paid_records(cloud, new, first_sequence=100))["batchItemFailures"] == []
    # THEN the first fifteen are cleared (15 in 24 h is not more than 15) ...
    statuses = [risk_of(cloud, order.order_key)[0] for order in new]
    assert statuses[:15] == ["cleared"] * 15
    # ... and the sixteenth (16 in 24 h, 30 returns of 46 = 65% > 60%) is held for an SMS code
    status, decision = risk_of(cloud, new[15].order_key)
    assert status == "verifying" and decision["rule_id"] == "buyer-volume-returns" and decision["label"] == "suspicious"
    assert decision["facts"]["buyer_orders_24h"] == 16 and decision["facts"]["buyer_return_rate"] == "0.6522"
    # AND an SMS went to that order's phone
    assert sms.latest_code(stored_image(cloud, new[15].order_key)["ship_to"]["M"]["phone"]["S"]) is not None


def test_a_return_rate_of_exactly_60_percent_does_not_hold_and_61_percent_does(cloud, sms):
    # GIVEN two buyers with 100 paid orders each in the past week (outside 24 h): 60 and 61 refunded
    held = {}
    for buyer, returned in (("sixty", 60), ("sixty-one", 61)):
        old = [risk_order(buyer=buyer, paid_at=days_ago(3)) for _ in range(84)]
        store(old)
        assess(cloud, paid_records(cloud, old))
        assess(cloud, refund_records(cloud, old[:returned]))
        # WHEN each pays 16 orders today (100 paid in all)
        new = [risk_order(buyer=buyer, paid_at=days_ago(0.1) + timedelta(seconds=i)) for i in range(16)]
        store(new)
        assess(cloud, paid_records(cloud, new, first_sequence=500))
        held[buyer] = risk_of(cloud, new[-1].order_key)
    # THEN 60/100 is not above 60%, 61/100 is
    assert held["sixty"][0] == "cleared" and held["sixty"][1]["facts"]["buyer_return_rate"] == "0.6"
    assert held["sixty-one"][0] == "verifying" and held["sixty-one"][1]["facts"]["buyer_return_rate"] == "0.61"


def test_the_window_slides_past_old_orders_to_the_second(cloud):
    # GIVEN a buyer with 16 orders: one paid 24 h and 1 s before the last, fifteen within the window
    last = days_ago(0)
    orders = [risk_order(buyer="slider", paid_at=last - timedelta(hours=24, seconds=1))]
    orders += [risk_order(buyer="slider", paid_at=last - timedelta(hours=23, minutes=59 - i)) for i in range(14)]
    orders.append(risk_order(buyer="slider", paid_at=last))
    store(orders)
    assess(cloud, paid_records(cloud, orders))
    # THEN the last order's window counts 15 (the oldest slid out)
    assert risk_of(cloud, orders[-1].order_key)[1]["facts"]["buyer_orders_24h"] == 15


def test_five_accounts_on_one_address_written_five_ways_send_the_fifth_to_review(cloud):
    # GIVEN the same flat written differently by five new accounts
    forms = [("文三路100号3栋2单元501室", HANGZHOU_FULL), ("文三路１００号３号楼２单元５０１", HANGZHOU_SHORT),
             ("浙江省杭州市西湖区文三路100号3幢2单元501房", HANGZHOU_FULL), ("文三路 100 号 三号楼 2 单元 501", HANGZHOU_SHORT),
             ("文三路100号3座2门501", HANGZHOU_FULL)]
    orders = [risk_order(buyer=f"ring-{i}", address=address, place=place) for i, (address, place) in enumerate(forms)]
    store(orders)
    # WHEN they are assessed one after another
    assert assess(cloud, paid_records(cloud, orders))["batchItemFailures"] == []
    # THEN accounts 1-4 pass and the fifth goes to secondary review with the facts that fired it
    assert [risk_of(cloud, o.order_key)[0] for o in orders] == ["cleared"] * 4 + ["in_review"]
    assert risk_of(cloud, orders[4].order_key)[1]["facts"]["address_accounts"] == 5
    reviews = drain_queue(cloud, "ReviewQueue")
    assert [(m["order_key"], m["reason"], m["source"]) for m in reviews] == [
        (orders[4].order_key, "risk_review", "risk")]
    assert reviews[0]["facts"]["fired"] == ["address_accounts >= 5 (was 5)"]


HANGZHOU_FULL = dict(country="CN", province="浙江省", city="杭州市", district="西湖区")
HANGZHOU_SHORT = dict(country="CN", province="浙江", city="杭州", district="西湖")


def test_aggregates_stay_exact_when_one_buyer_and_one_address_are_assessed_at_once_and_redelivered(cloud):
    # GIVEN 48 orders to one address: 24 of one buyer, 24 of 12 other accounts (2 each)
    orders = [risk_order(buyer="busy") for _ in range(24)]
    orders += [risk_order(buyer=f"acct-{i % 12}") for i in range(24)]
    store(orders)
    records = paid_records(cloud, orders)
    batches = [records[start:start + 3] for start in range(0, len(records), 3)]
    # WHEN 8 allocators' worth of invocations assess them at once, and every batch is delivered twice
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda batch: assess(cloud, batch), batches + batches))
    assert all(result["batchItemFailures"] == [] for result in results)
    # THEN every count is exact: 24 paid orders for the busy buyer, 13 accounts at the address
    rows = aggregates(cloud)
    busy = f"buyer#{buyer_key('taobao', 'busy')}"
    assert rows[(busy, "totals")]["paid_orders"] == "24"
    assert sum(1 for pk, sk in rows if pk == busy and sk.startswith("paid#")) == 24
    address_totals = [row for (pk, sk), row in rows.items() if pk.startswith("addr#") and sk == "totals"]
    assert [row["accounts"] for row in address_totals] == ["13"]
    # AND every order has one decision, none counting more orders than there were
    decisions = [risk_of(cloud, order.order_key)[1] for order in orders]
    assert all(decision["action"] in ("allow", "review") for decision in decisions)
    # (counted up to the rules' cap: 17 for "more than 15")
    assert all(d["facts"]["buyer_orders_24h"] == "17+" or 1 <= d["facts"]["buyer_orders_24h"] <= 16
               for d in decisions[:24])


def test_a_refund_counts_once_however_often_it_is_delivered(cloud):
    orders = [risk_order(buyer="refunder") for _ in range(3)]
    store(orders)
    assess(cloud, paid_records(cloud, orders))
    refunds = refund_records(cloud, orders[:2])
    for _ in range(3):
        assert assess(cloud, refunds)["batchItemFailures"] == []
    totals = aggregates(cloud)[(f"buyer#{buyer_key('taobao', 'refunder')}", "totals")]
    assert (totals["paid_orders"], totals["returns"]) == ("3", "2")


def test_an_order_whose_phone_the_platform_encrypts_goes_to_review_instead_of_sms(cloud, sms):
    # GIVEN a buyer past the volume-and-returns rule, on an order with an encrypted phone (PDD ciphertext)
    old = [risk_order("pdd", buyer="enc", paid_at=days_ago(2), encrypted=True, handle="oaid-1") for _ in range(30)]
    store(old)
    assess(cloud, paid_records(cloud, old))
    assess(cloud, refund_records(cloud, old))
    new = [risk_order("pdd", buyer="enc", encrypted=True, handle="oaid-1", phone="~AgAAAAEncrypted~")
           for _ in range(16)]
    store(new)
    assess(cloud, paid_records(cloud, new, first_sequence=100))
    # THEN no SMS was attempted; a reviewer gets it with the reason
    assert risk_of(cloud, new[-1].order_key)[0] == "in_review"
    assert sms.messages() == []
    reasons = {m["order_key"]: m["reason"] for m in drain_queue(cloud, "ReviewQueue")}
    assert reasons[new[-1].order_key] == "verification_unavailable"


def _flag_one(cloud, channel: str = "taobao", **kwargs):
    """A buyer whose next order trips the SMS rule; that order stored and assessed."""
    buyer = f"flag-{uuid.uuid4().hex[:6]}"
    old = [risk_order(channel, buyer=buyer, paid_at=days_ago(2)) for _ in range(30)]
    store(old)
    assess(cloud, paid_records(cloud, old))
    assess(cloud, refund_records(cloud, old))
    new = [risk_order(channel, buyer=buyer, **kwargs) for _ in range(16)]
    store(new)
    assess(cloud, paid_records(cloud, new, first_sequence=100))
    flagged = new[-1]
    assert risk_of(cloud, flagged.order_key)[0] == "verifying"
    return flagged


def test_flagged_order_sms_code_over_http_releases_it_and_it_becomes_ready_to_ship(api_cloud):
    cloud = api_cloud
    sms = launch_aliyun_sms()
    try:
        load_catalogue([WarehouseSetup("WH-RISK", ("CN",), {"KETTLE": 100}, transit_hours={"CN": 12.0})],
                       {"KETTLE-1L": [("KETTLE", 1)]})
        # GIVEN a flagged, held order that allocation has meanwhile allocated (units reserved)
        flagged = _flag_one(cloud)
        allocated = cloud.invoke("AllocationFunction", {"Records": paid_records(cloud, [flagged])},
                                 bypass_concurrency=True)
        assert allocated["batchItemFailures"] == []
        assert stored_image(cloud, flagged.order_key)["fulfillment_status"]["S"] == "allocated"
        # AND the allocated-but-held order does NOT become ready to ship
        assess(cloud, [modify_record(cloud, flagged.order_key)])
        assert stored_image(cloud, flagged.order_key)["fulfillment_status"]["S"] == "allocated"
        # WHEN the buyer sends the code from the SMS (visible on the Aliyun simulator) to the public endpoint
        code = sms.latest_code(flagged.ship_to.phone)
        vid = verification_id(_key(), flagged.order_key)
        url = f"{cloud.api_url}/verifications/{vid}"
        wrong = "000000" if code != "000000" else "111111"
        assert requests.post(url, json={"code": wrong}, timeout=10).json() == {"status": "wrong_code",
                                                                               "attempts_left": 4}
        answer = requests.post(url, json={"code": code}, timeout=10)
        # THEN it is verified, the hold is cleared, and the next stream change makes it ready to ship
        assert answer.status_code == 200 and answer.json()["status"] == "verified"
        assert risk_of(cloud, flagged.order_key)[0] == "cleared"
        assess(cloud, [modify_record(cloud, flagged.order_key)])
        assert stored_image(cloud, flagged.order_key)["fulfillment_status"]["S"] == "ready_to_ship"
        # AND a repeated submit is harmless; bad input is a 422 with the reason
        assert requests.post(url, json={"code": code}, timeout=10).json()["status"] == "verified"
        bad = requests.post(url, json={"code": "12ab"}, timeout=10)
        assert bad.status_code == 422 and "code" in bad.text
        assert requests.post(f"{cloud.api_url}/verifications/{'0' * 32}", json={"code": code},
                             timeout=10).status_code == 404
    finally:
        sms.stop()


def test_five_wrong_codes_send_the_held_order_to_review_and_it_never_becomes_ready(api_cloud):
    cloud = api_cloud
    sms = launch_aliyun_sms()
    try:
        flagged = _flag_one(cloud)
        code = sms.latest_code(flagged.ship_to.phone)
        wrong = "000000" if code != "000000" else "111111"
        url = f"{cloud.api_url}/verifications/{verification_id(_key(), flagged.order_key)}"
        answers = [requests.post(url, json={"code": wrong}, timeout=10) for _ in range(5)]
        assert [a.status_code for a in answers] == [422, 422, 422, 422, 409]
        assert answers[-1].json()["status"] == "failed"
        # THEN even the right code no longer helps, the order is in review, and never ready to ship
        assert requests.post(url, json={"code": code}, timeout=10).status_code == 409
        assert risk_of(cloud, flagged.order_key)[0] == "in_review"
        reasons = {m["order_key"]: m["reason"] for m in drain_queue(cloud, "ReviewQueue")}
        assert reasons[flagged.order_key] == "verification_failed"
        assess(cloud, [modify_record(cloud, flagged.order_key)])
        assert stored_image(cloud, flagged.order_key).get("fulfillment_status", {}).get("S") != "ready_to_ship"
    finally:
        sms.stop()


class _Later:
    def __init__(self, offset: timedelta):
        self.offset = offset

    def now(self):
        from datetime import UTC, datetime

        return datetime.now(UTC) + self.offset


def test_an_unconfirmed_code_expires_after_30_minutes_and_the_order_goes_to_review(cloud, sms):
    flagged = _flag_one(cloud)
    code = sms.latest_code(flagged.ship_to.phone)
    # WHEN the sweep runs 29 minutes later nothing expires; 31 minutes later the order goes to review
    assert expire_verifications(verification_ports(get_settings(), clock=_Later(timedelta(minutes=29)))) == []
    later = verification_ports(get_settings(), clock=_Later(timedelta(minutes=31)))
    assert expire_verifications(later) == [flagged.order_key]
    assert risk_of(cloud, flagged.order_key)[0] == "in_review"
    reasons = {m["order_key"]: m["reason"] for m in drain_queue(cloud, "ReviewQueue")}
    assert reasons[flagged.order_key] == "verification_expired"
    # AND the code no longer works
    vid = verification_id(_key(), flagged.order_key)
    assert confirm_code(vid, code, later).status == "closed"


def test_an_amazon_buyer_gets_the_code_through_sns_on_the_endpoint(cloud):
    # GIVEN a flagged Amazon order (an international buyer: SNS, not Aliyun)
    phone = "+1206" + str(uuid.uuid4().int)[:7]
    flagged = _flag_one(cloud, "amazon", place=dict(country="US", province="WA", city="Seattle"),
                        address="410 Terry Ave N", phone=phone)
    # THEN the SMS is on the endpoint: SNS accepted it for that number, with a 6-digit code valid 30 minutes
    published = requests.get(f"{cloud.endpoint}/moto-api/data.json", timeout=10).json()["sns"]["SMS"]
    [sent] = [sms for sms in published if sms["phone_number"] == phone]
    assert re.search(r"code is [0-9]{6}\b", sent["message"]) and "30 minutes" in sent["message"]
    assert risk_of(cloud, flagged.order_key)[0] == "verifying"


def _key() -> bytes:
    from oms.adapters.secrets import secret_text

    return secret_text(get_settings().verification_key_secret).encode()


def test_concurrent_wrong_codes_use_exactly_five_attempts_and_send_one_review(cloud, sms):
    # GIVEN a held order with its code sent
    flagged = _flag_one(cloud)
    code = sms.latest_code(flagged.ship_to.phone)
    wrong = "000000" if code != "000000" else "111111"
    vid = verification_id(_key(), flagged.order_key)
    ports = verification_ports(get_settings())
    # WHEN 12 wrong submissions arrive at once
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(lambda _: confirm_code(vid, wrong, ports).status, range(12)))
    # THEN exactly five were counted (four wrong_code answers, one failed), the rest found it closed
    assert sorted(outcomes) == sorted(["wrong_code"] * 4 + ["failed"] + ["closed"] * 7)
    reviews = [m for m in drain_queue(cloud, "ReviewQueue") if m["order_key"] == flagged.order_key]
    assert [m["reason"] for m in reviews] == ["verification_failed"]
    assert confirm_code(vid, code, ports).status == "closed"


def test_an_sms_provider_outage_fails_the_record_and_the_redelivery_sends_one_fresh_code(cloud):
    # GIVEN the SMS provider answers every call with a 503 while the flagged order is assessed
    outage = FaultPlan(rate=1.0, kinds=("5xx",))
    simulator = launch_aliyun_sms(faults=outage)
    try:
        buyer = f"outage-{uuid.uuid4().hex[:6]}"
        old = [risk_order(buyer=buyer, paid_at=days_ago(2)) for _ in range(30)]
        store(old)
        assess(cloud, paid_records(cloud, old))
        assess(cloud, refund_records(cloud, old))
        new = [risk_order(buyer=buyer) for _ in range(16)]
        store(new)
        records = paid_records(cloud, new, first_sequence=100)
        failed = assess(cloud, records)["batchItemFailures"]
        # THEN the flagged record fails (the stream retries it) and nothing is decided for it yet
        assert [f["itemIdentifier"] for f in failed] == [records[-1]["dynamodb"]["SequenceNumber"]]
        assert risk_of(cloud, new[-1].order_key)[0] is None and simulator.messages() == []
        # WHEN the provider is back and the stream redelivers from the failed record
        outage.rate = 0.0
        assert assess(cloud, records[-1:])["batchItemFailures"] == []
        # THEN one SMS went out, the order is held for it, and the counts did not move twice
        assert len(simulator.messages()) == 1 and risk_of(cloud, new[-1].order_key)[0] == "verifying"
        totals = aggregates(cloud)[(f"buyer#{buyer_key('taobao', buyer)}", "totals")]
        assert (totals["paid_orders"], totals["returns"]) == ("46", "30")
        code = simulator.latest_code(new[-1].ship_to.phone)
        ports = verification_ports(get_settings())
        assert confirm_code(verification_id(_key(), new[-1].order_key), code, ports).status == "verified"
    finally:
        simulator.stop()


def test_a_confirm_that_crashed_before_clearing_the_order_is_finished_by_the_buyers_retry(cloud, sms):
    # Regression (found by reading for `oms audit`): the verification was closed as verified before the
    # order was cleared; a crash in between left the order `verifying` for good (a retry answered
    # already_verified, and the expiry sweep skips verified ones).
    import dataclasses

    flagged = _flag_one(cloud)
    code = sms.latest_code(flagged.ship_to.phone)
    vid = verification_id(_key(), flagged.order_key)
    ports = verification_ports(get_settings())

    class OrdersDyingOnSettle:
        def __getattr__(self, name):
            return getattr(ports.orders, name)

        def settle_verification(self, *args, **kwargs):
            raise RuntimeError("the function died here")

    # WHEN the right code is confirmed and the function dies before the order is cleared
    with pytest.raises(RuntimeError):
        confirm_code(vid, code, dataclasses.replace(ports, orders=OrdersDyingOnSettle()))
    assert risk_of(cloud, flagged.order_key)[0] == "verifying"
    # THEN the buyer's retry (the same code again) clears it
    assert confirm_code(vid, code, ports).status == "already_verified"
    state, facts = risk_of(cloud, flagged.order_key)
    assert state == "cleared"
    # AND once more changes nothing
    assert confirm_code(vid, code, ports).status == "already_verified"
    assert risk_of(cloud, flagged.order_key)[0] == "cleared"
