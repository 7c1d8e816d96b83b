"""BLE scanners through bleak: find, connect, subscribe, frame, and reconnect.

A BLE barcode scanner in "BLE serial" mode is a GATT peripheral that sends each scan
as notifications of one characteristic — the Nordic UART Service's TX
characteristic by default — chunked to the link's MTU, so the bytes go through the
same framer as a serial scanner (terminator CR/LF/CRLF, or none and a pause).

The driver always talks to bleak's ``BleakScanner``/``BleakClient``; the **transport**
only picks bleak's backend:

- ``"bleak"`` (default): bleak's own platform backend — BlueZ over the D-Bus system
  bus on Linux (``adapter`` picks hci0, hci1 …);
- ``"bumble:<HCI transport>"``: :mod:`drivers.scanners.ble_bumble`, a bleak backend
  on the bumble host stack driving a controller directly, e.g.
  ``bumble:tcp-client:127.0.0.1:9001`` (a controller on HCI over TCP — what the
  tests and `hil replay-scanner` use with a virtual scanner) or ``bumble:usb:0``
  (a USB dongle, no BlueZ needed).

A link that drops is reconnected with exponential backoff (with jitter); a frame
cut by the drop is noise, never a scan. A machine with no Bluetooth stack at all
(bleak raises a bare ``FileNotFoundError`` when there is no D-Bus system bus) stops
the scanner with :class:`BluetoothUnavailable`, whose message says what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from drivers.scanners.events import ScanEvent
from drivers.scanners.framing import TERMINATORS, LineFramer
from drivers.scanners.serial_scanner import backoff
from drivers.scanners.stream import framed_scans

log = logging.getLogger(__name__)

NUS_SERVICE = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # central → peripheral (write)
NUS_TX = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # peripheral → central (notify)


class BluetoothUnavailable(RuntimeError):
    """The machine has no usable Bluetooth stack: retrying will not help."""


class DeviceNotFound(RuntimeError):
    pass


@dataclass
class BleSettings:
    address: str | None = None  # "C2:9B:71:A6:E4:8D"
    name: str | None = None  # the advertised local name
    characteristic: str = NUS_TX  # the notify characteristic carrying scans
    terminator: str = "cr"
    timeout_ms: float = 100.0  # with terminator "none": the pause that ends a scan
    transport: str = "bleak"  # "bleak" or "bumble:<HCI transport>"
    adapter: str | None = None  # BlueZ adapter (hci0 …), transport "bleak" only
    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if not (self.address or self.name):
            raise ValueError("a BLE scanner needs its address or its advertised name")
        if self.terminator not in TERMINATORS:
            raise ValueError(f"terminator {self.terminator!r}: use one of {', '.join(TERMINATORS)}")
        if not (self.transport == "bleak" or self.transport.startswith("bumble:")):
            raise ValueError(
                f"transport {self.transport!r}: use 'bleak' or 'bumble:<HCI transport>'"
            )


def no_stack_error(exc: BaseException, transport: str = "bleak") -> BluetoothUnavailable | None:
    """The clear error for a missing Bluetooth stack, or None if ``exc`` is another fault.
    Only bleak's own backend needs BlueZ; on bumble a refused HCI link is retried."""
    if transport != "bleak":
        return None
    text = str(exc)
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        why = (
            "bleak could not reach BlueZ: there is no D-Bus system bus "
            f"({type(exc).__name__}: {exc.strerror or exc})"
        )
    elif "org.bluez" in text or "ServiceUnknown" in text:
        why = f"BlueZ (bluetoothd) is not running on the D-Bus system bus ({text})"
    elif "adapter" in text.lower() and ("not found" in text.lower() or "no " in text.lower()):
        why = f"no Bluetooth adapter ({text})"
    else:
        return None
    return BluetoothUnavailable(
        f"no Bluetooth stack on this machine: {why}. Install and start dbus and bluez with "
        "a Bluetooth adapter, or drive a controller directly through bumble (transport "
        '"bumble:<HCI transport>", e.g. "bumble:usb:0")'
    )


