"""The bench tier: the same scenarios against real devices named in a bench file.

A bench file (TOML) says where the bench's register answers and how scans reach it:

    [register]
    url = "http://192.0.2.10:8080"       # the register under test
    token_file = "bench-api-token"       # a copy of the register's <data_dir>/api-token

    [scanner]
    inject = "hidg"                      # api | uinput | hidg
    device = "/dev/hidg0"                # for hidg: the USB HID gadget the register sees

``api`` posts the code to the register (the scan path without the driver);
``uinput`` types it on a virtual keyboard on the bench host (the register must run
there); ``hidg`` writes USB HID keyboard reports to a gadget that is plugged into the
register, so the scan travels the real USB and evdev path. Codes are typed with the
US layout followed by Enter — set the scanner profile on the register accordingly.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from pathlib import Path
from typing import Any

from hil.scenario.format import Scenario, Step
from hil.scenario.tiers import StepFailed, Tier

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


class BenchTier(Tier):
    name = "bench"

    def __init__(self, scenario: Scenario, bench_file: Path | None = None) -> None:
        super().__init__(scenario)
        self.bench_file = bench_file or Path(os.environ.get("HIL_BENCH_CONFIG", "bench.toml"))

    async def start(self) -> None:
        import httpx

        try:
            self.bench: dict[str, Any] = tomllib.loads(self.bench_file.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise StepFailed(f"bench file {self.bench_file}: {exc}") from None
        url = self.bench.get("register", {}).get("url")
        if not url:
            raise StepFailed(f"bench file {self.bench_file}: register.url is required")
        token_file = self.bench.get("register", {}).get("token_file")
        if not token_file:
            raise StepFailed(
                f"bench file {self.bench_file}: register.token_file is required (a copy of "
                "the register's <data_dir>/api-token: the API needs its machine token)"
            )
        try:
            token = Path(token_file).read_text(encoding="ascii").strip()
        except OSError as exc:
            raise StepFailed(f"bench file {self.bench_file}: register.token_file: {exc}") from None
        self.client = httpx.AsyncClient(
            base_url=url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        self.inject = self.bench.get("scanner", {}).get("inject", "api")
        if self.inject not in ("api", "uinput", "hidg"):
            raise StepFailed("bench file: scanner.inject must be api, uinput or hidg")
        await self._setup()

    async def stop(self) -> None:
        await self.client.aclose()

    async def step_scan(self, step: Step) -> Any:
        if self.inject == "api":
            return await super().step_scan(step)
        before = await self._ok("GET", "/api/sales?status=open")
        if self.inject == "hidg":
            device = self.bench.get("scanner", {}).get("device", "/dev/hidg0")
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
