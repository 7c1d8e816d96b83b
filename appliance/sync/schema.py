"""Tables of the sync feature (schema migration 4, registered in appliance/storage/db.py).

The outbox is the op log itself: ``sync_state.sent_seq`` is the position up to which
the back office has acknowledged this register's own ops. An op is "queued" by being
committed, in the very transaction that records the change, and it leaves the queue
when the cursor passes it after the back office answered 200 for its batch.
"""

from __future__ import annotations

import sqlite_utils


def create(db: sqlite_utils.Database) -> None:
    """Create this feature's tables; runs once, inside the migration's transaction."""
    # Pairing (url, token, store), cursors, link state, banner, last export.
    db.create_table("sync_state", {"key": str, "value": str}, pk="key", not_null={"value"})
    # Ops the back office refused (4xx) with its reason; set aside until retried.
    db.create_table(
        "sync_errored",
        {
            "op_id": str,
            "seq": int,
            "kind": str,
            "sale_id": str,
            "error": str,
            "status": int,
            "at": str,
            "attempts": int,
        },
        pk="op_id",
        not_null={"seq", "kind", "error", "at", "attempts"},
    )
    # Settings bundles from the back office as applied (re-applied on start).
    db.create_table(
        "sync_bundles",
        {"kind": str, "version": int, "payload": str, "applied_at": str},
        pk="kind",
        not_null={"version", "payload", "applied_at"},
    )
    # The outbox query: this register's own ops after the cursor.
    db.execute("CREATE INDEX sync_outbox ON ops(register_id, seq)")
    # Offline, editing a customer that exists is refused: find earlier upserts fast.
    db.execute(
        "CREATE INDEX sync_customer_ops ON ops(json_extract(payload, '$.customer.id'))"
        " WHERE kind = 'customer.upsert'"
    )
