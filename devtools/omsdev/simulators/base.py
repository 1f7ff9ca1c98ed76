"""Shared machinery of the channel simulators: a loopback HTTP server, fault injection, platform
rate limiting and a request log that tests read as ground truth.

Each simulator is a real HTTP server on a free 127.0.0.1 port; our adapters talk to it exactly as
they talk to the platform, so nothing in the tests mocks `requests`. Facts enforced here:
- every JSON answer carries a correct Content-Length, except a *truncated* fault, which promises
  the whole body, sends half of it and closes the connection (what a dropped proxy looks like);
- a *timeout* fault answers only after `FaultPlan.timeout_seconds`, longer than a client's read
  timeout; *5xx* (a status from `FaultPlan.server_errors`, 503 by default) and *429* faults answer
  with the platform's own envelopes (the subclass builds them);
- platform rate limits are token buckets (Amazon) or leaky buckets (Shopify: the same thing seen
  from the other side), refilled on an injectable monotonic clock and scaled by `rate_multiplier`
  (a higher usage plan).
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("5xx", "429", "timeout", "truncated")
OUTCOMES = (
    "ok", "fault_5xx", "fault_429", "fault_timeout", "fault_truncated", "rate_limited", "auth_failed", "bad_request",
)
Clock = Callable[[], float]


class ManualClock:
    """A monotonic clock that only moves when a test says so."""

    def __init__(self, start: float = 1_000.0):
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass
class FaultPlan:
    """Breaks a share of API calls (never the token endpoint unless `include_token_endpoint`).

    Plain attributes: tests change `rate` or `kinds` while the simulator runs.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    timeout_seconds: float = 3.0
    seed: int | None = None
    include_token_endpoint: bool = False
    server_errors: tuple[int, ...] = (503,)  # statuses a 5xx fault picks from, e.g. (500, 503)
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        self._random = random.Random(self.seed)

    def draw(self) -> str | None:
        """The fault to inject into this call, or None."""
        with self._lock:
            if self.rate <= 0 or not self.kinds or self._random.random() >= self.rate:
                return None
            return self._random.choice(tuple(self.kinds))

    def server_error(self) -> int:
        """The status of a 5xx fault: a seeded choice among `server_errors`."""
        with self._lock:
            return self._random.choice(tuple(self.server_errors))


class TokenBucket:
    """The platform's side of a token bucket: `burst` tokens, refilled at `rate` x `rate_multiplier`
    per second. A leaky bucket of capacity C leaking r/s is the same bucket: `used` is its fill level.
    """

    def __init__(self, rate: float, burst: float, *, rate_multiplier: float = 1.0, clock: Clock = time.monotonic):
        self.rate = rate * rate_multiplier
        self.burst = float(burst)
        self._clock = clock
        self._level, self._stamp = self.burst, clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.burst, self._level + max(now - self._stamp, 0.0) * self.rate)
        self._stamp = now

    def try_take(self) -> tuple[bool, float]:
        """(allowed, seconds until the next token would be there)."""
        with self._lock:
            self._refill()
            if self._level >= 1:
                self._level -= 1
                return True, 0.0
            return False, (1 - self._level) / self.rate

    @property
    def used(self) -> int:
        """Requests currently in the bucket (Shopify's `n` in `n/40`)."""
        with self._lock:
            self._refill()
            return max(0, math.ceil(self.burst - self._level - 1e-9))


class AccessTokens:
    """The access tokens a simulated platform issued, each expiring on the simulator's clock.

    Every platform's token check is the same bookkeeping; only its error envelope differs, so
    `state()` says what is wrong and the simulator answers in its platform's words.
    """

    def __init__(self, clock: Clock):
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, token: str, ttl_seconds: float) -> str:
        with self._lock:
            self._expiry[token] = self._clock() + ttl_seconds
        return token

    def expire_all(self) -> None:
        """Every token issued so far expires now (tests of the refresh path)."""
        with self._lock:
            self._expiry = {token: float("-inf") for token in self._expiry}

    def state(self, token: str | None) -> str:
        """"unknown", "expired" or "live"."""
        with self._lock:
            expiry = self._expiry.get(token or "")
        if expiry is None:
            return "unknown"
        return "expired" if expiry <= self._clock() else "live"

    def live(self, token: str | None) -> bool:
        return self.state(token) == "live"


@dataclass
class Reply:
    status: int
    body: object
    headers: dict = field(default_factory=dict)
    fault: str | None = None  # timeout | truncated: how to break the delivery


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: object  # http.client.HTTPMessage: case-insensitive get()
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def form(self) -> dict[str, str]:
        content_type = self.headers.get("Content-Type") or ""
        text = self.body.decode("utf-8", "replace")
        if content_type.startswith("application/json"):
            try:
                data = json.loads(text or "{}")
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return {key: values[0] for key, values in parse_qs(text).items()}


