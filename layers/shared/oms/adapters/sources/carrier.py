"""Carrier client: transit hours from a warehouse to each region (`GET /v1/transit-times?origin=`).

The API is documented with its simulator (`omsdev.simulators.carrier`). Region keys are "CN" or
"CN/浙江" (province without its 省/市/自治区 suffix); anything else is a bad answer.
"""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from oms.adapters.sources import SourceError, SourceHttp, source_http, validation_problem
from oms.services.feeds import TransitRoute, TransitTimes

REGION_PATTERN = r"^[A-Z]{2}(/[^/\s]+)?$"
_SUFFIXED = re.compile(r"/.*(省|市|自治区|特别行政区)$")


class TransitRouteItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    region: str = Field(pattern=REGION_PATTERN)
    hours: Decimal = Field(gt=0, allow_inf_nan=False)


class TransitTimesResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    origin: str
    routes: list[TransitRouteItem]
    as_of: AwareDatetime


class CarrierClient:
    def __init__(self, http: SourceHttp):
        self.http = http

    def transit_times(self, origin: str) -> TransitTimes:
        _, body = self.http.call("GET", "/v1/transit-times", params={"origin": origin})
        try:
            answer = TransitTimesResponse.model_validate(body)
        except ValidationError as error:
            problem = validation_problem(error)
            raise SourceError(f"carrier transit times from {origin}: unexpected answer, {problem}") from error
        if answer.origin != origin:
            raise SourceError(f"carrier answered for origin {answer.origin!r}, asked about {origin!r}")
        suffixed = [route.region for route in answer.routes if _SUFFIXED.search(route.region)]
        if suffixed:
            raise SourceError(f"carrier region keys must name provinces without suffix, got {suffixed[:3]}")
        routes = tuple(TransitRoute(route.region, route.hours) for route in answer.routes)
        return TransitTimes(origin, routes, answer.as_of)


def carrier_client(settings, *, deadline: float | None = None) -> CarrierClient | None:
    """This deployment's carrier client (secret `<prefix>/sources/carrier`, settings URL); None if not configured."""
    http = source_http(settings, "carrier", deadline=deadline)
    return None if http is None else CarrierClient(http)
