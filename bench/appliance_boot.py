"""Appliance image: build time, size, and boot to READY in QEMU (s).

Builds (or takes from the cache) the image, then boots it ``--runs`` times on one data
disk: the first boot applies the first-boot file, later ones are ordinary restarts.
For each boot: host seconds from QEMU's start to the register's READY, and the guest's
own split (systemd-analyze: kernel + initramfs, userspace) plus when the register
unit started and became ready. Baseline in the same run: the register's cold start
as a host process is in bench/cold_start.py; here the ratio that matters is
userspace time spent before the register starts versus in the register's start.

Usage: python bench/appliance_boot.py [--runs N] [--cold]   (root; --cold: new cache)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hil.qemu.image import ensure_image
from hil.qemu.stage import open_stage


async def main(runs: int, cold: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp:
        cache = Path(tmp) / "cache" if cold else None
        t0 = time.monotonic()
        image = ensure_image(cache)
        built = time.monotonic() - t0
        what = " and ".join(image.built) + " layer built" if image.built else "from the cache"
        print(f"image: {image.size_bytes() / 2**20:.0f} MiB ({what} in {built:.1f} s)")
        for layer in image.layers:
            print(f"  {layer.name}: {layer.stat().st_size / 2**20:.0f} MiB")
        stage = await open_stage(Path(tmp) / "vm", image=image)
        try:
            for n in range(1, runs + 1):
                ready = await stage.vm.boot(timeout=300)
                analyze = (await stage.vm.run(["systemd-analyze"], timeout=60)).stdout
                unit = (await stage.vm.run(["systemctl", "show", "appliance-register",
                        "-p", "ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic"],
                        timeout=30)).stdout  # fmt: skip
                props = dict(line.split("=", 1) for line in unit.split())
                started = int(props["ExecMainStartTimestampMonotonic"]) / 1e6
                active = int(props["ActiveEnterTimestampMonotonic"]) / 1e6
                split = re.search(r"in (.*?) \(kernel\) \+ (.*?) \(userspace\)", analyze)
                load = os.getloadavg()[0]
                kernel, user = split.groups() if split else ("?", "?")
                print(
                    f"boot {n}: READY {ready:.1f} s on the host ({stage.vm.accel}, host load "
                    f"{load:.1f}); guest: kernel {kernel}, userspace {user}; register "
                    f"started at {started:.1f} s, ready at {active:.1f} s "
                    f"(its start {active - started:.1f} s)"
                )
                await stage.vm.shutdown()
        finally:
            await stage.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="build into a fresh cache")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.cold))
