"""Attempts towards the availability KPI: a shop's poll (its windows) per channel, a handler
invocation under the pseudo-channel `_system`, each counted as succeeded or failed."""

from __future__ import annotations

from datetime import datetime, timezone

from oms.adapters.kpi_counters_table import SYSTEM_CHANNEL, KpiCountersTable
from oms.observability import logger
from oms.settings import get_settings


def count_attempt(channel: str = SYSTEM_CHANNEL, *, failed: bool) -> None:
    """A counter that cannot be written is logged, not raised: what was attempted must not fail
    because of its bookkeeping."""
    try:
        KpiCountersTable(get_settings().kpi_table).add_attempts(
            datetime.now(timezone.utc), channel, ok=int(not failed), failed=int(failed))
    except Exception:  # noqa: BLE001
        logger.warning("attempt not counted for availability", extra={"channel": channel}, exc_info=True)
