"""Tables of LAN sync (schema migration 6, registered in appliance/storage/db.py).

``ops.origin_seq`` numbers each register's own ops 1, 2, 3… in the order it made
them, and every copy of an op keeps the number its origin gave it. That is what the
version vectors of anti-entropy count: "I hold R3's ops 1..57 without a gap" means a
register that was away asks for exactly R3's 58 onwards, from any peer that has them.
A trigger numbers the register's own ops as they are appended, so the core's write
path stays as it is; ops merged from elsewhere arrive with their number.

``lan_peers`` remembers the registers this one has met (name, app version, address,
last seen, the saved sales they hold), so the register list can show a register that
is away now, and "sale not found" can say which register holds a sale.
"""

from __future__ import annotations

import sqlite_utils


def create(db: sqlite_utils.Database) -> None:
    """Create this feature's tables; runs once, inside the migration's transaction."""
    db.execute("ALTER TABLE ops ADD COLUMN origin_seq INTEGER")
    db.execute("CREATE INDEX ops_origin ON ops(register_id, origin_seq)")
    # Ops written before this migration: the register's own ops in the order it wrote
    # them. Ops from other registers stay unnumbered (no origin told us their number);
    # they are still merged by op id, only anti-entropy does not count them.
    own = db.execute("SELECT value FROM meta WHERE key = 'register_id'").fetchone()
    if own is not None:
        db.execute(
            "UPDATE ops SET origin_seq = (SELECT count(*) FROM ops o"
            " WHERE o.register_id = ops.register_id AND o.seq <= ops.seq)"
            " WHERE register_id = ?",
            (own[0],),
        )
    db.execute(
        """
        CREATE TRIGGER ops_origin_seq AFTER INSERT ON ops
        WHEN NEW.origin_seq IS NULL
         AND NEW.register_id = (SELECT value FROM meta WHERE key = 'register_id')
        BEGIN
            UPDATE ops SET origin_seq = (
                SELECT coalesce(max(origin_seq), 0) + 1 FROM ops
                WHERE register_id = NEW.register_id
            ) WHERE seq = NEW.seq;
        END
        """
    )
    db.create_table(
        "lan_peers",
        {
            "register_id": str,
            "name": str,
            "store_id": str,
            "version": str,
            "address": str,
            "first_seen": str,
            "last_seen": str,
            "held_sales": str,  # JSON: the saved sales it said it holds
        },
        pk="register_id",
        not_null={"store_id", "version", "first_seen", "last_seen", "held_sales"},
    )
