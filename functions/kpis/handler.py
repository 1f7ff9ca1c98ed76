"""KPI consumer of the Orders stream: every order change's KPI events (`oms.domain.kpi_events`) into
the hourly counters, exactly once per order and event, and the same counts as EMF metrics (for the
CloudWatch dashboard and alarms).

The batch is counted in transactions of up to `RECORDS_PER_WRITE` records; when one fails, the
stream is told to retry from its first record (ReportBatchItemFailures): the records before it are
counted, and the markers make the retried ones count once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.adapters.kpi_counters_table import KpiCountersTable
from oms.availability import count_attempt
from oms.domain.kpi_events import KpiEvent, order_events
from oms.observability import logger
from oms.settings import get_settings

RECORDS_PER_WRITE = 25
# EMF metric per counter the alarms and the dashboard read (the latency is its own metric).
METRIC_NAMES = {"orders_stored": "OrdersStored", "allocation_needed": "AllocationDecided",
                "allocated_automatically": "AllocatedAutomatically", "exceptions": "ExceptionOrders",
                "first_shipments_due": "FirstShipmentsDue", "first_shipments_on_time": "FirstShipmentsOnTime",
                "risk_holds": "RiskHolds", "orders_shipped": "OrdersShipped"}


@lru_cache(maxsize=1)
def _counters() -> KpiCountersTable:
    return KpiCountersTable(get_settings().kpi_table)


def _events(record, now: datetime) -> list[KpiEvent]:
    new = record.dynamodb.new_image
    if not new:  # a removed order: nothing happened to count
        return []
    return order_events(record.dynamodb.old_image or None, new, timedelta(hours=get_settings().ship_by_hours), now)


def _publish(counted: list[KpiEvent]) -> None:
    invocation = EphemeralMetrics()
    totals: dict[str, int] = {}
    for event in counted:
        for counter, amount in event.counters:
            totals[counter] = totals.get(counter, 0) + amount
        if event.kind == "latency":
            invocation.add_metric(name="IngestionLatency", unit=MetricUnit.Seconds, value=event.seconds)
    for counter, name in METRIC_NAMES.items():
        if totals.get(counter):
            invocation.add_metric(name=name, unit=MetricUnit.Count, value=totals[counter])
    if counted:
        invocation.flush_metrics()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    records = list(DynamoDBStreamEvent(event).records)
    now = datetime.now(timezone.utc)
    counted: list[KpiEvent] = []
    failures: list[dict] = []
    for start in range(0, len(records), RECORDS_PER_WRITE):
        chunk = records[start:start + RECORDS_PER_WRITE]
        try:
            counted += _counters().record([e for record in chunk for e in _events(record, now)], now)
        except Exception:
            logger.exception("KPI counts not written; the stream retries from this record",
                             extra={"sequence_number": chunk[0].dynamodb.sequence_number})
            failures = [{"itemIdentifier": chunk[0].dynamodb.sequence_number}]
            break
    _publish(counted)
    count_attempt(failed=bool(failures))
    logger.info("KPI events counted", extra={"records": len(records), "events": len(counted),
                                             "failed": bool(failures)})
    return {"batchItemFailures": failures}
