"""The link to a receipt printer — network (port 9100), serial, USB — over python-escpos.

python-escpos opens the device (``Network``, ``Serial``, ``Usb`` via pyusb); this
module adds what a durable queue needs on top:

- ``write`` says how many bytes went out before a failure (``TransmitError.sent``),
  so the queue can tell "nothing was sent" from "the job broke off";
- ``read_byte`` waits for one status byte with a short timeout (python-escpos reads 16
  bytes and, over serial, waits its whole timeout), and ``drain`` drops stale bytes
  (a late status answer) before each request;
- a USB printer held by the kernel's usblp or by CUPS gets a message that says so.

Importing python-escpos is slow (~0.35 s), calls ``logging.basicConfig()`` and leaves
a temporary folder behind; ``load_escpos`` imports it once, with its capabilities
cache in the register's data folder, and keeps its logging out of the register's log.
All calls here block: the printer driver runs them on its own thread.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

SPEC_RE = re.compile(
    r"^(?:tcp:(?P<host>[^:\s]+)(?::(?P<port>\d{1,5}))?"
    r"|serial:(?P<dev>/\S+)"
    r"|usb(?::(?P<vid>[0-9a-fA-F]{4}):(?P<pid>[0-9a-fA-F]{4}))?)$"
)
NETWORK_PORT = 9100
CHUNK = 1024
CONNECT_TIMEOUT = 3.0  # a printer that is off must not hold the link thread for long


class PrinterUnreachable(OSError):
    """The printer could not be opened; nothing was sent."""


class TransmitError(OSError):
    """A write failed after ``sent`` bytes of the job had gone out."""

    def __init__(self, message: str, sent: int) -> None:
        super().__init__(message)
        self.sent = sent


class _EscposLogFilter(logging.Filter):
    """Drop python-escpos's chatter on the root logger ("Network printer enabled")."""

    def __init__(self, package_dir: str) -> None:
        super().__init__()
        self.package_dir = package_dir

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.pathname.startswith(self.package_dir)


_escpos: ModuleType | None = None


def load_escpos(cache_dir: Path | None = None) -> ModuleType:
    """``escpos.printer``, imported once without side effects on the register."""
    global _escpos
    if _escpos is not None:
        return _escpos
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(cache_dir))
    root = logging.getLogger()
    handlers = list(root.handlers)
    import escpos
    import escpos.printer

    for handler in root.handlers:
        if handler not in handlers:  # undo its logging.basicConfig()
            root.removeHandler(handler)
    root.addFilter(_EscposLogFilter(os.path.dirname(escpos.__file__)))
    logging.getLogger("escpos").setLevel(logging.WARNING)
    _escpos = escpos.printer
    return _escpos


@dataclass(frozen=True)
class ConnectionSpec:
    kind: str  # tcp | serial | usb | simulated
    host: str = ""
    port: int = NETWORK_PORT
    device: str = ""
    usb_id: tuple[int, int] | None = None

    def describe(self) -> str:
        if self.kind == "tcp":
            return f"network printer {self.host}:{self.port}"
        if self.kind == "serial":
            return f"serial printer {self.device}"
        if self.kind == "simulated":
            return "simulated printer (in-process virtual printer)"
        return "USB printer " + (
            f"{self.usb_id[0]:04x}:{self.usb_id[1]:04x}" if self.usb_id else ""
        )


def parse_spec(text: str, profile_usb_id: tuple[int, int] | None = None) -> ConnectionSpec:
    """``tcp:HOST[:PORT]``, ``serial:/dev/…`` or ``usb[:VVVV:PPPP]`` (default: the profile's)."""
    m = SPEC_RE.match(text)
    if m is None:
        raise ValueError(
            f"printer connection {text!r}: use tcp:HOST[:PORT], serial:/dev/… or usb[:VVVV:PPPP]"
        )
    if m["host"]:
        port = int(m["port"] or NETWORK_PORT)
        if not 1 <= port <= 65535:
            raise ValueError(f"printer connection {text!r}: port must be 1-65535")
        return ConnectionSpec("tcp", host=m["host"], port=port)
    if m["dev"]:
        return ConnectionSpec("serial", device=m["dev"])
    usb_id = (int(m["vid"], 16), int(m["pid"], 16)) if m["vid"] else profile_usb_id
    if usb_id is None:
        raise ValueError(
            f"printer connection {text!r}: give usb:VVVV:PPPP (the profile names no USB id)"
        )
    return ConnectionSpec("usb", usb_id=usb_id)


