"""The full-system HIL stage, set up in one call: image, data disk, terminal, VM.

    stage = await open_stage(workdir)          # builds or reuses the cached image
    await stage.vm.boot()                      # READY from the register itself
    await stage.vm.type_scan("4006381333931")  # the USB keyboard-wedge scanner
    await stage.terminal.control({"cmd": "outcome", "spec": "approve"})
    await stage.vm.power_cut(); await stage.vm.boot()
    await stage.close()

The terminal is the host's ZVT simulator (``hil terminal --pty --control``) as its own
process; its pty is the guest's USB-serial adapter (/dev/ttyUSB0, stable name
/dev/appliance/serial-<port> from firmware_configs/udev/62-appliance-serial.rules),
which the register's payments use. The printer: the register prints through the
guest's USB stack to a printer gadget (an Epson TM-T88V by its ids); the bytes reach
the host's virtual printer (hil/virtual_printer), which answers status requests and
renders each job as text and PNG (``stage.printer.jobs``, files in ``workdir/printer``).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.printers.profiles import load_profile
from hil.json_lines import control_request
from hil.qemu.image import Image, Progress, ensure_image, make_data_disk
from hil.qemu.machine import QemuAppliance, QemuError
from hil.virtual_printer.device import VirtualPrinter

# The register the stage boots: the first-boot file a shop's installer would write.
# Its scanner is QEMU's USB keyboard (the rig's profile: qemu-usb-kbd-us with TCG-proof
# timing; opened through firmware_configs/udev/60-appliance-scanners.rules). No
# [pairing]: the guest's network is restricted to the forwarded API (pairing from the
# first-boot file is tested against a real back office in tests/test_firstboot.py).
HIL_FIRSTBOOT = """\
[store]
id = "hilstore"
name = "HIL Shop"
receipt_header = ["HIL Shop", "QEMU stage"]

[register]
id = "Q1"
name = "QEMU register"

[scanners]
profiles = ["/usr/local/lib/appliance-hil/qemu-usb-kbd-tcg.toml"]

[payments]
terminal = "serial:/dev/ttyUSB0"

[printer]
connection = "usb:04b8:0202"
profile = "epson-tm-t88v"
"""
# chromium's renderer, GPU and browser processes beside the register (and the page cache
# of the squashfs layers): 1 GiB is too tight for the kiosk image.
KIOSK_MEMORY_MIB = 2048
# Where the guest sees the terminal: the USB-serial adapter on the xHCI's first port.
GUEST_TERMINAL = "/dev/ttyUSB0"


class TerminalProcess:
    """``hil terminal --pty --control``: the ZVT simulator as a separate host process."""

    def __init__(self, proc: asyncio.subprocess.Process, pty: str, control: tuple[str, int]):
        self.proc, self.pty, self.control_address = proc, pty, control

    @classmethod
    async def start(cls, *outcomes: str) -> TerminalProcess:
        args = [sys.executable, "-m", "hil.cli", "terminal", "--pty", "--control", "127.0.0.1:0"]
        for outcome in outcomes:
            args += ["--outcome", outcome]
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        try:
            pty = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
            control = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
        except TimeoutError:
            proc.kill()
            raise QemuError("hil terminal did not report its pty within 30 s") from None
        if not pty.startswith("/dev/") or len(control) != 2:
            proc.kill()
            raise QemuError(f"hil terminal: unexpected output {pty!r} {control!r}")
        host, port = control[1].rsplit(":", 1)
        return cls(proc, pty, (host, int(port)))

    async def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """One command on the simulator's control channel (see hil/zvt_sim/server.py)."""
        return await control_request(self.control_address, request)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@dataclass
class Stage:
    vm: QemuAppliance
    terminal: TerminalProcess
    image: Image
    printer: VirtualPrinter

    async def close(self) -> None:
        try:
            await self.vm.shutdown(timeout=30)
        finally:
            await self.terminal.stop()


async def open_stage(
    workdir: Path,
    image: Image | None = None,
    firstboot: str = HIL_FIRSTBOOT,
    progress: Progress | None = None,
    data_mib: int = 256,
    kiosk: bool = False,
) -> Stage:
    """Everything but the boot: the image (cached), a fresh data disk, the terminal.

    ``kiosk``: the image with the counter screen (cage + chromium), a display and the
    kiosk's keyboard, and the memory chromium needs.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if image is None:
        image = await asyncio.to_thread(ensure_image, None, kiosk, progress)
    disk = make_data_disk(workdir / "data.img", data_mib, {"firstboot.toml": firstboot})
    terminal = await TerminalProcess.start()
    vm = QemuAppliance(image, workdir, disk, terminal_pty=terminal.pty, display=kiosk,
                       memory_mib=KIOSK_MEMORY_MIB if kiosk else 1024)  # fmt: skip
    printer = VirtualPrinter(load_profile("epson-tm-t88v"), jobs_dir=workdir / "printer", png=True)
    vm.answer = printer.receive  # status answers go back to the guest over the relay
    return Stage(vm, terminal, image, printer)
