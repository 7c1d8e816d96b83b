"""`hil capture-scenario DB [--receipt NO] [-o FILE]`: a shop's recorded sale as a scenario."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "capture-scenario", help="write a scenario that replays a sale recorded by a register"
    )
    parser.add_argument("db", metavar="DB", help="the register's database (register.db)")
    parser.add_argument("--receipt", metavar="NO", help="receipt number (default: last sale)")
    parser.add_argument("--name", help="scenario name")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    parser.set_defaults(handler=capture)


def capture(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hil.scenario.capture import scenario_from_log

    try:
        text = scenario_from_log(Path(args.db), args.receipt, args.name)
    except (LookupError, OSError) as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