class Connection(ABC):
    """One open link to one printer. Not thread-safe: one thread uses it."""

    def __init__(self, spec: ConnectionSpec, *, timeout: float, baudrate: int = 38400) -> None:
        self.spec = spec
        self.timeout = timeout
        self.baudrate = baudrate
        self.printer: Any = None  # the python-escpos printer object while open

    @property
    def is_open(self) -> bool:
        return self.printer is not None

    def open(self) -> None:
        if self.printer is not None:
            return
        printer = load_escpos()
        try:
            self.printer = self._open(printer)
        except Exception as exc:  # python-escpos raises its own DeviceNotFoundError
            self.printer = None
            raise PrinterUnreachable(self.explain(exc)) from None

    def close(self) -> None:
        printer, self.printer = self.printer, None
        if printer is not None:
            try:
                printer.close()
            except Exception as exc:  # closing a broken link must not raise
                log.debug("closing %s: %s", self.spec.describe(), exc)

    # per kind -----------------------------------------------------------------
    def _open(self, escpos_printer: ModuleType) -> Any:
        """The python-escpos printer for this link; used by ``open`` (a link that
        overrides ``open``, like the in-process virtual printer, needs none)."""
        raise NotImplementedError(f"{type(self).__name__} opens without python-escpos")

    @abstractmethod
    def _write_some(self, data: memoryview) -> int: ...

    @abstractmethod
    def read_byte(self, timeout: float) -> int | None: ...

    @abstractmethod
    def drain(self) -> None: ...

    def explain(self, exc: BaseException) -> str:
        return f"{self.spec.describe()}: cannot open: {exc}".replace("\n", " ")

    # shared -------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Send all of ``data`` or raise TransmitError saying how much went out."""
        self.open()
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            try:
                n = self._write_some(view[sent : sent + CHUNK])
            except (OSError, ValueError) as exc:
                self.close()
                raise TransmitError(
                    f"{self.spec.describe()}: connection lost after {sent} of {len(data)} "
                    f"bytes: {exc}",
                    sent,
                ) from None
            except Exception as exc:  # pyserial/pyusb timeouts are their own classes
                self.close()
                raise TransmitError(
                    f"{self.spec.describe()}: write failed after {sent} of {len(data)} "
                    f"bytes: {type(exc).__name__}: {exc}",
                    sent,
                ) from None
            if n <= 0:
                self.close()
                raise TransmitError(
                    f"{self.spec.describe()}: the printer stopped taking data after {sent} of "
                    f"{len(data)} bytes",
                    sent,
                )
            sent += n


class NetworkConnection(Connection):
    """Raw TCP to the printer's port 9100 (python-escpos ``Network``)."""

    def _open(self, escpos_printer: ModuleType) -> Any:
        connect = min(self.timeout, CONNECT_TIMEOUT)
        printer = escpos_printer.Network(self.spec.host, self.spec.port, timeout=connect)
        printer.open()
        printer.device.settimeout(self.timeout)
        return printer

    @property
    def sock(self) -> socket.socket:
        sock: socket.socket = self.printer.device
        return sock

    def _write_some(self, data: memoryview) -> int:
        return self.sock.send(data)

    def _recv(self, size: int) -> bytes:
        try:
            got = self.sock.recv(size)
        except OSError as exc:
            self.close()
            raise ConnectionError(f"{self.spec.describe()}: {exc}") from None
        if not got:
            self.close()
            raise ConnectionError(f"{self.spec.describe()} closed the connection")
        return got

    def read_byte(self, timeout: float) -> int | None:
        self.open()
        if not select.select([self.sock], [], [], timeout)[0]:
            return None
        return self._recv(1)[0]

    def drain(self) -> None:
        self.open()
        while self.is_open and select.select([self.sock], [], [], 0)[0]:
            self._recv(4096)


