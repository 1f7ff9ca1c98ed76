"""Quality client: shipments and shipping errors per warehouse (`GET /v1/quality-reports?days=`).

The API is documented with its simulator (`omsdev.simulators.quality`).
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from oms.adapters.sources import SourceError, SourceHttp, source_http, validation_problem
from oms.services.feeds import QUALITY_WINDOW_DAYS, QualityReport, QualityReports


class QualityReportItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    warehouse_id: str = Field(min_length=1)
    shipments: int = Field(ge=0, strict=True)
    errors: int = Field(ge=0, strict=True)

    @model_validator(mode="after")
    def _errors_within_shipments(self) -> QualityReportItem:
        if self.errors > self.shipments:
            raise ValueError(f"{self.errors} errors in {self.shipments} shipments")
        return self


class QualityReportsResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reports: list[QualityReportItem]
    as_of: AwareDatetime


class QualityClient:
    def __init__(self, http: SourceHttp):
        self.http = http

    def quality_reports(self, days: int = QUALITY_WINDOW_DAYS) -> QualityReports:
        _, body = self.http.call("GET", "/v1/quality-reports", params={"days": days})
        try:
            answer = QualityReportsResponse.model_validate(body)
        except ValidationError as error:
            raise SourceError(f"quality reports: unexpected answer, {validation_problem(error)}") from error
        ids = [report.warehouse_id for report in answer.reports]
        if len(set(ids)) != len(ids):
            raise SourceError("quality reports list a warehouse twice")
        return QualityReports(tuple(QualityReport(r.warehouse_id, r.shipments, r.errors) for r in answer.reports),
                              answer.as_of)


def quality_client(settings, *, deadline: float | None = None) -> QualityClient | None:
    """This deployment's quality client (secret `<prefix>/sources/quality`, settings URL); None if not configured."""
    http = source_http(settings, "quality", deadline=deadline)
    return None if http is None else QualityClient(http)
