"""Scanners configured in a real register process: bytes on a pty and notifications
from a BLE scanner become sale lines, and the status API says which scanner is
running, what it read last and why one stopped."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hil.ble_rig import VirtualBleLink, VirtualBleScanner
from tests.conftest import RegisterProcess


class BleRig:
    """The virtual radio and a BLE scanner, on an event loop in a thread of the test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def setup() -> str:
            self.link = VirtualBleLink()
            spec = await self.link.serve_controller()
            self.scanner = VirtualBleScanner(self.link, name="Counter BLE")
            await self.scanner.start()
            return spec

        self.spec = self.run(setup())

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def teardown() -> None:
            await self.scanner.close()
            await self.link.close()

        self.run(teardown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def ble_rig() -> Iterator[BleRig]:
    rig = BleRig()
    yield rig
    rig.close()


def _has_system_bus() -> bool:
    return Path("/run/dbus/system_bus_socket").exists()


def _lines(proc: RegisterProcess, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline:
        sales = httpx.get(
            f"{proc.url}/api/sales", params={"status": "open"}, headers=proc.headers
        ).json()
        lines = [x["sku"] for s in sales for x in s["lines"]]
        if len(lines) >= count:
            break
        time.sleep(0.05)
    return lines


def test_serial_and_ble_scanners_in_a_register_process_make_sale_lines(
    tmp_path: Path, ble_rig: BleRig
) -> None:
    master, slave = os.openpty()
    link = tmp_path / "scanner-serial"
    link.symlink_to(os.ttyname(slave))
    os.close(slave)
    (tmp_path / "counter-scanner.toml").write_text(
        'name = "test scanner"\ninterface = "serial"\n'
        f'[serial]\nport = "{link}"\nbaud = 9600\nterminator = "cr"\n'
    )
    (tmp_path / "counter-ble.toml").write_text(
        'name = "BLE scanner"\ninterface = "ble"\n'
        f'[ble]\nname = "Counter BLE"\ntransport = "bumble:{ble_rig.spec}"\nbackoff_min_s = 0.1\n'
    )
    profiles = ["counter-scanner.toml", "counter-ble.toml"]  # relative to the config file
    if not _has_system_bus():  # a BLE scanner on this machine's (absent) Bluetooth stack
        (tmp_path / "no-stack.toml").write_text(
            'interface = "ble"\n[ble]\nname = "BarcodeScanner"\nscan_timeout_s = 1\n'
        )
        profiles.append("no-stack.toml")
    config = tmp_path / "register.toml"
    config.write_text(f"[scanners]\nprofiles = {profiles!r}\n".replace("'", '"'))
    proc = RegisterProcess(tmp_path / "data", config_file=config)
    try:
        proc.start()
        ble_rig.run(asyncio.wait_for(ble_rig.scanner.subscribed.wait(), 15))
        os.write(master, b"4006381333931\r")  # coffee
        os.write(master, b"4006381333932\r")  # a misread: refused, nothing added
        os.write(master, b"\x00\x13\r")  # line noise: counted, not a product
        os.write(master, b"2000000000022\r")  # a bag
        assert _lines(proc, 2) == ["COFFEE-250", "BAG"]
        ble_rig.run(ble_rig.scanner.send(b"]E05449000000996\r2100002012341\r"))  # water, bananas
        assert _lines(proc, 4) == ["COFFEE-250", "BAG", "WATER-6", "BANANAS"]
        status = {
            s["scanner_id"]: s
            for s in httpx.get(f"{proc.url}/api/scanners", headers=proc.headers).json()
        }
        assert status["counter-scanner"] == {
            "scanner_id": "counter-scanner", "running": True, "error": None,
            "last_scan": "2000000000022", "device": str(link), "rejected": 0, "noise": 1,
        }  # fmt: skip
        assert status["counter-ble"] == {
            "scanner_id": "counter-ble", "running": True, "error": None,
            "last_scan": "2100002012341", "device": ble_rig.scanner.address, "rejected": 0,
            "noise": 0,
        }  # fmt: skip
        if "no-stack" in status:
            assert status["no-stack"]["running"] is False
            assert status["no-stack"]["error"].startswith("no Bluetooth stack on this machine")
    finally:
        proc.stop()
        os.close(master)


def test_a_bad_scanner_profile_stops_the_start_with_its_file_and_key(tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import VENV_BIN

    profile = tmp_path / "wedge.toml"
    profile.write_text('interface = "evdev"\n[match]\nname = "x"\n[keyboard]\nlayout = "dvorak"\n')
    config = tmp_path / "register.toml"
    config.write_text('[scanners]\nprofiles = ["wedge.toml"]\n')
    result = subprocess.run(
        [str(VENV_BIN / "appliance"), "run", "--config", str(config), "--port", "0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{profile}: keyboard.layout: use one of us, uk, de, fr, es, it" in result.stderr


def test_a_scanner_on_the_card_terminals_port_stops_the_start(tmp_path: Path) -> None:
    """A generic USB-serial adapter's USB id cannot tell a scanner from a card terminal
    (firmware_configs/udev), so the config names the ports; a scanner profile on the
    terminal's port — here by another name of the same pty — is refused at start."""
    import subprocess

    from tests.conftest import VENV_BIN

    master, slave = os.openpty()
    try:
        terminal = os.ttyname(slave)
        link = tmp_path / "serial-pci-0000_00_04_0-usb-0_1_1_0-port0"
        link.symlink_to(terminal)
        profile = tmp_path / "rs232.toml"
        profile.write_text(f'interface = "serial"\n[serial]\nport = "{link}"\nbaud = 9600\n')
        config = tmp_path / "register.toml"
        config.write_text(f'[scanners]\nprofiles = ["rs232.toml"]\n'
                          f'[payments]\nterminal = "serial:{terminal}"\n')  # fmt: skip
        result = subprocess.run(
            [str(VENV_BIN / "appliance"), "run", "--config", str(config), "--port", "0"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        os.close(master)
        os.close(slave)
    assert result.returncode == 2, result.stderr
    assert f"{profile}: serial.port {link} is the card terminal's port" in result.stderr
