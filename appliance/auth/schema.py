"""Tables of authentication (migration 7 in appliance/storage/db.py).

``users`` is state derived from ``user.upsert`` ops (compared by ``appliance db check``
and replicated with the op log). ``auth_tokens`` and ``auth_failures`` are local to
this register: a machine token or a lock-out counter means nothing elsewhere.
"""

from __future__ import annotations

import sqlite_utils


def create(db: sqlite_utils.Database) -> None:
    db.create_table(
        "users",
        {
            "username": str,
            "name": str,
            "role": str,
            "password_hash": str,
            "pin_hash": str,
            "disabled": int,
            "hlc": str,
        },
        pk="username",
        not_null={"name", "role", "disabled", "hlc"},
    )
    db.create_table(
        "auth_tokens",
        {"token_hash": str, "name": str, "created_at": str},
        pk="token_hash",
        not_null={"name", "created_at"},
    )
    db.create_table(
        "auth_failures",
        {"username": str, "failures": int, "locked_until": float},
        pk="username",
        not_null={"failures"},
    )
