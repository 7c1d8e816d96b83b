"""Register cold start to ready (s) and resident memory (MB).

Starts `appliance run` on a fresh data folder (first start: migrations + demo catalog)
and again on the same folder (a normal restart), measures the time from spawn to the
first 200 from /health, and reads VmRSS from /proc after ready. Baseline in the same
run: a bare `python -c pass` spawn.

Usage: python bench/cold_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_once(data_dir: Path) -> tuple[float, float]:
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "appliance"), "run", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.01)
            if time.perf_counter() - t0 > 30:
                raise RuntimeError("register did not start in 30 s")
        ready = time.perf_counter() - t0
        return ready, rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    t0 = time.perf_counter()
    for _ in range(args.runs):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = (time.perf_counter() - t0) / args.runs
    first, restarts, rss = [], [], []
    for _ in range(args.runs):
        folder = Path(tempfile.mkdtemp(prefix="bench-start-"))
        t, m = start_once(folder / "data")
        first.append(t)
        rss.append(m)
        t, m = start_once(folder / "data")
        restarts.append(t)
        rss.append(m)
    print(f"bare python spawn (baseline)      : {bare:.3f} s")
    print(f"first start to ready (median)     : {statistics.median(first):.3f} s")
    restart = statistics.median(restarts)
    print(f"restart to ready (median)         : {restart:.3f} s  (target <= 1.5 s)")
    print(f"start / bare spawn ratio          : {statistics.median(restarts) / bare:.1f}x")
    print(f"resident memory when ready (max)  : {max(rss):.1f} MB  (target <= 120 MB)")


if __name__ == "__main__":
    main()
