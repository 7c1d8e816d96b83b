"""One receipt printer as the register uses it: status, jobs and drawer kicks, async.

Every device call runs on the printer's own thread (one at a time, in order), so a
slow serial line or a printer that never answers never blocks the event loop.

A job counts as handed over only when the printer answered a status request *after*
the last byte of the job on the same link: a real-time request is answered on
receipt, so the answer proves everything before it arrived. A job whose link broke,
or whose printer stayed silent afterwards, is reported as not (surely) transmitted,
and the queue sends it again rather than risk a receipt that never printed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from drivers.printers.connection import Connection, PrinterUnreachable, TransmitError
from drivers.printers.profiles import PrinterProfile
from drivers.printers.status import (
    NO_STATUS,
    PrinterStatus,
    is_status_byte,
    parse_status,
    status_request,
    unknown,
)
from drivers.printers.writer import drawer_pulse

T = TypeVar("T")


class ReceiptPrinter(Protocol):
    description: str
    profile: PrinterProfile

    async def status(self) -> PrinterStatus:
        """What the printer says about itself now; unknown when it does not answer."""

    async def send(self, data: bytes) -> PrinterStatus:
        """Transmit a whole job; the status read right after it.

        Raises PrinterUnreachable when nothing was sent, TransmitError when the job
        broke off or was not confirmed (``sent`` says how much went out)."""

    async def kick(self, pin: int) -> None:
        """Pulse the cash drawer on connector pin 2 or 5, now."""

    async def close(self) -> None: ...


class EscPosPrinter:
    """A ReceiptPrinter over one Connection (network, serial, USB or the virtual printer)."""

    def __init__(
        self, connection: Connection, profile: PrinterProfile, status_timeout: float = 0.5
    ) -> None:
        self.connection = connection
        self.profile = profile
        self.status_timeout = status_timeout
        self.description = connection.spec.describe()
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="printer-io")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def status(self) -> PrinterStatus:
        return await self._run(self._status)

    async def send(self, data: bytes) -> PrinterStatus:
        return await self._run(self._send, data)

    async def kick(self, pin: int) -> None:
        await self._run(self._kick, drawer_pulse(pin, realtime=self.profile.realtime_pulse))

    async def reconnect(self) -> None:
        """Close the link; the next status or job opens it afresh (finds the device again)."""
        await self._run(self.connection.close)

    async def close(self) -> None:
        await self._run(self.connection.close)
        self._io.shutdown(wait=False)

    # on the printer's thread -------------------------------------------------------
    def _fresh_link(self) -> None:
        """Open the link; reopen it once if the printer closed it since (nothing sent yet).

        Raises PrinterUnreachable when it cannot be opened."""
        try:
            self.connection.open()
            self.connection.drain()
        except PrinterUnreachable:
            raise
        except OSError:
            self.connection.close()
            self.connection.open()

    def _query(self) -> PrinterStatus:
        """DLE EOT 1, 2, 4 (and 3 on an error); raises OSError when the link fails."""
        conn = self.connection
        conn.drain()
        answers: dict[int, int | None] = {}
        for n in (1, 2, 4):
            conn.write(status_request(n))
            answers[n] = conn.read_byte(self.status_timeout)
            if answers[n] is None or not is_status_byte(answers[n] or 0):
                break
        offline = answers.get(2)
        if offline is not None and is_status_byte(offline) and offline & 0x40:
            conn.write(status_request(3))
            answers[3] = conn.read_byte(self.status_timeout)
        return parse_status(answers, self.profile.drawer_open_level)

    def _status(self) -> PrinterStatus:
        try:
            self._fresh_link()
            if not self.profile.status:
                return NO_STATUS
            return self._query()
        except PrinterUnreachable as exc:
            return unknown(str(exc))
        except OSError as exc:
            self.connection.close()
            return unknown(f"{self.description}: {exc}")

    def _kick(self, pulse: bytes) -> None:
        self._fresh_link()
        self.connection.write(pulse)

    def _send(self, data: bytes) -> PrinterStatus:
        self._fresh_link()
        self.connection.write(data)
        if not self.profile.status:
            return NO_STATUS
        try:
            after = self._query()
        except OSError as exc:
            self.connection.close()
            raise TransmitError(
                f"{self.description}: link lost right after the job: {exc}", len(data)
            ) from None
        if not after.known:
            self.connection.close()
            raise TransmitError(
                f"{self.description}: the printer did not confirm the job ({after.reason})",
                len(data),
            )
        return after
