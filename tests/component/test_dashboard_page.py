"""The KPI dashboard page of the local cloud, over real HTTP on 127.0.0.1 and in headless Chromium.

A LocalCloud serves a small template written for these tests: a REST API behind a Cognito user pool
authorizer (as the reviewer API in infra/template.yaml) with GET /kpis answered by a fixture function
with the /kpis document below. The local front serves /dashboard itself; Chromium (tests/chromium.py,
installed by `make test` meanwhile) opens it, runs its scripts and the DOM it dumps is what we check.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from omsdev.localcloud.cloud import LocalCloud
from omsdev.localcloud.local_auth import issue_token
from tests.chromium import chromium_or_fail

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "tests" / "artifacts" / "dashboard.png"

# Waiting for the background chromium install (up to 5 min) counts against the test's timeout.
pytestmark = pytest.mark.timeout(480)

TEMPLATE = textwrap.dedent("""\
    AWSTemplateFormatVersion: "2010-09-09"
    Transform: AWS::Serverless-2016-10-31
    Description: Dashboard page test - GET /kpis behind a Cognito user pool authorizer.
    Resources:
      ReviewerUserPool:
        Type: AWS::Cognito::UserPool
        Properties:
          UserPoolName: !Sub ${AWS::StackName}-reviewers
          UsernameAttributes:
            - email
      ReviewerUserPoolClient:
        Type: AWS::Cognito::UserPoolClient
        Properties:
          UserPoolId: !Ref ReviewerUserPool
          GenerateSecret: false
      ReviewerGroup:
        Type: AWS::Cognito::UserPoolGroup
        Properties:
          GroupName: reviewer
          UserPoolId: !Ref ReviewerUserPool
      ReviewerApi:
        Type: AWS::Serverless::Api
        Properties:
          StageName: prod
          Auth:
            DefaultAuthorizer: ReviewerCognito
            Authorizers:
              ReviewerCognito:
                UserPoolArn: !GetAtt ReviewerUserPool.Arn
                Identity:
                  Header: Authorization
      KpiApiFunction:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          CodeUri: kpi_function/
          Handler: dashboard_kpis_fixture.lambda_handler
          Timeout: 3
          Events:
            GetKpis:
              Type: Api
              Properties:
                RestApiId: !Ref ReviewerApi
                Path: /kpis
                Method: GET
