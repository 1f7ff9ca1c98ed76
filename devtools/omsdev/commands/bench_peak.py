"""`oms bench peak`: Double 11 at 50x across the eight channels under faults at every boundary, then the
audit of the end state (`omsdev.peak`). Exit 0 only when the audit passes: no duplicate, no oversold
unit, no lost order, every dead letter explained by the faults."""

from __future__ import annotations

import json

from omsdev.peak import PeakSettings, run_peak, summary_lines


def register(commands) -> None:
    parser = commands.add_parser("peak", help="Double 11 under faults, then the end-state audit")
    defaults = PeakSettings()
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds of peak traffic")
    parser.add_argument("--backlog", type=int, default=defaults.backlog, help="orders per shop before the run")
    parser.add_argument("--channel-fault-rate", type=float, default=defaults.channel_fault_rate)
    parser.add_argument("--aws-fault-rate", type=float, default=defaults.aws_fault_rate)
    parser.add_argument("--crash-rate", type=float, default=defaults.crash_rate)
    parser.add_argument("--malformed-share", type=float, default=defaults.malformed_share)
    parser.add_argument("--drain-timeout", type=float, default=defaults.drain_timeout)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--json", default=None, help="also write the report to this file")
    parser.set_defaults(run=run)


def run(args) -> int:
    for name, value in (("--channel-fault-rate", args.channel_fault_rate), ("--aws-fault-rate", args.aws_fault_rate),
                        ("--crash-rate", args.crash_rate), ("--malformed-share", args.malformed_share)):
        if not 0 <= value <= 1:
            print(f"oms bench peak: {name} must be between 0 and 1")
            return 2
    settings = PeakSettings(duration=args.duration, backlog=args.backlog, channel_fault_rate=args.channel_fault_rate,
                            aws_fault_rate=args.aws_fault_rate, crash_rate=args.crash_rate,
                            malformed_share=args.malformed_share,
                            drain_timeout=args.drain_timeout, seed=args.seed)
    result = run_peak(settings, log=lambda line: print(line, flush=True))
    for line in summary_lines(result):
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, default=str)
    return 0 if result["invariants"]["audit_ok"] and result["drained_in_seconds"] is not None else 1
