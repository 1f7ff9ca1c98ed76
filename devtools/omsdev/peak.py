"""Double 11 on the local cloud, under faults, then an audit of the end state (issue 8, `oms bench peak`).

All eight channels' simulators at 50x a normal day's rate (the seed's 3,000 orders a day), with a
backlog, re-touched orders, late cancellations, malformed orders, a fraud ring and a serial
returner, and the demo catalogue's scarce SKUs. Faults at every boundary while the traffic runs:
- the channel APIs: 5xx, 429, timeouts and truncated bodies on `channel_fault_rate` of the calls;
- AWS: the fault proxy throttles, fails (500) or drops (before or after the write) `aws_fault_rate`
  of the functions' DynamoDB, SQS and SNS calls;
- the handlers: `crash_rate` of the stream and queue consumers' invocations crash after their
  writes or are killed mid-batch.
Then the storm passes (faults off), the system drains, and `omsdev.audit` checks the invariants.

Latency is measured from the moment an order appeared at its channel: the scenario stamps orders
`backdate` in the past (Amazon serves only orders older than 2 minutes), so that is taken off.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from oms.adapters import aws
from oms.settings import get_settings

from omsdev import allocation_demo, risk_demo
from omsdev.audit import audit
from omsdev.demo import IngestTally, reconcile, simulated_channels, start_shop
from omsdev.localcloud.cloud import LocalCloud
from omsdev.localcloud.fault_proxy import FaultRule
from omsdev.localcloud.lambda_runtime import CrashPlan
from omsdev.simulators.base import FAULT_KINDS, FaultPlan
from omsdev.simulators.scenario import FraudRing, Scenario, ScenarioRunner

# The consumers whose invocations may crash (the pollers' schedules are not retried by Lambda).
CONSUMERS = frozenset({"AllocationFunction", "RiskFunction", "KpiFunction", "ReviewIntakeFunction",
                       "WindowRetryFunction"})
BACKDATE = timedelta(minutes=3)


@dataclass(frozen=True)
class PeakSettings:
    duration: float = 240.0  # seconds of Double 11 traffic
    backlog: int = 40  # orders per shop waiting before the run
    channel_fault_rate: float = 0.1
    aws_fault_rate: float = 0.1
    crash_rate: float = 0.1
    malformed_share: float = 0.02  # of the orders generated: broken payloads the pipeline must quarantine
    drain_timeout: float = 600.0
    seed: int = 11


def run_peak(settings: PeakSettings, log=print) -> dict:
    cloud = LocalCloud(port=0, stack_name=f"peak{uuid.uuid4().hex[:6]}", start_event_sources=False, server="process",
                       fault_proxy=settings.aws_fault_rate > 0, fault_seed=settings.seed,
                       parameter_overrides={"LogLevel": "ERROR", "InitialLookbackSeconds": "5400",
                                            "RetryBackoffSeconds": "10,20,40"})
    cloud.start()
    # The handlers' logger was made before the cloud set the level (this module imports oms first).
    from oms.observability import logger

    logger.setLevel("ERROR")
    started_parts: list = []
    try:
        return _run(cloud, settings, started_parts, log)
    finally:
        cloud.stop()
        for part in started_parts:
            part.stop()


def _run(cloud: LocalCloud, settings: PeakSettings, started_parts: list, log) -> dict:
    sms = risk_demo.start_sms()
    started_parts.append(sms)
    plans = {}
    shops = []
    for index, channel in enumerate(simulated_channels()):
        plans[channel] = FaultPlan(rate=settings.channel_fault_rate, kinds=FAULT_KINDS, timeout_seconds=2.0,
                                   seed=settings.seed + index)
        shops.append(start_shop(channel, f"peak-{channel}", faults=plans[channel], seed=settings.seed + index))
        started_parts.append(shops[-1].simulator)
    sources = allocation_demo.start_sources()
    started_parts.extend(sources)
    allocation_demo.load_master_data()
    allocation_demo.refresh_feeds(cloud)
    scenario = Scenario(orders_per_day=3000, peak_factor=50, duplicate_share=0.1, cancel_share=0.1,
                        malformed_share=settings.malformed_share, late_update_seconds=30, backdate=BACKDATE, fraud_ring=FraudRing(),
                        seed=settings.seed)
    runner = ScenarioRunner([shop.generator for shop in shops], scenario)
    backlog = set(runner.seed_backlog(settings.backlog))
    crashes = CrashPlan(rate=settings.crash_rate, functions=CONSUMERS, seed=settings.seed)
    cloud.runtime.crashes = crashes
    polls = IngestTally()
    cloud.runtime.listeners.append(polls)
    if cloud.faults is not None:
        kinds = ("throttle", "500", "drop", "drop_after")
        cloud.faults.set(FaultRule("dynamodb", "*", rate=settings.aws_fault_rate, kinds=kinds),
                         FaultRule("sqs", "*", rate=settings.aws_fault_rate, kinds=kinds),
                         FaultRule("sns", "*", rate=settings.aws_fault_rate, kinds=("throttle", "500")),
                         # reads only: the tooling's own CreateSecret calls (shops registering) are not the system
                         FaultRule("secretsmanager", "GetSecretValue", rate=settings.aws_fault_rate,
                                   kinds=("throttle", "500", "drop")),
                         FaultRule("ssm", "GetParameter", rate=settings.aws_fault_rate, kinds=("throttle", "500", "drop")))
    log(f"peak: {len(shops)} channels at {scenario.orders_per_second:.2f} orders/s for {settings.duration:.0f} s, "
        f"{settings.backlog} backlog orders per shop; faults: channel {settings.channel_fault_rate:.0%}, "
        f"AWS {settings.aws_fault_rate:.0%}, handler crashes {settings.crash_rate:.0%}")
    cloud.start_wiring()
    runner.start(duration=settings.duration)
    began = time.monotonic()
    while time.monotonic() - began < settings.duration:
        time.sleep(min(15.0, settings.duration))
        log(f"  {time.monotonic() - began:5.0f} s: {len(runner.created_ids)} orders created")
    runner.stop()
    # The storm passes: every fault off, then the system drains what is left.
    for plan in plans.values():
        plan.rate = 0.0
    crashes.rate = 0.0
    if cloud.faults is not None:
        cloud.faults.disable()
    drained = _drain(cloud, shops, settings.drain_timeout, log)
    cloud.stop_wiring()
    report = audit(shops, stack=cloud.stack, explained_by=(*FAULT_KINDS, "aws", "crash"))
    return {
        "settings": asdict(settings),
        "orders": {"created": len(runner.created_ids), "backlog": len(backlog),
                   "malformed_generated": len(runner.malformed_ids), "cancelled": len(runner.cancelled_ids),
                   "re_touched": len(runner.touched_ids), "fraud_ring": len(runner.ring_ids),
                   "returner_orders": len(runner.returner_ids)},
        "faults": {"channels": _channel_faults(shops),
                   "aws": cloud.faults.report() if cloud.faults is not None else [],
                   "handlers": {f"{function}:{kind}": count for (function, kind), count in sorted(crashes.counts.items())}},
        "polls": {channel: {**states, "stop_reasons": dict(polls.reasons[channel].most_common(3))}
                  for channel, states in sorted(polls.states.items())},
        "bad_inputs": {"malformed_orders": len(runner.malformed_ids)},
        "drained_in_seconds": drained,
        "invariants": _invariants(report),
        # The fraud ring is planted with old payment times: live traffic only.
        "latency": _latency(set(runner.created_ids) - backlog - set(runner.ring_ids) - set(runner.returner_ids), shops),
        "audit": report.as_dict(),
        "dead_letters": report.check("queues").counts,
    }


def _drain(cloud: LocalCloud, shops: list, timeout: float, log) -> float | None:
    """Wait until every generated order is stored at its latest version (or quarantined) and every stored
    paid order has its allocation and risk decisions; the seconds it took, None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        behind = {channel: result.stale_or_missing for channel, result in reconcile(shops).items()
                  if result.stale_or_missing}
        undecided = _undecided_paid_orders()
        if not behind and undecided == 0:
            return round(time.monotonic() - started, 1)
        log(f"  draining: not yet stored at their latest version: "
            f"{', '.join(f'{c} {len(ids)} (e.g. {ids[0]})' for c, ids in sorted(behind.items())) or 'none'}; "
            f"{undecided} paid orders not yet allocated and assessed")
        time.sleep(10)
    return None


