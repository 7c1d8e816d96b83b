"""Tables of LAN sync (schema migration 6, registered in appliance/storage/db.py)."""

from __future__ import annotations

import sqlite_utils


def create(db: sqlite_utils.Database) -> None:
    """Create this feature's tables; runs once, inside the migration's transaction."""
