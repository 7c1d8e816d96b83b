"""The durable print queue: every completed sale gets its receipt exactly once.

A receipt job is inserted in the same transaction that completes the sale (an
in-transaction hook on the register), so a sale can never be complete without its
job, and the unique index on (sale_id, kind='receipt') means never two. The same
hook queues the Z report when a shift closes.

The worker takes the oldest unfinished job and moves it along

    queued ──(printer ready)──> sending ──(printer confirmed)──> sent ──(ready)──> done

- It sends nothing while the printer is not ready: paper out, cover open, offline,
  or no answer / a garbage answer to DLE EOT ("unknown" is never "OK"). The job
  waits, with the reason in ``last_error``, as long as it takes.
- ``sent`` means the printer answered a status request after the job's last byte,
  on the same link: it holds the whole job. A job in ``sent`` is never sent again —
  a printer whose paper ran out in the middle buffers the rest and finishes it when
  paper is loaded (Epson behaviour, reproduced by the virtual printer); the job is
  ``done`` once the printer reports ready again.
- A transmission that broke off (link lost, no confirmation) puts the job back to
  ``queued`` with ``interrupted`` set: it is sent again whole, with a line saying the
  first print was interrupted, so the shop can tell the torn part from the receipt.
  After ``max_attempts`` broken transmissions it is ``failed`` with its reason,
  visible until someone retries it. A job that cannot be rendered fails at once.
- Jobs are rows, so they survive a restart. A job found in ``sending`` at start was
  in the air when the register stopped: it is sent again, marked interrupted. (The
  one window left is a crash after the last byte and before ``sent`` is recorded:
  that receipt prints twice, the second marked. Losing it instead would be worse.)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from appliance.errors import Conflict, NotFound
from appliance.reducer import Op
from appliance.register import Register
from drivers.printers.connection import PrinterUnreachable, TransmitError
from drivers.printers.status import PrinterStatus, unknown

if TYPE_CHECKING:
    from drivers.printers.printer import ReceiptPrinter

log = logging.getLogger(__name__)

Doc = dict[str, Any]
KINDS = ("receipt", "copy", "report")
STATUSES = ("queued", "sending", "sent", "done", "failed", "skipped")
COLUMNS = (
    "id", "kind", "sale_id", "status", "attempts", "interrupted", "last_error",
    "created_at", "updated_at", "sent_at", "done_at", "request_id",
)  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# on the register's thread: the queue's rows --------------------------------------------
def enqueue_from_ops(register: Register, ops: list[Op], z_reports: bool = True) -> None:
    """In-transaction hook: a receipt for every sale this register completed in ``ops``,
    and the Z report of a shift it closed."""
    for op in ops:
        if op["register_id"] != register.register_id:
            continue
        if op["kind"] == "sale.complete":
            register.conn.execute(
                "INSERT OR IGNORE INTO print_jobs (kind, sale_id, status, created_at)"
                " VALUES ('receipt', ?, 'queued', ?)",
                (op["sale_id"], _now()),
            )
        elif op["kind"] == "shift.close" and z_reports:
            shift = register.state.get_shift(op["payload"]["shift_id"])
            if shift and shift.get("z_report"):
                report = {**shift["z_report"], "title": f"Z REPORT {shift['z_report']['z_no']}"}
                enqueue(register, "report", report=report)


def enqueue(
    register: Register,
    kind: str,
    sale_id: str | None = None,
    report: Doc | None = None,
    request_id: str | None = None,
) -> int:
    """Queue a copy or a report (receipts are queued by the hook, with their sale).

    With ``request_id`` (the client's id for one press of a button) a request that
    arrives again returns the job it queued the first time: one job per request."""
    if kind not in KINDS:
        raise ValueError(f"unknown print job kind {kind!r}")
    if request_id is not None:
        row = register.conn.execute(
            "SELECT id FROM print_jobs WHERE request_id = ?", (request_id,)
        ).fetchone()
        if row is not None:
            return int(row[0])
    if report is not None:
        report = {"requested_at": _now(), **report}
    cur = register.conn.execute(
        "INSERT INTO print_jobs (kind, sale_id, report, status, created_at, request_id)"
        " VALUES (?, ?, ?, 'queued', ?, ?)",
        (kind, sale_id, json.dumps(report) if report is not None else None, _now(), request_id),
    )
    return int(cur.lastrowid or 0)


def reprint_last(register: Register, request_id: str | None = None) -> int:
    """Queue a COPY of this register's last completed receipt (sale or refund)."""
    row = register.conn.execute(
        "SELECT id FROM sales WHERE register_id = ? AND status = 'completed'"
        " ORDER BY completed_at DESC, receipt_no DESC LIMIT 1",
        (register.register_id,),
    ).fetchone()
    if row is None:
        raise NotFound("no completed sale on this register to reprint", field="sale_id")
    return enqueue(register, "copy", row[0], request_id=request_id)


def choose_receipt(register: Register, sale_id: str, wanted: bool) -> Doc | None:
    """The customer's choice: a receipt or none ("no receipt" at the counter).

    Before the sale completes, "none" puts its receipt row in place as ``skipped``, so
    the completion's ``INSERT OR IGNORE`` (same unique index) adds no job: nothing is
    ever sent. After it completes, "none" skips the job only while nothing of it was
    sent. Asking for the receipt turns a skipped job back to ``queued``: one receipt,
    however often it is asked for. Returns the sale's receipt job (None: no row).
    """
    sale = register.sale(sale_id)
    if (sale.get("holder") or sale["register_id"]) != register.register_id:
        raise Conflict(f"sale {sale_id} is not this register's to print", field="sale_id")
    row = register.conn.execute(
        "SELECT id, status, attempts FROM print_jobs WHERE sale_id = ? AND kind = 'receipt'",
        (sale_id,),
    ).fetchone()
    now = _now()
    if wanted:
        if row is not None and row[1] == "skipped":
            if sale["status"] == "completed":
                register.conn.execute(
                    "UPDATE print_jobs SET status = 'queued', updated_at = ? WHERE id = ?",
                    (now, row[0]),
                )
            else:  # not complete yet: completing it queues the receipt as usual
                register.conn.execute("DELETE FROM print_jobs WHERE id = ?", (row[0],))
                return None
    elif row is None:
        if sale["status"] not in ("open", "parked"):
            raise Conflict(
                f"sale {sale_id} is {sale['status']}: it has no receipt", field="sale_id"
            )
        register.conn.execute(
            "INSERT INTO print_jobs (kind, sale_id, status, created_at, updated_at)"
            " VALUES ('receipt', ?, 'skipped', ?, ?)",
            (sale_id, now, now),
        )
    elif row[1] == "queued" and row[2] == 0:
        register.conn.execute(
            "UPDATE print_jobs SET status = 'skipped', updated_at = ? WHERE id = ?", (now, row[0])
        )
    elif row[1] != "skipped":
        raise Conflict(
            f"the receipt of sale {sale_id} is already {row[1]}: it cannot be held back",
            field="sale_id",
        )
    found = register.conn.execute(
        "SELECT id FROM print_jobs WHERE sale_id = ? AND kind = 'receipt'", (sale_id,)
    ).fetchone()
    return job(register, found[0]) if found else None


def print_x_report(register: Register) -> int:
    report = register.x_report()
    return enqueue(register, "report", report={**report, "title": "X REPORT"})


def print_z_report(register: Register, number: int | None = None) -> int:
    report = register.z_report(number)
    return enqueue(register, "report", report={**report, "title": f"Z REPORT {report['z_no']}"})


def _row(row: tuple[Any, ...]) -> Doc:
    job = dict(zip(COLUMNS, row, strict=True))
    job["interrupted"] = bool(job["interrupted"])
    return job


def jobs(register: Register, status: str | None = None, limit: int = 100) -> list[Doc]:
    """Newest first; ``last_error`` is why a job waits or failed."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM print_jobs"
    params: tuple[Any, ...] = ()
    if status:
        sql += " WHERE status = ?"
        params = (status,)
    sql += " ORDER BY id DESC LIMIT ?"
    return [_row(r) for r in register.conn.execute(sql, (*params, limit))]


def job(register: Register, job_id: int) -> Doc:
    row = register.conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM print_jobs WHERE id = ?", (job_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no print job {job_id}", field="job_id", value=job_id)
    return _row(row)


def counts(register: Register) -> dict[str, int]:
    rows = register.conn.execute("SELECT status, count(*) FROM print_jobs GROUP BY status")
    found = dict.fromkeys(STATUSES, 0)
    found.update({status: n for status, n in rows})
    return found


def retry(register: Register, job_id: int) -> Doc:
    current = job(register, job_id)
    if current["status"] != "failed":
        raise Conflict(
            f"print job {job_id} is {current['status']}: only a failed job can be retried",
            field="job_id",
        )
    register.conn.execute(
        "UPDATE print_jobs SET status = 'queued', attempts = 0, updated_at = ? WHERE id = ?",
        (_now(), job_id),
    )
    return job(register, job_id)


def next_job(register: Register) -> Doc | None:
    row = register.conn.execute(
        "SELECT id, kind, sale_id, report, status, attempts, interrupted, last_error"
        " FROM print_jobs WHERE status IN ('queued', 'sending', 'sent') ORDER BY id LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    keys = ("id", "kind", "sale_id", "report", "status", "attempts", "interrupted", "last_error")
    return dict(zip(keys, row, strict=True))


def load_document(register: Register, job: Doc) -> Doc:
    """What a job prints: the sale (receipt, copy) or the report, read on the DB thread."""
    if job["kind"] == "report":
        return json.loads(job["report"]) if job["report"] else {}
    return register.sale(job["sale_id"])


def recover(register: Register) -> int:
    """At start: jobs caught in ``sending`` go out again, marked interrupted."""
    cur = register.conn.execute(
        "UPDATE print_jobs SET status = 'queued', interrupted = 1, updated_at = ?,"
        " last_error = 'the register stopped while sending this job' WHERE status = 'sending'",
        (_now(),),
    )
    return cur.rowcount


def set_status(register: Register, job_id: int, status: str) -> None:
    """queued/sending/sent/done; reaching sent or done stamps the time (done also sent_at
    when the job went from sending straight to done: one write, one fsync)."""
    stamps = {
        "sent": ", sent_at = :now, last_error = NULL",
        "done": ", sent_at = coalesce(sent_at, :now), done_at = :now, last_error = NULL",
    }
    register.conn.execute(
        f"UPDATE print_jobs SET status = :status, updated_at = :now{stamps.get(status, '')}"
        " WHERE id = :id",
        {"status": status, "now": _now(), "id": job_id},
    )


def note_waiting(register: Register, job_id: int, reason: str) -> None:
    register.conn.execute(
        "UPDATE print_jobs SET last_error = ?, updated_at = ? WHERE id = ? AND last_error IS NOT ?",
        (reason, _now(), job_id, reason),
    )


def transmission_failed(
    register: Register, job_id: int, reason: str, interrupted: bool, max_attempts: int
) -> str:
    """Count a broken transmission: back to queued, or failed after ``max_attempts``."""
    attempts = register.conn.execute(
        "SELECT attempts FROM print_jobs WHERE id = ?", (job_id,)
    ).fetchone()[0]
    status = "failed" if attempts + 1 >= max_attempts else "queued"
    register.conn.execute(
        "UPDATE print_jobs SET status = ?, attempts = attempts + 1, last_error = ?,"
        " interrupted = max(interrupted, ?), updated_at = ? WHERE id = ?",
        (status, reason, 1 if interrupted else 0, _now(), job_id),
    )
    return status


def fail(register: Register, job_id: int, reason: str) -> None:
    register.conn.execute(
        "UPDATE print_jobs SET status = 'failed', last_error = ?, updated_at = ? WHERE id = ?",
        (reason, _now(), job_id),
    )


# the worker ----------------------------------------------------------------------------
Call = Callable[..., Awaitable[Any]]
Render = Callable[[Doc, Doc], bytes]  # (job, its document) -> ESC/POS bytes


class PrintWorker:
    """Sends queued jobs to one printer, one at a time, oldest first; polls its status."""

    def __init__(
        self,
        call: Call,
        printer: ReceiptPrinter,
        render: Render,
        *,
        poll: float = 2.0,
        max_attempts: int = 5,
    ) -> None:
        self.call = call  # RegisterService.call: runs a function on the register's thread
        self.printer = printer
        self.render = render
        self.poll = poll
        self.max_attempts = max_attempts
        self.wakeup = asyncio.Event()
        self.status: PrinterStatus = unknown("not asked yet")
        self.checked_at: str | None = None

    def wake(self) -> None:
        self.wakeup.set()

    async def poll_status(self) -> PrinterStatus:
        self.status = await self.printer.status()
        self.checked_at = _now()
        return self.status

    async def run_once(self) -> bool:
        """Move the oldest job one step; True when there may be more to do at once."""
        status = await self.poll_status()
        job: Doc | None = await self.call(next_job)
        if job is None:
            return False
        if job["status"] == "sent":
            if status.ready:
                await self.call(set_status, job["id"], "done")
                return True
            await self.call(note_waiting, job["id"], f"printing stopped: {status.reason}")
            return False
        if not status.ready:
            await self.call(note_waiting, job["id"], f"waiting: {status.reason}")
            return False
        try:
            document = await self.call(load_document, job)
            data = await asyncio.to_thread(self.render, job, document)
        except Exception as exc:  # a job that cannot be rendered will never print
            log.exception("print job %s cannot be rendered", job["id"])
            await self.call(fail, job["id"], f"cannot render: {type(exc).__name__}: {exc}")
            return True
        await self.call(set_status, job["id"], "sending")
        try:
            after = await self.printer.send(data)
        except PrinterUnreachable as exc:  # nothing went out: like "offline", just wait
            await self.call(set_status, job["id"], "queued")
            await self.call(note_waiting, job["id"], f"waiting: {exc}")
            return False
        except Exception as exc:  # TransmitError, or a driver failing in its own way
            sent = getattr(exc, "sent", 1)  # unknown: assume some of it went out
            reason = str(exc) if isinstance(exc, TransmitError) else f"printer driver: {exc!r}"
            outcome = await self.call(
                transmission_failed, job["id"], reason, sent > 0, self.max_attempts
            )
            log.warning("print job %s: %s (%s)", job["id"], reason, outcome)
            return False
        self.status = after
        await self.call(set_status, job["id"], "done" if after.ready else "sent")
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wakeup.clear()  # a wake from here on (a sale completing) is not lost
            try:
                busy = await self.run_once()
            except Exception:  # the queue must outlive any single bad job or printer
                log.exception("print worker")
                busy = False
            if busy:
                continue
            waits = [asyncio.ensure_future(self.wakeup.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waits, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
