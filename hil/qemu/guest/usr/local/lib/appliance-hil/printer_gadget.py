"""HIL rig: a USB receipt printer inside the guest, relayed to the host.

A printer function on dummy_hcd (configfs) makes the guest's USB host side see an
Epson TM-T88V (04b8:0202); whatever the register sends it through the real USB
stack arrives at /dev/g_printer0 and is copied to the virtio-serial port, where the
host's virtual printer renders it; bytes the host sends back (status answers) go to
the printer's IN endpoint. Tells systemd READY once the printer is attached.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

GADGET = Path("/sys/kernel/config/usb_gadget/hilprinter")
IDS = {"idVendor": "0x04b8", "idProduct": "0x0202", "bcdUSB": "0x0200", "bcdDevice": "0x0100"}
STRINGS = {"manufacturer": "EPSON", "product": "TM-T88V (HIL rig)", "serialnumber": "HIL0001"}
PNP = "MFG:EPSON;CMD:ESC/POS;MDL:TM-T88V;CLS:PRINTER;DES:HIL rig printer;"


def setup() -> Path:
    subprocess.run(["modprobe", "dummy_hcd"], check=True)
    subprocess.run(["modprobe", "libcomposite"], check=True)
    if not GADGET.exists():
        GADGET.mkdir()
        for name, value in IDS.items():
            (GADGET / name).write_text(value)
        strings = GADGET / "strings/0x409"
        strings.mkdir()
        for name, value in STRINGS.items():
            (strings / name).write_text(value)
        function = GADGET / "functions/printer.usb0"
        function.mkdir()
        (function / "pnp_string").write_text(PNP)
        (function / "q_len").write_text("10")
        config = GADGET / "configs/c.1"
        config.mkdir()
        (config / "strings/0x409").mkdir()
        (config / "strings/0x409/configuration").write_text("printer")
        (config / "MaxPower").write_text("100")
        os.symlink(function, config / "printer.usb0")
        (GADGET / "UDC").write_text(_udc())
    device = Path("/dev/g_printer0")
    for _ in range(100):
        if device.exists():
            return device
        time.sleep(0.1)
    raise SystemExit("printer gadget: /dev/g_printer0 did not appear")


def _udc() -> str:
    for _ in range(100):  # dummy_hcd registers its controller shortly after loading
        found = sorted(os.listdir("/sys/class/udc")) if os.path.isdir("/sys/class/udc") else []
        if found:
            return found[0]
        time.sleep(0.1)
    raise SystemExit("printer gadget: no USB device controller (dummy_hcd) appeared")


def notify_ready() -> None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"READY=1", "\0" + address[1:] if address.startswith("@") else address)


def _open_when_configured(device: Path) -> int:
    # ENODEV until the guest's USB host side has enumerated and configured the gadget.
    for _ in range(200):
        try:
            return os.open(device, os.O_RDWR)
        except OSError as exc:
            if exc.errno != errno.ENODEV:
                raise
            time.sleep(0.05)
    raise SystemExit(f"printer gadget: {device} stayed unconfigured for 10 s")


def relay(device: Path, port: str) -> None:
    printer = _open_when_configured(device)
    host = os.open(port, os.O_RDWR)
    notify_ready()
    while True:
        ready, _, _ = select.select([printer, host], [], [])
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                os.write(host if fd == printer else printer, data)
            else:
                time.sleep(0.2)  # the host side is not connected: nothing to relay


if __name__ == "__main__":
    relay(setup(), sys.argv[1])
