"""Feed a scanner recording through the real driver code, as the device would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from drivers.scanners.framing import LineFramer
from drivers.scanners.wedge import RawEvent, WedgeDecoder, WedgeSettings
from hil.evemu import parse_evemu
from hil.serial_recording import parse_serial


def is_evemu(text: str) -> bool:
    return any(line.lstrip().startswith(("E:", "N:", "I:")) for line in text.splitlines())


async def _paced(events: list[RawEvent], realtime: bool) -> AsyncIterator[RawEvent]:
    start = None
    t0 = asyncio.get_running_loop().time()
    for event in events:
        at = event.sec + event.usec / 1e6
        if realtime:
            start = at if start is None else start
            delay = (at - start) - (asyncio.get_running_loop().time() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
        yield event


async def replay_recording(
    text: str,
    on_scan: Callable[[str], None],
    layout: str | None = None,
    suffix: str | None = None,
    terminator: str | None = None,
    realtime: bool = False,
) -> str:
    """Decode ``text`` (evemu or serial recording); returns a one-line summary."""
    if is_evemu(text):
        rec = parse_evemu(text)
        settings = WedgeSettings(
            layout=layout or rec.hints.get("layout", "us"),
            suffix=suffix or rec.hints.get("suffix", "enter"),
        )
        decoder = WedgeDecoder(rec.name or "replay", settings, source="replay")
        count = 0
        async for scan in decoder.decode_async(_paced(rec.events, realtime)):
            on_scan(scan.data)
            count += 1
        return f"{count} scans, {decoder.dropped} key sequences dropped, layout {settings.layout}"
    srec = parse_serial(text)
    framer = LineFramer(terminator=terminator or srec.hints.get("terminator", "cr"))
    count = 0
    t0 = asyncio.get_running_loop().time()
    last = 0.0
    for at, direction, data in srec.chunks:
        if direction != "<":
            continue
        if realtime:
            delay = at - (asyncio.get_running_loop().time() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
        for code in framer.feed(data, at).scans:
            on_scan(code)
            count += 1
        last = at
    for code in framer.flush(last + 10).scans:
        on_scan(code)
        count += 1
    return f"{count} scans, {framer.noise} noise frames"
