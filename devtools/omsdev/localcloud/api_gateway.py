"""API Gateway in front of the local cloud's functions: the template's Api / HttpApi routes on a loopback port.

What `sam local start-api` does, without Docker. `ApiGateway(routes, runtime, stack, port=0).start()`
serves every `ApiRoute` of the template (`event_sources.api_routes`) at `url`, without a stage prefix
in the URL (as `sam local start-api`); the events carry the stage where API Gateway puts it.

- Routing: the request's method (or an ANY route) and path against the path templates, `{name}`
  one segment, `{name+}` one or more; the most specific route wins (literal segment over `{name}`
  over `{name+}`, then a named method over ANY); an HttpApi `$default` route catches the rest.
- Events: REST (`Type: Api`) gets the Lambda proxy payload 1.0, HttpApi the payload 2.0 (or 1.0 when
  the event says `PayloadFormatVersion: "1.0"`). A REST body is base64-encoded only when its
  Content-Type matches the API's `BinaryMediaTypes` (else passed as UTF-8 text, as API Gateway does);
  an HTTP API body is base64-encoded unless its Content-Type is a text type.
- Responses: the function's result maps back as API Gateway maps it; an HTTP API 2.0 result without
  `statusCode` becomes a 200 with the result as its JSON body. A REST result's `isBase64Encoded` body
  is decoded when the request's Accept or the response's Content-Type is one of the API's
  `BinaryMediaTypes` (else the base64 text is returned, as API Gateway does).
- API Gateway's own answers: no route: REST 403 `Missing Authentication Token`, HTTP API 404
  `Not Found`; a function that raises, times out or answers malformed: 502 `Internal server error`;
  Lambda refusing the invocation (over ReservedConcurrentExecutions): 500 `Internal server error`
  (API Gateway does not pass Lambda's 429 on); over the integration timeout (REST 29 s: 504, HTTP API
  30 s: 503); over a stage's throttle: 429 `Too Many Requests`.
- Throttling: a token bucket per route from the `AWS::Serverless::Api`'s `MethodSettings`
  (ThrottlingRateLimit / ThrottlingBurstLimit, method-specific entries over `/*` `*`) or the
  `AWS::Serverless::HttpApi`'s `DefaultRouteSettings` / `RouteSettings`; `Globals.Api` / `Globals.HttpApi`
  merged in as SAM merges them. No declared limits: no throttling (account-level limits are not emulated).
- Cognito user pool authorizers (REST): a route under an `AWS::Serverless::Api` whose `Auth` has a
  `DefaultAuthorizer`, or whose event names one (`Auth: {Authorizer: X}`; `NONE` opts out), needs a token
  in the authorizer's `Identity.Header` (default Authorization; a "Bearer " prefix is accepted) that
  `local_auth` accepts as API Gateway would (signature, issuer, app client, token_use id, expiry). Else
  401 `Unauthorized` (`The incoming token has expired` for an expired one) without calling the function;
  else the event carries `requestContext.authorizer.claims` in API Gateway's REST format (strings only).
- CORS (REST, SAM's `Cors`): OPTIONS on a path of the API is answered by the gateway, as SAM's mock
  integration: 200 with Access-Control-Allow-Origin / -Headers / -Methods (default: the path's methods)
  / -Max-Age / -Allow-Credentials as configured, with no function call, and behind the default authorizer
  unless `AddDefaultAuthorizerToCorsPreflight: false`. A function's own responses carry what it sets;
  the gateway's own errors carry only what the API's `GatewayResponses` add (SAM adds no CORS header
  to them): Headers (a quoted literal or `method.request.header.X`), StatusCode and an application/json
  ResponseTemplate, per response type (UNAUTHORIZED, MISSING_AUTHENTICATION_TOKEN, THROTTLED,
  INTEGRATION_FAILURE, INTEGRATION_TIMEOUT) or DEFAULT_4XX / DEFAULT_5XX.
- The KPI dashboard: GET /dashboard (and /dashboard/<file>) serves the page in `omsdev/dashboard/`
  from the local front itself, ahead of the template's routes, like the CloudWatch dashboard in AWS
  (no API Gateway route). The page needs no token; it reads `GET /kpis` with the token in its URL
  fragment (`/dashboard#token=...`), which browsers never send to the server.
Not emulated yet (refused by name when the template asks for them): Lambda and IAM authorizers,
authorization scopes, HTTP API authorizers; not emulated at all: HTTP API CorsConfiguration, API keys and
usage plans, routes defined only in an OpenAPI DefinitionBody.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

from omsdev.localcloud.event_sources import ApiRoute
from omsdev.localcloud.lambda_runtime import FunctionThrottledError, LambdaRuntime
from omsdev.localcloud.local_auth import CognitoVerifier, TokenRejectedError, rest_claims
from omsdev.localcloud.template import sam_merge

logger = logging.getLogger(__name__)

REST_API, HTTP_API = "Api", "HttpApi"
IMPLICIT_STAGE = {REST_API: "Prod", HTTP_API: "$default"}  # the stages SAM gives its implicit APIs
# API Gateway's account-level defaults, used when a stage sets only one of the two limits.
DEFAULT_RATE_LIMIT, DEFAULT_BURST_LIMIT = 10000.0, 5000
INTEGRATION_TIMEOUT_SECONDS = {REST_API: 29.0, HTTP_API: 30.0}
# Content types an HTTP API passes as text; anything else arrives base64-encoded.
_TEXT_TYPES = ("text/*", "application/json", "application/*+json", "application/xml", "application/*+xml",
               "application/javascript", "application/ecmascript")
# Hop-by-hop or recomputed headers a function's response cannot set.
_DROPPED_RESPONSE_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive"}

# Every HTTP method, for a CORS preflight's Allow-Methods on a path with an ANY route (as SAM lists them).
ALL_METHODS = ("OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")

# The KPI dashboard page and its assets (developer tooling, served by the local front, not a route).
DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
DASHBOARD_PATH = "/dashboard"
# Only these kinds of file are served from it, each with its type.
DASHBOARD_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                   ".css": "text/css; charset=utf-8", ".md": "text/markdown; charset=utf-8",
                   ".txt": "text/plain; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
                   ".png": "image/png", ".ico": "image/x-icon"}
# The page loads nothing from elsewhere and talks only to its own origin; edits show on reload.
DASHBOARD_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
]


class GatewayAnswer(NamedTuple):
    """A response API Gateway makes itself; `response_type` names its GatewayResponses entry."""

    status: int
    message: str
    response_type: str


NOT_FOUND = {REST_API: GatewayAnswer(403, "Missing Authentication Token", "MISSING_AUTHENTICATION_TOKEN"),
             HTTP_API: GatewayAnswer(404, "Not Found", "RESOURCE_NOT_FOUND")}
TOO_MANY_REQUESTS = GatewayAnswer(429, "Too Many Requests", "THROTTLED")
FUNCTION_FAILED = GatewayAnswer(502, "Internal server error", "INTEGRATION_FAILURE")
INVOCATION_REFUSED = GatewayAnswer(500, "Internal server error", "DEFAULT_5XX")
INTEGRATION_TIMED_OUT = {REST_API: GatewayAnswer(504, "Endpoint request timed out", "INTEGRATION_TIMEOUT"),
                         HTTP_API: GatewayAnswer(503, "Service Unavailable", "DEFAULT_5XX")}


def unauthorized(message: str) -> GatewayAnswer:
    return GatewayAnswer(401, message, "UNAUTHORIZED")


class MalformedResponseError(ValueError):
    """The function's result is not a proxy-integration response API Gateway accepts (it answers 502)."""


