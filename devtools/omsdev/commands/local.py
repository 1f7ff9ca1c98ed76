"""`oms local up`: the local cloud with the channel simulators and a scenario, with live progress."""

from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import timedelta

from oms.adapters.channels.registry import window_rules

from omsdev import allocation_demo, kpi_summary, risk_demo
from omsdev.commands.local_token import register_token
from omsdev.demo import IngestTally, reconcile, simulated_channels, start_shop
from omsdev.localcloud.cloud import DEFAULT_TEMPLATE, LocalCloud
from omsdev.localcloud.local_auth import issue_token
from omsdev.simulators.base import FaultPlan
from omsdev.simulators.scenario import FraudRing, Scenario, ScenarioRunner

# One demo shop per channel; Amazon's getOrderItems (0.5/s) is raised so the demo shows it within
# a minute, like a seller on a higher usage plan.
DEMO_SHOPS = {"taobao": "demo-tmall", "jd": "demo-jd", "pdd": "demo-pdd", "douyin": "demo-douyin",
              "kuaishou": "demo-ks", "amazon": "demo-eu", "aliexpress": "demo-ae", "shopify": "demo-hk"}
RATE_MULTIPLIERS = {"amazon": 20}
# A new shop's first window reaches back InitialLookbackSeconds (a day in AWS). The demo's backlog
# spans the last hour, and a poll reads one window of at most the platform's span (PDD: 30 min),
# so a 90-minute look-back lets every channel catch up within the demo's first minute.
DEMO_PARAMETERS = {"LogLevel": "WARNING", "InitialLookbackSeconds": "5400"}
# After the run, the stream consumers finish what the pollers stored (the summary counts every order).
SETTLE_SECONDS = 150

SCENARIOS = {
    # A quiet shop day, sped up so something happens every few seconds, with the usual mess:
    # re-touched orders, late cancellations, a malformed order now and then, 10% API faults.
    # And a fraud ring for the risk engine to catch: new accounts shipping to one flat, a serial returner.
    # Each channel's orders are dated back by its poller's window lag (PDD 3 min 15 s ... Shopify none), so the
    # pollers see them at once and the latency KPI shows what a live shop would: that lag plus the poll's wait.
    "demo": dict(scenario=Scenario(orders_per_day=3000 * 40, cancel_share=0.1, duplicate_share=0.1,
                                   malformed_share=0.02, late_update_seconds=10,
                                   channel_backdates={channel: window_rules(channel).lag for channel in DEMO_SHOPS},
                                   fraud_ring=FraudRing()),
                 backlog=40, fault_rate=0.1),
    "double11": dict(scenario=Scenario(orders_per_day=3000, peak_factor=50, backdate=timedelta(minutes=3)),
                     backlog=500, fault_rate=0.0),
    "quiet": dict(scenario=Scenario(orders_per_day=3000, backdate=timedelta(minutes=3)), backlog=20, fault_rate=0.0),
}


def register(subparsers) -> None:
    local = subparsers.add_parser("local", help="the Docker-free local cloud")
    commands = local.add_subparsers(dest="local_command", required=True)
    up = commands.add_parser("up", help="start the endpoint, the template's resources, simulators and wiring")
    up.add_argument("--scenario", choices=sorted(SCENARIOS), default="demo")
    up.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C); 0 = provision only")
    up.add_argument("--speed", type=float, default=4.0, help="schedule speed-up: rate(1 minute) fires every 60/speed s")
    up.add_argument("--endpoint", default=None, help="use this AWS-compatible endpoint (e.g. LocalStack) instead of starting moto")
    up.add_argument("--port", type=int, default=4566, help="port of the moto server it starts")
    up.add_argument("--api-port", type=int, default=3000, help="port of the template's API routes (0: a free one)")
    up.add_argument("--linger", type=float, default=0,
                    help="after the run's summary, keep the API and the KPI dashboard up this many seconds")
    up.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    up.add_argument("--stack-name", default="oms-local")
    up.set_defaults(run=run_up)
    register_token(commands)


