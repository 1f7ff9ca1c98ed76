"""Scheduled sweep: open SMS verifications past their expiry -> expired, their orders to review."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.observability import logger, metrics
from oms.services.risk_dependencies import verification_ports
from oms.services.verify import expire_verifications
from oms.settings import get_settings

# One page per call of the sparse index; a backlog bigger than this many pages waits for the next run.
MAX_PAGES = 20


@lru_cache(maxsize=1)
def _ports():
    return verification_ports(get_settings())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    expired: list[str] = []
    for _ in range(MAX_PAGES):
        page = expire_verifications(_ports())
        expired.extend(page)
        if not page:
            break
    metrics.add_metric(name="VerificationsExpired", unit="Count", value=len(expired))
    logger.info("verification expiry sweep done", extra={"expired": len(expired)})
    return {"expired": expired}
