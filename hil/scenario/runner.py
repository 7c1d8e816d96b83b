"""Run scenarios on a tier: bounded in time, a result per step with timings."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.scenario.format import Scenario
from hil.scenario.receipts import Receipt
from hil.scenario.tiers import StepFailed, Tier, tier_class


@dataclass
class StepResult:
    title: str
    line: int
    ok: bool
    seconds: float
    detail: Any = None
    error: str | None = None
    expected: Any = None
    got: Any = None


@dataclass
class ScenarioResult:
    scenario: Scenario
    tier: str
    ok: bool = False
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    receipts: list[Receipt] = field(default_factory=list)


async def run_scenario(
    scenario: Scenario, tier_name: str, bench_file: Path | None = None
) -> ScenarioResult:
    result = ScenarioResult(scenario, tier_name)
    cls = tier_class(tier_name)
    if tier_name == "bench":
        from hil.scenario.bench import BenchTier

        tier: Tier = BenchTier(scenario, bench_file)
    elif cls is None:
        result.error = (
            f"tier {tier_name!r} is not available in this build "
            "(available: inprocess, virtual, qemu, bench)"
        )
        return result
    else:
        tier = cls(scenario)
    started = time.monotonic()
    try:
        await asyncio.wait_for(tier.start(), timeout=tier.start_timeout_s)
    except Exception as exc:
        result.error = f"{tier_name} tier did not start: {type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):  # what did start is stopped again
            await asyncio.wait_for(tier.stop(), timeout=30)
        result.seconds = time.monotonic() - started
        return result
    # The scenario's bound counts from the register's start (which has its own bound:
    # a QEMU boot is not the scenario's time), scaled for slow tiers.
    steps_started = time.monotonic()
    scenario_bound = scenario.timeout_s * tier.time_scale
    try:
        for step in scenario.steps:
            left = scenario_bound - (time.monotonic() - steps_started)
            if left <= 0:
                result.error = f"scenario exceeded its {scenario_bound:g} s bound"
                break
            t0 = time.monotonic()
            bound = min(step.timeout_s * tier.time_scale, left)
            ok, detail, error, expected, got = True, None, None, None, None
            try:
                detail = await asyncio.wait_for(tier.run_step(step), timeout=bound)
            except TimeoutError:
                ok, error = False, f"timed out after {bound:g} s"
            except StepFailed as exc:
                ok, error, expected, got = False, str(exc), exc.expected, exc.got
            except Exception as exc:  # a tier bug fails the step, not the run
                ok, error = False, f"{type(exc).__name__}: {exc}"
            result.steps.append(
                StepResult(
                    step.title, step.line, ok, time.monotonic() - t0, detail, error, expected, got
                )
            )
            if not ok:
                break
    finally:
        await tier.collect_receipts()
        result.receipts = list(tier.receipts)
        try:
            await asyncio.wait_for(tier.stop(), timeout=30)
        except Exception as exc:
            result.error = result.error or f"tier did not stop cleanly: {exc}"
    result.seconds = time.monotonic() - started
    result.ok = (
        result.error is None
        and len(result.steps) == len(scenario.steps)
        and all(s.ok for s in result.steps)
    )
    return result
