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