def _undecided_paid_orders() -> int:
    table, dynamodb = get_settings().orders_table, aws.client("dynamodb")
    kwargs = {"TableName": table, "ProjectionExpression": "#s, fulfillment_status, risk_status",
              "ExpressionAttributeNames": {"#s": "status"}}
    undecided = 0
    while True:  # a scan: offline tooling over a local table
        page = dynamodb.scan(**kwargs)
        undecided += sum(1 for item in page["Items"] if item["status"]["S"] == "paid"
                         and ("fulfillment_status" not in item or "risk_status" not in item))
        if "LastEvaluatedKey" not in page:
            return undecided
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _channel_faults(shops: list) -> dict:
    faults = {}
    for shop in shops:
        outcomes = shop.simulator.stats.outcomes()
        faults[shop.channel] = {"calls": sum(outcomes.values()),
                                **{name: count for name, count in sorted(outcomes.items())
                                   if name.startswith("fault_") or name == "rate_limited"}}
    return faults


def _invariants(report) -> dict:
    orders, stock = report.check("orders").counts, report.check("stock").counts
    return {"duplicates": orders.get("duplicates", 0), "lost": orders.get("lost", 0),
            "stale": orders.get("stale", 0), "oversold_units": stock.get("oversold_units", 0),
            "audit_ok": report.ok, "failed_checks": list(report.failed)}


