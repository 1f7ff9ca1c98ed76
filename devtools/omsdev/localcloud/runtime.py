"""In-process Lambda runtime: imports a handler once (a warm container) and invokes it with a context.

All functions share this process, so their environments are merged into os.environ once; two
functions that declare different values for one variable are refused at start.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass

from omsdev.localcloud.template import ACCOUNT_ID, REGION, FunctionSpec


@dataclass
class LambdaContext:
    """The attributes Powertools and handlers read from the real Lambda context."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def merge_environments(environments: dict[str, dict[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    owners: dict[str, str] = {}
    for function_id, environment in environments.items():
        for key, value in environment.items():
            if key in merged and merged[key] != value:
                raise ValueError(
                    f"{function_id} and {owners[key]} declare different values for {key}; "
                    "the local cloud runs all handlers in one process"
                )
            merged[key], owners[key] = value, function_id
    return merged


class LambdaRuntime:
    def __init__(self, functions: list[FunctionSpec]):
        self.functions = {spec.logical_id: spec for spec in functions}
        self._handlers: dict[str, object] = {}
        self._lock = threading.Lock()
        self.invocations: Counter = Counter()
        self.errors: Counter = Counter()
        self.last_error: dict[str, str] = {}
        self.listeners: list = []  # called with (function id, event, result or exception)

    def handler(self, logical_id: str):
        with self._lock:
            if logical_id not in self._handlers:
                spec = self.functions[logical_id]
                if str(spec.code_dir) not in sys.path:
                    sys.path.insert(0, str(spec.code_dir))
                module = importlib.import_module(spec.module)
                self._handlers[logical_id] = getattr(module, spec.entry_point)
            return self._handlers[logical_id]

    def invoke(self, logical_id: str, event: dict):
        spec = self.functions[logical_id]
        context = LambdaContext(logical_id, spec.memory, spec.timeout, str(uuid.uuid4()))
        handler = self.handler(logical_id)
        with self._lock:
            self.invocations[logical_id] += 1
        try:
            result = handler(event, context)
        except Exception as error:
            with self._lock:
                self.errors[logical_id] += 1
                self.last_error[logical_id] = traceback.format_exc(limit=3)
            self._notify(logical_id, event, error)
            raise
        self._notify(logical_id, event, result)
        return result

    def _notify(self, logical_id: str, event: dict, outcome) -> None:
        for listener in list(self.listeners):
            listener(logical_id, event, outcome)


def apply_environment(environment: dict[str, str]) -> None:
    os.environ.update(environment)