""")

# The fixture function: the document in kpis.json beside it, with the period asked for; `from` after
# `to` is a 400, a period from 1999 makes it fail (API Gateway's 502).
HANDLER = textwrap.dedent("""\
    import json
    from pathlib import Path

    DOCUMENT = Path(__file__).with_name("kpis.json")


    def lambda_handler(event, context):
        query = event.get("queryStringParameters") or {}
        document = json.loads(DOCUMENT.read_text())
        first, last = query.get("from", document["from"]), query.get("to", document["to"])
        if first > last:
            return {"statusCode": 400, "headers": {"Content-Type": "application/json"},
                    "body": json.dumps({"message": "from is after to"})}
        if first.startswith("1999"):
            raise RuntimeError("the KPI table is not there")
        document.update({"from": first, "to": last})
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(document)}
""")


def _kpis(latency_p95, allocation, on_time, exceptions, per_staff_day, availability):
    def kpi(name, value, status, target):
        return {"name": name, "value": value, "target": target, "status": status}

    return [
        kpi("ingestion_latency_p95_seconds", *latency_p95, "<= 60 s"),
        kpi("auto_allocation_rate", *allocation, ">= 95%"),
        kpi("first_shipment_on_time_rate", *on_time, ">= 92%"),
        kpi("exception_order_ratio", *exceptions, "< 3% (alert at 3%)"),
        kpi("orders_per_staff_day", per_staff_day, "reported", "reported"),  # no target: reported only
        kpi("availability", *availability, ">= 99.5%"),
    ]


def _counts(stored, **more):
    counts = dict(orders_stored=stored, orders_paid=stored, latency=[stored, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                  allocation_needed=stored, allocated_automatically=stored, first_shipments_due=0,
                  first_shipments_on_time=0, exceptions=0, orders_quarantined=0, risk_holds=0, orders_shipped=0,
                  staff_days=0, attempts_ok=stored, attempts_failed=0)
    counts.update(more)
    return counts


# The /kpis document, the shape the KPI API answers (values for the overall tiles as in its example).
KPIS = {
    "from": "2026-11-30", "to": "2026-11-30", "generated_at": "2026-11-30T10:15:02Z",
    "overall": {
        "kpis": _kpis((30, "ok"), (0.9712, "ok"), (None, "no_data"), (0.041, "breach"), 2.15, (1.0, "ok")),
        "counts": {"orders_stored": 412, "orders_paid": 400, "latency": [300, 90, 10, 0, 0, 0, 0, 0, 0, 0],
                   "allocation_needed": 380, "allocated_automatically": 369, "first_shipments_due": 0,
                   "first_shipments_on_time": 0, "exceptions": 17, "orders_quarantined": 3, "risk_holds": 5,
                   "orders_shipped": 0, "staff_days": 147, "attempts_ok": 700, "attempts_failed": 0},
    },
    "channels": {
        "taobao": {"kpis": _kpis((20, "ok"), (0.99, "ok"), (None, "no_data"), (0.012, "ok"), 1.1, (1.0, "ok")),
                   "counts": _counts(250)},
        "jd": {"kpis": _kpis((45, "ok"), (0.9123, "breach"), (None, "no_data"), (0.08, "breach"), 0.6,
                             (0.99, "breach")),
               "counts": _counts(120)},
        "pdd": {"kpis": _kpis((None, "no_data"), (None, "no_data"), (None, "no_data"), (0.0, "ok"), 0.45, (1.0, "ok")),
                "counts": _counts(42)},
        "_system": {"counts": _counts(0, attempts_ok=288)},
    },
    # 10:00 has no data (hours holds only hours with data): the chart shows it as an empty hour.
    "hours": [
        {"hour": "2026-11-30T08:00:00Z", "channels": {"taobao": _counts(80), "jd": _counts(40),
                                                      "_system": _counts(0, attempts_ok=100)}},
        {"hour": "2026-11-30T09:00:00Z", "channels": {"taobao": _counts(120), "jd": _counts(50), "pdd": _counts(30)}},
        {"hour": "2026-11-30T11:00:00Z", "channels": {"taobao": _counts(50), "jd": _counts(30), "pdd": _counts(12)}},
    ],
    "latency_histogram": {"bounds_seconds": [10, 30, 60, 120, 300, 600, 900, 1800, 3600],
                          "counts": [300, 90, 10, 0, 0, 0, 0, 0, 0, 0]},
    "review_queue": {"open_items": 12, "oldest_open_age_seconds": 340,
                     "by_source": {"allocation": 5, "risk": 4, "verification": 1, "quarantine": 2}},
    "allocation_outcomes": {"allocated_automatically": 369, "sent_to_review": 11},
    "risk_holds": 5,
}


class PageElements(HTMLParser):
    """The elements of a dumped DOM: tag, attributes and all the text inside each."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open and self._open.pop()["tag"] != tag:
            pass

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def all(self, attribute: str, value: str | None = None) -> list[dict]:
        return [element for element in self.elements
                if attribute in element["attrs"] and (value is None or element["attrs"][attribute] == value)]

    def one(self, attribute: str, value: str | None = None) -> dict:
        found = self.all(attribute, value)
        assert len(found) == 1, f"{len(found)} elements with {attribute}={value!r}"
        return found[0]

    def body(self) -> dict:
        return next(element for element in self.elements if element["tag"] == "body")

    def text(self, attribute: str, value: str) -> str:
        return " ".join(self.one(attribute, value)["text"].split())


@pytest.fixture(scope="module")
def cloud(moto_endpoint, tmp_path_factory):
    """A LocalCloud serving the test template's GET /kpis and (the local front's own) /dashboard."""
    directory = tmp_path_factory.mktemp("dashboard-cloud")
    (directory / "template.yaml").write_text(TEMPLATE)
    (directory / "kpi_function").mkdir()
    (directory / "kpi_function" / "dashboard_kpis_fixture.py").write_text(HANDLER)
    (directory / "kpi_function" / "kpis.json").write_text(json.dumps(KPIS))
    cloud = LocalCloud(directory / "template.yaml", endpoint=moto_endpoint, stack_name=f"t{uuid.uuid4().hex[:10]}",
                       start_event_sources=False, api_port=0)
    cloud.start()
    yield cloud
    cloud.stop()


