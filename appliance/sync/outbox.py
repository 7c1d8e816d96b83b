"""The durable outbox: the register's own ops after the acknowledged cursor.

Why the op log is the outbox (and no separate queue table): every op is committed in
the transaction that records its change, so it is queued exactly then — nothing can
be recorded and not queued, and a crash can lose neither. ``sent_seq`` moves only
after the back office answered 200 for a batch; a crash between the back office's
commit and ours re-sends the batch, which the back office counts as duplicates (op
ids). Ops the back office refused (4xx) are set aside in ``sync_errored`` with its
reason and skipped until someone retries them. Ops of other registers (merged from
the relay or the LAN) are not ours to send: each register sends its own.

Everything here runs on the register's DB thread; each write is one statement or a
savepoint, so it is atomic alone and also inside the service's group commits.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from appliance.register import Register
from appliance.storage.db import transaction
from appliance.storage.oplog import OP_COLUMNS, op_from_row

Doc = dict[str, Any]
_OWN = "register_id = ? AND seq > ? AND op_id NOT IN (SELECT op_id FROM sync_errored)"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# sync_state ---------------------------------------------------------------------
def get(conn: sqlite3.Connection, key: str, default: Any = None) -> Any:
    row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def put(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO sync_state (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )


def put_many(register: Register, values: Doc) -> None:
    with transaction(register.conn):
        for key, value in values.items():
            put(register.conn, key, value)


def state(register: Register) -> Doc:
    rows = register.conn.execute("SELECT key, value FROM sync_state").fetchall()
    return {key: json.loads(value) for key, value in rows}


# the queue ----------------------------------------------------------------------
def sent_seq(conn: sqlite3.Connection) -> int:
    return int(get(conn, "sent_seq", 0))


def pending_count(conn: sqlite3.Connection, register_id: str) -> int:
    row = conn.execute(
        f"SELECT count(*) FROM ops WHERE {_OWN}", (register_id, sent_seq(conn))
    ).fetchone()
    return int(row[0])


def next_batch(register: Register, limit: int) -> list[Doc]:
    """The oldest unsent own ops, in the order they were recorded (fsynced first)."""
    register.make_durable()
    rows = register.conn.execute(
        f"SELECT seq, {OP_COLUMNS} FROM ops WHERE {_OWN} ORDER BY seq LIMIT ?",
        (register.register_id, sent_seq(register.conn), limit),
    ).fetchall()
    return [op_from_row(row) for row in rows]


def acknowledge(register: Register, through_seq: int) -> None:
    """The back office stored everything up to ``through_seq``: move the cursor."""
    if through_seq > sent_seq(register.conn):
        put(register.conn, "sent_seq", through_seq)


# errored items ------------------------------------------------------------------
def mark_errored(register: Register, op: Doc, error: str, status: int) -> None:
    register.conn.execute(
        "INSERT INTO sync_errored (op_id, seq, kind, sale_id, error, status, at, attempts)"
        " VALUES (?,?,?,?,?,?,?,1) ON CONFLICT(op_id) DO UPDATE SET error = excluded.error,"
        " status = excluded.status, at = excluded.at, attempts = sync_errored.attempts + 1",
        (op["op_id"], op["seq"], op["kind"], op.get("sale_id"), error, status, now_iso()),
    )


def errored(conn: sqlite3.Connection) -> list[Doc]:
    rows = conn.execute(
        "SELECT op_id, kind, error, at, sale_id, status, attempts FROM sync_errored ORDER BY seq"
    ).fetchall()
    keys = ("id", "kind", "error", "at", "sale_id", "status", "attempts")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def errored_ops(register: Register, op_ids: list[str] | None = None) -> list[Doc]:
    """The errored ops in full (for retrying one or all, and for the download)."""
    where = "op_id IN (SELECT op_id FROM sync_errored)"
    params: tuple[Any, ...] = ()
    if op_ids is not None:
        marks = ",".join("?" * len(op_ids)) or "NULL"
        where += f" AND op_id IN ({marks})"
        params = tuple(op_ids)
    rows = register.conn.execute(
        f"SELECT seq, {OP_COLUMNS} FROM ops WHERE {where} ORDER BY seq",
        params,
    ).fetchall()
    return [op_from_row(row) for row in rows]


def clear_errored(register: Register, op_ids: list[str]) -> None:
    register.conn.executemany("DELETE FROM sync_errored WHERE op_id = ?", [(i,) for i in op_ids])


def unsynced_ops(register: Register) -> list[Doc]:
    """Own ops the back office does not have: pending and errored (for export)."""
    rows = register.conn.execute(
        f"SELECT seq, {OP_COLUMNS} FROM ops"
        " WHERE register_id = ? AND (seq > ? OR op_id IN (SELECT op_id FROM sync_errored))"
        " ORDER BY seq",
        (register.register_id, sent_seq(register.conn)),
    ).fetchall()
    return [op_from_row(row) for row in rows]


# the status contract ----------------------------------------------------------------
HEARTBEAT_SECONDS = 180


def contract(conn: sqlite3.Connection, register_id: str, online: bool | None = None) -> Doc:
    """``appliance sync status``: exactly online, pending, errored, last_synced_at.

    ``online`` comes from the running register; read from the database alone (the
    command line), it is the last state the register recorded, and only while its
    heartbeat is recent — a register that is not running is not online.
    """
    if online is None:
        online = bool(get(conn, "online", False))
        beat = get(conn, "heartbeat_at")
        if online and beat:
            age = datetime.now(UTC) - datetime.fromisoformat(beat.replace("Z", "+00:00"))
            online = age.total_seconds() < HEARTBEAT_SECONDS
        else:
            online = False
    return {
        "online": online,
        "pending": pending_count(conn, register_id),
        "errored": [{k: e[k] for k in ("id", "kind", "error", "at")} for e in errored(conn)],
        "last_synced_at": get(conn, "last_synced_at"),
    }
