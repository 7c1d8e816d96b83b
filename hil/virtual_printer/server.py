"""Serving the virtual printer: as a network printer (TCP), a serial printer (pty), in-process.

- ``serve_tcp``: a raw port like a printer's 9100; several connections may come and
  go, the paper and buffer are the printer's;
- ``PtyPrinter``: the printer on the master side of a pty; the register opens the
  slave path as a serial port (the slave stays open here, so it can reopen);
- ``VirtualConnection``: the in-process link the register's "simulated" printer uses;
- ``serve_control``: JSON lines a test sends to switch faults while the printer runs:
  ``{"cmd": "set", "paper": "out"}``, ``{"cmd": "state"}``, ``{"cmd": "jobs"}``,
  ``{"cmd": "printed"}``.

While the receive buffer holds more than ``MAX_BUFFER`` unprinted bytes the printer
stops reading, so the sender blocks — as a real printer's flow control does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from dataclasses import asdict
from typing import Any

from drivers.printers.connection import Connection, ConnectionSpec
from hil.json_lines import serve_json_lines, server_address
from hil.virtual_printer.device import VirtualPrinter

MAX_BUFFER = 1 << 20
BACKPRESSURE_POLL = 0.02


async def _room(printer: VirtualPrinter) -> None:
    while printer.pending_bytes > MAX_BUFFER:
        await asyncio.sleep(BACKPRESSURE_POLL)


class TcpPrinter:
    """The printer's network port; ``close()`` also drops every open link (power off)."""

    def __init__(self, printer: VirtualPrinter) -> None:
        self.printer = printer
        self.server: asyncio.Server | None = None
        self.clients: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        assert self.server is not None
        return server_address(self.server)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        printer = self.printer
        self.clients.add(writer)
        try:
            while True:
                await _room(printer)
                limit = printer.faults.disconnect_after
                data = await reader.read(4096 if limit is None else max(1, min(4096, limit)))
                if not data:
                    break
                answers = printer.receive(data)
                if answers:
                    writer.write(answers)
                    await writer.drain()
                if limit is not None:
                    with printer.lock:
                        left = limit - len(data)
                        printer.faults.disconnect_after = left if left > 0 else None
                    if left <= 0:
                        break  # the printer drops the link in the middle of the job
        except (ConnectionError, OSError):
            pass
        finally:
            self.clients.discard(writer)
            writer.close()
            printer.link_closed()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.clients):
            writer.close()
        self.clients.clear()


async def serve_tcp(printer: VirtualPrinter, host: str, port: int) -> TcpPrinter:
    tcp = TcpPrinter(printer)
    tcp.server = await asyncio.start_server(tcp._client, host, port)
    return tcp


class PtyPrinter:
    """The virtual printer behind a pty: a serial receipt printer at ``path``."""

    def __init__(self, printer: VirtualPrinter) -> None:
        self.printer = printer
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo of our status answers back to us
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resume: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.master, self._on_readable)

    def _on_readable(self) -> None:
        assert self._loop is not None
        if self.printer.pending_bytes > MAX_BUFFER:
            self._loop.remove_reader(self.master)
            self._resume = self._loop.call_later(BACKPRESSURE_POLL, self.start)
            return
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: nobody has the line open; the slave fd here keeps it alive
            return
        answers = self.printer.receive(data)
        if answers:
            with contextlib.suppress(OSError):
                os.write(self.master, answers)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.master)
        if self._resume is not None:
            self._resume.cancel()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class VirtualConnection(Connection):
    """The register's link to an in-process virtual printer: answers come back at once."""

    def __init__(self, printer: VirtualPrinter) -> None:
        super().__init__(ConnectionSpec("simulated"), timeout=0)
        self.virtual = printer
        self.inbox = bytearray()

    def open(self) -> None:
        self.printer = self.virtual

    def close(self) -> None:
        self.printer = None
        self.inbox.clear()

    def _write_some(self, data: memoryview) -> int:
        self.inbox += self.virtual.receive(bytes(data))
        return len(data)

    def read_byte(self, timeout: float) -> int | None:
        if not self.inbox:
            return None
        return self.inbox.pop(0)

    def drain(self) -> None:
        self.inbox.clear()


def control_command(printer: VirtualPrinter, req: dict[str, Any]) -> dict[str, Any]:
    cmd = req.get("cmd")
    if cmd == "state":
        return {"ok": True, **printer.state()}
    if cmd == "set":
        changes = {k: v for k, v in req.items() if k != "cmd"}
        return {"ok": True, **printer.set(**changes)}
    if cmd == "jobs":
        since = int(req.get("since", 0))
        with printer.lock:
            jobs = [
                {"number": j.number, "bytes": len(j.data), "text": j.text}
                for j in printer.jobs
                if j.number > since
            ]
        return {"ok": True, "jobs": jobs}
    if cmd == "printed":
        return {"ok": True, "text": printer.printed_text()}
    if cmd == "faults":
        return {"ok": True, **asdict(printer.faults)}
    return {"ok": False, "error": f"unknown command {cmd!r} (state, set, jobs, printed)"}


async def serve_control(printer: VirtualPrinter, host: str, port: int) -> asyncio.Server:
    return await serve_json_lines(lambda req: control_command(printer, req), host, port)
