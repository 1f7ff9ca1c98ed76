"""Allocation in the demo (`oms local up`): four warehouses, their WMS, carrier, attendance and quality
APIs (simulated), the catalogue loaded the way an operator does it, and a view of the outcome.

The warehouses, SKU mappings and shelf counts are the CSV files in `devtools/omsdev/demo_catalogue/`,
loaded with the same code as `oms inventory load`; the shelf counts go to the WMS simulator, and the
feeds bring them (and transit times, staff, error rates) into the snapshots, as in AWS. The channel
simulators' seller codes are mapped, one through a 5-pack bundle; one code is left unmapped and one
keyboard is scarce, so the review queue shows both reasons. A confirmed reservation is only a hold:
an order is released to its warehouse once it is `ready_to_ship` (allocated and risk-cleared; a
risk-held order never ships), the warehouse ships it a short while later (Hong Kong, the
cross-border one, more slowly), and the shipments feed deducts the units and marks the order shipped
at the WMS's time.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

from oms.adapters import aws
from oms.settings import get_settings

from omsdev.simulators import attendance, carrier, quality, wms

CATALOGUE = Path(__file__).parent / "demo_catalogue"
DOMESTIC = ("taobao", "jd", "pdd", "douyin", "kuaishou")
TRANSIT_HOURS = {  # origin -> region -> hours, the carrier's answer
    "WH-HZ": {"CN": 48.0, "CN/浙江": 12.0, "CN/上海": 12.0, "CN/江苏": 18.0},
    "WH-GZ": {"CN": 48.0, "CN/广东": 12.0, "CN/广西": 24.0, "CN/福建": 24.0, "CN/湖南": 30.0, "CN/四川": 36.0},
    "WH-BJ": {"CN": 48.0, "CN/北京": 10.0, "CN/天津": 14.0, "CN/河北": 18.0, "CN/内蒙古": 30.0, "CN/黑龙江": 36.0},
    "WH-HK": {"HK": 8.0, "CN/广东": 20.0, "US": 96.0, "DE": 120.0, "JP": 48.0, "ES": 120.0, "BR": 168.0},
}
STAFF = {"WH-HZ": (60, 450), "WH-GZ": (45, 420), "WH-BJ": (30, 400), "WH-HK": (12, 300)}
QUALITY = {"WH-HZ": (12000, 60), "WH-GZ": (9000, 90), "WH-BJ": (7000, 35), "WH-HK": (3000, 45)}
# Seconds from a reservation released for picking (ready_to_ship) to its parcel leaving, and the carrier.
SHIPPING = {"WH-HZ": (10, "SF"), "WH-GZ": (10, "ZTO"), "WH-BJ": (15, "YTO"), "WH-HK": (30, "DHL")}
FEEDS = ("wms", "carrier", "attendance", "quality", "shipments")


def start_sources() -> list:
    """The four APIs, each registered by its secret (`oms/sources/<source>`), the WMS holding the demo's
    shelf counts and shipping what it confirmed once the order is released to it (ready_to_ship)."""
    warehouses = sorted(TRANSIT_HOURS)
    wms_api, wms_credentials = wms.launch(warehouses)
    for row in _rows("stock.csv"):
        wms_api.set_stock(row["warehouse_id"], row["sku"], int(row["on_hand"]))
    for warehouse_id, (seconds, carrier_name) in SHIPPING.items():
        wms_api.configure_warehouse(warehouse_id, ship_after=timedelta(seconds=seconds), carrier=carrier_name)
    launched = [(wms_api, wms_credentials, "wms"),
                (*carrier.launch(TRANSIT_HOURS), "carrier"),
                (*attendance.launch(STAFF), "attendance"),
                (*quality.launch(QUALITY), "quality")]
    secrets = aws.client("secretsmanager")
    for _simulator, credentials, source in launched:
        name = f"{get_settings().secrets_prefix}/sources/{source}"
        try:
            secrets.create_secret(Name=name, SecretString=json.dumps(credentials))
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=name, SecretString=json.dumps(credentials))
    return [simulator for simulator, _credentials, _source in launched]


def load_master_data() -> list[dict]:
    """Warehouses and SKU mappings through the `oms inventory load` code path; its per-file summaries."""
    from oms.services.inventory_load import LoadRejected, load_inventory

    from omsdev.commands.inventory import inventory_load_ports

    files = [(str(CATALOGUE / name), (CATALOGUE / name).read_bytes()) for name in ("warehouses.csv", "sku_map.csv")]
    outcome = load_inventory(files, inventory_load_ports())
    if isinstance(outcome, LoadRejected):
        raise RuntimeError("the demo catalogue does not load: " + "; ".join(map(str, outcome.errors)))
    return [loaded.as_dict() for loaded in outcome.files]


def refresh_feeds(cloud) -> dict:
    """Run each feed once now (their schedules take over afterwards, shipments every minute)."""
    return {source: cloud.invoke("FeedFunction", {"source": source}) for source in FEEDS}


def summary(limit: int = 3) -> list[str]:
    """Lines for the console: reservation states, review reasons, and a few decisions with their scores."""
    settings = get_settings()
    dynamodb = aws.client("dynamodb")
    states, reasons, confirmed = Counter(), Counter(), []
    kwargs = {"TableName": settings.reservations_table}
    while True:  # the demo's few hundred reservations: a console view, not a code path of the system
        page = dynamodb.scan(**kwargs)
        for item in page["Items"]:
            states[item["state"]["S"]] += 1
            if item["state"]["S"] == "refused":
                reasons[item.get("reason", {}).get("S", "?")] += 1
            elif item["state"]["S"] in ("confirmed", "deducted") and item.get("shipments", {}).get("L"):
                confirmed.append(item["order_key"]["S"])  # allocated (and perhaps shipped since)
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    lines = ["allocation: " + ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
             + (" | review reasons: " + ", ".join(f"{n} {r}" for r, n in reasons.most_common()) if reasons else "")]
    # A few decisions from different channels, domestic ones first (several warehouses compete there).
    by_channel = {}
    for order_key in sorted(confirmed, key=lambda key: key.split("#")[0] not in DOMESTIC):
        by_channel.setdefault(order_key.split("#")[0], order_key)
    for order_key in list(by_channel.values())[:limit]:  # the decision with every candidate's scores is on the order
        decision = dynamodb.get_item(TableName=settings.orders_table, Key={"order_key": {"S": order_key}},
                                     ProjectionExpression="allocation_decision")["Item"]["allocation_decision"]["M"]
        shipments = " + ".join(s["M"]["warehouse_id"]["S"] for s in decision["shipments"]["L"])
        scores = "; ".join(_candidate(c["M"]) for c in decision["candidates"]["L"])
        confidence = float(decision["confidence"]["N"])
        lines.append(f"  {order_key} -> {shipments} | confidence {confidence:.2f} | {scores}")
    return lines


def _candidate(candidate: dict) -> str:
    """`WH-HZ 0.812 (stock 1.00, delivery 0.50, ...)`, or the hard filters that rejected it."""
    factors = ", ".join(f"{name} {float(value['N']):.2f}" for name, value in candidate["factors"]["M"].items())
    text = f"{candidate['warehouse_id']['S']} {float(candidate['score']['N']):.3f} ({factors})"
    if not candidate["eligible"]["BOOL"]:
        text += " rejected: " + ",".join(reason["S"] for reason in candidate["rejected"]["L"])
    return text


def _rows(name: str) -> list[dict]:
    with open(CATALOGUE / name, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
