"""Scanner decoding speed: wedge decoder events/s, and scan-to-line latency through the core.

Baseline in the same run: iterating the same events without decoding.
Usage: python bench/scanner_decoder.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from appliance.config import config_from_dict
from appliance.register import Register
from appliance.scan import apply_scan
from appliance.service import load_demo_catalog
from drivers.scanners.wedge import WedgeDecoder, WedgeSettings
from hil.evemu import parse_evemu

RECORDINGS = Path(__file__).resolve().parent.parent / "hil" / "recordings" / "scanners"


def main() -> None:
    events = []
    for path in sorted(RECORDINGS.glob("*-enter.evemu")):
        events += parse_evemu(path.read_text()).events
    events = events * 50
    t0 = time.perf_counter()
    for _ in events:
        pass
    baseline = time.perf_counter() - t0
    decoder = WedgeDecoder("bench", WedgeSettings(layout="us"))
    t0 = time.perf_counter()
    scans = sum(1 for _ in decoder.decode(events))
    elapsed = time.perf_counter() - t0
    print(f"events decoded                    : {len(events)} ({scans} scans)")
    print(f"wedge decoder                     : {len(events) / elapsed:,.0f} events/s")
    print(f"decoder / bare iteration          : {elapsed / baseline:.0f}x")

    folder = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    reg = Register(config_from_dict({"register": {"data_dir": str(folder)}}))
    load_demo_catalog(reg)
    codes = ["4006381333931", "2100002012341", "BAG", "4001686301265"]
    latencies = []
    for i in range(400):
        if i % 20 == 0:
            sale_id = reg.open_sale()["id"]
        t = time.perf_counter()
        apply_scan(reg, codes[i % len(codes)], sale_id)
        latencies.append((time.perf_counter() - t) * 1000)
    q = statistics.quantiles(latencies, n=100)
    print(f"scan → durable sale line p50 / p99: {q[49]:.3f} / {q[98]:.3f} ms")
    reg.close()


if __name__ == "__main__":
    main()
