"""The reviewer API (SPEC C8): API Gateway (REST, Cognito user pool authorizer) -> this function.

Thin: the Powertools REST resolver validates every request and response against the models below
(`enable_validation=True`; a bad body, path or query is a 422 whose `message` names the field and
whose `detail` lists each field's `loc`, `msg` and `type`, as documented), reads the reviewer
from the authorizer's claims (`email`, `cognito:groups`), calls one use-case of
`oms.services.review`, and maps its refusals to 401/403/404/409/422 (a POST whose body is not JSON
is a 415). The OpenAPI document generated from this module is committed at
docs/openapi/reviewer-api.json (`oms openapi --write`; a test fails when the two differ).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.domain.order import CHANNELS
from oms.domain.review import (
    ROLES,
    SOURCES,
    ClaimConflictError,
    ForbiddenError,
    InvalidActionError,
    ItemNotFoundError,
    Reviewer,
)
from oms.observability import logger
from oms.services import review
from oms.services.kpi_report import KpiRangeError, kpi_report
from oms.settings import get_settings
from pydantic import BaseModel, ConfigDict, Field


class UnauthenticatedError(Exception):
    """No usable identity in the request (API Gateway's authorizer normally stops these first)."""


# Routes on a Router; the resolver is built at first use with the CORS origins from the settings
# (configuration is read when needed, never at import).
app = Router()

ItemId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="a review item's id")]


class ErrorResponse(BaseModel):
    message: str


class FieldErrorItem(BaseModel):
    loc: list[str | int] = Field(description='where: ["body", "reason"], ["query", "limit"], ["path", "item_id"]')
    msg: str
    type: str


class ValidationErrorResponse(ErrorResponse):
    """A 422: the request does not fit the document (`detail` names each field), or the action does
    not apply to the item (`detail` empty)."""

    detail: list[FieldErrorItem]


class ReviewItemResponse(BaseModel):
    item_id: str
    order_key: str
    channel: str | None = None
    source: str
    reason: str
    detail: str
    facts: dict[str, Any]
    status: str
    created_at: str | None = None
    updated_at: str | None = None
    occurrences: int
    claimed_by: str | None = None
    claim_expires_at: str | None = None
    resolution: dict[str, Any] | None = None


class ReviewItemDetailResponse(ReviewItemResponse):
    order: dict[str, Any] | None = Field(description="the order with its allocation scores, risk facts and reservation")


class ReviewItemPageResponse(BaseModel):
    items: list[ReviewItemResponse]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last one")


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, description="why, for the audit log")


class ReassignRequest(DecisionRequest):
    warehouse_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="where the units go")


class DecisionResponse(BaseModel):
    item_id: str
    order_key: str
    action: str
    outcome: str
    order: dict[str, Any]


class AuditEntryResponse(BaseModel):
    item_id: str
    entry: str
    order_key: str
    who: str
    role: str
    action: str
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]
    at: str


_ERRORS = {status: {"description": text, "content": {"application/json": {"model": model}}}
           for status, text, model in (
               (401, "no valid token", ErrorResponse), (403, "the role may not do this", ErrorResponse),
               (404, "no such item", ErrorResponse),
               (409, "claimed by someone else, resolved already, or refused by the engines", ErrorResponse),
               (422, "a field that does not fit (named in `detail`), or an action that does not apply to the item",
                ValidationErrorResponse),
               # API Gateway answers this one itself, over the stage's throttle (ReviewerApi MethodSettings).
               (429, "too many requests: over the API's rate limit, retry later", ErrorResponse))}


_NOT_JSON = {415: {"description": "the request declares a Content-Type other than application/json",
                   "content": {"application/json": {"model": ErrorResponse}}}}


def _responses(model, *, post: bool = False) -> dict:
    """The route's success model and the errors every route may answer (a POST also 415)."""
    return {200: {"description": "OK", "content": {"application/json": {"model": model}}}, **_ERRORS,
            **(_NOT_JSON if post else {})}


@lru_cache(maxsize=1)
def _ports() -> review.ReviewPorts:
    from oms.services.review_dependencies import review_ports

    return review_ports(get_settings())


