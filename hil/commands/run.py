"""`hil run SCENARIO... --tier inprocess|virtual|qemu|bench`: run scenarios, print results."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run HIL scenarios on a tier")
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    parser.add_argument(
        "--tier", default="inprocess", choices=["inprocess", "virtual", "qemu", "bench"]
    )
    parser.add_argument("--bench-config", metavar="FILE", help="bench file (tier bench)")
    parser.add_argument("--report", metavar="OUT.html", help="write an HTML report")
    parser.set_defaults(handler=run)


async def _run_all(scenarios: list[Any], tier: str, bench: Any) -> list[Any]:
    """Every scenario in one event loop; on the qemu tier they share one booted VM."""
    from hil.scenario.runner import run_scenario

    results = []
    stage = None
    if tier == "qemu" and scenarios:
        stage = await _qemu_stage()
    try:
        for scenario in scenarios:
            result = await run_scenario(scenario, tier, bench)
            results.append(result)
            print(f"{'PASS' if result.ok else 'FAIL'} {scenario.name} [{tier}] "
                  f"{result.seconds:.2f}s", flush=True)  # fmt: skip
            for step in result.steps:
                mark = "ok " if step.ok else "ERR"
                extra = "" if step.ok else f"  -- {step.error}"
                print(f"  {mark} {step.title} ({step.seconds * 1000:.0f} ms, "
                      f"line {step.line}){extra}")  # fmt: skip
            if result.error:
                print(f"  ERR {result.error}")
    finally:
        if stage is not None:
            from hil.scenario.qemu_tier import QemuTier

            QemuTier.attach(None)
            await stage.close()
    return results


async def _qemu_stage() -> Any:
    """One stage (cached image, a fresh data disk) booted for the whole run."""
    import tempfile
    import time
    from pathlib import Path

    from hil.qemu.stage import open_stage
    from hil.scenario.qemu_tier import QemuTier

    t0 = time.monotonic()
    stage = await open_stage(Path(tempfile.mkdtemp(prefix="hil-qemu-")))
    took = await stage.vm.boot(timeout=300)
    print(f"qemu: stage ready in {time.monotonic() - t0:.0f} s (boot to READY {took:.0f} s, "
          f"{stage.vm.accel})", flush=True)  # fmt: skip
    QemuTier.attach(stage)
    return stage


def run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from hil.scenario.format import ScenarioError, load_scenario
    from hil.scenario.report import write_report

    try:
        scenarios = [load_scenario(path) for path in args.scenarios]
    except ScenarioError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 2
    bench = Path(args.bench_config) if args.bench_config else None
    chosen = []
    for scenario in scenarios:
        if args.tier not in scenario.tiers:
            print(
                f"SKIP {scenario.name}: declared for tiers {', '.join(scenario.tiers)}, "
                f"not {args.tier}"
            )
            continue
        chosen.append(scenario)
    results = asyncio.run(_run_all(chosen, args.tier, bench))
    if args.report:
        write_report(results, Path(args.report))
        print(f"report: {args.report}")
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
