"""Risk consumer of the Orders stream (FilterCriteria: newly paid orders, refunds, and orders that
became both allocated and risk-cleared).

A paid order is assessed (counted into its buyer's and address's aggregates, evaluated against the
rules, held or cleared, an SMS code sent where the rules ask for one); a refund counts as the buyer's
return; an allocated and cleared order becomes `ready_to_ship`. Records are handled in stream order;
a failed one is reported (ReportBatchItemFailures) and retried from there; every step is idempotent.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.observability import logger
from oms.services.assess_risk import assess_order, count_return, promote_ready, stream_actions
from oms.services.risk_dependencies import order_to_assess, risk_ports
from oms.settings import get_settings
from oms.stream_batch import process_stream_batch

_building = threading.Lock()


@lru_cache(maxsize=1)
def _ports():
    with _building:  # concurrent local invocations build one set
        return risk_ports(get_settings())


def record_handler(record: DynamoDBRecord) -> list[dict]:
    new_image = record.dynamodb.new_image or {}
    old_image = record.dynamodb.old_image or {}
    order_key = new_image.get("order_key") or old_image.get("order_key")
    actions = stream_actions(record.event_name.name if record.event_name else "", old_image, new_image)
    outcomes = []
    try:
        for action in actions:
            if action == "assess":
                outcome = assess_order(order_to_assess(new_image), _ports())
            elif action == "count_return":
                outcome = count_return(order_key, new_image["channel"], new_image.get("buyer_id"), _ports())
            else:
                outcome = promote_ready(order_key, _ports())
            outcomes.append(outcome.as_dict())
    except Exception:
        logger.exception("risk step failed; the stream retries the record", extra={"order_key": order_key,
                                                                                  "actions": actions})
        raise
    if not actions:
        logger.info("order change needs no risk step", extra={"order_key": order_key})
    return outcomes


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_stream_batch(event, context, record_handler, metric_prefix="Risk")