@dataclass
class HttpRequest:
    """One request as the server read it (header names as sent, duplicates kept in order)."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class ApiStage:
    """What the local gateway needs of one API (explicit or implicit) and its stage."""

    kind: str  # REST_API or HTTP_API
    logical_id: str | None  # None: SAM's implicit API
    api_id: str
    stage: str
    stage_variables: dict | None
    binary_media_types: tuple[str, ...]
    properties: dict  # resolved properties (MethodSettings, DefaultRouteSettings, Auth, Cors, GatewayResponses ...)


class TokenBucket:
    """API Gateway's throttle: `burst` tokens at most, refilled at `rate` per second; one per request."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.capacity, self._clock = float(rate), int(burst), clock
        self._tokens, self._updated = float(self.capacity), clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


# -- routing ---------------------------------------------------------------------------------------

def _segments(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


def match_path(template: str, raw_path: str) -> dict[str, str] | None:
    """The path parameters when `raw_path` matches the route's path template, else None."""
    if template == "$default":
        return {}
    pattern, segments = _segments(template), [unquote(segment) for segment in _segments(raw_path)]
    parameters: dict[str, str] = {}
    for index, part in enumerate(pattern):
        if part.startswith("{") and part.endswith("+}"):
            if index != len(pattern) - 1 or index >= len(segments):
                return None
            parameters[part[1:-2]] = "/".join(segments[index:])
            return parameters
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            if not segments[index]:
                return None
            parameters[part[1:-1]] = segments[index]
        elif part != segments[index]:
            return None
    return parameters if len(segments) == len(pattern) else None


def route_specificity(route: ApiRoute) -> tuple:
    """Sort key: smaller is more specific ($default last, literal < {param} < {proxy+}, method < ANY)."""
    ranks = tuple(2 if part.endswith("+}") else 1 if part.startswith("{") else 0 for part in _segments(route.path))
    return (route.path == "$default", ranks, route.method == "ANY")


def match_route(routes: list[ApiRoute], method: str, raw_path: str) -> tuple[ApiRoute, dict[str, str]] | None:
    """The most specific route for the request and its path parameters, or None."""
    candidates = []
    for route in routes:
        if route.method not in ("ANY", method.upper()):
            continue
        parameters = match_path(route.path, raw_path)
        if parameters is not None:
            candidates.append((route_specificity(route), route, parameters))
    if not candidates:
        return None
    _, route, parameters = min(candidates, key=lambda candidate: candidate[0])
    return route, parameters


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def matches_media_types(content_type: str | None, media_types: tuple[str, ...]) -> bool:
    media_type = _media_type(content_type)
    return bool(media_type) and any(fnmatch.fnmatchcase(media_type, pattern.lower()) for pattern in media_types)


def body_is_binary(request: HttpRequest, api: ApiStage) -> bool:
    """Whether API Gateway hands the body to the function base64-encoded."""
    if not request.body:
        return False
    if api.kind == REST_API:
        return matches_media_types(request.header("Content-Type"), api.binary_media_types)
    return not matches_media_types(request.header("Content-Type"), _TEXT_TYPES)


# -- events ----------------------------------------------------------------------------------------

def _clf_time(epoch_seconds: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_seconds))


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    return parse_qsl(raw_query, keep_blank_values=True)