@dataclass
class BleTransport:
    """Which bleak backend to use, with its arguments: the seam tests swap."""

    spec: str
    client_kwargs: dict[str, Any] = field(default_factory=dict)
    scanner_kwargs: dict[str, Any] = field(default_factory=dict)
    close: Callable[[], Any] | None = None

    async def find(self, settings: BleSettings) -> Any | None:
        """The BLEDevice to connect to, or None when it is not advertising."""
        from bleak import BleakScanner

        if settings.name:
            want_address = (settings.address or "").upper()
            return await BleakScanner.find_device_by_filter(
                lambda device, adv: (
                    adv.local_name == settings.name
                    and (not want_address or device.address.upper() == want_address)
                ),
                timeout=settings.scan_timeout_s,
                **self.scanner_kwargs,
            )
        return await BleakScanner.find_device_by_address(
            settings.address or "", timeout=settings.scan_timeout_s, **self.scanner_kwargs
        )

    def client(self, target: Any, on_disconnect: Callable[[], None], timeout: float) -> Any:
        from bleak import BleakClient

        return BleakClient(
            target,
            disconnected_callback=lambda _client: on_disconnect(),
            timeout=timeout,
            **self.client_kwargs,
        )


def transport_for(settings: BleSettings) -> BleTransport:
    if settings.transport == "bleak":
        kwargs: dict[str, Any] = (
            {"bluez": {"adapter": settings.adapter}} if settings.adapter else {}
        )
        return BleTransport("bleak", kwargs, dict(kwargs))
    from drivers.scanners.ble_bumble import bumble_transport

    return bumble_transport(settings.transport.removeprefix("bumble:"))


@dataclass
class BleScanner:
    scanner_id: str
    settings: BleSettings
    transport: BleTransport | None = None
    framer: LineFramer = field(init=False)
    reconnects: int = 0
    sessions: int = 0  # connections that got as far as subscribing
    address: str = ""  # of the device while connected

    def __post_init__(self) -> None:
        s = self.settings
        self.framer = LineFramer(s.terminator, s.timeout_ms / 1000)
        self._stop = asyncio.Event()
        self.listening = asyncio.Event()  # set while subscribed to the characteristic

    def stop(self) -> None:
        self._stop.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def scans(self) -> AsyncIterator[ScanEvent]:
        """Scans until ``stop()``; reconnects with backoff; raises BluetoothUnavailable."""
        owned = self.transport is None
        transport = self.transport = self.transport or transport_for(self.settings)
        delay = self.settings.backoff_min_s
        try:
            while not self._stop.is_set():
                sessions = self.sessions
                try:
                    async for scan in self._session():
                        yield scan
                except Exception as exc:
                    if isinstance(exc, BluetoothUnavailable):
                        raise
                    clear = no_stack_error(exc, transport.spec)
                    if clear is not None:
                        raise clear from None
                    log.info("scanner %s: %s: %s; retry in %.2fs", self.scanner_id,
                             type(exc).__name__, exc, delay)  # fmt: skip
                if self._stop.is_set():
                    break
                if self.sessions > sessions:
                    self.reconnects += 1
                    delay = self.settings.backoff_min_s
                    log.warning("scanner %s: link lost, reconnecting", self.scanner_id)
                await self._sleep(delay)
                delay = backoff(delay, self.settings.backoff_max_s)
        finally:
            if owned:
                self.transport = None
                if transport.close is not None:
                    await transport.close()

    async def _session(self) -> AsyncIterator[ScanEvent]:
        """One connection: find, connect, subscribe, read until the link drops."""
        assert self.transport is not None
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        async with subscribed(
            self.transport, self.settings, queue.put_nowait, lambda: queue.put_nowait(None)
        ) as address:
            self.address = address
            self.sessions += 1
            self.listening.set()
            log.info("scanner %s: connected to %s", self.scanner_id, address)
            try:
                async for scan in framed_scans(
                    self.scanner_id, "ble", self.framer, queue, self._stop, device=address
                ):
                    yield scan
            finally:
                self.listening.clear()
                self.address = ""


@contextlib.asynccontextmanager
async def subscribed(
    transport: BleTransport,
    settings: BleSettings,
    on_data: Callable[[bytes], None],
    on_lost: Callable[[], None],
) -> AsyncIterator[str]:
    """Connected to the scanner and subscribed to its characteristic, for the block;
    yields the device's address. ``on_lost`` is called if the link drops."""
    target = await transport.find(settings)
    if target is None:
        raise DeviceNotFound(f"{settings.name or settings.address} is not advertising")
    client = transport.client(target, on_lost, settings.connect_timeout_s)
    try:
        await client.connect()
        await client.start_notify(settings.characteristic, lambda _c, data: on_data(bytes(data)))
        yield str(client.address)
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