def _queue_depth(cloud: LocalCloud, logical_id: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    attributes = cloud.stack.client("sqs").get_queue_attributes(QueueUrl=cloud.stack.ref(logical_id), AttributeNames=names)
    return sum(int(attributes["Attributes"].get(name, 0)) for name in names)


def _progress(cloud: LocalCloud, tally: IngestTally, started: float) -> str:
    parts = []
    for channel, counts in sorted(tally.snapshot().items()):
        parts.append(
            f"{channel}: {counts['created']} stored, {counts['updated']} updated, "
            f"{counts['duplicate'] + counts['stale']} duplicates suppressed, {counts['quarantined']} quarantined, "
            f"{tally.failed_windows[channel]} windows failed"
        )
    queues = f"retry queue {_queue_depth(cloud, 'RetryQueue')}, DLQ {_queue_depth(cloud, 'RetryDeadLetterQueue')}"
    return f"[{time.monotonic() - started:5.0f}s] " + (" | ".join(parts) or "waiting for the first poll") + f" | {queues}"


def run_up(args) -> int:
    preset = SCENARIOS[args.scenario]
    cloud = LocalCloud(args.template, endpoint=args.endpoint, port=args.port, speed=args.speed,
                       stack_name=args.stack_name, parameter_overrides=DEMO_PARAMETERS,
                       start_event_sources=False, server="process",
                       api_port=None if args.duration == 0 else args.api_port)
    try:
        cloud.start()
    except (RuntimeError, OSError) as error:  # e.g. nothing answers at --endpoint, --api-port is taken
        print(f"oms local up: {error}", file=sys.stderr)
        return 2
    print(f"local cloud: endpoint {cloud.endpoint}, stack {args.stack_name}, template {args.template}")
    if args.duration == 0:
        cloud.stop()
        print("resources provisioned; nothing else started (--duration 0)")
        return 0
    print(f"API: {cloud.api_url} (buyers: POST /verifications/{{verification_id}}; reviewers: /review/items ...)")
    token = issue_token(cloud, "reviewer", username="demo-reviewer@example.com")
    print("reviewer token (1 h; more with `oms local token --role reviewer|risk_reviewer|admin`):\n"
          f"  curl -H 'Authorization: {token}' {cloud.api_url}/review/items")
    print(f"KPI dashboard (the token stays in the URL fragment): {cloud.api_url}/dashboard#token={token}")
    sms = risk_demo.start_sms()
    print(f"simulator: Aliyun SMS at {sms.url}")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    faults = lambda seed: FaultPlan(rate=preset["fault_rate"], kinds=("5xx", "429", "timeout"), timeout_seconds=2.0, seed=seed)
    shops = [start_shop(channel, DEMO_SHOPS[channel], faults=faults(seed), seed=seed,
                        rate_multiplier=RATE_MULTIPLIERS.get(channel, 1.0))
             for seed, channel in enumerate(simulated_channels(), start=1)]
    for shop in shops:
        print(f"simulator: {shop.channel} shop {shop.shop_id} at {shop.simulator.url}")
    sources = allocation_demo.start_sources()
    for simulator in sources:
        print(f"simulator: {type(simulator).__name__} at {simulator.url}")
    for loaded in allocation_demo.load_master_data():
        print(f"loaded {loaded['file']}: {loaded['rows']} {loaded['kind']} rows")
    feeds = allocation_demo.refresh_feeds(cloud)
    print("feeds: " + ", ".join(f"{source} {outcome.get('state', outcome)}" for source, outcome in feeds.items()))
    runner = ScenarioRunner([shop.generator for shop in shops], preset["scenario"])
    runner.seed_backlog(preset["backlog"])
    tally = IngestTally()
    cloud.runtime.listeners.append(tally)
    cloud.start_wiring()
    runner.start(duration=None if args.duration is None else max(args.duration - 20, 0))
    started = time.monotonic()
    print(f"scenario {args.scenario}: {preset['backlog']} backlog orders per shop, then live orders; Ctrl-C stops")
    try:
        while not stop.wait(5):
            print(_progress(cloud, tally, started), flush=True)
            if args.duration is not None and time.monotonic() - started >= args.duration:
                break
    finally:
        runner.stop()
        if not stop.is_set():  # Ctrl-C stops at once
            print("settling: pollers and schedules stopped; the stream consumers (allocation, risk, KPIs) "
                  "read on to the stream's last record…", flush=True)
            waited = cloud.settle(timeout=SETTLE_SECONDS, stop=stop)
            # One last read of the warehouses' shipments (the feed's schedule stopped with the others),
            # and the consumers read on to what it recorded.
            try:
                read = cloud.invoke("FeedFunction", {"source": "shipments"}, bypass_concurrency=True)
                shipments = f"{read.get('shipments_recorded', 0)} shipments read after the run"
            except Exception as error:  # noqa: BLE001 - the run's figures stand without it; say why
                shipments = f"the last shipments read failed ({type(error).__name__}: {error})"
            again = cloud.settle(timeout=SETTLE_SECONDS, stop=stop) if waited is not None else None
            print("settled: " + (f"every stream consumer caught up in {waited + again:.0f} s; {shipments}"
                                 if again is not None else
                                 f"not caught up in {SETTLE_SECONDS} s; the figures below lag the stream"))
        print("stopping: waiting for running invocations…", flush=True)
        cloud.stop_wiring()
        print(_progress(cloud, tally, started))
        results = reconcile(shops)
        for channel, result in sorted(results.items()):
            print(
                f"{channel}: {result.stored_exactly_once}/{result.expected} generated orders stored exactly once "
                f"at their latest version, {result.stored_items - result.stored_exactly_once - len(result.stale_or_missing) + result.missing} duplicates, "
                f"{result.quarantined_expected} malformed generated (quarantined), "
                f"{len(result.stale_or_missing)} not yet ingested (updated in the last poll interval or inside Amazon's 2-minute lag)"
            )
        for line in allocation_demo.summary():
            print(line)
        for line in risk_demo.summary(runner, shops, sms):
            print(line)
        for line in kpi_summary.summary():
            print(line)
        if args.linger and not stop.is_set():
            print(f"the API and the KPI dashboard stay up for {args.linger:g} s (Ctrl-C ends it)", flush=True)
            stop.wait(args.linger)
        sms.stop()
        for shop in shops:
            shop.simulator.stop()
        for simulator in sources:
            simulator.stop()
        cloud.stop()
        print("local cloud stopped cleanly")
    return 0

