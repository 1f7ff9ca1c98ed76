"""Steps shared by the risk tests: orders of chosen buyers and addresses, stored and delivered to the
RiskFunction as the Orders stream shapes them; the SMS simulator's account in Secrets Manager."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from oms.domain.order import CanonicalOrder, OrderLine, ShipTo, order_key
from oms.settings import get_settings

from tests.integration.allocation_helpers import dynamodb, stored_image, stream_record, with_status

HANGZHOU = dict(country="CN", province="浙江省", city="杭州市", district="西湖区")


def a_phone() -> str:
    return "+86138" + str(uuid.uuid4().int)[:8]


def risk_order(channel: str = "taobao", *, buyer: str | None = "buyer-a", address: str = "文三路100号3栋2单元501室",
               paid_at: datetime | None = None, phone: str | None = None, encrypted: bool = False,
               handle: str | None = None, lines=(("KETTLE-1L", 1),), place: dict | None = None) -> CanonicalOrder:
    order_id = uuid.uuid4().hex[:16]
    paid = (paid_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return CanonicalOrder(
        order_key=order_key(channel, "risk", order_id), channel=channel, shop_id="risk", channel_order_id=order_id,
        status="paid", channel_status="PAID", buyer_id=buyer, currency="CNY", total="99.00",
        lines=[OrderLine(line_id=str(i), sku=None, seller_sku=code, quantity=quantity, unit_price="99.00")
               for i, (code, quantity) in enumerate(lines)],
        ship_to=ShipTo(**(place or HANGZHOU), address=address, name="张三", phone=phone or a_phone(),
                       encrypted=encrypted, address_handle=handle),
        created_at=paid, paid_at=paid, updated_at=paid,
    )


def paid_records(cloud, orders: list[CanonicalOrder], first_sequence: int = 1) -> list[dict]:
    return [stream_record(stored_image(cloud, order.order_key), sequence=first_sequence + index)
            for index, order in enumerate(orders)]


def refund_records(cloud, orders: list[CanonicalOrder], first_sequence: int = 1) -> list[dict]:
    records = []
    for index, order in enumerate(orders):
        image = stored_image(cloud, order.order_key)
        records.append(stream_record(with_status(image, "refunded"), event_name="MODIFY", old_image=image,
                                     sequence=first_sequence + index))
    return records


def modify_record(cloud, key: str, sequence: int = 1) -> dict:
    """The order as it is now, delivered as a MODIFY (what the stream sends after any update)."""
    image = stored_image(cloud, key)
    return stream_record(image, event_name="MODIFY", old_image=image, sequence=sequence)


def assess(cloud, records: list[dict]) -> dict:
    return cloud.invoke("RiskFunction", {"Records": records}, bypass_concurrency=True)


def risk_of(cloud, key: str) -> tuple[str | None, dict]:
    """(risk_status, the stored decision's document) of an order."""
    from boto3.dynamodb.types import TypeDeserializer

    item = stored_image(cloud, key)
    decision = TypeDeserializer().deserialize(item["risk_decision"]) if "risk_decision" in item else {}
    return item.get("risk_status", {}).get("S"), decision


def aggregates(cloud) -> dict[tuple[str, str], dict]:
    """Every aggregates row (a test's view: a scan is fine here, never in the system)."""
    rows, kwargs = {}, {"TableName": get_settings().risk_aggregates_table, "ConsistentRead": True}
    while True:
        page = dynamodb(cloud).scan(**kwargs)
        for item in page["Items"]:
            rows[(item["pk"]["S"], item["sk"]["S"])] = {k: v.get("N", v.get("S")) for k, v in item.items()}
        if "LastEvaluatedKey" not in page:
            return rows
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def launch_aliyun_sms(faults=None):
    """The Aliyun SMS simulator, its account stored where the function looks (`<prefix>/sms/aliyun`)."""
    from omsdev.risk_demo import start_sms

    return start_sms(faults)
