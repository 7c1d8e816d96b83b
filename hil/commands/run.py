"""`hil run SCENARIO... --tier inprocess|virtual|qemu|bench`: run scenarios, print results."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run HIL scenarios on a tier")
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    parser.add_argument(
        "--tier", default="inprocess", choices=["inprocess", "virtual", "qemu", "bench"]
    )
    parser.add_argument("--bench-config", metavar="FILE", help="bench file (tier bench)")
    parser.add_argument("--report", metavar="OUT.html", help="write an HTML report")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from hil.scenario.format import ScenarioError, load_scenario
    from hil.scenario.report import write_report
    from hil.scenario.runner import ScenarioResult, run_scenario

    try:
        scenarios = [load_scenario(path) for path in args.scenarios]
    except ScenarioError as exc:
        print(f"hil: {exc}", file=sys.stderr)
        return 2
    results: list[ScenarioResult] = []
    for scenario in scenarios:
        if args.tier not in scenario.tiers:
            print(
                f"SKIP {scenario.name}: declared for tiers {', '.join(scenario.tiers)}, "
                f"not {args.tier}"
            )
            continue
        bench = Path(args.bench_config) if args.bench_config else None
        result = asyncio.run(run_scenario(scenario, args.tier, bench))
        results.append(result)
        print(
            f"{'PASS' if result.ok else 'FAIL'} {scenario.name} [{args.tier}] {result.seconds:.2f}s"
        )
        for step in result.steps:
            mark = "ok " if step.ok else "ERR"
            extra = "" if step.ok else f"  -- {step.error}"
            print(f"  {mark} {step.title} ({step.seconds * 1000:.0f} ms, line {step.line}){extra}")
        if result.error:
            print(f"  ERR {result.error}")
    if args.report:
        write_report(results, Path(args.report))
        print(f"report: {args.report}")
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
