"""Printing in the running register: the configured printer, its worker, the drawer.

Built by ``feature.attach`` when ``printer.connection`` is not "none":

- on the register's thread at open: the in-transaction hook that queues receipts
  (and Z reports), a listener that wakes the worker and kicks the drawer after a
  cash sale, and recovery of a job caught in "sending" by a restart;
- at start: the worker task. The printer itself (python-escpos for real devices,
  the in-process virtual printer for "simulated") is built inside that task, off the
  start-up path: its import cost never delays the register being ready.

The drawer is kicked at once when a sale paid (partly) in cash completes, and on
demand — never through the queue: a drawer that springs open minutes later, when a
stuck printer recovers, would be worse than one that did not open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.config import Config
from appliance.errors import ApplianceError, Conflict
from appliance.printing import queue
from appliance.printing.receipt import ReceiptSettings
from appliance.reducer import Op
from appliance.register import Register
from appliance.service import RegisterService
from drivers.printers.profiles import PrinterProfile, load_profile

if TYPE_CHECKING:
    from drivers.printers.printer import ReceiptPrinter
    from hil.virtual_printer.device import VirtualPrinter

log = logging.getLogger(__name__)
Doc = dict[str, Any]


class PrinterUnavailable(ApplianceError):
    code = "printer_unavailable"
    http_status = 503


def render_job(profile: PrinterProfile, settings: ReceiptSettings, job: Doc, doc: Doc) -> bytes:
    """A queued job's bytes: receipt, COPY, or report."""
    from appliance.printing.receipt import receipt_bytes, report_bytes

    if job["kind"] == "report":
        return report_bytes(doc, str(doc.get("title", "REPORT")), profile, settings)
    return receipt_bytes(
        doc, profile, settings, copy=job["kind"] == "copy", resent=bool(job["interrupted"])
    )


def build_printer(
    config: Config, profile: PrinterProfile
) -> tuple[ReceiptPrinter, VirtualPrinter | None]:
    """The configured printer (blocking: may import python-escpos; run it off the loop)."""
    from drivers.printers.printer import EscPosPrinter

    cfg = config.printer
    if cfg.connection == "simulated":
        from hil.virtual_printer.device import VirtualPrinter
        from hil.virtual_printer.server import VirtualConnection

        virtual = VirtualPrinter(profile, config.data_dir / "printer")
        virtual.faults.drawer_closes_after = 5.0  # the cashier shuts the drawer again
        return EscPosPrinter(VirtualConnection(virtual), profile), virtual
    from drivers.printers.connection import load_escpos, open_connection, parse_spec

    load_escpos(config.data_dir / "escpos-cache")
    spec = parse_spec(cfg.connection, profile.usb_id)
    connection = open_connection(spec, timeout=cfg.timeout_seconds, baudrate=cfg.baudrate)
    return EscPosPrinter(connection, profile, cfg.status_timeout_seconds), None