class SerialConnection(Connection):
    """RS-232 or USB-serial (python-escpos ``Serial`` on pyserial), 8N1."""

    def _open(self, escpos_printer: ModuleType) -> Any:
        printer = escpos_printer.Serial(
            self.spec.device, baudrate=self.baudrate, timeout=self.timeout, dsrdtr=False
        )
        printer.open()
        printer.device.write_timeout = self.timeout
        return printer

    def _write_some(self, data: memoryview) -> int:
        n = self.printer.device.write(bytes(data))
        return int(n or 0)

    def read_byte(self, timeout: float) -> int | None:
        self.open()
        dev = self.printer.device
        dev.timeout = timeout
        try:
            got = dev.read(1)
        except Exception as exc:  # SerialException: the device went away
            self.close()
            raise ConnectionError(f"{self.spec.describe()}: {exc}") from None
        return got[0] if got else None

    def drain(self) -> None:
        self.open()
        try:
            self.printer.device.reset_input_buffer()
        except Exception as exc:
            self.close()
            raise ConnectionError(f"{self.spec.describe()}: {exc}") from None

    def explain(self, exc: BaseException) -> str:
        text = str(exc).replace("\n", " ")
        if "Permission denied" in text or "Errno 13" in text:
            return (
                f"{self.spec.describe()}: permission denied: the register's user needs the "
                "device's group (dialout, or 'appliance' from firmware_configs/udev)"
            )
        if "No such file" in text or "Errno 2" in text:
            return f"{self.spec.describe()}: no such device: check the cable and the path"
        return f"{self.spec.describe()}: cannot open: {text}"


class UsbConnection(Connection):
    """A USB printer-class device driven through pyusb (python-escpos ``Usb``).

    The kernel's usblp driver is kept off receipt printers (modprobe blacklist and udev
    rule in firmware_configs/), because the register needs the bulk IN endpoint for
    status; the endpoints are found from the printer interface's descriptors.
    """

    def _open(self, escpos_printer: ModuleType) -> Any:
        assert self.spec.usb_id is not None
        vid, pid = self.spec.usb_id
        printer = escpos_printer.Usb(vid, pid, timeout=int(self.timeout * 1000))
        # python-escpos resets the device on every open; a reset could drop a job the
        # printer holds while its paper is out, so configure it only when it is not.
        printer._configure_usb = lambda: self._configure(printer)
        printer.open()
        self._find_endpoints(printer)
        return printer

    @staticmethod
    def _configure(printer: Any) -> None:
        import usb.core

        try:
            printer.device.get_active_configuration()
        except usb.core.USBError:
            printer.device.set_configuration()

    @staticmethod
    def _find_endpoints(printer: Any) -> None:
        import usb.util

        config = printer.device.get_active_configuration()
        interfaces = list(config)
        chosen = next((i for i in interfaces if i.bInterfaceClass == 7), interfaces[0])
        for ep in chosen:
            if usb.util.endpoint_type(ep.bmAttributes) != usb.util.ENDPOINT_TYPE_BULK:
                continue
            if usb.util.endpoint_direction(ep.bEndpointAddress) == usb.util.ENDPOINT_IN:
                printer.in_ep = ep.bEndpointAddress
            else:
                printer.out_ep = ep.bEndpointAddress

    def _write_some(self, data: memoryview) -> int:
        p = self.printer
        return int(p.device.write(p.out_ep, bytes(data), int(self.timeout * 1000)))

    def read_byte(self, timeout: float) -> int | None:
        self.open()
        p = self.printer
        try:
            got = p.device.read(p.in_ep, 64, max(1, int(timeout * 1000)))
        except Exception as exc:
            if "timed out" in str(exc).lower() or getattr(exc, "errno", None) == errno.ETIMEDOUT:
                return None
            self.close()
            raise ConnectionError(f"{self.spec.describe()}: {exc}") from None
        return int(got[0]) if len(got) else None

    def drain(self) -> None:
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline and self.read_byte(0.001) is not None:
            pass

    def explain(self, exc: BaseException) -> str:
        assert self.spec.usb_id is not None
        return explain_usb_failure(*self.spec.usb_id, str(exc))


