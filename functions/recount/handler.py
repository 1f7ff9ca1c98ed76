"""Scheduled recount of reserved stock (EventBridge Scheduler): repairs drift, reports every repair."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.adapters.inventory_table import InventoryTable
from oms.adapters.warehouses_table import WarehousesTable
from oms.observability import logger, metrics
from oms.services.recount import recount_reservations
from oms.settings import get_settings


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    settings = get_settings()
    report = recount_reservations(WarehousesTable(settings.warehouses_table), InventoryTable(settings.inventory_table))
    for repair in report.repairs:
        logger.warning("reserved stock repaired", extra=vars(repair))
    metrics.add_metric(name="RecountRepairs", unit="Count", value=len(report.repairs))
    metrics.add_metric(name="RecountUnsettled", unit="Count", value=len(report.unsettled))
    logger.info("recount done", extra={"stock_items": report.stock_items, "repairs": len(report.repairs)})
    return report.as_dict()
