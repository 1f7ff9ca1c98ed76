"""A fault-injecting HTTP proxy in front of the local cloud's AWS endpoint (issue 8, the AWS boundary).

`FaultProxy(upstream, rules).start()` listens on a loopback port and forwards every request to the
upstream endpoint (a moto server, LocalStack) unchanged: method, path, body and headers, the Host and
the SigV4 Authorization included; the answer streams back as it came. Each call is identified as a
(service, operation) pair with botocore's service names (`identify`), and `FaultRules` decides whether
it fails and how:

- "throttle"   the service's throttling error, shaped as AWS sends it (DynamoDB ThrottlingException,
               SQS RequestThrottled, S3 503 SlowDown, query-protocol Throttling ...);
- "throughput" DynamoDB's ProvisionedThroughputExceededException (elsewhere: as "throttle");
- "500"        the service's internal error with HTTP 500 (503 is S3's throttling, not this);
- "drop"       the connection is closed without an answer before forwarding: the call never reached AWS;
- "drop_after" the call is forwarded and done, then the connection is closed without the answer: the
               write happened but the caller cannot know. botocore retries it, so a conditional write
               comes back as ConditionalCheckFailed although it was this caller's own write.

botocore (standard retry mode) retries all of these: throttling codes with a 1 s backoff base,
500s and closed connections with a 25-50 ms base, within its attempts and its retry quota (500 per
client; a throttled retry takes 5, any other 14, a success gives back). Rules
apply per service and operation, first match wins, with a seeded RNG (deterministic for sequential
calls); they can be changed while the proxy runs. Counters of calls and injected faults per
(service, operation, kind) are kept for reports. Requests the proxy cannot place in an AWS service
(moto's own `/moto-api/`) and its read-only counters page (`GET /_fault-proxy/counters`) are never
faulted.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KINDS = ("throttle", "throughput", "500", "drop", "drop_after")
CONTROL_PREFIX = "/_fault-proxy/"
NEVER_FAULTED = frozenset({"moto-api", "fault-proxy", "unknown"})

# X-Amz-Target prefixes -> botocore service names (json protocol services).
TARGET_SERVICES = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AmazonSQS": "sqs",
    "secretsmanager": "secretsmanager",
    "AmazonSSM": "ssm",
    "GraniteServiceVersion20100801": "cloudwatch",
    "AWSCognitoIdentityProviderService": "cognito-idp",
    "Logs_20140328": "logs",
    "AWSEvents": "events",
    "Kinesis_20131202": "kinesis",
    "TrentService": "kms",
    "AWSStepFunctions": "stepfunctions",
}
# SigV4 credential-scope names that differ from botocore's service names.
SCOPE_SERVICES = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "apigateway"}
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
_RPC_V2_PATH = re.compile(r"^/service/[^/]+/operation/([^/?]+)")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
               "expect", "content-length"}
_UPSTREAM_TIMEOUT_SECONDS = 60  # beyond an SQS long poll (20 s) and the functions' read timeout


# -- rules and counters ------------------------------------------------------------------------

@dataclass(frozen=True)
class FaultRule:
    """Fault `rate` (0..1) of the calls to `service` ("*": any AWS service) and `operation` (a name,
    several names, or "*"), except the `exclude`d operations; each fault is one of `kinds`, chosen
    at random. `budget` caps how many faults the rule injects in all (None: no cap)."""

    service: str = "*"
    operation: str | tuple[str, ...] | frozenset[str] = "*"
    rate: float = 1.0
    kinds: tuple[str, ...] = ("throttle",)
    exclude: tuple[str, ...] | frozenset[str] = ()
    budget: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within 0..1, not {self.rate}")
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        unknown = [kind for kind in kinds if kind not in KINDS]
        if not kinds or unknown:
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, not {self.kinds!r}")
        if self.budget is not None and self.budget < 0:
            raise ValueError("budget must be None or >= 0")
        operation = self.operation if isinstance(self.operation, str) else frozenset(self.operation)
        exclude = frozenset((self.exclude,) if isinstance(self.exclude, str) else self.exclude)
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "operation", operation)
        object.__setattr__(self, "exclude", exclude)

    def matches(self, service: str, operation: str) -> bool:
        if service in NEVER_FAULTED or operation in self.exclude:
            return False
        if self.service not in ("*", service):
            return False
        if isinstance(self.operation, str):
            return self.operation in ("*", operation)
        return operation in self.operation


@dataclass
class _ActiveRule:
    rule: FaultRule
    remaining: int | None = field(default=None)


class FaultRules:
    """The proxy's rules, RNG and counters; thread-safe, changeable while the proxy runs.

    `decide(service, operation)` is what the proxy asks for every call: it counts the call and
    returns the fault kind to inject, or None. While `enabled` is False (or inside `paused()`)
    nothing is injected but calls are still counted.
    """

    def __init__(self, rules: Iterable[FaultRule] = (), *, seed: int = 0, enabled: bool = True):
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._rules: list[_ActiveRule] = []
        self._enabled = enabled
        self._calls: Counter = Counter()
        self._faults: Counter = Counter()
        self._proxy_errors: Counter = Counter()
        self.recent: deque = deque(maxlen=500)  # the latest injected faults, newest last
        self.set(*rules)

    # configuration
    def set(self, *rules: FaultRule) -> "FaultRules":
        """Replace all rules (in order: the first rule that matches a call decides)."""
        with self._lock:
            self._rules = [_ActiveRule(rule, rule.budget) for rule in rules]
        return self

    def add(self, rule: FaultRule) -> "FaultRules":
        with self._lock:
            self._rules.append(_ActiveRule(rule, rule.budget))
        return self

    def clear(self) -> "FaultRules":
        return self.set()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [active.rule for active in self._rules]

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._random.seed(seed)

    @property
    def enabled(self) -> bool:
        return self._enabled

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    @contextmanager
    def paused(self) -> Iterator["FaultRules"]:
        """No faults inside the block (e.g. while a test sets up or reads its end state)."""
        was = self._enabled
        self._enabled = False
        try:
            yield self
        finally:
            self._enabled = was

    # the proxy's question
    def decide(self, service: str, operation: str, attempt: str | None = None) -> str | None:
        with self._lock:
            self._calls[(service, operation)] += 1
            if not self._enabled:
                return None
            for active in self._rules:
                if active.remaining == 0 or not active.rule.matches(service, operation):
                    continue  # a rule whose budget is spent has no say any more
                if self._random.random() >= active.rule.rate:
                    return None
                kind = self._random.choice(active.rule.kinds)
                if active.remaining is not None:
                    active.remaining -= 1
                self._faults[(service, operation, kind)] += 1
                self.recent.append((time.time(), service, operation, kind, attempt))
                return kind
            return None

    def count_proxy_error(self, service: str, operation: str) -> None:
        with self._lock:
            self._proxy_errors[(service, operation)] += 1

    # counters
    def calls(self, service: str | None = None, operation: str | None = None) -> int:
        """Calls that reached the proxy (every attempt of a retried call counts)."""
        with self._lock:
            return sum(count for (s, o), count in self._calls.items()
                       if service in (None, s) and operation in (None, o))

    def injected(self, service: str | None = None, operation: str | None = None, kind: str | None = None) -> int:
        """Faults injected, optionally only of one service, operation and kind."""
        with self._lock:
            return sum(count for (s, o, k), count in self._faults.items()
                       if service in (None, s) and operation in (None, o) and kind in (None, k))

    def snapshot(self) -> dict:
        """{"calls": {"service:Operation": n}, "faults": {"service:Operation:kind": n}, "proxy_errors": {...}};
        proxy errors are calls the proxy could not complete (the endpoint failed or the client went away)."""
        with self._lock:
            return {
                "calls": {f"{s}:{o}": n for (s, o), n in sorted(self._calls.items())},
                "faults": {f"{s}:{o}:{k}": n for (s, o, k), n in sorted(self._faults.items())},
                "proxy_errors": {f"{s}:{o}": n for (s, o), n in sorted(self._proxy_errors.items())},
            }

    def report(self) -> list[dict]:
        """One row per (service, operation): calls and faults per kind, for a reliability report."""
        with self._lock:
            rows = []
            for (service, operation), calls in sorted(self._calls.items()):
                faults = {kind: self._faults.get((service, operation, kind), 0) for kind in KINDS}
                rows.append({"service": service, "operation": operation, "calls": calls, **faults,
                             "faults": sum(faults.values())})
            return rows

    def reset_counters(self) -> None:
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self._proxy_errors.clear()
            self.recent.clear()


# -- identifying a call ------------------------------------------------------------------------

def identify(method: str, path: str, headers, body: bytes) -> tuple[str, str]:
    """(service, operation) of an AWS call as botocore names them, e.g. ("dynamodb", "PutItem")."""
    split = urlsplit(path)
    if split.path.startswith("/moto-api"):
        return "moto-api", split.path
    if split.path.startswith(CONTROL_PREFIX):
        return "fault-proxy", split.path
    scope = _scope_service(headers.get("Authorization", "") or "", split.query)
    target = headers.get("X-Amz-Target")
    if target:
        prefix, _, operation = target.rpartition(".")
        return TARGET_SERVICES.get(prefix, scope or prefix.lower()), operation
    rpc = _RPC_V2_PATH.match(split.path)
    if rpc:
        return scope or "unknown", rpc.group(1)
    if scope == "s3":
        return "s3", s3_operation(method, path, headers)
    action = _query_action(split.query, headers, body)
    if action:
        return scope or "unknown", action
    return scope or "unknown", f"{method} {split.path}"


def _scope_service(authorization: str, query: str) -> str | None:
    found = _CREDENTIAL_SCOPE.search(authorization)
    if found is None:  # a presigned URL carries the scope in its query
        credential = parse_qs(query).get("X-Amz-Credential", [""])[0]
        found = _CREDENTIAL_SCOPE.search(f"Credential={credential}")
    if found is None:
        return None
    return SCOPE_SERVICES.get(found.group(1), found.group(1))


def _query_action(query: str, headers, body: bytes) -> str | None:
    action = parse_qs(query).get("Action")
    if action:
        return action[0]
    if "x-www-form-urlencoded" in (headers.get("Content-Type") or "") and body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    return None


_S3_OBJECT_SUBRESOURCES = {"tagging": "ObjectTagging", "acl": "ObjectAcl", "retention": "ObjectRetention",
                           "legal-hold": "ObjectLegalHold", "attributes": "ObjectAttributes"}
_S3_VERBS = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}


def s3_operation(method: str, path: str, headers) -> str:
    """S3's operation from the method, path and sub-resource, roughly as botocore names it."""
    split = urlsplit(path)
    query = parse_qs(split.query, keep_blank_values=True)
    bucket, _, key = split.path.lstrip("/").partition("/")
    verb = _S3_VERBS.get(method, method.title())
    if not bucket:
        return "ListBuckets"
    if key:
        if "uploadId" in query:
            return {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload",
                    "GET": "ListParts"}.get(method, f"{verb}MultipartUpload")
        if "uploads" in query and method == "POST":
            return "CreateMultipartUpload"
        for name, operation in _S3_OBJECT_SUBRESOURCES.items():
            if name in query:
                return f"{verb}{operation}"
        if method == "PUT" and headers.get("x-amz-copy-source"):
            return "CopyObject"
        return f"{verb}Object"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "GET" and "versions" in query:
        return "ListObjectVersions"
    if method == "GET" and "uploads" in query:
        return "ListMultipartUploads"
    subresources = [name for name in query if name not in ("list-type", "prefix", "delimiter", "marker", "max-keys",
                                                            "continuation-token", "start-after", "encoding-type",
                                                            "fetch-owner", "x-id")]
    if subresources:
        sub = "".join(part.title() for part in subresources[0].split("-"))
        return f"{verb}Bucket{sub}"
    if method == "GET":
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, f"{verb}Bucket")