@dataclass(frozen=True)
class LoggedRequest:
    monotonic: float
    wall: float
    method: str
    path: str
    status: int
    outcome: str  # one of OUTCOMES
    operation: str = ""  # the API operation (a gateway's `method`), see Simulator.operation


class SimulatorStats:
    """Thread-safe request log and per-outcome counters."""

    def __init__(self) -> None:
        self._log: list[LoggedRequest] = []
        self._outcomes: Counter = Counter()
        self._lock = threading.Lock()

    def record(self, method: str, path: str, status: int, outcome: str, operation: str = "") -> LoggedRequest:
        entry = LoggedRequest(time.monotonic(), time.time(), method, path, status, outcome, operation or path)
        with self._lock:
            self._log.append(entry)
            self._outcomes[outcome] += 1
        return entry

    def log(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def outcomes(self) -> Counter:
        with self._lock:
            return Counter(self._outcomes)

    def count(self, outcome: str) -> int:
        with self._lock:
            return self._outcomes[outcome]

    def count_path(self, path: str) -> int:
        """Requests to exactly this path, whatever their outcome."""
        return sum(1 for entry in self.log() if entry.path == path)

    def by_operation(self) -> dict[str, Counter]:
        """operation -> outcomes of its requests (calls per endpoint, refusals among them)."""
        table: dict[str, Counter] = {}
        for entry in self.log():
            table.setdefault(entry.operation, Counter())[entry.outcome] += 1
        return table

    @property
    def total(self) -> int:
        with self._lock:
            return len(self._log)


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits ~40 ms for
    # the delayed ACK on every call.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the request log lives in SimulatorStats
        pass

    def _serve(self) -> None:
        simulator: Simulator = self.server.simulator  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True), self.headers, body)
        reply, outcome = simulator.dispatch(request)
        simulator.stats.record(self.command, parts.path, reply.status, outcome, simulator.operation(request))
        self._send(reply, simulator)

    def _send(self, reply: Reply, simulator: Simulator) -> None:
        payload = json.dumps(reply.body, ensure_ascii=False).encode()
        if reply.fault == "timeout":
            simulator.sleep(simulator.faults.timeout_seconds)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, str(value))
            if reply.fault == "truncated":
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up first (its read timeout): nothing left to tell it
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Simulator:
    """Base class: subclasses implement `route(request) -> (Reply, outcome)`, `fault_reply(kind, request)`
    and may override `is_api_call` (which requests faults may hit) and `decorate` (headers on every reply).
    The port is bound at construction, so `url` is known before `start()`.
    """

    def __init__(
        self,
        faults: FaultPlan | None = None,
        *,
        rate_multiplier: float = 1.0,
        clock: Clock = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.faults = faults if faults is not None else FaultPlan()
        self.rate_multiplier = rate_multiplier
        self.clock = clock
        self.stats = SimulatorStats()
        self._stopping = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.simulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    def new_bucket(self, rate: float, burst: float) -> TokenBucket:
        return TokenBucket(rate, burst, rate_multiplier=self.rate_multiplier, clock=self.clock)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a timeout fault
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def dispatch(self, request: Request) -> tuple[Reply, str]:
        kind = self.faults.draw() if self.is_api_call(request) else None
        if kind in ("5xx", "429"):
            reply, outcome = self.fault_reply(kind, request), f"fault_{kind}"
        else:
            try:
                reply, outcome = self.route(request)
            except Exception:  # a simulator bug: say so loudly rather than hang the client
                traceback.print_exc(file=sys.stderr)
                reply, outcome = Reply(500, {"errors": "simulator error"}), "simulator_error"
            if kind is not None:  # timeout / truncated break the delivery of the real answer
                reply.fault, outcome = kind, f"fault_{kind}"
        self.decorate(reply, request)
        return reply, outcome

    def is_api_call(self, request: Request) -> bool:
        return True

    def operation(self, request: Request) -> str:
        """The API operation a request calls, for the request log: its path unless a gateway
        multiplexes operations on one path (then the subclass names them)."""
        return request.path

    def decorate(self, reply: Reply, request: Request) -> None:
        """Headers the platform puts on every answer."""

    def route(self, request: Request) -> tuple[Reply, str]:
        raise NotImplementedError

    def fault_reply(self, kind: str, request: Request) -> Reply:
        raise NotImplementedError
