"""Feed a scanner recording through the real driver code, as the device would.

The tier says how far down the recording goes before the driver sees it:

- evemu, ``inprocess`` (default): the wedge decoder on the recorded events and their
  timestamps;
- evemu, ``uinput``: a /dev/uinput keyboard types the events; the evdev driver finds
  it by name, grabs it and decodes it;
- serial, ``pty`` (default): the serial driver opens a pty's tty side with pyserial;
  the recording's ``<`` bytes are written to the other side, and the driver's
  ACK/NAK are checked against the ``>`` lines;
- ble, ``ble`` (default): a virtual BLE scanner (bumble) notifies the ``<`` chunks;
  the BLE driver connects through bleak over a bumble HCI link on loopback TCP;
- serial or ble, ``inprocess``: the framer alone.

Without ``realtime`` the replay keeps every pause that can change the result (a
person's pace between keys, a pause ending a suffix-less scan, a partial frame
going stale) and skips the rest, so a long recording replays in moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from drivers.scanners.events import ScanEvent
from drivers.scanners.framing import STALE_S, TERMINATORS, LineFramer
from drivers.scanners.wedge import EV_KEY, RawEvent, WedgeDecoder, WedgeSettings
from hil.evemu import EvemuRecording, parse_evemu
from hil.serial_recording import SerialRecording, parse_serial

TIERS = ("inprocess", "uinput", "pty", "ble")
DEFAULT_TIER = {"evemu": "inprocess", "serial": "pty", "ble": "ble"}
TIERS_FOR = {"evemu": ("inprocess", "uinput"), "serial": ("pty", "inprocess"),
             "ble": ("ble", "inprocess")}  # fmt: skip
KEY_PACE_CAP_S = 0.3  # longer than any gap the wedge decoder tells apart
DRAIN_TIMEOUT_S = 10.0


class ReplayError(ValueError):
    pass


def is_evemu(text: str) -> bool:
    return any(line.lstrip().startswith(("E:", "N:", "I:")) for line in text.splitlines())


def recording_kind(text: str) -> str:
    """ "evemu", "serial" or "ble"."""
    return "evemu" if is_evemu(text) else parse_serial(text).transport


async def _sleep_until(t0: float, offset: float) -> None:
    delay = t0 + offset - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _paced(events: list[RawEvent], realtime: bool) -> AsyncIterator[RawEvent]:
    t0 = asyncio.get_running_loop().time()
    start = None
    for event in events:
        at = event.sec + event.usec / 1e6
        if realtime:
            start = at if start is None else start
            await _sleep_until(t0, at - start)
        yield event


async def replay_recording(
    text: str,
    on_scan: Callable[[str], None],
    layout: str | None = None,
    suffix: str | None = None,
    terminator: str | None = None,
    realtime: bool = False,
    tier: str | None = None,
) -> str:
    """Decode ``text`` (an evemu, serial or BLE recording) on ``tier``; returns a
    one-line summary for stderr. Bad recordings and impossible tiers raise ValueError."""
    kind = recording_kind(text)
    tier = tier or DEFAULT_TIER[kind]
    if tier not in TIERS_FOR[kind]:
        tiers = " or ".join(TIERS_FOR[kind])
        raise ReplayError(f"{kind} recordings replay on {tiers}, not {tier}")
    if kind == "evemu":
        rec = parse_evemu(text)
        settings = WedgeSettings(
            layout=layout or rec.hints.get("layout", "us"),
            suffix=suffix or rec.hints.get("suffix", "enter"),
        )
        if tier == "uinput":
            return await _replay_uinput(rec, settings, on_scan, realtime)
        decoder = WedgeDecoder(rec.name or "replay", settings, source="replay")
        count = 0
        async for scan in decoder.decode_async(_paced(rec.events, realtime)):
            on_scan(scan.data)
            count += 1
        return f"{count} scans, {decoder.dropped} key sequences dropped, layout {settings.layout}"
    srec = parse_serial(text)
    term = terminator or srec.hints.get("terminator", "cr")
    if term not in TERMINATORS:
        raise ReplayError(f"terminator {term!r}: use one of {', '.join(TERMINATORS)}")
    if tier == "pty":
        return await _replay_pty(srec, term, on_scan, realtime)
    if tier == "ble":
        return await _replay_ble(srec, term, on_scan, realtime)
    return await _replay_framer(srec, term, on_scan, realtime)


async def _replay_framer(
    srec: SerialRecording, term: str, on_scan: Callable[[str], None], realtime: bool
) -> str:
    framer = LineFramer(terminator=term)
    count = 0
    t0 = asyncio.get_running_loop().time()
    last = 0.0
    for at, direction, data in srec.chunks:
        if direction != "<":
            continue
        if realtime:
            await _sleep_until(t0, at)
        for code in framer.feed(data, at).scans:
            on_scan(code)
            count += 1
        last = at
    for code in framer.flush(last + 10).scans:
        on_scan(code)
        count += 1
    return f"{count} scans, {framer.noise} noise frames"


class _StreamPacer:
    """When to send each recorded chunk to a real driver (pty or BLE)."""

    def __init__(self, term: str, timeout_s: float, realtime: bool) -> None:
        self.term, self.timeout_s, self.realtime = term, timeout_s, realtime
        self.t0 = asyncio.get_running_loop().time()
        self.elapsed = 0.0  # replay clock, in recording seconds
        self.last_at: float | None = None
        self.sent = b""  # everything sent (to know whether a frame is open)

    async def before(self, at: float) -> None:
        gap = 0.0 if self.last_at is None else at - self.last_at
        self.last_at = at
        if self.realtime:
            wait = gap
        elif self.term == "none":
            wait = self.timeout_s * 1.5 if gap >= self.timeout_s else 0.0
        else:
            open_frame = bool(self.sent) and not self.sent.endswith(TERMINATORS[self.term])
            wait = STALE_S + 0.1 if open_frame and gap >= STALE_S else 0.0
        self.elapsed += wait
        await _sleep_until(self.t0, self.elapsed)

    def after(self, data: bytes) -> None:
        self.sent = (self.sent + data)[-8:]

    async def end(self) -> None:
        if self.term == "none":  # the final pause ends the last scan
            await asyncio.sleep(self.timeout_s * 1.5)


@contextlib.asynccontextmanager
async def _running(scanner: Any, on_scan: Callable[[str], None]) -> AsyncIterator[list[ScanEvent]]:
    """``scanner`` reading (and passing scans to ``on_scan``) for the block, which starts
    once it listens; yields the scans so far. Stopped (or cancelled) at the end."""
    scans: list[ScanEvent] = []

    async def read() -> None:
        async for scan in scanner.scans():
            scans.append(scan)
            on_scan(scan.data)

    task = asyncio.create_task(read())
    try:
        listening = asyncio.ensure_future(scanner.listening.wait())
        await asyncio.wait({listening, task}, timeout=DRAIN_TIMEOUT_S,
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if not scanner.listening.is_set():
            listening.cancel()
            if task.done() and task.exception():
                raise ReplayError(str(task.exception()))
            raise ReplayError("the driver did not connect in time")
        yield scans
    finally:
        if hasattr(scanner, "stop"):
            scanner.stop()
        else:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, DRAIN_TIMEOUT_S)


async def _drive(
    scanner: Any,
    on_scan: Callable[[str], None],
    send: Callable[[bytes], Awaitable[None]],
    srec: SerialRecording,
    pacer: _StreamPacer,
    expected_bytes: int,
) -> int:
    """Send the recording's ``<`` chunks to a listening ``scanner``, wait until it has
    read them all; returns the number of scans."""
    async with _running(scanner, on_scan) as scans:
        for at, direction, data in srec.chunks:
            if direction == "<":
                await pacer.before(at)
                await send(data)
                pacer.after(data)
        deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT_S
        while scanner.framer.received < expected_bytes:
            if asyncio.get_running_loop().time() > deadline:
                raise ReplayError(
                    f"the driver read {scanner.framer.received} of {expected_bytes} bytes"
                )
            await asyncio.sleep(0.005)
        await pacer.end()
    scanner.framer.reset("the recording ended in the middle of a frame")
    return len(scans)


async def _replay_pty(
    srec: SerialRecording, term: str, on_scan: Callable[[str], None], realtime: bool
) -> str:
    from drivers.scanners.serial_scanner import SerialScanner, SerialSettings

    master, slave = os.openpty()
    try:
        settings = SerialSettings(
            port=os.ttyname(slave),
            baud=int(srec.hints.get("baud", "9600")),
            terminator=term,
            ack_nak=srec.hints.get("ack_nak", "false").lower() == "true",
            backoff_min_s=0.05,
        )
        scanner = SerialScanner("replay", settings)
        os.set_blocking(master, False)
        replies = bytearray()

        def drain_replies() -> None:
            with contextlib.suppress(BlockingIOError):
                replies.extend(os.read(master, 4096))

        async def send(data: bytes) -> None:
            drain_replies()
            os.write(master, data)

        data_in = [d for _, direction, d in srec.chunks if direction == "<"]
        expected = sum(len(d) + d.count(0xFF) for d in data_in)  # PARMRK doubles FF
        pacer = _StreamPacer(term, settings.timeout_ms / 1000, realtime)
        count = await _drive(scanner, on_scan, send, srec, pacer, expected)
        drain_replies()
    finally:
        os.close(master)
        os.close(slave)
    recorded = b"".join(d for _, direction, d in srec.chunks if direction == ">")
    check = (
        "replies as recorded"
        if bytes(replies) == recorded
        else f"replies differ: recorded [{recorded.hex(' ')}], driver sent [{replies.hex(' ')}]"
    )
    return f"{count} scans, {scanner.framer.noise} noise frames, {check} (pty {settings.port})"


async def _replay_ble(
    srec: SerialRecording, term: str, on_scan: Callable[[str], None], realtime: bool
) -> str:
    from drivers.scanners.ble import NUS_SERVICE, NUS_TX, BleScanner, BleSettings
    from hil.ble_rig import VirtualBleLink, VirtualBleScanner

    characteristic = srec.hints.get("characteristic", NUS_TX).lower()
    service = srec.hints.get(
        "service",
        NUS_SERVICE if characteristic == NUS_TX else "0000ffe0-0000-1000-8000-00805f9b34fb",
    )
    link = VirtualBleLink()
    name = f"HIL replay {uuid.uuid4().hex[:6]}"
    peripheral = VirtualBleScanner(link, name=name, service=service, characteristic=characteristic)
    try:
        spec = await link.serve_controller()
        await peripheral.start()
        settings = BleSettings(name=name, characteristic=characteristic, terminator=term,
                               transport=f"bumble:{spec}", backoff_min_s=0.05)  # fmt: skip
        scanner = BleScanner("replay", settings)
        expected = sum(len(d) for _, direction, d in srec.chunks if direction == "<")
        pacer = _StreamPacer(term, settings.timeout_ms / 1000, realtime)
        count = await _drive(scanner, on_scan, peripheral.send, srec, pacer, expected)
    finally:
        await peripheral.close()
        await link.close()
    return f"{count} scans, {scanner.framer.noise} noise frames (ble, bumble {spec})"


async def _replay_uinput(
    rec: EvemuRecording, settings: WedgeSettings, on_scan: Callable[[str], None], realtime: bool
) -> str:
    if not Path("/dev/uinput").exists():
        raise ReplayError(
            "the uinput tier needs /dev/uinput (modprobe uinput); this kernel has none — "
            "use --tier inprocess here, or run it in the full-system (QEMU) tier"
        )
    from evdev import UInput, ecodes

    from drivers.scanners.evdev_source import DeviceMatch, EvdevScanner

    name = f"HIL replay scanner {uuid.uuid4().hex[:6]}"
    keys = sorted({e.code for e in rec.events if e.type == EV_KEY})
    try:
        device = UInput(
            {ecodes.EV_KEY: keys, ecodes.EV_MSC: [ecodes.MSC_SCAN]}, name=name,
            vendor=rec.vendor or 0x1209, product=rec.product or 0x0001,
            version=rec.version or 1, bustype=rec.bus or ecodes.BUS_USB,
        )  # fmt: skip
    except OSError as exc:
        raise ReplayError(f"cannot create a uinput device: {exc}") from None
    scanner = EvdevScanner("replay", DeviceMatch(name=name), settings, backoff_min_s=0.05)
    try:
        async with _running(scanner, on_scan) as scans:
            # A key within max_gap of the grab could be the tail of a scan: let it pass.
            await asyncio.sleep(settings.max_gap_ms / 1000 + 0.05)
            t0, elapsed, previous = asyncio.get_running_loop().time(), 0.0, None
            for event in rec.events:
                at = event.sec + event.usec / 1e6
                gap = 0.0 if previous is None else at - previous
                previous = at
                elapsed += gap if realtime else min(gap, KEY_PACE_CAP_S)
                await _sleep_until(t0, elapsed)
                device.write(event.type, event.code, event.value)
            await asyncio.sleep(max(settings.end_gap_ms, settings.max_gap_ms) / 1000 + 0.1)
    finally:
        device.close()
    dropped = sum(d.dropped for d in scanner.decoders.values())
    return f"{len(scans)} scans, {dropped} key sequences dropped, layout {settings.layout} (uinput)"