# -- fault answers, shaped as AWS sends them -----------------------------------------------------

@dataclass(frozen=True)
class FaultAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


_DYNAMODB = "com.amazonaws.dynamodb.v20120810#"
# (status, code, message) per service and kind, json protocol (X-Amz-Target).
_JSON_ERRORS = {
    "dynamodb": {
        "throttle": (400, _DYNAMODB + "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
        "throughput": (400, _DYNAMODB + "ProvisionedThroughputExceededException",
                       "The level of configured provisioned throughput for the table was exceeded. "
                       "Consider increasing your provisioning level with the UpdateTable API."),
        "500": (500, _DYNAMODB + "InternalServerError", "Internal server error"),
    },
    "dynamodbstreams": {
        "throttle": (400, _DYNAMODB + "LimitExceededException", "Rate of requests exceeds the allowed throughput."),
        "500": (500, _DYNAMODB + "InternalServerError", "Internal server error"),
    },
    # SQS speaks JSON with query-compatible errors: the code is also sent in x-amzn-query-error.
    "sqs": {
        "throttle": (400, "com.amazonaws.sqs#RequestThrottled", "Request is throttled."),
        "500": (500, "com.amazonaws.sqs#InternalFailure",
                "The request processing has failed because of an unknown error, exception or failure."),
    },
    "secretsmanager": {
        "throttle": (400, "ThrottlingException", "Rate exceeded"),
        "500": (500, "InternalServiceError", "An error occurred on the server side."),
    },
    "ssm": {
        "throttle": (400, "ThrottlingException", "Rate exceeded"),
        "500": (500, "InternalServerError", "An error occurred on the server side."),
    },
    "*": {
        "throttle": (400, "ThrottlingException", "Rate exceeded"),
        "500": (500, "InternalFailure",
                "The request processing has failed because of an unknown error, exception or failure."),
    },
}
# (status, code, message, type) per service and kind, query protocol (Action=...) and S3 (rest-xml).
_XML_ERRORS = {
    "s3": {
        "throttle": (503, "SlowDown", "Please reduce your request rate.", ""),
        "500": (500, "InternalError", "We encountered an internal error. Please try again.", ""),
    },
    "sqs": {
        "throttle": (400, "RequestThrottled", "Request is throttled.", "Sender"),
        "500": (500, "InternalError", "We encountered an internal error. Please try again.", "Receiver"),
    },
    "sns": {
        "throttle": (400, "Throttling", "Rate exceeded", "Sender"),
        "500": (500, "InternalError", "An internal error has occurred.", "Receiver"),
    },
    "*": {
        "throttle": (400, "Throttling", "Rate exceeded", "Sender"),
        "500": (500, "InternalFailure",
                "The request processing has failed because of an unknown error, exception or failure.", "Receiver"),
    },
}


def fault_answer(service: str, kind: str, method: str, headers) -> FaultAnswer:
    """The HTTP answer AWS gives for a throttled ("throttle", "throughput") or failed ("500") call."""
    if kind == "throughput" and service != "dynamodb":
        kind = "throttle"
    request_id = str(uuid.uuid4())
    common = [("Date", formatdate(usegmt=True))]
    if headers.get("X-Amz-Target"):
        errors = _JSON_ERRORS.get(service, _JSON_ERRORS["*"])
        status, code, message = errors.get(kind) or errors["throttle"]
        content_type = headers.get("Content-Type") or "application/x-amz-json-1.0"
        answer = [("x-amzn-RequestId", request_id), ("Content-Type", content_type)]
        if service == "sqs":
            short = code.rpartition("#")[2]
            answer.append(("x-amzn-query-error", f"{short};{'Receiver' if status >= 500 else 'Sender'}"))
        body = json.dumps({"__type": code, "message": message}).encode()
        return FaultAnswer(status, common + answer, body)
    if (headers.get("smithy-protocol") or "").startswith("rpc-v2-cbor"):
        status, code, message = _JSON_ERRORS["*"][kind if kind == "500" else "throttle"]
        body = _cbor_text_map({"__type": code, "message": message})
        return FaultAnswer(status, common + [("x-amzn-RequestId", request_id), ("smithy-protocol", "rpc-v2-cbor"),
                                             ("Content-Type", "application/cbor")], body)
    errors = _XML_ERRORS.get(service, _XML_ERRORS["*"])
    status, code, message, error_type = errors[kind if kind == "500" else "throttle"]
    if service == "s3":
        answer = [("x-amz-request-id", request_id[:16].replace("-", "").upper()),
                  ("x-amz-id-2", uuid.uuid4().hex), ("Content-Type", "application/xml")]
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{request_id}</RequestId><HostId>{uuid.uuid4().hex}</HostId></Error>").encode()
        return FaultAnswer(status, common + answer, b"" if method == "HEAD" else body)
    body = (f'<?xml version="1.0"?>\n<ErrorResponse><Error><Type>{error_type}</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
    return FaultAnswer(status, common + [("x-amzn-RequestId", request_id), ("Content-Type", "text/xml")], body)


def _cbor_text_map(values: dict[str, str]) -> bytes:
    """A CBOR map of text strings (all an rpc-v2-cbor error body needs)."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        if length < 256:
            return bytes([major << 5 | 24, length])
        return bytes([major << 5 | 25]) + length.to_bytes(2, "big")

    out = bytearray(head(5, len(values)))
    for key, value in values.items():
        for text in (key, value):
            encoded = text.encode()
            out += head(3, len(encoded)) + encoded
    return bytes(out)


# -- the proxy ---------------------------------------------------------------------------------

class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, upstream: tuple[str, int], rules: FaultRules):
        self.upstream = upstream
        self.rules = rules
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _ProxyHandler)


class _ProxyHandler(BaseHTTPRequestHandler):
    """One client connection (keep-alive); its own keep-alive connection to the upstream endpoint."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are separate writes: no delayed-ACK stall between them
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        self._upstream: http.client.HTTPConnection | None = None
        self._upstream_used = False
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        if self._upstream is not None:
            self._upstream.close()
        try:
            super().finish()
        except OSError:
            pass  # the client went away (or was dropped on purpose)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass  # one line per AWS call would drown the local cloud's console

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        service, operation = identify(self.command, self.path, self.headers, body)
        if service == "fault-proxy":
            self._answer_control()
            return
        kind = self.server.rules.decide(service, operation, self.headers.get("amz-sdk-request"))
        if kind == "drop":
            self._drop()
            return
        if kind in ("throttle", "throughput", "500"):
            answer = fault_answer(service, kind, self.command, self.headers)
            self._send_head(answer.status, answer.headers, len(answer.body))
            self.wfile.write(answer.body)
            return
        try:
            response = self._forward(body)
            if kind == "drop_after":
                response.read()
                self._drop()
                return
            self._relay(response)
        except (OSError, http.client.HTTPException):
            # The endpoint failed or went away (or the client did): the client sees no (complete) answer.
            self.server.rules.count_proxy_error(service, operation)
            if self._upstream is not None:
                self._upstream.close()
                self._upstream = None
            self._drop()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    # request side
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes) -> http.client.HTTPResponse:
        """The upstream's response to the client's request, headers read, body not yet."""
        for attempt in range(2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*self.server.upstream, timeout=_UPSTREAM_TIMEOUT_SECONDS)
                self._upstream_used = False
            try:
                self._upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        self._upstream.putheader(name, value)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    self._upstream.putheader("Content-Length", str(len(body)))
                self._upstream.endheaders(body or None)
                response = self._upstream.getresponse()
                self._upstream_used = True
                return response
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # A kept-alive upstream connection the server had closed: once more on a new one.
                reused = self._upstream_used
                self._upstream.close()
                self._upstream = None
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    # answer side
    def _send_head(self, status: int, headers: Iterable[tuple[str, str]], length: int | None) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        headers = response.getheaders()
        if response.chunked or response.length is None:
            body = response.read()
            self._send_head(response.status, headers, len(body))
            if self.command != "HEAD":
                self.wfile.write(body)
        else:
            declared = next((value for name, value in headers if name.lower() == "content-length"), None)
            self._send_head(response.status, headers, int(declared) if declared is not None else response.length)
            while chunk := response.read(64 * 1024):
                self.wfile.write(chunk)
        if response.will_close and self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def _drop(self) -> None:
        """Close the client's connection without a byte of answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _answer_control(self) -> None:
        if self.command != "GET" or self.path.split("?")[0] != CONTROL_PREFIX + "counters":
            self._send_head(404, [("Content-Type", "text/plain")], 9)
            self.wfile.write(b"not found")
            return
        body = json.dumps({"enabled": self.server.rules.enabled, **self.server.rules.snapshot()}).encode()
        self._send_head(200, [("Content-Type", "application/json")], len(body))
        self.wfile.write(body)


class FaultProxy:
    """The proxy on a loopback port (`url`) in front of `upstream`, faulting as `rules` say."""

    def __init__(self, upstream: str, rules: FaultRules | None = None, *, host: str = "127.0.0.1", port: int = 0):
        split = urlsplit(upstream)
        if split.scheme != "http" or not split.hostname:
            raise ValueError(f"upstream must be an http:// endpoint, not {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self.rules = rules if rules is not None else FaultRules()
        self._address = (host, port)
        self._upstream = (split.hostname, split.port or 80)
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fault proxy is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FaultProxy":
        self._server = _ProxyServer(self._address, self._upstream, self.rules)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        with self._server.connections_lock:
            connections = list(self._server.connections)
        for connection in connections:  # kept-alive clients: their handler threads end
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
