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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.scanners.events import ScanEvent
from drivers.scanners.wedge import RawEvent, WedgeDecoder

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


def find_devices(match: DeviceMatch) -> list[Any]:
    """The evdev devices this profile matches (opened InputDevice objects)."""
    import evdev

    found = []
    for path in evdev.list_devices():
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
    scanner_id: str
    match: DeviceMatch
    decoder: WedgeDecoder
    backoff_min_s: float = 0.5
    backoff_max_s: float = 10.0
    grab: bool = True

    async def scans(self) -> AsyncIterator[ScanEvent]:
        delay = self.backoff_min_s
        while True:
            try:
                devices = await asyncio.to_thread(find_devices, self.match)
            except ImportError as exc:
                raise RuntimeError(f"python-evdev is not installed: {exc}") from None
            if not devices:
                log.info("scanner %s: no device matches %s; retry in %.1fs",
                         self.scanner_id, self.match, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            delay = self.backoff_min_s
            device = devices[0]
            for extra in devices[1:]:
                extra.close()
            try:
                if self.grab:
                    device.grab()
                log.info("scanner %s: reading %s (%s)", self.scanner_id, device.path, device.name)
                async for scan in self.decoder.decode_async(device.async_read_loop()):
                    yield scan
            except OSError as exc:  # ENODEV: unplugged
                log.warning("scanner %s: %s lost (%s); waiting for it", self.scanner_id,
                            device.path, exc)  # fmt: skip
            finally:
                with contextlib.suppress(OSError):
                    device.close()
