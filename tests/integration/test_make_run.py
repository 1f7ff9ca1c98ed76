"""Issue 7's acceptance as `make run` does it: `oms local up --scenario demo` (the same command, a shorter
run, free ports, `--linger` so the page can be read after the summary) exercises every KPI; the dashboard
in headless Chromium shows them, each as GET /kpis says, and the console's KPI lines say the same."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from omsdev.kpi_summary import kpi_text

from tests.chromium import chromium_or_fail
from tests.integration.test_dashboard_run import assert_page_shows, load_page

pytestmark = pytest.mark.long_running  # minutes: scheduled first (tests/conftest.py)

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "make-run-dashboard.png"
OMS = Path(sys.executable).parent / "oms"
SIX = ("ingestion_latency_p95_seconds", "auto_allocation_rate", "first_shipment_on_time_rate",
       "exception_order_ratio", "orders_per_staff_day", "availability")


class Console:
    """The command's output, line by line as it comes, read on a thread."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._reader.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if line.startswith(prefix)), None)
            if found is not None:
                return found
            time.sleep(0.5)
        raise AssertionError(f"no line starting {prefix!r} within {timeout:.0f} s; the output:\n" + "\n".join(self.lines))

    def done(self, timeout: float) -> None:
        self._reader.join(timeout)


@pytest.fixture
def demo():
    """`oms local up --scenario demo` in its own process, on free ports, with an environment of its own."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("OMS_", "AWS_ENDPOINT_URL"))}
    process = subprocess.Popen(
        [str(OMS), "local", "up", "--scenario", "demo", "--duration", "60", "--port", "0", "--api-port", "0",
         "--linger", "180", "--stack-name", f"t{uuid.uuid4().hex[:8]}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    console = Console(process)
    try:
        yield process, console
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_make_run_exercises_every_kpi_and_its_dashboard_shows_what_get_kpis_and_the_console_say(demo, tmp_path):
    process, console = demo
    browser = chromium_or_fail()
    # GIVEN the demo ran for a minute, settled, and printed its summary
    url = console.wait_for("KPI dashboard", timeout=120).split(": ", 1)[1]
    console.wait_for("the API and the KPI dashboard stay up", timeout=420)
    api_url, token = url.split("/dashboard#token=")
    # (yesterday too: a run that straddles midnight UTC counts in two days)
    today = datetime.now(UTC).date()
    days = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    url += f"&from={days['from']}&to={days['to']}"
    # WHEN GET /kpis is asked, and the page is loaded in headless Chromium
    response = requests.get(f"{api_url}/kpis", params=days, headers={"Authorization": token}, timeout=30)
    assert response.status_code == 200, response.text
    report = response.json()
    page = load_page(browser, url, ARTIFACT, tmp_path)
    # THEN the run exercised all six KPIs: each has data and a value above zero
    kpis = {kpi["name"]: kpi for kpi in report["overall"]["kpis"]}
    assert set(kpis) == set(SIX)
    for name in SIX:
        assert kpis[name]["status"] != "no_data" and kpis[name]["value"] > 0, (name, report["overall"]["counts"])
    # AND the page shows exactly what GET /kpis says, its charts drawn
    assert_page_shows(page, kpis)
    # AND so did the console's summary, which also counted shipments and every channel stored exactly once
    for name, kpi in kpis.items():
        line = console.wait_for(f"kpi {name}:", timeout=1)
        assert line.startswith(f"kpi {name}: {kpi_text(kpi)} (target ") and line.endswith(f": {kpi['status']})")
    shipped = re.match(r"kpis: (\d+) orders stored, (\d+) shipped", console.wait_for("kpis:", timeout=1))
    assert shipped and int(shipped[2]) > 0 and int(shipped[1]) >= 300  # 8 shops x 40 backlog, a few malformed
    reconciled = [line for line in console.lines if "generated orders stored exactly once" in line]
    assert len(reconciled) == 8 and all(", 0 duplicates," in line for line in reconciled), reconciled
    # AND Ctrl-C ends the linger and stops the local cloud cleanly
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    console.done(10)
    assert console.lines[-1] == "local cloud stopped cleanly"
