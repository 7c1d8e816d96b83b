"""Barcode parser throughput: parses/second for a mix of codes, and the import cost.

Run: .venv/bin/python bench/barcode_parse.py [--seconds 1.0]
Prints figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.barcodes import GS, parse_barcode  # noqa: E402

MIX: dict[str, list[str]] = {
    "ean13": ["4006381333931", "5901234123457", "]E04006381333931"],
    "upca/upce/ean8": ["036000291452", "04252614", "96385074", "]E004252614"],
    "bad check digit": ["4006381333932", "036000291453"],
    "variable measure": ["2112345012506", "2312345012340"],
    "gs1": [
        "]C10109501101020917" + "3103001250" + "17251231" + "10LOT42" + GS + "21SER1",
        GS + "0109501101020917" + "3922499",
        "(01)09501101020917(17)251200(10)AB",
        "]d20109501101020917" + "21" + "X" * 20 + GS + "10" + "Y" * 20,
    ],
    "customer/receipt": ["CUST000123", "RCPTR1-000042"],
    "other": ["ABC-123", "SKU 42", "12345"],
}


def rate(codes: list[str], seconds: float) -> tuple[float, int]:
    count = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        for code in codes:
            parse_barcode(code)
        count += len(codes)
    return count / (time.perf_counter() - start), count


def import_cost() -> float:
    script = (
        "import time; t = time.perf_counter(); import appliance.barcodes; "
        "print(time.perf_counter() - t)"
    )
    samples = []
    for _ in range(5):
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=30
        )
        samples.append(float(proc.stdout.strip()))
    return min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per category")
    args = parser.parse_args()
    parse_barcode("]C10109501101020917")  # build the GS1 AI table outside the timing
    print(f"{'category':<20} {'parses/s':>12} {'us/parse':>10}")
    for name, codes in MIX.items():
        per_second, _ = rate(codes, args.seconds)
        print(f"{name:<20} {per_second:>12,.0f} {1e6 / per_second:>10.1f}")
    everything = [code for codes in MIX.values() for code in codes]
    per_second, _ = rate(everything, args.seconds)
    print(f"{'mix (all above)':<20} {per_second:>12,.0f} {1e6 / per_second:>10.1f}")
    print(f"import appliance.barcodes: {import_cost() * 1000:.1f} ms (best of 5, fresh process)")


if __name__ == "__main__":
    main()
