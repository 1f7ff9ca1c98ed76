"""Shop credentials from Secrets Manager (`{prefix}/{channel}/{shop_id}`), cached per container."""

from __future__ import annotations

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
