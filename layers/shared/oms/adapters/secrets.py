"""Shop credentials from Secrets Manager (`{prefix}/{channel}/{shop_id}`), cached per container."""

from __future__ import annotations

import json
import threading
from functools import lru_cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from oms.adapters import aws

# Credentials rotate rarely; five minutes bounds both staleness and GetSecretValue calls.
CACHE_SECONDS = 300


@lru_cache(maxsize=1)
def _provider() -> SecretsProvider:
    return SecretsProvider(boto3_client=aws.client("secretsmanager"))


def secret_name(prefix: str, channel: str, shop_id: str) -> str:
    return f"{prefix}/{channel}/{shop_id}"


def shop_credentials(prefix: str, channel: str, shop_id: str) -> dict:
    value = _provider().get(secret_name(prefix, channel, shop_id), transform="json", max_age=CACHE_SECONDS)
    if not isinstance(value, dict):
        raise ValueError(f"secret {secret_name(prefix, channel, shop_id)} must hold a JSON object")
    return value


_write_lock = threading.Lock()


def merge_into_shop_secret(prefix: str, channel: str, shop_id: str, fields: dict) -> None:
    """Merge rotated tokens into the shop's secret (read fresh, never from the cache) and drop the
    cached copy so the next read sees them."""
    name = secret_name(prefix, channel, shop_id)
    client = aws.client("secretsmanager")
    with _write_lock:
        current = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
        client.put_secret_value(SecretId=name, SecretString=json.dumps({**current, **fields}))
        _provider().clear_cache()


def secret_text(name: str) -> str:
    """A plain secret's value (cached like the shops' credentials)."""
    value = _provider().get(name, max_age=CACHE_SECONDS)
    if not isinstance(value, str) or not value:
        raise ValueError(f"secret {name} is empty")
    return value
