"""`appliance report x|z`: the current shift's X report or a closed shift's Z report."""

from __future__ import annotations

import argparse
import json
import sys

from appliance.commands._common import add_config_args, load


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="print an X (current shift) or Z report")
    parser.add_argument("kind", choices=["x", "z"])
    parser.add_argument("--number", type=int, help="Z report of shift NUMBER (default: last)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_config_args(parser)
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    config = load(args)
    if config is None:
        return 2
    from appliance.errors import ApplianceError
    from appliance.register import Register
    from appliance.reports import format_report

    register = Register(config)
    try:
        if args.kind == "x":
            data = register.x_report()
            title = "X report"
        else:
            data = register.z_report(args.number)
            title = f"Z report {data['z_no']}"
    except ApplianceError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 1
    finally:
        register.close()
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(format_report(data, title, config.store.currency_decimals))
    return 0
