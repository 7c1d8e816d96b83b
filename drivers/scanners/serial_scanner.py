"""Serial scanners (RS-232, USB-CDC) through pyserial, read on the event loop.

pyserial opens and configures the port (baud, bytesize, parity, stop bits from the
profile); reading is non-blocking on the port's file descriptor via the event
loop, so a silent scanner costs nothing. When the port goes away (unplugged: EIO or
the device node vanishing) the scanner reopens it with backoff, by path — use the
stable /dev/serial/by-id or udev symlink so the same scanner is found again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import serial

from drivers.scanners.events import ScanEvent
from drivers.scanners.framing import LineFramer

log = logging.getLogger(__name__)

PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


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


@dataclass
class SerialScanner:
    scanner_id: str
    settings: SerialSettings
    framer: LineFramer = field(init=False)
    reconnects: int = 0

    def __post_init__(self) -> None:
        s = self.settings
        self.framer = LineFramer(s.terminator, s.timeout_ms / 1000, s.ack_nak)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def _open(self) -> serial.Serial:
        s = self.settings
        port = serial.Serial(
            s.port,
            baudrate=s.baud,
            bytesize=s.bytesize,
            parity=PARITIES[s.parity],
            stopbits=s.stopbits,
            timeout=0,
        )
        return port

    async def scans(self) -> AsyncIterator[ScanEvent]:
        """Scans until ``stop()``; survives unplugging."""
        delay = self.settings.backoff_min_s
        while not self._stop.is_set():
            try:
                port = await asyncio.to_thread(self._open)
            except (serial.SerialException, OSError) as exc:
                log.info("scanner %s: %s not available (%s); retry in %.1fs",
                         self.scanner_id, self.settings.port, exc, delay)  # fmt: skip
                await self._sleep(delay)
                delay = min(delay * 2, self.settings.backoff_max_s) * random.uniform(0.8, 1.2)
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

        loop.add_reader(fd, readable)
        stop_wait = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {get, stop_wait},
                    timeout=self.settings.timeout_ms / 1000,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                now = time.monotonic()
                if get not in done:
                    get.cancel()
                    result = self.framer.flush(now)
                    for data in result.scans:
                        yield ScanEvent(self.scanner_id, data, now, "serial")
                    if stop_wait in done:
                        return
                    continue
                chunk = get.result()
                if chunk is None:
                    return
                result = self.framer.feed(chunk, now)
                for reply in result.replies:
                    with contextlib.suppress(OSError):
                        os.write(fd, reply)
                for data in result.scans:
                    yield ScanEvent(self.scanner_id, data, now, "serial")
        finally:
            stop_wait.cancel()
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(fd)
