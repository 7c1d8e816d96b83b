"""The qemu tier: scenarios against the appliance image booted in QEMU (hil/qemu).

The register runs from the image's read-only layers under real systemd, its data on
its own disk; the rig drives the stage's peripherals:

- ``scan``: typed on QEMU's USB keyboard through QMP (the register's evdev driver
  decodes it), the outcome read from the register's own ``/events`` stream;
- ``pay_card``: the host's ZVT simulator on the guest's USB-serial adapter, its
  outcome scripted over the simulator's control channel;
- ``printer`` / ``expect_receipt``: the host's virtual printer behind the guest's USB
  printer gadget (faults switched on it directly; receipts are its jobs);
- ``power_cut``: SIGKILL of QEMU and a fresh boot from the same disks;
- ``expect_db``: ``appliance db check`` in the guest as the register's user.

The image comes from the cache (built on first use: minutes). A stage can be handed
in (``QemuTier.attach``) so a test session that already booted one reuses it.
Steps are given ``TIME_SCALE`` times their bound: TCG emulation is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.scenario.format import Scenario, Step
from hil.scenario.receipts import Receipt
from hil.scenario.tiers import Doc, StepFailed, Tier, _subset_mismatch
from hil.scenario.virtual import ScanWatch

VENV = "/opt/register-appliance/venv/bin"
CONFIG = "/var/lib/register-appliance/register.toml"
TOKEN = "/var/lib/register-appliance/data/api-token"


class QemuTier(Tier):
    name = "qemu"
    start_timeout_s = 900.0  # a cold image build is minutes; a boot under TCG ~1 min
    time_scale = 4.0

    _shared: Any = None  # a Stage handed in by attach()

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.stage: Any = None
        self.owned = False
        self.watch: ScanWatch | None = None

    @classmethod
    def attach(cls, stage: Any) -> None:
        """Run the following scenarios on this already booted stage (not closed here)."""
        cls._shared = stage

    async def start(self) -> None:
        from hil.qemu.stage import open_stage

        if self.scenario.setup.get("config"):
            raise StepFailed("setup.config is not available on the qemu tier: the image's "
                             "register is configured by its first-boot file")  # fmt: skip
        if type(self)._shared is not None:
            self.stage = type(self)._shared
        else:
            self.folder = Path(tempfile.mkdtemp(prefix="hil-qemu-"))
            self.stage = await open_stage(self.folder)
            self.owned = True
            await self.stage.vm.boot(timeout=300)
        self.printed_before = len(self.stage.printer.jobs)
        await self._connect()
        await self._clear_counter()
        await self._setup()

    async def _clear_counter(self) -> None:
        """A hardware scan lands in the register's open sale: a sale left open by an
        earlier run on this VM is parked (kept, named), so the scenario starts at an
        empty counter."""
        for sale in await self._ok("GET", "/api/sales?status=open"):
            await self._ok("POST", f"/api/sales/{sale['id']}/park",
                           {"name": f"left open {sale['id'][-6:]}"})  # fmt: skip

    async def _connect(self) -> None:
        import httpx

        token = await self.stage.vm.run(["cat", TOKEN], timeout=30)
        if token.rc != 0 or not token.stdout.strip():
            raise StepFailed(f"cannot read the register's machine token: {token.stderr}")
        self.client = httpx.AsyncClient(
            base_url=self.stage.vm.api,
            timeout=30,
            headers={"Authorization": f"Bearer {token.stdout.strip()}"},
        )
        self.watch = ScanWatch()
        self.watch.task = asyncio.get_running_loop().create_task(self.watch.run(self.client))
        await asyncio.wait_for(self.watch.ready.wait(), 30)

    async def _disconnect(self) -> None:
        if self.watch is not None and self.watch.task is not None:
            self.watch.task.cancel()
            with contextlib.suppress(BaseException):
                await self.watch.task
        if hasattr(self, "client"):
            await self.client.aclose()

    async def stop(self) -> None:
        try:
            await self._disconnect()
        finally:
            if self.owned and self.stage is not None:
                await self.stage.close()

    # devices ----------------------------------------------------------------------
    async def receipt_jobs(self, pictures: bool = False) -> list[Receipt]:
        folder = self.stage.vm.workdir / "printer"
        found = []
        for job in self.stage.printer.jobs[self.printed_before :]:
            png = folder / f"{job.number:06d}.png"
            data = png.read_bytes() if pictures and png.exists() else None
            found.append(Receipt(job.number, job.text, data))
        return found

    async def set_printer(self, step: Step, faults: Doc) -> Doc:
        state: Doc = self.stage.printer.set(**faults)
        return state

    async def script_terminal(self, step: Step, spec: str) -> None:
        answer = await self.stage.terminal.control({"cmd": "outcome", "spec": spec})
        if not answer.get("ok"):
            raise StepFailed(f"cannot script the terminal simulator: {answer}")

    # steps --------------------------------------------------------------------------
    async def step_scan(self, step: Step) -> Any:
        if step.options.get("scanner"):
            raise self.unsupported(step, "the stage has one scanner (the USB keyboard)")
        assert self.watch is not None
        before = len(self.watch.scans)
        await self.stage.vm.type_scan(step.value)
        deadline = time.monotonic() + max(1.0, step.timeout_s * self.time_scale - 1.0)
        while len(self.watch.scans) == before:
            if time.monotonic() > deadline:
                raise StepFailed(f"the register reported no scan of {step.value!r} typed on "
                                 "the USB keyboard")  # fmt: skip
            await asyncio.sleep(0.05)
        event = self.watch.scans[before]
        if event.get("code") != step.value:  # the typing lost or changed keys on the way
            raise StepFailed(
                f"typed {step.value!r} on the USB keyboard, the register read "
                f"{event.get('code')!r} (keys lost between QMP and the evdev driver)",
                step.value, event.get("code"),
            )  # fmt: skip
        if not event.get("ok"):
            self.last_error = event.get("error")
            return {"refused": self.last_error}
        self.last_error = None
        if event.get("action") in ("line", "customer"):
            self.sale_id, self.sale_open = event["sale_id"], True
        elif event.get("action") == "receipt":
            self.refund_of = event.get("receipt_no")
        return {"action": event.get("action"), "typed": step.value}

    async def step_scan_recording(self, step: Step) -> Any:
        raise self.unsupported(step, "recordings replay on the inprocess and virtual tiers")

    async def _card_payment(self, step: Step, sale: Doc, amount: int) -> Any:
        scaled = Step(step.index, step.line, step.action, step.value, step.options,
                      step.timeout_s * self.time_scale)  # fmt: skip
        return await super()._card_payment(scaled, sale, amount)

    async def _poll(self, step: Step, read: Any, expected: Doc) -> Doc:
        scaled = Step(step.index, step.line, step.action, step.value, step.options,
                      step.timeout_s * self.time_scale)  # fmt: skip
        return await super()._poll(scaled, read, expected)

    async def step_power_cut(self, step: Step) -> Any:
        await self._disconnect()
        await self.stage.vm.power_cut()
        took = await self.stage.vm.boot(timeout=300)
        await self._connect()
        return {"killed_qemu_and_booted_in_s": round(took, 1)}

    async def step_expect_db(self, step: Step) -> Any:
        argv = ["runuser", "-u", "appliance", "--", f"{VENV}/appliance", "db", "check",
                "--config", CONFIG]  # fmt: skip
        result = await self.stage.vm.run(argv, timeout=120)
        got = {"check": "ok" if result.rc == 0 else "failed"}
        problems = _subset_mismatch({k: v for k, v in step.value.items() if k == "check"}, got)
        if problems:
            raise StepFailed("; ".join(problems) + " " + result.stdout[-500:], step.value, got)
        return got
