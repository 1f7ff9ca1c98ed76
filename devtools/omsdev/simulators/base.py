"""Shared machinery of the channel simulators: an HTTP server on 127.0.0.1, fault injection,
platform-style rate limiting and a request log that tests read as ground truth.

Each simulator is a real HTTP server on a free loopback port; our adapters talk to it exactly as
they talk to the platform, so nothing in the tests mocks `requests`.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("5xx", "429", "timeout", "truncated")


@dataclass
class FaultPlan:
    """Injects a fault into a share of API calls; mutable while the simulator runs."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("5xx", "429", "timeout", "truncated")
    timeout_seconds: float = 3.0
    seed: int | None = None
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        self._random = random.Random(self.seed)

    def draw(self) -> str | None:
        with self._lock:
            if self.rate <= 0 or self._random.random() >= self.rate:
                return None
            return self._random.choice(self.kinds)


class TokenBucketLimit:
    """The platform's side of a token bucket: refuses a request when no token is left."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic):
        self.rate, self.burst, self._clock = rate, float(burst), clock
        self._level, self._stamp = float(burst), clock()
        self._lock = threading.Lock()

    def try_take(self) -> tuple[bool, float]:
        """(allowed, seconds until the next token)."""
        with self._lock:
            now = self._clock()
            self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._level >= 1:
                self._level -= 1
                return True, 0.0
            return False, (1 - self._level) / self.rate

    @property
    def used(self) -> int:
        with self._lock:
            level = min(self.burst, self._level + (self._clock() - self._stamp) * self.rate)
            return int(round(self.burst - level))


@dataclass
class Reply:
    status: int
    body: object
    headers: dict = field(default_factory=dict)
    fault: str | None = None  # timeout | truncated: how to break the delivery


@dataclass(frozen=True)
class LoggedRequest:
    monotonic: float
    wall: float
    method: str
    path: str
    status: int
    outcome: str  # ok, fault_5xx, fault_429, fault_timeout, fault_truncated, rate_limited, auth_failed, bad_request


class SimulatorStats:
    def __init__(self) -> None:
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    def log(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def outcomes(self) -> Counter:
        return Counter(entry.outcome for entry in self.log())

    def count(self, outcome: str) -> int:
        return self.outcomes()[outcome]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits ~40 ms for
    # the delayed ACK on every call.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # the request log lives in SimulatorStats
        pass

    def _serve(self) -> None:
        simulator: Simulator = self.server.simulator  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True), self.headers, body)
        reply, outcome = simulator.dispatch(request)
        simulator.stats.record(
            LoggedRequest(time.monotonic(), time.time(), self.command, parts.path, reply.status, outcome)
        )
        self._send(reply, simulator)

    def _send(self, reply: Reply, simulator: "Simulator") -> None:
        payload = json.dumps(reply.body, ensure_ascii=False).encode()
        if reply.fault == "timeout":
            time.sleep(simulator.faults.timeout_seconds)
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
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = _serve
    do_POST = _serve


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: object
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Simulator:
    """Base class: subclasses implement `route(request) -> (Reply, outcome)` and `fault_reply(kind)`."""

    def __init__(self, faults: FaultPlan | None = None, host: str = "127.0.0.1", port: int = 0):
        self.faults = faults or FaultPlan()
        self.stats = SimulatorStats()
        self._server = _Server((host, port), _Handler)
        self._server.simulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Simulator":
        self._thread = threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def dispatch(self, request: Request) -> tuple[Reply, str]:
        if self.is_api_call(request):
            kind = self.faults.draw()
            if kind is not None:
                return self.fault_reply(kind), f"fault_{kind}"
        return self.route(request)

    def is_api_call(self, request: Request) -> bool:
        return True

    def route(self, request: Request) -> tuple[Reply, str]:
        raise NotImplementedError

    def fault_reply(self, kind: str) -> Reply:
        raise NotImplementedError
