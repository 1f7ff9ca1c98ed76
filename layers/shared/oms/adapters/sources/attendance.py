"""Attendance client: staff on shift per warehouse for a business day (`GET /v1/attendance?date=`).

The API is documented with its simulator (`omsdev.simulators.attendance`).
"""

from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from oms.adapters.sources import SourceError, SourceHttp, source_http, validation_problem
from oms.services.feeds import Attendance, StaffLoad


class WarehouseAttendanceItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    warehouse_id: str = Field(min_length=1)
    staff_on_shift: int = Field(ge=0, strict=True)
    orders_per_staff_day: int = Field(ge=0, strict=True)


class AttendanceResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    date: dt.date
    warehouses: list[WarehouseAttendanceItem]
    as_of: AwareDatetime


class AttendanceClient:
    def __init__(self, http: SourceHttp):
        self.http = http

    def attendance(self, day: dt.date) -> Attendance:
        _, body = self.http.call("GET", "/v1/attendance", params={"date": day.isoformat()})
        try:
            answer = AttendanceResponse.model_validate(body)
        except ValidationError as error:
            raise SourceError(f"attendance of {day}: unexpected answer, {validation_problem(error)}") from error
        ids = [item.warehouse_id for item in answer.warehouses]
        if len(set(ids)) != len(ids):
            raise SourceError(f"attendance of {day} lists a warehouse twice")
        loads = tuple(StaffLoad(item.warehouse_id, item.staff_on_shift, item.orders_per_staff_day)
                      for item in answer.warehouses)
        return Attendance(answer.date, loads, answer.as_of)


def attendance_client(settings, *, deadline: float | None = None) -> AttendanceClient | None:
    """This deployment's attendance client (secret `<prefix>/sources/attendance`, settings URL) or None."""
    http = source_http(settings, "attendance", deadline=deadline)
    return None if http is None else AttendanceClient(http)
