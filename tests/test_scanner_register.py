"""A serial scanner configured in a real register process: bytes on a pty become sale lines."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from tests.conftest import RegisterProcess


def test_scans_from_a_configured_serial_scanner_become_sale_lines(tmp_path: Path) -> None:
    master, slave = os.openpty()
    link = tmp_path / "scanner-serial"
    link.symlink_to(os.ttyname(slave))
    os.close(slave)
    profile = tmp_path / "counter-scanner.toml"
    profile.write_text(
        'name = "test scanner"\ninterface = "serial"\n'
        f'[serial]\nport = "{link}"\nbaud = 9600\nterminator = "cr"\n'
    )
    config = tmp_path / "register.toml"
    config.write_text(f'[scanners]\nprofiles = ["{profile}"]\n')
    proc = RegisterProcess(tmp_path / "data", config_file=config)
    try:
        proc.start()
        time.sleep(0.5)
        os.write(master, b"4006381333931\r")  # coffee
        os.write(master, b"4006381333932\r")  # a misread: refused, nothing added
        os.write(master, b"BAG\r")
        deadline = time.monotonic() + 10
        lines: list[str] = []
        while time.monotonic() < deadline:
            sales = httpx.get(
                f"{proc.url}/api/sales", params={"status": "open"}, headers=proc.headers
            ).json()
            lines = [x["sku"] for s in sales for x in s["lines"]]
            if len(lines) >= 2:
                break
            time.sleep(0.1)
        assert lines == ["COFFEE-250", "BAG"]
        status = httpx.get(f"{proc.url}/api/scanners", headers=proc.headers).json()
        assert status == [
            {"scanner_id": "counter-scanner", "running": True, "error": None, "last_scan": "BAG"}
        ]
    finally:
        proc.stop()
        os.close(master)
