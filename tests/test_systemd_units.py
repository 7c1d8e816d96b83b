"""The units in systemd/ pass `systemd-analyze verify`, and the register's is hardened.

Verified in a scratch root that holds the host's systemd units, ours, and the
appliance's real entry point at its image path (/opt/register-appliance/venv/bin is
this checkout's venv), so verify checks every directive and every ExecStart binary.
The QEMU stage checks the same units again inside the booted image.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "systemd").glob("*.service"))
HOST_UNITS = Path("/usr/lib/systemd/system")
MAX_EXPOSURE = 2.0  # systemd-analyze's scale: < 2 is "OK", 10 is "UNSAFE"


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is missing: ./bootstrap.sh setup installs systemd")
    return tool


@pytest.fixture(scope="module")
def unit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unit-root")
    units = root / "usr/lib/systemd/system"
    shutil.copytree(HOST_UNITS, units, symlinks=True)
    for unit in UNITS:
        shutil.copy2(unit, units / unit.name)
    venv_bin = root / "opt/register-appliance/venv/bin"
    venv_bin.mkdir(parents=True)
    # Copies, not links: verify resolves links inside the root.
    shutil.copy2(Path(sys.executable).parent / "appliance", venv_bin / "appliance")
    for binary in ("cage", "chromium"):  # the kiosk's, from the host when installed
        found = shutil.which(binary)
        if found:
            (root / "usr/bin").mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, root / "usr/bin" / binary)
    return root


def test_there_are_units() -> None:
    names = {u.name for u in UNITS}
    assert {"appliance-register.service", "appliance-backoffice.service",
            "appliance-kiosk.service"} <= names  # fmt: skip


@pytest.mark.parametrize("unit", [u.name for u in UNITS])
def test_systemd_analyze_verify(unit_root: Path, unit: str) -> None:
    if unit == "appliance-kiosk.service" and not (unit_root / "usr/bin/cage").exists():
        pytest.fail("cage is missing here: ./bootstrap.sh setup installs cage and chromium")
    result = subprocess.run([_analyze(), "verify", f"--root={unit_root}", unit],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_register_unit_is_notify_watchdog_restart_and_hardened(unit_root: Path) -> None:
    text = (ROOT / "systemd/appliance-register.service").read_text()
    for directive in ("Type=notify", "WatchdogSec=", "Restart=always", "User=appliance",
                      "StateDirectory=register-appliance", "ProtectSystem=strict",
                      "PrivateTmp=yes", "NoNewPrivileges=yes", "DevicePolicy=closed"):  # fmt: skip
        assert re.search(rf"^{re.escape(directive)}", text, re.M), directive
    result = subprocess.run([_analyze(), "security", "--offline=true", f"--root={unit_root}",
                             "appliance-register.service"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    found = re.search(r"Overall exposure level for appliance-register\.service: ([\d.]+)",
                      result.stdout)  # fmt: skip
    assert found, result.stdout[-400:] + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE


def test_kiosk_unit_starts_on_its_start_page_with_software_rendering() -> None:
    """The image has no GL drivers and chromium may drop its first navigation on a slow
    CPU: cage draws with pixman, chromium composites in software, and the first page is
    the local start page (firmware_configs/kiosk) that waits for the register."""
    import json

    text = (ROOT / "systemd/appliance-kiosk.service").read_text()
    assert re.search(r"^Environment=.*WLR_RENDERER=pixman", text, re.M)
    assert "--disable-gpu" in text and "--ozone-platform=wayland" in text
    start = re.search(r"file://(/\S+\.html)", text)
    assert start, "the kiosk opens a local start page"
    page = ROOT / "firmware_configs/kiosk" / start.group(1).lstrip("/")
    assert "http://127.0.0.1:8080/" in page.read_text()
    policy = json.loads(
        (
            ROOT / "firmware_configs/kiosk/etc/chromium/policies/managed/register-appliance.json"
        ).read_text()
    )
    assert policy["PasswordManagerEnabled"] is False
    assert policy["AutofillCreditCardEnabled"] is False
    assert "file://" + start.group(1).rsplit("/", 1)[0] + "/" in policy["URLAllowlist"]
