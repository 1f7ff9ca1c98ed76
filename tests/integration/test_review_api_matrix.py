"""Every route of the reviewer API's OpenAPI document against the refusals issue 6 asks for, over HTTP
on the local cloud: 403 (a role that may not), 404 (an unknown item), 409 (claimed by someone else,
resolved already) and 422 (a bad body, path or query, the field named) wherever they apply; 401 is
covered for every route in test_review_api.py. Refusals change nothing, so one set of items serves all.

Also the regressions for what the property-based test (test_review_api_properties.py) found: a 422
without the `msg` its documented schema requires, a 502 on a POST declaring multipart/form-data without
a boundary (and other body types parsed as if they were JSON), and API Gateway's 429 undocumented."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests
from omsdev.commands.openapi import DOCUMENT
from omsdev.localcloud.local_auth import issue_token

from tests.integration.conftest import serving_api
from tests.integration.review_helpers import quarantine_item, refused_order, risk_held_order, warehouses

UNKNOWN = "0" * 24
OPERATIONS = {(method.upper(), path): operation
              for path, methods in json.loads(DOCUMENT.read_text(encoding="utf-8"))["paths"].items()
              for method, operation in methods.items()}
REASON = {"reason": "checked with the warehouse"}
CLAIMER = {"reviewer": "other.reviewer@example.com", "risk_reviewer": "other.risk@example.com"}


@dataclass(frozen=True)
class Row:
    """One refusal: `item` names a fixture item (stock, risk, claimed_stock, claimed_risk, resolved_stock,
    resolved_risk) or is an id itself; `named` must appear in a 422's message and in a field's `loc`."""

    status: int
    method: str
    path: str
    role: str
    item: str | None = None
    params: dict = field(default_factory=dict)
    body: dict | str | None = None
    named: str | None = None
    note: str = ""

    @property
    def id(self) -> str:
        note = " ".join(part for part in (self.named, self.note) if part)
        return f"{self.status}-{self.method} {self.path}-{self.role}{'-' + note if note else ''}"


ITEM, CLAIM = "/review/items/{item_id}", "/review/items/{item_id}/claim"
APPROVE, REJECT = "/review/items/{item_id}/approve", "/review/items/{item_id}/reject"
REASSIGN, RELEASE = "/review/items/{item_id}/reassign", "/review/items/{item_id}/release-hold"
RESEND, ITEM_AUDIT = "/review/items/{item_id}/resend-code", "/review/items/{item_id}/audit"
REPLAY = "/review/items/{item_id}/replay"
LIST, DAY_AUDIT, KPIS = "/review/items", "/review/audit", "/kpis"
MOVE = {**REASON, "warehouse_id": "WH-WEST"}

ROWS = [
    # 403: a role that may not
    Row(403, "GET", LIST, "reviewer", params={"source": "risk"}, note="risk source"),
    Row(403, "GET", LIST, "risk_reviewer", params={"source": "allocation"}, note="stock source"),
    Row(403, "GET", ITEM, "reviewer", "risk"),
    Row(403, "GET", ITEM, "risk_reviewer", "stock"),
    Row(403, "POST", CLAIM, "reviewer", "risk"),
    Row(403, "POST", APPROVE, "reviewer", "risk", body=REASON),
    Row(403, "POST", REJECT, "risk_reviewer", "stock", body=REASON),
    Row(403, "POST", REASSIGN, "risk_reviewer", "risk", body=MOVE, note="admins only on a risk item"),
    Row(403, "POST", RELEASE, "reviewer", "risk", body=REASON),
    Row(403, "POST", RESEND, "reviewer", "risk", body=REASON),
    Row(403, "POST", REPLAY, "risk_reviewer", "quarantine", body=REASON, note="a stock reviewer's item"),
    Row(403, "GET", ITEM_AUDIT, "reviewer", "stock"),
    Row(403, "GET", ITEM_AUDIT, "risk_reviewer", "risk"),
    Row(403, "GET", DAY_AUDIT, "risk_reviewer", params={"day": "2026-11-30"}),
    Row(403, "GET", KPIS, "no_group", note="signed in, but in no reviewer group"),
    # 404: an unknown item
    Row(404, "GET", ITEM, "admin", UNKNOWN),
    Row(404, "POST", CLAIM, "reviewer", UNKNOWN),
    Row(404, "POST", APPROVE, "reviewer", UNKNOWN, body=REASON),
    Row(404, "POST", REJECT, "risk_reviewer", UNKNOWN, body=REASON),
    Row(404, "POST", REASSIGN, "admin", UNKNOWN, body=MOVE),
    Row(404, "POST", RELEASE, "risk_reviewer", UNKNOWN, body=REASON),
    Row(404, "POST", RESEND, "risk_reviewer", UNKNOWN, body=REASON),
    Row(404, "POST", REPLAY, "reviewer", UNKNOWN, body=REASON),
    Row(404, "GET", ITEM_AUDIT, "admin", UNKNOWN),
    # 409: claimed by someone else, resolved already
    Row(409, "POST", CLAIM, "reviewer", "claimed_stock", note="claimed"),
    Row(409, "POST", CLAIM, "admin", "resolved_risk", note="resolved"),
    Row(409, "POST", APPROVE, "reviewer", "claimed_stock", body=REASON, note="claimed"),
    Row(409, "POST", APPROVE, "risk_reviewer", "resolved_risk", body=REASON, note="resolved"),
    Row(409, "POST", REJECT, "risk_reviewer", "claimed_risk", body=REASON, note="claimed"),
    Row(409, "POST", REJECT, "reviewer", "resolved_stock", body=REASON, note="resolved"),
    Row(409, "POST", REASSIGN, "reviewer", "claimed_stock", body=MOVE, note="claimed"),
    Row(409, "POST", REASSIGN, "admin", "resolved_stock", body=MOVE, note="resolved"),
    Row(409, "POST", RELEASE, "admin", "claimed_risk", body=REASON, note="claimed"),
    Row(409, "POST", RELEASE, "risk_reviewer", "resolved_risk", body=REASON, note="resolved"),
    Row(409, "POST", RESEND, "risk_reviewer", "claimed_risk", body=REASON, note="claimed"),
    Row(409, "POST", RESEND, "admin", "resolved_risk", body=REASON, note="resolved"),
    Row(409, "POST", REPLAY, "reviewer", "claimed_quarantine", body=REASON, note="claimed"),
    Row(409, "POST", REPLAY, "admin", "resolved_quarantine", body=REASON, note="resolved"),
    # 422: a bad body, path or query, the field named (or an action that does not apply to the item)
    Row(422, "GET", LIST, "reviewer", params={"limit": 0}, named="limit"),
    Row(422, "GET", LIST, "reviewer", params={"status": "closed"}, named="status"),
    Row(422, "GET", LIST, "reviewer", params={"channel": "ebay"}, named="channel"),
    Row(422, "GET", LIST, "reviewer", params={"older_than_minutes": "soon"}, named="older_than_minutes"),
    Row(422, "GET", LIST, "reviewer", params={"cursor": "not-a-cursor"}, named="cursor"),
    Row(422, "GET", ITEM, "reviewer", "not-an-id", named="item_id"),
    Row(422, "POST", CLAIM, "reviewer", "ABCDEF0123456789abcdef01", named="item_id", note="upper case"),
    Row(422, "POST", APPROVE, "reviewer", "stock", body={}, named="reason", note="missing"),
    Row(422, "POST", REJECT, "reviewer", "stock", body={"reason": "x"}, named="reason", note="too short"),
    Row(422, "POST", REASSIGN, "reviewer", "stock", body=REASON, named="warehouse_id", note="missing"),
    Row(422, "POST", REASSIGN, "admin", "risk", body={**REASON, "warehouse_id": "../WH"}, named="warehouse_id"),
    Row(422, "POST", RELEASE, "risk_reviewer", "risk", body={**REASON, "extra": 1}, named="extra"),
    Row(422, "POST", RELEASE, "reviewer", "stock", body=REASON, named="release_hold", note="not for stock"),
    Row(422, "POST", RESEND, "risk_reviewer", "risk", body='{"reason": ', named="body", note="not JSON"),
    Row(422, "POST", RESEND, "reviewer", "stock", body=REASON, named="resend_code", note="not for stock"),
    Row(422, "POST", REPLAY, "reviewer", "stock", body=REASON, named="replay", note="not for stock"),
    Row(422, "GET", ITEM_AUDIT, "admin", "not-an-id", named="item_id"),
    Row(422, "GET", DAY_AUDIT, "admin", named="day", note="missing"),
    Row(422, "GET", DAY_AUDIT, "admin", params={"day": "30.11.2026"}, named="day"),
    Row(422, "GET", KPIS, "reviewer", params={"from": "30.11.2026"}, named="from"),
    Row(422, "GET", KPIS, "risk_reviewer", params={"channel": "ebay"}, named="channel"),
]
# The statuses each route must be tried for (401 is test_review_api.py's; 404 needs an item in the path;
# 409 a claim or a decision).
EXPECTED = {route: {403, 422} | ({404} if "{item_id}" in route[1] else set())
            | ({409} if route[0] == "POST" else set()) for route in OPERATIONS}


@pytest.fixture(scope="module")
def api():
    """One local cloud serving the reviewer API, and items in every state a refusal needs."""
    with serving_api() as local:
        warehouses()
        local.items = {"stock": refused_order(local)[1], "risk": risk_held_order(local)[1],
                       "claimed_stock": refused_order(local)[1], "claimed_risk": risk_held_order(local)[1],
                       "resolved_stock": refused_order(local)[1], "resolved_risk": risk_held_order(local)[1],
                       "quarantine": quarantine_item(local), "claimed_quarantine": quarantine_item(local),
                       "resolved_quarantine": quarantine_item(local)}
        for kind, role in (("stock", "reviewer"), ("risk", "risk_reviewer"), ("quarantine", "reviewer")):
            for state in ("claimed", "resolved"):
                item = local.items[f"{state}_{kind}"]
                assert call(local, "POST", f"/review/items/{item}/claim", role, CLAIMER[role]).status_code == 200
            resolved = call(local, "POST", f"/review/items/{local.items[f'resolved_{kind}']}/reject", role,
                            CLAIMER[role], json=REASON)
            assert resolved.status_code == 200, resolved.text
        yield local


def call(api, method: str, path: str, role: str, username: str | None = None, **kwargs) -> requests.Response:
    # "no_group": a user of the pool who is in none of the reviewer groups
    token = (issue_token(api, "reviewer", username="nobody@example.com", overrides={"cognito:groups": []})
             if role == "no_group" else issue_token(api, role, username=username or f"{role}@example.com"))
    headers = {"Authorization": token,
               **kwargs.pop("headers", {})}
    return requests.request(method, f"{api.api_url}{path}", headers=headers, timeout=30, **kwargs)


def send(api, row: Row) -> requests.Response:
    item = api.items.get(row.item, row.item)
    path = row.path.replace("{item_id}", item) if item else row.path
    body = {"data": row.body, "headers": {"Content-Type": "application/json"}} if isinstance(row.body, str) else (
        {"json": row.body} if row.body is not None else {})
    return call(api, row.method, path, row.role, params=row.params, **body)


def test_the_matrix_tries_every_documented_route_for_its_refusals():
    tried = {}
    for row in ROWS:
        tried.setdefault((row.method, row.path), set()).add(row.status)
    assert tried == EXPECTED


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_a_refusal_is_the_documented_one(api, row):
    # WHEN a request the API must refuse is sent
    answer = send(api, row)
    # THEN the status is the expected one, documented for the route, with the documented body
    assert answer.status_code == row.status, answer.text
    assert str(row.status) in OPERATIONS[(row.method, row.path)]["responses"]
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert isinstance(body["message"], str) and body["message"]
    if row.status == 422:
        assert row.named in body["message"], body
        assert all(set(error) == {"loc", "msg", "type"} and error["msg"] for error in body["detail"]), body
        if body["detail"]:  # a field that does not fit (an action that does not apply has no field)
            assert any(row.named in map(str, error["loc"]) for error in body["detail"]), body


def test_a_refused_claim_or_decision_says_who_holds_the_item_and_changes_nothing(api):
    item = api.items["claimed_stock"]
    taken = call(api, "POST", f"/review/items/{item}/claim", "admin")
    assert taken.status_code == 409 and CLAIMER["reviewer"] in taken.json()["message"]
    shown = call(api, "GET", f"/review/items/{item}", "admin").json()
    assert shown["status"] == "open" and shown["claimed_by"] == CLAIMER["reviewer"]
    resolved = call(api, "GET", f"/review/items/{api.items['resolved_stock']}", "admin").json()
    assert resolved["status"] == "resolved" and resolved["resolution"]["by"] == CLAIMER["reviewer"]


POSTS = [path for method, path in OPERATIONS if method == "POST"]


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data", '{"reason": "checked with the warehouse"}'),  # no boundary: was a 502
    ("application/x-www-form-urlencoded", "reason=checked+with+the+warehouse"),  # was parsed as a form
    ("text/plain", '{"reason": "checked with the warehouse"}'),  # was a 415 with an undocumented body
])
@pytest.mark.parametrize("path", POSTS)
def test_a_post_with_another_body_type_is_a_documented_415(api, path, content_type, body):
    answer = call(api, "POST", path.replace("{item_id}", api.items["stock"]), "reviewer", data=body,
                  headers={"Content-Type": content_type})
    assert answer.status_code == 415, answer.text
    assert "415" in OPERATIONS[("POST", path)]["responses"]
    assert answer.json()["message"] == f"unsupported Content-Type {content_type}: send application/json"


def test_json_with_a_charset_is_json(api):
    answer = call(api, "POST", f"/review/items/{UNKNOWN}/approve", "reviewer", data=json.dumps(REASON),
                  headers={"Content-Type": "application/json; charset=utf-8"})
    assert answer.status_code == 404


def test_a_forged_cursor_with_the_right_keys_is_422(api):
    # a cursor's values go to DynamoDB as a start key: plain values (botocore refuses them) or another
    # listing's status are refused as a bad query, not passed on
    forged = base64.urlsafe_b64encode(json.dumps({"item_id": "x", "status": "open", "created_at": "1"}).encode())
    answer = call(api, "GET", "/review/items", "reviewer", params={"cursor": forged.decode()})
    assert answer.status_code == 422, answer.text
    other = {"item_id": {"S": "a"}, "status": {"S": "resolved"}, "created_at": {"S": "2026-11-30T00:00:00Z"}}
    answer = call(api, "GET", "/review/items", "reviewer",
                  params={"cursor": base64.urlsafe_b64encode(json.dumps(other).encode()).decode()})
    assert answer.status_code == 422, answer.text


def test_over_the_throttle_the_gateway_answers_the_documented_429(api):
    # GIVEN the stage's throttle (50 requests/s, burst 100) WHEN a burst well over it hits one route
    # (unauthenticated: API Gateway throttles before the authorizer, and no function runs)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: requests.get(f"{api.api_url}/review/audit", timeout=30), range(300)))
    throttled = [answer for answer in answers if answer.status_code == 429]
    # THEN some are 429s, which the document lists, with its error body
    assert throttled and all(answer.json() == {"message": "Too Many Requests"} for answer in throttled)
    assert {answer.status_code for answer in answers} <= {401, 429}
    assert all("429" in operation["responses"] for operation in OPERATIONS.values())
