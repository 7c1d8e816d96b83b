"""`appliance sync …`: the register's back-office sync from the command line.

status      the JSON contract: online, pending, errored [{id, kind, error, at}],
            last_synced_at (read from the register's database; works whether or
            not the register is running)
pair        pair with a back office: URL and a one-time code (register stopped)
errored     the errored items as one JSON document (same as the admin panel's
            download)
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys

from appliance.commands._common import add_config_args, load
from appliance.config import Config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sync", help="back-office sync of this register")
    sub = parser.add_subparsers(dest="sync_command", metavar="COMMAND")
    sub.required = True
    status = sub.add_parser("status", help="print the sync status as JSON")
    add_config_args(status)
    status.set_defaults(handler=_status)
    errored = sub.add_parser("errored", help="print the errored items as one JSON document")
    add_config_args(errored)
    errored.set_defaults(handler=_errored)
    pair = sub.add_parser("pair", help="pair with a back office (while the register is stopped)")
    add_config_args(pair)
    pair.add_argument("url", help="the back office, e.g. https://backoffice.example:8800")
    pair.add_argument("code", help="the one-time pairing code from the back office")
    pair.add_argument("--name", help="the register's name in the back office")
    pair.set_defaults(handler=_pair)


def _conn(args: argparse.Namespace) -> tuple[Config, sqlite3.Connection] | tuple[None, None]:
    from appliance.errors import StorageUnavailable
    from appliance.storage.db import SCHEMA_VERSION, connect, schema_version

    config = load(args)
    if config is None:
        return None, None
    try:
        conn = connect(config.db_path, create=False)
    except StorageUnavailable as exc:
        print(f"appliance sync: {exc}", file=sys.stderr)
        return None, None
    if schema_version(conn) < min(4, SCHEMA_VERSION):
        print("appliance sync: the register has not run this software yet", file=sys.stderr)
        return None, None
    return config, conn


def _status(args: argparse.Namespace) -> int:
    from appliance.sync.outbox import contract

    config, conn = _conn(args)
    if config is None or conn is None:
        return 1
    print(json.dumps(contract(conn, config.register.id), indent=2))
    return 0


def _errored(args: argparse.Namespace) -> int:
    from appliance.sync.outbox import errored

    config, conn = _conn(args)
    if config is None or conn is None:
        return 1
    print(json.dumps({"register_id": config.register.id, "errored": errored(conn)}, indent=2))
    return 0


def _pair(args: argparse.Namespace) -> int:
    import asyncio

    from appliance.errors import ApplianceError
    from appliance.service import RegisterService
    from appliance.sync.engine import SyncEngine

    config = load(args)
    if config is None:
        return 1

    async def run() -> dict[str, object]:
        service = RegisterService(
            config.model_copy(update={"demo": config.demo.model_copy(update={"catalog": False})})
        )
        engine = SyncEngine(service, config.sync)
        service.on_open.append(engine.on_open)
        await service.start()
        try:
            return await engine.pair(args.url, args.code, args.name)
        finally:
            await service.stop()

    try:
        result = asyncio.run(run())
    except ApplianceError as exc:
        print(f"appliance sync: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0
