"""What the four allocation data-source simulators (WMS, carrier, attendance, quality) share.

The four APIs are our own design, in the shape a Chinese 3PL/WMS integration usually has:
- JSON over HTTPS (HTTP on loopback here), every call authenticated by `X-Api-Key: <key>`; a wrong or
  missing key is 401 `{"error": {"code": "unauthorized", "message": ...}}`;
- every error is `{"error": {"code": <machine-readable>, "message": <text>}}`: 400 `invalid_request`,
  404 `not_found` / `<thing>_not_found`, 405 `method_not_allowed`, 409 `conflict`, 429 `rate_limited`;
- one token bucket per API key (`rate`/s, `burst`, times `rate_multiplier`); over it 429 `rate_limited`
  with `Retry-After: <whole seconds>`;
- injected faults as the channel simulators have them (`FaultPlan`): a 5xx is 503 `unavailable` or 500
  `internal`, a 429 carries `Retry-After: 1`, a timeout answers only after the client gave up, a
  truncated body breaks off half way;
- every answer carries `as_of`, the source's own wall-clock time (an injectable clock with `.now()`),
  which the feed stores so allocation can tell stale data from fresh.

`SourceSimulator` routes by (method, path pattern), checks the key and the bucket, and turns an
`ApiError` raised by an endpoint into the envelope; the request log names the endpoint template
(`GET /v1/warehouses/{warehouse_id}/inventory`) as the operation.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import unquote

from omsdev.simulators.base import Clock, FaultPlan, Reply, Request, Simulator

API_KEY_HEADER = "X-Api-Key"


class WallClock(Protocol):
    def now(self) -> datetime: ...


class SystemWallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualWallClock:
    """A wall clock that only moves when a test says so (reservation confirmations, as_of times)."""

    def __init__(self, start: datetime | None = None):
        if start is not None and start.tzinfo is None:
            raise ValueError("the clock needs an aware start time")
        self._now = start or datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, by: timedelta | float) -> None:
        with self._lock:
            self._now += by if isinstance(by, timedelta) else timedelta(seconds=by)


class ApiError(Exception):
    """An endpoint's refusal: becomes `{"error": {"code", "message"}}` with `status`."""

    def __init__(self, status: int, code: str, message: str, outcome: str = "bad_request"):
        super().__init__(message)
        self.status, self.code, self.message, self.outcome = status, code, message, outcome


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_api_key(source: str) -> str:
    return f"{source}-{secrets.token_hex(12)}"


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.param(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_request", f"{name} must be between {low} and {high}, got {value}")
    return value


def json_body(request: Request) -> dict:
    try:
        body = json.loads(request.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return body


Endpoint = Callable[..., Reply]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/v1/warehouses/{warehouse_id}/inventory"
    endpoint: Endpoint

    @property
    def pattern(self) -> re.Pattern:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")

    @property
    def operation(self) -> str:
        return f"{self.method} {self.template}"


class SourceSimulator(Simulator):
    """Base of the four source simulators: subclasses list their `routes()` and set RATE/BURST."""

    SOURCE = "source"
    RATE, BURST = 10.0, 20

    def __init__(
        self,
        api_key: str | None = None,
        *,
        faults: FaultPlan | None = None,
        rate_multiplier: float = 1.0,
        rate: float | None = None,
        burst: float | None = None,
        clock: WallClock | None = None,
        monotonic: Clock = time.monotonic,
    ):
        super().__init__(faults, rate_multiplier=rate_multiplier, clock=monotonic)
        self.api_key = api_key or new_api_key(self.SOURCE)
        self.wall_clock: WallClock = clock if clock is not None else SystemWallClock()
        self.bucket = self.new_bucket(rate if rate is not None else self.RATE,
                                      burst if burst is not None else self.BURST)
        self._routes = [(route, route.pattern) for route in self.routes()]
        self.lock = threading.RLock()  # guards the in-memory data the tests and the handlers share

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def now(self) -> datetime:
        return self.wall_clock.now()

    # Base-class hooks ----------------------------------------------------------------------------

    def _match(self, request: Request) -> tuple[list[tuple[Route, dict]], bool]:
        """(routes whose pattern matches the path, with their path parameters), and whether any matched."""
        found = []
        for route, pattern in self._routes:
            match = pattern.match(request.path)
            if match:
                # Path segments arrive percent-encoded (a reservation id with "#" comes as %23): decode
                # them as a web framework would.
                found.append((route, {name: unquote(value) for name, value in match.groupdict().items()}))
        return found, bool(found)

    def operation(self, request: Request) -> str:
        for route, _params in self._match(request)[0]:
            if route.method == request.method:
                return route.operation
        return f"{request.method} {request.path}"

    def fault_reply(self, kind: str, request: Request) -> Reply:
        if kind == "429":
            return Reply(429, error_body("rate_limited", "too many requests, slow down"), {"Retry-After": "1"})
        status = self.faults.server_error()
        code = "unavailable" if status == 503 else "internal"
        return Reply(status, error_body(code, "the service is temporarily unavailable, try again"))

    def decorate(self, reply: Reply, request: Request) -> None:
        reply.headers.setdefault("X-Request-Id", secrets.token_hex(8))

    def route(self, request: Request) -> tuple[Reply, str]:
        if request.headers.get(API_KEY_HEADER) != self.api_key:
            return Reply(401, error_body("unauthorized", f"missing or invalid {API_KEY_HEADER}")), "auth_failed"
        allowed, wait = self.bucket.try_take()
        if not allowed:
            retry_after = max(1, math.ceil(wait))
            body = error_body("rate_limited", f"rate limit of {self.bucket.rate:g} requests/s exceeded")
            return Reply(429, body, {"Retry-After": str(retry_after)}), "rate_limited"
        matches, any_path = self._match(request)
        if not any_path:
            return Reply(404, error_body("not_found", f"no such resource: {request.path}")), "bad_request"
        for route, params in matches:
            if route.method == request.method:
                try:
                    return route.endpoint(request, **params), "ok"
                except ApiError as error:
                    return Reply(error.status, error_body(error.code, error.message)), error.outcome
        allowed_methods = ", ".join(sorted({route.method for route, _ in matches}))
        return (Reply(405, error_body("method_not_allowed", f"{request.method} is not allowed here"),
                      {"Allow": allowed_methods}), "bad_request")

    def credentials(self) -> dict:
        """The secret our client reads (`oms/sources/<source>`): where the API is and its key."""
        return {"base_url": self.url, "api_key": self.api_key}
