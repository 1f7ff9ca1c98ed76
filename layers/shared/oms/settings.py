"""Runtime configuration: one validated model, read from the environment at first use and cached.

Every variable here is declared in `infra/template.yaml` (Globals); a contract test keeps the two
in step. A missing required value fails loudly on first use instead of hiding behind a default.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class SettingsError(RuntimeError):
    """The environment does not hold a valid configuration."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    orders_table: str = Field(alias="ORDERS_TABLE", min_length=1)
    shop_cursors_table: str = Field(alias="SHOP_CURSORS_TABLE", min_length=1)
    quarantine_table: str = Field(alias="QUARANTINE_TABLE", min_length=1)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    raw_payload_bucket: str = Field(alias="RAW_PAYLOAD_BUCKET", min_length=1)
    retry_queue_url: str = Field(alias="RETRY_QUEUE_URL", min_length=1)
    retry_dlq_url: str = Field(alias="RETRY_DLQ_URL", min_length=1)
    retry_backoff_seconds: tuple[int, ...] = Field(alias="RETRY_BACKOFF_SECONDS")
    poll_overlap_seconds: int = Field(alias="POLL_OVERLAP_SECONDS", ge=0)
    initial_lookback_seconds: int = Field(alias="INITIAL_LOOKBACK_SECONDS", ge=60)
    channel_http_timeout_seconds: float = Field(alias="CHANNEL_HTTP_TIMEOUT_SECONDS", gt=0)
    secrets_prefix: str = Field(alias="SECRETS_PREFIX", min_length=1)
    reconciliation_table: str = Field(alias="RECONCILIATION_TABLE", min_length=1)
    reconcile_lookback_seconds: int = Field(alias="RECONCILE_LOOKBACK_SECONDS", ge=300)
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=1)
    reservations_table: str = Field(alias="RESERVATIONS_TABLE", min_length=1)
    sku_map_table: str = Field(alias="SKU_MAP_TABLE", min_length=1)
    warehouses_table: str = Field(alias="WAREHOUSES_TABLE", min_length=1)
    allocation_facts_table: str = Field(alias="ALLOCATION_FACTS_TABLE", min_length=1)
    allocation_rules_parameter: str = Field(alias="ALLOCATION_RULES_PARAMETER", min_length=1)
    review_queue_url: str = Field(alias="REVIEW_QUEUE_URL", min_length=1)
    review_items_table: str = Field(alias="REVIEW_ITEMS_TABLE", min_length=1)
    audit_log_table: str = Field(alias="AUDIT_LOG_TABLE", min_length=1)
    review_claim_minutes: int = Field(alias="REVIEW_CLAIM_MINUTES", ge=1, le=240)
    # Browser origins allowed to call the reviewer API (comma-separated).
    reviewer_allowed_origins: str = Field(alias="REVIEWER_ALLOWED_ORIGINS", min_length=1)
    wms_confirm_timeout_seconds: float = Field(alias="WMS_CONFIRM_TIMEOUT_SECONDS", gt=0)
    source_max_age_seconds: int = Field(alias="SOURCE_MAX_AGE_SECONDS", ge=60)
    risk_aggregates_table: str = Field(alias="RISK_AGGREGATES_TABLE", min_length=1)
    risk_rules_parameter: str = Field(alias="RISK_RULES_PARAMETER", min_length=1)
    verifications_table: str = Field(alias="VERIFICATIONS_TABLE", min_length=1)
    verification_key_secret: str = Field(alias="VERIFICATION_KEY_SECRET", min_length=1)
    verification_code_minutes: int = Field(alias="VERIFICATION_CODE_MINUTES", ge=1, le=1440)
    verification_max_attempts: int = Field(alias="VERIFICATION_MAX_ATTEMPTS", ge=1, le=10)
    # Where buyers type their code (the link in the SMS); empty: the SMS carries the code only.
    verification_confirm_url: str = Field(default="", alias="VERIFICATION_CONFIRM_URL")
    # The allocation data sources' APIs; empty where a deployment has none (that source then stays stale).
    wms_api_url: str = Field(default="", alias="WMS_API_URL")
    carrier_api_url: str = Field(default="", alias="CARRIER_API_URL")
    attendance_api_url: str = Field(default="", alias="ATTENDANCE_API_URL")
    quality_api_url: str = Field(default="", alias="QUALITY_API_URL")
    kpi_table: str = Field(alias="KPI_TABLE", min_length=1)
    # A first shipment this many hours after payment or sooner is on time.
    ship_by_hours: int = Field(alias="SHIP_BY_HOURS", ge=1, le=720)
    # Empty in AWS; points boto3 at LocalStack or the local cloud's moto server elsewhere.
    aws_endpoint_url: str | None = Field(default=None, alias="OMS_AWS_ENDPOINT_URL")

    @field_validator("retry_backoff_seconds", mode="before")
    @classmethod
    def _parse_backoff(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not parts or not all(p.isdigit() for p in parts):
                raise ValueError("must be comma-separated whole seconds, e.g. 30,90,270")
            value = tuple(int(p) for p in parts)
        if any(delay > 900 for delay in value):  # SQS DelaySeconds maximum
            raise ValueError("an SQS delay cannot exceed 900 seconds")
        return value

    @field_validator("aws_endpoint_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return value or None


def environment_names() -> set[str]:
    """The environment variables the code reads (used by the template contract test)."""
    return {field.alias for field in Settings.model_fields.values() if field.alias}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    values = {name: os.environ[name] for name in environment_names() if name in os.environ}
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
        raise SettingsError(f"invalid configuration: {problems}") from error
