"""pytest plugin: HIL scenario files are collected as tests, one per scenario and tier.

Enabled for this project in tests/conftest.py (``pytest_plugins``); any project can
load it with ``-p hil.pytest_plugin``. Files named ``*.scenario.toml`` under the
rootdir's ``hil/scenarios`` are collected; ``--hil-tier`` picks the tiers
(default: inprocess and virtual; ``--hil-tier qemu`` boots a VM per scenario — the
QEMU stage's own test runs the key scenarios on its session VM instead). A scenario
that declares it is not meant for a tier is not collected for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.scenario.format import ScenarioError, load_scenario
from hil.scenario.runner import ScenarioResult, run_scenario


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hil-tier",
        action="append",
        default=None,
        help="HIL tier(s) to run scenarios on (default: inprocess, virtual)",
    )


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.File | None:
    if file_path.name.endswith(".scenario.toml"):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        tiers = self.config.getoption("--hil-tier") or ["inprocess", "virtual"]
        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            yield BrokenScenario.from_parent(self, name="load", error=str(exc))
            return
        for tier in tiers:
            if tier in scenario.tiers:
                yield ScenarioItem.from_parent(self, name=tier, tier=tier)


class BrokenScenario(pytest.Item):
    """A scenario file that does not load: reported as a failing test with file:line."""

    def __init__(self, *, error: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise ScenarioFailure(self.error)


class ScenarioFailure(Exception):
    pass


class ScenarioItem(pytest.Item):
    def __init__(self, *, tier: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tier = tier

    def runtest(self) -> None:
        scenario = load_scenario(self.path)
        result: ScenarioResult = asyncio.run(run_scenario(scenario, self.tier))
        if not result.ok:
            lines = [f"scenario {scenario.name!r} failed on tier {self.tier}"]
            lines += [
                f"  {'ok ' if s.ok else 'ERR'} line {s.line}: {s.title}"
                + ("" if s.ok else f" -- {s.error}")
                for s in result.steps
            ]
            if result.error:
                lines.append(f"  {result.error}")
            raise ScenarioFailure("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"hil scenario [{self.tier}]"
