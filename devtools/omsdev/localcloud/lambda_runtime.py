"""In-process Lambda runtime: imports each handler once (a warm container) and invokes it with a context.

All functions share this process, so their environments are merged into os.environ once at start
(`merge_environments` refuses two functions that give one variable different values). Like Lambda,
an invocation that outlives the function's Timeout fails ("Task timed out"), even though in-process
it cannot be cut short. ReservedConcurrentExecutions is enforced: an invocation beyond it is
refused with TooManyRequestsException, as Lambda does; a test that must overlap invocations on
purpose (to prove a lease) says so with `bypass_concurrency`. The emulated event sources invoke
one batch at a time per mapping, and a schedule's next run waits for the previous one. For fault
tests, `runtime.crashes = CrashPlan(...)` crashes a share of invocations after their writes or in the
middle of their batch.
"""

from __future__ import annotations

import importlib
import os
import random
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from omsdev.localcloud.template import ACCOUNT_ID, REGION, FunctionSpec


class FunctionError(RuntimeError):
    """A function cannot be loaded or invoked (bad CodeUri or Handler, clashing modules)."""


class FunctionTimeoutError(FunctionError):
    """The invocation ran longer than the function's Timeout: Lambda reports it failed."""


class FunctionThrottledError(FunctionError):
    """More concurrent invocations than ReservedConcurrentExecutions: Lambda's TooManyRequestsException."""


class InjectedCrashError(FunctionError):
    """A crash the runtime injected (`CrashPlan`): the handler's writes happened, its answer is lost."""


CRASH_KINDS = ("after_writes", "mid_batch")