class PrintingService:
    def __init__(self, config: Config, service: RegisterService) -> None:
        self.config = config
        self.cfg = config.printer
        self.service = service
        self.profile = load_profile(self.cfg.profile)
        self.settings = ReceiptSettings.from_config(config)
        self.printer: ReceiptPrinter | None = None
        self.virtual: VirtualPrinter | None = None
        self.worker: queue.PrintWorker | None = None
        self.error: str | None = None  # why the printer could not be set up
        self.drawer: Doc = {"kicks": 0, "last_kick_at": None, "last_error": None}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._kicks: set[asyncio.Future[None]] = set()

    # on the register's thread --------------------------------------------------------
    def on_open(self, register: Register) -> None:
        from appliance import settings

        settings.watch(register, self.new_settings)
        z_reports = self.cfg.print_z_on_close

        def hook(reg: Register, ops: list[Op]) -> None:
            queue.enqueue_from_ops(reg, ops, z_reports)

        register.in_transaction.append(hook)
        register.listeners.append(lambda ops: self._committed(register, ops))
        recovered = queue.recover(register)
        if recovered:
            log.warning("%d print job(s) were being sent when the register stopped", recovered)

    def new_settings(self, config: Config) -> None:
        """Receipt header/footer and the printer profile, live (appliance/settings.py):
        the next job renders with them."""
        if config.printer.profile != self.cfg.profile:
            self.profile = load_profile(config.printer.profile)
            if self.printer is not None and hasattr(self.printer, "profile"):
                self.printer.profile = self.profile
        self.config, self.cfg = config, config.printer
        self.settings = ReceiptSettings.from_config(config)

    def _committed(self, register: Register, ops: list[Op]) -> None:
        kinds = {op["kind"] for op in ops}
        if not kinds & {"sale.complete", "shift.close"} or self._loop is None:
            return
        cash = any(
            op["kind"] == "sale.complete"
            and op["register_id"] == register.register_id
            and any(t["kind"] == "cash" for t in op["payload"]["snapshot"]["tenders"])
            for op in ops
        )
        self._loop.call_soon_threadsafe(self._after_commit, cash and self.cfg.drawer_on_cash)

    def _after_commit(self, kick: bool) -> None:
        self._wanted.set()
        if self.worker is not None:
            self.worker.wake()
        if kick:
            task = asyncio.ensure_future(self._kick_quietly())
            self._kicks.add(task)
            task.add_done_callback(self._kicks.discard)

    async def _kick_quietly(self) -> None:
        try:
            await self.kick_drawer()
        except Exception as exc:  # the sale is done either way; the status shows it
            log.warning("cash drawer did not open: %s", exc)

    # lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="print-worker")

    async def _run(self) -> None:
        # Build the printer once the register is serving (or as soon as something needs
        # it): its imports — python-escpos costs ~0.35 s of CPU — must not compete
        # with start-up.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wanted.wait(), timeout=min(self.cfg.poll_seconds, 1.0))
        try:
            printer, virtual = await asyncio.to_thread(build_printer, self.config, self.profile)
        except Exception as exc:
            self.error = f"printer {self.cfg.connection!r} cannot be used: {exc}"
            log.error("%s", self.error)
            self._ready.set()
            return
        self.printer, self.virtual = printer, virtual
        self.worker = queue.PrintWorker(
            self.service.call,
            printer,
            lambda job, doc: render_job(self.profile, self.settings, job, doc),
            poll=self.cfg.poll_seconds,
            max_attempts=self.cfg.max_attempts,
        )
        self._ready.set()
        await self.worker.run(self._stop)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=self.cfg.timeout_seconds + 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        if self.printer is not None:
            with contextlib.suppress(Exception):
                await self.printer.close()

    async def ready_printer(self) -> ReceiptPrinter:
        """The printer once it is set up (start-up builds it in the background)."""
        self._wanted.set()
        await asyncio.wait_for(self._ready.wait(), timeout=self.cfg.timeout_seconds + 5)
        if self.printer is None:
            raise PrinterUnavailable(self.error or "no printer")
        return self.printer

    # what the routes do ------------------------------------------------------------------
    async def status(self) -> Doc:
        counts = await self.service.call(queue.counts)
        worker = self.worker
        status = worker.status.to_dict() if worker else None
        return {
            "connection": self.cfg.connection,
            "profile": self.profile.key,
            "model": self.profile.name,
            "columns": self.profile.columns,
            "printer": status,
            "checked_at": worker.checked_at if worker else None,
            "error": self.error,
            "jobs": counts,
            "drawer": dict(self.drawer),
        }

    async def refresh(self) -> Doc:
        if self.worker is not None:
            await self.worker.poll_status()
        return await self.status()

    async def redetect(self) -> Doc:
        """Close the printer's link and ask it for its status on a fresh one (an admin's
        "re-detect": a printer plugged back in or switched on)."""
        if self.printer is None:
            self._wanted.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout=self.cfg.timeout_seconds + 5)
        counts = await self.service.call(queue.counts)
        reconnect = getattr(self.printer, "reconnect", None)
        if reconnect is not None and not counts.get("sending"):  # never cut a job
            with contextlib.suppress(Exception):
                await reconnect()
        return await self.refresh()

    async def kick_drawer(self, pin: int | None = None) -> Doc:
        printer = await self.ready_printer()
        pin = pin or self.cfg.drawer_pin
        from drivers.printers.connection import PrinterUnreachable, TransmitError

        try:
            await printer.kick(pin)
        except (PrinterUnreachable, TransmitError, OSError) as exc:
            self.drawer["last_error"] = str(exc)
            raise PrinterUnavailable(f"the drawer did not open: {exc}") from None
        from appliance.printing.queue import _now

        self.drawer.update(kicks=self.drawer["kicks"] + 1, last_kick_at=_now(), last_error=None)
        return {"pin": pin, **self.drawer}

    async def set_simulated(self, **faults: Any) -> Doc:
        await self.ready_printer()
        if self.virtual is None:
            raise Conflict(
                "the printer is not the simulated one: its faults are real",
                field="printer.connection",
            )
        try:
            state = self.virtual.set(**faults)
        except ValueError as exc:
            from appliance.errors import ValidationError

            raise ValidationError(str(exc), field="body") from None
        if self.worker is not None:
            self.worker.wake()
        return state

    def jobs_dir(self) -> Path | None:
        return self.virtual.jobs_dir if self.virtual is not None else None