@pytest.fixture(scope="module")
def token(cloud):
    return issue_token(cloud, "reviewer", username=f"dash-{uuid.uuid4().hex[:6]}@example.com")


@pytest.fixture(scope="module")
def browser():
    return chromium_or_fail()


def test_the_page_and_its_assets_come_from_the_local_front_with_their_types(cloud):
    # GIVEN the local cloud's API front
    # WHEN the page and its files are fetched without any token
    page = requests.get(f"{cloud.api_url}/dashboard", timeout=10)
    script = requests.get(f"{cloud.api_url}/dashboard/dashboard.js", timeout=10)
    style = requests.get(f"{cloud.api_url}/dashboard/dashboard.css", timeout=10)
    library = requests.get(f"{cloud.api_url}/dashboard/vendor/chart.umd.min.js", timeout=10)
    head = requests.head(f"{cloud.api_url}/dashboard/", timeout=10)
    # THEN each comes with its type
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert script.status_code == 200 and script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert style.status_code == 200 and style.headers["Content-Type"] == "text/css; charset=utf-8"
    assert library.status_code == 200 and library.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "Chart.js v4" in library.text[:200]
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(page.content))
    # AND the page loads nothing from another origin, which its Content-Security-Policy also forbids
    assert "http://" not in page.text and "https://" not in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "connect-src 'self'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", [
    "/dashboard/..%2Flocalcloud%2Fapi_gateway.py",
    "/dashboard/%2e%2e/commands/local.py",
    "/dashboard/vendor/..%2F..%2F__init__.py",
    "/dashboard/..%5c..%5cREADME.md",
    "/dashboard/vendor",
    "/dashboard/no-such-file.js",
    "/dashboard//etc/passwd",
])
def test_only_the_files_of_the_dashboard_directory_are_served(cloud, path):
    # GIVEN paths that name something outside the dashboard directory, a directory or nothing
    # WHEN they are fetched
    response = requests.get(cloud.api_url + path, timeout=10)
    # THEN the local front answers 404 and shows no file
    assert response.status_code == 404
    assert response.text == "Not Found"


def test_the_dashboard_paths_are_read_only_and_other_paths_stay_with_api_gateway(cloud):
    # WHEN the page is posted to, and a path that only starts like it is fetched
    posted = requests.post(f"{cloud.api_url}/dashboard", data=b"x", timeout=10)
    other = requests.get(f"{cloud.api_url}/dashboards", timeout=10)
    # THEN the page refuses the method, and API Gateway answers the other path as it does (no route)
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
    assert other.status_code == 403 and other.json() == {"message": "Missing Authentication Token"}
    # AND the KPIs themselves still need the token
    assert requests.get(f"{cloud.api_url}/kpis", timeout=10).status_code == 401


