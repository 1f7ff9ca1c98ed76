"""A fresh local cloud per test: moto server on a free loopback port, the real template, unique names."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from omsdev.localcloud.cloud import LocalCloud

FAST_RETRIES = {
    # The schedule's shape (three growing delays, then the DLQ) with seconds a test can wait for.
    "RetryBackoffSeconds": "1,2,3",
    "ChannelHttpTimeoutSeconds": "1",
    "LogLevel": "WARNING",
}


@contextmanager
def serving_api(**parameter_overrides: str) -> Iterator[LocalCloud]:
    """A started local cloud (FAST_RETRIES and the overrides) that also serves the template's API routes
    on a free port; stopped on leaving the block. For module fixtures whose tests share one cloud."""
    local = LocalCloud(port=0, stack_name=f"t{uuid.uuid4().hex[:8]}", start_event_sources=False, api_port=0,
                       parameter_overrides={**FAST_RETRIES, **parameter_overrides})
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def cloud_factory():
    """make(**parameter_overrides) -> a started local cloud with FAST_RETRIES and those overrides on top."""
    started = []

    def make(**parameter_overrides: str) -> LocalCloud:
        local = LocalCloud(port=0, stack_name=f"t{uuid.uuid4().hex[:8]}",
                           parameter_overrides={**FAST_RETRIES, **parameter_overrides}, start_event_sources=False)
        local.start()
        started.append(local)
        return local

    yield make
    for local in started:
        local.stop()


@pytest.fixture
def cloud(cloud_factory):
    return cloud_factory()
