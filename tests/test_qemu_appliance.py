"""Full-system HIL stage: the appliance image booted in QEMU with virtual peripherals.

A real kernel, systemd and udev run the register from the image's read-only layers;
its database is on a separate data disk. The scanner is QEMU's USB keyboard typed
into through QMP, the card terminal the host's ZVT simulator on the guest's USB-serial
adapter, the printer a USB printer gadget inside the guest relayed to the host, the
API forwarded to 127.0.0.1. The image is built by the first run (minutes) and cached
under ~/.cache/register-appliance/image, keyed by its inputs.

Set APPLIANCE_SKIP_QEMU=1 to leave this stage out of a quick local run (it says so).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from hil.qemu.machine import GuestResult
from hil.qemu.stage import GUEST_TERMINAL, Stage, open_stage

T = TypeVar("T")
VENV = "/opt/register-appliance/venv/bin"
CONFIG = "/var/lib/register-appliance/register.toml"
SCANS = ["4006381333931", "2100002012341", "BAG"]  # coffee, bananas 1.234 kg, bag: 765
TOTAL = 765
STAGE_BUDGET_S = 600  # everything in this module, cold cache included, is bounded

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    if os.environ.get("APPLIANCE_SKIP_QEMU"):
        return "APPLIANCE_SKIP_QEMU is set"
    if os.geteuid() != 0:
        return "the QEMU stage builds its image as root (debootstrap, chroot, mounts)"
    for tool in ("qemu-system-x86_64", "debootstrap", "mksquashfs"):
        if shutil.which(tool) is None:
            return f"{tool} is missing: run ./bootstrap.sh setup"
    return None


class Runner:
    """One event loop for the module, on its own thread: the VM's console reader and
    printer relay keep running between (and during) the tests' synchronous steps."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="qemu-stage")
        self.thread.start()
        self.started = time.monotonic()

    def __call__(self, coro: Awaitable[T], timeout: float = 300) -> T:
        left = STAGE_BUDGET_S - (time.monotonic() - self.started)
        if left <= 0:
            raise AssertionError(f"the QEMU stage ran past its {STAGE_BUDGET_S} s budget")
        limit = min(timeout, left)

        async def bounded() -> T:
            return await asyncio.wait_for(coro, limit)

        return asyncio.run_coroutine_threadsafe(bounded(), self.loop).result(limit + 5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def run() -> Iterator[Runner]:
    runner = Runner()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def say(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print past pytest's capture: the image build and the stage's figures show live."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")

    def emit(message: str) -> None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(message) if reporter else print(message, flush=True)

    return emit


@pytest.fixture(scope="module")
def stage(
    run: Runner, say: Callable[[str], None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stage]:
    missing = _missing()
    if missing:
        if os.environ.get("APPLIANCE_SKIP_QEMU"):
            pytest.skip(missing)
        pytest.fail(f"the full-system HIL stage cannot run: {missing}")
    t0 = time.monotonic()
    stage = run(open_stage(tmp_path_factory.mktemp("qemu"), progress=say), timeout=STAGE_BUDGET_S)
    image = stage.image
    origin = "from the cache"
    if image.built:
        origin = f"built ({' and '.join(image.built)} layer) in {image.built_s:.0f} s"
    say(f"qemu stage: image {image.size_bytes() / 2**20:.0f} MiB (kernel {image.kernel_version}, "
        f"app {image.app_key}, base {image.base_key}); {origin}")  # fmt: skip
    try:
        boot_s = run(stage.vm.boot(timeout=180), timeout=200)
        say(f"qemu stage: boot to READY {boot_s:.1f} s ({stage.vm.accel})")
        token = guest(run, stage, ["cat", "/var/lib/register-appliance/data/api-token"])
        assert token.rc == 0 and token.stdout.strip(), token.stderr
        AUTH["Authorization"] = f"Bearer {token.stdout.strip()}"
        yield stage
    finally:
        run(stage.close(), timeout=60)
        say(f"qemu stage: {time.monotonic() - t0:.0f} s in all; boots: "
            + ", ".join(f"{b:.1f} s" for b in stage.vm.boots))  # fmt: skip


AUTH: dict[str, str] = {}  # the register's machine token, read from the data partition


def api(stage: Stage, method: str, path: str, body: Any = None) -> Any:
    resp = httpx.request(method, stage.vm.api + path, json=body, headers=AUTH, timeout=30)
    assert resp.status_code < 400, f"{method} {path}: {resp.status_code} {resp.text}"
    return resp.json()


def guest(run: Runner, stage: Stage, argv: list[str], timeout: float = 60) -> GuestResult:
    return run(stage.vm.run(argv, timeout=timeout), timeout=timeout + 20)


def as_register_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "appliance", "--", *argv]


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    """Poll the register's API or the guest's systemd: the event happens in the guest."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def open_sale_with(stage: Stage, lines: int) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        for sale in api(stage, "GET", "/api/sales?status=open"):
            if len([x for x in sale["lines"] if not x.get("voided")]) >= lines:
                return dict(sale)
        return None

    return check


def scan_and_wait(run: Runner, stage: Stage, code: str, lines: int) -> dict[str, Any]:
    run(stage.vm.type_scan(code), timeout=30)
    try:
        return wait_for(open_sale_with(stage, lines), f"scan {code} as line {lines}")
    except AssertionError as exc:
        journal = guest(run, stage, ["journalctl", "-b", "-u", "appliance-register", "-n", "30",
                                     "--no-pager"]).stdout  # fmt: skip
        raise AssertionError(f"{exc}; the register's journal:\n{journal}") from None


# --------------------------------------------------------------------------------------
def test_boot_applies_first_boot_file_on_read_only_layers(run: Runner, stage: Stage) -> None:
    status = api(stage, "GET", "/api/status")
    assert (status["register_id"], status["store_id"]) == ("Q1", "hilstore")
    written = guest(run, stage, ["cat", CONFIG]).stdout
    assert written.startswith("# Written by `appliance firstboot` from firstboot.toml")
    assert 'host = "0.0.0.0"' in written and 'data_dir = "data"' in written
    owner = guest(run, stage, ["stat", "-c", "%U %a", "/var/lib/register-appliance/data"])
    assert owner.stdout.split()[0] == "appliance"
    mounts = guest(run, stage, ["cat", "/proc/mounts"]).stdout
    root = next(line for line in mounts.splitlines() if line.split()[1] == "/")
    assert (
        root.startswith("overlay / overlay")
        and "lowerdir=/run/appliance/layers/0:/run/appliance/layers/1" in root
    )
    assert re.search(r"^/dev/vd[ab] /run/appliance/layers/\d squashfs ro", mounts, re.M), mounts
    data = next(line for line in mounts.splitlines() if "/var/lib/register-appliance" in line)
    assert data.startswith("/dev/vdc /var/lib/register-appliance ext4 rw"), data


def test_units_verify_and_hardening_in_the_guest(
    run: Runner, stage: Stage, say: Callable[[str], None]
) -> None:
    verify = guest(run, stage, ["systemd-analyze", "verify", "appliance-register.service",
                                "appliance-backoffice.service"])  # fmt: skip
    assert verify.rc == 0, verify.stderr
    security = guest(run, stage, ["systemd-analyze", "security", "--no-pager",
                                  "appliance-register.service"])  # fmt: skip
    exposure = re.search(r"Overall exposure level for appliance-register\.service: ([\d.]+)",
                         security.stdout)  # fmt: skip
    assert exposure, security.stdout[-500:]
    say(f"qemu stage: systemd-analyze security appliance-register.service: {exposure.group(1)}")
    assert float(exposure.group(1)) <= 2.0
    props = unit_properties(run, stage, "Type", "User", "WatchdogUSec", "Restart",
                            "ActiveState")  # fmt: skip
    assert props["Type"] == "notify" and props["User"] == "appliance"
    assert props["WatchdogUSec"] == "30s" and props["Restart"] == "always"
    assert props["ActiveState"] == "active"


def test_udev_gives_the_register_its_devices(run: Runner, stage: Stage) -> None:
    """firmware_configs/udev in a real udev: names by port or serial (never the kernel's
    number), root:appliance 0660 for the register's user, and the FTDI adapter that
    carries the card terminal gets no scanner name (its USB id says nothing)."""
    links = guest(run, stage, ["sh", "-c", "for l in /dev/scanner/*/* /dev/appliance/* "
                               "/dev/receipt-printer/*/* /dev/card-terminal/*/*; do "
                               "[ -e $l ] && echo $l $(readlink -f $l) $(stat -L -c '%U:%G:%a' $l)"
                               "; done"])  # fmt: skip
    found = {line.split()[0]: line.split()[1:] for line in links.stdout.splitlines()}
    by_kind: dict[str, list[tuple[str, str, str]]] = {}
    for link, (node, access) in found.items():
        by_kind.setdefault(link.split("/")[2], []).append((link, node, access))

    # The wedge scanner (QEMU's usb-kbd): by its USB port, and by its serial number.
    scanner = [s for s in by_kind.get("scanner", []) if "/by-path/" in s[0]]
    assert len(scanner) == 1 and scanner[0][0].endswith("-kbd"), found
    assert (
        re.fullmatch(r"/dev/input/event\d+", scanner[0][1])
        and scanner[0][2] == "root:appliance:660"
    )
    name = guest(run, stage, ["cat", f"/sys/class/input/{scanner[0][1].rsplit('/', 1)[1]}"
                              "/device/name"]).stdout.strip()  # fmt: skip
    assert name == "QEMU QEMU USB Keyboard"
    by_id = [s for s in by_kind.get("scanner", []) if "/by-id/" in s[0]]
    assert [s[1] for s in by_id] == [scanner[0][1]] and "0627:0001-" in by_id[0][0], found
    # The card terminal on the FTDI adapter: a port name only, no scanner or terminal name.
    serial = by_kind.get("appliance", [])
    assert len(serial) == 1 and serial[0][1] == GUEST_TERMINAL, found
    assert re.fullmatch(r"/dev/appliance/serial-pci-\S+-usb-\S+-port0", serial[0][0]), serial
    assert serial[0][2] == "root:appliance:660"
    assert not [x for x in found.items() if x[1][0] == GUEST_TERMINAL and "/appliance/" not in x[0]]
    # The USB printer (the gadget, an Epson by its ids): by port, for the register's user.
    printer = by_kind.get("receipt-printer", [])
    assert printer and all(p[1].startswith("/dev/bus/usb/") for p in printer), found
    assert {p[2] for p in printer} == {"root:appliance:660"}
    for path in (scanner[0][0], serial[0][0], printer[0][0]):
        opens = guest(
            run, stage, as_register_user(["sh", "-c", f"test -r {path} && test -w {path}"])
        )
        assert opens.rc == 0, f"the register's user cannot open {path}"
    # No rule of ours was refused by udev (it logs and skips a line it cannot parse).
    udevd = guest(
        run, stage, ["journalctl", "-b", "-u", "systemd-udevd", "--no-pager", "-o", "cat"]
    )
    complaints = [line for line in udevd.stdout.splitlines() if "appliance-" in line]
    assert not complaints, complaints
    scanners = api(stage, "GET", "/api/scanners")
    assert scanners and scanners[0]["running"] and scanners[0]["error"] is None, scanners


def test_end_to_end_scans_card_payment_receipt(run: Runner, stage: Stage) -> None:
    if api(stage, "GET", "/api/shifts/current") is None:
        api(stage, "POST", "/api/shifts", {"float_minor": 10_000})
    for n, code in enumerate(SCANS, start=1):
        sale = scan_and_wait(run, stage, code, n)
    assert [x["sku"] for x in sale["lines"]] == ["COFFEE-250", "BANANAS", "BAG"]
    assert sale["totals"]["total"] == TOTAL

    # The card payment: the register's payments talk ZVT over the guest's USB-serial
    # adapter to the host's terminal simulator.
    payment = api(stage, "POST", f"/api/sales/{sale['id']}/payments?wait=120", {})
    assert payment["state"] == "approved", payment
    done = api(stage, "GET", f"/api/sales/{sale['id']}")
    assert done["status"] == "completed" and done["receipt_no"], done
    card = done["tenders"][0]["card"]
    assert "*" in card["pan_masked"] and card["terminal_id"], card

    # The receipt: printed by the register through the guest's USB stack (pyusb, usblp
    # kept off) to the printer gadget, relayed out and rendered by the virtual printer.
    def receipt_printed(_: bytes) -> bool:
        return any(done["receipt_no"] in job.text for job in stage.printer.jobs)

    run(stage.vm.wait_printer(receipt_printed, timeout=120), timeout=130)
    job = next(j for j in stage.printer.jobs if done["receipt_no"] in j.text)
    assert job.data in bytes(stage.vm.printer)  # the bytes the guest sent, unchanged
    assert "7.65" in job.text or "7,65" in job.text, job.text
    assert card["pan_masked"][-4:] in job.text  # the card slip part: masked PAN only
    assert (stage.vm.workdir / "printer" / f"{job.number:06d}.png").stat().st_size > 0
    lsmod = guest(run, stage, ["cat", "/proc/modules"]).stdout
    assert "usblp" not in lsmod  # the blacklist held: pyusb owns the printer

    # The sale, as the back office or another register would read it.
    final = api(stage, "GET", f"/api/receipts/{done['receipt_no']}")
    assert final["status"] == "completed" and [t["kind"] for t in final["tenders"]] == ["card"]
    assert final["totals"]["total"] == TOTAL

    # All along, real systemd took the register's keep-alives: no watchdog restart.
    props = unit_properties(run, stage, "NRestarts", "WatchdogTimestampMonotonic")
    uptime_us = float(guest(run, stage, ["cat", "/proc/uptime"]).stdout.split()[0]) * 1e6
    assert props["NRestarts"] == "0"
    assert 0 < uptime_us - int(props["WatchdogTimestampMonotonic"]) < 20e6  # pinged < 20 s ago


def unit_properties(run: Runner, stage: Stage, *names: str) -> dict[str, str]:
    show = guest(run, stage, ["systemctl", "show", "appliance-register.service",
                              "-p", ",".join(names)])  # fmt: skip
    return dict(line.split("=", 1) for line in show.stdout.split())


def test_watchdog_restarts_a_hung_register(
    run: Runner, stage: Stage, say: Callable[[str], None]
) -> None:
    completed = api(stage, "GET", "/api/sales?status=completed")
    pid = unit_properties(run, stage, "MainPID")["MainPID"]
    t0 = time.monotonic()
    assert guest(run, stage, ["sh", "-c", f"kill -STOP {pid}"]).rc == 0  # hung: no keep-alives

    # systemd prints no status once booted: ask it. Active again (Type=notify) = READY.
    def restarted() -> dict[str, str] | None:
        props = unit_properties(run, stage, "MainPID", "NRestarts", "ActiveState")
        return props if props["NRestarts"] == "1" and props["ActiveState"] == "active" else None

    props = wait_for(restarted, "watchdog restart of the hung register", timeout=180)
    say(f"qemu stage: hung register restarted by the watchdog after {time.monotonic() - t0:.1f} s")
    journal = guest(run, stage, ["journalctl", "-b", "-u", "appliance-register", "--no-pager"])
    assert "Watchdog timeout" in journal.stdout, journal.stdout[-1500:]
    assert props["MainPID"] != pid
    assert api(stage, "GET", "/api/sales?status=completed") == completed


def test_power_cut_mid_sale_loses_nothing_completed(
    run: Runner, stage: Stage, say: Callable[[str], None]
) -> None:
    if api(stage, "GET", "/api/shifts/current") is None:
        api(stage, "POST", "/api/shifts", {"float_minor": 0})
    for n, code in enumerate(SCANS, start=1):
        sale = scan_and_wait(run, stage, code, n)
    paid = api(stage, "POST", f"/api/sales/{sale['id']}/tenders",
               {"kind": "cash", "amount_minor": 1000})  # fmt: skip
    assert paid["status"] == "completed"
    completed = {s["id"]: s["receipt_no"] for s in api(stage, "GET", "/api/sales?status=completed")}
    assert completed[sale["id"]] == paid["receipt_no"]

    # The next customer: two scans acknowledged, the plug pulled while the third is typed.
    scan_and_wait(run, stage, SCANS[0], 1)
    acked = scan_and_wait(run, stage, SCANS[2], 2)

    async def cut_while_typing() -> None:
        typing = asyncio.create_task(stage.vm.type_scan("4001686301265"))
        await asyncio.sleep(0.1)
        await stage.vm.power_cut()
        typing.cancel()
        await asyncio.gather(typing, return_exceptions=True)

    run(cut_while_typing(), timeout=30)
    boot_s = run(stage.vm.boot(timeout=180), timeout=200)
    say(f"qemu stage: boot to READY after the power cut {boot_s:.1f} s")

    after = {s["id"]: s["receipt_no"] for s in api(stage, "GET", "/api/sales?status=completed")}
    assert after == completed  # every completed sale, with its receipt number
    resumed = api(stage, "GET", f"/api/sales/{acked['id']}")
    assert resumed["status"] == "open"
    kept = [x["id"] for x in resumed["lines"]]
    assert kept[:2] == [x["id"] for x in acked["lines"]]  # acknowledged lines survive
    check = guest(run, stage, as_register_user([f"{VENV}/appliance", "db", "check", "--config",
                                                CONFIG]), timeout=120)  # fmt: skip
    assert check.rc == 0 and "OK" in check.stdout, check.stdout + check.stderr


def test_key_scenarios_on_the_qemu_tier(
    run: Runner, stage: Stage, say: Callable[[str], None], tmp_path: Any
) -> None:
    """The rig's scenario runner on this booted stage (no second stage): a card sale
    (approved after PIN, then a decline) and a cash sale with its receipt. The power cut
    scenario passes here too but costs one more boot (~85 s under TCG) and the power cut
    is already checked above: `hil run --tier qemu hil/scenarios/power-cut-mid-sale…`."""
    from hil.scenario.format import load_scenario
    from hil.scenario.qemu_tier import QemuTier
    from hil.scenario.report import write_report
    from hil.scenario.runner import run_scenario

    scenarios = Path(__file__).resolve().parent.parent / "hil" / "scenarios"
    QemuTier.attach(stage)
    results = []
    try:
        for name in ("card-sale", "cash-sale"):
            scenario = load_scenario(scenarios / f"{name}.scenario.toml")
            result = run(run_scenario(scenario, "qemu"), timeout=400)
            results.append(result)
            say(f"qemu stage: scenario {name} {'passed' if result.ok else 'FAILED'} "
                f"in {result.seconds:.1f} s")  # fmt: skip
            assert result.ok, [(s.title, s.error) for s in result.steps] + [result.error]
    finally:
        QemuTier.attach(None)
        write_report(results, tmp_path / "qemu-scenarios.html")
    receipts = results[1].receipts  # the cash sale waited for its receipt
    assert receipts and all(r.png for r in receipts)  # each drawn as a picture for the report
    assert any("7.65" in r.text for r in receipts)
