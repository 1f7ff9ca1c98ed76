"""ReviewQueue consumer: every engine's review message becomes (or refreshes) one review item that
reviewers list and work through the reviewer API. Idempotent (`ReviewItemsTable.take`); a message
that is not a ReviewMessage fails alone (ReportBatchItemFailures) and, after the queue's retries,
rests in the ReviewDeadLetterQueue with its body intact. A quarantined order (never stored, so the
KPI consumer of the Orders stream never sees it) is counted here, once, for the exception ratio."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from functools import lru_cache

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.adapters.kpi_counters_table import KpiCountersTable
from oms.adapters.review_items_table import ReviewItemsTable
from oms.availability import count_attempt
from oms.domain.kpi_events import quarantine_event
from oms.observability import logger, metrics
from oms.services.messages import ReviewMessage
from oms.settings import get_settings


@lru_cache(maxsize=1)
def _counters() -> KpiCountersTable:
    return KpiCountersTable(get_settings().kpi_table)


@lru_cache(maxsize=1)
def _items() -> ReviewItemsTable:
    return ReviewItemsTable(get_settings().review_items_table)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    outcomes: Counter = Counter()

    def take(record: SQSRecord) -> str:
        message = ReviewMessage.model_validate_json(record.body)
        outcome = _items().take(message)
        outcomes[outcome] += 1
        # A quarantined order was never stored, so the KPI stream never sees it: count it here.
        if message.source == "quarantine" and not message.settled:
            _counters().record([quarantine_event(message.order_key, message.at)], datetime.now(timezone.utc))
        logger.info("review message taken", extra={"order_key": message.order_key, "source": message.source,
                                                   "reason": message.reason, "outcome": outcome})
        return outcome

    response = process_partial_response(event=event, record_handler=take,
                                        processor=BatchProcessor(event_type=EventType.SQS), context=context)
    count_attempt(failed=bool(response["batchItemFailures"]))
    for outcome, count in outcomes.items():
        metrics.add_metric(name=f"ReviewItems_{outcome}", unit="Count", value=count)
    return response
