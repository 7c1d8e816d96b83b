"""The operation log: append operations with the state they produce, replay, verify.

Every change is an immutable operation (op id, register id, HLC timestamp, sale id,
kind, payload) appended in the same transaction as its effect on the state tables.
The log is the single source of truth that sync replicates; the state tables are a
cache of it that ``rebuild`` can recreate and ``verify`` compares.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from appliance.reducer import Op, apply_op
from appliance.storage.db import STATE_TABLES, connect, migrate
from appliance.storage.state import StateStore


def insert_op(conn: sqlite3.Connection, op: Op) -> None:
    """Append one op to the log (the caller holds the transaction).

    ``origin_seq`` is the op's number on the register that made it (see
    appliance/lan/schema.py): kept when a merged op carries it, given by a trigger to
    this register's own ops.
    """
    conn.execute(
        "INSERT INTO ops (op_id, register_id, hlc, sale_id, kind, payload, origin_seq)"
        " VALUES (?,?,?,?,?,?,?)",
        (
            op["op_id"],
            op["register_id"],
            op["hlc"],
            op.get("sale_id"),
            op["kind"],
            json.dumps(op["payload"], sort_keys=True, separators=(",", ":")),
            op.get("origin_seq"),
        ),
    )


def append(conn: sqlite3.Connection, state: StateStore, ops: Iterable[Op]) -> None:
    """Insert and apply operations; the caller holds the transaction."""
    for op in ops:
        insert_op(conn, op)
        apply_op(state, op)


def iter_ops(
    conn: sqlite3.Connection, where: str = "1", params: tuple[Any, ...] = ()
) -> Iterator[Op]:
    """Ops in HLC order: the canonical order that every register folds them in.

    A register's own ops are written in HLC order, so for them this is also the
    order they were appended; ops merged from other registers slot in by time.
    """
    for row in conn.execute(
        f"SELECT {OP_COLUMNS} FROM ops WHERE {where} ORDER BY hlc, op_id", params
    ):
        yield op_from_row(row)


OP_COLUMNS = "op_id, register_id, hlc, sale_id, kind, payload"


def op_from_row(row: tuple[Any, ...]) -> Op:
    """An op from a row of ``OP_COLUMNS`` (a leading ``seq`` column is kept as ``seq``)."""
    *seq, op_id, register_id, hlc, sale_id, kind, payload = row
    op: Op = {
        "op_id": op_id,
        "register_id": register_id,
        "hlc": hlc,
        "sale_id": sale_id,
        "kind": kind,
        "payload": json.loads(payload),
    }
    if seq:
        op = {"seq": seq[0], **op}
    return op


def rebuild(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Replay the whole log into a fresh in-memory database."""
    scratch = connect(":memory:")
    migrate(scratch)
    state = StateStore(scratch)
    scratch.execute("BEGIN")
    for op in iter_ops(conn):
        apply_op(state, op, lenient=True)
    scratch.execute("COMMIT")
    return scratch


def dump_state(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in STATE_TABLES
    }


@dataclass
class CheckResult:
    integrity: list[str]
    ops: int
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.integrity == ["ok"] and not self.differences


def verify(conn: sqlite3.Connection) -> CheckResult:
    """PRAGMA integrity_check, then replay the log and compare with the stored state."""
    integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    ops = int(conn.execute("SELECT count(*) FROM ops").fetchone()[0])
    result = CheckResult(integrity=integrity, ops=ops)
    # Each register numbers its ops once (LAN sync's anti-entropy counts on it).
    for register_id, number, count in conn.execute(
        "SELECT register_id, origin_seq, count(*) FROM ops WHERE origin_seq IS NOT NULL"
        " GROUP BY register_id, origin_seq HAVING count(*) > 1 LIMIT 20"
    ):
        result.differences.append(
            f"ops of register {register_id}: number {number} is used {count} times"
        )
    try:
        scratch = rebuild(conn)
    except Exception as exc:  # a log that cannot be replayed is itself the finding
        result.differences.append(f"replay failed: {exc}")
        return result
    stored, replayed = dump_state(conn), dump_state(scratch)
    for table in STATE_TABLES:
        a, b = stored[table], replayed[table]
        if a == b:
            continue
        a_keys = {row[0]: row for row in a}
        b_keys = {row[0]: row for row in b}
        for key in sorted(set(a_keys) | set(b_keys), key=str):
            if key not in b_keys:
                result.differences.append(f"{table} {key}: stored but not produced by the log")
            elif key not in a_keys:
                result.differences.append(f"{table} {key}: produced by the log but not stored")
            elif a_keys[key] != b_keys[key]:
                result.differences.append(f"{table} {key}: stored row differs from the log's")
    return result
