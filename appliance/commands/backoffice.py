"""`appliance backoffice …`: run and set up the back office service.

serve        run the back office (FastAPI) on --db sqlite:///FILE or postgresql://…
migrate      create or upgrade the schema and exit
add-store    add a store
add-user     add a back office user (password from --password-stdin or a prompt)
pairing-code make a one-time code that a register pairs with
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DEFAULT_DB = "sqlite:///backoffice.db"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backoffice", help="the back office service")
    sub = parser.add_subparsers(dest="backoffice_command", metavar="COMMAND")
    sub.required = True

    def with_db(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--db",
            default=DEFAULT_DB,
            help="sqlite:///path/file.db (default sqlite:///backoffice.db) or postgresql://…",
        )
        return p

    serve = with_db("serve", "run the back office")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8800)
    serve.set_defaults(handler=_serve)

    with_db("migrate", "create or upgrade the database schema").set_defaults(handler=_migrate)

    store = with_db("add-store", "add a store")
    store.add_argument("id")
    store.add_argument("name")
    store.set_defaults(handler=_add_store)

    user = with_db("add-user", "add a back office user")
    user.add_argument("username")
    user.add_argument("--name", help="display name (default: the user name)")
    user.add_argument(
        "--role", default="owner", choices=["owner", "manager", "catalog", "reporting"]
    )
    user.add_argument("--store", action="append", dest="stores", help="limit to a store (repeat)")
    user.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    user.set_defaults(handler=_add_user)

    code = with_db("pairing-code", "make a one-time pairing code for a register")
    code.add_argument("store")
    code.add_argument("--register-id", help="only for this register id (replaces its box)")
    code.add_argument("--name", help="the register's name in the back office")
    code.set_defaults(handler=_pairing_code)


def _open(args: argparse.Namespace) -> Any:
    from appliance.backoffice.storage import StorageError, open_database

    try:
        return open_database(args.db)
    except StorageError as exc:
        print(f"appliance backoffice: {exc}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from appliance.backoffice.app import create_backoffice_app

    db = _open(args)
    if db is None:
        return 1
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    print(
        f"appliance: back office on {db.dialect}, http://{args.host}:{args.port}/", file=sys.stderr
    )
    try:
        uvicorn.run(create_backoffice_app(db), host=args.host, port=args.port, log_level="warning")
    finally:
        db.close()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    db = _open(args)
    if db is None:
        return 1
    db.close()
    print("appliance backoffice: schema is up to date", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace, fn: Any) -> int:
    from appliance.errors import ApplianceError

    db = _open(args)
    if db is None:
        return 1
    try:
        with db.write() as tx:
            result = fn(tx)
    except ApplianceError as exc:
        print(f"appliance backoffice: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(json.dumps(result, indent=2))
    return 0


def _add_store(args: argparse.Namespace) -> int:
    from appliance.backoffice.registers import create_store

    return _run(args, lambda tx: create_store(tx, args.id, args.name))


def _add_user(args: argparse.Namespace) -> int:
    import getpass

    from appliance.backoffice.users import add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    return _run(
        args,
        lambda tx: add_user(
            tx, args.username, args.name or args.username, password, args.role, args.stores
        ),
    )


def _pairing_code(args: argparse.Namespace) -> int:
    from appliance.backoffice.registers import make_pairing_code

    return _run(
        args,
        lambda tx: make_pairing_code(tx, args.store, args.register_id, args.name, "command line"),
    )