def explain_usb_failure(
    vid: int,
    pid: int,
    error: str,
    sysfs: Path = Path("/sys"),
    proc: Path = Path("/proc"),
) -> str:
    """Why a USB printer cannot be opened, in words a shop's technician can act on."""
    name = f"USB printer {vid:04x}:{pid:04x}"
    device = _sysfs_device(sysfs, vid, pid)
    text = error.replace("\n", " ")
    if device is None and ("not found" in text.lower() or "no backend" in text.lower()):
        return f"{name}: not found: check the cable and power, and the id in printer.connection"
    drivers = _interface_drivers(device) if device else {}
    if "usblp" in drivers.values():
        nodes = ", ".join(sorted(f"/dev/usb/{p.name}" for p in _usblp_nodes(device))) or "usblp"
        return (
            f"{name} is held by the kernel's usblp driver ({nodes}): the register drives USB "
            "printers itself. Install firmware_configs/modprobe/appliance-usblp.conf "
            "(blacklist usblp), run 'modprobe -r usblp' and replug the printer."
        )
    busy = "busy" in text.lower() or "errno 16" in text.lower()
    if busy:
        if _process_running(proc, "cupsd"):
            return (
                f"{name} is busy: CUPS (cupsd is running) has claimed it. Remove the printer "
                "from CUPS ('lpadmin -x NAME') or stop CUPS ('systemctl disable --now cups')."
            )
        holder = next(iter(drivers.values()), None)
        by = f" by the kernel driver {holder}" if holder else " by another program"
        return f"{name} is busy: its interface is claimed{by}. Close that program and replug."
    if "access denied" in text.lower() or "errno 13" in text.lower() or "permission" in text:
        return (
            f"{name}: permission denied: install firmware_configs/udev/61-appliance-printers.rules"
            " (group 'appliance'), run 'udevadm trigger' and replug the printer"
        )
    return f"{name}: cannot open: {text}"


def _sysfs_device(sysfs: Path, vid: int, pid: int) -> Path | None:
    for dev in sorted((sysfs / "bus" / "usb" / "devices").glob("*")):
        try:
            v = (dev / "idVendor").read_text().strip()
            p = (dev / "idProduct").read_text().strip()
        except OSError:
            continue
        if int(v, 16) == vid and int(p, 16) == pid:
            return dev
    return None


def _interface_drivers(device: Path) -> dict[str, str]:
    """Interface name → bound kernel driver, for the device's interfaces (1-2:1.0 …)."""
    found = {}
    for intf in sorted(device.parent.glob(f"{device.name}:*")):
        driver = intf / "driver"
        if driver.exists() or driver.is_symlink():
            found[intf.name] = os.path.basename(os.readlink(driver))
    return found


def _usblp_nodes(device: Path | None) -> list[Path]:
    if device is None:
        return []
    return [p for intf in device.parent.glob(f"{device.name}:*") for p in intf.glob("usbmisc/lp*")]


def _process_running(proc: Path, name: str) -> bool:
    for comm in proc.glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name:
                return True
        except OSError:
            continue
    return False


def open_connection(spec: ConnectionSpec, *, timeout: float, baudrate: int = 38400) -> Connection:
    kinds: dict[str, type[Connection]] = {
        "tcp": NetworkConnection,
        "serial": SerialConnection,
        "usb": UsbConnection,
    }
    return kinds[spec.kind](spec, timeout=timeout, baudrate=baudrate)