def _reviewer() -> Reviewer:
    claims = app.current_event.request_context.authorizer.claims or {}
    # The pool signs users in by e-mail, so `cognito:username` is an opaque id: the e-mail says who.
    username = claims.get("email") or claims.get("cognito:username") or claims.get("username")
    if not username:
        raise UnauthenticatedError("no reviewer identity in the request")
    return Reviewer(username=username, roles=tuple(g for g in _groups(claims.get("cognito:groups")) if g in ROLES))


def _groups(value: Any) -> list[str]:
    """API Gateway passes a list claim to a REST API as text ("[reviewer admin]" or a JSON list)."""
    if isinstance(value, list):
        return [str(group) for group in value]
    if not value:
        return []
    text = str(value).strip()
    if text.startswith("[") and '"' in text:
        try:
            return [str(group) for group in json.loads(text)]
        except ValueError:
            pass
    return [group for group in re.split(r"[\s,\[\]]+", text) if group]


def _page(items: list[dict], cursor: str | None) -> ReviewItemPageResponse:
    return ReviewItemPageResponse(items=[ReviewItemResponse(**item) for item in items], next_cursor=cursor)


@app.get("/review/items", responses=_responses(ReviewItemPageResponse), summary="Review items, oldest first, with filters")
def list_items(
    status: Annotated[Literal["open", "resolved"], Query()] = "open",
    reason: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,64}$")] = None,
    channel: Annotated[Literal[CHANNELS] | None, Query()] = None,  # type: ignore[valid-type]
    source: Annotated[Literal[SOURCES] | None, Query()] = None,  # type: ignore[valid-type]
    older_than_minutes: Annotated[int | None, Query(ge=1, le=60 * 24 * 90)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ReviewItemPageResponse:
    query = review.ListQuery(status=status, reason=reason, channel=channel, source=source,
                             older_than_minutes=older_than_minutes, limit=limit, cursor=cursor)
    try:
        items, next_cursor = review.list_items(_reviewer(), query, _ports())
    except ValueError as error:  # a cursor this API never gave out
        raise InvalidActionError(str(error)) from None
    return _page(items, next_cursor)


@app.get("/review/items/<item_id>", responses=_responses(ReviewItemDetailResponse), summary="One item with its order, scores and risk facts")
def get_item(item_id: ItemId) -> ReviewItemDetailResponse:
    return ReviewItemDetailResponse(**review.get_item(_reviewer(), item_id, _ports()))


@app.post("/review/items/<item_id>/claim", responses=_responses(ReviewItemResponse, post=True),
          summary="Hold the item for a while (a lease)")
def claim_item(item_id: ItemId) -> ReviewItemResponse:
    return ReviewItemResponse(**review.claim_item(_reviewer(), item_id, _ports()))


def _decide(item_id: str, action: str, body: DecisionRequest, warehouse_id: str | None = None) -> DecisionResponse:
    return DecisionResponse(**review.decide(_reviewer(), item_id, action, body.reason, _ports(),
                                            warehouse_id=warehouse_id))


@app.post("/review/items/<item_id>/approve", responses=_responses(DecisionResponse, post=True),
          summary="Let the order go on: allocate it again (allocation) or clear its risk hold")
def approve(item_id: ItemId, body: DecisionRequest) -> DecisionResponse:
    return _decide(item_id, "approve", body)


@app.post("/review/items/<item_id>/reject", responses=_responses(DecisionResponse, post=True),
          summary="Reject the order: its reserved units are released")
def reject(item_id: ItemId, body: DecisionRequest) -> DecisionResponse:
    return _decide(item_id, "reject", body)


@app.post("/review/items/<item_id>/reassign", responses=_responses(DecisionResponse, post=True),
          summary="Hold the order's units at another warehouse (atomically)")
def reassign(item_id: ItemId, body: ReassignRequest) -> DecisionResponse:
    return _decide(item_id, "reassign", body, body.warehouse_id)


@app.post("/review/items/<item_id>/release-hold", responses=_responses(DecisionResponse, post=True),
          summary="Release a risk hold")
def release_hold(item_id: ItemId, body: DecisionRequest) -> DecisionResponse:
    return _decide(item_id, "release_hold", body)


@app.post("/review/items/<item_id>/resend-code", responses=_responses(DecisionResponse, post=True),
          summary="Send the buyer a new verification code (the order is held for it again)")
def resend_code(item_id: ItemId, body: DecisionRequest) -> DecisionResponse:
    return _decide(item_id, "resend_code", body)


@app.post("/review/items/<item_id>/replay", responses=_responses(DecisionResponse, post=True),
          summary="Normalize a quarantined order's stored payload again, after a fix (409 while it still fails)")
def replay(item_id: ItemId, body: DecisionRequest) -> DecisionResponse:
    return _decide(item_id, "replay", body)


@app.get("/review/items/<item_id>/audit", responses=_responses(list[AuditEntryResponse]), summary="Every decision on the item (admins)")
def item_audit(item_id: ItemId) -> list[AuditEntryResponse]:
    return [AuditEntryResponse(**entry) for entry in review.audit_of(_reviewer(), item_id, _ports())]


@app.get("/review/audit", responses=_responses(list[AuditEntryResponse]), summary="A day's decisions across items (admins)")
def day_audit(day: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")]) -> list[AuditEntryResponse]:
    return [AuditEntryResponse(**entry) for entry in review.audit_of_day(_reviewer(), day, _ports())]


class KpiResponse(BaseModel):
    name: str
    value: float | int | None = Field(description="a rate as a fraction 0..1, seconds, or orders; null: no data")
    target: str
    status: Literal["ok", "breach", "no_data", "reported"]


class KpiSummaryResponse(BaseModel):
    kpis: list[KpiResponse]
    counts: dict[str, Any] = Field(description="the counters the KPIs come from")


class KpiDayResponse(KpiSummaryResponse):
    day: str


class KpiHourResponse(BaseModel):
    hour: str
    kpis: list[KpiResponse]
    channels: dict[str, dict[str, Any]] = Field(description="counters per channel (`_system`: handler invocations)")


class LatencyHistogramResponse(BaseModel):
    bounds_seconds: list[int]
    counts: list[int] = Field(description="orders per bucket; the last one is above the last bound")


class ReviewQueueResponse(BaseModel):
    open_items: int
    oldest_open_age_seconds: int | None
    by_source: dict[str, int]


class AllocationOutcomesResponse(BaseModel):
    allocated_automatically: int
    sent_to_review: int


class KpiReportResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    generated_at: str
    channel: str | None
    overall: KpiSummaryResponse
    channels: dict[str, KpiSummaryResponse]
    days: list[KpiDayResponse]
    hours: list[KpiHourResponse]
    latency_histogram: LatencyHistogramResponse
    review_queue: ReviewQueueResponse
    allocation_outcomes: AllocationOutcomesResponse
    risk_holds: int


Day = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="a UTC day, YYYY-MM-DD")]


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidActionError(f"{name}: {value} is not a day") from None


