"""Quality-report simulator: shipments and shipping errors per warehouse over recent days.

API (our design; conventions in `omsdev.simulators.sources_common`: `X-Api-Key`, error envelopes,
token bucket of 2 requests/s with a burst of 5 per key, FaultPlan faults):

`GET /v1/quality-reports?days=30`
    days 1..365 (default 30) -> `{"days", "reports": [{"warehouse_id", "shipments", "errors"}], "as_of"}`,
    sorted by warehouse: shipments sent in the last `days` days and those with an error (wrong item,
    wrong quantity, damaged, mislabelled). `errors` never exceeds `shipments`. This simulator holds one
    report per warehouse and serves it for any window.
"""

from __future__ import annotations

from omsdev.simulators.base import FaultPlan, Reply, Request
from omsdev.simulators.sources_common import Route, SourceSimulator, WallClock, int_param, iso

MAX_DAYS, DEFAULT_DAYS = 365, 30


class QualitySimulator(SourceSimulator):
    SOURCE = "quality"
    RATE, BURST = 2.0, 5

    def __init__(self, api_key: str | None = None, **kwargs):
        super().__init__(api_key, **kwargs)
        self._reports: dict[str, tuple[int, int]] = {}

    def set_report(self, warehouse_id: str, shipments: int, errors: int) -> None:
        if shipments < 0 or errors < 0 or errors > shipments:
            raise ValueError("need 0 <= errors <= shipments")
        with self.lock:
            self._reports[warehouse_id] = (int(shipments), int(errors))

    def remove_report(self, warehouse_id: str) -> None:
        with self.lock:
            self._reports.pop(warehouse_id, None)

    def routes(self) -> list[Route]:
        return [Route("GET", "/v1/quality-reports", self._reports_endpoint)]

    def _reports_endpoint(self, request: Request) -> Reply:
        days = int_param(request, "days", DEFAULT_DAYS, 1, MAX_DAYS)
        with self.lock:
            reports = [{"warehouse_id": warehouse_id, "shipments": shipments, "errors": errors}
                       for warehouse_id, (shipments, errors) in sorted(self._reports.items())]
        return Reply(200, {"days": days, "reports": reports, "as_of": iso(self.now())})


def launch(reports: dict[str, tuple[int, int]] | None = None, *, faults: FaultPlan | None = None,
           rate_multiplier: float = 1.0, clock: WallClock | None = None):
    """A started quality API (warehouse -> (shipments, errors)) and the secret `oms/sources/quality` holds."""
    simulator = QualitySimulator(faults=faults, rate_multiplier=rate_multiplier, clock=clock)
    for warehouse_id, (shipments, errors) in (reports or {}).items():
        simulator.set_report(warehouse_id, shipments, errors)
    simulator.start()
    return simulator, simulator.credentials()
