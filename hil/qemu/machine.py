"""The appliance image booted in QEMU with virtual peripherals: the full-system HIL stage.

``QemuAppliance`` is the small API the rig's tiers and tests use:

- ``boot()``: start QEMU on the image and wait until systemd reports the register
  started — it is ``Type=notify``, so that is the register's own READY;
- ``type_scan(code)``: a USB keyboard-wedge scanner — QEMU's usb-kbd, typed into
  through QMP ``input-send-event``; the register's evdev driver decodes it;
- ``printer``: the bytes the guest sent to its USB printer (a printer gadget on
  dummy_hcd, relayed over virtio-serial), with an optional ``answer`` hook for status
  requests; ``wait_printer()`` waits for bytes;
- the card terminal: a host pty (``hil terminal --pty``) wired to the guest's
  USB-serial adapter (QEMU usb-serial, FTDI → /dev/ttyUSB0);
- ``api``: the register's HTTP API forwarded to 127.0.0.1 on the host (user-mode
  networking with ``restrict=on``: the guest reaches nothing outside);
- ``run(argv)``: a command in the guest through the rig's agent (virtio-serial);
- ``power_cut()``: SIGKILL of QEMU — the guest loses everything not on disk;
- ``shutdown()``: a clean power-off;
- ``screenshot(path)``: the screen as PNG, with ``display=True`` (a virtio GPU);
- ``type_on_screen(text)`` / ``press(key)``: the kiosk's own keyboard (a virtio
  keyboard bound to that display, with ``display=True``), apart from the scanner:
  the register grabs the scanner, so keys typed there never reach the screen.

Acceleration: KVM when ``/dev/kvm`` works, TCG otherwise (``accel="tcg"`` forces it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.qemu.image import REPO, Image, site_initramfs
from hil.qemu.keys import key_events

GUEST_FILES = REPO / "hil" / "qemu" / "guest"
READY_LINE = re.compile(r"Started .*appliance-register\.service")
FAILED_LINE = re.compile(r"Failed to start .*appliance-register\.service|appliance-init: ERROR")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
KEY_GAP_S = 0.02  # a scanner types fast; the stage's profile allows 600 ms
DISPLAY_ID = "video0"  # QMP input events for the kiosk's keyboard name this display
GUEST_API_PORT = 8080


class QemuError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kvm_usable() -> bool:
    """KVM only where it really boots a guest (on this project's hosts it does not)."""
    return os.environ.get("APPLIANCE_QEMU_ACCEL", "") == "kvm" and os.access("/dev/kvm", os.W_OK)


@dataclass
class Qmp:
    """A minimal QMP client: commands and their answers; events are kept, not waited on."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def connect(
        cls, path: Path, timeout: float = 10, alive: Callable[[], bool] = lambda: True
    ) -> Qmp:
        """Connect once QEMU opened the socket; ``alive`` says whether QEMU still runs,
        so a QEMU that exits at start fails at once instead of after the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if not alive():
                    raise QemuError(f"QEMU exited before opening its QMP socket {path}") from None
                if time.monotonic() > deadline:
                    raise QemuError(f"QMP socket {path} did not open within {timeout}s") from None
                await asyncio.sleep(0.05)
        qmp = cls(reader, writer)
        await qmp._line(timeout)  # greeting
        await qmp.execute("qmp_capabilities")
        return qmp

    async def _line(self, timeout: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise QemuError("QMP connection closed")
        message: dict[str, Any] = json.loads(raw)
        return message

    async def execute(self, command: str, timeout: float = 10, **arguments: Any) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.writer.write(json.dumps(request).encode() + b"\n")
        await self.writer.drain()
        while True:
            message = await self._line(timeout)
            if "event" in message:
                self.events.append(message)
                continue
            if "error" in message:
                raise QemuError(f"QMP {command}: {message['error'].get('desc', message)}")
            return message.get("return")

    def close(self) -> None:
        self.writer.close()


@dataclass
class GuestResult:
    rc: int
    stdout: str
    stderr: str


class QemuAppliance:
    """One appliance VM: its disks, peripherals and the channels the rig uses."""

    def __init__(
        self,
        image: Image,
        workdir: Path,
        data_disk: Path,
        terminal_pty: str | None = None,
        memory_mib: int = 1024,
        cpus: int = 2,
        accel: str | None = None,
        extra_append: str = "",
        display: bool = False,
    ) -> None:
        self.image = image
        self.workdir = workdir
        self.data_disk = data_disk
        self.terminal_pty = terminal_pty
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.accel = accel or ("kvm" if kvm_usable() else "tcg")
        self.extra_append = extra_append
        self.display = display  # a virtio GPU: the kiosk's screen, for screenshot()
        self.api_port = _free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.console: list[str] = []
        self.console_log = workdir / "console.log"
        self.printer = bytearray()
        # Called with each chunk the guest printed; what it returns goes back (status).
        self.answer: Callable[[bytes], bytes] | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.qmp: Qmp | None = None
        self.boots: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self.ready_count = 0  # "Started appliance-register.service" lines seen (restarts too)
        self._failed: str | None = None
        self._printed = asyncio.Event()
        self._agent: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._agent_lock = asyncio.Lock()
        self._agent_id = 0
        self.site_initrd = site_initramfs(GUEST_FILES, workdir / "site.cpio.zst")
        self.initrd = workdir / "initrd-with-site.img"
        self.initrd.write_bytes(image.initrd.read_bytes() + self.site_initrd.read_bytes())

    # the machine -------------------------------------------------------------------
    def command(self) -> list[str]:
        w = self.workdir
        layers = ",".join(f"/dev/vd{chr(ord('a') + i)}" for i in range(len(self.image.layers)))
        append = (
            f"console=ttyS0 panic=-1 appliance.layers={layers} systemd.show_status=1 "
            "systemd.status_unit_format=name "
            f"loglevel=4 {self.extra_append}"
        ).strip()
        cmd = [
            "qemu-system-x86_64", "-accel", self.accel, "-machine", "pc,i8042=off",
            "-m", str(self.memory_mib), "-smp", str(self.cpus), "-nodefaults", "-no-reboot",
            "-display", "none", "-rtc", "base=utc",
            "-kernel", str(self.image.kernel), "-initrd", str(self.initrd), "-append", append,
        ]  # fmt: skip
        if self.display:
            # The kiosk's keyboard is bound to the display: QMP input events that name
            # the display reach it, the others the unbound usb-kbd (the scanner).
            cmd += ["-device", f"virtio-gpu-pci,id={DISPLAY_ID}",
                    "-device", f"virtio-keyboard-pci,display={DISPLAY_ID}"]  # fmt: skip
        for layer in self.image.layers:
            cmd += ["-drive", f"file={layer},if=virtio,format=raw,readonly=on"]
        cmd += ["-drive", f"file={self.data_disk},if=virtio,format=raw,cache=writeback"]
        cmd += ["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]
        cmd += ["-qmp", f"unix:{w / 'qmp.sock'},server=on,wait=off"]
        cmd += ["-device", "qemu-xhci,id=xhci", "-device", "usb-kbd,bus=xhci.0"]
        if self.terminal_pty:
            cmd += ["-chardev", f"serial,id=terminal,path={self.terminal_pty}",
                    "-device", "usb-serial,bus=xhci.0,chardev=terminal"]  # fmt: skip
        cmd += ["-device", "virtio-serial-pci"]
        for name in ("agent", "printer"):
            cmd += ["-chardev", f"socket,id={name},path={w / name}.sock,server=on,wait=off",
                    "-device", f"virtserialport,chardev={name},name=hil.{name}"]  # fmt: skip
        cmd += ["-netdev", f"user,id=lan,restrict=on,hostfwd=tcp:127.0.0.1:{self.api_port}-"
                f":{GUEST_API_PORT}", "-device", "virtio-net-pci,netdev=lan"]  # fmt: skip
        return cmd

    async def boot(self, timeout: float = 120) -> float:
        """Start the VM; return the seconds from QEMU's start to the register's READY."""
        if self.proc is not None and self.proc.returncode is None:
            raise QemuError("the VM is already running")
        for name in ("qmp", "agent", "printer"):
            (self.workdir / f"{name}.sock").unlink(missing_ok=True)
        self._failed = None
        mark = self.ready_count
        started = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._tasks = [asyncio.create_task(self._read_console(self.proc))]
        proc = self.proc
        try:
            # A loaded host can take a while to map the layers; QEMU alive means wait.
            self.qmp = await Qmp.connect(
                self.workdir / "qmp.sock", timeout=60, alive=lambda: proc.returncode is None
            )
        except QemuError as exc:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._tasks), 5)  # QEMU's last words
            tail = "\n".join(self.console[-20:])
            raise QemuError(f"{exc} (exit code {proc.returncode})\n{tail}") from None
        self._tasks.append(asyncio.create_task(self._relay_printer()))
        await self.wait_ready(timeout - (time.monotonic() - started), after=mark)
        took = time.monotonic() - started
        self.boots.append(took)
        return took

    async def wait_ready(self, timeout: float, after: int | None = None) -> None:
        """Wait for systemd's "Started appliance-register.service" on the console.

        ``after``: a ``ready_count`` taken earlier; waits for a READY after it (a
        restart). Without it, returns at once if the register was ever ready.
        """
        deadline = time.monotonic() + timeout
        mark = 0 if after is None else after
        while self.ready_count <= mark and not self._failed:
            exited = self.proc is None or self.proc.returncode is not None
            left = deadline - time.monotonic()
            if exited or left <= 0:
                break
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), min(left, 1.0))
        if self.ready_count > mark and not self._failed:
            return
        tail = "\n".join(self.console[-40:])
        if self._failed:
            raise QemuError(f"the register failed to start: {self._failed}\n{tail}")
        if self.proc is None or self.proc.returncode is not None:
            code = self.proc.returncode if self.proc else None
            raise QemuError(f"QEMU exited ({code}) before the register was ready:\n{tail}")
        raise QemuError(f"the register was not ready within {timeout:.0f}s:\n{tail}")

    async def _read_console(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        with open(self.console_log, "a", encoding="utf-8") as log:
            log.write(f"----- boot at {time.strftime('%H:%M:%S')} -----\n")
            while True:
                raw = await proc.stdout.readline()
                if not raw:
                    return
                line = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\r\n")
                self.console.append(line)
                log.write(line + "\n")
                log.flush()
                if READY_LINE.search(line):
                    self.ready_count += 1
                    self._ready.set()
                elif FAILED_LINE.search(line):
                    self._failed = line
                    self._ready.set()

    async def _relay_printer(self) -> None:
        """Collect what the guest prints; send ``answer``'s reply back (status bytes)."""
        path = self.workdir / "printer.sock"
        try:
            reader, writer = await asyncio.open_unix_connection(str(path))
        except OSError:
            return
        try:
            while data := await reader.read(65536):
                self.printer += data
                self._printed.set()
                if self.answer is not None and (reply := self.answer(data)):
                    writer.write(reply)
                    await writer.drain()
        finally:
            writer.close()

    async def wait_printer(self, predicate: Callable[[bytes], bool], timeout: float) -> bytes:
        """Wait until the printed bytes satisfy ``predicate``; return them."""
        deadline = time.monotonic() + timeout
        while not predicate(bytes(self.printer)):
            left = deadline - time.monotonic()
            if left <= 0:
                tail = bytes(self.printer[-200:])
                raise QemuError(f"printer: condition not met within {timeout}s; "
                                f"got {len(self.printer)} bytes, last: {tail!r}")  # fmt: skip
            self._printed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._printed.wait(), left)
        return bytes(self.printer)

    # peripherals ---------------------------------------------------------------------
    async def type_scan(self, code: str, suffix: str = "\n") -> None:
        """Type a scan on the USB keyboard-wedge scanner, a key every ~20 ms."""
        if self.qmp is None:
            raise QemuError("the VM is not running")
        for events in key_events(code + suffix):
            await self.qmp.execute("input-send-event", events=events)
            await asyncio.sleep(KEY_GAP_S)  # the scanner's typing rate

    async def type_on_screen(self, text: str, gap_s: float = 0.05) -> None:
        """Type on the kiosk's keyboard (``display=True``), as a person at the counter."""
        for events in key_events(text):
            await self.press_events(events)
            await asyncio.sleep(gap_s)

    async def press(self, qcode: str) -> None:
        """One key (a QEMU qcode: "f5", "ret", "esc") on the kiosk's keyboard."""
        await self.press_events([
            {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": qcode}}}
            for down in (True, False)
        ])  # fmt: skip

    async def press_events(self, events: list[dict[str, Any]]) -> None:
        if self.qmp is None or not self.display:
            raise QemuError("the VM is not running with a display")
        await self.qmp.execute("input-send-event", device=DISPLAY_ID, events=events)

    async def screenshot(self, path: Path) -> Path:
        """The screen (with ``display=True``) as a PNG: what the kiosk shows."""
        if self.qmp is None:
            raise QemuError("the VM is not running")
        await self.qmp.execute("screendump", filename=str(path), format="png")
        return path

    # the guest -------------------------------------------------------------------------
    async def run(self, argv: list[str], timeout: float = 60, input: str = "") -> GuestResult:
        """Run a command in the guest (as root, through the rig's agent)."""
        async with self._agent_lock:
            if self._agent is None:
                self._agent = await asyncio.open_unix_connection(str(self.workdir / "agent.sock"))
            reader, writer = self._agent
            self._agent_id += 1
            request = {"id": self._agent_id, "argv": argv, "timeout": timeout, "input": input}
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            while True:
                raw = await asyncio.wait_for(reader.readline(), timeout + 10)
                if not raw:
                    self._agent = None
                    raise QemuError(f"guest agent closed while running {argv}")
                answer = json.loads(raw)
                if answer.get("id") == self._agent_id:
                    return GuestResult(answer["rc"], answer.get("stdout", ""),
                                       answer.get("stderr", ""))  # fmt: skip

    async def power_cut(self) -> None:
        """Pull the plug: SIGKILL QEMU. Whatever the guest had not written to disk is gone."""
        if self.proc is None or self.proc.returncode is not None:
            raise QemuError("the VM is not running")
        self.proc.send_signal(signal.SIGKILL)
        await self._reap()

    async def shutdown(self, timeout: float = 60) -> None:
        """A clean power-off (ACPI button is absent with -nodefaults: ask systemd)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            await self.run(["systemctl", "--no-block", "poweroff"], timeout=10)
            await asyncio.wait_for(self.proc.wait(), timeout)
        except (QemuError, OSError, TimeoutError):
            self.proc.send_signal(signal.SIGKILL)
        await self._reap()

    async def _reap(self) -> None:
        if self.proc is not None:
            await self.proc.wait()
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        if self._agent is not None:
            self._agent[1].close()
            self._agent = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
