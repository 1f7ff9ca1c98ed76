"""Issue 7's acceptance, end to end: after a short run of the local cloud as `make run` wires it (channel
simulators, pollers, allocation with its WMS and feeds, risk, review intake, the KpiFunction), the
dashboard page in headless Chromium shows non-zero values for every KPI the run exercised, and they are
what GET /kpis says."""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from omsdev import allocation_demo
from omsdev.demo import start_shop
from omsdev.localcloud.cloud import LocalCloud
from omsdev.localcloud.local_auth import issue_token
from omsdev.simulators.scenario import Scenario, ScenarioRunner

from tests.chromium import chromium_or_fail
from tests.component.test_dashboard_page import PageElements
from tests.integration.conftest import FAST_RETRIES

pytestmark = pytest.mark.long_running  # minutes: scheduled first (tests/conftest.py)

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard-run.png"
RATES = ("auto_allocation_rate", "first_shipment_on_time_rate", "exception_order_ratio", "availability")


def shown(name: str, value) -> str:
    """The page's way of writing a KPI (dashboard.js formatKpi), to compare with the API's numbers."""
    if value is None:
        return "—"
    if name in RATES:
        return f"{value * 100:.2f}%"
    if name.endswith("_seconds"):
        return f"{value:g} s" if value < 120 else f"{value / 60:g} min"
    return str(value) if float(value).is_integer() else f"{value:.2f}"


def load_page(browser, url: str, artifact: Path, tmp_path: Path) -> PageElements:
    """The dashboard's DOM after its scripts ran, with a screenshot kept at `artifact`."""
    page = PageElements(browser.dump_dom(url, budget_ms=8000))
    shot = browser.screenshot(url, tmp_path / artifact.name, budget_ms=8000)
    artifact.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, artifact)
    print(f"dashboard: {artifact}")
    return page


def assert_page_shows(page: PageElements, kpis: dict[str, dict]) -> None:
    """The page is ready, each KPI tile says what GET /kpis says, and every chart was drawn."""
    assert page.body()["attrs"]["data-state"] == "ready"
    tiles = {element["attrs"]["data-kpi"]: (element["text"], element["attrs"]["data-status"])
             for element in page.all("data-kpi")}
    assert tiles == {name: (shown(name, kpi["value"]), kpi["status"]) for name, kpi in kpis.items()}
    assert all(canvas["attrs"].get("data-rendered") == "true" for canvas in page.all("data-chart"))


@pytest.fixture
def run():
    """A local cloud with two shops' simulators, the warehouses' APIs and the demo catalogue, wired."""
    cloud = LocalCloud(port=0, stack_name=f"t{uuid.uuid4().hex[:8]}", start_event_sources=False, api_port=0,
                       parameter_overrides={**FAST_RETRIES, "InitialLookbackSeconds": "5400"})
    cloud.start()
    sources = allocation_demo.start_sources()
    shops = [start_shop("taobao", f"kpi-tb-{uuid.uuid4().hex[:6]}", seed=11),
             start_shop("jd", f"kpi-jd-{uuid.uuid4().hex[:6]}", seed=12)]
    try:
        allocation_demo.load_master_data()
        allocation_demo.refresh_feeds(cloud)
        yield cloud, shops
    finally:
        cloud.stop()
        for started in [*sources, *(shop.simulator for shop in shops)]:
            started.stop()


def test_after_a_run_the_dashboard_shows_every_exercised_kpi_as_get_kpis_does(run, tmp_path):
    cloud, shops = run
    browser = chromium_or_fail()
    # GIVEN a busy shop day on two channels for ~20 s: backlog, live orders, a malformed one now and then
    runner = ScenarioRunner([shop.generator for shop in shops],
                            Scenario(orders_per_day=3000 * 40, malformed_share=0.03, backdate=timedelta(minutes=3)))
    runner.seed_backlog(40)
    cloud.start_wiring()
    runner.start(duration=20)
    token = issue_token(cloud, "reviewer")

    def report() -> dict:
        response = requests.get(f"{cloud.api_url}/kpis", headers={"Authorization": token}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    # WHEN the run has stored, allocated and screened its orders (and the WMS shipped some)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        counts = report()["overall"]["counts"]
        if counts["orders_stored"] >= 40 and counts["allocation_needed"] >= 20 and counts["orders_shipped"] >= 1:
            break
        if counts["allocation_needed"] >= 20:  # the WMS ships after a short while; the feed reads it
            cloud.invoke("FeedFunction", {"source": "shipments"}, bypass_concurrency=True)
        time.sleep(3)
    runner.stop()
    cloud.stop_wiring()
    api = report()
    url = f"{cloud.api_url}/dashboard#token={token}"
    page = load_page(browser, url, ARTIFACT, tmp_path)

    # THEN every KPI the run exercised has data and a value above zero
    kpis = {kpi["name"]: kpi for kpi in api["overall"]["kpis"]}
    for name in ("ingestion_latency_p95_seconds", "auto_allocation_rate", "exception_order_ratio",
                 "first_shipment_on_time_rate", "orders_per_staff_day", "availability"):
        assert kpis[name]["status"] != "no_data" and kpis[name]["value"] > 0, (name, api["overall"]["counts"])
    # AND the page shows exactly what GET /kpis says, tile by tile, its charts drawn from the run's orders
    assert_page_shows(page, kpis)
    assert {"taobao", "jd"} <= set(api["channels"])
