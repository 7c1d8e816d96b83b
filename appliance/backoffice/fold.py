"""A sale as the registers see it, folded from its ops by the registers' own reducer.

The back office keeps ops, not sale documents, as the truth; the sale document it
shows (lines, totals, status, receipt number) is computed by the very reducer that
every register runs (``appliance.reducer``), in HLC order, in a scratch in-memory
SQLite per worker thread. So the back office and every register agree on what a sale
is, whatever engine stores the ops.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

from appliance.reducer import Op, apply_op
from appliance.storage.db import connect, migrate
from appliance.storage.state import StateStore

_local = threading.local()


def _scratch() -> tuple[sqlite3.Connection, StateStore]:
    pair: tuple[sqlite3.Connection, StateStore] | None = getattr(_local, "pair", None)
    if pair is None:
        conn = connect(":memory:")
        migrate(conn)
        pair = (conn, StateStore(conn))
        _local.pair = pair
    return pair


def fold_sale(sale_id: str, ops: Iterable[Op]) -> dict[str, Any] | None:
    """The sale document that ``ops`` (all of one sale, any order) produce, or None."""
    conn, state = _scratch()
    conn.execute("DELETE FROM sales")
    state.forget()
    ordered = sorted(ops, key=lambda op: (op["hlc"], op["op_id"]))
    for op in ordered:
        apply_op(state, op, lenient=True)
    doc = state.get_sale(sale_id)
    state.forget()
    return doc
