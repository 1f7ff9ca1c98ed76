"""Allocation weights and rules from an SSM parameter (JSON), changeable without a deploy.

Read through Powertools Parameters with a one-minute cache. The document is validated by a pydantic
model; a bad one never stops allocation: the shipped defaults are used and the problem is logged
and counted (`AllocationRulesInvalid`), so an operator sees it within the minute.
"""

from __future__ import annotations

from datetime import timedelta

from aws_lambda_powertools.utilities import parameters
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from oms.adapters import aws
from oms.domain.allocation import AllocationRules, AllocationWeights
from oms.observability import logger, metrics

CACHE_SECONDS = 60


class WeightsDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stock: float = Field(ge=0, le=1)
    delivery: float = Field(ge=0, le=1)
    labour: float = Field(ge=0, le=1)
    error: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> WeightsDocument:
        total = self.stock + self.delivery + self.labour + self.error
        if abs(total - 1) > 1e-6:
            raise ValueError(f"weights must add up to 1, these add up to {total:g}")
        return self


class AllocationRulesDocument(BaseModel):
    """The parameter's JSON: every field optional except that what is given must be valid."""

    model_config = ConfigDict(extra="forbid")

    weights: WeightsDocument | None = None
    max_source_age_seconds: int | None = Field(default=None, ge=60)
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    error_rate_ceiling: float | None = Field(default=None, gt=0, le=1)
    max_split_warehouses: int | None = Field(default=None, ge=1, le=8)

    def rules(self, defaults: AllocationRules) -> AllocationRules:
        return AllocationRules(
            weights=defaults.weights if self.weights is None else AllocationWeights(**self.weights.model_dump()),
            max_source_age=defaults.max_source_age if self.max_source_age_seconds is None
            else timedelta(seconds=self.max_source_age_seconds),
            min_confidence=defaults.min_confidence if self.min_confidence is None else self.min_confidence,
            error_rate_ceiling=defaults.error_rate_ceiling if self.error_rate_ceiling is None else self.error_rate_ceiling,
            max_split_warehouses=defaults.max_split_warehouses if self.max_split_warehouses is None
            else self.max_split_warehouses,
        )


def parse_rules(text: str, defaults: AllocationRules) -> AllocationRules:
    """The rules a parameter value stands for; raises ValueError with what is wrong."""
    try:
        return AllocationRulesDocument.model_validate_json(text).rules(defaults)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"allocation rules are invalid: {problems}") from None


class AllocationRulesParameter:
    def __init__(self, parameter_name: str, defaults: AllocationRules):
        self._name = parameter_name
        self._defaults = defaults
        self._provider = parameters.SSMProvider(boto3_client=aws.client("ssm"))

    def __call__(self) -> AllocationRules:
        text = self._provider.get(self._name, max_age=CACHE_SECONDS)
        try:
            return parse_rules(text, self._defaults)
        except ValueError as error:
            logger.error("allocation rules parameter rejected; using the defaults",
                         extra={"parameter": self._name, "problem": str(error)})
            metrics.add_metric(name="AllocationRulesInvalid", unit="Count", value=1)
            return self._defaults