def _forwarded_headers(request: HttpRequest, port: int) -> list[tuple[str, str]]:
    """X-Forwarded-* as API Gateway adds them (when the client did not send its own)."""
    sent = {name.lower() for name, _ in request.headers}
    added = [("X-Forwarded-For", request.source_ip), ("X-Forwarded-Port", str(port)), ("X-Forwarded-Proto", "http")]
    return request.headers + [(name, value) for name, value in added if name.lower() not in sent]


def _body_field(request: HttpRequest, base64_encoded: bool) -> str | None:
    if not request.body:
        return None
    if base64_encoded:
        return base64.b64encode(request.body).decode("ascii")
    return request.body.decode("utf-8", errors="replace")  # API Gateway passes non-binary bodies as text


def rest_event(request: HttpRequest, route: ApiRoute, path_parameters: dict[str, str], api: ApiStage, *,
               account_id: str, port: int, request_id: str, epoch_seconds: float, version: str | None = None,
               authorizer: dict | None = None) -> dict:
    """The Lambda proxy integration event (payload 1.0) API Gateway sends for this request
    (`authorizer`: what an authorizer passed on, e.g. {"claims": {...}})."""
    headers = _forwarded_headers(request, port)
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value  # the last value of a repeated header, as API Gateway does
        multi_headers.setdefault(name, []).append(value)
    single_query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in _query_pairs(request.raw_query):
        single_query[name] = value
        multi_query.setdefault(name, []).append(value)
    base64_encoded = body_is_binary(request, api)
    host = request.header("Host") or f"127.0.0.1:{port}"
    path = unquote(request.raw_path)
    event = {
        "resource": route.path,
        "path": path,
        "httpMethod": request.method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": api.stage_variables or None,
        "requestContext": {
            "accountId": account_id,
            "apiId": api.api_id,
            "domainName": host,
            "domainPrefix": host.split(".")[0].split(":")[0],
            "extendedRequestId": request_id,
            "httpMethod": request.method,
            "identity": {
                "accessKey": None, "accountId": None, "apiKey": None, "apiKeyId": None, "caller": None,
                "cognitoAuthenticationProvider": None, "cognitoAuthenticationType": None,
                "cognitoIdentityId": None, "cognitoIdentityPoolId": None, "principalOrgId": None,
                "sourceIp": request.source_ip, "user": None, "userAgent": request.header("User-Agent"),
                "userArn": None,
            },
            "path": f"/{api.stage}{path}",
            "protocol": request.protocol,
            "requestId": request_id,
            "requestTime": _clf_time(epoch_seconds),
            "requestTimeEpoch": int(epoch_seconds * 1000),
            "resourceId": hashlib.sha1(f"{api.api_id} {route.path}".encode()).hexdigest()[:6],
            "resourcePath": route.path,
            "stage": api.stage,
        },
        "body": _body_field(request, base64_encoded),
        "isBase64Encoded": base64_encoded,
    }
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    if version:
        event = {"version": version, **event}
    return event