def _latency(live_ids: set[str], shops: list) -> dict:
    """Seconds from an order's appearance at its channel to stored (p50/p95)."""
    table = get_settings().orders_table
    ingest = []
    keys = [f"{shop.channel}#{shop.shop_id}#{entry.order_id}" for shop in shops for entry in shop.book.entries()
            if entry.order_id in live_ids and not entry.malformed]
    for item in aws.batch_get(table, [{"order_key": {"S": key}} for key in keys],
                              ProjectionExpression="paid_at, stored_at_ms"):
        if "paid_at" not in item:
            continue
        appeared = datetime.fromisoformat(item["paid_at"]["S"].replace("Z", "+00:00")) + BACKDATE
        stored = datetime.fromtimestamp(int(item["stored_at_ms"]["N"]) / 1000, UTC)
        ingest.append((stored - appeared).total_seconds())
    return {"orders_measured": len(ingest), "ingest_p50_seconds": _percentile(ingest, 0.5),
            "ingest_p95_seconds": _percentile(ingest, 0.95)}


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(int(share * len(ordered)), len(ordered) - 1)], 1)


def summary_lines(result: dict) -> list[str]:
    invariants, orders, latency = result["invariants"], result["orders"], result["latency"]
    aws_faults = Counter()
    for row in result["faults"]["aws"]:
        for kind in ("throttle", "throughput", "500", "drop", "drop_after"):
            aws_faults[kind] += row.get(kind, 0)
    channel_faults = Counter()
    for counts in result["faults"]["channels"].values():
        channel_faults.update({k: v for k, v in counts.items() if k != "calls"})
    return [
        f"orders: {orders['created']} created ({orders['backlog']} backlog), {orders['malformed_generated']} malformed, "
        f"{orders['cancelled']} cancelled late, {orders['re_touched']} re-touched, fraud ring {orders['fraud_ring']}",
        f"faults at the channels: {sum(counts['calls'] for counts in result['faults']['channels'].values())} calls, "
        + (", ".join(f"{k} {v}" for k, v in sorted(channel_faults.items())) or "none drawn"),
        "faults at AWS: " + ", ".join(f"{k} {v}" for k, v in sorted(aws_faults.items()) if v),
        "shop polls: " + "; ".join(f"{channel} " + ", ".join(f"{k} {v}" for k, v in states.items() if k != "stop_reasons")
                                   for channel, states in result["polls"].items()),
        "handler crashes: " + ", ".join(f"{k} {v}" for k, v in result["faults"]["handlers"].items()),
        f"duplicates {invariants['duplicates']}, oversold units {invariants['oversold_units']}, "
        f"lost orders {invariants['lost']} (stale {invariants['stale']}); audit "
        + ("OK" if invariants["audit_ok"] else f"FAILED: {', '.join(invariants['failed_checks'])}"),
        f"ingestion latency: p50 {latency['ingest_p50_seconds']} s, p95 {latency['ingest_p95_seconds']} s "
        f"({latency['orders_measured']} live orders, from their appearance at the channel)",
        f"drained in {result['drained_in_seconds']} s after the faults stopped",
        "dead letters: " + ", ".join(f"{k} {v}" for k, v in result["dead_letters"].items()),
    ]
