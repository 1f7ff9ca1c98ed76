"""Quarantined payloads too large for a DynamoDB row: kept in the raw payload bucket, one object per
quarantined order, read back by the replay (the reviewers' and `oms quarantine replay`)."""

from __future__ import annotations

import copy
import json
import os
import uuid

import pytest
from oms.adapters import aws
from oms.adapters.orders_table import OrdersTable
from oms.adapters.quarantine_table import QuarantineTable
from oms.settings import get_settings
from omsdev.cli import main
from omsdev.localcloud.cloud import LocalCloud

from tests.integration.conftest import FAST_RETRIES
from tests.unit.test_fuzz_normalizers import records_of


@pytest.fixture(scope="module")
def cloud():
    local = LocalCloud(port=0, stack_name=f"t{uuid.uuid4().hex[:8]}", parameter_overrides=FAST_RETRIES,
                       start_event_sources=False)
    local.start()
    yield local
    local.stop()


def _objects(prefix: str) -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket=get_settings().raw_payload_bucket, Prefix=prefix)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def test_a_large_payload_is_kept_in_one_s3_object_and_gives_way_to_a_smaller_version(cloud):
    shop, order_id = f"s{uuid.uuid4().hex[:8]}", "318765400002"
    quarantine = QuarantineTable(get_settings().quarantine_table)

    def refused(raw: dict) -> str:
        return quarantine.quarantine(channel="jd", shop_id=shop, channel_order_id=order_id, reason="too large", raw=raw)

    # GIVEN a refused payload of 200 KB that does not compress (too much to sit beside a row's fields)
    large = {"orderId": order_id, "orderRemark": os.urandom(100_000).hex()}
    # WHEN it is quarantined, and again (the window retried)
    key = refused(large)
    assert refused(large) == key
    # THEN the row names one object under quarantine/ and holds no inline copy; the payload reads back whole
    row = quarantine.get(key)
    assert row["seen_count"] == 2 and "raw_gz" not in row
    assert row["raw_s3_key"].startswith("quarantine/jd/") and _objects("quarantine/jd/").count(row["raw_s3_key"]) == 1
    assert QuarantineTable.raw_payload(row) == large
    # WHEN a later version of the same order is refused, small this time
    small = {"orderId": order_id, "orderRemark": "short"}
    refused(small)
    # THEN it is kept on the row, and the row no longer points at the large one
    row = quarantine.get(key)
    assert "raw_gz" in row and "raw_s3_key" not in row and "raw_s3_bucket" not in row
    assert QuarantineTable.raw_payload(row) == small


def test_oms_quarantine_replay_stores_an_order_whose_payload_was_kept_in_s3(cloud, capsys):
    # GIVEN a good order with a huge field the normalizer ignores, quarantined (say, under yesterday's code)
    normalizer, records = records_of("shopify")
    shop = f"s{uuid.uuid4().hex[:8]}"
    raw = {**copy.deepcopy(records[0]), "note": os.urandom(100_000).hex()}
    quarantine_id = QuarantineTable(get_settings().quarantine_table).quarantine(
        channel="shopify", shop_id=shop, channel_order_id=normalizer.order_id_of(raw), reason="since fixed", raw=raw)
    assert "raw_s3_key" in QuarantineTable(get_settings().quarantine_table).get(quarantine_id)
    # WHEN it is replayed with the tooling
    code = main(["quarantine", "replay", quarantine_id, "--endpoint", cloud.endpoint, "--stack-name", cloud.stack_name])
    # THEN the order is stored from the payload read back from S3
    outcome = json.loads(capsys.readouterr().out)
    assert code == 0 and outcome["state"] == "stored", outcome
    orders = OrdersTable(get_settings().orders_table, get_settings().raw_payload_bucket)
    stored = orders.get(normalizer.normalize(raw, shop).order_key)
    assert orders.raw_payload(stored) == raw
    assert QuarantineTable(get_settings().quarantine_table).get(quarantine_id)["state"] == "replayed"
