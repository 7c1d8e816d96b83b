"""The project's own standards, checked in CI: ruff lint, ruff format, mypy."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT, VENV_BIN


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_is_clean() -> None:
    result = _run(str(VENV_BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_format_is_clean() -> None:
    result = _run(str(VENV_BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_mypy_is_clean() -> None:
    result = _run(str(VENV_BIN / "mypy"))
    assert result.returncode == 0, result.stdout[-4000:]
