"""HIL scenario times per tier (s): every scenario in hil/scenarios, as CI runs them.

For each tier: one line per scenario (total, the register's start, the slowest step)
and the tier's total, so the cost of the scenario library in the test suite is seen
before it grows. The qemu tier boots one VM for all its scenarios (``--tier qemu``).

Usage: python bench/hil_scenarios.py [--tier inprocess --tier virtual] [SCENARIO…]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hil.commands.run import _run_all
from hil.scenario.format import load_scenario

LIBRARY = Path(__file__).resolve().parent.parent / "hil" / "scenarios"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", action="append", choices=["inprocess", "virtual", "qemu"])
    parser.add_argument("scenarios", nargs="*")
    args = parser.parse_args()
    files = [Path(p) for p in args.scenarios] or sorted(LIBRARY.glob("*.scenario.toml"))
    scenarios = [load_scenario(f) for f in files]
    summary = []
    for tier in args.tier or ["inprocess", "virtual"]:
        chosen = [s for s in scenarios if tier in s.tiers]
        t0 = time.monotonic()
        results = asyncio.run(_run_all(chosen, tier, None))
        wall = time.monotonic() - t0
        print(f"\n{tier}: {len(results)} scenarios")
        for res in results:
            slow = max(res.steps, key=lambda s: s.seconds, default=None)
            steps_s = sum(s.seconds for s in res.steps)
            mark = "ok  " if res.ok else "FAIL"
            where = f"{slow.title} {slow.seconds:.2f} s" if slow else "-"
            print(f"  {res.seconds:6.2f} s  {mark} {res.scenario.path.name}  "
                  f"(start+stop {res.seconds - steps_s:5.2f} s; slowest step {where})")  # fmt: skip
        failed = sum(not r.ok for r in results)
        summary.append(f"{tier}: {wall:.1f} s wall for {len(results)} scenarios, {failed} failed")
    print()
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
