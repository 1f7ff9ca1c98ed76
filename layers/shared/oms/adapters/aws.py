"""boto3 clients, created once per container and pointed at OMS_AWS_ENDPOINT_URL when it is set."""

from __future__ import annotations

from functools import lru_cache

import boto3
from botocore.config import Config

from oms.settings import get_settings

# Standard retry mode retries throttling and 5xx with jittered backoff; pool sized for the
# per-page write fan-out in services.ingest.
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=20,
    max_pool_connections=32,
)


@lru_cache(maxsize=None)
def client(service: str):
    return boto3.client(service, endpoint_url=get_settings().aws_endpoint_url, config=_CONFIG)


def conditional(write, **request) -> dict | None:
    """A conditional DynamoDB write (`client.put_item`, `update_item`, `delete_item` and the request):
    its response, or None when its ConditionExpression did not hold. Other errors raise."""
    from botocore.exceptions import ClientError

    try:
        return write(**request)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