@dataclass
class CrashPlan:
    """Crashes a share of invocations the way a Lambda dies, for fault tests (off unless set on the runtime):

    - `after_writes`: the handler ran to its end (everything written), then the invocation fails
      before its answer (batch item failures, results) reaches the caller;
    - `mid_batch`: a batch event (`Records`) is cut after a random first part, the handler runs on
      that part, then the invocation fails: the consumer was killed in the middle of its batch.

    Either way the event source sees a failed invocation and retries (or bisects) the whole batch.
    Plain attributes: a test may change `rate` while the cloud runs. `counts`: crashes per (function, kind).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = CRASH_KINDS
    functions: frozenset[str] | None = None  # None: every function
    seed: int | None = None
    counts: dict = field(default_factory=dict)
    # One seeded stream per function: a function's n-th invocation gets the same draw however the
    # functions' invocations interleave (a shared stream made a test's "every consumer crashed" depend on timing).
    _streams: dict = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(CRASH_KINDS)
        if unknown:
            raise ValueError(f"unknown crash kinds {sorted(unknown)}; known: {CRASH_KINDS}")

    def draw(self, logical_id: str, event: Any) -> tuple[str, int] | None:
        """(kind, records kept for mid_batch) to inject into this invocation, or None."""
        if self.functions is not None and logical_id not in self.functions:
            return None
        records = event.get("Records") if isinstance(event, dict) else None
        with self._lock:
            stream = self._streams.setdefault(
                logical_id, random.Random(None if self.seed is None else f"{self.seed}:{logical_id}"))
            if self.rate <= 0 or stream.random() >= self.rate:
                return None
            kinds = [k for k in self.kinds if k != "mid_batch" or (records and len(records) > 1)]
            if not kinds:
                return None
            kind = stream.choice(kinds)
            kept = stream.randint(1, len(records) - 1) if kind == "mid_batch" else 0
            self.counts[(logical_id, kind)] = self.counts.get((logical_id, kind), 0) + 1
            return kind, kept


class LambdaContext:
    """The context object Lambda passes to a Python handler (the attributes Powertools reads)."""

    def __init__(self, function_name: str, memory_limit_in_mb: int, timeout_seconds: float,
                 aws_request_id: str | None = None, function_version: str = "$LATEST", *,
                 invoked_function_arn: str | None = None):
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn or f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d") + f"/[{function_version}]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def merge_environments(environments: dict[str, dict[str, str]]) -> dict[str, str]:
    """One environment for all functions; a variable with two different values is an error."""
    merged: dict[str, str] = {}
    owners: dict[str, str] = {}
    for function_id, environment in environments.items():
        for key, value in environment.items():
            if key in merged and merged[key] != value:
                raise FunctionError(
                    f"{owners[key]} sets {key}={merged[key]!r} but {function_id} sets {key}={value!r}; "
                    "the local cloud runs all handlers in one process, so they must agree"
                )
            merged[key], owners[key] = value, function_id
    return merged


def apply_environment(environment: dict[str, str]) -> None:
    os.environ.update(environment)


class FunctionStats:
    """Invocations, errors and durations of one function (thread-safe)."""

    def __init__(self) -> None:
        self.invocations = 0
        self.errors = 0
        self.timeouts = 0
        self.throttles = 0
        self.last_error: str | None = None
        self.durations: deque[float] = deque(maxlen=1000)
        self._lock = threading.Lock()

    def record(self, seconds: float, error: BaseException | None) -> None:
        with self._lock:
            self.invocations += 1
            self.durations.append(seconds)
            if error is not None:
                self.errors += 1
                self.timeouts += isinstance(error, FunctionTimeoutError)
                self.last_error = "".join(traceback.format_exception_only(type(error), error)).strip()

    def throttled(self) -> None:
        with self._lock:
            self.throttles += 1

    def snapshot(self) -> dict:
        with self._lock:
            ordered = sorted(self.durations)
        pick = lambda share: round(ordered[min(int(share * len(ordered)), len(ordered) - 1)] * 1000, 1) if ordered else None
        return {
            "invocations": self.invocations, "errors": self.errors, "timeouts": self.timeouts,
            "throttles": self.throttles,
            "duration_ms": {"p50": pick(0.5), "p95": pick(0.95), "max": pick(1.0)},
            "last_error": self.last_error,
        }


class LambdaRuntime:
    """Loads and invokes the template's functions in this process."""

    def __init__(self, functions: list[FunctionSpec], *, function_names: dict[str, str] | None = None,
                 region: str = REGION, account_id: str = ACCOUNT_ID):
        self.functions = {spec.logical_id: spec for spec in functions}
        self.function_names = {fid: (function_names or {}).get(fid, fid) for fid in self.functions}
        self.region, self.account_id = region, account_id
        self.stats = {fid: FunctionStats() for fid in self.functions}
        self.listeners: list[Callable[[str, dict, Any], None]] = []  # (function id, event, result or error)
        self._handlers: dict[str, Callable] = {}
        self._load_lock = threading.Lock()
        self._in_flight: dict[str, int] = {fid: 0 for fid in self.functions}
        self._in_flight_lock = threading.Lock()
        self.crashes: CrashPlan | None = None

    def function_arn(self, logical_id: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_names[logical_id]}"

    def spec(self, logical_id: str) -> FunctionSpec:
        if logical_id not in self.functions:
            raise FunctionError(f"no function {logical_id!r}; the template has: {', '.join(self.functions)}")
        return self.functions[logical_id]

    def handler(self, logical_id: str) -> Callable:
        """The handler callable, imported on first use from the function's CodeUri (then warm)."""
        with self._load_lock:
            if logical_id not in self._handlers:
                self._handlers[logical_id] = self._load(self.spec(logical_id))
            return self._handlers[logical_id]

    def load_all(self) -> None:
        for logical_id in self.functions:
            self.handler(logical_id)

    def _load(self, spec: FunctionSpec) -> Callable:
        if spec.code_uri is None or not spec.code_uri.is_dir() or not spec.module:
            raise FunctionError(f"{spec.logical_id}: needs a local CodeUri directory and Handler module.function "
                                f"(CodeUri={spec.code_uri}, Handler={spec.handler})")
        code_dir = str(spec.code_uri)
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
        top = spec.module.split(".")[0]
        loaded = sys.modules.get(top)
        loaded_from = getattr(loaded, "__file__", None) or next(iter(getattr(loaded, "__path__", [])), None)
        if loaded_from and not Path(loaded_from).resolve().is_relative_to(spec.code_uri):
            raise FunctionError(f"{spec.logical_id}: module {top!r} is already loaded from {loaded_from}, "
                                f"not from its CodeUri {code_dir}; one process cannot hold both")
        try:
            module = importlib.import_module(spec.module)
            return getattr(module, spec.entry_point)
        except (ImportError, AttributeError) as error:
            raise FunctionError(f"{spec.logical_id}: cannot load handler {spec.handler} from {code_dir}: {error}") from error

    def invoke(self, logical_id: str, event: Any, *, request_id: str | None = None, bypass_concurrency: bool = False) -> Any:
        """Invoke synchronously like Lambda's RequestResponse; the handler's exception propagates."""
        spec = self.spec(logical_id)
        handler = self.handler(logical_id)
        self._enter(spec, bypass_concurrency)
        try:
            return self._run(spec, handler, event, request_id)
        finally:
            with self._in_flight_lock:
                self._in_flight[logical_id] -= 1

    def _enter(self, spec: FunctionSpec, bypass: bool) -> None:
        with self._in_flight_lock:
            limit = spec.reserved_concurrency
            if not bypass and limit is not None and self._in_flight[spec.logical_id] >= int(limit):
                self.stats[spec.logical_id].throttled()
                raise FunctionThrottledError(f"{spec.logical_id}: Rate Exceeded (TooManyRequestsException): "
                                             f"ReservedConcurrentExecutions {limit} already running")
            self._in_flight[spec.logical_id] += 1

    def _run(self, spec: FunctionSpec, handler: Callable, event: Any, request_id: str | None) -> Any:
        logical_id = spec.logical_id
        context = LambdaContext(function_name=self.function_names[logical_id], invoked_function_arn=self.function_arn(logical_id),
                                memory_limit_in_mb=spec.memory_size, timeout_seconds=spec.timeout, aws_request_id=request_id)
        started = time.monotonic()
        crash = self.crashes.draw(logical_id, event) if self.crashes is not None else None
        try:
            if crash is not None and crash[0] == "mid_batch":
                handler({**event, "Records": event["Records"][:crash[1]]}, context)
                raise InjectedCrashError(f"{logical_id}: killed after {crash[1]} of {len(event['Records'])} records")
            result = handler(event, context)
            if crash is not None:
                raise InjectedCrashError(f"{logical_id}: crashed after its writes, before answering")
            elapsed = time.monotonic() - started
            if elapsed > spec.timeout:
                raise FunctionTimeoutError(f"{logical_id}: Task timed out after {spec.timeout:.2f} seconds "
                                           f"(ran {elapsed:.2f} s in-process)")
        except BaseException as error:
            self.stats[logical_id].record(time.monotonic() - started, error)
            self._notify(logical_id, event, error)
            raise
        self.stats[logical_id].record(elapsed, None)
        self._notify(logical_id, event, result)
        return result

    def snapshot(self) -> dict[str, dict]:
        return {fid: stats.snapshot() for fid, stats in self.stats.items()}

    def _notify(self, logical_id: str, event: Any, outcome: Any) -> None:
        for listener in list(self.listeners):
            listener(logical_id, event, outcome)
