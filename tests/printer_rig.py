"""A virtual receipt printer on real loopback sockets (and ptys) for the printing tests.

The printer runs on its own asyncio loop in a background thread of the test process,
serving ESC/POS on a TCP port and its control channel on another, exactly as
`hil printer --listen … --control …` does; the register under test talks to it over
the socket. ``stop()``/``start()`` take the port away and give it back (a printer
switched off and on).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.printers.profiles import load_profile
from hil.virtual_printer.device import VirtualPrinter
from hil.virtual_printer.server import (
    PtyPrinter,
    TcpPrinter,
    serve_control,
    serve_tcp,
    server_address,
)


def wait_until(
    check: Callable[[], Any], timeout: float = 10.0, what: str = "condition", step: float = 0.02
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def barcode_count(text: str, receipt_no: str) -> int:
    """How many times the receipt's barcode was printed (one per complete receipt)."""
    return len(re.findall(rf"\[CODE128 RCPT{re.escape(receipt_no)}\]", text))


class PrinterRig:
    def __init__(self, jobs_dir: Path, profile: str = "epson-tm-t88v", pty: bool = False) -> None:
        self.printer = VirtualPrinter(load_profile(profile), jobs_dir)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = 0
        self.tcp: TcpPrinter | None = None
        self.pty: PtyPrinter | None = None
        self.control_address = self._run(self._control())
        if pty:
            self.pty = self._run(self._pty())
        else:
            self.start()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _control(self) -> str:
        server = await serve_control(self.printer, "127.0.0.1", 0)
        return server_address(server)

    async def _pty(self) -> PtyPrinter:
        pty = PtyPrinter(self.printer)
        pty.start()
        return pty

    async def _listen(self) -> None:
        self.tcp = await serve_tcp(self.printer, "127.0.0.1", self.port)
        self.port = int(self.tcp.address.rpartition(":")[2])

    async def _close(self) -> None:
        if self.tcp is not None:
            self.tcp.close()
            self.tcp = None

    @property
    def connection(self) -> str:
        if self.pty is not None:
            return f"serial:{self.pty.path}"
        return f"tcp:127.0.0.1:{self.port}"

    def start(self) -> None:
        self._run(self._listen())

    def stop(self) -> None:
        self._run(self._close())

    def set(self, **faults: Any) -> dict[str, Any]:
        return self.printer.set(**faults)

    def printed(self) -> str:
        return self.printer.printed_text()

    def close(self) -> None:
        self.stop()
        if self.pty is not None:
            self.loop.call_soon_threadsafe(self.pty.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
