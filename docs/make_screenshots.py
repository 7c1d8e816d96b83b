"""Refresh docs/screenshots/*.png (the README's pictures of the main screens).

Runs the browser tests (tests/test_web_ui.py: a real register process, Debian's
chromium through Playwright, 1024×768) with APPLIANCE_SCREENSHOTS set, so each
screen the tests reach is saved as the test saw it: the sell screen, a card payment
in progress, the change due, an approval, the offline banners, and the admin
panel's status, peripherals, settings, saved sales (with an unreachable register),
shifts, Z report, catalog import and receipt preview.

    .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    env = {**os.environ, "APPLIANCE_SCREENSHOTS": "docs/screenshots", "CI": "1"}
    cmd = [sys.executable, "-m", "pytest", "tests/test_web_ui.py", "-q", "-x"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    shots = sorted((ROOT / "docs" / "screenshots").glob("*.png"))
    for path in shots:
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
