"""The virtual tier: a real register process with its real drivers against device
processes on loopback.

- the register: ``appliance run`` on a loopback port, driven over its HTTP API like a
  sell screen; a power cut is SIGKILL and a fresh start on the same data folder;
- the printer: ``hil printer --listen`` (TCP, like port 9100), the register's
  printer connection ``tcp:…``; ``printer`` steps switch its faults over its control
  channel; receipts are the jobs it stored (text and PNG);
- the card terminal: ``hil terminal --listen`` (ZVT over TCP), outcomes scripted over
  its control channel; ``unreachable`` stops it for the step and starts it again on
  the same port;
- serial scanners: one pty per scanner named in the scenario's ``scan_recording``
  steps (or ``scan`` steps with ``scanner``), read by the register's serial driver
  from a profile the rig writes; the scan's outcome comes back on the register's own
  ``/events`` stream, as a sell screen sees it;
- keyboard-wedge (evemu) recordings need /dev/uinput, which a host without the
  uinput module lacks: such a step fails saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.scenario.capture import _toml_value
from hil.scenario.devices import DeviceProcess, free_port, printer_process, terminal_process
from hil.scenario.format import Step
from hil.scenario.receipts import Receipt, jobs_in
from hil.scenario.tiers import Doc, StepFailed, Tier, _subset_mismatch

BIN = Path(sys.executable).parent
TERMINATOR_BYTES = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "none": b""}


@dataclass
class PtyScanner:
    """A serial scanner the rig plays: the pty's master side; the register reads the
    slave path through its serial driver."""

    name: str
    terminator: str
    baud: int
    ack_nak: bool
    master: int = -1
    slave: int = -1
    path: str = ""

    def open(self) -> None:
        import tty

        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        os.set_blocking(self.master, False)

    def profile(self) -> str:
        return (
            f'name = "HIL serial scanner {self.name}"\ninterface = "serial"\n\n[serial]\n'
            f'port = "{self.path}"\nbaud = {self.baud}\nterminator = "{self.terminator}"\n'
            f"ack_nak = {'true' if self.ack_nak else 'false'}\n"
        )

    def write(self, data: bytes) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.master, 4096)  # the driver's ACK/NAK, if any
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self.master, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            view = view[sent:]

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


@dataclass
class ScanWatch:
    """The register's ``/events`` stream: every scan's outcome, refusals included."""

    scans: list[Doc] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, client: Any) -> None:
        async with client.stream("GET", "/events", timeout=None) as resp:
            self.ready.set()
            async for line in resp.aiter_lines():
                if line.startswith("data:"):
                    with contextlib.suppress(ValueError):
                        event = json.loads(line[5:])
                        if isinstance(event, dict) and event.get("type") == "scan":
                            self.scans.append(event)


class VirtualTier(Tier):
    name = "virtual"

    async def start(self) -> None:
        import httpx

        self.folder = Path(tempfile.mkdtemp(prefix="hil-virtual-"))
        self.port = free_port()
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        self.devices: list[DeviceProcess] = []
        self.scanners = self._pty_scanners()
        self.terminal_port = free_port()
        self.printer = printer_process(self.folder / "printer", self._log("printer"))
        self.terminal = terminal_process(self._log("terminal"), self.terminal_port)
        self.devices += [self.printer, self.terminal]
        await asyncio.gather(self.printer.start(), self.terminal.start())  # side by side
        self.config_file = self.folder / "register.toml"
        self.config_file.write_text(self._config(), encoding="utf-8")
        self.watch: ScanWatch | None = None
        await self._spawn()
        await self._setup()

    def _log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def _pty_scanners(self) -> dict[str, PtyScanner]:
        """One pty per scanner the scenario names, set up like its first recording."""
        from hil.scanner_replay import recording_kind
        from hil.serial_recording import parse_serial

        found: dict[str, PtyScanner] = {}
        for step in self.scenario.steps:
            name = step.options.get("scanner")
            if step.action == "scan_recording":
                text = self._recording(step)
                if recording_kind(text) != "serial":
                    continue
                hints = parse_serial(text).hints
                name = name or "serial"
                if name not in found:
                    found[name] = PtyScanner(
                        name, hints.get("terminator", "cr"), int(hints.get("baud", "9600")),
                        hints.get("ack_nak", "false").lower() == "true",
                    )  # fmt: skip
            elif step.action == "scan" and name and name not in found:
                found[name] = PtyScanner(name, "cr", 9600, False)
        for scanner in found.values():
            scanner.open()
        return found

    def _config(self) -> str:
        sections: dict[str, Doc] = {
            "register": {"data_dir": str(self.folder / "data")},
            "demo": {"catalog": self.scenario.setup.get("catalog", "demo") == "demo"},
            "printer": {"connection": f"tcp:{self.printer.hostport}"},
            "payments": {"terminal": f"tcp:127.0.0.1:{self.terminal_port}"},
        }
        if self.scanners:
            profiles = []
            for scanner in self.scanners.values():
                path = self.folder / f"{scanner.name}.toml"
                path.write_text(scanner.profile(), encoding="utf-8")
                profiles.append(str(path))
            sections["scanners"] = {"profiles": profiles}
        for section, values in self.config_sections().items():
            sections.setdefault(section, {}).update(values)
        lines = []
        for section, values in sections.items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
            lines.append("")
        return "\n".join(lines)

    async def _spawn(self) -> None:
        import httpx

        from appliance.auth.tokens import bearer_headers

        self.log = open(self._log("register"), "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [str(BIN / "appliance"), "run", "--config", str(self.config_file),
             "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self._log("register").read_text(errors="replace")[-800:]
                raise StepFailed(f"register exited with {self.proc.returncode}: {tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (await self.client.get("/health")).status_code == 200:
                    self.client.headers.update(bearer_headers(self.folder / "data"))
                    if self.scanners:
                        await self._watch()
                    return
            await asyncio.sleep(0.05)
        raise StepFailed("register did not become ready within 30 s")

    async def _watch(self) -> None:
        if self.watch is not None and self.watch.task is not None:
            self.watch.task.cancel()
        self.watch = ScanWatch()
        self.watch.task = asyncio.get_running_loop().create_task(self.watch.run(self.client))
        await asyncio.wait_for(self.watch.ready.wait(), 10)

    async def _kill_register(self, sig: int) -> None:
        if self.watch is not None and self.watch.task is not None:
            self.watch.task.cancel()
            with contextlib.suppress(BaseException):
                await self.watch.task
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 10)
        self.log.close()

    async def stop(self) -> None:
        try:
            if hasattr(self, "proc"):
                await self._kill_register(signal.SIGTERM)
            await self.client.aclose()
        finally:
            for device in getattr(self, "devices", []):
                await device.stop()
            for scanner in getattr(self, "scanners", {}).values():
                scanner.close()
            await self.close_devices()

    # devices -------------------------------------------------------------------------
    async def receipt_jobs(self, pictures: bool = False) -> list[Receipt]:
        return jobs_in(self.folder / "printer", pictures)

    async def set_printer(self, step: Step, faults: Doc) -> Doc:
        answer = await self.printer.control({"cmd": "set", **faults})
        if answer.get("ok") is False:
            raise StepFailed(f"printer: {answer.get('error')}")
        return answer

    async def script_terminal(self, step: Step, spec: str) -> None:
        answer = await self.terminal.control({"cmd": "outcome", "spec": spec})
        if not answer.get("ok"):
            raise StepFailed(f"cannot script the terminal simulator: {answer}")

    async def terminal_unreachable(self, step: Step, down: bool) -> None:
        if down:
            await self.terminal.stop()
            return
        self.devices.remove(self.terminal)
        self.terminal = await terminal_process(self._log("terminal"), self.terminal_port).start()
        self.devices.append(self.terminal)

    # steps ---------------------------------------------------------------------------
    async def step_power_cut(self, step: Step) -> Any:
        await self._kill_register(signal.SIGKILL)
        await self._spawn()
        return {"killed_and_restarted": True}

    async def step_scan(self, step: Step) -> Any:
        name = step.options.get("scanner")
        if name is None:
            return await super().step_scan(step)
        scanner = self.scanners[name]
        return await self._hardware_scans(step, scanner, [(0.0, "<", step.value.encode()
                                          + TERMINATOR_BYTES[scanner.terminator])], 1)  # fmt: skip

    async def step_scan_recording(self, step: Step) -> Any:
        from hil.scanner_replay import recording_kind, replay_recording
        from hil.serial_recording import parse_serial

        text = self._recording(step)
        kind = recording_kind(text)
        if kind == "evemu":
            why = (
                "/dev/uinput is missing on this machine (the kernel has no uinput module)"
                if not os.path.exists("/dev/uinput")
                else "typing an evemu recording through /dev/uinput is done by `hil "
                "replay-scanner --tier uinput`, not by scenarios yet"
            )
            raise self.unsupported(
                step,
                f"a keyboard-wedge recording needs uinput: {why}; "
                "the inprocess tier decodes it through the wedge decoder",
            )
        if kind != "serial":
            raise self.unsupported(step, f"{kind} recordings replay with `hil replay-scanner`")
        scanner = self.scanners[step.options.get("scanner", "serial")]
        codes: list[str] = []  # what the driver's own framer makes of it: the scans to wait for
        await replay_recording(text, codes.append, tier="inprocess",
                               terminator=scanner.terminator)  # fmt: skip
        result = await self._hardware_scans(step, scanner, parse_serial(text).chunks, len(codes))
        result["expected_scans"] = codes
        return result

    async def _hardware_scans(
        self, step: Step, scanner: PtyScanner, chunks: list[tuple[float, str, bytes]], count: int
    ) -> Doc:
        """Write the bytes as the device sent them (pauses kept, capped), then wait for
        ``count`` scan outcomes on the register's event stream."""
        assert self.watch is not None
        before = len(self.watch.scans)
        last = None
        for at, direction, data in chunks:
            if direction != "<":
                continue
            if last is not None and at > last:
                await asyncio.sleep(min(at - last, 0.3))
            last = at
            await asyncio.to_thread(scanner.write, data)
        deadline = time.monotonic() + max(1.0, step.timeout_s - 1.0)
        while len(self.watch.scans) - before < count:
            if time.monotonic() > deadline:
                got = self.watch.scans[before:]
                raise StepFailed(f"the register's serial driver reported {len(got)} of {count} "
                                 f"scans from pty {scanner.path}", count, got)  # fmt: skip
            await asyncio.sleep(0.02)
        events = self.watch.scans[before:]
        for event in events:
            if event.get("ok"):
                self.last_error = None
                if event.get("action") in ("line", "customer") and event.get("sale_id"):
                    self.sale_id, self.sale_open = event["sale_id"], True
                elif event.get("action") == "receipt":
                    self.refund_of = event.get("receipt_no")
            else:
                self.last_error = event.get("error")
        return {"scans": [e["code"] for e in events], "pty": scanner.path,
                "refused": [e["code"] for e in events if not e.get("ok")]}  # fmt: skip

    async def step_expect_db(self, step: Step) -> Any:
        result = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "appliance"), "db", "check", "--config", str(self.config_file)],
            capture_output=True,
            text=True,
        )
        got = {"check": "ok" if result.returncode == 0 else "failed"}
        problems = _subset_mismatch({k: v for k, v in step.value.items() if k == "check"}, got)
        if problems:
            raise StepFailed("; ".join(problems) + " " + result.stdout[-500:], step.value, got)
        return got
