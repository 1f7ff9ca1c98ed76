"""Allocation consumer of the Orders stream (FilterCriteria: newly paid orders, cancellations and
refunds, shipments, orders that became ready_to_ship).

Each record is one order change: a paid order is allocated (warehouse chosen, units held, WMS
confirmation), a cancelled or refunded one releases its units, a shipped one deducts them, and one
that became `ready_to_ship` (allocated and risk-cleared) is released to its warehouses' WMS for
picking - until then the warehouses only hold it, so a risk-held order never ships. Records
are handled one by one in stream order (an order's changes stay in order); a failed record is
reported (ReportBatchItemFailures) so the stream retries from it, and every step is idempotent, so
what a redelivery repeats changes nothing.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.observability import logger
from oms.services.allocate import (
    allocate_order,
    deduct_order,
    release_order,
    release_to_warehouse,
    stream_action,
)
from oms.services.dependencies import allocation_ports, order_to_allocate
from oms.settings import get_settings
from oms.stream_batch import process_stream_batch

_building = threading.Lock()


@lru_cache(maxsize=1)
def _ports():
    # Built once per container (their caches live with them); the lock keeps concurrent local
    # invocations from building two sets.
    with _building:
        return allocation_ports(get_settings())


def record_handler(record: DynamoDBRecord) -> dict:
    new_image = record.dynamodb.new_image or {}
    old_image = record.dynamodb.old_image or {}
    action = stream_action(record.event_name.name if record.event_name else "", old_image.get("status"),
                           new_image.get("status"), old_fulfillment=old_image.get("fulfillment_status"),
                           new_fulfillment=new_image.get("fulfillment_status"))
    order_key = new_image.get("order_key") or old_image.get("order_key")
    if action is None:
        logger.info("order change needs no allocation step", extra={"order_key": order_key,
                                                                    "status": new_image.get("status")})
        return {"order_key": order_key, "state": "ignored"}
    try:
        if action == "allocate":
            outcome = allocate_order(order_to_allocate(new_image), _ports())
        elif action == "release":
            outcome = release_order(order_key, f"order {new_image.get('status')}", _ports())
        elif action == "release_to_warehouse":
            outcome = release_to_warehouse(order_key, _ports())
        else:
            outcome = deduct_order(order_key, _ports())
    except Exception:
        logger.exception("allocation step failed; the stream retries the record",
                         extra={"order_key": order_key, "action": action})
        raise
    logger.info("allocation step done", extra=outcome.as_dict())
    return outcome.as_dict()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    # After the batch: its allocation counts, one write per warehouse.
    return process_stream_batch(event, context, record_handler, metric_prefix="Allocation",
                                finally_=lambda: _ports().facts.flush())