def http_api_event(request: HttpRequest, route: ApiRoute, path_parameters: dict[str, str], api: ApiStage, *,
                   account_id: str, port: int, request_id: str, epoch_seconds: float) -> dict:
    """The HTTP API Lambda integration event, payload format 2.0."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in _forwarded_headers(request, port):
        if name.lower() == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for name, value in _query_pairs(request.raw_query):
        query[name] = f"{query[name]},{value}" if name in query else value
    route_key = "$default" if route.path == "$default" else f"{route.method} {route.path}"
    raw_path = request.raw_path if api.stage == "$default" else f"/{api.stage}{request.raw_path}"
    host = request.header("Host") or f"127.0.0.1:{port}"
    base64_encoded = body_is_binary(request, api)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api.api_id,
        "domainName": host,
        "domainPrefix": host.split(".")[0].split(":")[0],
        "http": {
            "method": request.method,
            "path": raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": request.header("User-Agent") or "",
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": api.stage,
        "time": _clf_time(epoch_seconds),
        "timeEpoch": int(epoch_seconds * 1000),
    }
    if request.body:
        event["body"] = _body_field(request, base64_encoded)
    if path_parameters:
        event["pathParameters"] = path_parameters
    event["isBase64Encoded"] = base64_encoded
    if api.stage_variables:
        event["stageVariables"] = api.stage_variables
    return event


# -- responses -------------------------------------------------------------------------------------

def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def proxy_response(result: Any, *, api: ApiStage, payload_version: str, request: HttpRequest) -> HttpResponse:
    """The HTTP response API Gateway makes of a function's result; MalformedResponseError when it cannot."""
    lenient = payload_version == "2.0"
    if lenient and not (isinstance(result, dict) and "statusCode" in result):
        body = json.dumps(result).encode()
        return HttpResponse(200, [("Content-Type", "application/json")], body)
    if not isinstance(result, dict) or "statusCode" not in result:
        raise MalformedResponseError("the result has no statusCode")
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        raise MalformedResponseError(f"statusCode {result['statusCode']!r} is not an integer") from None
    headers = result.get("headers") or {}
    multi_headers = result.get("multiValueHeaders") or {}
    if not isinstance(headers, dict) or not isinstance(multi_headers, dict):
        raise MalformedResponseError("headers and multiValueHeaders must be objects")
    if not all(isinstance(values, list) for values in multi_headers.values()):
        raise MalformedResponseError("multiValueHeaders values must be lists")
    pairs: list[tuple[str, str]] = []
    for name, values in multi_headers.items():
        pairs.extend((name, _header_value(value)) for value in values)
    # A name in both: only multiValueHeaders' values (API Gateway merges the rest).
    pairs.extend((name, _header_value(value)) for name, value in headers.items() if name not in multi_headers)
    if lenient:
        pairs.extend(("Set-Cookie", _header_value(cookie)) for cookie in result.get("cookies") or [])
    pairs = [(name, value) for name, value in pairs if name.lower() not in _DROPPED_RESPONSE_HEADERS]
    content_type = next((value for name, value in pairs if name.lower() == "content-type"), None)
    if content_type is None and api.kind == REST_API:
        pairs.append(("Content-Type", "application/json"))  # REST's default
    body = result.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raise MalformedResponseError(f"body must be a string, not {type(body).__name__}")
    elif result.get("isBase64Encoded") and _decodes_binary(api, request, content_type):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResponseError("isBase64Encoded but the body is not base64") from None
    else:
        raw = body.encode("utf-8")
    return HttpResponse(status, pairs, raw)


def _decodes_binary(api: ApiStage, request: HttpRequest, content_type: str | None) -> bool:
    if api.kind == HTTP_API:
        return True
    accepted = [part.strip() for part in (request.header("Accept") or "").split(",") if part.strip()]
    return any(matches_media_types(candidate, api.binary_media_types) for candidate in accepted + [content_type or ""])


def gateway_answer(answer: GatewayAnswer, request_id: str, kind: str, *, api: ApiStage | None = None,
                   request: HttpRequest | None = None, resource_path: str = "") -> HttpResponse:
    """API Gateway's own response, as the API's GatewayResponses (if any) shape it."""
    status, headers = answer.status, [("Content-Type", "application/json")]
    body = json.dumps({"message": answer.message}).encode()
    responses = gateway_responses(api) if api is not None and api.kind == REST_API else {}
    default_type = "DEFAULT_4XX" if answer.status < 500 else "DEFAULT_5XX"
    configured = responses.get(answer.response_type) or responses.get(default_type)
    if configured is not None:
        status = int(configured.get("StatusCode") or status)
        for name, expression in ((configured.get("ResponseParameters") or {}).get("Headers") or {}).items():
            value = _mapped_value(expression, request)
            if value is not None:
                headers.append((name, value))
        template = (configured.get("ResponseTemplates") or {}).get("application/json")
        if template is not None:
            body = _render_template(template, {
                "$context.error.messageString": json.dumps(answer.message), "$context.error.message": answer.message,
                "$context.error.responseType": answer.response_type, "$context.requestId": request_id,
                "$context.resourcePath": resource_path, "$context.stage": api.stage}).encode()
    headers.append((_request_id_header(kind), request_id))
    return HttpResponse(status, headers, body)


def _render_template(template: str, variables: dict[str, str]) -> str:
    # Longest names first: $context.error.messageString before $context.error.message.
    for name in sorted(variables, key=len, reverse=True):
        template = template.replace(name, variables[name])
    return template


def _request_id_header(kind: str) -> str:
    return "x-amzn-RequestId" if kind == REST_API else "apigw-requestid"


# -- the template's APIs ---------------------------------------------------------------------------

def _local_api_id(name: str) -> str:
    """A stable 10-character id in API Gateway's style (the real one is random)."""
    return hashlib.sha1(name.encode()).hexdigest()[:10]


def _binary_media_types(values: Any) -> tuple[str, ...]:
    # CloudFormation spells "/" as "~1" in BinaryMediaTypes.
    return tuple(str(value).replace("~1", "/") for value in values or [])


