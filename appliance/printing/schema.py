"""Tables of the print queue (schema migration 5, registered in appliance/storage/db.py)."""

from __future__ import annotations

import sqlite_utils


def create(db: sqlite_utils.Database) -> None:
    """print_jobs: one row per thing to print, durable before it is sent.

    kind: receipt (one per completed sale, inserted with the completion) | copy
    (a reprint, printed with COPY) | report (an X/Z report; ``report`` holds it).
    status: queued → sending → sent → done; back to queued when a transmission
    breaks off (``interrupted`` = 1: the resend says so), failed after
    ``attempts`` broken transmissions (visible with ``last_error``, retryable).
    While the printer cannot print, the head job stays queued (or sent) and
    ``last_error`` says why it waits.
    """
    db.create_table(
        "print_jobs",
        {
            "id": int,
            "kind": str,
            "sale_id": str,
            "report": str,
            "status": str,
            "attempts": int,
            "interrupted": int,
            "last_error": str,
            "created_at": str,
            "updated_at": str,
            "sent_at": str,
            "done_at": str,
        },
        pk="id",
        not_null={"kind", "status", "attempts", "interrupted", "created_at"},
        defaults={"attempts": 0, "interrupted": 0},
    )
    db.execute("CREATE INDEX print_jobs_status ON print_jobs(status, id)")
    db.execute(
        "CREATE UNIQUE INDEX print_jobs_receipt ON print_jobs(sale_id) WHERE kind = 'receipt'"
    )


def add_request_ids(db: sqlite_utils.Database) -> None:
    """Migration 9: ``request_id`` — the id a client gave its print request (a press of
    "Print a copy"), unique, so a request sent twice (a retry after a lost answer)
    queues one job."""
    db.execute("ALTER TABLE print_jobs ADD COLUMN request_id TEXT")
    db.execute(
        "CREATE UNIQUE INDEX print_jobs_request ON print_jobs(request_id)"
        " WHERE request_id IS NOT NULL"
    )
