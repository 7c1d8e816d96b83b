"""The durable print queue: every completed sale gets its receipt exactly once.

A receipt job is inserted in the same transaction that completes the sale (an
in-transaction hook on the register), so a sale can never be complete without its
job, and the unique index on (sale_id, kind='receipt') means never two. The worker
sends one job at a time: it asks the printer for its status first and waits while
the paper is out, the cover is open or the printer does not answer ("no answer" is
unknown, never OK); it marks a job done only after the printer took all of it and
reported ready again. Waiting for paper never gives up; a job whose sending keeps
failing (connection errors) is marked failed with its reason and stays visible until
someone retries it. Jobs survive restarts because they are rows.

Printer-side exactly-once: ESC/POS printers buffer what they receive while the
paper is out and finish the job when paper is loaded (Epson's behaviour, which the
virtual printer reproduces), so a job that was fully transmitted is never resent.
A job whose transmission broke off (connection lost mid-job) is resent whole, with
a "REPRINT" line so the shop can tell the copies apart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from appliance.reducer import Op
from appliance.register import Register

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
Doc = dict[str, Any]


class PrinterNotReady(Exception):
    """The printer cannot take a job now (paper out, cover open, offline, no answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Printer(Protocol):
    async def ensure_ready(self) -> None:
        """Raise PrinterNotReady(reason) unless the printer can print now."""

    async def send(self, data: bytes) -> None:
        """Transmit a whole job; raise PrinterNotReady or OSError if it did not all go."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def enqueue_receipts(register: Register, ops: list[Op]) -> None:
    """In-transaction hook: a receipt job for every sale completed by these ops."""
    for op in ops:
        if op["kind"] == "sale.complete":
            register.conn.execute(
                "INSERT OR IGNORE INTO print_jobs (kind, sale_id, status, attempts, created_at)"
                " VALUES ('receipt', ?, 'queued', 0, ?)",
                (op["sale_id"], _now()),
            )


def install(register: Register) -> None:
    if enqueue_receipts not in register.in_transaction:
        register.in_transaction.append(enqueue_receipts)


def enqueue(
    register: Register, kind: str, sale_id: str | None = None, report: Doc | None = None
) -> int:
    """Queue a copy, a report or a drawer kick (receipts are queued by the hook)."""
    cur = register.conn.execute(
        "INSERT INTO print_jobs (kind, sale_id, report, status, attempts, created_at)"
        " VALUES (?, ?, ?, 'queued', 0, ?)",
        (kind, sale_id, json.dumps(report) if report else None, _now()),
    )
    return int(cur.lastrowid or 0)


def reprint_last(register: Register) -> int:
    row = register.conn.execute(
        "SELECT id FROM sales WHERE register_id = ? AND status = 'completed'"
        " ORDER BY completed_at DESC LIMIT 1",
        (register.register_id,),
    ).fetchone()
    if row is None:
        from appliance.errors import NotFound

        raise NotFound("no completed sale to reprint")
    return enqueue(register, "copy", row[0])


def jobs(register: Register, status: str | None = None, limit: int = 100) -> list[Doc]:
    sql = (
        "SELECT id, kind, sale_id, status, attempts, last_error, created_at, done_at"
        " FROM print_jobs"
    )
    params: tuple[Any, ...] = ()
    if status:
        sql += " WHERE status = ?"
        params = (status,)
    sql += " ORDER BY id DESC LIMIT ?"
    cols = ("id", "kind", "sale_id", "status", "attempts", "last_error", "created_at", "done_at")
    return [dict(zip(cols, r, strict=True)) for r in register.conn.execute(sql, (*params, limit))]


def retry(register: Register, job_id: int) -> None:
    register.conn.execute(
        "UPDATE print_jobs SET status = 'queued', attempts = 0 WHERE id = ? AND status = 'failed'",
        (job_id,),
    )


def next_job(register: Register) -> Doc | None:
    row = register.conn.execute(
        "SELECT id, kind, sale_id, report, status, attempts FROM print_jobs"
        " WHERE status IN ('queued', 'waiting', 'sending') ORDER BY id LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("id", "kind", "sale_id", "report", "status", "attempts"), row, strict=True))


def mark(register: Register, job_id: int, status: str, error: str | None = None) -> None:
    register.conn.execute(
        "UPDATE print_jobs SET status = ?, last_error = ?,"
        " attempts = attempts + (CASE WHEN ? = 'sending' AND ? IS NOT NULL THEN 1 ELSE 0 END),"
        " done_at = CASE WHEN ? = 'done' THEN ? ELSE done_at END WHERE id = ?",
        (status, error, status, error, status, _now(), job_id),
    )


Call = Callable[..., Awaitable[Any]]
Render = Callable[[Register, Doc], bytes]


class PrintWorker:
    """Sends queued jobs to one printer, one at a time, in order."""

    def __init__(self, call: Call, printer: Printer, render: Render, *, poll: float = 1.0) -> None:
        self.call = call  # RegisterService.call: runs a function on the register's thread
        self.printer = printer
        self.render = render
        self.poll = poll
        self.wakeup = asyncio.Event()
        self.last_error: str | None = None

    async def run_once(self) -> bool:
        """Try the oldest job; True if one was printed."""
        job: Doc | None = await self.call(next_job)
        if job is None:
            return False
        if job["attempts"] >= MAX_ATTEMPTS:
            await self.call(mark, job["id"], "failed", self.last_error or "too many attempts")
            return False
        resend = job["status"] == "sending"  # broke off mid-transfer last time
        data: bytes = await self.call(self.render, {**job, "resend": resend})
        try:
            await self.printer.ensure_ready()
            await self.call(mark, job["id"], "sending")
            await self.printer.send(data)
            await self.printer.ensure_ready()
        except PrinterNotReady as exc:
            self.last_error = exc.reason
            # Not ready before sending: nothing went out. After sending: the printer
            # holds the job in its buffer and finishes it once it recovers.
            await self.call(mark, job["id"], "waiting", exc.reason)
            return False
        except OSError as exc:
            self.last_error = f"printer connection: {exc}"
            await self.call(mark, job["id"], "sending", self.last_error)
            return False
        self.last_error = None
        await self.call(mark, job["id"], "done")
        return True

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.poll
        while not stop.is_set():
            try:
                printed = await self.run_once()
            except Exception:  # the queue must outlive any single bad job
                log.exception("print worker")
                printed = False
            if printed:
                delay = self.poll
                continue
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=delay)
            except TimeoutError:
                delay = min(delay * 2, 10.0) if self.last_error else self.poll
