"""From chunks of bytes (a serial port's reads, a BLE characteristic's notifications)
to scans, for as long as the link lasts.

The serial and BLE drivers differ in how bytes arrive, not in what happens to them:
both put chunks on a queue (``None`` when the link is lost) and read scans from
:func:`framed_scans`, which frames them, answers ACK/NAK when asked to, flushes on
silence (a pause ends a terminator-less scan; a stale partial frame is noise) and
stops when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from drivers.scanners.events import ScanEvent
from drivers.scanners.framing import STALE_S, LineFramer


async def framed_scans(
    scanner_id: str,
    source: str,
    framer: LineFramer,
    chunks: asyncio.Queue[bytes | None],
    stop: asyncio.Event,
    reply: Callable[[bytes], None] | None = None,
    device: str = "",
) -> AsyncIterator[ScanEvent]:
    """Scans from ``chunks`` until the link ends (``None``) or ``stop`` is set.

    When the link ends, a frame in progress is dropped as noise: it can never be
    completed, and the next connection starts clean.
    """
    idle_s = min(framer.timeout_s if framer.terminator == "none" else STALE_S, STALE_S)
    stop_wait = asyncio.ensure_future(stop.wait())
    try:
        while True:
            get = asyncio.ensure_future(chunks.get())
            done, _ = await asyncio.wait(
                {get, stop_wait}, timeout=idle_s, return_when=asyncio.FIRST_COMPLETED
            )
            now = time.monotonic()
            if get not in done:
                get.cancel()
                for data in framer.flush(now).scans:
                    yield ScanEvent(scanner_id, data, now, source, device)
                if stop_wait in done:
                    return
                continue
            chunk = get.result()
            if chunk is None:
                framer.reset("the link was lost in the middle of a frame")
                return
            result = framer.feed(chunk, now)
            if reply is not None:
                for answer in result.replies:
                    with contextlib.suppress(OSError):
                        reply(answer)
            for data in result.scans:
                yield ScanEvent(scanner_id, data, now, source, device)
    finally:
        stop_wait.cancel()
