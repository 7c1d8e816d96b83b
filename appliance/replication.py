"""Merging operations made by other registers into this register's log and state.

The op log is replicated as it is: every op keeps the op id, register id and HLC
timestamp it was made with. Merging is idempotent (an op id already in the log is
skipped) and order-independent: a sale's state is the fold of its ops in HLC order,
so an op that arrives late — from a register that was away, or out of order — is
inserted and the sale is refolded from its ops. Completed and voided are final; the
completing register's snapshot of what it charged wins over edits it had not seen
(those are kept in the sale's ``conflicts``). Every register that holds the same set
of ops therefore holds the same state for every saved sale.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from appliance.errors import ValidationError
from appliance.hlc import Timestamp
from appliance.reducer import Op, apply_op, apply_refund_effect
from appliance.register import Register
from appliance.storage.db import atomic
from appliance.storage.oplog import OP_COLUMNS, insert_op, iter_ops, op_from_row

REQUIRED = ("op_id", "register_id", "hlc", "kind", "payload")


def _check(op: Any, index: int) -> Op:
    if not isinstance(op, dict):
        raise ValidationError("must be an object", field=f"ops[{index}]")
    for key in REQUIRED:
        if key not in op:
            raise ValidationError("is missing", field=f"ops[{index}].{key}")
    try:
        Timestamp.parse(op["hlc"])
    except (ValueError, AttributeError):
        raise ValidationError("is not an HLC timestamp", field=f"ops[{index}].hlc") from None
    if not isinstance(op["payload"], dict) or not isinstance(op["kind"], str):
        raise ValidationError("kind must be text and payload an object", field=f"ops[{index}]")
    origin_seq = op.get("origin_seq")
    if origin_seq is not None and (
        isinstance(origin_seq, bool) or not isinstance(origin_seq, int) or origin_seq < 1
    ):
        raise ValidationError("must be a positive integer", field=f"ops[{index}].origin_seq")
    return {
        "op_id": str(op["op_id"]),
        "register_id": str(op["register_id"]),
        "hlc": op["hlc"],
        "sale_id": op.get("sale_id"),
        "kind": op["kind"],
        "payload": op["payload"],
        "origin_seq": origin_seq,
    }


def ops_since(register: Register, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """This register's log from local position ``after_seq`` (for pushing to peers)."""
    register.make_durable()
    rows = register.conn.execute(
        f"SELECT seq, {OP_COLUMNS} FROM ops WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    ).fetchall()
    return [op_from_row(row) for row in rows]


def numbered_ops(
    register: Register, where: str, params: tuple[Any, ...], order: str, limit: int
) -> list[dict[str, Any]]:
    """Ops with ``origin_seq``, their number on the register that made them (LAN sync)."""
    register.make_durable()
    rows = register.conn.execute(
        f"SELECT {OP_COLUMNS}, origin_seq FROM ops WHERE {where} ORDER BY {order} LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [{**op_from_row(row[:-1]), "origin_seq": row[-1]} for row in rows]


def apply_remote(register: Register, ops: Iterable[Any]) -> int:
    """Merge ops from elsewhere; returns how many were new. All or nothing."""
    checked = [_check(op, i) for i, op in enumerate(ops)]
    conn, state = register.conn, register.state
    new = 0
    refold: set[str] = set()
    try:
        with atomic(conn):  # a savepoint when the service groups requests
            for op in checked:
                exists = conn.execute(
                    "SELECT origin_seq FROM ops WHERE op_id = ?", (op["op_id"],)
                ).fetchone()
                if exists:
                    if exists[0] is None and op["origin_seq"] is not None:
                        # Came first by a path that did not number it (back office).
                        conn.execute(
                            "UPDATE ops SET origin_seq = ? WHERE op_id = ?",
                            (op["origin_seq"], op["op_id"]),
                        )
                    continue
                insert_op(conn, op)
                new += 1
                register.hlc.observe(op["hlc"])
                if _superseded_customer(conn, op):
                    continue  # last writer wins by HLC, as a replay in HLC order does
                sale_id = op["sale_id"]
                # Fast path only when the op sorts after every op of its sale already
                # in the log: then folding it on top equals refolding all of them.
                latest = (
                    conn.execute(
                        "SELECT max(hlc) FROM ops WHERE sale_id = ? AND op_id != ?",
                        (sale_id, op["op_id"]),
                    ).fetchone()[0]
                    if sale_id
                    else None
                )
                in_order = latest is None or op["hlc"] > latest
                if sale_id in refold or not in_order:
                    refold.add(sale_id)
                    continue
                if not apply_op(state, op, lenient=True) and sale_id:
                    refold.add(sale_id)
            for sale_id in refold:
                _refold_sale(register, sale_id)
    except BaseException:
        state.forget()
        raise
    return new


def _superseded_customer(conn: Any, op: Op) -> bool:
    """A customer version older than one already here (e.g. the back office's edit)."""
    if op["kind"] != "customer.upsert":
        return False
    newer = conn.execute(
        "SELECT 1 FROM ops WHERE kind = 'customer.upsert' AND hlc > ?"
        " AND json_extract(payload, '$.customer.id') = ? LIMIT 1",
        (op["hlc"], op["payload"]["customer"]["id"]),
    ).fetchone()
    return newer is not None


def _refold_sale(register: Register, sale_id: str) -> None:
    """Rebuild one sale from its ops in HLC order (after a late or out-of-order op)."""
    conn, state = register.conn, register.state
    state.forget()
    # The sale and the second completions folded out of its ops (``<id>~<op>``).
    derived = f"{sale_id}~*"
    conn.execute("DELETE FROM sales WHERE id = ? OR id GLOB ?", (sale_id, derived))
    for op in iter_ops(conn, "sale_id = ?", (sale_id,)):
        apply_op(state, op, lenient=True)
    # Effects that other sales' ops have on this one: completed refunds of it.
    for refund in state.sales(
        "(refund_of = ? OR refund_of GLOB ?) AND status = 'completed'", (sale_id, derived)
    ):
        if state.get_sale(refund["refund_of"]) is not None:
            apply_refund_effect(state, refund)
