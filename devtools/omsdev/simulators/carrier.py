"""Carrier simulator: transit times from a warehouse (the origin) to the regions it ships to.

API (our design; conventions in `omsdev.simulators.sources_common`: `X-Api-Key`, error envelopes,
token bucket of 5 requests/s with a burst of 10 per key, FaultPlan faults):

`GET /v1/transit-times?origin={warehouse_id}`
    -> `{"origin", "routes": [{"region", "hours"}], "as_of"}`: the carrier's average door-to-door
    hours from that origin, routes sorted by region. A region key is `"CN"` (the whole country: the
    fallback for provinces without their own route) or `"CN/浙江"`: country code, a slash and the
    province as written without its suffix (浙江, not 浙江省; 北京, not 北京市; 内蒙古, not 内蒙古自治区).
    `origin` missing is 400 `invalid_request`; an origin the carrier has no routes from is 404
    `origin_not_found`.
"""

from __future__ import annotations

import re

from omsdev.simulators.base import FaultPlan, Reply, Request
from omsdev.simulators.sources_common import ApiError, Route, SourceSimulator, WallClock, iso

PROVINCE_SUFFIXES = ("省", "市", "自治区", "特别行政区")
_REGION = re.compile(r"^[A-Z]{2}(/[^/\s]+)?$")


def check_region(region: str) -> str:
    """A region key as the API writes it; raises ValueError for anything else."""
    if not _REGION.match(region):
        raise ValueError(f"region {region!r} must be 'CC' or 'CC/province'")
    if "/" in region and region.split("/", 1)[1].endswith(PROVINCE_SUFFIXES):
        raise ValueError(f"region {region!r}: write the province without its suffix (浙江, not 浙江省)")
    return region


class CarrierSimulator(SourceSimulator):
    SOURCE = "carrier"
    RATE, BURST = 5.0, 10

    def __init__(self, api_key: str | None = None, **kwargs):
        super().__init__(api_key, **kwargs)
        self._routes_by_origin: dict[str, dict[str, float]] = {}

    # Test controls ------------------------------------------------------------------------------

    def set_route(self, origin: str, region: str, hours: float) -> None:
        if hours <= 0:
            raise ValueError("transit hours must be positive")
        with self.lock:
            self._routes_by_origin.setdefault(origin, {})[check_region(region)] = float(hours)

    def set_routes(self, origin: str, routes: dict[str, float]) -> None:
        """Replace every route from the origin."""
        for region, hours in routes.items():
            check_region(region)
            if hours <= 0:
                raise ValueError("transit hours must be positive")
        with self.lock:
            self._routes_by_origin[origin] = {region: float(hours) for region, hours in routes.items()}

    def remove_origin(self, origin: str) -> None:
        with self.lock:
            self._routes_by_origin.pop(origin, None)

    # API -----------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route("GET", "/v1/transit-times", self._transit_times)]

    def _transit_times(self, request: Request) -> Reply:
        origin = request.param("origin")
        if not origin:
            raise ApiError(400, "invalid_request", "origin is required")
        with self.lock:
            routes = self._routes_by_origin.get(origin)
            if routes is None:
                raise ApiError(404, "origin_not_found", f"no routes from origin {origin!r}")
            body = [{"region": region, "hours": hours} for region, hours in sorted(routes.items())]
        return Reply(200, {"origin": origin, "routes": body, "as_of": iso(self.now())})


def launch(routes: dict[str, dict[str, float]] | None = None, *, faults: FaultPlan | None = None,
           rate_multiplier: float = 1.0, clock: WallClock | None = None):
    """A started carrier API (routes: origin -> {region: hours}) and the secret `oms/sources/carrier` holds."""
    simulator = CarrierSimulator(faults=faults, rate_multiplier=rate_multiplier, clock=clock)
    for origin, by_region in (routes or {}).items():
        simulator.set_routes(origin, by_region)
    simulator.start()
    return simulator, simulator.credentials()
