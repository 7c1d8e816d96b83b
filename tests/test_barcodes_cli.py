"""`appliance barcode parse`: the JSON contract other tools rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import main

VENV_BIN = Path(sys.executable).parent
CONTRACT_KEYS = {"valid", "kind", "gtin", "ais", "weight_g", "price_minor", "error"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["barcode", "parse", *argv])
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1, out
    return code, json.loads(out)


def test_valid_ean13(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "4006381333931")
    assert code == 0
    assert set(out) >= CONTRACT_KEYS
    assert out["valid"] is True and out["kind"] == "ean13"
    assert out["gtin"] == "04006381333931"
    assert out["ais"] == {} and out["weight_g"] is None and out["price_minor"] is None
    assert out["error"] is None


def test_invalid_code_still_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "4006381333932")
    assert code == 0
    assert out["valid"] is False and out["gtin"] is None
    assert out["error"] == "EAN-13 check digit is 2, expected 1"


def test_gs1_with_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--escapes", r"]C10109501101020917\x1d10AB<GS>3922499")
    assert code == 0 and out["valid"] is True and out["kind"] == "gs1"
    assert out["ais"] == {"01": "09501101020917", "10": "AB", "3922": "499"}
    assert out["price_minor"] == 499


def test_prefix_options(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, "--customer-prefix", "K", "K12")
    assert out["kind"] == "customer" and out["customer_code"] == "12"
    _, out = run(capsys, "--receipt-prefix", "R:", "R:R2-77")
    assert out["kind"] == "receipt" and out["receipt_no"] == "R2-77"


def test_vm_layout_options(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, "--vm-layout", "28:4:price:1", "2812341012349")
    assert out["kind"] == "variable_measure" and out["price_minor"] == 1234
    assert out["item_code"] == "1234"
    _, out = run(capsys, "2112345012506")  # default layout 21 = weight
    assert out["weight_g"] == 1250
    _, out = run(capsys, "--vm-layout", "none", "2112345012506")
    assert out["kind"] == "ean13" and out["weight_g"] is None
    _, out = run(capsys, "--vm-layout", "28:4:price:1", "2112345012506")
    assert out["kind"] == "ean13"  # given layouts replace the defaults


def test_other_options(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, "--eight-digit", "upce", "01234565")
    assert out["kind"] == "upce"
    _, out = run(capsys, "--currency", "978", "(01)09501101020917(3932)840100")
    assert out["valid"] is False
    _, out = run(capsys, "--minor-digits", "0", "(01)09501101020917(3920)100")
    assert out["price_minor"] == 100
    _, out = run(capsys, "--gs", "|", "]C10109501101020917" + "10AB|21C")
    assert out["ais"] == {"01": "09501101020917", "10": "AB", "21": "C"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--vm-layout", "2:5:price", "1"],
        ["--eight-digit", "x", "1"],
        ["--currency", "EUR", "1"],
        ["--gs", "A", "1"],
        [],
    ],
)
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        code = main(["barcode", "parse", *argv])
        raise SystemExit(code)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error" in captured.err


def test_console_script_one_ascii_line() -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "appliance"), "barcode", "parse", "--", "-Ünïcödé\x1d"],
        capture_output=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.isascii() and proc.stdout.count(b"\n") == 1
    out = json.loads(proc.stdout)
    assert set(out) >= CONTRACT_KEYS and out["kind"] == "other"


def test_register_is_import_light_and_package_is_stdlib_only() -> None:
    script = (
        "import sys\n"
        "import appliance.commands.barcode\n"
        "assert 'appliance.barcodes' not in sys.modules\n"
        "import appliance.barcodes\n"
        "mods = {m.split('.')[0] for m in sys.modules}\n"
        "extra = sorted(m for m in mods if m not in sys.stdlib_module_names\n"
        "               and m not in ('appliance', '__main__'))\n"
        "print(extra)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
