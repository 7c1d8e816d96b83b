"""`appliance db check`: integrity check plus "replaying the op log gives the stored state"."""

from __future__ import annotations

import argparse
import sys

from appliance.commands._common import add_config_args, load


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="database tools")
    sub = parser.add_subparsers(dest="db_command", metavar="COMMAND")
    sub.required = True
    check = sub.add_parser("check", help="integrity check and op-log replay comparison")
    check.add_argument("--db", metavar="FILE", help="database file (default: from config)")
    add_config_args(check)
    check.set_defaults(handler=check_db)


def check_db(args: argparse.Namespace) -> int:
    config = load(args)
    if config is None:
        return 2
    from appliance.errors import ApplianceError
    from appliance.storage.db import connect, migrate
    from appliance.storage.oplog import verify

    path = args.db or config.db_path
    try:
        conn = connect(path, create=False)
        migrate(conn)
        result = verify(conn)
    except ApplianceError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 1
    print(f"database: {path}")
    print(f"integrity_check: {'; '.join(result.integrity)}")
    print(f"ops: {result.ops}")
    if result.differences:
        print(f"replay: {len(result.differences)} difference(s)")
        for diff in result.differences[:100]:
            print(f"  {diff}")
    else:
        print("replay: stored state equals the op log's")
    print("OK" if result.ok else "FAILED")
    return 0 if result.ok else 1
