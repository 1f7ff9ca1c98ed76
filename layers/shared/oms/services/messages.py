"""Wire models of the messages the services exchange through SQS."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from oms.domain.polling import PollWindow


class WindowFailure(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    reason: str


class FailedWindowMessage(BaseModel):
    """A poll window that failed: body of a RetryQueue (and, at the end, RetryDeadLetterQueue) message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str = Field(min_length=1)
    shop_id: str = Field(min_length=1)
    window_start: datetime
    window_end: datetime
    failed_attempts: int = Field(ge=1)
    failures: list[WindowFailure] = Field(min_length=1)

    @field_validator("window_start", "window_end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("window bounds must carry a time zone")
        return value

    @property
    def window(self) -> PollWindow:
        return PollWindow(start=self.window_start, end=self.window_end)

    @property
    def last_reason(self) -> str:
        return self.failures[-1].reason

    def after_failure(self, at: datetime, reason: str) -> "FailedWindowMessage":
        return self.model_copy(
            update={
                "failed_attempts": self.failed_attempts + 1,
                "failures": [*self.failures, WindowFailure(at=at, reason=reason)],
            }
        )


class ReviewMessage(BaseModel):
    """One order the engines could not decide: body of a ReviewQueue message.

    `reason` is a machine-readable code (`unmapped_sku`, `insufficient_stock`, `wms_unconfirmed`, ...),
    `detail` says it for a person, `facts` carries what the decision saw (scores, short SKUs).
    `settled`: the engine says the cause is gone (a later valid version of a quarantined order was
    stored), so the item is closed without a person, if nothing newer reopened it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_key: str = Field(min_length=1)
    source: str = Field(min_length=1)  # the engine that sent it: allocation, risk, verification, quarantine
    reason: str = Field(min_length=1)
    detail: str
    at: datetime
    facts: dict = Field(default_factory=dict)
    settled: bool = False
