"""`appliance user add|list|unlock`: accounts from the command line.

The way in on a register without a screen, and a second way to make the first
manager besides the setup code: ``appliance user add alice --name Alice --role
manager`` asks for the password twice (``--stdin`` reads it from standard input for
scripts; ``--pin`` sets a PIN instead). It writes to the register's database like the
admin panel does, also while the register runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from appliance.commands._common import add_config_args, load


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("user", help="manager and cashier accounts")
    sub = parser.add_subparsers(dest="user_command", metavar="COMMAND")
    sub.required = True
    add = sub.add_parser("add", help="create or change an account (asks for its password/PIN)")
    add.add_argument("username")
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=["cashier", "supervisor", "manager"], required=True)
    add.add_argument("--pin", action="store_true", help="set a PIN instead of a password")
    add.add_argument("--stdin", action="store_true", help="read the secret from standard input")
    add_config_args(add)
    add.set_defaults(handler=add_user)
    lst = sub.add_parser("list", help="list accounts")
    add_config_args(lst)
    lst.set_defaults(handler=list_accounts)
    unlock = sub.add_parser("unlock", help="clear an account's failed log-ins")
    unlock.add_argument("username")
    add_config_args(unlock)
    unlock.set_defaults(handler=unlock_user)


def _secret(args: argparse.Namespace) -> str:
    what = "PIN" if args.pin else "password"
    if args.stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass(f"{what} for {args.username}: ")
    if getpass.getpass(f"{what} again: ") != first:
        raise ValueError(f"the two {what}s differ")
    return first


def add_user(args: argparse.Namespace) -> int:
    config = load(args)
    if config is None:
        return 2
    from appliance.auth.passwords import check_password, check_pin, hash_secret
    from appliance.auth.users import get_user, upsert_user
    from appliance.errors import ApplianceError
    from appliance.register import Register

    try:
        secret = _secret(args)
        secret = check_pin(secret) if args.pin else check_password(secret)
    except (ValueError, ApplianceError) as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 1
    reg = Register(config)
    try:
        existing = get_user(reg, args.username) or {}
        doc = {
            "username": args.username,
            "name": args.name,
            "role": args.role,
            "password_hash": existing.get("password_hash"),
            "pin_hash": existing.get("pin_hash"),
            "disabled": False,
        }
        doc["pin_hash" if args.pin else "password_hash"] = hash_secret(secret)
        if args.role == "manager" and doc["password_hash"] is None:
            print("appliance: a manager needs a password (without --pin)", file=sys.stderr)
            return 1
        saved = upsert_user(reg, doc)
    except ApplianceError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 1
    finally:
        reg.close()
    print(f"saved {saved['role']} {saved['username']} ({saved['name']})")
    return 0


def _on_register(args: argparse.Namespace, action: Any) -> int:
    """Run ``action(register)`` on the configured register's database."""
    config = load(args)
    if config is None:
        return 2
    from appliance.register import Register

    reg = Register(config)
    try:
        action(reg)
    finally:
        reg.close()
    return 0


def list_accounts(args: argparse.Namespace) -> int:
    from appliance.auth.users import list_users

    def show(reg: Any) -> None:
        for user in list_users(reg):
            how = "+".join(k for k in ("password", "pin") if user[f"has_{k}"]) or "-"
            state = "disabled" if user["disabled"] else "active"
            print(f"{user['username']}\t{user['role']}\t{how}\t{state}\t{user['name']}")

    return _on_register(args, show)


def unlock_user(args: argparse.Namespace) -> int:
    from appliance.auth.lockout import clear_failures

    code = _on_register(args, lambda reg: clear_failures(reg, args.username))
    if code == 0:
        print(f"unlocked {args.username}")
    return code