def test_the_page_shows_the_kpis_charts_and_channels_from_the_api(cloud, token, browser, tmp_path):
    # GIVEN the dashboard opened with a reviewer's token in the URL fragment
    url = f"{cloud.api_url}/dashboard#token={token}"
    # WHEN Chromium has run its scripts
    page = PageElements(browser.dump_dom(url))
    # THEN it read the KPIs
    assert page.body()["attrs"]["data-state"] == "ready"
    assert page.one("id", "message")["attrs"].get("hidden") is not None
    # AND each tile shows its value as the API gave it, with its status
    shown = {element["attrs"]["data-kpi"]: (element["text"], element["attrs"]["data-status"])
             for element in page.all("data-kpi")}
    assert shown == {
        "ingestion_latency_p95_seconds": ("30 s", "ok"),
        "auto_allocation_rate": ("97.12%", "ok"),
        "first_shipment_on_time_rate": ("—", "no_data"),
        "exception_order_ratio": ("4.10%", "breach"),
        "orders_per_staff_day": ("2.15", "reported"),
        "availability": ("100.00%", "ok"),
    }
    assert "target ≥ 95%" in page.text("data-kpi-tile", "auto_allocation_rate")
    assert "off target" in page.text("data-kpi-tile", "exception_order_ratio")
    # AND the review queue, the allocation outcomes and the risk holds
    assert page.text("data-metric", "review_open_items") == "12"
    assert page.text("data-metric", "review_oldest_age") == "5 min 40 s"
    assert page.text("data-metric", "allocated_automatically") == "369"
    assert page.text("data-metric", "sent_to_review") == "11"
    assert page.text("data-metric", "risk_holds") == "5"
    # AND Chart.js drew the four charts: orders per sales channel (not `_system`) over every hour from
    # the first to the last with data, the ten latency buckets, the two outcomes, the four review sources
    charts = {element["attrs"]["id"]: element["attrs"] for element in page.all("data-chart")}
    assert set(charts) == {"chart-orders", "chart-latency", "chart-allocation", "chart-review"}
    assert all(attributes.get("data-rendered") == "true" for attributes in charts.values()), charts
    assert charts["chart-orders"]["data-series"] == "jd,pdd,taobao"
    assert charts["chart-orders"]["data-points"] == "4"
    assert charts["chart-latency"]["data-points"] == "10"
    assert charts["chart-allocation"]["data-points"] == "2"
    assert charts["chart-review"]["data-points"] == "4"
    # AND the table has a row per sales channel with its KPIs
    assert [row["attrs"]["data-channel"] for row in page.all("data-channel")] == ["jd", "pdd", "taobao"]
    jd_cells = {cell["attrs"]["data-channel-kpi"]: (cell["text"], cell["attrs"]["data-status"])
                for cell in page.all("data-channel-kpi") if cell in _cells_of(page, "jd")}
    assert jd_cells["auto_allocation_rate"] == ("91.23%", "breach")
    assert jd_cells["exception_order_ratio"] == ("8.00%", "breach")
    assert jd_cells["ingestion_latency_p95_seconds"] == ("45 s", "ok")
    assert page.text("id", "period-shown") == "2026-11-30"
    assert page.text("id", "updated") == "data as of 2026-11-30 10:15:02 UTC"

    # AND a screenshot shows it (for a person to look at; tests/artifacts/ is not committed)
    shot = browser.screenshot(url, tmp_path / "dashboard.png", width=1400, height=1800)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACT)
    print(f"dashboard screenshot: {shot} (copied to {ARTIFACT})")


def _cells_of(page: PageElements, channel: str) -> list[dict]:
    row = page.one("data-channel", channel)
    start = page.elements.index(row)
    cells = []
    for element in page.elements[start + 1:]:
        if element["tag"] == "tr":
            break
        cells.append(element)
    return cells


def test_the_period_in_the_fragment_is_asked_of_the_api(cloud, token, browser):
    # WHEN the dashboard is opened for two days
    page = PageElements(browser.dump_dom(f"{cloud.api_url}/dashboard#token={token}&from=2026-11-29&to=2026-11-30"))
    # THEN /kpis was asked for them (the fixture function answers with the period it was asked for)
    assert page.one("id", "period-shown")["attrs"]["data-period"] == "2026-11-29/2026-11-30"
    assert page.one("id", "chart-orders")["attrs"]["data-rendered"] == "true"


@pytest.mark.parametrize("fragment, state, says", [
    ("", "no-token", "No token"),
    ("#token=not-a-token", "unauthorized", "The API refused the token (401"),
    ("#token={token}&from=2026-12-02&to=2026-12-01", "error", "The KPI request was refused (400: from is after to)"),
    ("#token={token}&from=1999-01-01&to=2026-12-01", "error", "The KPI API failed (502: Internal server error)"),
])
def test_the_page_says_why_it_has_no_kpis(cloud, token, browser, fragment, state, says):
    # WHEN the dashboard is opened without a token, with one the API refuses, or the API answers an error
    page = PageElements(browser.dump_dom(f"{cloud.api_url}/dashboard{fragment.format(token=token)}"))
    # THEN the page says so, in the message box
    message = page.one("id", "message")
    assert message["attrs"].get("hidden") is None
    assert message["attrs"]["data-state"] == state
    assert says in " ".join(message["text"].split())
    # AND shows no KPI value
    assert not page.all("data-kpi")
