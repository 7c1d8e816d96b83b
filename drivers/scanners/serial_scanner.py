"""Serial scanners (RS-232, USB-CDC) through pyserial, read on the event loop.

pyserial opens and configures the port (baud, bytesize, parity, stop bits from the
profile); reading is non-blocking on the port's file descriptor via the event
loop, so a silent scanner costs nothing. When the port goes away (unplugged: EIO or
the device node vanishing) the scanner reopens it with backoff, by path — use the
stable /dev/serial/by-id or udev symlink so the same scanner is found again.

Line errors: pyserial turns parity checking off (no INPCK) and does not mark errors
(no PARMRK), so a parity or framing error would arrive as an ordinary wrong byte.
The port is switched to INPCK (when the profile has parity) and PARMRK after
opening, so the kernel marks each damaged byte and the framer drops the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import random
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import serial

from drivers.scanners.events import ScanEvent
from drivers.scanners.framing import LineFramer
from drivers.scanners.stream import framed_scans

log = logging.getLogger(__name__)

PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


def resolve_port(pattern: str) -> str:
    """The port, or the one device a glob matches: a profile can say "the Honeywell
    scanner" (``/dev/scanner/serial-by-id/0c2e:*``) without naming its serial number,
    and two such scanners are an error naming both, never a silent pick of one."""
    if not any(c in pattern for c in "*?["):
        return pattern
    found = sorted(glob.glob(pattern))
    if len(found) == 1:
        return found[0]
    if not found:
        raise serial.SerialException(f"no device matches {pattern}")
    raise serial.SerialException(
        f"{len(found)} devices match {pattern} ({', '.join(found)}): name one port in the profile"
    )


@dataclass
class SerialSettings:
    port: str
    baud: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    terminator: str = "cr"
    timeout_ms: float = 100.0  # with terminator "none": the pause that ends a scan
    ack_nak: bool = False
    backoff_min_s: float = 0.2
    backoff_max_s: float = 5.0

    def __post_init__(self) -> None:
        if self.parity not in PARITIES:
            raise ValueError(f"parity {self.parity!r}: use N, E or O")
        if self.bytesize not in (5, 6, 7, 8) or self.stopbits not in (1, 1.5, 2):
            raise ValueError("bytesize must be 5-8 and stopbits 1, 1.5 or 2")


def backoff(delay: float, maximum: float) -> float:
    """The next retry delay: doubled, capped, with jitter so scanners do not retry in step."""
    return min(delay * 2, maximum) * random.uniform(0.8, 1.2)


def mark_line_errors(fd: int, parity: bool) -> None:
    """Have the kernel mark parity/framing errors and breaks in the byte stream."""
    attrs = termios.tcgetattr(fd)
    attrs[0] |= termios.PARMRK | (termios.INPCK if parity else 0)
    attrs[0] &= ~(termios.IGNPAR | termios.IGNBRK | termios.BRKINT | termios.ISTRIP)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


@dataclass
class SerialScanner:
    scanner_id: str
    settings: SerialSettings
    framer: LineFramer = field(init=False)
    reconnects: int = 0

    def __post_init__(self) -> None:
        s = self.settings
        self.framer = LineFramer(s.terminator, s.timeout_ms / 1000, s.ack_nak, parmrk=True)
        self._stop = asyncio.Event()
        self.listening = asyncio.Event()  # set while the port is open and read

    def stop(self) -> None:
        self._stop.set()

    def _open(self) -> serial.Serial:
        s = self.settings
        port = serial.Serial(
            resolve_port(s.port),
            baudrate=s.baud,
            bytesize=s.bytesize,
            parity=PARITIES[s.parity],
            stopbits=s.stopbits,
            timeout=0,
        )
        try:
            mark_line_errors(port.fileno(), s.parity != "N")
            port.reset_input_buffer()  # bytes from before we listened are not a scan
        except (OSError, termios.error):
            port.close()
            raise
        return port

    async def scans(self) -> AsyncIterator[ScanEvent]:
        """Scans until ``stop()``; survives unplugging."""
        delay = self.settings.backoff_min_s
        while not self._stop.is_set():
            try:
                port = await asyncio.to_thread(self._open)
            except (serial.SerialException, OSError, termios.error) as exc:
                log.info("scanner %s: %s not available (%s); retry in %.1fs",
                         self.scanner_id, self.settings.port, exc, delay)  # fmt: skip
                await self._sleep(delay)
                delay = backoff(delay, self.settings.backoff_max_s)
                continue
            delay = self.settings.backoff_min_s
            try:
                async for scan in self._read(port):
                    yield scan
            finally:
                port.close()
            if not self._stop.is_set():
                self.reconnects += 1
                log.warning("scanner %s: port lost, reconnecting", self.scanner_id)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _read(self, port: serial.Serial) -> AsyncIterator[ScanEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        fd = port.fileno()

        def readable() -> None:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:  # EOF/EIO: the device is gone
                loop.remove_reader(fd)
                queue.put_nowait(None)
            else:
                queue.put_nowait(data)

        def reply(answer: bytes) -> None:
            os.write(fd, answer)

        loop.add_reader(fd, readable)
        self.listening.set()
        try:
            async for scan in framed_scans(
                self.scanner_id, "serial", self.framer, queue, self._stop, reply,
                device=self.settings.port,
            ):  # fmt: skip
                yield scan
        finally:
            self.listening.clear()
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(fd)
