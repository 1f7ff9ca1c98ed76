"""A refresh token the platform rotates is written back to the shop's secret and outlives the container."""

import json
from datetime import datetime, timedelta, timezone

from oms.adapters import aws
from oms.adapters.secrets import secret_name
from oms.settings import get_settings
from omsdev.demo import poller_function_id, reconcile, start_shop
from omsdev.localcloud.cloud import cold_start_containers
from omsdev.simulators import kuaishou as kuaishou_simulator
from omsdev.simulators.scenario import Scenario, ScenarioRunner

BACKDATED = Scenario(backdate=timedelta(minutes=3), cancel_share=0.0, duplicate_share=0.0)


def shop_secret(channel: str, shop_id: str) -> dict:
    name = secret_name(get_settings().secrets_prefix, channel, shop_id)
    return json.loads(aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])


def poll(cloud, channel: str) -> dict:
    return cloud.invoke(poller_function_id(channel), {"channel": channel})["shops"][0]


def test_a_rotated_refresh_token_is_written_back_and_a_cold_container_polls_with_it(cloud, monkeypatch):
    # GIVEN a Kuaishou shop whose platform retires a refresh token as soon as it issued a new one
    monkeypatch.setattr(kuaishou_simulator, "REFRESH_GRACE_SECONDS", 0)
    shop = start_shop("kuaishou", "ks-rotation")
    original = shop_secret("kuaishou", "ks-rotation")
    runner = ScenarioRunner([shop.generator], BACKDATED)
    runner.seed_backlog(10)
    # WHEN its access token expires and a poll refreshes it
    shop.simulator.expire_tokens()
    assert poll(cloud, "kuaishou")["state"] == "polled"
    # THEN the shop's secret holds the rotated tokens, the rest of it unchanged
    rotated = shop_secret("kuaishou", "ks-rotation")
    assert rotated["refresh_token"] != original["refresh_token"]
    assert rotated["access_token"] != original["access_token"]
    assert {k: v for k, v in rotated.items() if k not in ("access_token", "refresh_token")} == {
        k: v for k, v in original.items() if k not in ("access_token", "refresh_token")}
    # AND a new container (nothing cached) whose token expired again refreshes with the rotated
    # refresh token, not the retired one from before
    cold_start_containers()
    shop.simulator.expire_tokens()
    for _ in range(5):  # new orders inside the next poll's window
        shop.generator.create(datetime.now(timezone.utc) - timedelta(seconds=90))
    assert poll(cloud, "kuaishou")["state"] == "polled"
    assert shop.simulator.refresh_requests == 2
    result = reconcile([shop])["kuaishou"]
    assert result.stale_or_missing == [] and result.stored_items == 15
    shop.simulator.stop()