@lru_cache(maxsize=1)
def _kpi_counters():
    from oms.adapters.kpi_counters_table import KpiCountersTable

    return KpiCountersTable(get_settings().kpi_table)


@app.get("/kpis", responses=_responses(KpiReportResponse),
         summary="The six KPIs over UTC days (default today; at most 31), overall, per channel, day and hour")
def get_kpis(
    from_: Annotated[str | None, Query(alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$",
                                       description="first UTC day, YYYY-MM-DD")] = None,
    to: Day = None,
    channel: Annotated[Literal[CHANNELS] | None, Query()] = None,  # type: ignore[valid-type]
) -> KpiReportResponse:
    reviewer = _reviewer()
    if not reviewer.roles:
        raise ForbiddenError("only reviewers, risk reviewers and admins see the KPIs")
    now = datetime.now(timezone.utc)
    last = _day(to, "to") if to else now.date()
    first = _day(from_, "from") if from_ else last
    try:
        report = kpi_report(_kpi_counters(), _ports().items, first, last, now, channel)
    except KpiRangeError as error:
        raise InvalidActionError(str(error)) from None
    return KpiReportResponse.model_validate(report)


def _error(status: int, error: Exception) -> Response:
    message = str(error)
    body = ValidationErrorResponse(message=message, detail=[]) if status == 422 else ErrorResponse(message=message)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump_json())


