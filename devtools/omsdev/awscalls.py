"""Counts the AWS API calls made through boto3's default session, by service and operation.

The handlers' clients (oms.adapters.aws) are built from the default session, so registering here
before they are first used sees every call a function makes; tooling that should not be counted
(the emulated event sources, the benchmark's own reads) uses a separate boto3 Session.
"""

from __future__ import annotations

import threading
from collections import Counter

import boto3


class AwsCallCounter:
    def __init__(self) -> None:
        self._counts: Counter = Counter()
        self._lock = threading.Lock()

    def install(self) -> "AwsCallCounter":
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.*.*", self._count)
        return self

    def _count(self, model, **_ignored) -> None:
        with self._lock:
            self._counts[f"{model.service_model.service_name}:{model.name}"] += 1

    def snapshot(self) -> Counter:
        with self._lock:
            return Counter(self._counts)

    def total(self) -> int:
        return sum(self.snapshot().values())
