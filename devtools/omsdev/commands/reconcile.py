"""`oms reconcile --channel C --shop S --since T [--until T]`: reconcile one shop now, against the local cloud.

Runs the template's ReconcileFunction in-process (the code the hourly schedule runs in AWS) with
an explicit range, and prints its report: per slice, the orders the platform listed, those already
stored, and the order keys it backfilled.
"""

from __future__ import annotations

from datetime import datetime

from omsdev.commands.invoke import DEFAULT_ENDPOINT, invoke_function
from omsdev.localcloud.cloud import DEFAULT_TEMPLATE


def _aware(text: str) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} needs a time zone, e.g. 2026-11-25T08:00:00Z")
    return moment.isoformat()


def register(subparsers) -> None:
    parser = subparsers.add_parser("reconcile", help="compare a shop's orders at the platform with the store and backfill")
    parser.add_argument("--channel", required=True)
    parser.add_argument("--shop", required=True, help="the shop id the shop was registered with")
    parser.add_argument("--since", required=True, type=_aware, help="ISO 8601 with zone, e.g. 2026-11-25T08:00:00Z")
    parser.add_argument("--until", type=_aware, default=None, help="default: now (never past the shop's cursor)")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    parser.add_argument("--stack-name", default="oms-local")
    parser.set_defaults(run=run)


def run(args) -> int:
    event = {"channel": args.channel, "shop_id": args.shop, "since": args.since}
    if args.until:
        event["until"] = args.until
    return invoke_function("ReconcileFunction", event, endpoint=args.endpoint, template_path=args.template,
                           stack_name=args.stack_name)
