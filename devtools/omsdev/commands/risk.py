"""`oms risk backtest --rules FILE`: what a rule set would hold, replayed over the stored orders.

A risk analyst checks a rule set before publishing it to the RiskRulesParameter: the orders of the
Orders table (in the local cloud, or at `--endpoint`) are replayed through it by
`oms.services.risk_backtest`, and the command prints per rule how many orders it would decide and
match, the totals per action and example order keys; `--compare-live` adds the orders whose action
differs from the stack's live rules; `--json` prints the report as one JSON document instead.

The rules file is checked before anything else: a file that cannot be read, is not JSON or breaks the
schema exits 2 with the same message `parse_rule_set` gives (the one the live engine would log).
"""

from __future__ import annotations

import argparse
import json
import sys

from omsdev.commands._stack import add_stack_arguments, use_stack

# Only the fields risk reads: the stored raw payloads would multiply what a scan reads.
_FIELDS = ("order_key", "channel", "channel_order_id", "status", "buyer_id", "total", "ship_to", "paid_at",
           "created_at", "updated_at")


def register(subparsers) -> None:
    parser = subparsers.add_parser("risk", help="risk rules: backtest a rule set over the stored orders")
    commands = parser.add_subparsers(dest="risk_command", required=True)
    backtest = commands.add_parser(
        "backtest", help="replay the stored orders through a rule set and count what each rule would hold",
        description="Replays the Orders table in paid order, rebuilding the risk aggregates in memory, and "
                    "reports per rule the orders it decides (first match) and matches. Orders paid before "
                    "--since still count in the aggregates but are not reported.")
    backtest.add_argument("--rules", required=True, metavar="FILE", help="the rule set (JSON, as the parameter)")
    backtest.add_argument("--since", type=_aware_time, metavar="ISO8601",
                          help="report only orders paid at or after this time (with its zone, e.g. ...Z)")
    backtest.add_argument("--compare-live", action="store_true",
                          help="also report the orders whose action differs from the stack's live rules")
    backtest.add_argument("--json", action="store_true", help="print the report as JSON")
    add_stack_arguments(backtest)
    backtest.set_defaults(run=run_backtest)


def _aware_time(text: str):
    from oms.domain.order import parse_utc

    try:
        return parse_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time with its zone (e.g. 2026-11-11T00:00:00Z)") from None


def read_rules(path: str):
    """The rule set in the file; ValueError with what is wrong (unreadable, not JSON, the schema)."""
    from oms.domain.risk import parse_rule_set

    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except OSError as error:
        raise ValueError(f"cannot read the rules file ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError("the rules file is not UTF-8 text") from None
    return parse_rule_set(text)


def run_backtest(args) -> int:
    try:
        rules = read_rules(args.rules)
    except ValueError as error:
        print(f"{args.rules}: {error}", file=sys.stderr)
        return 2
    if not use_stack(args):
        return 2
    from oms.services.risk_backtest import backtest, replay_order

    live = live_rules() if args.compare_live else None
    orders = [replay for replay in map(replay_order, stored_orders()) if replay is not None]
    report = backtest(orders, rules, since=args.since, compare=live)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(render(report))
    return 0


def stored_orders():
    """Every order in the Orders table, deserialised.

    A Scan is right HERE only: this is an offline analyst tool reading the whole history once. The
    system itself never scans; its risk aggregates are kept incrementally (SPEC C6).
    """
    from oms.adapters import aws
    from oms.adapters.dynamo_codec import from_item
    from oms.settings import get_settings

    names = {f"#f{index}": name for index, name in enumerate(_FIELDS)}  # `status` is a reserved word
    kwargs = {"TableName": get_settings().orders_table, "ProjectionExpression": ", ".join(names),
              "ExpressionAttributeNames": names}
    dynamodb = aws.client("dynamodb")
    while True:
        page = dynamodb.scan(**kwargs)
        yield from map(from_item, page["Items"])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def live_rules():
    """The rules the live engine uses now: the stack's parameter, or the shipped defaults when it is invalid
    (what `RiskRulesParameter` falls back to; said on stderr so the comparison is not misread)."""
    from oms.adapters import aws
    from oms.domain.risk import DEFAULT_RULES, parse_rule_set
    from oms.settings import get_settings

    name = get_settings().risk_rules_parameter
    text = aws.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    try:
        return parse_rule_set(text)
    except ValueError as error:
        print(f"live rules parameter {name}: {error}; the live engine uses the shipped defaults, compared with "
              "those", file=sys.stderr)
        return DEFAULT_RULES


def render(report) -> str:
    """The report as a table: one row per rule, then the actions and the comparison."""
    from oms.services.risk_backtest import DEFAULT_RULE

    since = f", paid since {report.as_dict()['since']}" if report.since else ""
    lines = [f"rules {report.rules_version}: {report.orders_assessed} orders assessed{since} "
             f"({report.orders_replayed} replayed into the aggregates)", ""]
    rows = [("rule", "action", "decides", "matches", "examples")]
    rows += [(t.rule_id + ("" if t.enabled else " (disabled)"), t.action, str(t.decides), str(t.matches),
              ", ".join(t.examples)) for t in report.rules]
    rows.append((DEFAULT_RULE, report.default_action, str(report.default_decides), "-", ""))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]), row[3].rjust(widths[3])]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    lines += ["", "actions: " + ", ".join(f"{action} {count}" for action, count in report.actions.items())
              + f"  (held {report.held} of {report.orders_assessed})"]
    compared = report.compared
    if compared is not None:
        lines += ["", f"compared with live rules {compared.rules_version}: {compared.changed} orders would change "
                      "action"]
        lines += [f"  {transition}: {count}" for transition, count in sorted(compared.transitions.items())]
        lines += [f"  {c.order_key}: {_decided(c.before, c.before_rule)} -> {_decided(c.after, c.after_rule)}"
                  for c in compared.examples]
    return "\n".join(lines)


def _decided(action: str, rule: str) -> str:
    """`verify (buyer-volume-returns)`, or `allow (default)` when no rule fired."""
    return f"{action} {rule}" if rule.startswith("(") else f"{action} ({rule})"
