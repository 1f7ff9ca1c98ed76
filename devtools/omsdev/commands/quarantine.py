"""`oms quarantine list|replay`: malformed orders with their reasons; replay one after a fix."""

from __future__ import annotations

import json

from omsdev.commands._stack import add_stack_arguments, use_stack


def register(subparsers) -> None:
    parser = subparsers.add_parser("quarantine", help="list or replay quarantined orders")
    commands = parser.add_subparsers(dest="quarantine_command", required=True)
    listing = commands.add_parser("list", help="quarantined orders by state, newest last")
    listing.add_argument("--state", default="open", choices=("open", "replayed"))
    add_stack_arguments(listing)
    listing.set_defaults(run=run_list)
    replay = commands.add_parser("replay", help="re-normalize a quarantined order with today's code and store it")
    replay.add_argument("quarantine_id")
    add_stack_arguments(replay)
    replay.set_defaults(run=run_replay)


def _table():
    from oms.adapters.quarantine_table import QuarantineTable
    from oms.settings import get_settings

    return QuarantineTable(get_settings().quarantine_table)


def run_list(args) -> int:
    if not use_stack(args):
        return 2
    for item in _table().list(args.state, limit=1000):
        print(json.dumps({key: item.get(key) for key in (
            "quarantine_id", "channel", "shop_id", "channel_order_id", "reason", "quarantined_at", "seen_count", "state")},
            default=str, ensure_ascii=False))
    return 0


def run_replay(args) -> int:
    if not use_stack(args):
        return 2
    from oms.adapters.orders_table import OrdersTable
    from oms.services.quarantine import QuarantineItemNotFoundError, replay_quarantined
    from oms.settings import get_settings

    settings = get_settings()
    try:
        outcome = replay_quarantined(args.quarantine_id, _table(), OrdersTable(settings.orders_table, settings.raw_payload_bucket))
    except QuarantineItemNotFoundError as error:
        print(str(error))
        return 2
    print(json.dumps(outcome.__dict__))
    return 0 if outcome.state == "stored" else 1
