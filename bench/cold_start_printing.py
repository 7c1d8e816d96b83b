"""Register cold start with printing enabled vs without, in the same run (ratio).

Starts `appliance run` (a restart on an existing data folder, the common case) with
``printer.connection = "none"`` (baseline), ``"simulated"`` (the default: virtual
printer in-process) and ``"tcp:…"`` (a network printer, the virtual one on loopback:
python-escpos is loaded by the worker after start-up), and measures spawn → first
200 from /health, and resident memory when ready. Runs alternate between the
configurations so machine load hits them alike.

Usage: python bench/cold_start_printing.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from cold_start import BIN, start_once


def start(data_dir: Path, config: Path) -> tuple[float, float]:
    os.environ["APPLIANCE_CONFIG"] = str(config)  # start_once's `appliance run` reads it
    return start_once(data_dir)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-start-printing-"))
    printer = subprocess.Popen(
        [str(BIN / "hil"), "printer", "--listen", "127.0.0.1:0", "--jobs", str(folder / "jobs")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert printer.stdout is not None
    address = printer.stdout.readline().strip()
    setups = {"none": "none", "simulated": "simulated", "tcp": f"tcp:{address}"}
    times: dict[str, list[float]] = {k: [] for k in setups}
    memory: dict[str, list[float]] = {k: [] for k in setups}
    try:
        for name, connection in setups.items():
            config = folder / f"{name}.toml"
            config.write_text(f'[printer]\nconnection = "{connection}"\n')
            start(folder / name, config)  # first start: migrations, demo catalog
        for _ in range(args.runs):
            for name in setups:
                t, m = start(folder / name, folder / f"{name}.toml")
                times[name].append(t)
                memory[name].append(m)
    finally:
        printer.terminate()
        printer.wait(10)
    base = statistics.median(times["none"])
    for name in setups:
        t = statistics.median(times[name])
        print(
            f"restart to ready, printer {name:9}: {t:.3f} s  ({t / base:.2f}x no printer)"
            f"  RSS {max(memory[name]):.1f} MB"
        )


if __name__ == "__main__":
    main()