def api_stages(stack, routes: list[ApiRoute]) -> dict[tuple[str, str | None], ApiStage]:
    """(kind, route.api_id) -> ApiStage for every API the routes use, its properties resolved."""
    template, resolver = stack.template, stack.resolver
    globals_ = template.body.get("Globals", {})
    wanted = ("StageName", "Variables", "StageVariables", "BinaryMediaTypes", "MethodSettings",
              "DefaultRouteSettings", "RouteSettings", "Auth", "Cors", "GatewayResponses")
    stages: dict[tuple[str, str | None], ApiStage] = {}
    for route in routes:
        key = (route.api_type, route.api_id)
        if key in stages:
            continue
        logical_id = None
        if route.api_id is not None:
            logical_id = next((lid for lid, resource in stack.resources.items() if resource.ref == route.api_id), None)
            if logical_id is None:
                raise ValueError(f"{route.function_id}.Events.{route.event_id}: no API {route.api_id!r} in the stack")
        own = template.resources[logical_id].get("Properties", {}) if logical_id else {}
        merged = sam_merge(globals_.get(route.api_type, {}), own)
        props = resolver.resolve({name: merged[name] for name in wanted if name in merged}) or {}
        stage = str(props.get("StageName") or IMPLICIT_STAGE[route.api_type])
        variables = props.get("Variables") if route.api_type == REST_API else props.get("StageVariables")
        name = route.api_id or f"{stack.stack_name}-Serverless{'Rest' if route.api_type == REST_API else 'Http'}Api"
        stages[key] = ApiStage(
            kind=route.api_type, logical_id=logical_id, api_id=_local_api_id(name), stage=stage,
            stage_variables={k: str(v) for k, v in (variables or {}).items()} or None,
            binary_media_types=_binary_media_types(props.get("BinaryMediaTypes")) if route.api_type == REST_API else (),
            properties=props,
        )
    return stages


def _resource_path(setting_path: str) -> str:
    """MethodSettings' ResourcePath ("/~1orders~1{id}") as a path ("/orders/{id}"); "/*" stays."""
    return setting_path if setting_path == "/*" else "/" + setting_path.replace("~1", "/").lstrip("/")


def throttle_limits(api: ApiStage, route: ApiRoute) -> tuple[float, int] | None:
    """(rate, burst) for the route from its stage's settings, None when the template sets none."""
    if api.kind == REST_API:
        # Least specific first, so a method's own setting overrides the stage's "/*" "*" default.
        ranked = []
        for setting in api.properties.get("MethodSettings") or []:
            path = _resource_path(str(setting.get("ResourcePath", "/*")))
            method = str(setting.get("HttpMethod", "*")).upper()
            if path in ("/*", route.path) and method in ("*", route.method):
                ranked.append(((path != "/*") * 2 + (method != "*"), setting))
        settings = [setting for _, setting in sorted(ranked, key=lambda item: item[0])]
    else:
        route_key = "$default" if route.path == "$default" else f"{route.method} {route.path}"
        settings = [api.properties.get("DefaultRouteSettings") or {},
                    (api.properties.get("RouteSettings") or {}).get(route_key) or {}]
    found: dict[str, Any] = {}
    for setting in settings:
        found.update({key: setting[key] for key in ("ThrottlingRateLimit", "ThrottlingBurstLimit") if key in setting})
    if not found:
        return None
    return (float(found.get("ThrottlingRateLimit", DEFAULT_RATE_LIMIT)),
            int(found.get("ThrottlingBurstLimit", DEFAULT_BURST_LIMIT)))


def payload_version(runtime: LambdaRuntime, stack, route: ApiRoute) -> str:
    if route.api_type == REST_API:
        return "1.0"
    props = runtime.spec(route.function_id).events[route.event_id].get("Properties") or {}
    return str(stack.resolver.resolve(props.get("PayloadFormatVersion", "2.0")))


# -- authorizers, CORS and gateway responses (REST APIs) ------------------------------------------

GATEWAY_RESPONSE_TYPES = frozenset((
    "DEFAULT_4XX", "DEFAULT_5XX", "RESOURCE_NOT_FOUND", "UNAUTHORIZED", "INVALID_API_KEY", "ACCESS_DENIED",
    "AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR", "INVALID_SIGNATURE", "EXPIRED_TOKEN",
    "MISSING_AUTHENTICATION_TOKEN", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT", "API_CONFIGURATION_ERROR",
    "UNSUPPORTED_MEDIA_TYPE", "BAD_REQUEST_PARAMETERS", "BAD_REQUEST_BODY", "REQUEST_TOO_LARGE", "THROTTLED",
    "QUOTA_EXCEEDED", "WAF_FILTERED",
))
_REQUEST_HEADER, _REQUEST_QUERY = "method.request.header.", "method.request.querystring."


def _api_name(api: ApiStage) -> str:
    return api.logical_id or f"the implicit {api.kind}"


def _is_literal(text: str) -> bool:
    return len(text) >= 2 and text[0] == text[-1] == "'"


def _static_value(value: Any, where: str) -> str | None:
    """A SAM Cors value (a quoted literal, "'GET,POST'") as the header's value; None when absent."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if not _is_literal(text):
        raise ValueError(f"{where}: {text!r} is not a quoted literal such as \"'{text}'\" (API Gateway refuses it)")
    return text[1:-1]


def _mapped_value(expression: Any, request: HttpRequest | None) -> str | None:
    """A gateway response header's value: a quoted literal, or a request header or query parameter."""
    text = str(expression)
    if _is_literal(text):
        return text[1:-1]
    if request is None:
        return None
    if text.startswith(_REQUEST_HEADER):
        return request.header(text[len(_REQUEST_HEADER):])
    if text.startswith(_REQUEST_QUERY):
        return dict(_query_pairs(request.raw_query)).get(text[len(_REQUEST_QUERY):])
    return None