def _invalid_request(error: RequestValidationError) -> Response:
    """Powertools' own 422 drops each error's `msg`, which its documented ValidationError requires: this
    one keeps it (pydantic's text, no input echoed) and says in `message` which fields are wrong."""
    detail = [FieldErrorItem(loc=[part if isinstance(part, int) else str(part) for part in e.get("loc", ())],
                             msg=str(e.get("msg") or e.get("type", "invalid")), type=str(e.get("type", "invalid")))
              for e in error.errors()]
    fields = "; ".join(f"{'.'.join(str(part) for part in item.loc)}: {item.msg}" for item in detail)
    body = ValidationErrorResponse(message=f"invalid request: {fields}" if fields else "invalid request", detail=detail)
    return Response(status_code=422, content_type=content_types.APPLICATION_JSON, body=body.model_dump_json())


_STATUS_OF = ((UnauthenticatedError, 401), (ForbiddenError, 403), (ItemNotFoundError, 404),
              (ClaimConflictError, 409), (review.ActionRefusedError, 409), (InvalidActionError, 422),
              (RequestUnsupportedContentType, 415))


def _cors(allowed_origins: str) -> CORSConfig:
    origins = [origin.strip() for origin in allowed_origins.split(",") if origin.strip()]
    return CORSConfig(allow_origin=origins[0] if origins else "https://localhost", extra_origins=origins[1:],
                      allow_headers=["Authorization", "Content-Type"], max_age=600)


def refuse_unknown_query_parameters(resolver: APIGatewayRestResolver, next_middleware):
    """A query parameter the route does not declare is a 422 naming it (the document allows no others),
    not silently ignored: a misspelt filter would otherwise list everything."""
    route = resolver.context.get("_route")
    declared = {param.alias for param in route.dependant.query_params} if route is not None else None
    given = (resolver.current_event.query_string_parameters or {}).keys()
    unknown = sorted(name for name in given if declared is not None and name not in declared)
    if unknown:
        raise RequestValidationError([{"loc": ("query", name), "msg": "unknown query parameter",
                                       "type": "extra_forbidden"} for name in unknown])
    return next_middleware(resolver)


def build_resolver(allowed_origins: str) -> APIGatewayRestResolver:
    """The resolver with this API's routes, its error mapping and CORS for the configured origins."""
    resolver = APIGatewayRestResolver(enable_validation=True, cors=_cors(allowed_origins))
    resolver.include_router(app)
    resolver.use(middlewares=[refuse_unknown_query_parameters])
    for error_type, status in _STATUS_OF:
        resolver.exception_handler(error_type)(lambda error, status=status: _error(status, error))
    resolver.exception_handler(RequestValidationError)(_invalid_request)
    return resolver


@lru_cache(maxsize=1)
def _resolver() -> APIGatewayRestResolver:
    return build_resolver(get_settings().reviewer_allowed_origins)


def openapi_document() -> dict:
    """The API's OpenAPI document (what `oms openapi` writes and the contract test compares)."""
    return json.loads(build_resolver("https://localhost").get_openapi_json_schema(
        title="OMS reviewer API", version="1",
        description="Work the manual-review queue: list, claim and decide review items. Cognito ID token in "
                    "the Authorization header; groups reviewer, risk_reviewer, admin.",
        security_schemes={"cognito": APIKey(name="Authorization", **{"in": APIKeyIn.header})},
        security=[{"cognito": []}]))


def _declared_media_type(event: dict) -> str:
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    return str(headers.get("content-type") or "").split(";")[0].strip().lower()


def refuse_unsupported_media_type(event: dict, allowed_origins: str) -> dict | None:
    """A POST that declares a body type other than JSON: the 415 proxy response, else None.

    Checked before the resolver because Powertools' request validation runs first and parses form and
    multipart bodies too (a form body then gets a misleading 422 about types; a multipart type without
    a boundary raises, which API Gateway answers with a 502). This API takes JSON only.
    """
    declared = _declared_media_type(event)
    if event.get("httpMethod") != "POST" or declared in ("", content_types.APPLICATION_JSON):
        return None
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    cors = _cors(allowed_origins)
    return {"statusCode": 415,
            "headers": {"Content-Type": content_types.APPLICATION_JSON,
                        **cors.to_dict(cors.allowed_origin(headers.get("origin")))},
            "body": ErrorResponse(message=f"unsupported Content-Type {declared}: send application/json")
            .model_dump_json(),
            "isBase64Encoded": False}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    refused = refuse_unsupported_media_type(event, get_settings().reviewer_allowed_origins)
    return refused if refused is not None else _resolver().resolve(event, context)
