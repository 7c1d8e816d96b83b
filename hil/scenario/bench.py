"""The bench tier: the same scenarios against real devices named in a bench file.

A bench file (TOML) says where the bench's register answers, how scans reach it and
where its printer and card terminal are:

    [register]
    url = "http://192.0.2.10:8080"       # the register under test
    token_file = "bench-api-token"       # a copy of the register's <data_dir>/api-token

    [scanner]
    inject = "hidg"                      # api | uinput | hidg
    device = "/dev/hidg0"                # for hidg: the USB HID gadget the register sees

    [printer]                            # optional: receipts for expect_receipt
    tee = "0.0.0.0:9100"                 # the rig listens here: the register prints to it
    target = "192.0.2.20:9100"           # the real network printer the rig relays to
    control = "192.0.2.20:9101"          # optional: when it is `hil printer` (faults)

    [terminal]                           # optional: the card terminal the register uses
    address = "192.0.2.30:20007"
    control = "192.0.2.30:20008"         # optional: when it is `hil terminal` (outcomes)

``api`` posts the code to the register (the scan path without the driver);
``uinput`` types it on a virtual keyboard on the bench host (the register must run
there); ``hidg`` writes USB HID keyboard reports to a gadget that is plugged into the
register, so the scan travels the real USB and evdev path. Codes are typed with the
US layout followed by Enter — set the scanner profile on the register accordingly.

The printer tee (hil/scenario/session_record.py's, the recorder's) forwards every
byte both ways unchanged and cuts a copy of the register's bytes into jobs, so
``expect_receipt`` reads what the register sent the real printer. ``printer`` fault
steps need the printer's ``control`` channel (the virtual printer), and ``pay_card``
with a scripted outcome the terminal's (the ZVT simulator); a real device cannot be
switched, so such a step fails saying so. ``pay_card = ""`` pays with whatever the
terminal answers. A problem in the file fails the run as ``FILE: key: problem``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.json_lines import control_request
from hil.scenario.format import Scenario, Step
from hil.scenario.receipts import Receipt, jobs_in
from hil.scenario.session_record import TcpTee, printer_tee
from hil.scenario.tiers import Doc, StepFailed, Tier

# HID usage ids of the US layout (boot keyboard): char -> (usage, shift)
_HID: dict[str, tuple[int, bool]] = {}
for _i, _c in enumerate("abcdefghijklmnopqrstuvwxyz"):
    _HID[_c] = (0x04 + _i, False)
    _HID[_c.upper()] = (0x04 + _i, True)
for _i, _c in enumerate("1234567890"):
    _HID[_c] = (0x1E + _i, False)
_HID.update(
    {
        "\n": (0x28, False),
        "\t": (0x2B, False),
        " ": (0x2C, False),
        "-": (0x2D, False),
        ".": (0x37, False),
        "/": (0x38, False),
        "]": (0x30, False),
        "_": (0x2D, True),
    }
)
ENTER = "\n"


def hid_reports(text: str) -> bytes:
    """8-byte boot-keyboard reports: a press and a release per character."""
    out = bytearray()
    for char in text:
        if char not in _HID:
            raise StepFailed(f"cannot type {char!r} on the US layout through the HID gadget")
        usage, shift = _HID[char]
        out += bytes([0x02 if shift else 0, 0, usage, 0, 0, 0, 0, 0])
        out += bytes(8)
    return bytes(out)


# section -> key -> required? (every other key is a mistake worth naming)
BENCH_KEYS: dict[str, dict[str, bool]] = {
    "register": {"url": True, "token_file": True},
    "scanner": {"inject": False, "device": False},
    "printer": {"tee": True, "target": True, "control": False},
    "terminal": {"address": True, "control": False},
}
ADDRESSES = {"printer.tee", "printer.target", "printer.control", "terminal.address",
             "terminal.control"}  # fmt: skip


class BenchFileError(StepFailed):
    """A problem in the bench file: ``FILE: key: problem``."""

    def __init__(self, file: Path, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


def host_port(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT`` too) as an address, None when it is not one."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


@dataclass
class Bench:
    """A checked bench file: the register, the scan path and the optional devices."""

    url: str
    token_file: Path
    inject: str = "api"
    device: str = "/dev/hidg0"
    printer_tee: tuple[str, int] | None = None
    printer_target: tuple[str, int] | None = None
    printer_control: tuple[str, int] | None = None
    terminal: tuple[str, int] | None = None
    terminal_control: tuple[str, int] | None = None


def load_bench(file: Path) -> Bench:
    """Read and check a bench file; every problem names the file and the key."""
    try:
        doc = tomllib.loads(file.read_text("utf-8"))
    except OSError as exc:
        raise BenchFileError(file, "", exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchFileError(file, "", f"not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for section, table in doc.items():
        if section not in BENCH_KEYS:
            raise BenchFileError(file, section, f"unknown section (use {', '.join(BENCH_KEYS)})")
        if not isinstance(table, dict):
            raise BenchFileError(file, section, "must be a table ([section])")
        for key, value in table.items():
            if key not in BENCH_KEYS[section]:
                known = ", ".join(BENCH_KEYS[section])
                raise BenchFileError(file, f"{section}.{key}", f"unknown key (use {known})")
            if not isinstance(value, str) or not value.strip():
                raise BenchFileError(file, f"{section}.{key}", "must be a non-empty string")
            name = f"{section}.{key}"
            if name in ADDRESSES:
                address = host_port(value)
                if address is None:
                    raise BenchFileError(file, name, f"{value!r} is not HOST:PORT")
                values[name] = address
            else:
                values[name] = value
        for key, required in BENCH_KEYS[section].items():
            if required and key not in table:
                raise BenchFileError(file, f"{section}.{key}", f"required in [{section}]")
    if "register" not in doc:
        raise BenchFileError(file, "register.url", "required ([register] names the register)")
    inject = values.get("scanner.inject", "api")
    if inject not in ("api", "uinput", "hidg"):
        raise BenchFileError(file, "scanner.inject", f"{inject!r}: use api, uinput or hidg")
    return Bench(
        url=values["register.url"],
        token_file=Path(values["register.token_file"]),
        inject=inject,
        device=values.get("scanner.device", "/dev/hidg0"),
        printer_tee=values.get("printer.tee"),
        printer_target=values.get("printer.target"),
        printer_control=values.get("printer.control"),
        terminal=values.get("terminal.address"),
        terminal_control=values.get("terminal.control"),
    )


class BenchTier(Tier):
    name = "bench"

    def __init__(self, scenario: Scenario, bench_file: Path | None = None) -> None:
        super().__init__(scenario)
        self.bench_file = bench_file or Path(os.environ.get("HIL_BENCH_CONFIG", "bench.toml"))
        self.tee: TcpTee | None = None

    async def start(self) -> None:
        import httpx

        self.bench = load_bench(self.bench_file)
        try:
            token = self.bench.token_file.read_text(encoding="ascii").strip()
        except OSError as exc:
            raise BenchFileError(
                self.bench_file, "register.token_file",
                f"{exc.strerror} (a copy of the register's <data_dir>/api-token: the API "
                "needs its machine token)",
            ) from None  # fmt: skip
        self.client = httpx.AsyncClient(
            base_url=self.bench.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        self.inject = self.bench.inject
        self.folder = Path(tempfile.mkdtemp(prefix="hil-bench-"))
        if self.bench.printer_tee is not None and self.bench.printer_target is not None:
            self.tee = printer_tee(self.bench.printer_target, self.folder)
            try:
                await self.tee.start(*self.bench.printer_tee)
            except OSError as exc:
                raise BenchFileError(
                    self.bench_file, "printer.tee", f"cannot listen there: {exc.strerror}"
                ) from None
        await self._setup()

    async def stop(self) -> None:
        if self.tee is not None:
            self.tee.close()
        if hasattr(self, "client"):
            await self.client.aclose()
        await self.close_devices()

    # devices -------------------------------------------------------------------------
    async def receipt_jobs(self, pictures: bool = False) -> list[Receipt]:
        if self.tee is None:
            return []
        return jobs_in(self.folder / "printer", pictures)

    async def step_expect_receipt(self, step: Step) -> Any:
        if self.tee is None:
            raise self.unsupported(
                step, f"{self.bench_file} has no [printer] (tee and target) to read receipts"
            )
        return await super().step_expect_receipt(step)

    async def set_printer(self, step: Step, faults: Doc) -> Doc:
        if self.bench.printer_control is None:
            raise self.unsupported(
                step, "the bench has no printer control ([printer] control: a `hil printer`)"
            )
        answer = await control_request(self.bench.printer_control, {"cmd": "set", **faults})
        if answer.get("ok") is False:
            raise StepFailed(f"printer: {answer.get('error')}")
        return answer

    async def script_terminal(self, step: Step, spec: str) -> None:
        if self.bench.terminal is None:
            await super().script_terminal(step, spec)  # the register's own simulator
            return
        if self.bench.terminal_control is None:
            raise self.unsupported(
                step, f"the bench terminal at {self.bench.terminal[0]}:{self.bench.terminal[1]} "
                f"cannot be scripted (no [terminal] control); use pay_card = \"\" to pay as it "
                "answers",
            )  # fmt: skip
        answer = await control_request(
            self.bench.terminal_control, {"cmd": "outcome", "spec": spec}
        )
        if not answer.get("ok"):
            raise StepFailed(f"cannot script the bench's terminal simulator: {answer}")

    async def terminal_unreachable(self, step: Step, down: bool) -> None:
        raise self.unsupported(step, "the rig cannot take the bench's terminal away")

    # steps ---------------------------------------------------------------------------
    async def step_scan(self, step: Step) -> Any:
        if self.inject == "api":
            return await super().step_scan(step)
        before = await self._ok("GET", "/api/sales?status=open")
        if self.inject == "hidg":
            device = self.bench.device
            if not os.path.exists(device):
                raise StepFailed(f"HID gadget {device} does not exist on this bench host")
            data = hid_reports(step.value + ENTER)
            await asyncio.to_thread(Path(device).write_bytes, data)
        else:
            if not os.path.exists("/dev/uinput"):
                raise StepFailed("/dev/uinput missing on this machine: cannot type a scan")
            await asyncio.to_thread(_type_uinput, step.value)
        # The scan went through the register's own driver: find the sale it landed in.
        for _ in range(50):
            sales = await self._ok("GET", "/api/sales?status=open")
            if sales != before and sales:
                newest = max(sales, key=lambda s: s.get("updated_hlc", ""))
                self.sale_id, self.sale_open = newest["id"], True
                return {"sale": newest["id"]}
            await asyncio.sleep(0.1)
        raise StepFailed("the register did not register the scan within 5 s")


def _type_uinput(text: str) -> None:
    from evdev import UInput, ecodes

    keys = {c: getattr(ecodes, f"KEY_{c.upper()}") for c in "abcdefghijklmnopqrstuvwxyz0123456789"}
    with UInput(name="hil bench scanner") as ui:
        for char in text:
            code = keys.get(char.lower())
            if code is None:
                raise StepFailed(f"cannot type {char!r} through uinput")
            if char.isupper():
                ui.write(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 1)
            ui.write(ecodes.EV_KEY, code, 1)
            ui.write(ecodes.EV_KEY, code, 0)
            if char.isupper():
                ui.write(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 0)
            ui.syn()
        ui.write(ecodes.EV_KEY, ecodes.KEY_ENTER, 1)
        ui.write(ecodes.EV_KEY, ecodes.KEY_ENTER, 0)
        ui.syn()
