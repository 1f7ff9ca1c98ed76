"""Risk rules from an SSM parameter (JSON, `oms.domain.risk.RiskRuleSet`), changeable without a deploy.

Read through Powertools Parameters with a one-minute cache. A bad document never stops the risk
engine: the shipped defaults (the seed's two rules) are used, and the problem is logged with what
is wrong and counted (`RiskRulesInvalid`), so an operator sees it within the minute. Check a rule
set before publishing it with `oms risk backtest --rules FILE` (it fails with the same message).
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from oms.adapters import aws
from oms.domain.risk import DEFAULT_RULES, RiskRuleSet, parse_rule_set
from oms.observability import logger, metrics

CACHE_SECONDS = 60


class RiskRulesParameter:
    def __init__(self, parameter_name: str, defaults: RiskRuleSet = DEFAULT_RULES):
        self._name = parameter_name
        self._defaults = defaults
        self._provider = parameters.SSMProvider(boto3_client=aws.client("ssm"))

    def __call__(self) -> RiskRuleSet:
        text = self._provider.get(self._name, max_age=CACHE_SECONDS)
        try:
            return parse_rule_set(text)
        except ValueError as error:
            logger.error("risk rules parameter rejected; using the shipped defaults",
                         extra={"parameter": self._name, "problem": str(error)})
            metrics.add_metric(name="RiskRulesInvalid", unit="Count", value=1)
            return self._defaults
