"""The runtime settings overlay's table (migration 8 in appliance/storage/db.py).

Local to this register (a printer profile or a scanner's layout means nothing on
another till); appliance/settings.py reads and writes it. Settings bundles the back
office pushed before this table existed are carried over into it.
"""

from __future__ import annotations

import json

import sqlite_utils


def create(db: sqlite_utils.Database) -> None:
    db.create_table(
        "settings_overlay",
        {"key": str, "value": str, "source": str, "set_by": str, "set_at": str},
        pk="key",
        not_null={"value", "source", "set_at"},
    )
    if "sync_bundles" not in db.table_names():
        return
    from appliance.settings import bundle_changes, store_rows

    rows = db.execute(
        "SELECT kind, payload, applied_at FROM sync_bundles WHERE kind IN ('taxes', 'settings')"
    ).fetchall()
    for kind, payload, _at in rows:
        try:
            changes = bundle_changes(kind, json.loads(payload))
        except Exception:  # a bundle that never applied stays out
            continue
        store_rows(db.conn, changes, "backoffice", None)
