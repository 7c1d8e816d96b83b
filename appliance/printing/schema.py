"""Tables of the print queue (schema migration 5, registered in appliance/storage/db.py)."""

from __future__ import annotations

import sqlite_utils


def create(db: sqlite_utils.Database) -> None:
    """print_jobs: one row per thing to print, durable before it is sent.

    status: queued → sending → done, or waiting (printer not ready; retried) and
    failed (given up after repeated errors; visible with its reason, retryable).
    """
    db.create_table(
        "print_jobs",
        {
            "id": int,
            "kind": str,  # receipt | copy | report | drawer
            "sale_id": str,
            "report": str,  # JSON of an X/Z report for kind=report
            "status": str,
            "attempts": int,
            "last_error": str,
            "created_at": str,
            "done_at": str,
        },
        pk="id",
        not_null={"kind", "status", "attempts", "created_at"},
        defaults={"attempts": 0},
    )
    db.execute("CREATE INDEX print_jobs_status ON print_jobs(status, id)")
    db.execute(
        "CREATE UNIQUE INDEX print_jobs_receipt ON print_jobs(sale_id) WHERE kind = 'receipt'"
    )