def gateway_responses(api: ApiStage) -> dict[str, dict]:
    """The API's GatewayResponses by response type; ValueError for what API Gateway would refuse."""
    responses = api.properties.get("GatewayResponses") or {}
    for response_type, response in responses.items():
        where = f"{_api_name(api)}.GatewayResponses.{response_type}"
        if response_type not in GATEWAY_RESPONSE_TYPES:
            raise ValueError(f"{where}: not an API Gateway response type")
        for name, expression in ((response.get("ResponseParameters") or {}).get("Headers") or {}).items():
            text = str(expression)
            if not (_is_literal(text) or text.startswith((_REQUEST_HEADER, _REQUEST_QUERY))):
                raise ValueError(f"{where}: header {name} = {text!r} is neither a quoted literal nor "
                                 f"method.request.header.* / method.request.querystring.*")
    return responses


@dataclass(frozen=True)
class CorsSettings:
    """SAM's `Cors` of a REST API: the preflight's header values (None: the header is not sent)."""

    allow_origin: str
    allow_headers: str | None = None
    allow_methods: str | None = None  # None: the path's methods, as SAM lists them
    max_age: str | None = None
    allow_credentials: bool = False


def cors_settings(api: ApiStage) -> CorsSettings | None:
    cors = api.properties.get("Cors") if api.kind == REST_API else None
    if not cors:
        return None
    if isinstance(cors, str):  # SAM's shorthand: the allowed origin alone
        cors = {"AllowOrigin": cors}
    where = f"{_api_name(api)}.Cors"
    origin = _static_value(cors.get("AllowOrigin"), f"{where}.AllowOrigin")
    if not origin:
        raise ValueError(f"{where}: AllowOrigin is required")
    return CorsSettings(
        allow_origin=origin,
        allow_headers=_static_value(cors.get("AllowHeaders"), f"{where}.AllowHeaders"),
        allow_methods=_static_value(cors.get("AllowMethods"), f"{where}.AllowMethods"),
        max_age=_static_value(cors.get("MaxAge"), f"{where}.MaxAge"),
        allow_credentials=cors.get("AllowCredentials") in (True, "true"),
    )


def preflight_methods(routes: list[ApiRoute], api_key: tuple[str, str | None], path: str) -> str:
    """SAM's default Allow-Methods for a path: its methods and OPTIONS, or every method under ANY."""
    methods = {route.method for route in routes if (route.api_type, route.api_id) == api_key and route.path == path}
    return ",".join(sorted(ALL_METHODS if "ANY" in methods else methods | {"OPTIONS"}))


def guarding_authorizer(api: ApiStage, event_authorizer: str | None, where: str) -> str | None:
    """The name of the authorizer in front of a method: the event's own, else the API's default; None
    when open (none, or `NONE`). Authorizers the local cloud cannot emulate are refused by name."""
    auth = api.properties.get("Auth") or {}
    name = event_authorizer or auth.get("DefaultAuthorizer")
    if not name or name == "NONE":
        return None
    if api.kind == HTTP_API:
        raise ValueError(f"{where}: HTTP API authorizers ({name}) are not emulated by the local cloud")
    if name == "AWS_IAM":
        raise ValueError(f"{where}: AWS_IAM authorization is not emulated by the local cloud")
    return str(name)


