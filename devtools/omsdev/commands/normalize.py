"""`oms normalize`: print each order of a saved channel list response as one canonical JSON line.

stdout gets one contract object per good order; stderr gets one `{"quarantined": true, ...}` line per
malformed order. Exit 0 when every order normalized, 1 when any was quarantined, 2 when the file
or the channel cannot be used at all.
"""

from __future__ import annotations

import json
import sys

from oms.domain.order import MalformedOrderError
from oms.normalizers import SUPPORTED, normalizer_for


def register(subparsers) -> None:
    parser = subparsers.add_parser("normalize", help="raw channel list response -> canonical orders (JSON lines)")
    parser.add_argument("--channel", required=True, help=f"one of: {', '.join(SUPPORTED)}")
    parser.add_argument("--shop", default="default", help="the seller's shop id on that channel")
    parser.add_argument("file", help="a saved list response, e.g. ../shared/channels/shopify_synthetic.json")
    parser.set_defaults(run=run)


def run(args) -> int:
    try:
        normalizer = normalizer_for(args.channel)
    except ValueError as error:
        print(f"oms normalize: {error}", file=sys.stderr)
        return 2
    try:
        with open(args.file, encoding="utf-8") as handle:
            records = normalizer.split_response(json.load(handle))
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        print(f"oms normalize: cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    quarantined = 0
    for raw in records:
        try:
            order = normalizer.normalize(raw, args.shop)
        except MalformedOrderError as error:
            quarantined += 1
            report = {"quarantined": True, "channel_order_id": error.channel_order_id, "reason": error.reason}
            print(json.dumps(report, ensure_ascii=False), file=sys.stderr)
            continue
        print(json.dumps(order.contract_dict(), ensure_ascii=False))
    return 1 if quarantined else 0
