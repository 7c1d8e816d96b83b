"""Reset data: start the register's data afresh from what the back office holds.

Better than the commercial "reset data", which deletes unsynced sales after a
warning: here a reset

1. says exactly what would be lost (``preview``: ops not yet acknowledged, errored
   ops, the sales and customers they belong to, a sale in progress);
2. is refused while anything is unsynced, unless that was exported first
   (``export``: one JSON file of every unsynced and errored op, which the back office
   or support can take in later — op ids make that safe);
3. keeps a copy of the old database next to it (``reset-backup-….db``);
4. restores the register's own history from the back office, so receipt, shift and
   Z numbers continue where they were and nothing synced is lost; the catalog,
   customers, taxes and settings (the stored bundles and the back office's rows of
   the settings overlay are wiped too) and the store's saved sales then arrive with
   the next pull. The admin panel's own settings rows stay.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.register import Register
from appliance.storage.db import STATE_TABLES, transaction
from appliance.sync import outbox

Doc = dict[str, Any]
KEEP = ("url", "token", "store_id", "store_name", "saved_sales_sync")


def _unsynced_where() -> str:
    return "register_id = ? AND (seq > ? OR op_id IN (SELECT op_id FROM sync_errored))"


def preview(register: Register) -> Doc:
    conn, me = register.conn, register.register_id
    cursor = outbox.sent_seq(conn)
    unsynced = conn.execute(
        f"SELECT count(*), max(seq) FROM ops WHERE {_unsynced_where()}", (me, cursor)
    ).fetchone()
    count, last_seq = int(unsynced[0]), unsynced[1]
    sale_ids = [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT sale_id FROM ops WHERE {_unsynced_where()} AND sale_id IS NOT NULL",
            (me, cursor),
        )
    ]
    sales = [register.state.get_sale(s) for s in sale_ids]
    by_status: dict[str, list[str]] = {}
    for doc in sales:
        if doc is not None:
            label = doc.get("receipt_no") or doc.get("name") or doc["id"]
            by_status.setdefault(doc["status"], []).append(label)
    customers = conn.execute(
        f"SELECT count(*) FROM ops WHERE {_unsynced_where()} AND kind = 'customer.upsert'",
        (me, cursor),
    ).fetchone()[0]
    errored = outbox.errored(conn)
    in_progress = [
        doc["id"]
        for doc in register.state.sales("status = 'open'")
        if (doc.get("resumed_by") or doc["register_id"]) == me and doc["lines"]
    ]
    export = outbox.get(conn, "export")
    covered = bool(
        export
        and last_seq is not None
        and export["through_seq"] >= last_seq
        and {e["id"] for e in errored} <= set(export["errored"])
    )
    lose = []
    if by_status.get("completed"):
        lose.append(f"{len(by_status['completed'])} completed sale(s) not yet in the back office")
    if by_status.get("parked"):
        lose.append(f"{len(by_status['parked'])} saved sale(s) with changes not yet synced")
    if customers:
        lose.append(f"{customers} customer change(s) not yet synced")
    if errored:
        lose.append(f"{len(errored)} errored item(s) the back office refused")
    if in_progress:
        lose.append("the sale in progress")
    if count and not lose:
        lose.append(f"{count} change(s) not yet synced")
    warning = "Resetting deletes this register's data and restores it from the back office. " + (
        "It would lose: " + "; ".join(lose) + "."
        if lose
        else "Everything on this register is in the back office: nothing would be lost."
    )
    return {
        "unsynced_ops": count,
        "errored": len(errored),
        "sales": by_status,
        "customers": int(customers),
        "sale_in_progress": bool(in_progress),
        "would_lose": lose,
        "warning": warning,
        "exported": export,
        "export_required": count > 0 and not covered,
    }


def export(register: Register) -> Doc:
    """Every op the back office does not have, as one JSON document; remembered."""
    ops = outbox.unsynced_ops(register)
    errored = outbox.errored(register.conn)
    at = outbox.now_iso()
    marker = {
        "at": at,
        "through_seq": max((op["seq"] for op in ops), default=0),
        "errored": [e["id"] for e in errored],
        "ops": len(ops),
    }
    outbox.put(register.conn, "export", marker)
    return {
        "format": "register-appliance unsynced ops v1",
        "register_id": register.register_id,
        "store_id": outbox.get(register.conn, "store_id"),
        "exported_at": at,
        "errored": errored,
        "ops": ops,
    }


def wipe(register: Register, backup_dir: Path) -> str:
    """Copy the database aside, then empty the log, the state and sync's bookkeeping."""
    conn = register.conn
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = backup_dir / f"reset-backup-{stamp}.db"
    target = sqlite3.connect(str(backup))
    try:
        conn.backup(target)
    finally:
        target.close()
    marks = ",".join("?" * len(KEEP))
    with transaction(conn):
        conn.execute("DELETE FROM ops")
        for table in STATE_TABLES:
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM sync_errored")
        conn.execute("DELETE FROM sync_bundles")
        conn.execute("DELETE FROM settings_overlay WHERE source = 'backoffice'")
        conn.execute(f"DELETE FROM sync_state WHERE key NOT IN ({marks})", KEEP)
    register.state.forget()
    return str(backup)


def acknowledge_all(register: Register) -> int:
    """After restoring: everything in the log came from the back office."""
    last = int(register.conn.execute("SELECT coalesce(max(seq), 0) FROM ops").fetchone()[0])
    outbox.put(register.conn, "sent_seq", last)
    return last
