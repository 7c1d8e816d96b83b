"""Back office users, their roles and sessions."""

from __future__ import annotations

import json
import uuid
from typing import Any

from appliance.backoffice import auth
from appliance.backoffice.registers import Forbidden, Unauthorized
from appliance.backoffice.storage import Tx
from appliance.errors import Conflict, ValidationError

Doc = dict[str, Any]


def public(row: Doc) -> Doc:
    stores = json.loads(row["stores"]) if row.get("stores") else None
    return {
        "id": row["id"],
        "username": row["username"],
        "name": row["name"],
        "role": row["role"],
        "permissions": sorted(auth.ROLES[row["role"]]),
        "stores": stores,
        "disabled": bool(row.get("disabled")),
    }


def add_user(
    tx: Tx, username: str, name: str, password: str, role: str, stores: list[str] | None = None
) -> Doc:
    if role not in auth.ROLES:
        raise ValidationError(f"must be one of {', '.join(auth.ROLES)}", field="role")
    if len(password) < 8:
        raise ValidationError("must be at least 8 characters", field="password")
    if tx.one("SELECT id FROM users WHERE username = ?", (username,)):
        raise Conflict(f"user {username!r} exists already", field="username")
    row = {
        "id": uuid.uuid4().hex,
        "username": username,
        "name": name,
        "role": role,
        "stores": json.dumps(stores) if stores is not None else None,
        "disabled": 0,
    }
    tx.execute(
        "INSERT INTO users (id, username, name, password_hash, role, stores, created_at)"
        " VALUES (?,?,?,?,?,?,?)",
        (
            row["id"],
            username,
            name,
            auth.hash_password(password),
            role,
            row["stores"],
            auth.now_iso(),
        ),
    )
    return public(row)


def list_users(tx: Tx) -> list[Doc]:
    return [public(r) for r in tx.all("SELECT * FROM users ORDER BY username")]


def disable_user(tx: Tx, user_id: str) -> None:
    tx.execute("UPDATE users SET disabled = 1 WHERE id = ?", (user_id,))
    tx.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))


def login(tx: Tx, username: str, password: str) -> Doc:
    row = tx.one("SELECT * FROM users WHERE username = ?", (username,))
    if row is None or row["disabled"] or not auth.check_password(password, row["password_hash"]):
        raise Unauthorized("wrong user name or password", field="password")
    token = auth.new_token()
    expires = auth.later_iso(auth.SESSION_HOURS)
    tx.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?,?,?,?)",
        (auth.digest(token), row["id"], auth.now_iso(), expires),
    )
    return {"token": token, "expires_at": expires, "user": public(row)}


def logout(tx: Tx, token: str) -> None:
    tx.execute("DELETE FROM sessions WHERE token_hash = ?", (auth.digest(token),))


def user_for_token(tx: Tx, token: str) -> Doc:
    row = tx.one(
        "SELECT u.*, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_hash = ?",
        (auth.digest(token),),
    )
    if row is None or row["disabled"]:
        raise Unauthorized("not signed in (or the session ended): sign in again")
    if row["expires_at"] < auth.now_iso():
        raise Unauthorized("the session has expired: sign in again")
    return public(row)


def require(user: Doc, permission: str, store_id: str | None = None) -> None:
    if permission not in user["permissions"]:
        raise Forbidden(
            f"{user['name']} ({user['role']}) does not have the {permission} permission",
            permission=permission,
        )
    if store_id is not None and user["stores"] is not None and store_id not in user["stores"]:
        raise Forbidden(f"{user['name']} has no access to store {store_id!r}", field="store_id")
