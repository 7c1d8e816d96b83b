"""The scenario file format (TOML) and its validation, with file:line errors.

A scenario is a name, optional setup, and an ordered list of ``[[step]]`` tables.
Each step has exactly one action key (what to do or what to expect) plus that
action's options, and an optional ``timeout_s``:

    name = "three scans, cash"
    tiers = ["inprocess", "virtual"]     # where it is meant to run (default: all)
    timeout_s = 60                       # the whole scenario's bound

    [setup]
    catalog = "demo"                     # or a CSV path relative to this file
    shift_float_minor = 10000            # open a shift with this float (omit: none)

    [[step]]
    scan = "4006381333931"               # a code, as a scanner would send it
    scanner = "front"                    # optional: which scanner

    [[step]]
    expect_cart = { lines = 1, total_minor = 499 }

    [[step]]
    pay_cash = 1000

See ``STEPS`` for every action and its options.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# action -> (type of the action's value, {option: type})
STEPS: dict[str, tuple[type | tuple[type, ...], dict[str, type | tuple[type, ...]]]] = {
    "scan": (str, {"scanner": str}),
    "scan_recording": (str, {"scanner": str, "layout": str}),
    "expect_cart": (dict, {}),
    "expect_error": (str, {}),
    "pay_cash": (int, {}),
    "pay_card": (str, {"amount_minor": int}),
    "park": (str, {}),
    "resume": (str, {}),
    "void": (str, {}),
    "expect_sale": (dict, {}),
    "expect_receipt": (dict, {}),
    "printer": (str, {}),
    "backoffice": (str, {}),
    "power_cut": (bool, {}),
    "wait_s": ((int, float), {}),
    "expect_api": (dict, {}),
    "expect_db": (dict, {}),
    "expect_sync": (dict, {}),
    "refund": (str, {}),
}
TIERS = ("inprocess", "virtual", "qemu", "bench")
TOP_KEYS = {"name", "description", "tiers", "timeout_s", "setup", "step"}
SETUP_KEYS: dict[str, type] = {"catalog": str, "shift_float_minor": int, "config": dict}


class ScenarioError(Exception):
    """A broken scenario file: says which file, which line and what is wrong."""

    def __init__(self, file: Path, line: int, problem: str) -> None:
        super().__init__(f"{file}:{line}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem


@dataclass
class Step:
    index: int
    line: int
    action: str
    value: Any
    options: dict[str, Any]
    timeout_s: float

    @property
    def title(self) -> str:
        return f"{self.index + 1}. {self.action} {self.value!r}"


@dataclass
class Scenario:
    path: Path
    name: str
    description: str
    tiers: tuple[str, ...]
    timeout_s: float
    setup: dict[str, Any]
    steps: list[Step] = field(default_factory=list)


def _step_lines(text: str) -> list[int]:
    """Line numbers of each ``[[step]]`` header, so errors can point at them."""
    return [
        n
        for n, line in enumerate(text.splitlines(), start=1)
        if re.match(r"^\s*\[\[\s*step\s*\]\]\s*(#.*)?$", line)
    ]


def _key_line(text: str, key: str, start: int = 1) -> int:
    for n, line in enumerate(text.splitlines()[start - 1 :], start=start):
        if re.match(rf"^\s*{re.escape(key)}\s*=", line) or re.match(rf"^\s*\[{key}\]", line):
            return n
    return start


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and kind in (int, (int, float)):
        return False
    return isinstance(value, kind)


def load_scenario(path: str | Path) -> Scenario:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(file, 0, f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ScenarioError(
            file, int(match.group(1)) if match else 1, f"not valid TOML: {exc}"
        ) from None

    for key in data:
        if key not in TOP_KEYS:
            raise ScenarioError(
                file,
                _key_line(text, key),
                f"unknown key {key!r} (allowed: {', '.join(sorted(TOP_KEYS))})",
            )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(file, _key_line(text, "name"), "'name' is required (a text)")
    tiers = data.get("tiers", list(TIERS))
    if not isinstance(tiers, list) or any(t not in TIERS for t in tiers):
        raise ScenarioError(
            file, _key_line(text, "tiers"), f"'tiers' must list some of {', '.join(TIERS)}"
        )
    timeout = data.get("timeout_s", 120)
    if not _is(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise ScenarioError(
            file, _key_line(text, "timeout_s"), "'timeout_s' must be 1-3600 seconds"
        )
    setup = data.get("setup", {})
    if not isinstance(setup, dict):
        raise ScenarioError(file, _key_line(text, "setup"), "'setup' must be a table")
    for key, value in setup.items():
        want = SETUP_KEYS.get(key)
        if want is None or not _is(value, want):
            raise ScenarioError(
                file,
                _key_line(text, key),
                f"setup.{key}: unknown or wrong type (allowed: "
                + ", ".join(f"{k} ({t.__name__})" for k, t in SETUP_KEYS.items())
                + ")",
            )
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(file, 1, "a scenario needs at least one [[step]]")
    lines = _step_lines(text)
    steps = []
    for index, raw in enumerate(raw_steps):
        line = lines[index] if index < len(lines) else 1
        actions = [k for k in raw if k in STEPS]
        others = [k for k in raw if k not in STEPS and k != "timeout_s"]
        if len(actions) != 1:
            found = ", ".join(actions) or "none"
            unknown = f": unknown action {others[0]!r}" if not actions and others else ""
            raise ScenarioError(
                file,
                _key_line(text, others[0], line) if unknown else line,
                f"step {index + 1} must have exactly one action{unknown} (found: {found}); "
                f"actions: {', '.join(STEPS)}",
            )
        action = actions[0]
        kind, allowed = STEPS[action]
        if not _is(raw[action], kind):
            expected = kind.__name__ if isinstance(kind, type) else "number"
            raise ScenarioError(
                file, _key_line(text, action, line), f"{action}: must be a {expected}"
            )
        options = {}
        for key in others:
            if key not in allowed:
                raise ScenarioError(
                    file,
                    _key_line(text, key, line),
                    f"{action}: unknown option {key!r} (allowed: {', '.join(allowed) or 'none'})",
                )
            if not _is(raw[key], allowed[key]):
                raise ScenarioError(file, _key_line(text, key, line), f"{action}.{key}: wrong type")
            options[key] = raw[key]
        step_timeout = raw.get("timeout_s", 30)
        if not _is(step_timeout, (int, float)) or not 0 < step_timeout <= 600:
            raise ScenarioError(
                file, _key_line(text, "timeout_s", line), "timeout_s: 1-600 seconds"
            )
        steps.append(Step(index, line, action, raw[action], options, float(step_timeout)))
    return Scenario(
        path=file,
        name=name,
        description=str(data.get("description", "")),
        tiers=tuple(tiers),
        timeout_s=float(timeout),
        setup=setup,
        steps=steps,
    )
