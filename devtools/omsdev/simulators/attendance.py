"""HR attendance simulator: who is on shift in each warehouse on a business day.

API (our design; conventions in `omsdev.simulators.sources_common`: `X-Api-Key`, error envelopes,
token bucket of 5 requests/s with a burst of 10 per key, FaultPlan faults):

`GET /v1/attendance?date=YYYY-MM-DD`
    -> `{"date", "warehouses": [{"warehouse_id", "staff_on_shift", "orders_per_staff_day"}], "as_of"}`,
    sorted by warehouse: staff clocked in for that (China, UTC+8) business day and how many orders one
    of them ships in a day. A day without a roster lists no warehouses. `date` missing or not a
    calendar date is 400 `invalid_request`.

A test sets a warehouse's standing roster (`set_attendance(..., day=None)`, used for every date) or
the roster of one date, which takes precedence.
"""

from __future__ import annotations

from datetime import date

from omsdev.simulators.base import FaultPlan, Reply, Request
from omsdev.simulators.sources_common import ApiError, Route, SourceSimulator, WallClock, iso


class AttendanceSimulator(SourceSimulator):
    SOURCE = "attendance"
    RATE, BURST = 5.0, 10

    def __init__(self, api_key: str | None = None, **kwargs):
        super().__init__(api_key, **kwargs)
        self._rosters: dict[date | None, dict[str, tuple[int, int]]] = {}

    def set_attendance(self, warehouse_id: str, staff_on_shift: int, orders_per_staff_day: int,
                       *, day: date | None = None) -> None:
        if staff_on_shift < 0 or orders_per_staff_day < 0:
            raise ValueError("staff and orders per staff day cannot be negative")
        with self.lock:
            self._rosters.setdefault(day, {})[warehouse_id] = (int(staff_on_shift), int(orders_per_staff_day))

    def clear(self) -> None:
        with self.lock:
            self._rosters.clear()

    def routes(self) -> list[Route]:
        return [Route("GET", "/v1/attendance", self._attendance)]

    def _attendance(self, request: Request) -> Reply:
        text = request.param("date")
        if not text:
            raise ApiError(400, "invalid_request", "date is required (YYYY-MM-DD)")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ApiError(400, "invalid_request", f"date must be YYYY-MM-DD, got {text!r}") from None
        if len(text) != 10:
            raise ApiError(400, "invalid_request", f"date must be YYYY-MM-DD, got {text!r}")
        with self.lock:
            roster = {**self._rosters.get(None, {}), **self._rosters.get(day, {})}
        warehouses = [{"warehouse_id": warehouse_id, "staff_on_shift": staff, "orders_per_staff_day": rate}
                      for warehouse_id, (staff, rate) in sorted(roster.items())]
        return Reply(200, {"date": day.isoformat(), "warehouses": warehouses, "as_of": iso(self.now())})


def launch(rosters: dict[str, tuple[int, int]] | None = None, *, faults: FaultPlan | None = None,
           rate_multiplier: float = 1.0, clock: WallClock | None = None):
    """A started attendance API (standing rosters: warehouse -> (staff, orders per staff day)) and its secret."""
    simulator = AttendanceSimulator(faults=faults, rate_multiplier=rate_multiplier, clock=clock)
    for warehouse_id, (staff, rate) in (rosters or {}).items():
        simulator.set_attendance(warehouse_id, staff, rate)
    simulator.start()
    return simulator, simulator.credentials()
