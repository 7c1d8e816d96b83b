"""Registers in the back office: pairing, their tokens, online state and sync requests.

A register is added with a one-time pairing code (made by a user with the sites
permission, valid 24 hours, for one store). The register trades the code for its own
token; the back office keeps only the token's digest, and every request with that
token can only read and write the register's own store.

Online means the register talked to the back office within ``ONLINE_SECONDS`` (it
long-polls, so a connected register is seen every few seconds). "Last synced" is set
whenever a register reports a finished sync, whoever asked for it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from appliance.backoffice import auth
from appliance.backoffice.storage import Tx
from appliance.errors import ApplianceError, Conflict, NotFound, ValidationError

ONLINE_SECONDS = 60
REDELIVER_SECONDS = 60
Doc = dict[str, Any]


class Unauthorized(ApplianceError):
    code = "unauthorized"
    http_status = 401


class Forbidden(ApplianceError):
    code = "forbidden"
    http_status = 403


def create_store(tx: Tx, store_id: str, name: str) -> Doc:
    if tx.one("SELECT id FROM stores WHERE id = ?", (store_id,)):
        raise Conflict(f"store {store_id!r} exists already", field="id")
    tx.execute(
        "INSERT INTO stores (id, name, created_at) VALUES (?,?,?)", (store_id, name, auth.now_iso())
    )
    return {"id": store_id, "name": name}


def require_store(tx: Tx, store_id: str) -> Doc:
    row = tx.one("SELECT id, name, version FROM stores WHERE id = ?", (store_id,))
    if row is None:
        raise NotFound(f"no store {store_id!r}", field="store_id")
    return row


def make_pairing_code(
    tx: Tx, store_id: str, register_id: str | None, name: str | None, by: str
) -> Doc:
    require_store(tx, store_id)
    code = auth.new_pairing_code()
    expires = auth.later_iso(auth.PAIRING_HOURS)
    tx.execute(
        "INSERT INTO pairing_codes (code_hash, store_id, register_id, name, created_by,"
        " created_at, expires_at) VALUES (?,?,?,?,?,?,?)",
        (auth.digest(code), store_id, register_id, name, by, auth.now_iso(), expires),
    )
    return {"code": code, "store_id": store_id, "register_id": register_id, "expires_at": expires}


def pair(tx: Tx, code: str, register_id: str, name: str | None) -> Doc:
    """Trade a pairing code for a register token (once; the code is then used up)."""
    row = tx.one(
        "SELECT code_hash, store_id, register_id, name, expires_at, used_at FROM pairing_codes"
        " WHERE code_hash = ?",
        (auth.digest(auth.normalize_code(code)),),
    )
    if row is None or row["used_at"] is not None:
        raise Unauthorized("unknown or already used pairing code", field="code")
    if row["expires_at"] < auth.now_iso():
        raise Unauthorized("this pairing code has expired: make a new one", field="code")
    if row["register_id"] and row["register_id"] != register_id:
        raise Conflict(
            f"this code is for register {row['register_id']!r}, not {register_id!r}",
            field="register_id",
        )
    store_id = row["store_id"]
    existing = tx.one(
        "SELECT register_id FROM registers WHERE store_id = ? AND register_id = ?",
        (store_id, register_id),
    )
    if existing and not row["register_id"]:
        raise Conflict(
            f"store {store_id} already has a register {register_id!r}: give this register "
            "another id, or make a code for that register id to replace it",
            field="register_id",
        )
    token = auth.new_token()
    now = auth.now_iso()
    label = name or row["name"] or register_id
    if existing:  # replacing a register's box: the old token stops working
        tx.execute(
            "UPDATE registers SET token_hash = ?, name = ?, paired_at = ? "
            "WHERE store_id = ? AND register_id = ?",
            (auth.digest(token), label, now, store_id, register_id),
        )
    else:
        tx.execute(
            "INSERT INTO registers (store_id, register_id, name, token_hash, paired_at)"
            " VALUES (?,?,?,?,?)",
            (store_id, register_id, label, auth.digest(token), now),
        )
    tx.execute("UPDATE pairing_codes SET used_at = ? WHERE code_hash = ?", (now, row["code_hash"]))
    store = require_store(tx, store_id)
    return {
        "token": token,
        "store_id": store_id,
        "store_name": store["name"],
        "register_id": register_id,
    }


def register_for_token(tx: Tx, token: str) -> Doc:
    row = tx.one(
        "SELECT store_id, register_id, name, saved_sales_sync FROM registers WHERE token_hash = ?",
        (auth.digest(token),),
    )
    if row is None:
        raise Unauthorized("unknown register token: pair the register again")
    return row


def seen(tx: Tx, reg: Doc, **fields: Any) -> None:
    """Note that a register talked to us (and what it said about itself)."""
    sets = ["last_seen_at = ?"]
    params: list[Any] = [auth.now_iso()]
    for column in ("pending", "saved_sales_sync", "versions", "software"):
        if fields.get(column) is not None:
            value = fields[column]
            sets.append(f"{column} = ?")
            params.append(
                json.dumps(value)
                if column == "versions"
                else int(value)
                if isinstance(value, bool)
                else value
            )
    tx.execute(
        f"UPDATE registers SET {', '.join(sets)} WHERE store_id = ? AND register_id = ?",
        (*params, reg["store_id"], reg["register_id"]),
    )


def is_online(last_seen_at: str | None) -> bool:
    if not last_seen_at:
        return False
    seen_at = datetime.fromisoformat(last_seen_at.replace("Z", "+00:00"))
    return auth.now() - seen_at < timedelta(seconds=ONLINE_SECONDS)


def list_registers(tx: Tx, store_id: str) -> list[Doc]:
    require_store(tx, store_id)
    rows = tx.all(
        "SELECT register_id, name, paired_at, last_seen_at, last_synced_at, last_sync_by,"
        " pending, saved_sales_sync, versions, software FROM registers WHERE store_id = ?"
        " ORDER BY register_id",
        (store_id,),
    )
    out = []
    for row in rows:
        waiting = tx.one(
            "SELECT requested_by, requested_at FROM sync_requests WHERE store_id = ?"
            " AND register_id = ? AND done_at IS NULL ORDER BY id DESC LIMIT 1",
            (store_id, row["register_id"]),
        )
        out.append(
            {
                **row,
                "online": is_online(row["last_seen_at"]),
                "saved_sales_sync": bool(row["saved_sales_sync"]),
                "versions": json.loads(row["versions"] or "{}"),
                "sync_waiting": waiting,
            }
        )
    return out


def request_sync(tx: Tx, store_id: str, register_id: str | None, by: str) -> Doc:
    """Ask one register, or every online register of the store, to sync now."""
    registers = list_registers(tx, store_id)
    if register_id is not None:
        registers = [r for r in registers if r["register_id"] == register_id]
        if not registers:
            raise NotFound(f"store {store_id} has no register {register_id!r}", field="register_id")
    requested, offline = [], []
    for reg in registers:
        if register_id is None and not reg["online"]:
            offline.append(reg["register_id"])
            continue
        tx.execute(
            "INSERT INTO sync_requests (store_id, register_id, requested_by, requested_at)"
            " VALUES (?,?,?,?)",
            (store_id, reg["register_id"], by, auth.now_iso()),
        )
        requested.append(reg["register_id"])
    return {"requested": requested, "skipped_offline": offline}


def open_request(tx: Tx, reg: Doc) -> Doc | None:
    """The sync request to hand a pulling register (again, if it went unanswered)."""
    row = tx.one(
        "SELECT id, requested_by, requested_at, delivered_at FROM sync_requests"
        " WHERE store_id = ? AND register_id = ? AND done_at IS NULL ORDER BY id LIMIT 1",
        (reg["store_id"], reg["register_id"]),
    )
    if row is None:
        return None
    now = auth.now()
    if row["delivered_at"]:
        delivered = datetime.fromisoformat(row["delivered_at"].replace("Z", "+00:00"))
        if now - delivered < timedelta(seconds=REDELIVER_SECONDS):
            return None
    tx.execute("UPDATE sync_requests SET delivered_at = ? WHERE id = ?", (auth.iso(now), row["id"]))
    return {"id": int(row["id"]), "by": row["requested_by"], "at": row["requested_at"]}


def synced(tx: Tx, reg: Doc, request_id: int | None, by: str | None) -> Doc:
    """A register finished a sync: last synced now, and by whom."""
    now = auth.now_iso()
    who = by or f"register {reg['register_id']}"
    if request_id is not None:
        row = tx.one(
            "SELECT requested_by FROM sync_requests WHERE id = ? AND store_id = ?"
            " AND register_id = ?",
            (request_id, reg["store_id"], reg["register_id"]),
        )
        if row is None:
            raise NotFound(f"no sync request {request_id} for this register", field="request_id")
        who = row["requested_by"]
        # Requests made before this one are answered by the same sync.
        tx.execute(
            "UPDATE sync_requests SET done_at = ? WHERE store_id = ? AND register_id = ?"
            " AND id <= ? AND done_at IS NULL",
            (now, reg["store_id"], reg["register_id"], request_id),
        )
    tx.execute(
        "UPDATE registers SET last_synced_at = ?, last_sync_by = ?, last_seen_at = ?"
        " WHERE store_id = ? AND register_id = ?",
        (now, who, now, reg["store_id"], reg["register_id"]),
    )
    return {"last_synced_at": now, "by": who}


def unpair(tx: Tx, store_id: str, register_id: str) -> None:
    row = tx.one(
        "SELECT register_id FROM registers WHERE store_id = ? AND register_id = ?",
        (store_id, register_id),
    )
    if row is None:
        raise NotFound(f"store {store_id} has no register {register_id!r}", field="register_id")
    # The register's ops stay (they are the store's sales); only its token goes.
    tx.execute(
        "UPDATE registers SET token_hash = ? WHERE store_id = ? AND register_id = ?",
        (f"revoked:{auth.new_token()}", store_id, register_id),
    )


def check_register_id(register_id: str) -> str:
    import re

    from appliance.config import REGISTER_ID_RE

    if not re.fullmatch(REGISTER_ID_RE, register_id or ""):
        raise ValidationError("must be 1-16 letters or digits", field="register_id")
    return register_id
