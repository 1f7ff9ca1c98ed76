"""`oms audit`: the end-state audit of a running local cloud (`omsdev.audit`).

Prints each check (orders, stock, holds, queues) with OK or FAIL, its numbers and the first violations,
or the whole report as JSON with `--json`. Exit status: 0 when every check passes, 1 when one fails,
2 when the audit cannot run (no local cloud, an unreadable `--expected` file).
"""

from __future__ import annotations

import json
import sys

from omsdev.commands._stack import add_stack_arguments, attached_stack


def register(subparsers) -> None:
    parser = subparsers.add_parser("audit", help="check the end state: no lost or duplicate orders, no oversold "
                                                 "units, holds cleared only by decisions, DLQs explained")
    parser.add_argument("--expected", metavar="FILE",
                        help="the orders the simulators created: JSON lines or a JSON list of order keys or "
                             "{order_key, updated_at} objects (without it: counts and duplicates only)")
    parser.add_argument("--explained-by", metavar="KINDS", default="",
                        help="comma-separated fault kinds injected in the scenario: the channel simulators' "
                             "(5xx,429,timeout,truncated), the AWS endpoint's (aws, or the fault proxy's throttle,"
                             "throughput,500,drop,drop_after), crash; without it any dead-lettered message fails")
    parser.add_argument("--limit", type=int, default=20, help="violations shown per check (all are counted)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON document")
    add_stack_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from omsdev.audit import audit, read_expected

    expected = None
    if args.expected:
        try:
            expected = read_expected(args.expected)
        except (OSError, ValueError) as error:
            print(f"oms audit: --expected: {error}", file=sys.stderr)
            return 2
    stack = attached_stack(args, "oms audit")
    if stack is None:
        return 2
    kinds = [kind.strip() for kind in args.explained_by.split(",") if kind.strip()]
    report = audit(expected, stack=stack, explained_by=kinds, limit=args.limit)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, default=str, indent=2))
    else:
        for line in report.lines():
            print(line)
    return 0 if report.ok else 1
