"""Keyboard-wedge scanners through evdev: find, grab, read, and find again.

A scanner profile matches a device by USB vendor:product, by its
/dev/input/by-id path, or by name. Only matched devices are grabbed (EVIOCGRAB), so
the scanner's keystrokes reach the register and not the desktop, and no real
keyboard is ever taken. When the device disappears (unplugged) the source keeps
looking for it with backoff and picks it up again when it returns, without a
restart. python-evdev reads on the event loop (its async reader uses the fd).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.scanners.events import ScanEvent
from drivers.scanners.wedge import RawEvent, WedgeDecoder, WedgeSettings

log = logging.getLogger(__name__)

EVENT = struct.Struct("llHHi")  # struct input_event on 64-bit Linux: 24 bytes
BY_ID = Path("/dev/input/by-id")


@dataclass(frozen=True)
class DeviceMatch:
    usb_id: str | None = None  # "0c2e:0b61"
    by_id: str | None = None  # "/dev/input/by-id/usb-Honeywell_...-event-kbd"
    name: str | None = None  # exact device name

    def __post_init__(self) -> None:
        if not (self.usb_id or self.by_id or self.name):
            raise ValueError("a scanner match needs usb_id, by_id or name")
        if self.usb_id and not _valid_usb_id(self.usb_id):
            raise ValueError(f"usb_id {self.usb_id!r} must look like 0c2e:0b61")

    def matches(self, path: str, name: str, vendor: int, product: int) -> bool:
        if self.by_id:
            try:
                if os.path.realpath(self.by_id) != os.path.realpath(path):
                    return False
            except OSError:
                return False
        if self.usb_id:
            want_vendor, want_product = (int(x, 16) for x in self.usb_id.split(":"))
            if (vendor, product) != (want_vendor, want_product):
                return False
        return not (self.name and name != self.name)


def _valid_usb_id(text: str) -> bool:
    parts = text.split(":")
    return (
        len(parts) == 2
        and all(len(p) == 4 for p in parts)
        and all(c in "0123456789abcdefABCDEF" for p in parts for c in p)
    )


def raw_events(data: bytes) -> Iterator[RawEvent]:
    """Kernel input_event records (as read from /dev/input/eventN) to events."""
    for offset in range(0, len(data) - len(data) % EVENT.size, EVENT.size):
        sec, usec, etype, code, value = EVENT.unpack_from(data, offset)
        yield RawEvent(sec, usec, etype, code, value)


def find_devices(match: DeviceMatch, skip: frozenset[str] = frozenset()) -> list[Any]:
    """The evdev devices this profile matches (opened InputDevice objects), except the
    event nodes in ``skip`` (already being read)."""
    import evdev

    found = []
    for path in evdev.list_devices():
        if path in skip:
            continue
        try:
            device = evdev.InputDevice(path)
        except OSError:
            continue
        if match.matches(path, device.name, device.info.vendor, device.info.product):
            found.append(device)
        else:
            device.close()
    return found


@dataclass
class EvdevScanner:
    """Every input device that matches the profile, each grabbed and decoded on its own
    (two identical scanners on one register are two devices, one profile). Scans say
    which device sent them; a device that goes away is looked for again."""

    scanner_id: str
    match: DeviceMatch
    settings: WedgeSettings = field(default_factory=WedgeSettings)
    backoff_min_s: float = 0.5
    backoff_max_s: float = 10.0
    rescan_s: float = 5.0  # while some device is read, look for more this often
    grab: bool = True
    decoders: dict[str, WedgeDecoder] = field(default_factory=dict)  # by event node
    finder: Callable[[DeviceMatch, frozenset[str]], list[Any]] = find_devices

    def __post_init__(self) -> None:
        self.listening = asyncio.Event()  # set while at least one device is read

    async def scans(self) -> AsyncIterator[ScanEvent]:
        queue: asyncio.Queue[ScanEvent] = asyncio.Queue()
        readers: dict[str, asyncio.Task[None]] = {}
        delay = self.backoff_min_s
        try:
            while True:
                for path in [p for p, task in readers.items() if task.done()]:
                    del readers[path]
                try:
                    devices = await asyncio.to_thread(self.finder, self.match, frozenset(readers))
                except ImportError as exc:
                    raise RuntimeError(f"python-evdev is not installed: {exc}") from None
                for device in devices:
                    readers[device.path] = asyncio.create_task(self._read(device, queue))
                if not readers:
                    self.listening.clear()
                if readers:
                    delay = self.backoff_min_s
                    wait = self.rescan_s
                else:
                    log.info("scanner %s: no device matches %s; retry in %.1fs",
                             self.scanner_id, self.match, delay)  # fmt: skip
                    wait, delay = delay, min(delay * 2, self.backoff_max_s)
                deadline = asyncio.get_running_loop().time() + wait
                while (left := deadline - asyncio.get_running_loop().time()) > 0:
                    try:
                        scan = await asyncio.wait_for(queue.get(), timeout=left)
                    except TimeoutError:
                        break
                    yield scan
                    if any(task.done() for task in readers.values()):
                        break  # a device went away: look for it again at once
        finally:
            self.listening.clear()
            for task in readers.values():
                task.cancel()
            await asyncio.gather(*readers.values(), return_exceptions=True)

    async def _read(self, device: Any, queue: asyncio.Queue[ScanEvent]) -> None:
        decoder = WedgeDecoder(self.scanner_id, self.settings, device=device.path)
        self.decoders[device.path] = decoder
        try:
            if self.grab:
                device.grab()  # EVIOCGRAB: its keys reach only us
            # Keys typed before we listened are gone: a scan in flight is not whole.
            decoder.resync(time.time(), "device just opened")
            self.listening.set()
            log.info("scanner %s: reading %s (%s)", self.scanner_id, device.path, device.name)
            async for scan in decoder.decode_async(device.async_read_loop()):
                queue.put_nowait(scan)
        except OSError as exc:  # ENODEV: unplugged; EBUSY: grabbed by someone else
            log.warning("scanner %s: %s lost (%s); waiting for it", self.scanner_id,
                        device.path, exc)  # fmt: skip
        finally:
            with contextlib.suppress(OSError):
                device.close()