@dataclass(frozen=True)
class RouteAuthorizer:
    """A Cognito user pool authorizer of a REST API: the header with the token and who checks it."""

    name: str
    header: str
    verifier: CognitoVerifier

    def claims(self, request: HttpRequest) -> dict[str, str]:
        """The token's claims in API Gateway's REST format, or TokenRejectedError."""
        token = (request.header(self.header) or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        return rest_claims(self.verifier.verify(token or None))


def build_authorizer(stack, api: ApiStage, name: str) -> RouteAuthorizer:
    where = f"{_api_name(api)}.Auth.Authorizers.{name}"
    config = ((api.properties.get("Auth") or {}).get("Authorizers") or {}).get(name)
    if not isinstance(config, dict):
        raise ValueError(f"{where}: no such authorizer")
    if "UserPoolArn" not in config:
        raise ValueError(f"{where}: only Cognito user pool authorizers are emulated (Lambda authorizers are not)")
    identity = config.get("Identity") or {}
    if config.get("AuthorizationScopes") or identity.get("ValidationExpression"):
        raise ValueError(f"{where}: AuthorizationScopes and Identity.ValidationExpression are not emulated")
    arns = config["UserPoolArn"] if isinstance(config["UserPoolArn"], list) else [config["UserPoolArn"]]
    return RouteAuthorizer(name, str(identity.get("Header") or "Authorization"), CognitoVerifier(stack, arns))


# -- the dashboard page ----------------------------------------------------------------------------

def is_dashboard_path(raw_path: str) -> bool:
    return raw_path == DASHBOARD_PATH or raw_path.startswith(DASHBOARD_PATH + "/")


def dashboard_file(raw_path: str, directory: Path = DASHBOARD_DIR) -> Path | None:
    """The file of `directory` a /dashboard path names (the page for /dashboard itself), or None: only
    plain names of files inside it, of a served type; no dot-files, no `..`, no escaping by links."""
    rest = unquote(raw_path[len(DASHBOARD_PATH):]).strip("/") or "index.html"
    parts = rest.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\0" in part for part in parts):
        return None
    root = directory.resolve()
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate if candidate.suffix.lower() in DASHBOARD_TYPES else None


def dashboard_response(request: HttpRequest, directory: Path = DASHBOARD_DIR) -> HttpResponse:
    """The local front's answer to a /dashboard request: the file, 404, or 405 for other methods."""
    if request.method.upper() not in ("GET", "HEAD"):
        return HttpResponse(405, [("Allow", "GET, HEAD"), ("Content-Type", "text/plain; charset=utf-8")],
                            b"Method Not Allowed")
    path = dashboard_file(request.raw_path, directory)
    if path is None:
        return HttpResponse(404, [("Content-Type", "text/plain; charset=utf-8"), *DASHBOARD_HEADERS], b"Not Found")
    return HttpResponse(200, [("Content-Type", DASHBOARD_TYPES[path.suffix.lower()]), *DASHBOARD_HEADERS],
                        path.read_bytes())


# -- the server ------------------------------------------------------------------------------------

class ApiGateway:
    """The routes served over HTTP on `host:port` (0: a free port); `start()`, `url`, `stop()`."""

    def __init__(self, routes: list[ApiRoute], runtime: LambdaRuntime, stack, *, host: str = "127.0.0.1",
                 port: int = 0):
        self.routes, self.runtime, self.stack = list(routes), runtime, stack
        self.host, self.port = host, port
        self.stages = api_stages(stack, self.routes)
        self.payload_versions = {route: payload_version(runtime, stack, route) for route in self.routes}
        self.buckets: dict[ApiRoute, TokenBucket] = {}
        for route in self.routes:
            limits = throttle_limits(self.stages[(route.api_type, route.api_id)], route)
            if limits is not None:
                self.buckets[route] = TokenBucket(*limits)
        self.integration_timeout = dict(INTEGRATION_TIMEOUT_SECONDS)
        self.cors = {key: cors_settings(api) for key, api in self.stages.items()}
        for api in self.stages.values():
            gateway_responses(api)  # a malformed one is refused now, not at the first error
        self.authorizers: dict[ApiRoute, RouteAuthorizer] = {}
        self.preflight_authorizers: dict[tuple[str, str | None], RouteAuthorizer] = {}
        built: dict[tuple, RouteAuthorizer] = {}

        def authorizer(key: tuple[str, str | None], name: str) -> RouteAuthorizer:
            if (key, name) not in built:
                built[(key, name)] = build_authorizer(stack, self.stages[key], name)
            return built[(key, name)]

        for route in self.routes:
            key = (route.api_type, route.api_id)
            name = guarding_authorizer(self.stages[key], route.authorizer,
                                       f"{route.function_id}.Events.{route.event_id}")
            if name is not None:
                self.authorizers[route] = authorizer(key, name)
        for key, api in self.stages.items():
            auth = api.properties.get("Auth") or {}
            if self.cors[key] and auth.get("AddDefaultAuthorizerToCorsPreflight", True) not in (False, "false"):
                name = guarding_authorizer(api, None, f"{_api_name(api)}.Auth.DefaultAuthorizer")
                if name is not None:
                    self.preflight_authorizers[key] = authorizer(key, name)
        self.counters = {"requests": 0, "not_found": 0, "throttled": 0, "unauthorized": 0, "preflights": 0,
                         "errors": 0, "dashboard": 0}
        self._counters_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ApiGateway":
        try:
            self._server = _Server((self.host, self.port), _handler_class(self))
        except OSError as error:
            raise RuntimeError(f"cannot serve the API on {self.host}:{self.port}: {error}") from error
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"api-gateway-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:  # idle keep-alive connections would hold their threads
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=timeout)
        self._server, self._thread = None, None

    def stats(self) -> dict:
        with self._counters_lock:
            return {"url": self.url, "routes": len(self.routes), **self.counters}

    def _count(self, name: str) -> None:
        with self._counters_lock:
            self.counters[name] += 1

    # -- one request -----------------------------------------------------------------------------
    def handle(self, request: HttpRequest) -> HttpResponse:
        """What API Gateway answers to the request (routing, throttling, invocation, mapping); the
        dashboard page's paths are the local front's own."""
        if is_dashboard_path(request.raw_path):
            self._count("dashboard")
            return dashboard_response(request)
        self._count("requests")
        request_id, epoch_seconds = str(uuid.uuid4()), time.time()
        if request.method.upper() == "OPTIONS":
            preflight = self._preflight_resource(request.raw_path)
            if preflight is not None:
                return self._preflight(request, request_id, *preflight)
        matched = match_route(self.routes, request.method, request.raw_path)
        if matched is None:
            self._count("not_found")
            kind, api = self._unmatched_api(request.raw_path)
            return gateway_answer(NOT_FOUND[kind], request_id, kind, api=api, request=request)
        route, path_parameters = matched
        kind, api, version = route.api_type, self.stages[(route.api_type, route.api_id)], self.payload_versions[route]

        def answer(gateway: GatewayAnswer) -> HttpResponse:
            return gateway_answer(gateway, request_id, kind, api=api, request=request, resource_path=route.path)

        bucket = self.buckets.get(route)
        if bucket is not None and not bucket.take():
            self._count("throttled")
            return answer(TOO_MANY_REQUESTS)
        authorization = None
        if route in self.authorizers:
            try:
                authorization = {"claims": self.authorizers[route].claims(request)}
            except TokenRejectedError as error:
                self._count("unauthorized")
                return answer(unauthorized(str(error)))
        shape = dict(account_id=self.runtime.account_id, port=self.port, request_id=request_id,
                     epoch_seconds=epoch_seconds)
        if version == "2.0":
            event = http_api_event(request, route, path_parameters, api, **shape)
        else:  # REST, or an HTTP API route that asks for payload 1.0 (which then carries "version")
            event = rest_event(request, route, path_parameters, api, version="1.0" if kind == HTTP_API else None,
                               authorizer=authorization, **shape)
        started = time.monotonic()
        try:
            # Lambda hands API Gateway the result as JSON: a result that cannot be serialised is an error.
            result = json.loads(json.dumps(self.runtime.invoke(route.function_id, event)))
        except FunctionThrottledError:
            self._count("errors")
            logger.warning("%s %s: %s throttled by Lambda", request.method, request.raw_path, route.function_id)
            return answer(INVOCATION_REFUSED)
        except Exception:  # noqa: BLE001 - API Gateway turns any function error into its 502
            self._count("errors")
            logger.warning("%s %s: %s failed", request.method, request.raw_path, route.function_id, exc_info=True)
            return answer(FUNCTION_FAILED)
        if time.monotonic() - started > self.integration_timeout[kind]:
            self._count("errors")
            return answer(INTEGRATION_TIMED_OUT[kind])
        try:
            response = proxy_response(result, api=api, payload_version=version, request=request)
        except MalformedResponseError as error:
            self._count("errors")
            logger.warning("%s %s: malformed Lambda proxy response from %s: %s", request.method, request.raw_path,
                           route.function_id, error)
            return answer(FUNCTION_FAILED)
        response.headers.append((_request_id_header(kind), request_id))
        return response

    def _unmatched_api(self, raw_path: str) -> tuple[str, ApiStage | None]:
        """Whose "no route" answer to give: the API with a route on this path, else REST if there is one
        (and that API, for its GatewayResponses, when it is the only candidate)."""
        on_path = [route for route in self.routes if match_path(route.path, raw_path) is not None]
        candidates = on_path or self.routes
        kinds = [route.api_type for route in candidates]
        kind = REST_API if REST_API in kinds or not kinds else HTTP_API
        apis = {(route.api_type, route.api_id) for route in candidates if route.api_type == kind}
        return kind, self.stages[apis.pop()] if len(apis) == 1 else None

    def _preflight_resource(self, raw_path: str) -> tuple[tuple[str, str | None], str] | None:
        """(API, path) when an OPTIONS request is a CORS preflight the gateway answers itself: the most
        specific path it matches belongs to an API with Cors, and no event declares OPTIONS on it."""
        on_path = [route for route in self.routes if match_path(route.path, raw_path) is not None]
        if not on_path:
            return None
        best = min(on_path, key=lambda route: route_specificity(route)[:2])
        key = (best.api_type, best.api_id)
        if self.cors.get(key) is None or any(
                route.method == "OPTIONS" and route.path == best.path and (route.api_type, route.api_id) == key
                for route in self.routes):
            return None
        return key, best.path

    def _preflight(self, request: HttpRequest, request_id: str, key: tuple[str, str | None], path: str) -> HttpResponse:
        """SAM's mock OPTIONS method: the configured CORS headers, no function call."""
        self._count("preflights")
        api, cors = self.stages[key], self.cors[key]
        if key in self.preflight_authorizers:
            try:
                self.preflight_authorizers[key].claims(request)
            except TokenRejectedError as error:
                self._count("unauthorized")
                return gateway_answer(unauthorized(str(error)), request_id, REST_API, api=api, request=request,
                                      resource_path=path)
        headers = [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", cors.allow_origin)]
        if cors.allow_headers:
            headers.append(("Access-Control-Allow-Headers", cors.allow_headers))
        methods = cors.allow_methods or preflight_methods(self.routes, key, path)
        headers.append(("Access-Control-Allow-Methods", methods))
        if cors.max_age is not None:
            headers.append(("Access-Control-Max-Age", cors.max_age))
        if cors.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        headers.append((_request_id_header(REST_API), request_id))
        return HttpResponse(200, headers, b"{}")

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # stop() does not wait for clients that keep a connection open


def _handler_class(gateway: ApiGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 60  # an idle keep-alive connection is closed after this many seconds

        def setup(self) -> None:
            super().setup()
            gateway._track(self.connection, True)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                gateway._track(self.connection, False)

        def _serve(self) -> None:
            raw_path, _, raw_query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            request = HttpRequest(method=self.command, raw_path=raw_path or "/", raw_query=raw_query,
                                  headers=list(self.headers.items()), body=self.rfile.read(length) if length else b"",
                                  source_ip=self.client_address[0], protocol=self.request_version)
            response = gateway.handle(request)
            logger.debug("%s %s -> %s", request.method, request.raw_path, response.status)
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            logger.debug("api gateway: " + format, *args)

    return Handler
